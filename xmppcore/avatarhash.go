package xmppcore

import (
	"context"
	"crypto/sha1"
	"encoding/base64"
	"encoding/hex"
	"sync"
	"time"
)

// NSVCardUpdate is XEP-0153's avatar hash in presence.
const NSVCardUpdate = "vcard-temp:x:update"

// The server announces each user's avatar in their available presence
// (XEP-0153, as Prosody's vcard_legacy does): the SHA-1 of the photo the
// user's vCard serves — their own PHOTO (set by vCard, by a XEP-0084
// avatar through XEP-0398, or by the web client), else the HR photo —
// replacing whatever <x xmlns='vcard-temp:x:update'/> the client sent
// (a client that has not read the vCard sends an empty or stale one).

// PhotoFallbackHash, when the photo listener has it, gives the XEP-0153
// hash (hex SHA-1 of the image) of the photo PhotoFallback would give,
// without fetching anything: known is false while the HR photo is not
// fetched from its current URL.
type PhotoFallbackHash interface {
	FallbackPhotoHash(ctx context.Context, userID int64) (hash string, known bool)
}

// avatarCache keeps users' avatar hashes for AvatarHashTTL: a change on
// this node drops the entry at once (avatarChanged); one made on another
// node of a cluster is seen here within the TTL.
type avatarCache struct {
	mu sync.Mutex // guards m (a leaf lock)
	m  map[int64]avatarEntry
}

type avatarEntry struct {
	hash  string
	known bool
	at    time.Time
}

// avatarHash is the user's avatar hash: "" with known for no avatar,
// known false when it cannot be told now (the HR photo not fetched yet,
// a database error).
func (s *Server) avatarHash(ctx context.Context, userID int64) (hash string, known bool) {
	c := &s.avatars
	c.mu.Lock()
	e, ok := c.m[userID]
	c.mu.Unlock()
	if ok && time.Since(e.at) < AvatarHashTTL {
		return e.hash, e.known
	}
	hash, known = s.computeAvatarHash(ctx, userID)
	c.mu.Lock()
	if c.m == nil || len(c.m) >= AvatarHashCacheSize {
		c.m = map[int64]avatarEntry{}
	}
	c.m[userID] = avatarEntry{hash: hash, known: known, at: time.Now()}
	c.mu.Unlock()
	return hash, known
}

func (s *Server) computeAvatarHash(ctx context.Context, userID int64) (string, bool) {
	own, err := s.storedVCard(ctx, userID)
	if err != nil {
		s.log.Warn("avatar hash", "user", userID, "err", err)
		return "", false
	}
	if _, binval := vCardPhoto(own); binval != "" {
		raw, err := base64.StdEncoding.DecodeString(binval)
		if err != nil {
			return "", false
		}
		sum := sha1.Sum(raw)
		return hex.EncodeToString(sum[:]), true
	}
	s.extMu.RLock()
	fb, ok := s.photoListener.(PhotoFallbackHash)
	s.extMu.RUnlock()
	if !ok {
		return "", true
	}
	return fb.FallbackPhotoHash(ctx, userID)
}

// stampAvatar replaces the avatar update of an available presence from
// sess with the server's: <photo>hash</photo>, <photo/> for none, no
// <photo/> (XEP-0153: not ready to advertise) when it is not known yet.
func (s *Server) stampAvatar(ctx context.Context, sess *Session, el *Element) {
	el.RemoveChildren(NSVCardUpdate, "x")
	x := NewElement(NSVCardUpdate, "x")
	if hash, known := s.avatarHash(ctx, sess.userID); known {
		x.AddText(NSVCardUpdate, "photo", hash)
	}
	el.AddChild(x)
}

// avatarChanged forgets the user's avatar hash and sends each available
// session's presence again with the new one — to the contacts and to
// what got its directed presence (rooms included) — as a XEP-0153
// client does after changing its avatar. It runs on the caller's
// goroutine and only queues stanzas.
func (s *Server) avatarChanged(ctx context.Context, userID int64) {
	s.avatars.mu.Lock()
	delete(s.avatars.m, userID)
	s.avatars.mu.Unlock()
	for _, sess := range s.router.sessions(userID) {
		if !sess.available.Load() || sess.ended.Load() {
			continue
		}
		p := NewElement(NSClient, "presence")
		if old := sess.presence.Load(); old != nil {
			p = old.ShallowCopy()
			p.Children = append([]*Element(nil), old.Children...)
		}
		s.stampAvatar(ctx, sess, p)
		p.RemoveAttr("to")
		sess.presence.Store(p)
		s.broadcastPresence(sess, p)
		sess.mu.Lock()
		targets := make([]string, 0, len(sess.directed))
		for to := range sess.directed {
			targets = append(targets, to)
		}
		sess.mu.Unlock()
		for _, to := range targets {
			d := p.ShallowCopy()
			d.SetAttr("from", sess.jidStr)
			d.SetAttr("to", to)
			s.handlePresence(ctx, sess, d)
		}
	}
}
