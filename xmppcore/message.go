package xmppcore

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"strconv"
	"time"

	"mellium.im/xmpp/jid"

	"vestnik/xmppcore/mam"
	"vestnik/xmppcore/rich"
)

// Namespaces of message extensions handled here.
const (
	NSStanzaID = "urn:xmpp:sid:0"     // XEP-0359
	NSCarbons  = "urn:xmpp:carbons:2" // XEP-0280
	NSForward  = "urn:xmpp:forward:0" // XEP-0297
	NSHints    = "urn:xmpp:hints"     // XEP-0334
)

// handleMessage processes a message from a session.
func (s *Server) handleMessage(ctx context.Context, sess *Session, el *Element) {
	s.sendMessage(ctx, sess, el)
}

// HandleMessage processes a message from the session like Handle, and
// returns the archive id of a stored personal message (0 when the
// message was not archived: chat states, receipts, groupchat, errors).
func (sess *Session) HandleMessage(ctx context.Context, el *Element) (int64, error) {
	if sess.ended.Load() {
		return 0, errSessionEnded
	}
	el.Name = xml.Name{Space: NSClient, Local: "message"}
	el.SetAttr("from", sess.jidStr)
	sess.lastActive.Store(time.Now().Unix())
	return sess.srv.sendMessage(ctx, sess, el)
}

func (s *Server) sendMessage(ctx context.Context, sess *Session, el *Element) (int64, error) {
	to := el.AttrValue("to")
	if to == "" {
		return 0, nil // to the account itself: nothing to do
	}
	j, err := jid.Parse(to)
	if err != nil {
		sess.replyError(el, ErrJIDMalformed())
		return 0, ErrJIDMalformed()
	}
	if c := s.component(j.Domainpart()); c != nil {
		c.HandleStanza(ctx, sess.jid, el)
		return 0, nil
	}
	if j.Domainpart() != s.domain {
		sess.replyError(el, ErrRemoteServerNotFound())
		return 0, ErrRemoteServerNotFound()
	}
	if j.Localpart() == "" {
		if el.AttrValue("type") != "error" && el.AttrValue("type") != "groupchat" && el.AttrValue("type") != "headline" {
			sess.replyError(el, ErrServiceUnavailable())
		}
		return 0, nil
	}
	acc, err := s.users.byLogin(ctx, j.Localpart())
	if err != nil || !acc.Active {
		if err != nil && !errors.Is(err, ErrNotFound) {
			sess.logger().Warn("look up recipient", "err", err)
			sess.replyError(el, ErrInternal())
			return 0, err
		}
		sess.replyError(el, ErrServiceUnavailable())
		return 0, ErrServiceUnavailable()
	}
	if s.isBlocked(ctx, sess.userID, j.Bare().String()) {
		// XEP-0191 §3.5: not-acceptable, type cancel, with the
		// blocking condition.
		e := &StanzaError{Type: ErrTypeCancel, Condition: "not-acceptable", Text: "You have blocked this JID"}
		r := ErrorReply(el, e)
		r.SetAttr("to", sess.jidStr)
		r.Child(NSClient, "error").AddChild(NewElement(NSBlockingErrors, "blocked"))
		sess.deliver(r)
		return 0, e
	}
	if s.isBlocked(ctx, acc.ID, sess.bareStr) {
		sess.replyError(el, ErrServiceUnavailable())
		return 0, ErrServiceUnavailable()
	}
	if ok, err := s.changeFromClient(ctx, sess, acc, el); ok {
		return 0, err
	}
	s.readFromClient(ctx, sess, acc, el) // read.go
	s.directInvite(ctx, sess, j, el)
	id, err := s.deliverPersonal(ctx, sess.userID, sess.login, sess.resource, sess, acc, j.Resourcepart(), el)
	if err != nil {
		return 0, s.refused(sess, el, err)
	}
	return id, nil
}

// refused answers a message the server could not take with the stanza
// error for err, and returns that error.
func (s *Server) refused(sess *Session, el *Element, err error) error {
	var e *StanzaError
	switch {
	case errors.Is(err, ErrBadReply):
		e = ErrNotAcceptable("no such message to reply to")
	case errors.Is(err, ErrRich):
		e = ErrBadRequest(err.Error())
	case errors.Is(err, mam.ErrInvalid):
		e = ErrPolicyViolation("message too large")
	default:
		sess.logger().Error("store message", "err", err)
		sess.replyError(el, ErrInternal())
		return err
	}
	sess.replyError(el, e)
	return e
}

