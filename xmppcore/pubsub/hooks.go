package pubsub

import (
	"context"
	"strings"

	"vestnik/xmppcore"
)

// Hooks for the XMPP core: PEP needs to answer disco#items on an
// account's bare JID and to send the last items when a contact comes
// online (XEP-0163 §6.2); the core owns both events and calls these.

// NodeItems returns the disco#items of an account's PEP nodes, as seen
// by viewer (a bare JID): nodes viewer may read, named by their title.
func (s *Service) NodeItems(ctx context.Context, owner, viewer string) (*xmppcore.Element, error) {
	nodes, err := s.store.Nodes(ctx, owner)
	if err != nil {
		return nil, err
	}
	q := xmppcore.NewElement(nsDiscoItems, "query")
	for i := range nodes {
		n := &nodes[i]
		if owner != viewer && !s.visible(ctx, n, viewer) {
			continue
		}
		it := xmppcore.NewElement(nsDiscoItems, "item", "jid", owner, "node", n.Name)
		if n.Config.Title != "" {
			it.SetAttr("name", n.Config.Title)
		}
		q.AddChild(it)
	}
	return q, nil
}

// visible: may viewer (a bare JID of this server) read the PEP node?
func (s *Service) visible(ctx context.Context, n *Node, viewer string) bool {
	switch n.Config.AccessModel {
	case "open", "presence", "roster":
		return true
	}
	aff, err := s.store.AffiliationOf(ctx, n, viewer)
	return err == nil && (aff == "owner" || aff == "member" || aff == "publisher" || aff == "publish-only")
}

// SendLastItems sends to (a full JID) the last item of every PEP node of
// owner that is configured on_sub_and_presence, that to may read and
// that wants accepts (nil: all): the core calls it when a session of
// owner or of a contact becomes available, with the client's +notify
// features (XEP-0115).
func (s *Service) SendLastItems(ctx context.Context, owner, to string, wants func(node string) bool) error {
	nodes, err := s.store.Nodes(ctx, owner)
	if err != nil {
		return err
	}
	viewer := to
	if i := strings.IndexByte(to, '/'); i >= 0 {
		viewer = to[:i]
	}
	for i := range nodes {
		n := &nodes[i]
		if n.Name == nsBookmarks || n.Config.SendLast != "on_sub_and_presence" || !n.Config.Notify || wants != nil && !wants(n.Name) {
			continue
		}
		if viewer != owner && !s.visible(ctx, n, viewer) {
			continue
		}
		last, err := s.store.Items(ctx, n, nil, 1)
		if err != nil {
			return err
		}
		if len(last) == 0 {
			continue
		}
		ev := xmppcore.NewElement(NSEvent, "items", "node", n.Name).AddChild(s.itemElement(NSEvent, owner, n, &last[0], true))
		s.sendEvent(ctx, owner, to, n, ev)
	}
	return nil
}
