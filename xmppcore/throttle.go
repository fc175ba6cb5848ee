package xmppcore

import (
	"math"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
)

// Doors that check passwords, as Throttle counts them.
const (
	DoorXMPP = "xmpp" // SASL on TCP and WebSocket streams
	DoorWeb  = "web"  // POST /login of the web client
)

// ThrottleOptions tune a Throttle; zero values are the defaults of
// limits.go (AuthFailureDelay, AuthMaxFailureDelay, …).
type ThrottleOptions struct {
	// BaseDelay is the delay of the first failure answer; it doubles with
	// each further failure for the account from the address, up to
	// MaxDelay. Negative: no delay (tests).
	BaseDelay time.Duration
	MaxDelay  time.Duration
}

// Throttle slows and stops password guessing at every door that checks a
// password (SASL, the web login); the doors ask it before checking and
// tell it the outcome. It keeps three token buckets of failures
// (golang.org/x/time/rate):
//
//   - per address: AuthAddrBurst failures, then one per AuthAddrEvery;
//     an address with none left is refused whatever the account;
//   - per account from one address: AuthPairBurst failures, then one per
//     AuthPairEvery; that address is refused for that account;
//   - per account from anywhere: AuthAccountBurst, then one per
//     AuthAccountEvery; beyond it failures are answered after MaxDelay,
//     but nothing is refused, so that no one can lock a user out: the
//     user's own address never failed and logs in at once.
//
// Every failure answer is delayed, the delay doubling with the account's
// recent failures from the address. Refusals expire by themselves as the
// buckets refill; a success clears the account's bucket for the address.
type Throttle struct {
	base, max time.Duration

	mu       sync.Mutex // guards the maps and swept
	addrs    map[netip.Addr]*rate.Limiter
	pairs    map[pairKey]*rate.Limiter
	accounts map[string]*rate.Limiter
	swept    time.Time

	failures  map[string]*atomic.Int64 // by door
	throttled map[string]*atomic.Int64 // by door
}

type pairKey struct {
	addr  netip.Addr
	login string
}

// NewThrottle returns an empty throttle.
func NewThrottle(o ThrottleOptions) *Throttle {
	if o.BaseDelay == 0 {
		o.BaseDelay = AuthFailureDelay
	}
	if o.MaxDelay == 0 {
		o.MaxDelay = AuthMaxFailureDelay
	}
	t := &Throttle{base: max(o.BaseDelay, 0), max: max(o.MaxDelay, 0),
		addrs: map[netip.Addr]*rate.Limiter{}, pairs: map[pairKey]*rate.Limiter{}, accounts: map[string]*rate.Limiter{},
		swept: time.Now(), failures: map[string]*atomic.Int64{}, throttled: map[string]*atomic.Int64{}}
	for _, d := range []string{DoorXMPP, DoorWeb} {
		t.failures[d], t.throttled[d] = new(atomic.Int64), new(atomic.Int64)
	}
	return t
}

// Check is asked before a password is checked: a positive answer is how
// long the address must wait before it may try again (for this login,
// or for any when login is empty). The door then refuses without
// checking the password, and the refusal is counted.
func (t *Throttle) Check(door, remote, login string) time.Duration {
	now := time.Now()
	addr := addrKey(remote)
	t.mu.Lock()
	wait := refill(t.addrs[addr], now)
	if login != "" {
		wait = max(wait, refill(t.pairs[pairKey{addr, login}], now))
	}
	t.mu.Unlock()
	if wait > 0 {
		if n := t.throttled[door]; n != nil {
			n.Add(1)
		}
	}
	return wait
}

// refill is how long until lim has a token (0: it has one; nil: a
// bucket never drawn on).
func refill(lim *rate.Limiter, now time.Time) time.Duration {
	if lim == nil {
		return 0
	}
	tokens := lim.TokensAt(now)
	if tokens >= 1 {
		return 0
	}
	return time.Duration((1 - tokens) / float64(lim.Limit()) * float64(time.Second))
}

// Failed records a failed password for login from remote and returns
// how long the door waits before it answers.
func (t *Throttle) Failed(door, remote, login string) time.Duration {
	if n := t.failures[door]; n != nil {
		n.Add(1)
	}
	now := time.Now()
	addr := addrKey(remote)
	t.mu.Lock()
	defer t.mu.Unlock()
	t.sweep(now)
	draw(t.addrs, addr, now, AuthAddrEvery, AuthAddrBurst)
	if login == "" {
		return t.base
	}
	pair := draw(t.pairs, pairKey{addr, login}, now, AuthPairEvery, AuthPairBurst)
	acct := draw(t.accounts, login, now, AuthAccountEvery, AuthAccountBurst)
	if acct.TokensAt(now) < 0 {
		return t.max
	}
	// Failures in a row for the account from the address: what the
	// bucket is short of full.
	n := float64(AuthPairBurst) - pair.TokensAt(now)
	if n < 1 {
		n = 1
	}
	d := time.Duration(float64(t.base) * math.Pow(2, math.Round(n)-1))
	return min(d, t.max)
}

// draw takes a token from the bucket of key, made full when missing; a
// bucket may go into debt (concurrent failures all count).
func draw[K comparable](m map[K]*rate.Limiter, key K, now time.Time, every time.Duration, burst int) *rate.Limiter {
	lim := m[key]
	if lim == nil {
		lim = rate.NewLimiter(rate.Every(every), burst)
		m[key] = lim
	}
	lim.ReserveN(now, 1)
	return lim
}

// Succeeded records a successful login: the account's failures from the
// address are forgotten (not the address's, nor the account's elsewhere).
func (t *Throttle) Succeeded(remote, login string) {
	t.mu.Lock()
	delete(t.pairs, pairKey{addrKey(remote), login})
	t.mu.Unlock()
}

// sweep drops, at most once per AuthSweepEvery, the buckets that have
// refilled (they hold nothing worth remembering); past AuthMaxTracked
// buckets of a kind, that kind is forgotten whole, so that memory stays
// bounded under an attack from very many addresses.
func (t *Throttle) sweep(now time.Time) {
	if now.Sub(t.swept) < AuthSweepEvery && len(t.addrs)+len(t.pairs)+len(t.accounts) < AuthMaxTracked {
		return
	}
	t.swept = now
	sweepMap(t.addrs, now)
	sweepMap(t.pairs, now)
	sweepMap(t.accounts, now)
	if len(t.addrs) > AuthMaxTracked {
		clear(t.addrs)
	}
	if len(t.pairs) > AuthMaxTracked {
		clear(t.pairs)
	}
	if len(t.accounts) > AuthMaxTracked {
		clear(t.accounts)
	}
}

func sweepMap[K comparable](m map[K]*rate.Limiter, now time.Time) {
	for k, lim := range m {
		if lim.TokensAt(now) >= float64(lim.Burst()) {
			delete(m, k)
		}
	}
}

// ThrottleStats are the throttle's counters by door.
type ThrottleStats struct {
	Failures  map[string]int64 // failed passwords
	Throttled map[string]int64 // attempts refused unchecked
}

// Stats returns the counters.
func (t *Throttle) Stats() ThrottleStats {
	st := ThrottleStats{Failures: map[string]int64{}, Throttled: map[string]int64{}}
	for d, n := range t.failures {
		st.Failures[d] = n.Load()
	}
	for d, n := range t.throttled {
		st.Throttled[d] = n.Load()
	}
	return st
}

// Throttle returns the server's password-guessing throttle, for the other
// doors that check passwords (the web login).
func (s *Server) Throttle() *Throttle { return s.throttle }
