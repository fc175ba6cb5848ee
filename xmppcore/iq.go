package xmppcore

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"time"

	"mellium.im/xmpp/jid"

	"vestnik/roster"
)

// Namespaces of the IQ services built in.
const (
	NSRoster     = "jabber:iq:roster"
	NSDiscoInfo  = "http://jabber.org/protocol/disco#info"
	NSDiscoItems = "http://jabber.org/protocol/disco#items"
	NSVCard      = "vcard-temp"
	NSPing       = "urn:xmpp:ping"
	NSLast       = "jabber:iq:last"
	NSVersion    = "jabber:iq:version"
	NSOffline    = "msgoffline"
)

// accountIQ are the namespaces the server answers on behalf of another
// user's bare JID (their vCard, last activity, disco); pubsub requests there, get and
// set, go to the PEP handler, which decides access.
var accountIQ = map[string]bool{NSVCard: true, NSLast: true, NSDiscoInfo: true, NSDiscoItems: true}

// builtinFeatures are the disco#info features of the server that are not
// IQ namespaces of their own.
var builtinFeatures = []string{NSOffline, NSStanzaID, NSCarbons, NSDiscoItems}

func (s *Server) registerBuiltins() {
	s.HandleIQ(NSRoster, s.iqRoster)
	s.HandleIQ(NSDiscoInfo, s.iqDiscoInfo)
	s.HandleIQ(NSDiscoItems, s.iqDiscoItems)
	s.HandleIQ(NSVCard, s.iqVCard)
	s.HandleIQ(NSPing, func(context.Context, *Session, *Element) (*Element, error) { return nil, nil })
	s.HandleIQ(NSCarbons, s.iqCarbons)
	s.HandleIQ(NSLast, s.iqLast)
	s.HandleIQ(NSBlocking, s.iqBlocking)
	s.HandleIQ(NSVersion, s.iqVersion)
	s.HandleIQ(NSSession, func(context.Context, *Session, *Element) (*Element, error) { return nil, nil })
	s.HandleIQ(NSCommands, s.iqCommand)
	for _, f := range builtinFeatures {
		s.AddFeature(f)
	}
}

// handleIQ dispatches an IQ from a session.
func (s *Server) handleIQ(ctx context.Context, sess *Session, el *Element) {
	typ := el.AttrValue("type")
	if typ != "get" && typ != "set" && typ != "result" && typ != "error" {
		sess.replyError(el, ErrBadRequest(""))
		return
	}
	to := el.AttrValue("to")
	toServer := to == "" || to == s.domain || to == sess.bareStr
	if !toServer {
		j, err := jid.Parse(to)
		if err != nil {
			sess.replyError(el, ErrJIDMalformed())
			return
		}
		if c := s.component(j.Domainpart()); c != nil {
			c.HandleStanza(ctx, sess.jid, el)
			return
		}
		if j.Domainpart() != s.domain {
			sess.replyError(el, ErrRemoteServerNotFound())
			return
		}
		if j.Localpart() == "" || j.Bare().String() == sess.bareStr && j.Resourcepart() == "" {
			toServer = true
		} else if j.Resourcepart() != "" {
			s.routeIQToResource(ctx, sess, el, j)
			return
		} else {
			// Another user's bare JID: the server answers for the account.
			if typ == "result" || typ == "error" {
				if typ == "result" && el.AttrValue("id") == "disco" {
					s.contactCapsResult(ctx, sess, to, el)
				}
				return
			}
			p := el.FirstChild()
			if p == nil || !(accountIQ[p.Name.Space] && typ == "get" || p.Name.Space == nsPubsub) {
				sess.replyError(el, ErrServiceUnavailable())
				return
			}
		}
	}
	if typ == "result" || typ == "error" {
		// Answers to the server's own requests.
		if to == sess.bareStr && typ == "result" {
			s.capsResult(ctx, sess, el)
		}
		return
	}
	if len(el.Children) != 1 {
		sess.replyError(el, ErrBadRequest(""))
		return
	}
	p := el.Children[0]
	h := s.iqHandler(p.Name.Space)
	if h == nil {
		sess.replyError(el, ErrServiceUnavailable())
		return
	}
	res, err := h(ctx, sess, el)
	if err != nil {
		var se *StanzaError
		if !errors.As(err, &se) {
			sess.logger().Error("iq handler", "ns", p.Name.Space, "err", err)
			se = ErrInternal()
		}
		sess.replyError(el, se)
		sess.runAfterReply()
		return
	}
	r := NewElement(NSClient, "iq", "type", "result", "id", el.AttrValue("id"), "to", sess.jidStr)
	if to != "" {
		r.SetAttr("from", to)
	}
	if res != nil {
		r.AddChild(res)
	}
	sess.deliver(r)
	sess.runAfterReply()
}

