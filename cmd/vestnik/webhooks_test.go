package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"vestnik/migrations/dbtest"
	"vestnik/xmppcore/webhook"
)

// hookReceiver is a webhook receiver on loopback: it verifies signatures,
// records deliveries and may be down (503) or run a bot's handler.
type hookReceiver struct {
	t   *testing.T
	srv *httptest.Server
	up  atomic.Bool

	mu      sync.Mutex
	secrets map[int64]string // webhook id → secret
	got     []webhook.Delivery
	refused int
	badSig  int
	onEvent func(d webhook.Delivery)
}

func newHookReceiver(t *testing.T) *hookReceiver {
	h := &hookReceiver{t: t, secrets: map[int64]string{}}
	h.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if !h.up.Load() {
			h.mu.Lock()
			h.refused++
			h.mu.Unlock()
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		var d webhook.Delivery
		if err := json.Unmarshal(body, &d); err != nil {
			t.Errorf("delivery is not JSON: %q", body)
			http.Error(w, "bad", 400)
			return
		}
		h.mu.Lock()
		secret := h.secrets[d.WebhookID]
		if !webhook.Verify(secret, body, r.Header.Get(webhook.SignatureHeader)) {
			h.badSig++
			h.mu.Unlock()
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		h.got = append(h.got, d)
		f := h.onEvent
		h.mu.Unlock()
		if f != nil {
			go f(d)
		}
	}))
	t.Cleanup(h.srv.Close)
	return h
}

func (h *hookReceiver) deliveries() []webhook.Delivery {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]webhook.Delivery(nil), h.got...)
}

