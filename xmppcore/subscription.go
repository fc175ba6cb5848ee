package xmppcore

import (
	"context"
	"errors"
	"time"

	"vestnik/roster"
)

// Presence subscriptions (RFC 6121 §3). The state machine is the roster
// package's (roster.Transition); here each subscription stanza is applied
// to the sender's side (outbound) and, when the contact is an employee, to
// the contact's side (inbound), and the parties are told: roster pushes to
// the sessions that asked for the roster, the stanza to the contact, the
// presence that starts or stops flowing. Generated colleagues are "both"
// from the start and stay so. There is no server-to-server: a request to
// another domain stays pending and is answered remote-server-not-found.

// Stream features of RFC 6121 and XEP-0237.
const (
	NSPreApproval = "urn:xmpp:features:pre-approval"
	NSRosterVer   = "urn:xmpp:features:rosterver"
)

// subParty is one side of a subscription: a local account, or a bare JID
// that is no account (acc nil).
type subParty struct {
	acc  *Account
	bare string
}

func (p subParty) peer() roster.Peer {
	if p.acc != nil {
		return roster.Peer{ID: p.acc.ID}
	}
	return roster.Peer{JID: p.bare}
}

// handleSubscription processes subscribe, subscribed, unsubscribe and
// unsubscribed from sess to the bare JID bare (acc: its account, nil when
// it is none; local: bare is on this server's domain).
func (s *Server) handleSubscription(ctx context.Context, sess *Session, el *Element, typ, bare string, acc *Account, local bool) {
	if s.isBlocked(ctx, sess.userID, bare) {
		// XEP-0191 §3.5: nothing goes to a contact the user blocked.
		sess.replyError(el, &StanzaError{Type: ErrTypeCancel, Condition: "not-acceptable", Text: "You have blocked this JID"})
		return
	}
	if acc != nil && s.isBlocked(ctx, acc.ID, sess.bareStr) {
		// The contact blocked the user: dropped unseen (§3.5).
		return
	}
	user := subParty{acc: s.accountOf(ctx, sess), bare: sess.bareStr}
	contact := subParty{acc: acc, bare: bare}
	// The stanza as the contact gets it: from the user's bare JID.
	fwd := el.ShallowCopy()
	fwd.SetAttr("from", sess.bareStr)
	fwd.SetAttr("to", bare)
	fail := func(err error) {
		if errors.Is(err, roster.ErrLimit) {
			sess.replyError(el, ErrResourceConstraint())
		} else {
			sess.replyError(el, ErrInternal())
		}
	}
	switch typ {
	case "subscribe":
		if acc != nil && fwd.Size() > roster.MaxPendingStanza {
			// Too big to keep for the contact: refused before anything
			// changes.
			fail(roster.ErrLimit)
			return
		}
		if _, err := s.subscribeOp(ctx, user, contact, roster.OutSubscribe, ""); err != nil {
			fail(err)
			return
		}
		switch {
		case acc != nil:
			if err := s.inboundSubscribe(ctx, user, contact, fwd); err != nil {
				fail(err)
			}
		case local:
			// RFC 6121 §3.1.3: no such user, the request is refused.
			s.inbound(ctx, user, contact, roster.InUnsubscribed,
				NewElement(NSClient, "presence", "from", bare, "to", sess.bareStr, "type", "unsubscribed"))
		default:
			sess.replyError(el, ErrRemoteServerNotFound())
		}
	case "subscribed":
		r, err := s.subscribeOp(ctx, user, contact, roster.OutSubscribed, "")
		if err != nil {
			fail(err)
			return
		}
		if acc == nil {
			return
		}
		if r.After.From() {
			s.inbound(ctx, contact, user, roster.InSubscribed, fwd)
			s.sendPresenceOf(ctx, sess.userID, contact, true)
		}
		if r.After.To() {
			// Probe for the user (RFC 6121 §3.1.5 with §4.3).
			s.sendPresenceOf(ctx, acc.ID, user, false)
		}
	case "unsubscribe":
		if _, err := s.subscribeOp(ctx, user, contact, roster.OutUnsubscribe, ""); err != nil || acc == nil {
			if err != nil {
				fail(err)
			}
			return
		}
		s.inboundUnsubscribe(ctx, user, contact, fwd)
	case "unsubscribed":
		r, err := s.subscribeOp(ctx, user, contact, roster.OutUnsubscribed, "")
		if err != nil || acc == nil {
			if err != nil {
				fail(err)
			}
			return
		}
		s.inbound(ctx, contact, user, roster.InUnsubscribed, fwd)
		if r.Before.From() && !r.After.From() {
			s.sendUnavailableOf(sess.userID, contact)
		}
	}
}