// afterReply schedules f to run once the current IQ has been answered
// (roster and blocklist pushes follow the result, as clients expect).
func (sess *Session) afterReply(f func()) {
	sess.mu.Lock()
	sess.after = append(sess.after, f)
	sess.mu.Unlock()
}

func (sess *Session) runAfterReply() {
	sess.mu.Lock()
	fs := sess.after
	sess.after = nil
	sess.mu.Unlock()
	for _, f := range fs {
		f()
	}
}

// routeIQToResource passes an IQ to another user's full JID.
func (s *Server) routeIQToResource(ctx context.Context, sess *Session, el *Element, j jid.JID) {
	acc, err := s.users.byLogin(ctx, j.Localpart())
	var t *Session
	if err == nil && acc.Active && !s.isBlocked(ctx, acc.ID, sess.bareStr) {
		t = s.router.session(acc.ID, j.Resourcepart())
	}
	if t == nil && acc != nil && acc.Active && !s.isBlocked(ctx, acc.ID, sess.bareStr) && s.sendRemote(acc.ID, j.Resourcepart(), el) {
		return
	}
	if t == nil {
		if typ := el.AttrValue("type"); typ == "get" || typ == "set" {
			sess.replyError(el, ErrServiceUnavailable())
		}
		return
	}
	t.deliver(el)
}

// --- roster (RFC 6121 section 2) ----------------------------------------------

func (s *Server) iqRoster(ctx context.Context, sess *Session, iq *Element) (*Element, error) {
	if to := iq.AttrValue("to"); to != "" && to != sess.bareStr {
		return nil, ErrForbidden("")
	}
	q := iq.Children[0]
	if iq.AttrValue("type") == "get" {
		items, err := s.dir.Roster(ctx, sess.userID)
		if err != nil {
			return nil, err
		}
		sess.rosterReq.Store(true)
		ver := s.rosterVer(ctx, sess.userID, items)
		res := NewElement(NSRoster, "query", "ver", ver)
		if roster.VersionCurrent(q.AttrValue("ver"), ver) {
			return nil, nil // RFC 6121 2.6.3: unchanged, pushes follow
		}
		for i := range items {
			res.AddChild(rosterItemElement(&items[i]))
		}
		return res, nil
	}
	if len(q.Children) != 1 || q.Children[0].Name.Local != "item" {
		return nil, ErrBadRequest("exactly one item")
	}
	item := q.Children[0]
	j, err := jid.Parse(item.AttrValue("jid"))
	if err != nil || j.Resourcepart() != "" {
		return nil, ErrBadRequest("bad jid")
	}
	bare := j.String()
	if bare == sess.bareStr {
		return nil, ErrNotAllowed("")
	}
	if item.AttrValue("subscription") == "remove" {
		var acc *Account
		peer := roster.Peer{JID: bare}
		if j.Domainpart() == s.domain {
			if a, err := s.users.byLogin(ctx, j.Localpart()); err == nil && a.Active {
				acc, peer = a, roster.Peer{ID: a.ID}
			}
		}
		before, err := s.dir.SubscriptionState(ctx, sess.userID, peer)
		if err != nil {
			return nil, err
		}
		if err := s.dir.RemoveRosterItem(ctx, sess.userID, bare); err != nil {
			if errors.Is(err, ErrNotFound) {
				return nil, ErrItemNotFound()
			}
			return nil, err
		}
		sess.afterReply(func() {
			s.pushRosterJID(ctx, sess.userID, bare)
			s.rewatch(ctx, sess.userID)
			s.removeSubscriptions(ctx, sess, bare, acc, before)
		})
		return nil, nil
	}
	it := RosterItem{JID: bare, Name: item.AttrValue("name")}
	seen := map[string]bool{}
	for _, g := range item.Children {
		if g.Name.Local != "group" {
			continue
		}
		if g.Text == "" {
			return nil, ErrNotAcceptable("empty group")
		}
		if seen[g.Text] {
			return nil, ErrBadRequest("duplicate group")
		}
		seen[g.Text] = true
		it.Groups = append(it.Groups, g.Text)
	}
	if err := s.dir.SetRosterItem(ctx, sess.userID, it); err != nil {
		if errors.Is(err, ErrNotFound) {
			return nil, &StanzaError{Type: ErrTypeCancel, Condition: "item-not-found", Text: "no such user"}
		}
		return nil, err
	}
	sess.afterReply(func() {
		s.pushRosterJID(ctx, sess.userID, bare)
		s.rewatch(ctx, sess.userID)
	})
	return nil, nil
}

