package xmppcore

import (
	"context"
	"time"
)

// Delivery sequences and the delivery mark (issue 13).
//
// Every personal message gets its recipient's next delivery sequence
// when it is archived (mam.Store.Append). The user's delivery mark is the
// last contiguous sequence the user's clients confirmed: an XEP-0198 ack
// (conn.acked, a resumption's h), a delivery to a session that cannot
// acknowledge (a stream without XEP-0198, the bridge: handed over is all
// the server will ever learn), the bridge's hello with last_id
// (ConfirmDelivered). What was handed to an XEP-0198 stream and is not
// yet acknowledged is in flight; should that stream end without coming
// back, its messages are neither confirmed nor in flight and go again by
// offline delivery (the flush reads the archive above the mark and skips
// what is confirmed or in flight). So a message lost on the way (a stream
// cut, a crash) leaves a gap the mark does not pass.

// delivery is one online user's delivery state, guarded by the user's
// deliverMu.
type delivery struct {
	loaded bool         // mark read from the archive
	mark   DeliveryMark // last contiguous confirmed sequence
	stored int64        // the mark's sequence last stored
	// acked: sequences confirmed above the mark (a gap below them), → id.
	acked map[int64]int64
	// inflight: archive id → what an XEP-0198 stream holds unacknowledged.
	inflight map[int64]inflight
	// top: the highest sequence this node has seen for the user (routed,
	// given or confirmed); a sequence arriving above top+1 shows a gap.
	top int64
	// checking: a gap check is scheduled (GapRepairDelay).
	checking bool
}

// see records that sequence seq was routed, given or confirmed here and
// reports whether it shows a gap below it (it came above top+1, or
// sequences wait confirmed above the mark).
func (d *delivery) see(seq int64) bool {
	if seq == 0 || !d.loaded {
		return false
	}
	gap := seq > d.top+1
	d.top = max(d.top, seq)
	return gap || len(d.acked) > 0
}

// missing reports whether some sequence between the mark and top is
// neither confirmed nor in flight.
func (d *delivery) missing() bool {
	want := d.top - d.mark.Seq
	if want <= 0 {
		return false
	}
	have := int64(len(d.acked))
	for _, f := range d.inflight {
		if f.seq > d.mark.Seq && f.seq <= d.top {
			if _, ok := d.acked[f.seq]; !ok {
				have++
			}
		}
	}
	return have < want
}

type inflight struct {
	seq     int64
	holders int // streams holding it
}

// known reports whether message id (sequence seq) was confirmed or is in
// flight: it must not be given again.
func (d *delivery) known(id, seq int64) bool {
	if _, ok := d.inflight[id]; ok {
		return true
	}
	if seq == 0 {
		return false
	}
	if seq <= d.mark.Seq {
		return true
	}
	_, ok := d.acked[seq]
	return ok
}

// give records that an XEP-0198 stream holds message id unacknowledged.
func (d *delivery) give(id, seq int64) {
	if d.inflight == nil {
		d.inflight = map[int64]inflight{}
	}
	f := d.inflight[id]
	f.seq = seq
	f.holders++
	d.inflight[id] = f
}

// confirm records that a client of the user has message id (sequence
// seq) and moves the mark over every contiguous confirmed sequence.
func (d *delivery) confirm(seq, id int64) {
	if seq <= d.mark.Seq {
		return
	}
	if d.acked == nil {
		d.acked = map[int64]int64{}
	}
	d.acked[seq] = id
	for {
		next, ok := d.acked[d.mark.Seq+1]
		if !ok {
			break
		}
		delete(d.acked, d.mark.Seq+1)
		d.mark = DeliveryMark{Seq: d.mark.Seq + 1, ID: next}
	}
}

// raise moves the mark to m (a client said it has everything up to m).
func (d *delivery) raise(m DeliveryMark) {
	if m.Seq <= d.mark.Seq {
		return
	}
	d.mark = m
	for seq := range d.acked {
		if seq <= m.Seq {
			delete(d.acked, seq)
		}
	}
	d.confirm(m.Seq, m.ID) // moves on over what was confirmed above
}

// loadMark reads the user's stored mark once per userEntry; the caller
// holds u.deliverMu.
func (s *Server) loadMark(ctx context.Context, u *userEntry) error {
	if u.dl.loaded {
		return nil
	}
	m, err := s.arch.Mark(ctx, u.id)
	if err != nil {
		return err
	}
	u.dl.loaded = true
	u.dl.stored = m.Seq
	u.dl.raise(m)
	u.dl.top = max(u.dl.top, u.dl.mark.Seq)
	return nil
}