// accountOf returns the session's account (from the session when the
// directory cannot be read: only its id and login are used).
func (s *Server) accountOf(ctx context.Context, sess *Session) *Account {
	acc, err := s.users.byID(ctx, sess.userID)
	if err != nil {
		return &Account{ID: sess.userID, Login: sess.login, Active: true}
	}
	return acc
}

// subscribeOp applies op to who's side of the subscription with other,
// then pushes the changed item to who's interested sessions and updates
// which contacts who follows.
func (s *Server) subscribeOp(ctx context.Context, who, other subParty, op roster.SubOp, request string) (roster.SubResult, error) {
	r, err := s.dir.Subscribe(ctx, who.acc.ID, other.peer(), op, request)
	if err != nil {
		if !errors.Is(err, roster.ErrLimit) {
			s.log.Warn("subscription", "user", who.acc.ID, "op", int(op), "err", err)
		}
		return r, err
	}
	if r.ItemChanged {
		s.pushRosterJID(ctx, who.acc.ID, other.bare)
		if s.cl != nil {
			s.clusterRosterPush(who.acc.ID, other.bare)
		}
		if r.Before.To() != r.After.To() && other.acc != nil {
			s.rewatch(ctx, who.acc.ID)
		}
	}
	return r, nil
}

// inboundSubscribe delivers a subscription request from user to contact
// (RFC 6121 §3.1.3): answered at once when the contact is already
// subscribed or pre-approved it, else stored and given to the contact's
// available resources (and again at each of their available presence
// until answered).
func (s *Server) inboundSubscribe(ctx context.Context, user, contact subParty, req *Element) error {
	rc, err := s.subscribeOp(ctx, contact, user, roster.InSubscribe, req.String())
	if err != nil {
		return err
	}
	if rc.After.From() {
		// Already subscribed, or pre-approved (§3.4): the contact's
		// server answers for them.
		s.inbound(ctx, user, contact, roster.InSubscribed,
			NewElement(NSClient, "presence", "from", contact.bare, "to", user.bare, "type", "subscribed"))
		s.sendPresenceOf(ctx, contact.acc.ID, user, false)
		return nil
	}
	// Receipt acknowledged with the contact's unavailable (as Prosody
	// does; nothing of the contact's presence is revealed).
	s.toAvailable(user.acc.ID, NewElement(NSClient, "presence", "from", contact.bare, "to", user.bare, "type", "unavailable"))
	if !rc.Before.PendingIn && rc.After.PendingIn {
		s.toAvailable(contact.acc.ID, req)
	}
	return nil
}

// inboundUnsubscribe applies the user's unsubscribe to the contact's side
// (RFC 6121 §3.3.3): the contact stops sending presence and says so with
// unavailable.
func (s *Server) inboundUnsubscribe(ctx context.Context, user, contact subParty, fwd *Element) {
	rc := s.inbound(ctx, contact, user, roster.InUnsubscribe, fwd)
	if rc.Before.From() && !rc.After.From() {
		s.sendUnavailableOf(contact.acc.ID, user)
	}
}

