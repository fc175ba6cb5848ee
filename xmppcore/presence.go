package xmppcore

import (
	"context"
	"strconv"
	"time"

	"mellium.im/xmpp/jid"
)

// handlePresence processes presence from a session: broadcast (no 'to'),
// directed presence, probes and subscription requests.
func (s *Server) handlePresence(ctx context.Context, sess *Session, el *Element) {
	typ := el.AttrValue("type")
	to := el.AttrValue("to")
	if to == "" {
		switch typ {
		case "":
			p := parsePriority(el)
			sess.priority.Store(int32(p))
			sess.presence.Store(el)
			sess.presenceAt.Store(time.Now().UnixMicro())
			features, known := s.capsPresence(sess, el)
			if !sess.available.Load() {
				s.initialPresence(ctx, sess, el)
				s.notificationsOnLogin(ctx, sess)
			} else {
				s.sendCapsQuery(sess)
				s.broadcastPresence(sess, el)
			}
			if known {
				s.sendLastItems(ctx, sess, features)
			}
		case "unavailable":
			if sess.available.Load() {
				s.setLastStatus(ctx, sess, el.ChildText(NSClient, "status"))
				sess.available.Store(false)
				sess.presence.Store(nil)
				s.broadcastPresence(sess, el)
				sess.sendDirectedUnavailable()
				if !s.anyAvailable(sess.userID) {
					s.router.unwatch(sess.userID)
				}
			}
		}
		return
	}
	j, err := jid.Parse(to)
	if err != nil {
		sess.replyError(el, ErrJIDMalformed())
		return
	}
	if c := s.component(j.Domainpart()); c != nil {
		sess.trackDirected(j.String(), typ)
		c.HandleStanza(ctx, sess.jid, el)
		return
	}
	if j.Domainpart() != s.domain || j.Localpart() == "" {
		if typ == "probe" || typ == "" || typ == "unavailable" {
			return
		}
		if j.Domainpart() != s.domain && (typ == "subscribe" || typ == "subscribed" || typ == "unsubscribe" || typ == "unsubscribed") {
			s.handleSubscription(ctx, sess, el, typ, j.Bare().String(), nil, false)
			return
		}
		if j.Domainpart() != s.domain {
			sess.replyError(el, ErrRemoteServerNotFound())
		}
		return
	}
	acc, err := s.users.byLogin(ctx, j.Localpart())
	if err != nil || !acc.Active {
		acc = nil
	}
	switch typ {
	case "subscribe", "subscribed", "unsubscribe", "unsubscribed":
		bare := j.Bare().String()
		if bare != sess.bareStr {
			s.handleSubscription(ctx, sess, el, typ, bare, acc, true)
		}
		return
	}
	if acc == nil {
		if typ == "probe" {
			// RFC 6121 §4.3.2: an unknown contact is unsubscribed.
			sess.deliver(NewElement(NSClient, "presence", "from", j.Bare().String(), "to", sess.bareStr, "type", "unsubscribed"))
		}
		return
	}
	switch typ {
	case "probe":
		s.answerProbe(ctx, sess, acc)
	case "", "unavailable", "error":
		if s.isBlocked(ctx, acc.ID, sess.bareStr) {
			return
		}
		if typ != "error" {
			sess.trackDirected(j.String(), typ)
		}
		if r := j.Resourcepart(); r != "" {
			if t := s.router.session(acc.ID, r); t != nil {
				t.deliver(el)
			} else {
				s.sendRemote(acc.ID, r, el)
			}
			return
		}
		for _, t := range s.router.sessions(acc.ID) {
			if t.available.Load() {
				c := el.ShallowCopy()
				c.SetAttr("to", t.jidStr)
				t.deliver(c)
			}
		}
		s.sendRemoteAll(acc.ID, el)
	}
}

// initialPresence makes a session available: interest in its contacts'
// presence, broadcast, the contacts' presence back, and the messages that
// waited offline (XEP-0160).
func (s *Server) initialPresence(ctx context.Context, sess *Session, el *Element) {
	items, err := s.dir.Roster(ctx, sess.userID)
	if err != nil {
		sess.logger().Warn("load roster for presence", "err", err)
	}
	contacts := watchedContacts(items, sess.userID)
	u := sess.user
	u.deliverMu.Lock()
	sess.available.Store(true)
	u.deliverMu.Unlock()
	s.router.watch(sess.userID, contacts)
	s.sendCapsQuery(sess)
	s.broadcastPresence(sess, el)
	// The contacts' presence, and the user's own other resources.
	for _, c := range append(contacts, sess.userID) {
		for _, cs := range s.router.sessions(c) {
			if cs == sess || !cs.available.Load() {
				continue
			}
			if p := cs.presence.Load(); p != nil {
				cp := p.ShallowCopy()
				cp.SetAttr("to", sess.jidStr)
				sess.deliver(cp)
			}
		}
		if s.cl != nil {
			if acc, err := s.users.byID(ctx, c); err == nil {
				for _, p := range s.remotePresence(c, acc.Login, sess.jidStr) {
					sess.deliver(p)
				}
			}
		}
	}
	// Subscription requests waiting for the user (RFC 6121 §3.1.3).
	s.deliverPending(ctx, sess)
	if sess.priority.Load() >= 0 {
		if !s.availableElsewhere(sess.userID) {
			s.flushOffline(ctx, sess)
		}
		// With a session of the user available on another node, what
		// was routed meanwhile reached that one, whose node may not have
		// stored the mark yet: only the late flush runs, by when it has.
		s.clusterLateFlush(sess)
	}
}

// availableElsewhere reports whether the user has an available session
// on another node of the cluster.
func (s *Server) availableElsewhere(userID int64) bool {
	if !s.clustered() {
		return false
	}
	for _, r := range s.cl.Sessions(userID) {
		if r.Available {
			return true
		}
	}
	return false
}

