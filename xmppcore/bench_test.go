package xmppcore

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"vestnik/migrations"
	"vestnik/migrations/dbtest"
	"vestnik/xmppcore/mam"
)

// BenchmarkMessagePath measures one personal message through the whole
// server on SQLite: parse from the sender's stream, route, archive
// (stored before delivery), queue and write to the recipient's stream.
func BenchmarkMessagePath(b *testing.B) {
	e := newEnv(b, dbtest.Open(b, migrations.SQLite))
	e.srv.opts.RateStanzas = -1
	alice := e.online("alice", "pc")
	bob := e.online("bob", "pc")
	alice.expect(`<presence from='bob@example.test/pc'`)
	bob.buf, alice.buf = nil, nil

	msg := []byte(`<message to='bob@example.test/pc' type='chat' id='bench'><body>` + string(bytes.Repeat([]byte("x"), 100)) + `</body></message>`)
	done := make(chan error, 1)
	go func() {
		// The recipient reads until it has seen every message.
		end := []byte("</message>")
		buf := make([]byte, 64<<10)
		seen, carry := 0, []byte(nil)
		for seen < b.N {
			n, err := bob.c.Read(buf)
			if err != nil {
				done <- err
				return
			}
			data := append(carry, buf[:n]...)
			seen += bytes.Count(data, end)
			if k := len(end) - 1; len(data) > k {
				carry = append(carry[:0], data[len(data)-k:]...)
			}
		}
		done <- nil
	}()
	b.ReportAllocs()
	b.ResetTimer()
	go func() {
		for i := 0; i < b.N; i++ {
			if _, err := alice.c.Write(msg); err != nil {
				done <- fmt.Errorf("write: %w", err)
				return
			}
		}
	}()
	if err := <-done; err != nil && err != io.EOF {
		b.Fatal(err)
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
}

// BenchmarkMessagePathParallel sends from 40 online users to random
// others at once (SQLite, group commit in the archive): the load shape
// of the tsung chat scenario, in process.
func BenchmarkMessagePathParallel(b *testing.B) {
	const users = 40
	db := dbtest.Open(b, migrations.SQLite)
	e := newEnvOrg(b, db, benchOrg(users, "secret"))
	e.srv.opts.RateStanzas = -1
	conns := make([]*rawConn, users)
	for i := range conns {
		conns[i] = e.online(fmt.Sprintf("user%d", i+1), "pc")
	}
	total := b.N
	got := make(chan int, users)
	for _, c := range conns {
		go func(c *rawConn) {
			end := []byte("</body>")
			buf := make([]byte, 64<<10)
			for {
				c.c.SetReadDeadline(time.Time{})
				n, err := c.c.Read(buf)
				if err != nil {
					return
				}
				if k := bytes.Count(buf[:n], end); k > 0 {
					got <- k
				}
			}
		}(c)
	}
	b.ReportAllocs()
	b.ResetTimer()
	per := (total + users - 1) / users
	for i, c := range conns {
		go func(i int, c *rawConn) {
			r := rand.New(rand.NewPCG(uint64(i), 1))
			for k := 0; k < per; k++ {
				to := r.IntN(users) + 1
				fmt.Fprintf(c.c, `<message to='user%d@example.test' type='chat' id='m%d'><body>%s</body></message>`, to, k, strings.Repeat("x", 100))
			}
		}(i, c)
	}
	seen := 0
	timeout := time.After(60 * time.Second)
	for seen < per*users {
		select {
		case k := <-got:
			seen += k
		case <-timeout:
			b.Fatalf("delivered %d of %d", seen, per*users)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(seen)/b.Elapsed().Seconds(), "msgs/s")
}

// benchOrg is an org of n users user1..userN in departments of 10.
func benchOrg(n int, password string) string {
	var deps, emps []string
	deps = append(deps, `{"id": "d0", "name": "Bench", "parent": null, "head": null}`)
	for i := 1; i <= n; i++ {
		d := fmt.Sprintf("d%d", (i-1)/10+1)
		if (i-1)%10 == 0 {
			deps = append(deps, fmt.Sprintf(`{"id": %q, "name": "Dept %s", "parent": "d0", "head": "%d"}`, d, d, i))
		}
		emps = append(emps, fmt.Sprintf(`{"id": "%d", "login": "user%d", "name": "User %d", "departments": [%q], "password": %q}`, i, i, i, d, password))
	}
	return `{"departments": [` + strings.Join(deps, ",") + `], "employees": [` + strings.Join(emps, ",") + `]}`
}

// BenchmarkMAMPage measures one XEP-0313 query of a 50-message page over
// a real session on SQLite: the IQ parsed from the stream, the archive
// read, each result built with its stored payload and written to the
// requester's stream, then the <fin/>.
func BenchmarkMAMPage(b *testing.B) {
	e := newEnv(b, dbtest.Open(b, migrations.SQLite))
	e.srv.opts.RateStanzas = -1
	alice, bob := e.userID("alice"), e.userID("bob")
	msgs := make([]mam.Message, 200)
	t0 := time.Now().Add(-time.Hour)
	for i := range msgs {
		msgs[i] = mam.Message{Kind: mam.KindChat, FromID: alice, ToID: bob, CreatedAt: t0.Add(time.Duration(i) * time.Second),
			Body: fmt.Sprintf("message %d %s", i, strings.Repeat("x", 80)), OriginID: fmt.Sprintf("o%d", i),
			Payload: fmt.Sprintf(`<active xmlns='http://jabber.org/protocol/chatstates'/><origin-id xmlns='urn:xmpp:sid:0' id='o%d'/>`, i)}
	}
	if err := e.arch.Bulk(context.Background(), msgs); err != nil {
		b.Fatal(err)
	}
	c := e.online("alice", "pc")
	c.buf = nil
	c.c.SetDeadline(time.Time{}) // the login's deadlines
	query := []byte(`<iq type='set' id='q'><query xmlns='urn:xmpp:mam:2' queryid='f'><set xmlns='http://jabber.org/protocol/rsm'><max>50</max><before/></set></query></iq>`)
	end := []byte("</fin>")
	buf := make([]byte, 256<<10)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := c.c.Write(query); err != nil {
			b.Fatal(err)
		}
		var carry []byte
		for {
			c.c.SetReadDeadline(time.Now().Add(10 * time.Second))
			n, err := c.c.Read(buf)
			if err != nil {
				b.Fatal(err)
			}
			data := append(carry, buf[:n]...)
			if bytes.Contains(data, end) {
				break
			}
			carry = append(carry[:0], data[max(0, len(data)-len(end)):]...)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "queries/s")
}
