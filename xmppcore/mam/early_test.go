package mam

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"vestnik/migrations/dbtest"
)

// countRows counts the stored messages with id (from the pool, as another
// reader would).
func countRows(t *testing.T, db *sqlx.DB, id int64) int {
	t.Helper()
	var n int
	if err := db.Get(&n, db.Rebind(`SELECT COUNT(*) FROM messages WHERE id = ?`), id); err != nil {
		t.Fatal(err)
	}
	return n
}

// AppendThen routes with the id and sequence the message is stored with:
// on SQLite before the commit, on PostgreSQL after it.
func TestAppendThenRoutes(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlx.DB) {
		s := NewStore(db)
		pg := db.DriverName() == "postgres"
		for i := range 3 {
			m := personal(1, 2, "hello")
			var id, seq int64
			var committed bool
			stored := -1
			if _, err := s.AppendThen(context.Background(), m, func(c bool) {
				id, seq, committed = m.ID, m.Seq, c
				stored = countRows(t, db, m.ID)
			}); err != nil {
				t.Fatal(err)
			}
			if id == 0 || id != m.ID || seq != m.Seq || seq != int64(i+1) {
				t.Errorf("routed with id %d seq %d, stored as %d seq %d (want seq %d)", id, seq, m.ID, m.Seq, i+1)
			}
			if committed != pg || (stored == 1) != pg {
				t.Errorf("routed: committed %v, rows %d (PostgreSQL: %v)", committed, stored, pg)
			}
			if countRows(t, db, m.ID) != 1 {
				t.Errorf("message %d not stored when AppendThen returned", m.ID)
			}
		}
	})
}

