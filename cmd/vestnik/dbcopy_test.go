package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"

	"vestnik/migrations"
	"vestnik/migrations/dbtest"
)

// getJSON GETs url with the bearer token, expects 200 and decodes into v.
func getJSON(t *testing.T, u, token string, v any) {
	t.Helper()
	req, _ := http.NewRequest("GET", u, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: got %d %s, want 200", u, resp.StatusCode, b)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("GET %s: %v in %s", u, err, b)
	}
}

// archiveView is what a server answers about the archive: personal
// history pages and search hits of a few users, for comparing servers.
type archiveView struct {
	History map[string]json.RawMessage
	Hits    map[string][]int64
}

func readArchive(t *testing.T, base, token string) archiveView {
	t.Helper()
	v := archiveView{History: map[string]json.RawMessage{}, Hits: map[string][]int64{}}
	for _, q := range []string{"/users/2/history?with=3&limit=50", "/users/3/history?with=2&limit=500", "/users/2/history?with=4&limit=20"} {
		var raw json.RawMessage
		getJSON(t, base+q, token, &raw)
		v.History[q] = raw
	}
	for _, q := range []string{"/users/2/search?limit=100&q=" + url.QueryEscape("отчёты"), "/users/3/search?limit=100&q=" + url.QueryEscape("продажам"), "/users/4/search?q=quarterly"} {
		var res struct {
			Messages []struct {
				ID int64 `json:"id"`
			} `json:"messages"`
			Hits []struct {
				ID int64 `json:"id"`
			} `json:"hits"`
		}
		getJSON(t, base+q, token, &res)
		var ids []int64
		for _, m := range res.Messages {
			ids = append(ids, m.ID)
		}
		for _, h := range res.Hits {
			ids = append(ids, h.ID)
		}
		sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
		v.Hits[q] = ids
	}
	return v
}

// A live SQLite server is backed up while it takes messages; the backup
// is served as it is, and copied to PostgreSQL, where a server answers
// history and search exactly like the one on the backup.
func TestBackupAndCopyToPostgres(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	backends := dbtest.Backends(t)
	bin := buildBinary(t)
	dbURL := dbtest.URL(t, migrations.SQLite)
	live := startServer(t, bin, dbURL)
	token, err := runCLI(t, "", "token", "create", "copy-test", "--db", dbURL)
	if err != nil {
		t.Fatal(err)
	}
	token = strings.TrimSpace(token)
	api := "http://" + live.httpAt + "/api/v1"
	for i := range 120 {
		from, to := 2+i%2, 3-i%2
		body := fmt.Sprintf("квартальные отчёты по продажам №%d, quarterly report %d", i, i)
		if i%3 == 0 {
			to = 4
			body = fmt.Sprintf("Ёлка и «кавычки» %d <b>не тег</b>", i)
		}
		postJSON(t, api+"/messages", token, fmt.Sprintf(`{"from_user_id":"%d","to_user_id":"%d","message":%q}`, from, to, body))
	}
	chat := postJSON(t, api+"/chats", token, `{"title":"Продажи Q4","description":"d","color":"RED","type":"closed","owner_id":"2","users":["3","4"]}`)
	var c struct {
		ID int64 `json:"id"`
	}
	json.Unmarshal([]byte(chat), &c)
	for i := range 20 {
		postJSON(t, fmt.Sprintf("%s/chats/%d/messages", api, c.ID), token, fmt.Sprintf(`{"from_user_id":"3","message":"отчёты в чате %d"}`, i))
	}

	// Back up while another client keeps writing.
	backup := filepath.Join(t.TempDir(), "backup.db")
	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			req, _ := http.NewRequest("POST", api+"/messages", strings.NewReader(fmt.Sprintf(`{"from_user_id":"5","to_user_id":"6","message":"during backup %d"}`, i)))
			req.Header.Set("Authorization", "Bearer "+token)
			if resp, err := http.DefaultClient.Do(req); err == nil {
				resp.Body.Close()
			}
		}
	}()
	out, err := runCLI(t, "", "backup", backup, "--db", dbURL)
	close(stop)
	wg.Wait()
	if err != nil || !strings.Contains(out, "integrity ok") {
		t.Fatalf("backup: %v %s", err, out)
	}
	if _, err := runCLI(t, "", "backup", backup, "--db", dbURL); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Fatalf("backup over an existing file: got %v, want an error", err)
	}
	live.stop(t)

	// The backup is a database a server runs on.
	restored := startServer(t, bin, "sqlite:"+backup)
	want := readArchive(t, "http://"+restored.httpAt+"/api/v1", token)
	restored.stop(t)
	if len(want.Hits["/users/4/search?q=quarterly"]) != 0 || len(want.Hits["/users/2/search?limit=100&q="+url.QueryEscape("отчёты")]) < 60 {
		t.Fatalf("search on the backup: %v", want.Hits)
	}

	if len(backends) < 2 {
		return
	}
	pgURL := dbtest.URL(t, migrations.Postgres)
	out, err = runCLI(t, "", "db", "copy", "--from", "sqlite:"+backup, "--to", pgURL)
	if err != nil {
		t.Fatalf("db copy: %v\n%s", err, out)
	}
	for _, w := range []string{"messages ", "users ", "chat_members ", "api_tokens ", "verified"} {
		if !strings.Contains(out, w) {
			t.Errorf("db copy output lacks %q:\n%s", w, out)
		}
	}
	if _, err := runCLI(t, "", "db", "copy", "--from", "sqlite:"+backup, "--to", pgURL); err == nil || !strings.Contains(err.Error(), "not empty") {
		t.Fatalf("second copy into the same database: got %v, want 'not empty'", err)
	}

	pg := startServer(t, bin, pgURL, "--cluster=false")
	base := "http://" + pg.httpAt + "/api/v1"
	got := readArchive(t, base, token) // the token was copied too
	for q, w := range want.History {
		if string(got.History[q]) != string(w) {
			t.Errorf("history %s on PostgreSQL:\n got %s\nwant %s", q, got.History[q], w)
		}
	}
	for q, w := range want.Hits {
		if fmt.Sprint(got.Hits[q]) != fmt.Sprint(w) {
			t.Errorf("search %s on PostgreSQL: got %v, want %v", q, got.Hits[q], w)
		}
	}
	// New messages continue after the copied ids.
	var maxID int64
	for _, raw := range want.History {
		var page struct {
			Messages []struct {
				ID int64 `json:"id"`
			} `json:"messages"`
		}
		json.Unmarshal(raw, &page)
		for _, m := range page.Messages {
			maxID = max(maxID, m.ID)
		}
	}
	answer := postJSON(t, base+"/messages", token, `{"from_user_id":"5","to_user_id":"6","message":"after the move"}`)
	var id struct {
		ID int64 `json:"id"`
	}
	json.Unmarshal([]byte(answer), &id)
	if maxID < 100 || id.ID <= maxID {
		t.Fatalf("new message id %d after copied ids up to %d", id.ID, maxID)
	}
	pg.stop(t)
}
