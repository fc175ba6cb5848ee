package cluster

import (
	"encoding/binary"
	"sync"
)

// The outbox: every message this node publishes is appended to one
// buffer, in order, and the publisher goroutine hands it to NATS. A run
// of consecutive messages on one subject (a burst to one user or one
// chat) goes as one NATS message: records, each a 4-byte big-endian
// length and a message as encode makes it. NATS's cost is per message
// (parsing, subject matching, and a write for each small batch at each
// of the four hops), so a burst costs a fraction of it per stanza, and
// nothing waits: the publisher takes whatever is there when it wakes.
// The order of everything published is kept across subjects (a node's
// answer to a question comes after what it published on a chat before
// answering, Ask).

const (
	// maxRun bounds the records of a run sent as one NATS message, in
	// bytes (a larger record goes alone).
	maxRun = 64 << 10
	// maxOutbox bounds what waits in the outbox, in bytes; over it a
	// message is dropped (counted), as NATS drops for a slow consumer.
	maxOutbox = 64 << 20
	// maxKept bounds a drained buffer kept for reuse, in bytes.
	maxKept = 4 << 20
)

// outRec is one message in the outbox: its subject and where its record
// (length prefix included) lies in the buffer.
type outRec struct {
	subj       string
	start, end int
}

// outbox is the queue between the publishing callers and the publisher
// goroutine. mu guards buf and recs; it is held only to append or swap.
type outbox struct {
	mu   sync.Mutex
	buf  []byte
	recs []outRec
	wake chan struct{} // capacity 1: the publisher has something to do

	flushMu   sync.Mutex // one drain at a time (the goroutine, or Shutdown)
	spare     []byte     // the drained buffers, reused
	spareRecs []outRec
}

func newOutbox() *outbox { return &outbox{wake: make(chan struct{}, 1)} }

// add appends m, encoded, for subject; false when the outbox is full.
func (o *outbox) add(subject string, m *message) bool {
	o.mu.Lock()
	if len(o.buf) > maxOutbox {
		o.mu.Unlock()
		return false
	}
	start := len(o.buf)
	o.buf = append(o.buf, 0, 0, 0, 0)
	o.buf = m.appendTo(o.buf)
	binary.BigEndian.PutUint32(o.buf[start:], uint32(len(o.buf)-start-4))
	o.recs = append(o.recs, outRec{subject, start, len(o.buf)})
	first := len(o.recs) == 1
	o.mu.Unlock()
	if first {
		select {
		case o.wake <- struct{}{}:
		default:
		}
	}
	return true
}

// drain hands everything in the outbox to pub, runs of one subject as
// one payload, in order; it returns the number of records pub refused.
func (o *outbox) drain(pub func(subject string, payload []byte) error) (failed int) {
	o.flushMu.Lock()
	defer o.flushMu.Unlock()
	o.mu.Lock()
	buf, recs := o.buf, o.recs
	o.buf, o.recs = o.spare[:0], o.spareRecs[:0]
	o.mu.Unlock()
	for i := 0; i < len(recs); {
		j := i + 1
		for j < len(recs) && recs[j].subj == recs[i].subj && recs[j].end-recs[i].start <= maxRun {
			j++
		}
		// The records of a run lie one after another in buf.
		if err := pub(recs[i].subj, buf[recs[i].start:recs[j-1].end]); err != nil {
			failed += j - i
		}
		i = j
	}
	o.spare, o.spareRecs = buf, recs
	if cap(o.spare) > maxKept {
		o.spare, o.spareRecs = nil, nil // a burst's buffer is not kept
	}
	return failed
}

// discard empties the outbox (a crash in tests).
func (o *outbox) discard() {
	o.mu.Lock()
	o.buf, o.recs = nil, nil
	o.mu.Unlock()
}

// records calls f with each record of a payload as drain made it; false
// when the payload is malformed (what came before was handled).
func records(payload []byte, f func(rec []byte)) bool {
	for len(payload) > 0 {
		if len(payload) < 4 {
			return false
		}
		n := binary.BigEndian.Uint32(payload)
		if uint64(n) > uint64(len(payload)-4) {
			return false
		}
		f(payload[4 : 4+n])
		payload = payload[4+n:]
	}
	return true
}
