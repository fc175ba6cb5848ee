package xmppcore

import (
	"bytes"
	"fmt"
	"io"
	"testing"

	"vestnik/migrations"
	"vestnik/migrations/dbtest"
)

// BenchmarkMessagePath measures one personal message through the whole
// server on SQLite: parse from the sender's stream, route, archive
// (stored before delivery), queue and write to the recipient's stream.
func BenchmarkMessagePath(b *testing.B) {
	e := newEnv(b, dbtest.Open(b, migrations.SQLite))
	e.srv.opts.RateStanzas = -1
	alice := e.online("alice", "pc")
	bob := e.online("bob", "pc")
	bob.expect(`<presence from='alice@example.test/pc'`)
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
