package webhook

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"vestnik/migrations/dbtest"
	"vestnik/roster"
	"vestnik/xmppcore/mam"
)

// receiver is a webhook receiver on loopback: it checks each delivery's
// signature and records the deliveries it accepted.
type receiver struct {
	t      *testing.T
	srv    *httptest.Server
	secret atomic.Value // string
	up     atomic.Bool

	mu      sync.Mutex
	got     []Delivery
	badSig  int
	refused int
}

func newReceiver(t *testing.T) *receiver {
	r := &receiver{t: t}
	r.secret.Store("")
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) serve(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	if !r.up.Load() {
		r.mu.Lock()
		r.refused++
		r.mu.Unlock()
		http.Error(w, "down", http.StatusServiceUnavailable)
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if !Verify(r.secret.Load().(string), body, req.Header.Get(SignatureHeader)) {
		r.badSig++
		http.Error(w, "bad signature", http.StatusUnauthorized)
		return
	}
	var d Delivery
	if err := json.Unmarshal(body, &d); err != nil {
		r.t.Errorf("delivery is not JSON: %q", body)
		return
	}
	r.got = append(r.got, d)
}

func (r *receiver) deliveries() []Delivery {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Delivery(nil), r.got...)
}

func importDemo(t testing.TB, db *sqlx.DB) (a, b int64) {
	t.Helper()
	users := roster.NewStore(db)
	snap := roster.DemoSnapshot()
	for i := range snap.Employees {
		snap.Employees[i].Password = ""
	}
	if _, err := users.Import(context.Background(), snap, false); err != nil {
		t.Fatal(err)
	}
	if err := db.Get(&a, `SELECT MIN(id) FROM users`); err != nil {
		t.Fatal(err)
	}
	if err := db.Get(&b, `SELECT MAX(id) FROM users`); err != nil {
		t.Fatal(err)
	}
	return a, b
}

func fastOptions() Options {
	return Options{Timeout: 2 * time.Second, RetryBase: 20 * time.Millisecond, RetryMax: 100 * time.Millisecond, Poll: 20 * time.Millisecond}
}

