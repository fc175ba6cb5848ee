//go:build linux

package xmppcore

import (
	"net"
	"syscall"
	"testing"
)

// The server side of a client connection acknowledges at once: after every
// read TCP_QUICKACK is set again (the kernel clears it by itself).
func TestQuickAckRearmedAfterRead(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	accepted, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer accepted.Close()
	tc := accepted.(*net.TCPConn)
	conn := NewTCPTransport(tc)

	quick := func() int {
		rc, err := tc.SyscallConn()
		if err != nil {
			t.Fatal(err)
		}
		var v int
		var gerr error
		rc.Control(func(fd uintptr) {
			v, gerr = syscall.GetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_QUICKACK)
		})
		if gerr != nil {
			t.Fatal(gerr)
		}
		return v
	}
	buf := make([]byte, 64)
	for i := 0; i < 3; i++ {
		if _, err := client.Write([]byte("<presence/>")); err != nil {
			t.Fatal(err)
		}
		if _, err := conn.Read(buf); err != nil {
			t.Fatal(err)
		}
		if got := quick(); got != 1 {
			t.Fatalf("read %d: TCP_QUICKACK = %d, want 1", i, got)
		}
	}
}