// inbound applies op to who's side (an account) and, when it changed
// something, gives el to who's sessions that asked for the roster (RFC
// 6121 §3: subscribed, unsubscribe and unsubscribed go to "interested
// resources"), then pushes the item.
func (s *Server) inbound(ctx context.Context, who, other subParty, op roster.SubOp, el *Element) roster.SubResult {
	r, err := s.dir.Subscribe(ctx, who.acc.ID, other.peer(), op, "")
	if err != nil {
		s.log.Warn("subscription", "user", who.acc.ID, "op", int(op), "err", err)
		return r
	}
	// A generated colleague's approval is told too (the client asked,
	// the item was "both" already), as before subscriptions existed.
	told := r.ItemChanged || r.Before.PendingIn != r.After.PendingIn || (op == roster.InSubscribed && r.After.Generated)
	if !told {
		return r
	}
	for _, t := range s.router.sessions(who.acc.ID) {
		if t.rosterReq.Load() {
			t.deliver(el)
		}
	}
	s.sendRemoteAll(who.acc.ID, el)
	if r.ItemChanged {
		s.pushRosterJID(ctx, who.acc.ID, other.bare)
		if s.cl != nil {
			s.clusterRosterPush(who.acc.ID, other.bare)
		}
		if r.Before.To() != r.After.To() {
			s.rewatch(ctx, who.acc.ID)
		}
	}
	return r
}

// toAvailable gives el to the user's available sessions, here and on the
// other nodes.
func (s *Server) toAvailable(userID int64, el *Element) {
	for _, t := range s.router.sessions(userID) {
		if t.available.Load() {
			t.deliver(el)
		}
	}
	s.sendRemoteAll(userID, el)
}

// sendPresenceOf sends the current presence of each available resource of
// userID to the bare JID of to (with the time it was set, XEP-0203).
// With none available it sends nothing when onlyAvailable, else the
// user's unavailable presence with the time last seen (a probe's answer).
func (s *Server) sendPresenceOf(ctx context.Context, userID int64, to subParty, onlyAvailable bool) {
	if to.acc == nil {
		return
	}
	from, err := s.users.byID(ctx, userID)
	if err != nil {
		return
	}
	if s.isBlocked(ctx, userID, to.bare) || s.isBlocked(ctx, to.acc.ID, s.bareJID(from.Login)) {
		return
	}
	sent := false
	for _, p := range s.availablePresence(from, to.bare) {
		s.toAvailable(to.acc.ID, p)
		sent = true
	}
	if sent || onlyAvailable {
		return
	}
	p := NewElement(NSClient, "presence", "from", s.bareJID(from.Login), "to", to.bare, "type", "unavailable")
	if at, status, err := s.store.lastSeen(ctx, from.ID); err == nil {
		if status != "" {
			p.AddText(NSClient, "status", status)
		}
		p.AddChild(delayElement(s.domain, at, ""))
	}
	s.toAvailable(to.acc.ID, p)
}

// availablePresence returns the presence of acc's available resources
// (on this node and the others) addressed to to, each with the time it
// was set.
func (s *Server) availablePresence(acc *Account, to string) []*Element {
	var out []*Element
	for _, cs := range s.router.sessions(acc.ID) {
		if !cs.available.Load() {
			continue
		}
		p := cs.presence.Load()
		if p == nil {
			continue
		}
		c := p.ShallowCopy()
		c.SetAttr("from", cs.jidStr)
		c.SetAttr("to", to)
		if at := cs.presenceAt.Load(); at != 0 && c.Child(NSDelay, "delay") == nil {
			c.Children = append(c.Children, delayElement(s.domain, time.UnixMicro(at), ""))
		}
		out = append(out, c)
	}
	out = append(out, s.remotePresence(acc.ID, acc.Login, to)...)
	return out
}

// sendUnavailableOf sends unavailable from each available resource of
// userID to the bare JID of to: the presence it got stops (a cancelled
// subscription, a removed contact, a block).
func (s *Server) sendUnavailableOf(userID int64, to subParty) {
	if to.acc == nil {
		return
	}
	for _, cs := range s.router.sessions(userID) {
		if cs.available.Load() {
			s.toAvailable(to.acc.ID, NewElement(NSClient, "presence", "from", cs.jidStr, "to", to.bare, "type", "unavailable"))
		}
	}
	if s.cl != nil {
		for _, rs := range s.cl.Sessions(userID) {
			if rs.Available {
				if acc, err := s.users.byID(s.ctx, userID); err == nil {
					s.toAvailable(to.acc.ID, NewElement(NSClient, "presence", "from", s.bareJID(acc.Login)+"/"+rs.Resource, "to", to.bare, "type", "unavailable"))
				}
			}
		}
	}
}