// SendPersonal sends a personal chat message on behalf of a user from a
// door that is not an XMPP session (REST): the same path as a message
// from a client: archived, stanza-id, routed or left for offline
// delivery, carbons to the sender's resources.
func (s *Server) SendPersonal(ctx context.Context, fromUserID, toUserID int64, body string) (int64, error) {
	return s.SendPersonalReply(ctx, fromUserID, toUserID, body, 0)
}

// SendPersonalReply is SendPersonal answering message replyTo (an
// archive id; 0: none), as a XEP-0461 reply: ErrBadReply when the sender
// may not see that message in this conversation.
func (s *Server) SendPersonalReply(ctx context.Context, fromUserID, toUserID int64, body string, replyTo int64) (int64, error) {
	return s.SendPersonalRich(ctx, fromUserID, toUserID, &rich.Content{Text: body}, replyTo)
}

// SendPersonalRich is SendPersonalReply with rich content: BB-coded
// text, an attachment and a keyboard (RichMessage; an invalid one is
// ErrRich). Content that is plain text is sent as it is.
func (s *Server) SendPersonalRich(ctx context.Context, fromUserID, toUserID int64, c *rich.Content, replyTo int64) (int64, error) {
	body, richEl, err := RichMessage(c)
	if err != nil {
		return 0, err
	}
	from, err := s.users.byID(ctx, fromUserID)
	if err != nil {
		return 0, fmt.Errorf("xmppcore: send personal: sender %d: %w", fromUserID, err)
	}
	to, err := s.users.byID(ctx, toUserID)
	if err != nil {
		return 0, fmt.Errorf("xmppcore: send personal: recipient %d: %w", toUserID, err)
	}
	if !from.Active || !to.Active {
		return 0, fmt.Errorf("xmppcore: send personal: %w", ErrNotFound)
	}
	el := NewElement(NSClient, "message", "type", "chat", "id", randomID(9),
		"from", s.bareJID(from.Login), "to", s.bareJID(to.Login))
	el.AddText(NSClient, "body", body)
	if richEl != nil {
		el.AddChild(richEl)
	}
	if replyTo != 0 {
		r, err := s.ReplyElement(ctx, from.ID, mam.Ref{ID: replyTo, With: to.ID})
		if err != nil {
			return 0, err
		}
		el.AddChild(r)
	}
	return s.deliverPersonal(ctx, from.ID, from.Login, "", nil, to, "", el)
}

