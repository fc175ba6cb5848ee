package pubsub_test

import "vestnik/xmppcore/xmpptest"

// The scripted XMPP client shared with the other packages' tests.
type client = xmpptest.Client

var dial = xmpptest.Dial
