package mam

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"vestnik/migrations/dbtest"
)

func addPeriod(t *testing.T, db *sqlx.DB, chat, user, from, to int64) {
	t.Helper()
	var toArg any
	if to != 0 {
		toArg = to
	}
	if _, err := db.Exec(db.Rebind(`INSERT INTO chat_periods (chat_id, user_id, from_id, to_id) VALUES (?, ?, ?, ?)`),
		chat, user, from, toArg); err != nil {
		t.Fatal(err)
	}
}

func chatMsg(chat, from int64, body string) *Message {
	return &Message{Kind: KindGroupchat, ChatID: chat, FromID: from, Body: body}
}

// world: users 1, 2, 3, 4; personal 1<->2 and 1<->3; chat 10 where user 3
// saw only part of the history (joined with hide_history, left, rejoined).
type world struct {
	p12, p21, p13          []*Message
	c1, c2, c3, c4, c5, c6 *Message
}

func buildWorld(t *testing.T, db *sqlx.DB, s *Store) *world {
	t.Helper()
	w := &world{}
	for i := 0; i < 3; i++ {
		w.p12 = append(w.p12, mustAppend(t, s, personal(1, 2, "отчёт по продажам готов")))
		w.p21 = append(w.p21, mustAppend(t, s, personal(2, 1, "спасибо за сообщение")))
	}
	w.p13 = append(w.p13, mustAppend(t, s, personal(1, 3, "секретное сообщение про зарплату")))
	w.c1 = mustAppend(t, s, chatMsg(10, 1, "старое сообщение до вступления"))
	w.c2 = mustAppend(t, s, chatMsg(10, 2, "первое видимое сообщение"))
	w.c3 = mustAppend(t, s, chatMsg(10, 3, "I am leaving the meeting"))
	w.c4 = mustAppend(t, s, chatMsg(10, 1, "обсуждаем сообщения без третьего"))
	w.c5 = mustAppend(t, s, &Message{Kind: KindSystem, ChatID: 10, Body: "третий вернулся"})
	w.c6 = mustAppend(t, s, chatMsg(10, 2, "с возвращением, сообщение"))
	addPeriod(t, db, 10, 1, 1, 0)
	addPeriod(t, db, 10, 2, 1, 0)
	addPeriod(t, db, 10, 3, w.c2.ID, w.c3.ID)
	addPeriod(t, db, 10, 3, w.c5.ID, 0)
	return w
}

