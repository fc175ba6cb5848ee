//go:build !linux

package xmppcore

import (
	"net"
	"syscall"
)

// quickAck is Linux-only (TCP_QUICKACK); elsewhere the connection is used as is.
func quickAck(c *net.TCPConn) net.Conn { return c }

// socketWaiter is Linux-only: elsewhere idle readers wait in the decoder.
func socketWaiter(c *net.TCPConn) syscall.RawConn { return nil }

func waitReadable(rc syscall.RawConn) error { return errNoWait }
