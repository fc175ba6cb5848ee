//go:build linux

package xmppcore

import (
	"net"
	"syscall"
	"unsafe"
)

// quickAckConn keeps delayed acknowledgements off on a client connection
// by re-arming TCP_QUICKACK after every read (Linux clears it on its own).
//
// Clients with Nagle's algorithm on (the default of most TCP stacks, and of
// tsung and many XMPP libraries) hold a small write until the previous one
// is acknowledged. When the server has nothing to answer — right after the
// TLS handshake the client's Finished is followed by the stream header; a
// client sending two messages in a row — a delayed ACK stalls that client
// for 40 ms. Acknowledging at once costs one setsockopt per read.
type quickAckConn struct {
	*net.TCPConn
	rc syscall.RawConn
}

func quickAck(c *net.TCPConn) net.Conn {
	rc, err := c.SyscallConn()
	if err != nil {
		return c
	}
	q := &quickAckConn{TCPConn: c, rc: rc}
	q.arm()
	return q
}

func (c *quickAckConn) arm() {
	c.rc.Control(func(fd uintptr) {
		syscall.SetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_QUICKACK, 1)
	})
}

func (c *quickAckConn) Read(p []byte) (int, error) {
	n, err := c.TCPConn.Read(p)
	if n > 0 {
		c.arm()
	}
	return n, err
}

// socketWaiter returns the raw connection an idle reader waits on (see
// streamTransport.WaitReadable).
func socketWaiter(c *net.TCPConn) syscall.RawConn {
	rc, err := c.SyscallConn()
	if err != nil {
		return nil
	}
	return rc
}

// waitReadable blocks until the socket has bytes to read, has reached its
// end or failed, or its read deadline passed. It reads nothing: a one-byte
// MSG_PEEK tells whether to wait, and the poller wakes the goroutine.
func waitReadable(rc syscall.RawConn) error {
	return rc.Read(func(fd uintptr) bool {
		var b byte
		for {
			_, _, e := syscall.Syscall6(syscall.SYS_RECVFROM, fd, uintptr(unsafe.Pointer(&b)), 1,
				syscall.MSG_PEEK|syscall.MSG_DONTWAIT, 0, 0)
			if e != syscall.EINTR {
				return e != syscall.EAGAIN
			}
		}
	})
}
