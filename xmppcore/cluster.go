package xmppcore

import (
	"context"
	"strconv"
	"sync"
	"time"

	"mellium.im/xmpp/jid"

	"vestnik/cluster"
)

// Cluster is what the router needs to reach sessions on other nodes that
// share the database (package cluster implements it over NATS). Options.Cluster
// nil means a single node. Delivery across nodes is best effort: a stanza
// lost between nodes costs latency, not a message, because archived
// messages are delivered from the archive (offline flush, delivery marks).
type Cluster interface {
	Register(s cluster.Session)
	SetPresence(userID int64, resource string, priority int, available bool, stanza string)
	Unregister(userID int64, resource string)
	Sessions(userID int64) []cluster.Session
	// SendUser reaches every other node holding a session of the user:
	// resource "" by RFC 6121 bare-JID rules on each, a resource only on
	// the node holding it, cluster.EverySession every session.
	SendUser(userID int64, resource, stanza string) bool
	// SendSeq is SendUser for an archived message with its delivery
	// sequence to the user (it crosses with the stanza).
	SendSeq(userID int64, resource string, seq int64, stanza string) bool
	Broadcast(stanza string) bool
	// WatchChat subscribes this node to a chat's traffic (on) or not;
	// SendChat reaches the other nodes watching the chat.
	WatchChat(chatID int64, on bool)
	SendChat(chatID int64, stanza string) bool
	// NotifyUser reaches the Broadcast of the nodes holding a session of
	// the user.
	NotifyUser(userID int64, stanza string) bool
	// Ask puts a question to every other node and waits (at most timeout)
	// until their answers went through this node's Broadcast; it returns
	// how many nodes did not answer.
	Ask(question string, timeout time.Duration) int
	Users() []int64  // the users with a session on another node
	Nodes() []string // the other live nodes
}

// clustered reports whether other nodes share this server's users now.
func (s *Server) clustered() bool { return s.cl != nil && len(s.cl.Nodes()) > 0 }

// ClusterComponent is a component whose live state is per node (MUC
// rooms: who is joined through this node). It gets what the same
// component on another node sent with BroadcastComponent.
type ClusterComponent interface {
	HandleCluster(ctx context.Context, el *Element)
}

// BroadcastComponent sends el, which comes from the component at a
// subdomain (its 'from'), to that component on every other node. Without
// a cluster it does nothing. It never blocks.
func (s *Server) BroadcastComponent(el *Element) {
	if s.cl != nil {
		s.cl.Broadcast(el.String())
	}
}

// BroadcastChat sends el, from the component at a subdomain, to that
// component on the other nodes that watch chat chatID (WatchChat). Without
// a cluster it does nothing. It never blocks.
func (s *Server) BroadcastChat(chatID int64, el *Element) {
	if s.cl != nil {
		s.cl.SendChat(chatID, el.String())
	}
}

// BroadcastUser sends el, from the component at a subdomain, to that
// component on the other nodes holding a session of the user (a notice
// about the user, e.g. a chat they were added to). Without a cluster it
// does nothing. It never blocks.
func (s *Server) BroadcastUser(userID int64, el *Element) {
	if s.cl != nil {
		s.cl.NotifyUser(userID, el.String())
	}
}

// AskComponents puts el, from the component at a subdomain, to that
// component on every other node (ClusterAnswerer) and waits, at most
// timeout, until their answers went through this node's HandleCluster.
// It returns how many nodes did not answer in time (0 without a cluster).
// It waits on the network: not for a goroutine that cluster traffic
// needs.
func (s *Server) AskComponents(el *Element, timeout time.Duration) int {
	if !s.clustered() {
		return 0
	}
	return s.cl.Ask(el.String(), timeout)
}

// ClusterAnswerer is a ClusterComponent that answers the same component's
// questions from other nodes (AskComponents): the answers go to the
// asking node's HandleCluster. It must not block.
type ClusterAnswerer interface {
	AnswerCluster(ctx context.Context, question *Element) []*Element
}

// Answer answers another node's question with the component of its
// 'from' domain.
func (h clusterHandler) Answer(x string) []string {
	s := h.s
	el := parseStanza(x)
	if el == nil {
		return nil
	}
	from, err := jid.Parse(el.AttrValue("from"))
	if err != nil {
		return nil
	}
	c, ok := s.component(from.Domainpart()).(ClusterAnswerer)
	if !ok {
		return nil
	}
	els := c.AnswerCluster(s.ctx, el)
	out := make([]string, len(els))
	for i, e := range els {
		out[i] = e.String()
	}
	return out
}

// WatchChat makes this node get what other nodes send for chat chatID
// with BroadcastChat (on), or stop getting it.
func (s *Server) WatchChat(chatID int64, on bool) {
	if s.cl != nil {
		s.cl.WatchChat(chatID, on)
	}
}