// confirmed records a confirmation of message id (seq 0: looked up); the
// caller holds u.deliverMu.
func (s *Server) confirmed(u *userEntry, id, seq int64) {
	if id == 0 {
		return
	}
	if seq == 0 {
		var err error
		if seq, err = s.arch.SeqOf(s.ctx, u.id, id); err != nil || seq == 0 {
			return
		}
	}
	if err := s.loadMark(s.ctx, u); err != nil {
		s.log.Warn("delivery mark", "user", u.id, "err", err)
	}
	u.dl.confirm(seq, id)
	if u.dl.see(seq) {
		// Confirmed above a gap (a delivery that failed, a stanza lost
		// between nodes): look soon.
		s.gapSoon(u)
	}
}

// gapSoon schedules a gap check of the user's deliveries GapRepairDelay
// from now (one at a time): a sequence missing below what was routed or
// confirmed may still be on its way (another sender node, an XEP-0198
// ack); if it is still missing then, the archive gives it. The caller
// holds u.deliverMu.
func (s *Server) gapSoon(u *userEntry) {
	if u.dl.checking || s.closed.Load() {
		return
	}
	u.dl.checking = true
	time.AfterFunc(GapRepairDelay, func() { s.checkGap(u) })
}

// checkGap repairs a gap that outlived GapRepairDelay: the offline flush
// for one available session gives what is neither confirmed nor in
// flight. In a cluster the stored mark is read first: another node's
// sessions may have confirmed the missing sequence (a message to a full
// JID held there).
func (s *Server) checkGap(u *userEntry) {
	if s.closed.Load() {
		return
	}
	var stored DeliveryMark
	if s.clustered() {
		m, err := s.arch.Mark(s.ctx, u.id)
		if err != nil {
			u.deliverMu.Lock()
			u.dl.checking = false
			u.deliverMu.Unlock()
			return
		}
		stored = m
	}
	u.deliverMu.Lock()
	u.dl.checking = false
	if stored.Seq > u.dl.mark.Seq {
		u.dl.raise(stored)
		u.dl.stored = max(u.dl.stored, stored.Seq)
	}
	gap := u.dl.loaded && u.dl.missing()
	u.deliverMu.Unlock()
	if gap {
		s.count.gapRepairs.Add(1)
		s.repairGap(u)
	}
}

// ackedIDs confirms the archived messages an XEP-0198 client acknowledged.
func (s *Server) ackedIDs(u *userEntry, ids []int64) {
	if u == nil || len(ids) == 0 {
		return
	}
	u.deliverMu.Lock()
	defer u.deliverMu.Unlock()
	for _, id := range ids {
		f, ok := u.dl.inflight[id]
		if ok {
			if f.holders--; f.holders <= 0 {
				delete(u.dl.inflight, id)
			} else {
				u.dl.inflight[id] = f
			}
		}
		s.confirmed(u, id, f.seq)
	}
}

// released: an XEP-0198 stream ended for good (not resumed) holding ids
// unacknowledged. What no other stream holds and no client confirmed is
// given again by offline delivery: at once to the user's other available
// sessions, else at the next login.
func (s *Server) released(u *userEntry, ids []int64) {
	if u == nil {
		return
	}
	u.deliverMu.Lock()
	// Sequences confirmed above the mark: something below them is not
	// confirmed (in flight, or lost with a stream that failed): look.
	gap := len(u.dl.acked) > 0
	for _, id := range ids {
		f, ok := u.dl.inflight[id]
		if !ok {
			continue
		}
		if f.holders--; f.holders <= 0 {
			delete(u.dl.inflight, id)
			gap = gap || !u.dl.known(id, f.seq)
		} else {
			u.dl.inflight[id] = f
		}
	}
	u.deliverMu.Unlock()
	if gap {
		s.repairGap(u)
	}
}

// repairGap runs the offline flush for one available session of the
// user: it gives what is neither confirmed nor in flight above the mark.
func (s *Server) repairGap(u *userEntry) {
	for _, t := range s.router.sessions(u.id) {
		if t.available.Load() && t.priority.Load() >= 0 && !t.ended.Load() {
			s.start("gap flush", func() { s.flushOffline(s.ctx, t) })
			return
		}
	}
}

// ConfirmDelivered records that a client of the user has every personal
// message up to archive id upToID (the bridge's hello with last_id): the
// mark moves there, and an offline flush will not give those again.
func (s *Server) ConfirmDelivered(ctx context.Context, userID, upToID int64) error {
	if upToID <= 0 {
		return nil
	}
	m, err := s.arch.MarkUpTo(ctx, userID, upToID)
	if err != nil {
		return err
	}
	if u := s.router.entry(userID); u != nil {
		u.deliverMu.Lock()
		if u.dl.loaded {
			u.dl.raise(m)
			u.dl.stored = max(u.dl.stored, m.Seq)
		}
		u.deliverMu.Unlock()
	}
	return nil
}

