package xmppcore

import (
	"net"
	"strings"
	"testing"
	"time"

	"vestnik/migrations"
	"vestnik/migrations/dbtest"
)

func TestThrottleBuckets(t *testing.T) {
	th := NewThrottle(ThrottleOptions{BaseDelay: 10 * time.Millisecond, MaxDelay: 100 * time.Millisecond})
	const attacker, victim = "192.0.2.1:4000", "198.51.100.7:5000"
	var delays []time.Duration
	for range AuthPairBurst {
		if w := th.Check(DoorXMPP, attacker, "alice"); w != 0 {
			t.Fatalf("refused after %d failures, want %d allowed", len(delays), AuthPairBurst)
		}
		delays = append(delays, th.Failed(DoorXMPP, attacker, "alice"))
	}
	want := []time.Duration{10, 20, 40, 80, 100}
	for i := range want {
		if delays[i] != want[i]*time.Millisecond {
			t.Errorf("delays %v, want %v ms", delays, want)
			break
		}
	}
	w := th.Check(DoorXMPP, attacker, "alice")
	if w <= 0 || w > AuthPairEvery {
		t.Errorf("after %d failures: wait %v, want in (0, %v]", AuthPairBurst, w, AuthPairEvery)
	}
	if w := th.Check(DoorXMPP, victim, "alice"); w != 0 {
		t.Errorf("alice from her own address must wait %v, want 0", w)
	}
	if w := th.Check(DoorXMPP, attacker, "bob"); w != 0 {
		t.Errorf("another account from the attacker's address must wait %v, want 0 (address bucket not empty)", w)
	}
	// The address runs out whatever the logins.
	for i := range AuthAddrBurst {
		th.Failed(DoorWeb, attacker, "user"+itoa(int64(i)))
	}
	if w := th.Check(DoorWeb, attacker, "carol"); w <= 0 {
		t.Error("the address was not refused after its burst of failures")
	}
	if w := th.Check(DoorWeb, "[2001:db8::1]:1", "carol"); w != 0 {
		t.Errorf("another address must wait %v, want 0", w)
	}
	st := th.Stats()
	if st.Failures[DoorXMPP] != int64(AuthPairBurst) || st.Failures[DoorWeb] != int64(AuthAddrBurst) || st.Throttled[DoorXMPP] != 1 || st.Throttled[DoorWeb] != 1 {
		t.Errorf("stats %+v", st)
	}
	// A success forgets the account's failures from the address only.
	th2 := NewThrottle(ThrottleOptions{BaseDelay: -1})
	for range AuthPairBurst {
		th2.Failed(DoorXMPP, attacker, "dave")
	}
	th2.Succeeded(attacker, "dave")
	if w := th2.Check(DoorXMPP, attacker, "dave"); w != 0 {
		t.Errorf("after a success: wait %v, want 0", w)
	}
}

// dialFrom connects to the server from a loopback source address.
func (e *testEnv) dialFrom(name, ip string) *rawConn {
	e.t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
	c, err := d.Dial("tcp", e.addr)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { c.Close() })
	return &rawConn{t: e.t, c: c, name: name}
}

func TestSASLBruteForceThrottled(t *testing.T) {
	e := newEnvWith(t, dbtest.Open(t, migrations.SQLite), testOrg, func(o *Options) { o.AuthFailureDelay = 5 * time.Millisecond })
	// The attacker guesses alice's password from 127.0.0.1, three tries a
	// connection (then the stream is closed).
	tries := 0
	var refused string
	for tries < AuthPairBurst+1 && refused == "" {
		r := e.dialFrom("attacker", "127.0.0.1")
		r.starttls()
		r.expect(`</stream:features>`)
		for i := 0; i < MaxAuthFailures && refused == ""; i++ {
			pass := "guess" + itoa(int64(tries))
			if tries == AuthPairBurst {
				pass = "secret" // even the right one, once refused
			}
			tries++
			r.send(`<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>%s</auth>`, plainAuth("alice", pass))
			m := r.expect(`<failure xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><([a-z-]+)/>(.*?)</failure>`)
			if m[1] == "temporary-auth-failure" {
				refused = m[2]
			} else if m[1] != "not-authorized" {
				t.Fatalf("try %d: failure %s", tries, m[1])
			}
		}
		r.c.Close()
	}
	if refused == "" || !strings.Contains(refused, "too many") {
		t.Fatalf("after %d tries the attacker was not refused (%q)", tries, refused)
	}
	if tries != AuthPairBurst+1 {
		t.Errorf("refused at try %d, want %d", tries, AuthPairBurst+1)
	}
	// alice from her own address logs in at once.
	start := time.Now()
	alice := e.dialFrom("alice", "127.0.0.2")
	alice.login("alice", "desk", true)
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("alice's login took %v during the attack", d)
	}
	// bob from the attacker's address is not locked out of his account.
	bob := e.dialFrom("bob", "127.0.0.1")
	bob.login("bob", "desk", true)
	st := e.srv.Throttle().Stats()
	if st.Failures[DoorXMPP] != int64(AuthPairBurst) || st.Throttled[DoorXMPP] != 1 {
		t.Errorf("throttle stats %+v, want %d failures and 1 refusal", st, AuthPairBurst)
	}
}

func TestPasswordChangeAndLogoutEndStreams(t *testing.T) {
	e := newEnv(t, dbtest.Open(t, migrations.SQLite))
	alice, bob, carol := e.dial("alice"), e.dial("bob"), e.dial("carol")
	alice.login("alice", "desk", true)
	bob.login("bob", "desk", true)
	carol.login("carol", "desk", true)
	if err := e.rs.SetPassword(t.Context(), "alice", "changed"); err != nil {
		t.Fatal(err)
	}
	if err := e.rs.Logout(t.Context(), "bob"); err != nil {
		t.Fatal(err)
	}
	for _, r := range []*rawConn{alice, bob} {
		r.expect(`<stream:error><not-authorized xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error>`)
		r.expectClosed()
	}
	carol.send(`<iq type='get' id='p1'><ping xmlns='urn:xmpp:ping'/></iq>`)
	carol.expect(`id='p1'`)
	if got := e.srv.Stats().Closed[closeRevoked]; got != 2 {
		t.Errorf("closed revoked %d, want 2", got)
	}
	// The old password no longer opens a stream; the new one does.
	again := e.dial("alice again")
	again.starttls()
	again.expect(`</stream:features>`)
	again.send(`<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>%s</auth>`, plainAuth("alice", "secret"))
	again.expect(`<not-authorized/>`)
	again.send(`<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>%s</auth>`, plainAuth("alice", "changed"))
	again.expect(`<success`)
}