// deliverPersonal archives a personal message (when it has a body and is
// chat or normal), then routes it to the recipient's sessions and sends
// carbons. sess is the sending session (nil from REST). A stream's
// message is held (held.go): routed once numbered, its reader goes on
// while it waits for the commit, and an error comes as a stanza error;
// it returns 0 then. Other doors get the archive id after the commit.
func (s *Server) deliverPersonal(ctx context.Context, fromID int64, fromLogin, fromRes string, sess *Session, to *Account, toRes string, el *Element) (int64, error) {
	typ := el.AttrValue("type")
	if typ == "" {
		typ = "normal"
	}
	el.RemoveChildren(NSStanzaID, "stanza-id") // only the server sets these
	body := el.Child(NSClient, "body")
	if (typ != "chat" && typ != "normal") || body == nil {
		s.routePersonal(ctx, fromID, fromLogin, sess, to, toRes, typ, el, 0, 0)
		return 0, nil
	}
	if text, kids, ok, err := NormalizeRich(el.Children); err != nil {
		return 0, err
	} else if ok {
		el.Children = kids
		body.Text = text
	}
	kids, files, err := AttachFiles(ctx, s.opts.Files, body.Text, el.Children)
	if err != nil {
		return 0, err
	}
	el.Children = kids
	replyTo, err := s.markReply(ctx, fromID, to.ID, el)
	if err != nil {
		return 0, err
	}
	m := &ArchivedMessage{
		FromID: fromID, ToID: to.ID, FromResource: fromRes,
		OriginID: originID(el), Body: body.Text, Payload: payloadOf(el), Lang: el.Lang(), Files: files, ReplyTo: replyTo,
	}
	// store archives m, routing it as soon as it is numbered (before the
	// commit on SQLite), and closes routed (if not nil) once it is routed
	// or refused.
	store := func(routed chan struct{}) error {
		var out *Element
		early := false
		newContact, err := s.arch.Append(ctx, m, func(committed bool) {
			early = !committed
			out = s.routePersonal(ctx, fromID, fromLogin, sess, to, toRes, typ, el, m.ID, m.Seq)
			if routed != nil {
				close(routed)
				routed = nil
			}
		})
		if routed != nil {
			close(routed)
		}
		if err != nil {
			if early {
				s.log.Error("a message routed before its commit was not stored", "id", m.ID, "from", fromID, "to", to.ID, "err", err)
			}
			return err
		}
		if early {
			// Routed before the commit: a session of the recipient's
			// that came up meanwhile read the archive (offline delivery)
			// without it. What no client has and no stream holds goes
			// now; the rest is known and skipped.
			s.routeLocalSeq(to, toRes, typ, out, m.ID, m.Seq)
		}
		if newContact {
			s.pushContact(ctx, fromID, to.ID)
			s.pushContact(ctx, to.ID, fromID)
		}
		s.checkUnreached(ctx, Unreached{UserID: to.ID, Kind: "message", From: s.bareJID(fromLogin), Body: m.Body, ID: m.ID}, false)
		return nil
	}
	if sess != nil {
		if release := sess.holdStanza(); release != nil {
			routed := make(chan struct{})
			s.start("store message", func() {
				defer release()
				if err := store(routed); err != nil {
					s.refused(sess, el, err)
				}
			})
			<-routed
			return 0, nil
		}
	}
	if err := store(nil); err != nil {
		return 0, err
	}
	return m.ID, nil
}

// routePersonal routes a personal message (archived as id, or 0 when it
// is not archived) to the recipient's sessions and sends carbons to both
// users' other sessions; it returns the recipient's copy. sess is the
// sending session (nil from REST).
func (s *Server) routePersonal(ctx context.Context, fromID int64, fromLogin string, sess *Session, to *Account, toRes, typ string, el *Element, id, seq int64) *Element {
	toBare := s.bareJID(to.Login)
	out := el
	if id != 0 {
		out = el.ShallowCopy()
		out.AddChild(NewElement(NSStanzaID, "stanza-id", "id", strconv.FormatInt(id, 10), "by", toBare))
	}
	targets := s.routeMessage(ctx, to, toRes, typ, out, id, seq)
	if carbonEligible(el, typ) {
		fromBare := s.bareJID(fromLogin)
		// Sent carbons to the sender's other resources.
		var sentCopy *Element
		for _, t := range s.router.sessions(fromID) {
			if t == sess || !t.carbons.Load() || !t.available.Load() {
				continue
			}
			if sentCopy == nil {
				sentCopy = el
				if id != 0 {
					sentCopy = el.ShallowCopy()
					sentCopy.AddChild(NewElement(NSStanzaID, "stanza-id", "id", strconv.FormatInt(id, 10), "by", fromBare))
				}
			}
			t.deliver(carbon("sent", fromBare, t.jidStr, sentCopy))
		}
		if s.cl != nil {
			sc := el
			if id != 0 {
				sc = el.ShallowCopy()
				sc.AddChild(NewElement(NSStanzaID, "stanza-id", "id", strconv.FormatInt(id, 10), "by", fromBare))
			}
			s.remoteCarbon(fromID, "sent", fromBare, sc)
		}
		// Received carbons to the recipient's resources that did not get it.
		for _, t := range s.router.sessions(to.ID) {
			if !t.carbons.Load() || !t.available.Load() || containsSession(targets, t) {
				continue
			}
			t.deliver(carbon("received", toBare, t.jidStr, out))
		}
	}
	return out
}