// writeMark stores the user's mark if it moved; the caller holds
// u.deliverMu.
func (s *Server) writeMark(ctx context.Context, u *userEntry) error {
	if !u.dl.loaded || u.dl.mark.Seq <= u.dl.stored {
		return nil
	}
	if err := s.arch.StoreMarks(ctx, map[int64]DeliveryMark{u.id: u.dl.mark}); err != nil {
		return err
	}
	u.dl.stored = u.dl.mark.Seq
	return nil
}

// writeMarks stores the marks of every online user that moved, in one
// transaction (every MarkInterval, and at shutdown).
func (s *Server) writeMarks(ctx context.Context) {
	entries := s.router.entries()
	marks := make(map[int64]DeliveryMark)
	for _, u := range entries {
		u.deliverMu.Lock()
		if u.dl.loaded && u.dl.mark.Seq > u.dl.stored {
			marks[u.id] = u.dl.mark
		}
		u.deliverMu.Unlock()
	}
	if len(marks) == 0 {
		return
	}
	if err := s.arch.StoreMarks(ctx, marks); err != nil {
		s.log.Warn("mark delivered", "users", len(marks), "err", err)
		return
	}
	for _, u := range entries {
		u.deliverMu.Lock()
		if m, ok := marks[u.id]; ok {
			u.dl.stored = max(u.dl.stored, m.Seq)
		}
		u.deliverMu.Unlock()
	}
}

// markLoop stores moved delivery marks every MarkInterval, so a crash
// gives again at most what was confirmed in that last interval (clients
// drop such a copy by its stanza-id).
func (s *Server) markLoop() {
	t := time.NewTicker(MarkInterval)
	defer t.Stop()
	for {
		select {
		case <-s.ctx.Done():
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			s.writeMarks(ctx)
			cancel()
			return
		case <-t.C:
			s.writeMarks(s.ctx)
		}
	}
}

// flushOffline gives sess the personal messages above the user's mark
// that no client confirmed and no stream holds, in order: at login
// (initial presence) and when a stream that did not come back leaves a
// gap. Live deliveries wait on the same lock, so each goes once.
func (s *Server) flushOffline(ctx context.Context, sess *Session) {
	u := sess.user
	// A message routed before its commit while the user had no session
	// that could take it is read here once stored; one numbered from now
	// on is routed to sess. Not under deliverMu: routing takes it.
	if err := s.arch.Settle(ctx); err != nil {
		sess.logger().Warn("offline messages: wait for the archive", "err", err)
	}
	u.deliverMu.Lock()
	defer u.deliverMu.Unlock()
	now := time.Now().UnixNano()
	if u.flushed == nil || now-u.flushedAt > int64(FlushedMemory) {
		u.flushed = map[int64]struct{}{}
	}
	u.flushedAt = now
	if err := s.loadMark(ctx, u); err != nil {
		sess.logger().Error("delivery mark", "err", err)
		return
	}
	if err := s.writeMark(ctx, u); err != nil {
		sess.logger().Error("mark delivered", "err", err)
		return
	}
	after, first := u.dl.mark.ID, true
	for {
		msgs, err := s.arch.UndeliveredAfter(ctx, sess.userID, after, OfflineBatch)
		if err != nil {
			sess.logger().Error("offline messages", "err", err)
			return
		}
		for i := range msgs {
			m := &msgs[i]
			after = m.ID
			if first && m.Seq > u.dl.mark.Seq+1 {
				// The sequences below the first message above the mark
				// are gone (retention): nothing to wait for.
				u.dl.raise(DeliveryMark{Seq: m.Seq - 1, ID: u.dl.mark.ID})
			}
			first = false
			if m.Seq == 0 || u.dl.known(m.ID, m.Seq) {
				continue
			}
			if m.Deleted {
				u.dl.confirm(m.Seq, m.ID)
				continue
			}
			el, err := s.archivedStanza(ctx, m, sess.jidStr, sess.bareStr)
			if err != nil {
				sess.logger().Warn("offline message", "id", m.ID, "err", err)
				u.dl.confirm(m.Seq, m.ID)
				continue
			}
			if !sess.deliver(el) {
				return
			}
			u.flushed[m.ID] = struct{}{}
			if sess.defersMark() {
				u.dl.give(m.ID, m.Seq)
			} else {
				u.dl.confirm(m.Seq, m.ID)
			}
		}
		if len(msgs) < OfflineBatch {
			return
		}
	}
}
