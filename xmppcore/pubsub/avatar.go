package pubsub

import (
	"context"
	"crypto/sha1"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"

	"mellium.im/xmpp/jid"

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

// NSVCardConversion is advertised on accounts when avatars are kept in
// step between PEP and the vCard (XEP-0398).
const NSVCardConversion = "urn:xmpp:pep-vcard-conversion:0"

// PublishAvatar publishes a vCard PHOTO as the owner's XEP-0084 avatar
// (XEP-0398 §4): the image to urn:xmpp:avatar:data under its SHA-1, then
// its metadata; an empty binval publishes an empty metadata (avatar
// disabled). Contacts get the usual notifications.
func (s *Service) PublishAvatar(ctx context.Context, owner, mimeType, binval string) error {
	from, err := jid.Parse(owner)
	if err != nil || from.Localpart() == "" {
		return fmt.Errorf("pubsub: avatar of %q: not an account", owner)
	}
	r := &request{from: from, bare: owner, service: owner, pep: true, fromVCard: true,
		iq: xmppcore.NewElement(xmppcore.NSClient, "iq", "type", "set")}
	publish := func(node, id string, payload *xmppcore.Element) error {
		op := xmppcore.NewElement(NS, "publish", "node", node).AddChild(xmppcore.NewElement(NS, "item", "id", id).AddChild(payload))
		_, err := s.publish(ctx, r, op, xmppcore.NewElement(NS, "pubsub").AddChild(op))
		return err
	}
	meta := xmppcore.NewElement(nsAvatarMeta, "metadata")
	id := "current"
	if binval != "" {
		b64 := strings.Join(strings.Fields(binval), "")
		raw, err := base64.StdEncoding.DecodeString(b64)
		if err != nil {
			return fmt.Errorf("pubsub: avatar of %s: photo is not base64: %w", owner, err)
		}
		sum := sha1.Sum(raw)
		id = hex.EncodeToString(sum[:])
		data := xmppcore.NewElement(nsAvatarData, "data")
		data.Text = b64
		if err := publish(nsAvatarData, id, data); err != nil {
			return fmt.Errorf("pubsub: avatar data of %s: %w", owner, err)
		}
		if mimeType == "" {
			mimeType = "image/png"
		}
		meta.AddChild(xmppcore.NewElement(nsAvatarMeta, "info", "id", id, "type", mimeType, "bytes", strconv.Itoa(len(raw))))
	}
	if err := publish(nsAvatarMeta, id, meta); err != nil {
		return fmt.Errorf("pubsub: avatar metadata of %s: %w", owner, err)
	}
	r.runAfter()
	return nil
}