func TestAccessEveryDoor(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlx.DB) {
		ctx := context.Background()
		s := NewStore(db)
		w := buildWorld(t, db, s)

		// GetFor / CanRead.
		cases := []struct {
			viewer int64
			m      *Message
			want   bool
		}{
			{1, w.p12[0], true}, {2, w.p12[0], true}, {3, w.p12[0], false}, {4, w.p12[0], false},
			{2, w.p13[0], false}, {3, w.p13[0], true},
			{3, w.c1, false}, {3, w.c2, true}, {3, w.c3, true}, {3, w.c4, false}, {3, w.c5, true}, {3, w.c6, true},
			{4, w.c2, false}, {1, w.c1, true},
		}
		for _, c := range cases {
			ok, err := s.CanRead(ctx, c.viewer, c.m.ID)
			if err != nil || ok != c.want {
				t.Errorf("CanRead(%d, %q) = %v %v, want %v", c.viewer, c.m.Body, ok, err, c.want)
			}
			_, err = s.GetFor(ctx, c.viewer, c.m.ID)
			if c.want != (err == nil) || (!c.want && !errors.Is(err, ErrNotFound)) {
				t.Errorf("GetFor(%d, %q) err %v, want readable=%v", c.viewer, c.m.Body, err, c.want)
			}
		}

		// Query: the chat history as user 3 sees it.
		p, err := s.Query(ctx, Query{Viewer: 3, ChatID: 10})
		if err != nil {
			t.Fatal(err)
		}
		if want := []int64{w.c2.ID, w.c3.ID, w.c5.ID, w.c6.ID}; !sameIDs(p.Messages, want) {
			t.Errorf("chat history for 3 = %v, want %v", ids(p.Messages), want)
		}
		// A former member (all windows closed) sees only their window.
		addPeriod(t, db, 10, 5, w.c2.ID, w.c3.ID)
		p, err = s.Query(ctx, Query{Viewer: 5, ChatID: 10})
		if err != nil || !sameIDs(p.Messages, []int64{w.c2.ID, w.c3.ID}) {
			t.Errorf("chat history for 5 = %v %v", ids(p.Messages), err)
		}
		if n, err := s.Count(ctx, Query{Viewer: 5, ChatID: 10}); err != nil || n != 2 {
			t.Errorf("count for 5 = %d %v", n, err)
		}
		// A non-member sees nothing of the chat, whatever the filters.
		for _, q := range []Query{
			{Viewer: 4, ChatID: 10},
			{Viewer: 4, ChatID: 10, IDs: []int64{w.c1.ID, w.c2.ID}},
			{Viewer: 4, ChatID: 10, Text: "сообщение"},
			{Viewer: 3, ChatID: 10, IDs: []int64{w.c1.ID, w.c4.ID}},
			{Viewer: 3, With: 2},                            // 3 never talked to 2
			{Viewer: 3, With: 1, IDs: []int64{w.p12[0].ID}}, // somebody else's message by id
			{Viewer: 4},
		} {
			p, err := s.Query(ctx, q)
			if err != nil {
				t.Fatal(err)
			}
			if len(p.Messages) != 0 {
				t.Errorf("Query %+v leaked %v", q, ids(p.Messages))
			}
		}
		// The personal archive of 3 holds only 1<->3.
		p, err = s.Query(ctx, Query{Viewer: 3})
		if err != nil || !sameIDs(p.Messages, []int64{w.p13[0].ID}) {
			t.Errorf("archive of 3 = %v %v", ids(p.Messages), err)
		}

		// Search: 3 finds "сообщение" only where allowed.
		hits, err := s.Search(ctx, 3, "сообщения", SearchOptions{})
		if err != nil {
			t.Fatal(err)
		}
		got := map[int64]bool{}
		for _, h := range hits {
			got[h.ID] = true
		}
		for _, m := range []*Message{w.p12[0], w.p21[0], w.c1, w.c4} {
			if got[m.ID] {
				t.Errorf("search by 3 leaked %q", m.Body)
			}
		}
		for _, m := range []*Message{w.p13[0], w.c2, w.c6} {
			if !got[m.ID] {
				t.Errorf("search by 3 missed %q (hits %v)", m.Body, got)
			}
		}
		// Scoped searches cannot widen access either.
		for _, o := range []SearchOptions{{ChatID: 10, Limit: 100}, {With: 2}, {With: 1}} {
			hits, err := s.Search(ctx, 4, "сообщение", o)
			if err != nil || len(hits) != 0 {
				t.Errorf("search by 4 %+v = %d hits %v, want none", o, len(hits), err)
			}
		}
	})
}

func TestQueryPaging(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlx.DB) {
		ctx := context.Background()
		s := NewStore(db)
		var all []int64
		for i := 0; i < 12; i++ {
			from, to := int64(1), int64(2)
			if i%2 == 1 {
				from, to = 2, 1
			}
			all = append(all, mustAppend(t, s, personal(from, to, "m")).ID)
			mustAppend(t, s, personal(1, 3, "other conversation"))
		}
		// Forward from the start.
		var got []int64
		after := int64(0)
		for pages := 0; ; pages++ {
			p, err := s.Query(ctx, Query{Viewer: 1, With: 2, Limit: 5, AfterID: after})
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, ids(p.Messages)...)
			if p.Complete {
				break
			}
			if pages > 5 {
				t.Fatal("no end")
			}
			after = p.Last
		}
		if !equal(got, all) {
			t.Errorf("forward paging = %v, want %v", got, all)
		}
		// Backward from the newest (RSM <before/>).
		var back []int64
		before := int64(0)
		for pages := 0; ; pages++ {
			p, err := s.Query(ctx, Query{Viewer: 2, With: 1, Limit: 5, BeforeID: before, Reverse: true})
			if err != nil {
				t.Fatal(err)
			}
			if len(p.Messages) > 0 && (p.First != p.Messages[0].ID || p.Last != p.Messages[len(p.Messages)-1].ID) {
				t.Errorf("first/last wrong")
			}
			back = append(ids(p.Messages), back...)
			if p.Complete {
				break
			}
			if pages > 5 {
				t.Fatal("no end")
			}
			before = p.First
		}
		if !equal(back, all) {
			t.Errorf("backward paging = %v, want %v", back, all)
		}
		p, _ := s.Query(ctx, Query{Viewer: 1, With: 2, Limit: 2, Reverse: true})
		if !equal(ids(p.Messages), all[10:]) || p.Complete {
			t.Errorf("last page = %v complete %v", ids(p.Messages), p.Complete)
		}
		// Exactly the size of the range: complete.
		p, _ = s.Query(ctx, Query{Viewer: 1, With: 2, Limit: 12})
		if len(p.Messages) != 12 || !p.Complete {
			t.Errorf("full range: %d complete %v", len(p.Messages), p.Complete)
		}
		// ids filter and id bounds.
		p, _ = s.Query(ctx, Query{Viewer: 1, With: 2, IDs: []int64{all[3], all[7], all[9]}, AfterID: all[3]})
		if !equal(ids(p.Messages), []int64{all[7], all[9]}) {
			t.Errorf("ids+after = %v", ids(p.Messages))
		}
		// Whole archive of 1: both conversations, 24 messages.
		p, _ = s.Query(ctx, Query{Viewer: 1, Limit: 100})
		if len(p.Messages) != 24 {
			t.Errorf("archive of 1 = %d messages, want 24", len(p.Messages))
		}
		if _, err := s.Query(ctx, Query{Viewer: 1, IDs: make([]int64, MaxIDs+1)}); !errors.Is(err, ErrInvalid) {
			t.Errorf("too many ids: %v", err)
		}
	})
}