// nsCluster names the server's own notices between nodes.
const nsCluster = "urn:vestnik:cluster:0"

// clusterForgetBlocklist tells the other nodes to drop their cached copy
// of the user's blocklist (they check it for messages sent from there).
func (s *Server) clusterForgetBlocklist(userID int64) {
	if s.cl != nil {
		s.cl.Broadcast(NewElement(nsCluster, "blocklist", "user", strconv.FormatInt(userID, 10)).String())
	}
}

// Broadcast hands a component's stanza from another node to the local
// component of its 'from' domain, or applies the server's own notices.
func (h clusterHandler) Broadcast(x string) {
	s := h.s
	el := parseStanza(x)
	if el == nil {
		return
	}
	if el.Name.Space == nsCluster && el.Name.Local == "component" {
		s.clusterComponent(el) // component.go
		return
	}
	if el.Name.Space == nsCluster && el.Name.Local == "answer" {
		if len(el.Children) == 1 {
			s.answeredHere(el.Children[0])
		}
		return
	}
	if el.Name.Space == nsCluster && el.Name.Local == "announce" {
		if len(el.Children) == 1 {
			s.announceLocal(el.Children[0])
		}
		return
	}
	if el.Name.Space == nsCluster {
		id, err := strconv.ParseInt(el.AttrValue("user"), 10, 64)
		if err != nil {
			return
		}
		switch el.Name.Local {
		case "blocklist":
			s.blocks.mu.Lock()
			delete(s.blocks.lists, id)
			s.blocks.mu.Unlock()
		case "typing":
			s.clusterTyping(el)
		case "photo":
			s.tellPhoto(PhotoEvent{UserID: id, Version: el.AttrValue("version")})
		case "roster":
			// A new personal contact (the first message between two
			// people was stored on another node).
			if len(s.router.sessions(id)) > 0 {
				s.pushRosterJID(s.ctx, id, el.AttrValue("jid"))
				s.rewatch(s.ctx, id)
			}
		}
		return
	}
	from, err := jid.Parse(el.AttrValue("from"))
	if err != nil {
		return
	}
	if c, ok := s.component(from.Domainpart()).(ClusterComponent); ok {
		c.HandleCluster(s.ctx, el)
	}
}

// ClusterHandler returns what the cluster calls with stanzas, presence
// and kicks from other nodes.
func (s *Server) ClusterHandler() cluster.Handler { return clusterHandler{s} }

type clusterHandler struct{ s *Server }

// parseStanza reads one serialized stanza from another node.
func parseStanza(x string) *Element {
	els, err := ParseFragment(x)
	if err != nil || len(els) != 1 {
		return nil
	}
	return els[0]
}

// Stanza delivers a stanza another node routed to a local user: messages
// by the same RFC 6121 rules as local ones (and marked delivered here),
// roster pushes, presence and IQs to full JIDs.
func (h clusterHandler) Stanza(userID int64, resource string, seq int64, x string) {
	s := h.s
	el := parseStanza(x)
	if el == nil {
		s.log.Warn("cluster: unparsable stanza")
		return
	}
	ctx := s.ctx
	acc, err := s.users.byID(ctx, userID)
	if err != nil || !acc.Active {
		return
	}
	if resource == cluster.EverySession {
		s.sendToLocalUser(userID, el)
		return
	}
	switch el.Name.Local {
	case "message":
		toBare := s.bareJID(acc.Login)
		if el.AttrValue("from") == toBare && (el.Child(NSCarbons, "sent") != nil || el.Child(NSCarbons, "received") != nil) {
			// A carbon made on another node: for the sessions that
			// enabled carbons.
			for _, t := range s.router.sessions(acc.ID) {
				if t.carbons.Load() && t.available.Load() {
					c := el.ShallowCopy()
					c.SetAttr("to", t.jidStr)
					t.deliver(c)
				}
			}
			return
		}
		typ := el.AttrValue("type")
		if typ == "" {
			typ = "normal"
		}
		var id int64
		for _, c := range el.Children {
			if c.Name.Space == NSStanzaID && c.Name.Local == "stanza-id" && c.AttrValue("by") == toBare {
				id, _ = strconv.ParseInt(c.AttrValue("id"), 10, 64)
			}
		}
		if id == 0 {
			seq = 0
		}
		targets := s.routeLocalSeq(acc, resource, typ, el, id, seq)
		s.clusterMark(acc.ID, id, targets)
		if id != 0 && typ != "groupchat" && typ != "error" {
			if from, err := jid.Parse(el.AttrValue("from")); err == nil {
				s.checkUnreached(ctx, Unreached{UserID: acc.ID, Kind: "message", From: from.Bare().String(), Body: el.ChildText(NSClient, "body"), ID: id}, true)
			}
		}
		if carbonEligible(el, typ) {
			for _, t := range s.router.sessions(acc.ID) {
				if t.carbons.Load() && t.available.Load() && !containsSession(targets, t) {
					t.deliver(carbon("received", toBare, t.jidStr, el))
				}
			}
		}
	case "iq":
		if t := s.router.session(acc.ID, resource); t != nil {
			t.deliver(el)
		}
	case "presence":
		for _, t := range s.router.sessions(acc.ID) {
			if resource != "" && t.resource != resource {
				continue
			}
			if resource == "" && !t.available.Load() {
				continue
			}
			c := el.ShallowCopy()
			c.SetAttr("to", t.jidStr)
			t.deliver(c)
		}
	}
}

