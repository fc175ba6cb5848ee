package xmppcore

import (
	"context"
	"sync"

	"mellium.im/xmpp/jid"
)

// Blocking command (XEP-0191).
const (
	NSBlocking       = "urn:xmpp:blocking"
	NSBlockingErrors = "urn:xmpp:blocking:errors"
)

// blockCache keeps loaded blocklists, so checking a message costs no
// query. Guarded by its mutex; entries are replaced on every change.
type blockCache struct {
	mu    sync.Mutex
	lists map[int64]map[string]struct{}
}

func (s *Server) blocklistOf(ctx context.Context, userID int64) map[string]struct{} {
	s.blocks.mu.Lock()
	l, ok := s.blocks.lists[userID]
	s.blocks.mu.Unlock()
	if ok {
		return l
	}
	jids, err := s.store.blocklist(ctx, userID)
	if err != nil {
		s.log.Warn("load blocklist", "err", err)
		return nil
	}
	l = make(map[string]struct{}, len(jids))
	for _, j := range jids {
		l[j] = struct{}{}
	}
	s.blocks.mu.Lock()
	if len(s.blocks.lists) > 100000 {
		s.blocks.lists = map[int64]map[string]struct{}{}
	}
	s.blocks.lists[userID] = l
	s.blocks.mu.Unlock()
	return l
}

// isBlocked reports whether userID blocks the (bare) JID or its domain.
func (s *Server) isBlocked(ctx context.Context, userID int64, bare string) bool {
	l := s.blocklistOf(ctx, userID)
	if len(l) == 0 {
		return false
	}
	if _, ok := l[bare]; ok {
		return true
	}
	if j, err := jid.Parse(bare); err == nil {
		_, ok := l[j.Domainpart()]
		return ok
	}
	return false
}

func (s *Server) iqBlocking(ctx context.Context, sess *Session, iq *Element) (*Element, error) {
	if to := iq.AttrValue("to"); to != "" && to != sess.bareStr {
		return nil, ErrForbidden("")
	}
	p := iq.Children[0]
	typ := iq.AttrValue("type")
	switch {
	case typ == "get" && p.Name.Local == "blocklist":
		jids, err := s.store.blocklist(ctx, sess.userID)
		if err != nil {
			return nil, err
		}
		res := NewElement(NSBlocking, "blocklist")
		for _, j := range jids {
			res.AddChild(NewElement(NSBlocking, "item", "jid", j))
		}
		return res, nil
	case typ == "set" && (p.Name.Local == "block" || p.Name.Local == "unblock"):
		var jids []string
		for _, it := range p.Children {
			if it.Name.Local != "item" {
				continue
			}
			j, err := jid.Parse(it.AttrValue("jid"))
			if err != nil {
				return nil, ErrJIDMalformed()
			}
			jids = append(jids, j.String())
		}
		if p.Name.Local == "block" {
			if len(jids) == 0 {
				return nil, ErrBadRequest("no items")
			}
			if len(s.blocklistOf(ctx, sess.userID))+len(jids) > MaxBlocklist {
				return nil, ErrResourceConstraint()
			}
			if err := s.store.block(ctx, sess.userID, jids); err != nil {
				return nil, err
			}
		} else if err := s.store.unblock(ctx, sess.userID, jids); err != nil {
			return nil, err
		}
		s.blocks.mu.Lock()
		delete(s.blocks.lists, sess.userID)
		s.blocks.mu.Unlock()
		s.clusterForgetBlocklist(sess.userID)
		// Push the change to every resource of the user, after the result.
		sess.afterReply(func() {
			s.pushBlock(sess, p.Name.Local, jids)
			s.blockPresence(ctx, sess, jids, p.Name.Local == "block")
		})
		return nil, nil
	}
	return nil, ErrBadRequest("")
}

func (s *Server) pushBlock(sess *Session, kind string, jids []string) {
	{
		for _, t := range s.router.sessions(sess.userID) {
			push := NewElement(NSBlocking, kind)
			for _, j := range jids {
				push.AddChild(NewElement(NSBlocking, "item", "jid", j))
			}
			iq := NewElement(NSClient, "iq", "type", "set", "id", "push"+randomID(6), "to", t.jidStr)
			iq.AddChild(push)
			t.deliver(iq)
		}
	}
}
