package api

import (
	"context"
	"fmt"
	"net/url"
	"testing"

	"github.com/jmoiron/sqlx"

	"vestnik/migrations/dbtest"
	"vestnik/xmppcore/mam"
)

// im.message.update, im.message.delete and im.message.like go through the
// core's edit, retraction and reaction operations, with their rules.
func TestBitrixMessageChanges(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlx.DB) {
		ctx := context.Background()
		e := newEnv(t, db, Options{})
		archive := mam.NewStore(db)
		chatID := bxID64(t, bxOK(t, e.bx("1", "im.chat.add", url.Values{"TITLE": {"Правки"}, "USERS[]": {"2"}}.Encode())))
		dialog := fmt.Sprintf("chat%d", chatID)
		id := bxID64(t, bxOK(t, e.bx("1", "im.message.add", url.Values{"DIALOG_ID": {dialog}, "MESSAGE": {"черновик"}}.Encode())))
		msg := fmt.Sprint(id)
		body := func() (string, bool) {
			t.Helper()
			m, err := archive.GetFor(ctx, uid(t, db, "2"), id)
			if err != nil {
				t.Fatal(err)
			}
			return m.Body, m.Deleted
		}

		if r := bxOK(t, e.bx("1", "im.message.update", url.Values{"MESSAGE_ID": {msg}, "MESSAGE": {"итог"}}.Encode())); r != true {
			t.Fatalf("update: %v", r)
		}
		if b, _ := body(); b != "итог" {
			t.Fatalf("after update: %q", b)
		}
		bxExpectError(t, e.bx("2", "im.message.update", url.Values{"MESSAGE_ID": {msg}, "MESSAGE": {"чужое"}}.Encode()), 403, "ACCESS_DENIED")
		bxExpectError(t, e.bx("1", "im.message.update", url.Values{"MESSAGE_ID": {"999999"}, "MESSAGE": {"x"}}.Encode()), 400, "MESSAGE_ID_ERROR")
		bxExpectError(t, e.bx("1", "im.message.update", url.Values{"MESSAGE": {"x"}}.Encode()), 400, "MESSAGE_ID_EMPTY")
		bxExpectError(t, e.bx("1", "im.message.update", url.Values{"MESSAGE_ID": {msg}, "MESSAGE": {"x"}, "KEYBOARD[0][TEXT]": {"ok"}}.Encode()), 400, "KEYBOARD_ERROR")
		if b, _ := body(); b != "итог" {
			t.Fatalf("refused updates changed the message: %q", b)
		}

		// Likes: auto toggles, plus and minus are explicit; an outsider
		// (user 3 is not in the closed chat) cannot like.
		likes := func() []int64 {
			t.Helper()
			rs, err := archive.Reactions(ctx, []int64{id})
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range rs[id] {
				if r.Emoji == LikeReaction {
					return r.Users
				}
			}
			return nil
		}
		bxOK(t, e.bx("2", "im.message.like", url.Values{"MESSAGE_ID": {msg}}.Encode()))
		if l := likes(); len(l) != 1 || l[0] != uid(t, db, "2") {
			t.Fatalf("after a like: %v", l)
		}
		bxOK(t, e.bx("2", "im.message.like", url.Values{"MESSAGE_ID": {msg}, "ACTION": {"auto"}}.Encode()))
		if l := likes(); len(l) != 0 {
			t.Fatalf("auto on a liked message: %v", l)
		}
		bxOK(t, e.bx("2", "im.message.like", url.Values{"MESSAGE_ID": {msg}, "ACTION": {"plus"}}.Encode()))
		bxOK(t, e.bx("2", "im.message.like", url.Values{"MESSAGE_ID": {msg}, "ACTION": {"plus"}}.Encode()))
		if l := likes(); len(l) != 1 {
			t.Fatalf("plus twice: %v", l)
		}
		bxExpectError(t, e.bx("3", "im.message.like", url.Values{"MESSAGE_ID": {msg}}.Encode()), 400, "MESSAGE_ID_ERROR")
		bxExpectError(t, e.bx("2", "im.message.like", url.Values{"MESSAGE_ID": {msg}, "ACTION": {"love"}}.Encode()), 400, "INVALID_ACTION")

		bxExpectError(t, e.bx("2", "im.message.delete", url.Values{"MESSAGE_ID": {msg}}.Encode()), 403, "ACCESS_DENIED")
		bxOK(t, e.bx("1", "im.message.delete", url.Values{"MESSAGE_ID": {msg}}.Encode()))
		if b, deleted := body(); b != "" || !deleted {
			t.Fatalf("after delete: %q deleted=%v", b, deleted)
		}
		bxExpectError(t, e.bx("1", "im.message.update", url.Values{"MESSAGE_ID": {msg}, "MESSAGE": {"again"}}.Encode()), 400, "MESSAGE_ID_ERROR")

		// An empty MESSAGE in an update deletes, as in Bitrix24.
		id2 := bxID64(t, bxOK(t, e.bx("1", "im.message.add", url.Values{"DIALOG_ID": {"2"}, "MESSAGE": {"лично"}}.Encode())))
		bxOK(t, e.bx("1", "im.message.update", url.Values{"MESSAGE_ID": {fmt.Sprint(id2)}, "MESSAGE": {""}}.Encode()))
		if m, err := archive.GetFor(ctx, uid(t, db, "2"), id2); err != nil || !m.Deleted {
			t.Fatalf("update with an empty text: %+v %v", m, err)
		}
	})
}