func waitFor(t *testing.T, what string, d time.Duration, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestDeliveryAcrossRestart: events queued while the receiver is down
// survive a stop of the dispatcher, and a new one (a restarted server)
// delivers every one, signed, in order per chat. Delivery is at least
// once: a repeat carries the same delivery id and is counted, not failed.
func TestDeliveryAcrossRestart(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlx.DB) {
		ctx := context.Background()
		alice, bob := importDemo(t, db)
		rcv := newReceiver(t)

		first, err := New(db, fastOptions())
		if err != nil {
			t.Fatal(err)
		}
		h, err := first.Create(ctx, NewWebhook{URL: rcv.srv.URL + "/hook", Events: []string{MessageCreated, ReactionAdded}})
		if err != nil {
			t.Fatal(err)
		}
		rcv.secret.Store(h.Secret)
		if len(h.Secret) < 32 || h.ID == 0 {
			t.Fatalf("got webhook %+v, want an id and a secret", h)
		}
		archive := mam.NewStoreOptions(db, mam.Options{OnChange: first.ArchiveChange})
		first.Start()

		// The receiver is down: 3 chats and a personal conversation,
		// appended concurrently (group commit batches them).
		const perChain = 15
		var wg sync.WaitGroup
		want := map[int64]bool{}
		var wantMu sync.Mutex
		for chain := 0; chain < 4; chain++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < perChain; i++ {
					m := &mam.Message{Kind: mam.KindGroupchat, FromID: alice, ChatID: int64(chain + 1), Body: "m"}
					if chain == 3 {
						m = &mam.Message{Kind: mam.KindChat, FromID: alice, ToID: bob, Body: "p"}
					}
					if _, err := archive.Append(ctx, m); err != nil {
						t.Error(err)
						return
					}
					wantMu.Lock()
					want[m.ID] = true
					wantMu.Unlock()
				}
			}()
		}
		wg.Wait()
		waitFor(t, "attempts against the receiver that is down", 5*time.Second, func() bool {
			rcv.mu.Lock()
			defer rcv.mu.Unlock()
			return rcv.refused >= 4
		})
		sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		if err := first.Shutdown(sctx); err != nil {
			t.Fatal(err)
		}
		cancel()
		if n, err := first.Pending(ctx, h.ID); err != nil || n != 4*perChain {
			t.Fatalf("got %d pending (%v) after the stop, want %d", n, err, 4*perChain)
		}

		// The receiver comes up; a new dispatcher (the restarted
		// server) delivers them all.
		rcv.up.Store(true)
		second, err := New(db, fastOptions())
		if err != nil {
			t.Fatal(err)
		}
		second.Start()
		defer second.Shutdown(ctx)
		waitFor(t, "every event delivered", 10*time.Second, func() bool {
			seen := map[int64]bool{}
			for _, d := range rcv.deliveries() {
				var data struct {
					Message struct{ ID int64 } `json:"message"`
				}
				json.Unmarshal(d.Data, &data)
				seen[data.Message.ID] = true
			}
			return len(seen) == len(want)
		})
		waitFor(t, "the queue emptied", 5*time.Second, func() bool {
			n, _ := second.Pending(ctx, h.ID)
			return n == 0
		})

		last := map[string]int64{} // chain → last message id
		ids := map[int64]int{}
		for _, d := range rcv.deliveries() {
			if d.Event != MessageCreated || d.WebhookID != h.ID {
				t.Fatalf("got delivery %+v, want message.created of webhook %d", d, h.ID)
			}
			var data struct {
				Message struct {
					ID         int64   `json:"id"`
					ChatID     int64   `json:"chat_id"`
					FromUserID string  `json:"from_user_id"`
					ToUserID   *string `json:"to_user_id"`
				} `json:"message"`
			}
			if err := json.Unmarshal(d.Data, &data); err != nil {
				t.Fatal(err)
			}
			m := data.Message
			if !want[m.ID] || m.FromUserID == "" {
				t.Fatalf("got message %+v, not one appended", m)
			}
			key := "pair"
			if m.ChatID != 0 {
				key = "chat" + itoa(m.ChatID)
			} else if m.ToUserID == nil {
				t.Fatalf("personal message %+v without to_user_id", m)
			}
			ids[d.ID]++
			if ids[d.ID] > 1 {
				continue // at least once: a repeat, same delivery id
			}
			if m.ID <= last[key] {
				t.Fatalf("chain %s: got message %d after %d, want them in order", key, m.ID, last[key])
			}
			last[key] = m.ID
		}
		if rcv.badSig != 0 {
			t.Fatalf("got %d deliveries with a bad signature", rcv.badSig)
		}
		t.Logf("%d events, %d deliveries, %d refused attempts while down", len(want), len(rcv.deliveries()), rcv.refused)
	})
}

