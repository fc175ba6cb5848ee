package muc_test

import (
	"context"
	"testing"
	"time"

	"vestnik/migrations/dbtest"
	"vestnik/xmppcore/mam"
	"vestnik/xmppcore/mam/mamtest"
	"vestnik/xmppcore/muc"
)

// On SQLite a chat message is fanned out as soon as the archive has
// numbered it: a follower gets it while the commit before it stalls on
// the disk, and the author's call returns only once it is stored.
func TestFanoutBeforeCommit(t *testing.T) {
	db := dbtest.Open(t, "sqlite")
	ctx := context.Background()
	w := newWorld(t, db)
	ivanov, popov := w.user(t, "ivanov"), w.user(t, "popov")
	c, err := w.chats.Create(ctx, 0, muc.NewChat{Title: "A", Type: muc.TypeClosed, OwnerID: ivanov.ID, Members: []int64{popov.ID}})
	if err != nil {
		t.Fatal(err)
	}
	sink := make(chanSink, 100)
	sess, err := w.srv.Attach(ctx, popov.ID, "web", sink)
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	if err := w.chats.Follow(ctx, popov.ID, sess.JID().String()); err != nil {
		t.Fatal(err)
	}

	release, stalled := mamtest.StallCommit(t, db, ivanov.ID, popov.ID)

	posted := make(chan error, 1)
	go func() {
		_, err := w.chats.PostMessage(ctx, c.ID, ivanov.ID, "пока диск занят", false)
		posted <- err
	}()
	sink.expect(t, "пока диск занят", "type='groupchat'")
	select {
	case err := <-posted:
		t.Fatalf("the post returned before its commit: %v", err)
	case <-time.After(100 * time.Millisecond):
	}
	release()
	if err := stalled(); err != nil {
		t.Fatal(err)
	}
	if err := <-posted; err != nil {
		t.Fatal(err)
	}
	page, err := w.archive.Query(ctx, mam.Query{Viewer: popov.ID, ChatID: c.ID})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(page.Messages); n == 0 || page.Messages[n-1].Body != "пока диск занят" {
		t.Fatalf("archive after the post: %+v", page.Messages)
	}
}
