package muc_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"vestnik/migrations/dbtest"
	"vestnik/xmppcore/mam"
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

	// A second store over the database shares the appender; its hook
	// stalls the commit of a message appended through it.
	stall, inCommit := make(chan struct{}), make(chan struct{})
	var once sync.Once
	staller := mam.NewStoreOptions(db, mam.Options{OnChange: func(context.Context, *sqlx.Tx, []mam.Change) error {
		once.Do(func() { close(inCommit); <-stall })
		return nil
	}})
	go staller.Append(ctx, &mam.Message{Kind: mam.KindChat, FromID: ivanov.ID, ToID: popov.ID, Body: "stall"})
	<-inCommit

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
	close(stall)
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