// broadcastPresence sends el (from sess) to every available session of
// the users watching sess's user, and to the user's other resources.
func (s *Server) broadcastPresence(sess *Session, el *Element) {
	// RFC 6121 4.2.2, 4.4.2: the sending resource gets its own presence too.
	// A contact's copy is addressed to their bare JID (RFC 6121 §4.2.2),
	// the user's own resources' to each full JID.
	send := func(t *Session) {
		if t != sess && !t.available.Load() {
			return
		}
		c := el.ShallowCopy()
		c.SetAttr("from", sess.jidStr)
		if t.userID == sess.userID {
			c.SetAttr("to", t.jidStr)
		} else {
			c.SetAttr("to", t.bareStr)
		}
		t.deliver(c)
	}
	blocks := s.blocklistOf(s.ctx, sess.userID)
	var told []string // contacts' bare JIDs that got the presence
	for _, w := range s.router.watchersOf(sess.userID) {
		got := false
		for _, t := range s.router.sessions(w) {
			if w != sess.userID && len(blocks) > 0 {
				// XEP-0191 §3.3: a blocked contact gets no presence.
				if _, blocked := blocks[t.bareStr]; blocked {
					break
				}
			}
			if w != sess.userID && !got && t.available.Load() {
				got = true
				told = append(told, t.bareStr)
			}
			send(t)
		}
	}
	if !s.router.isWatching(sess.userID, sess.userID) {
		for _, t := range s.router.sessions(sess.userID) {
			send(t)
		}
	}
	if el.AttrValue("type") == "" {
		s.askContactsCaps(sess, el, told)
	}
	s.clusterPresence(sess, el)
	s.presenceChanged(sess.userID)
}

// answerProbe sends sess the presence of every available session of acc,
// or unavailable with the time they were last seen.
func (s *Server) answerProbe(ctx context.Context, sess *Session, acc *Account) {
	sent := false
	for _, cs := range s.router.sessions(acc.ID) {
		if !cs.available.Load() {
			continue
		}
		if p := cs.presence.Load(); p != nil {
			cp := p.ShallowCopy()
			cp.SetAttr("from", cs.jidStr)
			cp.SetAttr("to", sess.jidStr)
			sess.deliver(cp)
			sent = true
		}
	}
	for _, p := range s.remotePresence(acc.ID, acc.Login, sess.jidStr) {
		sess.deliver(p)
		sent = true
	}
	if sent {
		return
	}
	p := NewElement(NSClient, "presence", "from", s.bareJID(acc.Login), "to", sess.jidStr, "type", "unavailable")
	if at, status, err := s.store.lastSeen(ctx, acc.ID); err == nil {
		if status != "" {
			p.AddText(NSClient, "status", status)
		}
		p.AddChild(delayElement(s.domain, at, ""))
	}
	sess.deliver(p)
}

func (s *Server) anyAvailable(userID int64) bool {
	for _, t := range s.router.sessions(userID) {
		if t.available.Load() {
			return true
		}
	}
	return false
}

func (s *Server) setLastStatus(ctx context.Context, sess *Session, status string) {
	if s.anyAvailableExcept(sess) {
		return
	}
	if err := s.store.setLastSeen(ctx, sess.userID, time.Now(), status); err != nil {
		sess.logger().Warn("store last seen", "err", err)
	}
}

func (s *Server) anyAvailableExcept(sess *Session) bool {
	for _, t := range s.router.sessions(sess.userID) {
		if t != sess && t.available.Load() {
			return true
		}
	}
	return false
}

// trackDirected remembers (or forgets) a directed available presence, so
// that unavailable is sent there when the session goes away.
func (sess *Session) trackDirected(to, typ string) {
	sess.mu.Lock()
	defer sess.mu.Unlock()
	switch typ {
	case "":
		if sess.directed == nil {
			sess.directed = map[string]struct{}{}
		}
		if len(sess.directed) < 1000 {
			sess.directed[to] = struct{}{}
		}
	case "unavailable":
		delete(sess.directed, to)
	}
}

// sendDirectedUnavailable tells every entity that got directed presence
// (MUC rooms included) that the session is gone.
func (sess *Session) sendDirectedUnavailable() {
	sess.mu.Lock()
	targets := sess.directed
	sess.directed = nil
	sess.mu.Unlock()
	s := sess.srv
	for to := range targets {
		p := NewElement(NSClient, "presence", "from", sess.jidStr, "to", to, "type", "unavailable")
		j, err := jid.Parse(to)
		if err != nil {
			continue
		}
		if c := s.component(j.Domainpart()); c != nil {
			c.HandleStanza(s.ctx, sess.jid, p)
			continue
		}
		s.Route(s.ctx, p)
	}
}

func parsePriority(el *Element) int {
	p, err := strconv.Atoi(el.ChildText(NSClient, "priority"))
	if err != nil || p < -128 || p > 127 {
		return 0
	}
	return p
}

// NSDelay is XEP-0203 delayed delivery.
const NSDelay = "urn:xmpp:delay"

func delayElement(from string, at time.Time, text string) *Element {
	d := NewElement(NSDelay, "delay", "from", from, "stamp", at.UTC().Format("2006-01-02T15:04:05.000000Z"))
	d.Text = text
	return d
}

// watchedContacts returns the employees whose presence the user receives:
// generated colleagues and subscriptions "to" or "both".
func watchedContacts(items []RosterItem, userID int64) []int64 {
	out := make([]int64, 0, len(items))
	for _, it := range items {
		if it.ContactID != 0 && it.ContactID != userID && (it.Subscription == "to" || it.Subscription == "both") {
			out = append(out, it.ContactID)
		}
	}
	return out
}