// Presence fans a remote session's presence out to the local sessions of
// the users watching it, and to the user's own local resources.
func (h clusterHandler) Presence(rs cluster.Session, x string) {
	s := h.s
	acc, err := s.users.byID(s.ctx, rs.UserID)
	if err != nil {
		return
	}
	var el *Element
	if x != "" {
		el = parseStanza(x)
	}
	if el == nil {
		el = NewElement(NSClient, "presence", "type", "unavailable")
	}
	el.SetAttr("from", s.bareJID(acc.Login)+"/"+rs.Resource)
	send := func(t *Session) {
		if !t.available.Load() {
			return
		}
		c := el.ShallowCopy()
		if t.userID == rs.UserID {
			c.SetAttr("to", t.jidStr)
		} else {
			c.SetAttr("to", t.bareStr)
		}
		t.deliver(c)
	}
	self := false
	for _, w := range s.router.watchersOf(rs.UserID) {
		self = self || w == rs.UserID
		for _, t := range s.router.sessions(w) {
			send(t)
		}
	}
	if !self {
		for _, t := range s.router.sessions(rs.UserID) {
			send(t)
		}
	}
	s.presenceChanged(rs.UserID)
	if !rs.Available {
		s.clusterSessionGone(s.bareJID(acc.Login) + "/" + rs.Resource)
	}
}

// ClusterSessionWatcher is a component with per-node state about sessions
// of other nodes (MUC occupants joined there): it is told when such a
// session ended or went unavailable, its node's death included.
type ClusterSessionWatcher interface {
	ClusterSessionGone(ctx context.Context, full string)
}

func (s *Server) clusterSessionGone(full string) {
	s.extMu.RLock()
	var ws []ClusterSessionWatcher
	for _, c := range s.components {
		if w, ok := c.(ClusterSessionWatcher); ok {
			ws = append(ws, w)
		}
	}
	s.extMu.RUnlock()
	for _, w := range ws {
		w.ClusterSessionGone(s.ctx, full)
	}
}

// Kick closes local sessions another node asked to close: a resource
// bound again on another node (the new session wins), or deactivation.
func (h clusterHandler) Kick(userID int64, resource, reason string) {
	why := closeConflict
	if reason == "deactivated" {
		why = closeDeactivated
	}
	for _, t := range h.s.router.sessions(userID) {
		if resource == "" || t.resource == resource {
			t.kill(why)
		}
	}
}

// clusterPresence tells the other nodes about a session's presence (el
// as broadcast: available, or unavailable).
func (s *Server) clusterPresence(sess *Session, el *Element) {
	if s.cl == nil {
		return
	}
	c := el.ShallowCopy()
	c.SetAttr("from", sess.jidStr)
	c.RemoveAttr("to")
	s.cl.SetPresence(sess.userID, sess.resource, int(sess.priority.Load()), sess.available.Load(), c.String())
}

// remotePresence returns the available presence of the user's sessions on
// other nodes, addressed to to.
func (s *Server) remotePresence(userID int64, login, to string) []*Element {
	if s.cl == nil {
		return nil
	}
	var out []*Element
	for _, rs := range s.cl.Sessions(userID) {
		if !rs.Available || rs.Presence == "" {
			continue
		}
		if p := parseStanza(rs.Presence); p != nil {
			p.SetAttr("from", s.bareJID(login)+"/"+rs.Resource)
			p.SetAttr("to", to)
			out = append(out, p)
		}
	}
	return out
}

// routeRemoteMessage sends a message for the user's bare JID to every
// other node holding a session of the user; each node applies the RFC
// 6121 rules to its own sessions with its own, fresh view (a session that
// became available a moment ago may not be in this node's mirror yet, so
// the message goes on the user's subject whatever the mirror says).
func (s *Server) routeRemoteMessage(to *Account, el *Element, seq int64) {
	if s.clustered() {
		s.cl.SendSeq(to.ID, "", seq, el.String())
	}
}

