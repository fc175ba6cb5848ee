package xmppcore

import (
	"crypto/sha1"
	"encoding/base64"
	"encoding/hex"
	"strings"
	"testing"

	"github.com/jmoiron/sqlx"

	"vestnik/migrations/dbtest"
)

// TestAvatarHashInPresence: the server puts the XEP-0153 hash of the
// user's vCard photo in their available presence, replacing the client's
// (stale or empty) one — broadcast and directed — and sends presence again
// when the photo changes.
func TestAvatarHashInPresence(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlx.DB) {
		e := newEnv(t, db)
		alice := e.online("alice", "pc")
		bob := e.online("bob", "pc")
		// No photo: an empty <photo/>, whatever the client said.
		if p := alice.expect(`<presence from='bob@example.test/pc'[^>]*>.*?</presence>`)[0]; !strings.Contains(p, `<x xmlns='vcard-temp:x:update'><photo/></x>`) {
			t.Errorf("presence of a user without a photo: got %s, want an empty <photo/>", p)
		}
		bob.send(`<presence><show>away</show><x xmlns='vcard-temp:x:update'><photo>0123456789abcdef0123456789abcdef01234567</photo></x></presence>`)
		p := alice.expect(`<presence from='bob@example.test/pc'[^>]*>.*?</presence>`)[0]
		if !strings.Contains(p, `<show>away</show>`) || !strings.Contains(p, `<x xmlns='vcard-temp:x:update'><photo/></x>`) || strings.Contains(p, "0123456789") {
			t.Errorf("client's stale hash: got %s, want the server's empty <photo/>", p)
		}

		// A photo set in the vCard: presence again, with its SHA-1, to
		// the contacts and the user's own session.
		img := []byte("\x89PNG\r\n\x1a\n not really a png, but bytes")
		sum := sha1.Sum(img)
		hash := hex.EncodeToString(sum[:])
		bob.send(`<iq type='set' id='v1'><vCard xmlns='vcard-temp'><PHOTO><TYPE>image/png</TYPE><BINVAL>%s</BINVAL></PHOTO></vCard></iq>`,
			base64.StdEncoding.EncodeToString(img))
		bob.expect(`<iq type='result' id='v1'`)
		p = alice.expect(`<presence from='bob@example.test/pc'[^>]*>.*?</presence>`)[0]
		if !strings.Contains(p, `<photo>`+hash+`</photo>`) || !strings.Contains(p, `<show>away</show>`) {
			t.Errorf("after a new photo: got %s, want <photo>%s</photo> with the last show", p, hash)
		}
		bob.expect(`<presence from='bob@example.test/pc' to='bob@example.test/pc'>.*?<photo>` + hash + `</photo>`)

		// Directed presence and a later client's presence carry it too.
		bob.send(`<presence to='carol@example.test'/>`)
		carol := e.pipe("carol/pc")
		carol.login("carol", "pc", false)
		bob.send(`<presence to='carol@example.test/pc'><x xmlns='vcard-temp:x:update'/></presence>`)
		carol.expect(`<presence [^>]*from='bob@example.test/pc'[^>]*>.*?<photo>` + hash + `</photo>`)
		bob.send(`<presence/>`)
		alice.expect(`<presence from='bob@example.test/pc'[^>]*><x xmlns='vcard-temp:x:update'><photo>` + hash + `</photo></x></presence>`)

		// Removed: an empty <photo/> again.
		bob.send(`<iq type='set' id='v2'><vCard xmlns='vcard-temp'/></iq>`)
		bob.expect(`<iq type='result' id='v2'`)
		alice.expect(`<presence from='bob@example.test/pc'[^>]*><x xmlns='vcard-temp:x:update'><photo/></x></presence>`)
		// Unavailable presence carries none.
		bob.send(`<presence type='unavailable'/>`)
		if p := alice.expect(`<presence [^>]*type='unavailable'[^>]*(/>|>.*?</presence>)`)[0]; strings.Contains(p, "vcard-temp") {
			t.Errorf("unavailable: got %s, want no avatar update", p)
		}
	})
}