// A message queued while a commit is stalled is routed before that
// commit ends (the disk is off the delivery path); a lookup on a user's
// behalf waits for what was routed (settle); the callers hear of their
// messages only once they are stored.
func TestRoutedWhileCommitStalls(t *testing.T) {
	db := dbtest.Open(t, "sqlite")
	stall := make(chan struct{})
	var once sync.Once
	inCommit := make(chan struct{})
	s := NewStoreOptions(db, Options{OnChange: func(ctx context.Context, tx *sqlx.Tx, cs []Change) error {
		once.Do(func() {
			close(inCommit)
			<-stall
		})
		return nil
	}})
	ctx := context.Background()
	first := personal(1, 2, "first")
	done1 := make(chan error, 1)
	firstID := make(chan int64, 1)
	go func() {
		_, err := s.AppendThen(ctx, first, func(bool) { firstID <- first.ID })
		done1 <- err
	}()
	id1 := <-firstID
	<-inCommit // the first commit is under way and stalls

	second := personal(3, 2, "second")
	routed := make(chan int64, 1)
	done2 := make(chan error, 1)
	go func() {
		_, err := s.AppendThen(ctx, second, func(bool) { routed <- second.Seq })
		done2 <- err
	}()
	select {
	case seq := <-routed:
		if seq != 2 {
			t.Errorf("second routed with sequence %d, want 2", seq)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a message queued behind a stalled commit was not routed before it")
	}
	got := make(chan error, 1)
	go func() {
		m, err := s.GetFor(ctx, 2, id1)
		if err == nil && m.Body != "first" {
			err = errors.New("wrong body " + m.Body)
		}
		got <- err
	}()
	select {
	case err := <-done1:
		t.Fatalf("append returned during its stalled commit: %v", err)
	case err := <-done2:
		t.Fatalf("append returned before its commit: %v", err)
	case err := <-got:
		t.Fatalf("lookup returned before the routed message was stored: %v", err)
	case <-time.After(200 * time.Millisecond):
	}
	close(stall)
	for _, c := range []chan error{done1, done2, got} {
		if err := <-c; err != nil {
			t.Fatal(err)
		}
	}
	if second.ID <= id1 {
		t.Errorf("ids %d then %d: not in queue order", id1, second.ID)
	}
}

// An id or sequence given out is never given again: a new numbering
// (after a restart) skips idMargin ids and starts above a delivery mark
// stored before its message's commit; a personal message that cannot be
// stored keeps its sequence as a retracted placeholder.
func TestNumbersNotReused(t *testing.T) {
	db := dbtest.Open(t, "sqlite")
	ctx := context.Background()
	fail := errors.New("refused")
	s := NewStoreOptions(db, Options{OnChange: func(ctx context.Context, tx *sqlx.Tx, cs []Change) error {
		for _, c := range cs {
			if c.Message.Body == "refuse me" {
				return fail
			}
		}
		return nil
	}})
	a := mustAppend(t, s, personal(1, 2, "one"))
	bad := personal(1, 2, "refuse me")
	if _, err := s.AppendThen(ctx, bad, func(bool) {}); !errors.Is(err, fail) {
		t.Fatalf("append refused by the hook: %v", err)
	}
	c := mustAppend(t, s, personal(1, 2, "three"))
	if a.Seq != 1 || bad.Seq != 2 || c.Seq != 3 {
		t.Errorf("sequences %d, %d, %d; want 1, 2, 3", a.Seq, bad.Seq, c.Seq)
	}
	msgs, err := s.UndeliveredAfter(ctx, 2, 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 3 || msgs[1].ID != bad.ID || msgs[1].Seq != 2 || !msgs[1].Deleted || msgs[1].Body != "" {
		t.Fatalf("undelivered: %+v, want a retracted placeholder with id %d and sequence 2 between", msgs, bad.ID)
	}

	// A restart: a new numbering over the same database.
	if err := s.StoreMarks(ctx, map[int64]Mark{2: {Seq: 7, ID: c.ID + 5}}); err != nil {
		t.Fatal(err)
	}
	s.ap = &appender{}
	d := mustAppend(t, s, personal(1, 2, "after"))
	if d.ID <= c.ID+5+idMargin-1 || d.Seq != 8 {
		t.Errorf("after a restart: id %d seq %d, want above %d and 8", d.ID, d.Seq, c.ID+5+idMargin-1)
	}
}

// Stores over one SQLite database number through one appender: ids stay
// unique and each recipient's sequences contiguous.
func TestStoresShareNumbering(t *testing.T) {
	db := dbtest.Open(t, "sqlite")
	stores := []*Store{NewStore(db), NewStore(db)}
	const each = 40
	var wg sync.WaitGroup
	var mu sync.Mutex
	ids := map[int64]bool{}
	seqs := map[int64]bool{}
	for i, s := range stores {
		wg.Go(func() {
			for j := range each {
				m := personal(int64(10+i), 2, "x")
				if j%3 == 0 {
					m.ToID = 3
				}
				if _, err := s.Append(context.Background(), m); err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				if ids[m.ID] {
					t.Errorf("id %d given twice", m.ID)
				}
				ids[m.ID] = true
				if m.ToID == 2 {
					seqs[m.Seq] = true
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	for seq := int64(1); seq <= int64(len(seqs)); seq++ {
		if !seqs[seq] {
			t.Errorf("sequence %d of user 2 missing among %d", seq, len(seqs))
		}
	}
}

// A mark copied from SQLite may be above every stored message (SQLite
// stored it for a message routed before a commit that never came):
// after AfterCopy, PostgreSQL's next id and sequence are above it.
func TestAfterCopy(t *testing.T) {
	db := dbtest.Open(t, "postgres")
	ctx := context.Background()
	s := NewStore(db)
	last := mustAppend(t, s, personal(1, 2, "stored"))
	if _, err := db.Exec(`INSERT INTO deliveries (user_id, last_id, mark_seq, top_seq) VALUES (2, $1, 9, 0)
		ON CONFLICT (user_id) DO UPDATE SET last_id = $1, mark_seq = 9, top_seq = 0`, last.ID+50); err != nil {
		t.Fatal(err)
	}
	if err := AfterCopy(ctx, db); err != nil {
		t.Fatal(err)
	}
	m := mustAppend(t, s, personal(1, 2, "after the copy"))
	if m.ID <= last.ID+50 || m.Seq != 10 {
		t.Errorf("after the copy: id %d seq %d, want above %d and 10", m.ID, m.Seq, last.ID+50)
	}
	msgs, err := s.Undelivered(ctx, 2, 0)
	if err != nil || len(msgs) != 1 || msgs[0].ID != m.ID {
		t.Errorf("undelivered after the copy: %+v %v", msgs, err)
	}
}