func rosterItemElement(it *RosterItem) *Element {
	sub := it.Subscription
	if sub == "" {
		sub = "none"
	}
	el := NewElement(NSRoster, "item", "jid", it.JID, "subscription", sub)
	if it.Name != "" {
		el.SetAttr("name", it.Name)
	}
	if it.Ask {
		el.SetAttr("ask", "subscribe")
	}
	if it.Approved {
		el.SetAttr("approved", "true")
	}
	for _, g := range it.Groups {
		el.AddText(NSRoster, "group", g)
	}
	return el
}

// pushRoster sends a roster push with item to every session of the user
// that has asked for the roster; ver is the roster version after the
// change ("" for none).
func (s *Server) pushRoster(userID int64, item *Element, ver string) {
	for _, t := range s.router.sessions(userID) {
		if !t.rosterReq.Load() {
			continue
		}
		q := NewElement(NSRoster, "query")
		if ver != "" {
			q.SetAttr("ver", ver)
		}
		q.AddChild(item)
		iq := NewElement(NSClient, "iq", "type", "set", "id", "push"+randomID(6), "to", t.jidStr)
		iq.AddChild(q)
		t.deliver(iq)
	}
}

// pushRosterJID pushes the current state of one roster item (or its
// removal when it is gone).
func (s *Server) pushRosterJID(ctx context.Context, userID int64, bare string) {
	interested := false
	for _, t := range s.router.sessions(userID) {
		interested = interested || t.rosterReq.Load()
	}
	if !interested {
		return
	}
	items, err := s.dir.Roster(ctx, userID)
	if err != nil {
		s.log.Warn("roster push", "err", err)
		return
	}
	ver := s.rosterVer(ctx, userID, items)
	for i := range items {
		if items[i].JID == bare {
			s.pushRoster(userID, rosterItemElement(&items[i]), ver)
			return
		}
	}
	s.pushRoster(userID, NewElement(NSRoster, "item", "jid", bare, "subscription", "remove"), ver)
}

// pushContact pushes the roster item of a new personal contact to
// userID's sessions, if the user is online. The item is built from the
// directory entry (SPEC §4: the contact's primary department is its
// group) rather than by reloading the roster, which would cost two
// queries per first message between two people; a contact already in
// the roster (followed for presence) needs no push.
func (s *Server) pushContact(ctx context.Context, userID, contactID int64) {
	if s.cl != nil {
		if acc, err := s.users.byID(ctx, contactID); err == nil {
			s.clusterRosterPush(userID, s.bareJID(acc.Login))
		}
	}
	if len(s.router.sessions(userID)) == 0 || s.router.isWatching(userID, contactID) {
		return
	}
	acc, err := s.users.byID(ctx, contactID)
	if err != nil {
		return
	}
	it := RosterItem{JID: s.bareJID(acc.Login), ContactID: acc.ID, Name: acc.Name, Subscription: "both"}
	if len(acc.Departments) > 0 {
		it.Groups = []string{acc.Departments[0]}
	}
	s.pushRoster(userID, rosterItemElement(&it), "")
	if s.anyAvailable(userID) {
		s.router.addWatch(userID, contactID)
	}
}

