package xmppcore

import (
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
)

// admission caps the connections of every door that holds one open (XMPP
// over TCP and WebSocket, the web bridge): in total, per remote address,
// and, for XMPP streams, those that have not authenticated yet. A
// connection over a cap is refused at once; nothing waits. IPv6 addresses
// count by their /64, which one host usually owns whole.
type admission struct {
	max, perIP, unauth, unauthPerIP int // caps; < 0: unlimited

	mu          sync.Mutex // guards the counts below
	total       int
	byIP        map[netip.Addr]int
	unauthTotal int
	unauthByIP  map[netip.Addr]int

	refused atomic.Int64
}

func newAdmission(o Options) *admission {
	return &admission{max: o.MaxConnections, perIP: o.MaxConnectionsPerIP, unauth: o.MaxUnauthenticated,
		unauthPerIP: o.MaxUnauthenticatedPerIP, byIP: map[netip.Addr]int{}, unauthByIP: map[netip.Addr]int{}}
}

// ticket is one admitted connection; release it once when the
// connection closes, and call authenticated once it has logged in.
type ticket struct {
	a      *admission
	ip     netip.Addr
	mu     sync.Mutex
	unauth bool
	done   bool
}

// addrKey is the key an address counts under: the IP, or the /64 of an
// IPv6 address. Unparsable addresses (pipes) share the zero key.
func addrKey(remote string) netip.Addr {
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		host = remote
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}
	}
	ip = ip.Unmap()
	if ip.Is6() {
		p, _ := ip.Prefix(64)
		return p.Addr()
	}
	return ip
}

func over(n, limit int) bool { return limit >= 0 && n >= limit }

// admit takes a place for a connection from remote, unauthenticated or
// not; nil when a cap is reached.
func (a *admission) admit(remote string, unauth bool) *ticket {
	ip := addrKey(remote)
	a.mu.Lock()
	defer a.mu.Unlock()
	if over(a.total, a.max) || over(a.byIP[ip], a.perIP) ||
		unauth && (over(a.unauthTotal, a.unauth) || over(a.unauthByIP[ip], a.unauthPerIP)) {
		a.refused.Add(1)
		return nil
	}
	a.total++
	a.byIP[ip]++
	if unauth {
		a.unauthTotal++
		a.unauthByIP[ip]++
	}
	return &ticket{a: a, ip: ip, unauth: unauth}
}

// authenticated moves the connection out of the unauthenticated count.
func (t *ticket) authenticated() {
	if t == nil {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.unauth || t.done {
		return
	}
	t.unauth = false
	t.a.mu.Lock()
	t.a.dropUnauth(t.ip)
	t.a.mu.Unlock()
}

// release gives the place back; idempotent.
func (t *ticket) release() {
	if t == nil {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.done {
		return
	}
	t.done = true
	a := t.a
	a.mu.Lock()
	defer a.mu.Unlock()
	a.total--
	if a.byIP[t.ip]--; a.byIP[t.ip] <= 0 {
		delete(a.byIP, t.ip)
	}
	if t.unauth {
		a.dropUnauth(t.ip)
	}
}

func (a *admission) dropUnauth(ip netip.Addr) {
	a.unauthTotal--
	if a.unauthByIP[ip]--; a.unauthByIP[ip] <= 0 {
		delete(a.unauthByIP, ip)
	}
}

// counts returns the open connections and those not authenticated yet.
func (a *admission) counts() (total, unauth int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.total, a.unauthTotal
}

// Admit takes a place for an authenticated connection of another door
// (the web bridge's WebSocket) from the remote address, under the same
// caps as XMPP streams. ok is false when a cap is reached: refuse the
// connection. Call release once when it closes.
func (s *Server) Admit(remote string) (release func(), ok bool) {
	t := s.admit.admit(remote, false)
	if t == nil {
		return func() {}, false
	}
	return t.release, true
}