func TestQueryTimeAndText(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlx.DB) {
		ctx := context.Background()
		s := NewStore(db)
		base := time.Date(2026, 1, 10, 12, 0, 0, 0, time.UTC)
		var ms []*Message
		bodies := []string{"Meeting tomorrow", "Встреча завтра в десять", "meetings are boring", "Новые сообщения", "hello"}
		for i, b := range bodies {
			m := personal(1, 2, b)
			m.CreatedAt = base.Add(time.Duration(i) * time.Hour)
			ms = append(ms, mustAppend(t, s, m))
		}
		p, _ := s.Query(ctx, Query{Viewer: 2, With: 1, Start: base.Add(time.Hour), End: base.Add(3 * time.Hour)})
		if !equal(ids(p.Messages), []int64{ms[1].ID, ms[2].ID, ms[3].ID}) {
			t.Errorf("start/end = %v", ids(p.Messages))
		}
		if !p.Messages[0].CreatedAt.Equal(base.Add(time.Hour)) {
			t.Errorf("created_at = %v", p.Messages[0].CreatedAt)
		}
		p, _ = s.Query(ctx, Query{Viewer: 2, With: 1, Text: "meeting"})
		if !equal(ids(p.Messages), []int64{ms[0].ID, ms[2].ID}) {
			t.Errorf("text meeting = %v", ids(p.Messages))
		}
		p, _ = s.Query(ctx, Query{Viewer: 2, Text: "встречи"})
		if !equal(ids(p.Messages), []int64{ms[1].ID}) {
			t.Errorf("text встречи = %v", ids(p.Messages))
		}
		p, _ = s.Query(ctx, Query{Viewer: 3, Text: "встречи"})
		if len(p.Messages) != 0 {
			t.Errorf("text by stranger = %v", ids(p.Messages))
		}
		p, _ = s.Query(ctx, Query{Viewer: 2, Text: "!!!"})
		if len(p.Messages) != 0 || !p.Complete {
			t.Errorf("no words: %v", ids(p.Messages))
		}
	})
}