// rewatch reloads which contacts' presence an available user follows.
func (s *Server) rewatch(ctx context.Context, userID int64) {
	if !s.anyAvailable(userID) {
		return
	}
	items, err := s.dir.Roster(ctx, userID)
	if err != nil {
		return
	}
	s.router.watch(userID, watchedContacts(items, userID))
}

// --- service discovery (XEP-0030) ---------------------------------------------

func (s *Server) iqDiscoInfo(ctx context.Context, sess *Session, iq *Element) (*Element, error) {
	q := iq.Children[0]
	res := NewElement(NSDiscoInfo, "query")
	if n := q.AttrValue("node"); n != "" {
		if r, ok := s.commandsDisco(sess, n, false); ok && iq.AttrValue("to") == s.domain {
			return r, nil
		}
		return nil, ErrItemNotFound()
	}
	to := iq.AttrValue("to")
	if to == s.domain {
		return s.serverInfo(), nil
	}
	// An account.
	res.AddChild(NewElement(NSDiscoInfo, "identity", "category", "account", "type", "registered"))
	res.AddChild(NewElement(NSDiscoInfo, "feature", "var", NSDiscoInfo))
	res.AddChild(NewElement(NSDiscoInfo, "feature", "var", NSDiscoItems))
	if s.iqHandler("urn:xmpp:mam:2") != nil && (to == "" || to == sess.bareStr) {
		res.AddChild(NewElement(NSDiscoInfo, "feature", "var", "urn:xmpp:mam:2"))
	}
	if s.pepService() != nil {
		// XEP-0163 §9.1: the account is a PEP service.
		res.Children = append(res.Children[:1:1], append([]*Element{NewElement(NSDiscoInfo, "identity", "category", "pubsub", "type", "pep")}, res.Children[1:]...)...)
		s.extMu.RLock()
		for _, f := range s.features {
			if f == nsPubsub || strings.HasPrefix(f, nsPubsub+"#") {
				res.AddChild(NewElement(NSDiscoInfo, "feature", "var", f))
			}
		}
		s.extMu.RUnlock()
	}
	seen := make(map[string]bool, len(res.Children))
	for _, c := range res.Children {
		seen[c.AttrValue("var")] = true
	}
	s.extMu.RLock()
	for _, f := range s.accountFeatures {
		if !seen[f] {
			res.AddChild(NewElement(NSDiscoInfo, "feature", "var", f))
		}
	}
	s.extMu.RUnlock()
	return res, nil
}

func (s *Server) iqDiscoItems(ctx context.Context, sess *Session, iq *Element) (*Element, error) {
	res := NewElement(NSDiscoItems, "query")
	if to := iq.AttrValue("to"); to != s.domain {
		// An account: its PEP nodes.
		return s.accountItems(ctx, sess, to)
	}
	if n := iq.Children[0].AttrValue("node"); n != "" {
		if r, ok := s.commandsDisco(sess, n, true); ok {
			return r, nil
		}
		return nil, ErrItemNotFound()
	}
	s.extMu.RLock()
	domains := make([]string, 0, len(s.components))
	for d := range s.components {
		domains = append(domains, d)
	}
	s.extMu.RUnlock()
	sortStrings(domains)
	for _, d := range domains {
		res.AddChild(NewElement(NSDiscoItems, "item", "jid", d))
	}
	return res, nil
}