// routeMessage delivers a message to a user's sessions by RFC 6121 rules
// and returns the sessions that got it. With an archive id it takes the
// user's delivery lock, so a concurrent offline flush does not double it.
func (s *Server) routeMessage(ctx context.Context, to *Account, toRes, typ string, el *Element, id, seq int64) []*Session {
	if s.cl == nil {
		return s.routeLocalSeq(to, toRes, typ, el, id, seq)
	}
	// In a cluster: a full JID held by another node goes there; otherwise
	// the local sessions and each other node apply the rules to their own.
	if toRes != "" && s.router.session(to.ID, toRes) == nil && s.sendRemoteSeq(to.ID, toRes, el, seq) {
		return nil
	}
	local := s.routeLocalSeq(to, toRes, typ, el, id, seq)
	s.clusterMark(to.ID, id, local)
	if typ != "error" && typ != "groupchat" && (toRes == "" || s.router.session(to.ID, toRes) == nil) {
		s.routeRemoteMessage(to, el, seq)
	}
	return local
}

// routeLocalSeq applies the RFC 6121 rules to the sessions on this node;
// an archived message (id, delivery sequence seq) goes to none when one
// of the user's clients has it or a stream holds it (given by an offline
// flush meanwhile).
func (s *Server) routeLocalSeq(to *Account, toRes, typ string, el *Element, id, seq int64) []*Session {
	u := s.router.entry(to.ID)
	if u == nil {
		return nil
	}
	if id != 0 {
		u.deliverMu.Lock()
		defer u.deliverMu.Unlock()
		if seq != 0 && !u.dl.loaded {
			if err := s.loadMark(s.ctx, u); err != nil {
				s.log.Warn("delivery mark", "user", u.id, "err", err)
			}
		}
		if _, done := u.flushed[id]; done || u.dl.known(id, seq) {
			return nil
		}
		if u.dl.see(seq) {
			// Above a sequence not seen here (a stanza lost between
			// nodes): the archive gives it if it does not come soon.
			s.gapSoon(u)
		}
	}
	sessions := s.router.sessions(to.ID)
	var targets []*Session
	if toRes != "" {
		for _, t := range sessions {
			if t.resource == toRes {
				if !t.ended.Load() {
					targets = append(targets, t)
				}
				break
			}
		}
		if targets == nil && (typ == "groupchat" || typ == "error") {
			return nil
		}
	}
	if targets == nil {
		switch typ {
		case "error", "groupchat":
			return nil
		case "normal":
			best := int32(-1)
			for _, t := range sessions {
				if t.available.Load() && t.priority.Load() > best {
					best = t.priority.Load()
				}
			}
			for _, t := range sessions {
				if best >= 0 && t.available.Load() && t.priority.Load() == best {
					targets = append(targets, t)
				}
			}
		default: // chat, headline
			for _, t := range sessions {
				if t.available.Load() && t.priority.Load() >= 0 {
					targets = append(targets, t)
				}
			}
		}
	}
	delivered := targets[:0:0]
	confirm := false
	for _, t := range targets {
		// A message to the bare JID keeps it as 'to' (RFC 6121 §8.5.2.1.1
		// delivers, it does not readdress); one to a resource names it.
		c := el
		if len(targets) > 1 || (toRes != "" && el.AttrValue("to") != t.jidStr) {
			c = el.ShallowCopy()
			if toRes != "" {
				c.SetAttr("to", t.jidStr)
			}
		}
		if t.deliver(c) {
			delivered = append(delivered, t)
			if id == 0 {
				continue
			}
			if t.defersMark() {
				// Confirmed when the client acks it (conn.acked).
				u.dl.give(id, seq)
			} else {
				confirm = true
			}
		}
	}
	if confirm {
		// The mark moves in memory; it is stored later (before an
		// offline flush, when the user's last session ends, and every
		// MarkInterval), not with one more transaction per message.
		s.confirmed(u, id, seq)
	}
	return delivered
}

func containsSession(list []*Session, s *Session) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func carbonEligible(el *Element, typ string) bool {
	if typ != "chat" && !(typ == "normal" && el.Child(NSClient, "body") != nil) {
		return false
	}
	return el.Child(NSCarbons, "private") == nil && el.Child(NSHints, "no-copy") == nil
}

// carbon wraps msg in a XEP-0280 sent or received envelope.
func carbon(kind, from, to string, msg *Element) *Element {
	env := NewElement(NSClient, "message", "from", from, "to", to, "type", msg.AttrValue("type"))
	w := NewElement(NSCarbons, kind)
	f := NewElement(NSForward, "forwarded")
	f.AddChild(msg)
	w.AddChild(f)
	env.AddChild(w)
	return env
}