// clusterRosterPush asks the other nodes holding a session of userID to
// push the roster item of contact (a bare JID) to it. It goes on the
// user's subject, not to the nodes in the mirror: the user may have
// logged in elsewhere a moment ago (the subject is subscribed at binding).
func (s *Server) clusterRosterPush(userID int64, contact string) {
	if s.cl != nil {
		s.cl.NotifyUser(userID, NewElement(nsCluster, "roster", "user", strconv.FormatInt(userID, 10), "jid", contact).String())
	}
}

// clusterBind registers a bound session with the other nodes.
func (s *Server) clusterBind(sess *Session) {
	if s.cl != nil {
		s.cl.Register(cluster.Session{UserID: sess.userID, Resource: sess.resource})
	}
}

// clusterUnbind unregisters an ended session, unless a newer local
// session took its resource.
func (s *Server) clusterUnbind(sess *Session) {
	if s.cl != nil && s.router.session(sess.userID, sess.resource) == nil {
		s.cl.Unregister(sess.userID, sess.resource)
	}
}

// sendRemote sends el to the user's resource on another node; false when
// no other node holds it (as far as this node's mirror knows).
func (s *Server) sendRemote(userID int64, resource string, el *Element) bool {
	return s.sendRemoteSeq(userID, resource, el, 0)
}

// sendRemoteSeq is sendRemote for an archived message with its delivery
// sequence to the user.
func (s *Server) sendRemoteSeq(userID int64, resource string, el *Element, seq int64) bool {
	if s.cl == nil {
		return false
	}
	for _, rs := range s.cl.Sessions(userID) {
		if rs.Resource == resource {
			return s.cl.SendSeq(userID, resource, seq, el.String())
		}
	}
	return false
}

// sendRemoteAll sends el to the user's available sessions on every other
// node (directed presence to a bare JID).
func (s *Server) sendRemoteAll(userID int64, el *Element) {
	if s.clustered() {
		s.cl.SendUser(userID, "", el.String())
	}
}

// remoteCarbon sends a XEP-0280 carbon of msg (kind sent or received) to
// the user's sessions on other nodes; each node gives it to the available
// sessions that enabled carbons.
func (s *Server) remoteCarbon(userID int64, kind, bare string, msg *Element) {
	if !s.clustered() {
		return
	}
	c := carbon(kind, bare, "", msg)
	c.RemoveAttr("to")
	s.cl.SendUser(userID, "", c.String())
}

// sendRemoteEvery sends el to every session of the user on other nodes.
func (s *Server) sendRemoteEvery(userID int64, el *Element) {
	if s.clustered() {
		s.cl.SendUser(userID, cluster.EverySession, el.String())
	}
}

// clusterMarks is the set of users whose pending delivery mark the
// cluster mark writer is to store. Its mutex guards the map only.
type clusterMarks struct {
	mu    sync.Mutex
	users map[int64]struct{}
	wake  chan struct{}
}

// clusterMark has the delivery mark stored soon (not every MarkInterval)
// when an archived message reached a local session: in a cluster the
// user may log in on another node next, whose offline flush cannot see
// this node's pending mark. It never waits for the database.
func (s *Server) clusterMark(userID, id int64, delivered []*Session) {
	if id == 0 || len(delivered) == 0 || !s.clustered() {
		return
	}
	m := &s.clMarks
	m.mu.Lock()
	if m.users == nil {
		m.users = map[int64]struct{}{}
	}
	m.users[userID] = struct{}{}
	m.mu.Unlock()
	select {
	case m.wake <- struct{}{}:
	default:
	}
}

// clusterMarkLoop stores the marks clusterMark asked for; a burst of
// messages to one user costs one write.
func (s *Server) clusterMarkLoop() {
	m := &s.clMarks
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-m.wake:
		}
		m.mu.Lock()
		users := m.users
		m.users = nil
		m.mu.Unlock()
		for id := range users {
			u := s.router.entry(id)
			if u == nil {
				continue
			}
			u.deliverMu.Lock()
			err := s.writeMark(s.ctx, u)
			u.deliverMu.Unlock()
			if err != nil && s.ctx.Err() == nil {
				s.log.Warn("mark delivered", "err", err)
			}
		}
	}
}

// clusterLateFlush runs the offline flush of a session that just became
// available once more, ClusterLateFlush later: a message archived on
// another node before that node heard of the session was neither routed
// here nor there when the first flush ran.
func (s *Server) clusterLateFlush(sess *Session) {
	if !s.clustered() {
		return
	}
	time.AfterFunc(ClusterLateFlush, func() {
		if s.closed.Load() || sess.ended.Load() || !sess.available.Load() || sess.priority.Load() < 0 {
			return
		}
		s.start("late flush", func() { s.flushOffline(s.ctx, sess) })
	})
}
