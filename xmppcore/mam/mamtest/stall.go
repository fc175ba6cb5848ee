// Package mamtest helps tests hold the archive's commits, as a disk that
// stalls would.
package mamtest

import (
	"context"
	"sync"
	"testing"

	"github.com/jmoiron/sqlx"

	"vestnik/xmppcore/mam"
)

// StallCommit appends a personal message from one user to another
// through a second store over db (stores over one SQLite database share
// one appender), whose hook holds that commit until release is called:
// every message queued meanwhile waits behind it. It returns once the
// commit is under way; release is idempotent and also runs at the end of
// the test. Wait reports the stalled append's error once released.
func StallCommit(t testing.TB, db *sqlx.DB, from, to int64) (release func(), wait func() error) {
	t.Helper()
	stall, inCommit := make(chan struct{}), make(chan struct{})
	var once sync.Once
	st := mam.NewStoreOptions(db, mam.Options{OnChange: func(context.Context, *sqlx.Tx, []mam.Change) error {
		once.Do(func() {
			close(inCommit)
			<-stall
		})
		return nil
	}})
	done := make(chan error, 1)
	go func() {
		_, err := st.Append(context.Background(), &mam.Message{Kind: mam.KindChat, FromID: from, ToID: to, Body: "stall"})
		done <- err
	}()
	<-inCommit
	var released sync.Once
	release = func() { released.Do(func() { close(stall) }) }
	t.Cleanup(release)
	return release, func() error { return <-done }
}
