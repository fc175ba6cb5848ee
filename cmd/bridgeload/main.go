// Command bridgeload measures the web bridge under load: it starts the
// server's parts in-process on a fresh database (the XMPP core, the chat
// service, the bridge on a real HTTP listener), imports an org of -users
// employees, logs each one in over HTTP, opens one WebSocket per user,
// and has every user send a personal message to a random colleague
// -rate times per second. It reports the acknowledgement latency (send
// → stored → ack) and the delivery latency (send → the recipient's
// browser connection receives the event), after a warm-up.
//
//	go run ./cmd/bridgeload -users 1000 -duration 30s
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	"vestnik/bridge"
	"vestnik/migrations"
	"vestnik/roster"
	"vestnik/xmppcore"
	"vestnik/xmppcore/mam"
	"vestnik/xmppcore/muc"
)

func main() {
	users := flag.Int("users", 1000, "bridge sessions (one employee each)")
	rate := flag.Float64("rate", 1, "messages per second per session")
	duration := flag.Duration("duration", 30*time.Second, "measured time (after a 5 s warm-up)")
	dbURL := flag.String("db", "", "database URL (default: a fresh SQLite file in a temp dir)")
	peers := flag.Int("peers", 5, "colleagues each user writes to, in turn (0: a random employee each time: every message is then likely a first contact, which costs roster pushes)")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of the measured period")
	flag.Parse()
	profile = *cpuProfile
	peerCount = *peers
	if err := run(*users, *rate, *duration, *dbURL); err != nil {
		fmt.Fprintln(os.Stderr, "bridgeload:", err)
		os.Exit(1)
	}
}

func run(n int, rate float64, duration time.Duration, dbURL string) error {
	ctx := context.Background()
	if dbURL == "" {
		dir, err := os.MkdirTemp("", "bridgeload")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		dbURL = "sqlite:" + filepath.Join(dir, "v.db")
	}
	db, err := migrations.Open(ctx, dbURL)
	if err != nil {
		return err
	}
	defer db.Close()
	if _, err := migrations.Up(ctx, db); err != nil {
		return err
	}
	rs := roster.NewStore(db)
	t0 := time.Now()
	if _, err := rs.Import(ctx, company(n), false); err != nil {
		return fmt.Errorf("import: %w", err)
	}
	fmt.Printf("imported %d employees in %v\n", n, time.Since(t0).Round(time.Millisecond))

	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	arch := mam.NewStore(db)
	srv := xmppcore.NewServer(db, rs, arch, xmppcore.Options{Domain: "localhost", Logger: log})
	chats := muc.NewStore(db)
	svc := muc.New(chats, srv, arch, rs, muc.Options{Domain: "localhost", Logger: log})
	svc.Register(srv)
	b := bridge.New(db, rs, chats, bridge.XMPP(srv, rs, chats, svc, arch, log), bridge.NewArchive(arch, chats), bridge.Options{Logger: log})
	mux := http.NewServeMux()
	b.Register(mux)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	hs := &http.Server{Handler: mux}
	go hs.Serve(ln)
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		b.Shutdown(sctx)
		srv.Shutdown(sctx)
		hs.Shutdown(sctx)
	}()
	base := "http://" + ln.Addr().String()

	// Log in and connect everyone (a few at a time: logins run PBKDF2).
	t0 = time.Now()
	clients := make([]*client, n)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 2*runtime.NumCPU())
	var firstErr atomic.Value
	for i := range clients {
		wg.Add(1)
		sem <- struct{}{}
		go func(i int) {
			defer wg.Done()
			defer func() { <-sem }()
			c, err := connect(base, fmt.Sprintf("u%05d", i))
			if err != nil {
				firstErr.CompareAndSwap(nil, err)
				return
			}
			clients[i] = c
		}(i)
	}
	wg.Wait()
	if e := firstErr.Load(); e != nil {
		return e.(error)
	}
	fmt.Printf("%d sessions logged in and synced in %v\n", n, time.Since(t0).Round(time.Millisecond))
	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	fmt.Printf("heap after connect: %.1f MiB (%.1f KiB per session, client side included), goroutines %d\n",
		float64(ms.HeapAlloc)/(1<<20), float64(ms.HeapAlloc)/1024/float64(n), runtime.NumGoroutine())

	ids := make([]int64, n)
	for i, c := range clients {
		ids[i] = c.userID
	}
	for _, c := range clients {
		go c.readLoop()
	}
	// Prime: every pair's first contact (roster pushes) happens before the
	// measurement, then the backlog drains.
	if peerCount > 0 {
		t0 := time.Now()
		// In waves of 50 sessions: a first contact is expensive.
		for lo := 0; lo < n; lo += 50 {
			for i := lo; i < min(lo+50, n); i++ {
				for k := 0; k < peerCount; k++ {
					clients[i].send(ids[peerOf(i, k, len(ids))])
				}
			}
			deadline := time.Now().Add(60 * time.Second)
			for i := lo; i < min(lo+50, n); i++ {
				for clients[i].inFlight() > 0 && time.Now().Before(deadline) {
					time.Sleep(20 * time.Millisecond)
				}
			}
		}
		time.Sleep(2 * time.Second)
		fmt.Printf("primed %d pairs in %v\n", n*peerCount, time.Since(t0).Round(time.Millisecond))
	}
	warm := 3 * time.Second
	start := time.Now()
	measureFrom := start.Add(warm)
	end := measureFrom.Add(duration)
	for i, c := range clients {
		go c.sendLoop(ids, i, rate, start, end)
	}
	if profile != "" {
		time.Sleep(warm)
		f, err := os.Create(profile)
		if err != nil {
			return err
		}
		pprof.StartCPUProfile(f)
		time.Sleep(duration)
		pprof.StopCPUProfile()
		f.Close()
	}
	time.Sleep(time.Until(end) + 2*time.Second)

	var acks, dels []time.Duration
	var sent, errs int64
	for _, c := range clients {
		c.mu.Lock()
		for _, s := range c.acks {
			if s.at.After(measureFrom) {
				acks = append(acks, s.d)
			}
		}
		for _, s := range c.dels {
			if s.at.After(measureFrom) {
				dels = append(dels, s.d)
			}
		}
		c.mu.Unlock()
		sent += c.sent.Load()
		errs += c.errs.Load()
		c.ws.Close()
	}
	fmt.Printf("sent %d messages, %d errors; measured %v at %.0f msgs/s offered\n", sent, errs, duration, float64(n)*rate)
	report("ack (send → stored → ack)", acks, duration)
	report("delivery (send → recipient's socket)", dels, duration)
	return nil
}

