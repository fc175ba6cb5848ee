package xmppcore

import (
	"context"
)

// Unreached is a message or notification for a user none of whose
// clients is connected to get it: no available session on any node, or
// only XEP-0198 sessions detached and waiting for their client to resume.
// A session in XEP-0352 <inactive/> state counts as connected (it is
// given the message; the client decides how to tell its user). It is what
// push notifications (XEP-0357) are sent for.
type Unreached struct {
	UserID int64
	Kind   string // "message" (a personal message), "notification" (a chat mention and other notices)
	From   string // the sender's bare JID (for a notification without a sender: the domain)
	Body   string // the message's body or the notification's text
	ID     int64  // the archive id of a message, the id of a notification
}

// OnUnreached has f called with every personal message archived for, and
// every notification made for, a user with no connected client. It is
// called once per message across the nodes: by the node that archived it,
// or, when the user's only sessions are detached on another node, by that
// node. f runs on the goroutine that delivered the message and must not
// block.
func (s *Server) OnUnreached(f func(context.Context, Unreached)) {
	s.extMu.Lock()
	s.unreachedHooks = append(s.unreachedHooks, f)
	s.extMu.Unlock()
}

// checkUnreached tells the OnUnreached hooks about u when none of the
// user's clients is connected. routed: the message came from the node
// that archived it, which saw sessions of the user here (it told no one);
// this node decides only if it holds some of them.
func (s *Server) checkUnreached(ctx context.Context, u Unreached, routed bool) {
	s.extMu.RLock()
	hooks := s.unreachedHooks
	s.extMu.RUnlock()
	if len(hooks) == 0 {
		return
	}
	local := s.router.sessions(u.UserID)
	if routed && len(local) == 0 {
		return
	}
	for _, t := range local {
		if t.available.Load() && !t.ended.Load() && !t.detached() {
			return
		}
	}
	if s.cl != nil {
		// Another node's session: available is all the mirror says.
		for _, r := range s.cl.Sessions(u.UserID) {
			if r.Available {
				return
			}
		}
	}
	for _, f := range hooks {
		f(ctx, u)
	}
}

// detached reports whether the session's stream died and it waits for
// its client to resume (XEP-0198).
func (sess *Session) detached() bool {
	c, ok := sess.sink.(*conn)
	if !ok {
		return false
	}
	for {
		if n := c.next.Load(); n != nil {
			c = n
			continue
		}
		c.qmu.Lock()
		d := c.detached
		c.qmu.Unlock()
		return d
	}
}

// notifyUnreached is checkUnreached for notification id: from the
// sender's bare JID, or the domain.
func (s *Server) notifyUnreached(ctx context.Context, userID, senderID int64, text string, id int64) {
	from := s.domain
	if senderID != 0 {
		if acc, err := s.users.byID(ctx, senderID); err == nil {
			from = s.bareJID(acc.Login)
		}
	}
	s.checkUnreached(ctx, Unreached{UserID: userID, Kind: "notification", From: from, Body: text, ID: id}, false)
}
