package muc_test

import (
	"crypto/sha1"
	"encoding/base64"
	"encoding/hex"
	"testing"

	"github.com/jmoiron/sqlx"

	"vestnik/migrations/dbtest"
)

// TestOccupantAvatarUpdate: a user who changes their vCard photo while in
// a room gets a new occupant presence there with the new XEP-0153 hash
// (the core sends the presence again to what got it directed).
func TestOccupantAvatarUpdate(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlx.DB) {
		w := newWorld(t, db)
		o := w.login(t, "petrova", "pc")
		m := w.login(t, "smirnov", "pc")
		room := "avatars@conference." + domain
		join(o, room, "Owner")
		openRoom(o, room)
		join(m, room, "Member")
		o.Expect("from='"+room+"/Member'", "<photo></photo>")
		img := []byte("a new face")
		sum := sha1.Sum(img)
		m.Send(`<iq type='set' id='v1'><vCard xmlns='vcard-temp'><PHOTO><TYPE>image/png</TYPE><BINVAL>` +
			base64.StdEncoding.EncodeToString(img) + `</BINVAL></PHOTO></vCard></iq>`)
		m.Expect("id='v1'", "type='result'")
		o.Expect("from='"+room+"/Member'", "muc#user", "<photo>"+hex.EncodeToString(sum[:])+"</photo>")
	})
}
