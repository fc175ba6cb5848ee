package mam_test

import (
	"context"
	"strconv"
	"strings"
	"testing"

	"github.com/jmoiron/sqlx"

	"vestnik/migrations/dbtest"
	"vestnik/xmppcore/mam"
)

func TestMetadata(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlx.DB) {
		ctx := context.Background()
		st := mam.NewStore(db)
		empty, err := st.Metadata(ctx, 1, 0)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(empty.String(), "start") {
			t.Fatalf("empty archive: got %q, %v; want no start/end", empty, err)
		}
		var ids []int64
		for _, pair := range [][2]int64{{1, 2}, {2, 1}, {3, 4}, {1, 2}} {
			m := &mam.Message{Kind: mam.KindChat, FromID: pair[0], ToID: pair[1], Body: "hi"}
			if _, err := st.Append(ctx, m); err != nil {
				t.Fatal(err)
			}
			ids = append(ids, m.ID)
		}
		el, err := st.Metadata(ctx, 1, 0)
		if err != nil {
			t.Fatal(err)
		}
		got := el.String()
		for _, want := range []string{"<start id='" + strconv.FormatInt(ids[0], 10) + "' timestamp='", "<end id='" + strconv.FormatInt(ids[3], 10) + "' timestamp='"} {
			if !strings.Contains(got, want) {
				t.Errorf("metadata for user 1: got %s, want it to contain %s", got, want)
			}
		}
		// User 3 sees only the message they sent, never user 1's.
		el, err = st.Metadata(ctx, 3, 0)
		if err != nil {
			t.Fatal(err)
		}
		got = el.String()
		if !strings.Contains(got, "<start id='"+strconv.FormatInt(ids[2], 10)+"'") || !strings.Contains(got, "<end id='"+strconv.FormatInt(ids[2], 10)+"'") {
			t.Fatalf("metadata for user 3: got %s, %v", got, err)
		}
	})
}