var (
	profile   string
	peerCount int
)

func report(name string, ds []time.Duration, over time.Duration) {
	if len(ds) == 0 {
		fmt.Printf("%s: no samples\n", name)
		return
	}
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	p := func(q float64) time.Duration {
		return ds[min(len(ds)-1, int(q*float64(len(ds))))].Round(10 * time.Microsecond)
	}
	fmt.Printf("%s: n=%d (%.0f/s) p50=%v p90=%v p99=%v max=%v\n", name, len(ds), float64(len(ds))/over.Seconds(), p(0.5), p(0.9), p(0.99), ds[len(ds)-1].Round(10*time.Microsecond))
}

// company is an org of n employees in departments of 50 (password "load").
func company(n int) *roster.Snapshot {
	s := &roster.Snapshot{Departments: []roster.SnapshotDepartment{{ID: "d0", Name: "Company"}}}
	for d := 0; d*50 < n; d++ {
		s.Departments = append(s.Departments, roster.SnapshotDepartment{ID: roster.ExtID(fmt.Sprintf("d%d", d+1)), Name: fmt.Sprintf("Department %d", d+1), Parent: "d0"})
	}
	for i := 0; i < n; i++ {
		s.Employees = append(s.Employees, roster.SnapshotEmployee{
			ID: roster.ExtID(strconv.Itoa(i + 1)), Login: fmt.Sprintf("u%05d", i), Name: fmt.Sprintf("User %d", i),
			Departments: []roster.ExtID{roster.ExtID(fmt.Sprintf("d%d", i/50+1))}, Password: "load",
		})
	}
	return s
}

type sample struct {
	at time.Time
	d  time.Duration
}

type client struct {
	ws     *websocket.Conn
	userID int64
	wmu    sync.Mutex
	seq    atomic.Int64
	sent   atomic.Int64
	errs   atomic.Int64

	mu      sync.Mutex
	pending map[string]time.Time
	acks    []sample
	dels    []sample
}