func TestSearchStemmingRankingSnippets(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlx.DB) {
		ctx := context.Background()
		s := NewStore(db)
		a := mustAppend(t, s, personal(1, 2, "Пришлите, пожалуйста, сообщение о <script>отчёте</script>"))
		b := mustAppend(t, s, personal(2, 1, "Running the reports now"))
		c := mustAppend(t, s, personal(1, 2, "сообщение, сообщение и ещё раз сообщение"))
		mustAppend(t, s, personal(1, 2, "ничего общего"))
		hits, err := s.Search(ctx, 2, "сообщения", SearchOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if len(hits) != 2 {
			t.Fatalf("hits = %d, want 2", len(hits))
		}
		if hits[0].ID != c.ID || hits[1].ID != a.ID {
			t.Errorf("ranking = %d, %d; want %d (three matches) first", hits[0].ID, hits[1].ID, c.ID)
		}
		if want := "Пришлите, пожалуйста, <mark>сообщение</mark> о &lt;script&gt;отчёте&lt;/script&gt;"; hits[1].Snippet != want {
			t.Errorf("snippet = %q, want %q", hits[1].Snippet, want)
		}
		hits, _ = s.Search(ctx, 1, "report run", SearchOptions{With: 2})
		if len(hits) != 1 || hits[0].ID != b.ID || hits[0].Snippet != "<mark>Running</mark> the <mark>reports</mark> now" {
			t.Errorf("english stems: %+v", hits)
		}
		hits, _ = s.Search(ctx, 1, "отчет", SearchOptions{})
		if len(hits) != 1 || hits[0].ID != a.ID {
			t.Errorf("ё/е: %+v", hits)
		}
		// Edits and retractions reach the index.
		if _, err := s.Edit(ctx, 1, a.ID, "совсем другой текст"); err != nil {
			t.Fatal(err)
		}
		if hits, _ := s.Search(ctx, 2, "сообщение", SearchOptions{}); len(hits) != 1 {
			t.Errorf("after edit: %d hits, want 1", len(hits))
		}
		if hits, _ := s.Search(ctx, 2, "другой", SearchOptions{}); len(hits) != 1 || hits[0].ID != a.ID {
			t.Errorf("edited text not found: %+v", hits)
		}
		if _, err := s.Retract(ctx, 1, c.ID); err != nil {
			t.Fatal(err)
		}
		if hits, _ := s.Search(ctx, 2, "сообщение", SearchOptions{}); len(hits) != 0 {
			t.Errorf("after retract: %d hits, want 0", len(hits))
		}
	})
}

func TestEditRetract(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlx.DB) {
		ctx := context.Background()
		s := NewStore(db)
		m := mustAppend(t, s, personal(1, 2, "опечтака"))
		if _, err := s.Edit(ctx, 2, m.ID, "чужая правка"); !errors.Is(err, ErrForbidden) {
			t.Errorf("edit by recipient: %v, want ErrForbidden", err)
		}
		if _, err := s.Edit(ctx, 1, m.ID+99, "x"); !errors.Is(err, ErrNotFound) {
			t.Errorf("edit unknown: %v", err)
		}
		e, err := s.Edit(ctx, 1, m.ID, "опечатка")
		if err != nil || e.Body != "опечатка" || e.EditedAt == nil {
			t.Fatalf("edit: %+v %v", e, err)
		}
		got, _ := s.Get(ctx, m.ID)
		if got.Body != "опечатка" || got.EditedAt == nil || got.Deleted {
			t.Errorf("stored after edit: %+v", got)
		}
		if _, err := s.Retract(ctx, 2, m.ID); !errors.Is(err, ErrForbidden) {
			t.Errorf("retract by recipient: %v", err)
		}
		r, err := s.Retract(ctx, 1, m.ID)
		if err != nil || !r.Deleted || r.Body != "" {
			t.Fatalf("retract: %+v %v", r, err)
		}
		got, _ = s.Get(ctx, m.ID)
		if !got.Deleted || got.Body != "" || got.Payload != "" {
			t.Errorf("stored after retract: %+v", got)
		}
		if _, err := s.Edit(ctx, 1, m.ID, "воскресить"); !errors.Is(err, ErrForbidden) {
			t.Errorf("edit retracted: %v", err)
		}
		sys := mustAppend(t, s, &Message{Kind: KindSystem, ChatID: 5, Body: "system"})
		if _, err := s.Retract(ctx, 0, sys.ID); !errors.Is(err, ErrForbidden) {
			t.Errorf("retract system: %v", err)
		}
		// History still shows the tombstone.
		p, _ := s.Query(ctx, Query{Viewer: 2, With: 1})
		if len(p.Messages) != 1 || !p.Messages[0].Deleted {
			t.Errorf("tombstone missing: %+v", p.Messages)
		}
	})
}

func TestSnippetWindow(t *testing.T) {
	long := strings.Repeat("слово ", 60) + "нужное сообщение" + strings.Repeat(" хвост", 60)
	got := Snippet(long, "сообщения")
	if !strings.Contains(got, "<mark>сообщение</mark>") || !strings.HasPrefix(got, "…") || !strings.HasSuffix(got, "…") {
		t.Errorf("snippet = %q", got)
	}
	if n := len([]rune(got)); n > snippetRunes+20 {
		t.Errorf("snippet %d runes long", n)
	}
	if got := Snippet("a < b & c", "zzz"); got != "a &lt; b &amp; c" {
		t.Errorf("no match = %q", got)
	}
}

func equal(a, b []int64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