func TestCheckURL(t *testing.T) {
	db := dbtest.Open(t, "sqlite")
	s, err := New(db, Options{DenyHosts: []string{"10.0.0.0/8", "internal.example", "::1"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		url, code string
	}{
		{"https://portal.example.com/hook", ""},
		{"http://127.0.0.1:8080/hook", ""},
		{"ftp://portal.example.com/hook", "invalid_url"},
		{"/relative", "invalid_url"},
		{"", "missing_url"},
		{"http://user:pw@portal.example.com/", "invalid_url"},
		{"http://10.1.2.3/hook", "denied_host"},
		{"http://[::1]:9000/hook", "denied_host"},
		{"https://api.internal.example/hook", "denied_host"},
		{"https://INTERNAL.example./hook", "denied_host"},
	} {
		t.Run(tc.url, func(t *testing.T) {
			err := s.CheckURL(context.Background(), tc.url)
			var inv *InvalidError
			switch {
			case tc.code == "" && err != nil:
				t.Fatalf("got %v, want it accepted", err)
			case tc.code != "" && (!errors.As(err, &inv) || inv.Code != tc.code || inv.Field != "url"):
				t.Fatalf("got %v, want %s on url", err, tc.code)
			}
		})
	}
	if _, err := New(db, Options{DenyHosts: []string{"bad host/x"}}); err == nil {
		t.Fatal("a malformed deny list was accepted")
	}
}

func TestCreateRefusesBadInput(t *testing.T) {
	db := dbtest.Open(t, "sqlite")
	s, err := New(db, Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, n := range []NewWebhook{
		{URL: "http://127.0.0.1/x"},
		{URL: "http://127.0.0.1/x", Events: []string{"message.exploded"}},
		{URL: "http://127.0.0.1/x", Events: []string{MessageCreated}, Format: "xml"},
	} {
		if _, err := s.Create(ctx, n); err == nil {
			t.Fatalf("%+v was accepted", n)
		}
	}
	var n int
	db.Get(&n, `SELECT COUNT(*) FROM webhooks`)
	if n != 0 {
		t.Fatalf("got %d webhooks after refusals, want 0", n)
	}
}

// TestQueueBound: past MaxQueue pending deliveries a webhook's new events
// are dropped and counted; the messages themselves are stored.
func TestQueueBound(t *testing.T) {
	db := dbtest.Open(t, "sqlite")
	ctx := context.Background()
	alice, _ := importDemo(t, db)
	opts := fastOptions()
	opts.MaxQueue = 5
	s, err := New(db, opts)
	if err != nil {
		t.Fatal(err)
	}
	h, err := s.Create(ctx, NewWebhook{URL: "http://127.0.0.1:1/never", Events: []string{MessageCreated}})
	if err != nil {
		t.Fatal(err)
	}
	archive := mam.NewStoreOptions(db, mam.Options{OnChange: s.ArchiveChange})
	for i := 0; i < 8; i++ {
		if _, err := archive.Append(ctx, &mam.Message{Kind: mam.KindGroupchat, FromID: alice, ChatID: 1, Body: "x"}); err != nil {
			t.Fatal(err)
		}
	}
	if n, _ := s.Pending(ctx, h.ID); n != 5 {
		t.Fatalf("got %d pending, want 5", n)
	}
	if s.Dropped() != 3 {
		t.Fatalf("got %d dropped, want 3", s.Dropped())
	}
	var stored int
	db.Get(&stored, `SELECT COUNT(*) FROM messages`)
	if stored != 8 {
		t.Fatalf("got %d messages stored, want 8", stored)
	}
}

func TestParseCommand(t *testing.T) {
	for _, tc := range []struct {
		in, cmd, params string
		ok              bool
	}{
		{"/weather Moscow", "/weather", "Moscow", true},
		{"  /help  ", "/help", "", true},
		{"/echo a b\nc", "/echo", "a b\nc", true},
		{"/погода Москва", "/погода", "Москва", true},
		{"hello /cmd", "", "", false},
		{"/", "", "", false},
		{"/1abc", "", "", false},
		{"//x", "", "", false},
		{"/path/to/file", "", "", false},
	} {
		cmd, params, ok := ParseCommand(tc.in)
		if cmd != tc.cmd || params != tc.params || ok != tc.ok {
			t.Errorf("ParseCommand(%q) = %q, %q, %v; want %q, %q, %v", tc.in, cmd, params, ok, tc.cmd, tc.params, tc.ok)
		}
	}
}

// TestDenyAtConnect: the deny list also holds when a delivery connects,
// so a receiver whose name later points into a denied range gets nothing.
func TestDenyAtConnect(t *testing.T) {
	db := dbtest.Open(t, "sqlite")
	ctx := context.Background()
	alice, _ := importDemo(t, db)
	rcv := newReceiver(t)
	rcv.up.Store(true)
	opts := fastOptions()
	opts.DenyHosts = []string{"127.0.0.0/8"}
	var failed atomic.Int32
	opts.OnDelivery = func(ok bool, _, _ time.Duration) {
		if !ok {
			failed.Add(1)
		}
	}
	s, err := New(db, opts)
	if err != nil {
		t.Fatal(err)
	}
	// Registered as if its name had resolved elsewhere then.
	db.MustExec(`INSERT INTO webhooks (url, secret, events, format, created_at) VALUES (?, 's', 'message.created', 'json', 1)`, rcv.srv.URL)
	archive := mam.NewStoreOptions(db, mam.Options{OnChange: s.ArchiveChange})
	s.Start()
	defer s.Shutdown(ctx)
	if _, err := archive.Append(ctx, &mam.Message{Kind: mam.KindGroupchat, FromID: alice, ChatID: 1, Body: "x"}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a refused attempt", 5*time.Second, func() bool { return failed.Load() > 0 })
	rcv.mu.Lock()
	defer rcv.mu.Unlock()
	if len(rcv.got) != 0 || rcv.refused != 0 {
		t.Fatalf("the receiver in a denied range was reached: %d deliveries", len(rcv.got))
	}
}

// TestKeyboardPressed: the core's keyboard press reaches webhooks that
// asked for keyboard.pressed as JSON, and the Bitrix24 bot whose keyboard
// it is as ONIMCOMMANDADD with COMMAND_CONTEXT=KEYBOARD — only for a
// command it registered.
func TestKeyboardPressed(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlx.DB) {
		ctx := context.Background()
		alice, _ := importDemo(t, db)
		users := roster.NewStore(db)
		bot, err := users.CreateBot(ctx, "echo", "Эхо")
		if err != nil {
			t.Fatal(err)
		}
		if err := users.AddBotCommand(ctx, bot.UserID, "echo"); err != nil {
			t.Fatal(err)
		}
		var mu sync.Mutex
		var jsons []Delivery
		var forms []url.Values
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			body, _ := io.ReadAll(r.Body)
			mu.Lock()
			defer mu.Unlock()
			if r.Header.Get("Content-Type") == "application/x-www-form-urlencoded" {
				f, _ := url.ParseQuery(string(body))
				if Verify(f.Get("auth[application_token]"), body, r.Header.Get(SignatureHeader)) {
					forms = append(forms, f)
				}
				return
			}
			var d Delivery
			json.Unmarshal(body, &d)
			jsons = append(jsons, d)
		}))
		defer srv.Close()
		s, err := New(db, fastOptions())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Create(ctx, NewWebhook{URL: srv.URL + "/all", Events: []string{KeyboardPressed}}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Create(ctx, NewWebhook{URL: srv.URL + "/bot", Events: []string{CommandReceived}, BotID: bot.UserID, Format: FormatBitrix}); err != nil {
			t.Fatal(err)
		}
		s.Start()
		defer s.Shutdown(ctx)
		s.KeyboardPressed(ctx, KeyPress{MessageID: 41, ChatID: 7, AuthorID: bot.UserID, UserID: alice, Button: 1, Text: "Повторить", Command: "other", Params: "x"})
		s.KeyboardPressed(ctx, KeyPress{MessageID: 42, ChatID: 7, AuthorID: bot.UserID, UserID: alice, Button: 0, Text: "Эхо", Command: "echo", Params: "привет"})
		waitFor(t, "both presses as JSON and one form", 15*time.Second, func() bool {
			mu.Lock()
			defer mu.Unlock()
			// At least once: a press may come twice (a retry after a slow answer).
			return pressedJSON(jsons, 41) != nil && pressedJSON(jsons, 42) != nil && len(forms) >= 1
		})
		time.Sleep(100 * time.Millisecond)
		mu.Lock()
		defer mu.Unlock()
		f := forms[0]
		for k, want := range map[string]string{"event": "ONIMCOMMANDADD", "data[COMMAND][bot_echo][COMMAND]": "echo",
			"data[COMMAND][bot_echo][COMMAND_PARAMS]": "привет", "data[COMMAND][bot_echo][COMMAND_CONTEXT]": "KEYBOARD",
			"data[COMMAND][bot_echo][MESSAGE_ID]": "42", "data[PARAMS][DIALOG_ID]": "chat7", "data[PARAMS][FROM_USER_ID]": "1"} {
			if f.Get(k) != want {
				t.Errorf("%s: got %q, want %q", k, f.Get(k), want)
			}
		}
		// Delivery is at least once: a repeat of the same form may come;
		// another form (the unregistered command's) may not.
		distinct := map[string]bool{}
		for _, f := range forms {
			distinct[f.Encode()] = true
		}
		if len(distinct) != 1 {
			t.Errorf("got %d different forms, want 1 (an unregistered command is not posted): %v", len(distinct), forms)
		}
		d := pressedJSON(jsons, 42)
		var data map[string]any
		json.Unmarshal(d.Data, &data)
		if d.Event != KeyboardPressed || data["command"] != "echo" || data["params"] != "привет" ||
			data["button"] != float64(0) || data["user_id"] != "1" || data["chat_id"] != float64(7) {
			t.Errorf("JSON delivery: %s %v", d.Event, data)
		}
	})
}

// pressedJSON returns the JSON delivery of the press on message id, nil
// if none came.
func pressedJSON(ds []Delivery, id float64) *Delivery {
	for i := range ds {
		var data map[string]any
		if json.Unmarshal(ds[i].Data, &data) == nil && data["message_id"] == id {
			return &ds[i]
		}
	}
	return nil
}
