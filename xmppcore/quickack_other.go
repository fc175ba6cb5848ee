//go:build !linux

package xmppcore

import "net"

// quickAck is Linux-only (TCP_QUICKACK); elsewhere the connection is used as is.
func quickAck(c *net.TCPConn) net.Conn { return c }