// accountItems lists the PEP nodes of the account at to ("" is the
// session's own) that the session may see.
func (s *Server) accountItems(ctx context.Context, sess *Session, to string) (*Element, error) {
	owner := sess.bareStr
	if to != "" {
		j, err := jid.Parse(to)
		if err != nil || j.Localpart() == "" || j.Resourcepart() != "" {
			return nil, ErrItemNotFound()
		}
		owner = j.Bare().String()
		if owner != sess.bareStr {
			acc, err := s.users.byLogin(ctx, j.Localpart())
			if err != nil || !acc.Active {
				return nil, ErrItemNotFound()
			}
		}
	}
	p := s.pepService()
	if p == nil {
		return NewElement(NSDiscoItems, "query"), nil
	}
	return p.NodeItems(ctx, owner, sess.bareStr)
}

// --- vcard-temp (XEP-0054): the user's own, else from the org data -----------------------------------

func (s *Server) iqVCard(ctx context.Context, sess *Session, iq *Element) (*Element, error) {
	if iq.AttrValue("type") == "set" {
		return s.publishVCard(ctx, sess, iq)
	}
	login := sess.login
	if to := iq.AttrValue("to"); to != "" && to != sess.bareStr {
		j, err := jid.Parse(to)
		if err != nil || j.Localpart() == "" {
			return nil, ErrItemNotFound()
		}
		login = j.Localpart()
	}
	acc, err := s.users.byLogin(ctx, login)
	if err != nil {
		if errors.Is(err, ErrNotFound) {
			return nil, ErrItemNotFound()
		}
		return nil, err
	}
	return s.vCardOf(ctx, acc)
}

// --- carbons (XEP-0280) --------------------------------------------------------

func (s *Server) iqCarbons(ctx context.Context, sess *Session, iq *Element) (*Element, error) {
	if iq.AttrValue("type") != "set" {
		return nil, ErrBadRequest("")
	}
	switch iq.Children[0].Name.Local {
	case "enable":
		sess.carbons.Store(true)
	case "disable":
		sess.carbons.Store(false)
	default:
		return nil, ErrBadRequest("")
	}
	return nil, nil
}

// --- last activity (XEP-0012) -------------------------------------------------

var serverStarted = time.Now()

func (s *Server) iqLast(ctx context.Context, sess *Session, iq *Element) (*Element, error) {
	if iq.AttrValue("type") != "get" {
		return nil, ErrBadRequest("")
	}
	to := iq.AttrValue("to")
	res := NewElement(NSLast, "query")
	if to == "" {
		to = sess.bareStr
	}
	if to == s.domain {
		res.SetAttr("seconds", strconv.FormatInt(int64(time.Since(serverStarted).Seconds()), 10))
		return res, nil
	}
	j, err := jid.Parse(to)
	if err != nil || j.Localpart() == "" {
		return nil, ErrItemNotFound()
	}
	acc, err := s.users.byLogin(ctx, j.Localpart())
	if err != nil || !acc.Active {
		return nil, ErrItemNotFound()
	}
	if acc.ID != sess.userID && s.anyAvailable(acc.ID) {
		res.SetAttr("seconds", "0")
		return res, nil
	}
	at, status, err := s.store.lastSeen(ctx, acc.ID)
	if errors.Is(err, ErrNotFound) {
		return nil, ErrItemNotFound()
	} else if err != nil {
		return nil, err
	}
	res.SetAttr("seconds", strconv.FormatInt(int64(time.Since(at).Seconds()), 10))
	res.Text = status
	return res, nil
}

// --- software version (XEP-0092) ----------------------------------------------

func (s *Server) iqVersion(ctx context.Context, sess *Session, iq *Element) (*Element, error) {
	if to := iq.AttrValue("to"); to != "" && to != s.domain {
		return nil, ErrServiceUnavailable()
	}
	res := NewElement(NSVersion, "query")
	res.AddText(NSVersion, "name", "Vestnik")
	res.AddText(NSVersion, "version", "0.1")
	return res, nil
}

func sortStrings(a []string) {
	for i := 1; i < len(a); i++ {
		for j := i; j > 0 && a[j] < a[j-1]; j-- {
			a[j], a[j-1] = a[j-1], a[j]
		}
	}
}
