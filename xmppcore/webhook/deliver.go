package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"runtime/debug"
	"strconv"
	"time"
)

// The dispatcher: one goroutine (run) reads the heads of the queue's
// chains that are due, claims each (on PostgreSQL, where several nodes
// share the queue: moving its next_at past the attempt's timeout, so
// another node does not send it at the same time; in memory, busy, on
// both), and hands it to a worker goroutine (at most Options.Workers, at
// most PerWebhookWorkers per webhook). A worker posts it; on a 2xx answer
// the row is deleted, otherwise it is due again after a backoff that
// doubles per attempt (RetryBase … RetryMax) until MaxAge, when it is
// dropped. s.mu guards the in-memory bookkeeping only, never held across
// I/O.

// Wake tells the dispatcher that events were queued.
func (s *Service) Wake() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Start starts delivering. Shutdown stops.
func (s *Service) Start() {
	s.start.Do(func() {
		s.wg.Add(1)
		go s.run()
	})
}

// Shutdown stops the dispatcher and waits for attempts under way (they are
// cancelled by ctx's end; their events stay queued).
func (s *Service) Shutdown(ctx context.Context) error {
	s.cancel()
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

type queued struct {
	ID        int64  `db:"id"`
	WebhookID int64  `db:"webhook_id"`
	Chain     string `db:"chain"`
	Kind      string `db:"kind"`
	Data      string `db:"data"`
	Attempts  int    `db:"attempts"`
	NextAt    int64  `db:"next_at"`
	CreatedAt int64  `db:"created_at"`
}

func (s *Service) run() {
	defer s.wg.Done()
	t := time.NewTicker(s.opts.Poll)
	defer t.Stop()
	recheck := time.NewTimer(time.Hour)
	defer recheck.Stop()
	for {
		s.pick()
		select {
		case <-s.ctx.Done():
			return
		case <-s.wake:
			// The queuing transaction may commit a moment later.
			recheck.Reset(50 * time.Millisecond)
			if !sleep(s.ctx, 5*time.Millisecond) {
				return
			}
		case <-recheck.C:
		case <-t.C:
		}
	}
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// pick starts attempts for the due heads of chains.
func (s *Service) pick() {
	ctx, cancel := context.WithTimeout(s.ctx, 10*time.Second)
	defer cancel()
	if time.Since(s.counted) >= time.Second {
		s.refreshPending(ctx)
		s.counted = time.Now()
	}
	now := time.Now().UnixMicro()
	var rows []queued
	err := s.db.SelectContext(ctx, &rows, s.db.Rebind(`SELECT q.id, q.webhook_id, q.chain, q.kind, q.data, q.attempts, q.next_at, q.created_at
		FROM webhook_queue q WHERE q.id IN (SELECT MIN(id) FROM webhook_queue GROUP BY webhook_id, chain) AND q.next_at <= ?
		ORDER BY q.id LIMIT ?`), now, pickBatch)
	if err != nil {
		if s.ctx.Err() == nil {
			s.log.Warn("read webhook queue", "err", err)
		}
		return
	}
	for _, r := range rows {
		key := itoa(r.WebhookID) + "/" + r.Chain
		s.mu.Lock()
		skip := s.busy[key] || s.inflight[r.WebhookID] >= PerWebhookWorkers
		s.mu.Unlock()
		if skip {
			continue
		}
		select {
		case s.sem <- struct{}{}:
		default:
			return // every worker is busy: the next round
		}
		if s.pg {
			// Claim: move next_at past this attempt, only if no other
			// node did. (SQLite has one server: busy is enough.)
			lease := time.Now().Add(s.opts.Timeout + 5*time.Second).UnixMicro()
			res, err := s.db.ExecContext(ctx, s.db.Rebind(`UPDATE webhook_queue SET next_at = ?, attempts = attempts + 1 WHERE id = ? AND next_at = ?`),
				lease, r.ID, r.NextAt)
			n := int64(0)
			if err == nil {
				n, _ = res.RowsAffected()
			}
			if n != 1 {
				<-s.sem
				continue
			}
		}
		r.Attempts++
		s.mu.Lock()
		s.busy[key] = true
		s.inflight[r.WebhookID]++
		s.mu.Unlock()
		s.wg.Add(1)
		go s.attempt(r, key)
	}
}

// refreshPending recounts the queue per webhook (the bound of enqueue).
func (s *Service) refreshPending(ctx context.Context) {
	var rows []struct {
		ID int64 `db:"webhook_id"`
		N  int   `db:"n"`
	}
	if err := s.db.SelectContext(ctx, &rows, `SELECT webhook_id, COUNT(*) AS n FROM webhook_queue GROUP BY webhook_id`); err != nil {
		return
	}
	m := make(map[int64]int, len(rows))
	for _, r := range rows {
		m[r.ID] = r.N
	}
	s.mu.Lock()
	s.pending = m
	s.mu.Unlock()
}

// chainRun bounds how many events of one chain an attempt goroutine
// sends in a row before it gives its worker back (fairness).
const chainRun = 50

// attempt posts a chain's events from r on, in order, while they are
// delivered and due (at most chainRun), recording each outcome: the next
// event of a chain is read by its index, not by a scan of the queue.
func (s *Service) attempt(r queued, key string) {
	defer s.wg.Done()
	defer func() {
		if p := recover(); p != nil {
			s.log.Error("webhook attempt panicked", "panic", p, "stack", string(debug.Stack()))
		}
		s.mu.Lock()
		delete(s.busy, key)
		s.inflight[r.WebhookID]--
		s.mu.Unlock()
		<-s.sem
		s.Wake()
	}()
	h := s.byID(s.ctx, r.WebhookID)
	if h == nil { // deleted meanwhile
		s.db.ExecContext(context.Background(), s.db.Rebind(`DELETE FROM webhook_queue WHERE webhook_id = ?`), r.WebhookID)
		return
	}
	for i := 0; ; i++ {
		if !s.deliver(h, r) || i+1 >= chainRun || s.ctx.Err() != nil {
			return
		}
		next, ok := s.nextInChain(r)
		if !ok {
			return
		}
		r = next
	}
}

// nextInChain reads and claims the event after r in its chain, if it is
// due.
func (s *Service) nextInChain(r queued) (queued, bool) {
	ctx, cancel := context.WithTimeout(s.ctx, 10*time.Second)
	defer cancel()
	var next queued
	err := s.db.GetContext(ctx, &next, s.db.Rebind(`SELECT id, webhook_id, chain, kind, data, attempts, next_at, created_at
		FROM webhook_queue WHERE webhook_id = ? AND chain = ? AND id > ? ORDER BY id LIMIT 1`), r.WebhookID, r.Chain, r.ID)
	if err != nil || next.NextAt > time.Now().UnixMicro() {
		return next, false
	}
	if s.pg {
		lease := time.Now().Add(s.opts.Timeout + 5*time.Second).UnixMicro()
		res, err := s.db.ExecContext(ctx, s.db.Rebind(`UPDATE webhook_queue SET next_at = ?, attempts = attempts + 1 WHERE id = ? AND next_at = ?`),
			lease, next.ID, next.NextAt)
		if err != nil {
			return next, false
		}
		if n, _ := res.RowsAffected(); n != 1 {
			return next, false
		}
	}
	next.Attempts++
	return next, true
}

// deliver posts one queued event and records the outcome; it reports
// whether the event was delivered.
func (s *Service) deliver(h *Webhook, r queued) bool {
	start := time.Now()
	err := s.post(h, r)
	took := time.Since(start)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err == nil {
		if s.opts.OnDelivery != nil {
			s.opts.OnDelivery(true, took, time.Since(time.UnixMicro(r.CreatedAt)))
		}
		if _, err := s.db.ExecContext(ctx, s.db.Rebind(`DELETE FROM webhook_queue WHERE id = ?`), r.ID); err != nil {
			s.log.Warn("delete delivered webhook event", "webhook", r.WebhookID, "id", r.ID, "err", err)
			return false
		}
		return true
	}
	if s.opts.OnDelivery != nil {
		s.opts.OnDelivery(false, took, 0)
	}
	if s.ctx.Err() != nil {
		// Stopping: the event is due again at once on the next start.
		s.db.ExecContext(ctx, s.db.Rebind(`UPDATE webhook_queue SET next_at = ?, attempts = ? WHERE id = ?`), time.Now().UnixMicro(), r.Attempts-1, r.ID)
		return false
	}
	if time.Since(time.UnixMicro(r.CreatedAt)) > s.opts.MaxAge {
		s.log.Warn("webhook event dropped after retries", "webhook", r.WebhookID, "id", r.ID, "event", r.Kind, "attempts", r.Attempts, "err", err)
		s.db.ExecContext(ctx, s.db.Rebind(`DELETE FROM webhook_queue WHERE id = ?`), r.ID)
		return false
	}
	next := time.Now().Add(s.backoff(r.Attempts)).UnixMicro()
	s.log.Debug("webhook attempt failed", "webhook", r.WebhookID, "id", r.ID, "attempt", r.Attempts, "err", err)
	if _, err := s.db.ExecContext(ctx, s.db.Rebind(`UPDATE webhook_queue SET next_at = ?, attempts = ? WHERE id = ?`), next, r.Attempts, r.ID); err != nil {
		s.log.Warn("reschedule webhook event", "webhook", r.WebhookID, "id", r.ID, "err", err)
	}
	return false
}

// backoff is the wait after the attempt-th failed attempt.
func (s *Service) backoff(attempt int) time.Duration {
	d := s.opts.RetryBase
	for i := 1; i < attempt && d < s.opts.RetryMax; i++ {
		d *= 2
	}
	return min(d, s.opts.RetryMax)
}

// Delivery is the JSON body of a delivery.
type Delivery struct {
	ID        int64           `json:"id"` // the same on every retry: receivers may drop repeats
	Event     string          `json:"event"`
	WebhookID int64           `json:"webhook_id"`
	CreatedAt string          `json:"created_at"`
	Data      json.RawMessage `json:"data"`
}

// post sends one event to its receiver.
func (s *Service) post(h *Webhook, r queued) error {
	body, err := json.Marshal(Delivery{ID: r.ID, Event: r.Kind, WebhookID: h.ID,
		CreatedAt: time.UnixMicro(r.CreatedAt).UTC().Format(time.RFC3339Nano), Data: json.RawMessage(r.Data)})
	if err != nil {
		return err
	}
	ctype := "application/json"
	if h.Format == FormatBitrix {
		bot, err := s.extID(s.ctx, s.db, h.BotID)
		if err != nil {
			return err
		}
		if body, err = bitrixBody(h, r, bot); err != nil {
			return err
		}
		ctype = "application/x-www-form-urlencoded"
	}
	ctx, cancel := context.WithTimeout(s.ctx, s.opts.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.URL, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", ctype)
	req.Header.Set("User-Agent", "Vestnik-Webhook/1")
	req.Header.Set(SignatureHeader, Sign(h.Secret, body))
	req.Header.Set(DeliveryHeader, strconv.FormatInt(r.ID, 10))
	req.Header.Set(EventHeader, r.Kind)
	resp, err := s.opts.Client.Do(req)
	if err != nil {
		return err
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("webhook: %s answered %d", h.URL, resp.StatusCode)
	}
	return nil
}

// Dropped is how many events were dropped because a webhook's queue was
// full.
func (s *Service) Dropped() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.dropped
}

// Pending is how many deliveries are queued for webhook id (as last
// counted).
func (s *Service) Pending(ctx context.Context, id int64) (int, error) {
	var n int
	err := s.db.GetContext(ctx, &n, s.db.Rebind(`SELECT COUNT(*) FROM webhook_queue WHERE webhook_id = ?`), id)
	return n, err
}