// removeSubscriptions ends the subscriptions of a roster item the user
// removed (RFC 6121 §2.5.3): unsubscribed for the contact's subscription
// (or waiting request), unsubscribe for the user's own. before is the
// state before the removal.
func (s *Server) removeSubscriptions(ctx context.Context, sess *Session, bare string, acc *Account, before roster.SubState) {
	if before.Generated || acc == nil {
		return
	}
	user := subParty{acc: s.accountOf(ctx, sess), bare: sess.bareStr}
	contact := subParty{acc: acc, bare: bare}
	if before.From() || before.PendingIn {
		s.inbound(ctx, contact, user, roster.InUnsubscribed,
			NewElement(NSClient, "presence", "from", sess.bareStr, "to", bare, "type", "unsubscribed"))
		if before.From() {
			s.sendUnavailableOf(sess.userID, contact)
		}
	}
	if before.To() || before.Ask {
		s.inboundUnsubscribe(ctx, user, contact,
			NewElement(NSClient, "presence", "from", sess.bareStr, "to", bare, "type", "unsubscribe"))
	}
}

// deliverPending gives a session that became available the subscription
// requests waiting for its user, as they were sent (XEP-0379 tokens
// included).
func (s *Server) deliverPending(ctx context.Context, sess *Session) {
	reqs, err := s.dir.PendingRequests(ctx, sess.userID)
	if err != nil {
		sess.logger().Warn("pending subscription requests", "err", err)
		return
	}
	for _, p := range reqs {
		from := p.JID
		if p.ContactID != 0 {
			from = s.bareJID(p.Login)
		}
		el := parseStanza(p.Stanza)
		if el == nil || el.Name.Local != "presence" {
			el = NewElement(NSClient, "presence")
		}
		el.SetAttr("type", "subscribe")
		el.SetAttr("from", from)
		el.SetAttr("to", sess.bareStr)
		sess.deliver(el)
	}
}

// blockPresence tells a contact whose presence subscription stands that
// the user blocked (unavailable from each resource) or unblocked them
// (current presence), XEP-0191 §3.3 and §3.4.
func (s *Server) blockPresence(ctx context.Context, sess *Session, jids []string, blocked bool) {
	for _, j := range jids {
		local, domain, ok := cutJID(j)
		if !ok || domain != s.domain {
			continue
		}
		acc, err := s.users.byLogin(ctx, local)
		if err != nil || !acc.Active {
			continue
		}
		st, err := s.dir.SubscriptionState(ctx, sess.userID, roster.Peer{ID: acc.ID})
		if err != nil || !st.From() {
			continue
		}
		contact := subParty{acc: acc, bare: j}
		if blocked {
			for _, cs := range s.router.sessions(sess.userID) {
				if cs.available.Load() {
					s.toAvailable(acc.ID, NewElement(NSClient, "presence", "from", cs.jidStr, "to", j, "type", "unavailable"))
				}
			}
			continue
		}
		s.sendPresenceOf(ctx, sess.userID, contact, true)
	}
}

// cutJID splits a bare JID into localpart and domain.
func cutJID(bare string) (local, domain string, ok bool) {
	for i := 0; i < len(bare); i++ {
		if bare[i] == '@' {
			return bare[:i], bare[i+1:], i > 0
		}
	}
	return "", bare, false
}

// rosterVer is the roster version for pushes and results.
func (s *Server) rosterVer(ctx context.Context, userID int64, items []RosterItem) string {
	v, err := s.dir.RosterVersion(ctx, userID, items)
	if err != nil {
		s.log.Warn("roster version", "err", err)
		return ""
	}
	return v
}