func connect(base, login string) (*client, error) {
	jar, _ := cookiejar.New(nil)
	hc := &http.Client{Jar: jar}
	body, _ := json.Marshal(map[string]string{"login": login, "password": "load"})
	req, _ := http.NewRequest("POST", base+"/login", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Origin", base)
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	var lr struct {
		User struct {
			ID int64 `json:"id"`
		} `json:"user"`
	}
	json.NewDecoder(resp.Body).Decode(&lr)
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		return nil, fmt.Errorf("login %s: %s", login, resp.Status)
	}
	u, _ := url.Parse(base)
	hdr := http.Header{"Origin": {base}}
	for _, c := range jar.Cookies(u) {
		hdr.Add("Cookie", c.Name+"="+c.Value)
	}
	ws, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(base, "http")+"/ws", hdr)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", login, err)
	}
	c := &client{ws: ws, userID: lr.User.ID, pending: map[string]time.Time{}}
	if err := ws.WriteJSON(map[string]any{"type": "hello", "id": "h", "last_id": 0}); err != nil {
		return nil, err
	}
	for {
		var f map[string]any
		ws.SetReadDeadline(time.Now().Add(30 * time.Second))
		if err := ws.ReadJSON(&f); err != nil {
			return nil, fmt.Errorf("hello %s: %w", login, err)
		}
		if f["type"] == "synced" {
			ws.SetReadDeadline(time.Time{})
			return c, nil
		}
	}
}

func (c *client) readLoop() {
	for {
		_, data, err := c.ws.ReadMessage()
		if err != nil {
			return
		}
		now := time.Now()
		var f struct {
			Type    string `json:"type"`
			ID      string `json:"id"`
			Code    string `json:"code"`
			Message struct {
				Body string `json:"body"`
				From int64  `json:"from"`
			} `json:"message"`
		}
		if json.Unmarshal(data, &f) != nil {
			continue
		}
		switch f.Type {
		case "ack":
			c.mu.Lock()
			if t, ok := c.pending[f.ID]; ok {
				delete(c.pending, f.ID)
				c.acks = append(c.acks, sample{now, now.Sub(t)})
			}
			c.mu.Unlock()
		case "error":
			c.errs.Add(1)
			c.mu.Lock()
			delete(c.pending, f.ID)
			c.mu.Unlock()
		case "message":
			if ns, ok := strings.CutPrefix(f.Message.Body, "load "); ok && f.Message.From != c.userID {
				if v, err := strconv.ParseInt(ns, 10, 64); err == nil {
					c.mu.Lock()
					c.dels = append(c.dels, sample{now, now.Sub(time.Unix(0, v))})
					c.mu.Unlock()
				}
			}
		}
	}
}

func (c *client) sendLoop(ids []int64, self int, rate float64, start, end time.Time) {
	every := time.Duration(float64(time.Second) / rate)
	time.Sleep(time.Duration(rand.Int64N(int64(every)))) // spread the phases
	t := time.NewTicker(every)
	defer t.Stop()
	for k, now := 0, time.Now(); now.Before(end); k, now = k+1, <-t.C {
		to := ids[peerOf(self, k, len(ids))]
		if peerCount == 0 {
			to = ids[rand.IntN(len(ids))]
		}
		if to == c.userID {
			to = ids[(self+1)%len(ids)]
		}
		if !c.send(to) {
			return
		}
	}
}

// peerOf is user i's k-th fixed peer: the next ones in the same department.
func peerOf(i, k, n int) int {
	p := (i/50*50 + (i%50+1+k%max(peerCount, 1))%50) % n
	if p == i {
		p = (i + 1) % n
	}
	return p
}

func (c *client) inFlight() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.pending)
}

func (c *client) send(to int64) bool {
	id := "m" + strconv.FormatInt(c.seq.Add(1), 10)
	sentAt := time.Now()
	c.mu.Lock()
	c.pending[id] = sentAt
	c.mu.Unlock()
	c.wmu.Lock()
	err := c.ws.WriteJSON(map[string]any{"type": "send", "id": id, "to": map[string]int64{"user": to},
		"body": "load " + strconv.FormatInt(sentAt.UnixNano(), 10), "origin_id": id})
	c.wmu.Unlock()
	if err != nil {
		c.errs.Add(1)
		return false
	}
	c.sent.Add(1)
	return true
}