// rest calls the REST API with a token and decodes the answer.
func rest(t *testing.T, base, token, method, path, body string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(method, "http://"+base+"/api/v1"+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

func waitUntil(t *testing.T, what string, d time.Duration, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestWebhooksEndToEnd runs the binary: events queued while the receiver
// is down survive a restart of the server and all arrive, signed, in order
// per chat (at least once: a repeat has the same delivery id); a bot
// registered over REST hears "/weather Moscow" said by a Jabber client in
// a chat, answers over REST with its own token, and the Jabber client sees
// the answer.
func TestWebhooksEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin := buildBinary(t)
	url := dbtest.URL(t, "sqlite")
	out, err := runCLI(t, "", "migrate", "--db", url)
	if err != nil {
		t.Fatalf("migrate: %v %s", err, out)
	}
	s := startServer(t, bin, url)
	token, err := runCLI(t, "", "token", "create", "portal", "--db", url)
	if err != nil {
		t.Fatal(err)
	}
	token = strings.TrimSpace(token)
	rcv := newHookReceiver(t)

	st, hook := rest(t, s.httpAt, token, "POST", "/webhooks", `{"url":"`+rcv.srv.URL+`/events","events":["message.created"]}`)
	if st != 201 || hook["secret"] == nil {
		t.Fatalf("POST /webhooks: got %d %v", st, hook)
	}
	hookID := int64(hook["id"].(float64))
	rcv.secrets[hookID] = hook["secret"].(string)

	// Two chats; messages while the receiver is down.
	var chats []float64
	for i := 0; i < 2; i++ {
		st, c := rest(t, s.httpAt, token, "POST", "/chats", fmt.Sprintf(`{"title":"Чат %d","type":"closed","owner_id":"2","users":["2","3"]}`, i))
		if st != 201 {
			t.Fatalf("POST /chats: %d %v", st, c)
		}
		chats = append(chats, c["id"].(float64))
	}
	const perChat = 10
	want := 2*perChat + len(chats) // and each chat's created notice (a system message)
	for i := 0; i < perChat; i++ {
		for _, c := range chats {
			st, m := rest(t, s.httpAt, token, "POST", fmt.Sprintf("/chats/%d/messages", int64(c)), fmt.Sprintf(`{"from_user_id":"2","message":"n%d"}`, i))
			if st != 201 {
				t.Fatalf("post: %d %v", st, m)
			}
		}
	}
	waitUntil(t, "attempts against the receiver that is down", 10*time.Second, func() bool {
		rcv.mu.Lock()
		defer rcv.mu.Unlock()
		return rcv.refused >= 2
	})
	s.stop(t)

	// Up again, and the server restarted on the same database.
	rcv.up.Store(true)
	s = startServer(t, bin, url)
	waitUntil(t, "every event after the restart", 30*time.Second, func() bool {
		seen := map[int64]bool{}
		for _, d := range rcv.deliveries() {
			seen[d.ID] = true
		}
		return len(seen) >= want
	})
	last := map[float64]float64{}
	repeats := 0
	seen := map[int64]bool{}
	for _, d := range rcv.deliveries() {
		if seen[d.ID] {
			repeats++
			continue
		}
		seen[d.ID] = true
		var data struct {
			Message map[string]any `json:"message"`
		}
		json.Unmarshal(d.Data, &data)
		c, id := data.Message["chat_id"].(float64), data.Message["id"].(float64)
		if id <= last[c] {
			t.Fatalf("chat %v: message %v after %v, want them in order", c, id, last[c])
		}
		last[c] = id
	}
	if len(seen) != want || rcv.badSig != 0 {
		t.Fatalf("got %d distinct deliveries (%d bad signatures), want %d", len(seen), rcv.badSig, want)
	}
	t.Logf("restart: %d events delivered, %d repeats, %d refused attempts while down", len(seen), repeats, rcv.refused)

	// A bot: registered with a webhook, added to a chat, hears a command
	// from a Jabber client and answers with its own token.
	st, bot := rest(t, s.httpAt, token, "POST", "/bots", `{"code":"weather","name":"Погода","url":"`+rcv.srv.URL+`/bot"}`)
	if st != 201 {
		t.Fatalf("POST /bots: %d %v", st, bot)
	}
	botHook := bot["webhook"].(map[string]any)
	rcv.mu.Lock()
	rcv.secrets[int64(botHook["id"].(float64))] = botHook["secret"].(string)
	botToken, botID := bot["token"].(string), bot["id"].(string)
	rcv.onEvent = func(d webhook.Delivery) {
		if d.Event != webhook.CommandReceived {
			return
		}
		var c struct {
			Command, Params string
			ChatID          int64  `json:"chat_id"`
			From            string `json:"from_user_id"`
		}
		json.Unmarshal(d.Data, &c)
		answer := fmt.Sprintf(`{"from_user_id":%q,"message":"%s: in %s it is sunny (asked by %s)"}`, botID, c.Command, c.Params, c.From)
		if st, out := rest(t, s.httpAt, botToken, "POST", fmt.Sprintf("/chats/%d/messages", c.ChatID), answer); st != 201 {
			t.Errorf("the bot's answer: %d %v", st, out)
		}
	}
	rcv.mu.Unlock()
	st, c := rest(t, s.httpAt, token, "POST", "/chats", `{"title":"Погодный чат","type":"closed","owner_id":"2","users":["2","`+botID+`"]}`)
	if st != 201 {
		t.Fatalf("POST /chats with the bot: %d %v", st, c)
	}
	room := c["jid"].(string)
	ivan := xdial(t, s.c2sAt, "ivanov@example.test", "demo")
	ivan.send(`<presence xmlns='jabber:client' to='` + room + `/ivan'><x xmlns='http://jabber.org/protocol/muc'/></presence>`)
	ivan.expect(`status code="110"`)
	ivan.send(`<message xmlns='jabber:client' to='` + room + `' type='groupchat' id='cmd1'><body>/weather Moscow</body></message>`)
	ivan.expect(`/weather: in Moscow it is sunny (asked by 2)`)
	ivan.close()

	// The bot's keyboard: a button pressed over REST is keyboard.pressed at
	// the bot's webhook (the core's press, wired to the queue in serve).
	chatID := int64(c["id"].(float64))
	st, kb := rest(t, s.httpAt, botToken, "POST", fmt.Sprintf("/chats/%d/messages", chatID),
		`{"from_user_id":"`+botID+`","message":"Прогноз на завтра?","keyboard":[{"text":"Да","command":"forecast","command_params":"tomorrow"}]}`)
	if st != 201 {
		t.Fatalf("the bot's keyboard message: %d %v", st, kb)
	}
	msgID := int64(kb["id"].(float64))
	if st, out := rest(t, s.httpAt, token, "POST", fmt.Sprintf("/messages/%d/keyboard", msgID), `{"from_user_id":"2","button":0}`); st/100 != 2 {
		t.Fatalf("pressing the bot's button: %d %v", st, out)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		var press map[string]any
		for _, d := range rcv.deliveries() {
			if d.Event == webhook.KeyboardPressed {
				json.Unmarshal(d.Data, &press)
			}
		}
		if press != nil {
			if press["command"] != "forecast" || press["params"] != "tomorrow" || int64(press["message_id"].(float64)) != msgID {
				t.Fatalf("keyboard.pressed: %v", press)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no keyboard.pressed reached the bot's webhook")
		}
		time.Sleep(50 * time.Millisecond)
	}

	// A bot's token acts as the bot only.
	if st, _ := rest(t, s.httpAt, botToken, "POST", fmt.Sprintf("/chats/%d/messages", int64(c["id"].(float64))), `{"from_user_id":"2","message":"impostor"}`); st != 403 {
		t.Fatalf("the bot's token posting as someone else: got %d, want 403", st)
	}
	s.stop(t)
}
