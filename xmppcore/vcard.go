package xmppcore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"
)

// MaxVCardSize bounds a vCard a user publishes, serialized, in bytes.
const MaxVCardSize = 64 << 10

// setVCard stores the user's own vCard (migration 0090).
func (st *store) setVCard(ctx context.Context, userID int64, vcard string) error {
	ctx, cancel := context.WithTimeout(ctx, queryTimeout)
	defer cancel()
	_, err := st.db.ExecContext(ctx, st.db.Rebind(`INSERT INTO xmpp_vcards (user_id, vcard, updated_at) VALUES (?, ?, ?)
		ON CONFLICT (user_id) DO UPDATE SET vcard = excluded.vcard, updated_at = excluded.updated_at`), userID, vcard, time.Now().UnixMicro())
	if err != nil {
		return fmt.Errorf("xmppcore: store vcard of %d: %w", userID, err)
	}
	return nil
}

// vCard returns the vCard the user published, ErrNotFound if none.
func (st *store) vCard(ctx context.Context, userID int64) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, queryTimeout)
	defer cancel()
	var v string
	err := st.db.GetContext(ctx, &v, st.db.Rebind(`SELECT vcard FROM xmpp_vcards WHERE user_id = ?`), userID)
	if errors.Is(err, sql.ErrNoRows) {
		return "", ErrNotFound
	} else if err != nil {
		return "", fmt.Errorf("xmppcore: vcard of %d: %w", userID, err)
	}
	return v, nil
}

// A vCard is the company directory's card with the user's own additions.
// The directory fields (FN, N, ORG, TITLE, EMAIL, TEL, and the server's
// JABBERID) come from HR and are read-only: a set that changes one is
// refused with not-allowed and a text naming it, and changes nothing. A
// set may repeat them unchanged (Gajim sends back the card it read, with a
// new PHOTO) or leave them out (a photo-only set): they stay. Everything
// else (PHOTO, NICKNAME, URL, BDAY, DESC, …) is the user's and replaced
// by each set; an empty set clears the user's part only.

// directoryFields are the vCard elements made from the org data.
var directoryFields = map[string]bool{"FN": true, "N": true, "ORG": true, "TITLE": true, "EMAIL": true, "TEL": true, "JABBERID": true}

// orgVCard is the directory's card of an account.
func (s *Server) orgVCard(acc *Account) *Element {
	v := NewElement(NSVCard, "vCard")
	v.AddText(NSVCard, "FN", acc.Name)
	n := NewElement(NSVCard, "N")
	if parts := strings.Fields(acc.Name); len(parts) > 1 {
		n.AddText(NSVCard, "FAMILY", strings.Join(parts[1:], " "))
		n.AddText(NSVCard, "GIVEN", parts[0])
	} else {
		n.AddText(NSVCard, "GIVEN", acc.Name)
	}
	v.AddChild(n)
	if len(acc.Departments) > 0 || acc.Org != "" {
		org := NewElement(NSVCard, "ORG")
		orgName := acc.Org
		if orgName == "" && len(acc.Departments) > 0 {
			orgName = acc.Departments[0]
		}
		org.AddText(NSVCard, "ORGNAME", orgName)
		for _, d := range acc.Departments {
			if d != orgName {
				org.AddText(NSVCard, "ORGUNIT", d)
			}
		}
		v.AddChild(org)
	}
	if acc.Title != "" {
		v.AddText(NSVCard, "TITLE", acc.Title)
	}
	if acc.Email != "" {
		e := NewElement(NSVCard, "EMAIL")
		e.AddChild(NewElement(NSVCard, "INTERNET"))
		e.AddText(NSVCard, "USERID", acc.Email)
		v.AddChild(e)
	}
	v.AddText(NSVCard, "JABBERID", s.bareJID(acc.Login))
	return v
}