// originID is the client's id of a message: its origin-id (XEP-0359),
// else the stanza id attribute.
func originID(el *Element) string {
	if o := el.Child(NSStanzaID, "origin-id"); o != nil {
		if v := o.AttrValue("id"); v != "" {
			return v
		}
	}
	return el.AttrValue("id")
}

// payloadOf serializes the children of a message other than its body and
// what the server adds, to be replayed from the archive.
func payloadOf(el *Element) string {
	var b []byte
	for _, c := range el.Children {
		switch {
		case c.Name.Space == NSClient && c.Name.Local == "body":
		case c.Name.Space == NSStanzaID && c.Name.Local == "stanza-id":
		case c.Name.Space == NSDelay:
		default:
			b = c.AppendXML(b, NSClient)
		}
	}
	return string(b)
}

// archivedStanza rebuilds a personal message from the archive for
// delivery to sess, with a delay stamp (offline delivery).
func (s *Server) archivedStanza(ctx context.Context, m *ArchivedMessage, to string, toBare string) (*Element, error) {
	from, err := s.users.byID(ctx, m.FromID)
	if err != nil {
		return nil, err
	}
	fromJID := s.bareJID(from.Login)
	if m.FromResource != "" {
		fromJID += "/" + m.FromResource
	}
	el := NewElement(NSClient, "message", "from", fromJID, "to", to, "type", "chat")
	if m.OriginID != "" {
		el.SetAttr("id", m.OriginID)
	}
	if m.Lang != "" {
		el.Attr = append(el.Attr, xmlLangAttr(m.Lang))
	}
	if children, err := ParseFragment(m.Payload); err == nil {
		el.Children = append(el.Children, children...)
	}
	el.AddText(NSClient, "body", m.Body)
	el.AddChild(NewElement(NSStanzaID, "stanza-id", "id", strconv.FormatInt(m.ID, 10), "by", toBare))
	el.AddChild(delayElement(s.domain, m.CreatedAt, "Offline Storage"))
	return el, nil
}

// Route sends a stanza from a service (MUC, notifications) by its 'to':
// a full JID to that session, a bare JID by RFC 6121 rules, a component's
// domain to the component. It never blocks and never archives.
func (s *Server) Route(ctx context.Context, el *Element) {
	j, err := jid.Parse(el.AttrValue("to"))
	if err != nil {
		return
	}
	if c := s.component(j.Domainpart()); c != nil {
		from, _ := jid.Parse(el.AttrValue("from"))
		c.HandleStanza(ctx, from, el)
		return
	}
	if j.Domainpart() != s.domain || j.Localpart() == "" {
		if j.String() == s.domain && el.Name.Local == "iq" {
			if t := el.AttrValue("type"); t == "result" || t == "error" {
				s.answered(el) // a reply to the server's own request (SendIQ)
			}
		}
		return
	}
	acc, err := s.users.byLogin(ctx, j.Localpart())
	if err != nil {
		return
	}
	switch el.Name.Local {
	case "message":
		typ := el.AttrValue("type")
		if typ == "" {
			typ = "normal"
		}
		s.routeMessage(ctx, acc, j.Resourcepart(), typ, el, 0, 0)
	case "presence":
		found := false
		for _, t := range s.router.sessions(acc.ID) {
			if j.Resourcepart() != "" && t.resource != j.Resourcepart() {
				continue
			}
			found = true
			t.deliver(el)
		}
		if !found && j.Resourcepart() != "" {
			s.sendRemote(acc.ID, j.Resourcepart(), el)
		}
	case "iq":
		if r := j.Resourcepart(); r != "" {
			if t := s.router.session(acc.ID, r); t != nil {
				t.deliver(el)
				return
			}
			if s.sendRemote(acc.ID, r, el) {
				return
			}
		}
		switch el.AttrValue("type") {
		case "get", "set":
			s.routeError(ctx, el, ErrServiceUnavailable())
		case "result", "error":
			if j.Resourcepart() == "" {
				s.answered(el) // to the server's IQ sent for the account (SendIQ)
			}
		}
	}
}

// routeError bounces a stanza back to its sender.
func (s *Server) routeError(ctx context.Context, el *Element, e *StanzaError) {
	if el.AttrValue("type") == "error" || el.AttrValue("from") == "" {
		return
	}
	s.Route(ctx, ErrorReply(el, e))
}
