package xmppcore

import "sync/atomic"

// counters are the server's running totals; hot paths only add to them.
type counters struct {
	stanzasIn    atomic.Int64
	authFailures atomic.Int64
	acceptErrors atomic.Int64
	gapRepairs   atomic.Int64
	// closed counts ended sessions by close reason (the fixed set below).
	closed map[string]*atomic.Int64
}

// closeReasons are every reason a session ends with (session.go).
var closeReasons = []string{closeNormal, closeConflict, closeSlowConsumer, closeDeactivated,
	closeShutdown, closeTimeout, closeProtocol, closeIO, closeRevoked}

func (c *counters) init() {
	c.closed = make(map[string]*atomic.Int64, len(closeReasons))
	for _, r := range closeReasons {
		c.closed[r] = new(atomic.Int64)
	}
}

func (c *counters) sessionClosed(reason string) {
	if n := c.closed[reason]; n != nil {
		n.Add(1)
	}
}

// Stats is a snapshot of the server's counters and gauges, for /metrics.
type Stats struct {
	Connections  int64            // open client streams (TCP and WebSocket), negotiating or bound
	Users        int64            // users with at least one session on this node
	Sessions     int64            // bound sessions on this node, bridge included
	StanzasIn    int64            // stanzas read from client streams since start
	AuthFailures int64            // failed SASL attempts since start
	Closed       map[string]int64 // sessions ended since start, by close reason
	// Unauthenticated is the open streams that have not logged in yet.
	Unauthenticated int64
	// Refused counts connections refused by a connection cap since start.
	Refused int64
	// AcceptErrors counts failed accepts (out of descriptors) since start.
	AcceptErrors int64
	// GapRepairs counts delivery gaps repaired from the archive since
	// start (a stanza lost between nodes, a delivery that failed).
	GapRepairs int64
}

// Stats returns the current counters and gauges.
func (s *Server) Stats() Stats {
	st := Stats{
		StanzasIn:    s.count.stanzasIn.Load(),
		AuthFailures: s.count.authFailures.Load(),
		Closed:       make(map[string]int64, len(s.count.closed)),
		Refused:      s.admit.refused.Load(),
		AcceptErrors: s.count.acceptErrors.Load(),
		GapRepairs:   s.count.gapRepairs.Load(),
	}
	_, unauth := s.admit.counts()
	st.Unauthenticated = int64(unauth)
	for r, n := range s.count.closed {
		st.Closed[r] = n.Load()
	}
	s.mu.Lock()
	st.Connections = int64(len(s.conns))
	s.mu.Unlock()
	s.router.mu.RLock()
	st.Users = int64(len(s.router.users))
	for _, u := range s.router.users {
		st.Sessions += int64(len(u.sessions))
	}
	s.router.mu.RUnlock()
	return st
}