// vCardOf is the card served for an account: the directory's fields and
// the user's own additions.
func (s *Server) vCardOf(ctx context.Context, acc *Account) (*Element, error) {
	v := s.orgVCard(acc)
	own, err := s.storedVCard(ctx, acc.ID)
	if err != nil {
		return nil, err
	}
	if own != nil {
		for _, c := range own.Children {
			if !directoryFields[c.Name.Local] {
				v.AddChild(c)
			}
		}
	}
	if v.Child("", "PHOTO") == nil {
		s.extMu.RLock()
		fb, ok := s.photoListener.(PhotoFallback)
		s.extMu.RUnlock()
		if ok {
			if mimeType, binval := fb.FallbackPhoto(ctx, acc.ID); binval != "" {
				p := NewElement(NSVCard, "PHOTO")
				p.AddText(NSVCard, "TYPE", mimeType)
				p.AddText(NSVCard, "BINVAL", binval)
				v.AddChild(p)
			}
		}
	}
	return v, nil
}

// PhotoFallback, when the photo listener has it, gives the photo of a
// user whose vCard has none of their own: the HR import's (package
// upload). binval is base64, "" when there is none. It may fetch the photo
// once (bounded by its own timeout).
type PhotoFallback interface {
	FallbackPhoto(ctx context.Context, userID int64) (mimeType, binval string)
}

// publishVCard handles a vcard-temp set: the user's own fields, bounded;
// the directory's may only be repeated unchanged.
func (s *Server) publishVCard(ctx context.Context, sess *Session, iq *Element) (*Element, error) {
	if to := iq.AttrValue("to"); to != "" && to != sess.bareStr {
		return nil, ErrForbidden("")
	}
	v := iq.Children[0]
	if v.Name.Local != "vCard" {
		return nil, ErrBadRequest("expected vCard")
	}
	if len(v.String()) > MaxVCardSize {
		return nil, ErrNotAcceptable("vCard too large")
	}
	acc, err := s.users.byID(ctx, sess.userID)
	if err != nil {
		return nil, err
	}
	org := s.orgVCard(acc)
	own := NewElement(NSVCard, "vCard")
	for _, c := range v.Children {
		name := c.Name.Local
		switch {
		case !directoryFields[name]:
			own.AddChild(c)
		case name == "JABBERID":
		case !sameField(org, v, name):
			return nil, ErrNotAllowed(name + " comes from the company directory and cannot be changed here; only your photo, nickname and other personal fields can")
		}
	}
	prev, err := s.storedVCard(ctx, sess.userID)
	if err != nil {
		return nil, err
	}
	if err := s.store.setVCard(ctx, sess.userID, own.String()); err != nil {
		return nil, err
	}
	// XEP-0398: a new PHOTO becomes the PEP avatar too, after the result.
	mime, photo := vCardPhoto(own)
	if _, was := vCardPhoto(prev); photo != was {
		s.photoChanged(ctx, sess.userID, mime, photo)
		// XEP-0153: the new hash in presence, after the result.
		userID := sess.userID
		sess.afterReply(func() { s.avatarChanged(context.WithoutCancel(ctx), userID) })
		if ap, ok := s.pepService().(AvatarPublisher); ok {
			ctx := context.WithoutCancel(ctx)
			owner := sess.bareStr
			sess.afterReply(func() {
				if err := ap.PublishAvatar(ctx, owner, mime, photo); err != nil {
					sess.logger().Warn("vcard photo to pep", "err", err)
				}
			})
		}
	}
	return nil, nil
}

// vCardPhoto returns the type and inline image of a vCard's PHOTO
// (whitespace removed), "" if none.
func vCardPhoto(v *Element) (mimeType, binval string) {
	if v == nil {
		return "", ""
	}
	p := v.Child("", "PHOTO")
	if p == nil {
		return "", ""
	}
	return strings.TrimSpace(p.ChildText("", "TYPE")), strings.Join(strings.Fields(p.ChildText("", "BINVAL")), "")
}

// SetVCardPhoto replaces the PHOTO of the account's own vCard fields
// (the PEP avatar conversion of XEP-0398 calls it); an empty binval
// removes it. The directory fields are not stored, so they stay. The
// photo listener hears of it.
func (s *Server) SetVCardPhoto(ctx context.Context, login, mimeType, binval string) error {
	id, err := s.setVCardPhoto(ctx, login, mimeType, binval)
	if err != nil {
		return err
	}
	s.photoChanged(ctx, id, mimeType, binval)
	// XEP-0153: the new hash in presence, once the listener has the
	// photo (a removed one may leave the HR photo to the vCard).
	s.avatarChanged(ctx, id)
	return nil
}

