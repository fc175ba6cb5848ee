package upload

import (
	"context"
	"strconv"
	"strings"
	"testing"

	"vestnik/migrations"
	"vestnik/migrations/dbtest"
	"vestnik/xmppcore"
)

// TestAttachFiles: the core's rule for files in messages, over the real
// store: a message carries a stored file by its URL, gets one OOB element
// per file (not a second one for a URL the client already described) and
// a file element; file elements a client forges are dropped.
func TestAttachFiles(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t, dbtest.Open(t, migrations.SQLite), Options{})
	a, err := s.Save(ctx, 1, "a.txt", strings.NewReader("a"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := s.Save(ctx, 1, "b.txt", strings.NewReader("b"))
	if err != nil {
		t.Fatal(err)
	}
	ua, ub := s.URL(a), s.URL(b)
	forged := `<file xmlns='urn:vestnik:file:0' id='999' name='evil.exe' url='https://evil.example.net/x'/>`
	for _, tc := range []struct {
		name, body, payload string
		ids                 []int64
		want                []string // substrings of the new payload
		count               map[string]int
	}{
		{"forged file element", "hello", forged, nil, nil, map[string]int{"urn:vestnik:file:0": 0}},
		{"one file, client OOB kept", ua, `<x xmlns='jabber:x:oob'><url>` + ua + `</url></x>` + forged, []int64{a.ID},
			[]string{"id='" + strconv.FormatInt(a.ID, 10) + "'", "name='a.txt'"}, map[string]int{"jabber:x:oob": 1, "urn:vestnik:file:0": 1}},
		{"two files with text", "see\n" + ua + "\n" + ub, "", []int64{a.ID, b.ID},
			[]string{"<url>" + ua + "</url>", "<url>" + ub + "</url>"}, map[string]int{"jabber:x:oob": 2, "urn:vestnik:file:0": 2}},
		{"caption body, URL in OOB only", "фото", `<x xmlns='jabber:x:oob'><url>` + ub + `</url></x>`, []int64{b.ID},
			[]string{"name='b.txt'"}, map[string]int{"jabber:x:oob": 1, "urn:vestnik:file:0": 1}},
		{"unknown token", strings.Replace(ua, a.Token, strings.Repeat("f", 64), 1), "", nil, nil, map[string]int{"jabber:x:oob": 0}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, ids, err := xmppcore.AttachFilesPayload(ctx, s, tc.body, tc.payload)
			if err != nil {
				t.Fatal(err)
			}
			if len(ids) != len(tc.ids) || (len(ids) > 0 && (ids[0] != tc.ids[0] || ids[len(ids)-1] != tc.ids[len(tc.ids)-1])) {
				t.Errorf("ids: got %v, want %v", ids, tc.ids)
			}
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Errorf("payload %s: no %q", out, w)
				}
			}
			for ns, n := range tc.count {
				if got := strings.Count(out, ns); got != n {
					t.Errorf("payload %s: %d × %s, want %d", out, got, ns, n)
				}
			}
			if strings.Contains(out, "evil") {
				t.Errorf("forged element kept: %s", out)
			}
		})
	}
}
