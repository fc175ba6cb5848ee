package xmppcore

import (
	"strconv"
	"sync"
)

// Held stanzas: a personal message is routed as soon as the archive has
// numbered it and stored afterwards (mam.Store.AppendThen), so a stream's
// reader goes on with the next stanza while the message waits for its
// commit. What the server has handled, for XEP-0198 (the h of <a/>,
// <resumed/>, <failed/>), stops below the first stanza still held: a
// client resends only what the archive does not have. When every held
// stanza is done after an <r/> was answered below them, an <a/> without
// a request (XEP-0198 §4 allows one at any time) tells the client.

// MaxHeld bounds the stanzas of one stream held at once; the reader waits
// for a place (the kernel's buffers then push back on the client).
const MaxHeld = 64

// heldStanza is one held stanza of a stream: its index in the stream's
// XEP-0198 count (counted: stream management was on when it came).
type heldStanza struct {
	idx     uint32
	counted bool
	done    bool
}

// holds is a stream's held stanzas (conn.hd).
type holds struct {
	mu     sync.Mutex
	cond   *sync.Cond    // signalled when the list empties (waitHeld)
	list   []*heldStanza // oldest first; done ones stay until those before are
	lagged bool          // an <a/> was sent below a held stanza
	slots  chan struct{} // MaxHeld places
}

// hold marks the stanza being handled (the reader's current one) as held
// until the returned release runs; the reader waits while MaxHeld are.
func (c *conn) hold() (release func()) {
	h := &c.hd
	h.mu.Lock()
	if h.slots == nil {
		h.slots = make(chan struct{}, MaxHeld)
		h.cond = sync.NewCond(&h.mu)
	}
	slots := h.slots
	h.mu.Unlock()
	slots <- struct{}{}
	e := &heldStanza{idx: c.smIn.Load(), counted: c.smOn}
	h.mu.Lock()
	h.list = append(h.list, e)
	h.mu.Unlock()
	return func() { c.release(e) }
}

func (c *conn) release(e *heldStanza) {
	h := &c.hd
	h.mu.Lock()
	e.done = true
	n := 0
	for n < len(h.list) && h.list[n].done {
		n++
	}
	h.list = h.list[n:]
	tell := false
	if len(h.list) == 0 {
		h.list = nil
		tell = h.lagged
		h.lagged = false
		h.cond.Broadcast()
	}
	handled := c.handledLocked()
	h.mu.Unlock()
	<-h.slots
	if tell && c.sm.Load() {
		c.deliverNonza(NewElement(NSSM, "a", "h", strconv.FormatUint(uint64(handled), 10)))
	}
}

// handled is the h the stream reports: the stanzas counted since
// XEP-0198 was enabled, less those from the first one still held.
func (c *conn) handled() uint32 {
	c.hd.mu.Lock()
	defer c.hd.mu.Unlock()
	return c.handledLocked()
}

func (c *conn) handledLocked() uint32 {
	for _, e := range c.hd.list {
		if e.counted && !e.done {
			c.hd.lagged = true
			return e.idx - 1
		}
	}
	return c.smIn.Load()
}

// waitHeld waits until no stanza of the stream is held (before another
// stream resumes its session: what it reports handled is then final).
func (c *conn) waitHeld() {
	h := &c.hd
	h.mu.Lock()
	for len(h.list) > 0 {
		h.cond.Wait()
	}
	h.mu.Unlock()
}

// holdStanza marks the stanza the session is handling as held until release
// (see held.go); nil when its door handles one stanza at a time (the
// bridge waits for each message's commit to acknowledge it).
func (sess *Session) holdStanza() (release func()) {
	if c, ok := sess.sink.(*conn); ok {
		return c.hold()
	}
	return nil
}
