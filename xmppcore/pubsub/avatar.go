package pubsub

import (
	"context"
	"strings"

	"vestnik/xmppcore"
)

// XEP-0084 user avatar nodes.
const (
	nsAvatarMeta = "urn:xmpp:avatar:metadata"
	nsAvatarData = "urn:xmpp:avatar:data"
)

// avatarToVCard copies the avatar a user just announced in their PEP
// metadata node to their vCard PHOTO (XEP-0398 §3): the inline image of
// the data node whose item id the metadata names; an empty <metadata/>
// (avatar disabled) removes the photo. An avatar only at a URL, or whose
// data was not published, leaves the vCard as it is.
func (s *Service) avatarToVCard(ctx context.Context, owner string, meta *xmppcore.Element) {
	login, _, ok := strings.Cut(owner, "@")
	if !ok || meta == nil || meta.Name.Space != nsAvatarMeta {
		return
	}
	var info *xmppcore.Element
	for _, c := range meta.Children {
		if c.Name.Local == "info" && c.AttrValue("url") == "" {
			info = c
			break
		}
	}
	if info == nil {
		if len(meta.Children) == 0 {
			s.setPhoto(ctx, login, "", "")
		}
		return
	}
	n, err := s.store.Node(ctx, owner, nsAvatarData)
	if err != nil {
		return
	}
	items, err := s.store.Items(ctx, n, []string{info.AttrValue("id")}, 1)
	if err != nil || len(items) == 0 {
		return
	}
	els, err := xmppcore.ParseFragment(items[0].Payload)
	if err != nil || len(els) != 1 || els[0].Name.Space != nsAvatarData {
		return
	}
	s.setPhoto(ctx, login, info.AttrValue("type"), strings.TrimSpace(els[0].Text))
}

func (s *Service) setPhoto(ctx context.Context, login, mimeType, binval string) {
	if err := s.opts.Photos.SetVCardPhoto(ctx, login, mimeType, binval); err != nil {
		s.log.Warn("avatar to vcard", "login", login, "err", err)
	}
}