// PhotoListener hears of a photo a user set through XMPP: a vCard PHOTO
// (XEP-0054) or a PEP avatar (XEP-0084, converted by XEP-0398); binval is
// base64, "" when removed. The web client's photo store is one.
type PhotoListener interface {
	PhotoFromXMPP(ctx context.Context, userID int64, mimeType, binval string)
}

// SetPhotoListener installs the photo listener. Call before serving.
func (s *Server) SetPhotoListener(l PhotoListener) {
	s.extMu.Lock()
	s.photoListener = l
	s.extMu.Unlock()
}

func (s *Server) photoChanged(ctx context.Context, userID int64, mimeType, binval string) {
	s.extMu.RLock()
	l := s.photoListener
	s.extMu.RUnlock()
	if l != nil {
		l.PhotoFromXMPP(ctx, userID, mimeType, binval)
	}
}

// setVCardPhoto is SetVCardPhoto without telling the listener; it returns
// the account's id.
func (s *Server) setVCardPhoto(ctx context.Context, login, mimeType, binval string) (int64, error) {
	acc, err := s.users.byLogin(ctx, login)
	if err != nil {
		return 0, err
	}
	own, err := s.storedVCard(ctx, acc.ID)
	if err != nil {
		return 0, err
	}
	if own == nil {
		own = NewElement(NSVCard, "vCard")
	}
	own.RemoveChildren("", "PHOTO")
	if binval != "" {
		p := NewElement(NSVCard, "PHOTO")
		if mimeType != "" {
			p.AddText(NSVCard, "TYPE", mimeType)
		}
		p.AddText(NSVCard, "BINVAL", binval)
		own.AddChild(p)
	}
	raw := own.String()
	if len(raw) > MaxVCardSize {
		return 0, fmt.Errorf("xmppcore: vcard of %s: photo too large (%d bytes)", login, len(raw))
	}
	return acc.ID, s.store.setVCard(ctx, acc.ID, raw)
}

// sameField reports whether the elements named name in a and b hold the
// same values: their non-empty texts, whitespace collapsed, as a multiset
// (clients reorder N's parts and add empty MIDDLE or PREF elements).
func sameField(a, b *Element, name string) bool {
	values := func(v *Element) []string {
		var out []string
		var walk func(e *Element)
		walk = func(e *Element) {
			if t := strings.Join(strings.Fields(e.Text), " "); t != "" {
				out = append(out, t)
			}
			for _, c := range e.Children {
				walk(c)
			}
		}
		for _, c := range v.Children {
			if c.Name.Local == name {
				walk(c)
			}
		}
		sort.Strings(out)
		return out
	}
	x, y := values(a), values(b)
	if len(x) != len(y) {
		return false
	}
	for i := range x {
		if x[i] != y[i] {
			return false
		}
	}
	return true
}

// storedVCard returns the vCard the user published, nil if none.
func (s *Server) storedVCard(ctx context.Context, userID int64) (*Element, error) {
	raw, err := s.store.vCard(ctx, userID)
	if errors.Is(err, ErrNotFound) {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	els, err := ParseFragment(raw)
	if err != nil || len(els) != 1 {
		return nil, fmt.Errorf("xmppcore: stored vcard of %d: %v", userID, err)
	}
	return els[0], nil
}

// SetPhoto makes an image the account's photo for XMPP clients: the
// vCard PHOTO and, as XEP-0398 asks, the XEP-0084 avatar in PEP (when a
// PEP service is installed); an empty binval removes both. The web
// client's photo upload calls it (xmppcore/upload, photo.go); the photo
// listener is not told (it is the caller).
func (s *Server) SetPhoto(ctx context.Context, login, mimeType, binval string) error {
	id, err := s.setVCardPhoto(ctx, login, mimeType, binval)
	if err != nil {
		return err
	}
	s.avatarChanged(ctx, id) // XEP-0153: the new hash in presence
	if ap, ok := s.pepService().(AvatarPublisher); ok {
		if err := ap.PublishAvatar(ctx, s.bareJID(login), mimeType, binval); err != nil {
			return fmt.Errorf("xmppcore: avatar of %s: %w", login, err)
		}
	}
	return nil
}
