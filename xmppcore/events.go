package xmppcore

import (
	"context"
	"time"
)

// eventBatch is how many change events one poll reads.
const eventBatch = 500

// pollEvents follows the directory's change events (HR imports, the CLI,
// other nodes) and turns them into roster pushes and closed sessions.
func (s *Server) pollEvents(after int64, ok bool) {
	ctx := s.ctx
	for !ok {
		id, err := s.dir.LastEventID(ctx)
		if err == nil {
			after, ok = id, true
			break
		}
		if ctx.Err() != nil {
			return
		}
		s.log.Warn("read last event id", "err", err)
		if !sleepCtx(ctx, s.opts.EventPollInterval) {
			return
		}
	}
	t := time.NewTicker(s.opts.EventPollInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		for {
			evs, err := s.dir.Events(ctx, after, eventBatch)
			if err != nil {
				if ctx.Err() == nil {
					s.log.Warn("poll change events", "err", err)
				}
				break
			}
			s.applyEvents(ctx, evs)
			if len(evs) > 0 {
				after = evs[len(evs)-1].ID
			}
			if len(evs) < eventBatch {
				break
			}
		}
	}
}

func (s *Server) applyEvents(ctx context.Context, evs []Event) {
	changed := map[int64]map[int64]bool{} // user -> contacts whose item changed
	for _, e := range evs {
		switch e.Kind {
		case "deactivated":
			s.userChanged(e.UserID)
			for _, sess := range s.router.sessions(e.UserID) {
				sess.kill(closeDeactivated)
			}
		case "password", "logout":
			// The credentials a session was opened with no longer hold:
			// streams and web client connections end (their cookies were
			// deleted with the event).
			s.userChanged(e.UserID)
			for _, sess := range s.router.sessions(e.UserID) {
				sess.kill(closeRevoked)
			}
		case "user_updated":
			s.userChanged(e.UserID)
		case "roster_add", "roster_remove":
			if len(s.router.sessions(e.UserID)) == 0 {
				continue
			}
			m := changed[e.UserID]
			if m == nil {
				m = map[int64]bool{}
				changed[e.UserID] = m
			}
			m[e.ContactID] = true
		}
	}
	for userID, contacts := range changed {
		items, err := s.dir.Roster(ctx, userID)
		if err != nil {
			s.log.Warn("roster for push", "err", err)
			continue
		}
		ver := s.rosterVer(ctx, userID, items)
		present := map[int64]*RosterItem{}
		for i := range items {
			if items[i].ContactID != 0 {
				present[items[i].ContactID] = &items[i]
			}
		}
		for c := range contacts {
			if it := present[c]; it != nil {
				s.pushRoster(userID, rosterItemElement(it), ver)
				continue
			}
			acc, err := s.users.byID(ctx, c)
			if err != nil {
				continue
			}
			s.pushRoster(userID, NewElement(NSRoster, "item", "jid", s.bareJID(acc.Login), "subscription", "remove"), ver)
		}
		s.rewatch(ctx, userID)
	}
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
