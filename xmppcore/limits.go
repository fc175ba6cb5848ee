package xmppcore

import (
	"time"

	"vestnik/xmppcore/stanza"
)

// Limits and timeouts of the XMPP server, in one place.
const (
	// MaxStanzaSize is the largest top-level element (stanza or nonza) a
	// client may send, in bytes of XML. A larger one ends the stream with
	// policy-violation.
	MaxStanzaSize = stanza.MaxSize
	// MaxDepth is the deepest element nesting allowed inside a stanza.
	MaxDepth = stanza.MaxDepth
	// MaxAttrs is the number of attributes one element may carry.
	MaxAttrs = stanza.MaxAttrs
	// MaxStreamHeaderSize bounds the stream header and everything before it.
	MaxStreamHeaderSize = 8 << 10
	// MaxStatusLen bounds a remembered status text, in bytes (status.go).
	MaxStatusLen = 200

	// MaxConnections caps the open connections of every door that holds
	// one (XMPP over TCP and WebSocket, the web bridge's WebSocket) on
	// this node; a connection beyond it is refused at once. `vestnik
	// serve` lowers it to fit the process's descriptor limit.
	MaxConnections = 20000
	// MaxConnectionsPerIP caps the open connections from one address (an
	// IPv6 /64). An office behind one NAT address is one address: raise
	// it for a large office, or behind a proxy that hides client addresses.
	MaxConnectionsPerIP = 1000
	// MaxUnauthenticated caps the XMPP streams that have not logged in yet
	// (TLS handshake, SASL), in total and per address: they cost memory
	// and a descriptor and belong to no one.
	MaxUnauthenticated      = 5000
	MaxUnauthenticatedPerIP = 100
	// AcceptBackoffMin and AcceptBackoffMax bound the pause after a failed
	// accept (out of descriptors): it starts at the minimum and doubles up
	// to the maximum until an accept succeeds. The server never stops on
	// an accept error.
	AcceptBackoffMin = 5 * time.Millisecond
	AcceptBackoffMax = time.Second

	// AuthTimeout is how long a connection may take from accept to bound
	// resource.
	AuthTimeout = 30 * time.Second
	// MaxAuthFailures is how many failed SASL attempts a connection gets
	// before the stream is closed.
	MaxAuthFailures = 3
	// AuthFailureDelay is added before the first failure answer of a
	// password check (SASL, the web login); it doubles with each further
	// failure for the account from the address, up to AuthMaxFailureDelay
	// (Throttle).
	AuthFailureDelay    = 1 * time.Second
	AuthMaxFailureDelay = 8 * time.Second
	// AuthAddrBurst failed passwords from one address (an IPv6 /64), then
	// one per AuthAddrEvery; beyond that the address is refused unchecked
	// until its bucket refills.
	AuthAddrBurst = 30
	AuthAddrEvery = 6 * time.Second
	// AuthPairBurst failed passwords for one account from one address,
	// then one per AuthPairEvery; beyond that the address is refused for
	// that account (the account from other addresses is not).
	AuthPairBurst = 5
	AuthPairEvery = time.Minute
	// AuthAccountBurst failed passwords for one account from anywhere,
	// then one per AuthAccountEvery; beyond that failures for it are
	// answered after AuthMaxFailureDelay (never refused: no lock-out).
	AuthAccountBurst = 50
	AuthAccountEvery = 10 * time.Second
	// AuthSweepEvery is how often refilled buckets are forgotten, and
	// AuthMaxTracked bounds the buckets of each kind kept.
	AuthSweepEvery = time.Minute
	AuthMaxTracked = 100000

	// IdleTimeout closes a bound connection that sent nothing for this long
	// (clients ping or send whitespace well within it).
	IdleTimeout = 30 * time.Minute
	// ComponentHandshakeTimeout is how long an XEP-0114 component may take
	// from connect to a successful handshake; MaxComponentPending is how
	// many component connections may be in that phase at once (more are
	// closed at accept); ComponentQueue bounds what waits for a
	// component's writer (over it the stream closes as a slow consumer).
	ComponentHandshakeTimeout = 10 * time.Second
	MaxComponentPending       = 16
	ComponentQueue            = 4096

	// WriteTimeout bounds one flush of the writer goroutine.
	WriteTimeout = 30 * time.Second

	// SendQueueLen is the bounded queue of stanzas waiting for the writer of
	// one connection. When it is full the peer is a slow consumer and the
	// connection is closed: the router never waits.
	SendQueueLen = 512

	// RateStanzas and RateBurst are the per-connection token bucket: a
	// client may send RateBurst stanzas at once and RateStanzas per second
	// sustained. Beyond that the reader pauses (TCP pushes back).
	RateStanzas = 200
	RateBurst   = 400

	// MaxResourceLen bounds a requested resource.
	MaxResourceLen = 256

	// EventPollInterval is how often the server polls change events
	// written by HR imports and the CLI (SPEC: picked up within 5 s; a
	// password change, deactivation or logout ends the user's sessions
	// within about a second). One primary-key read per node.
	EventPollInterval = time.Second

	// MarkInterval is how often delivery marks of online users that
	// moved are stored, all in one transaction (they are also stored
	// before an offline flush and when a user's last session ends); a
	// crash may give again what was confirmed in that last interval
	// (clients drop it by stanza-id).
	MarkInterval = 200 * time.Millisecond

	// ClusterLateFlush is when a session that became available runs its
	// offline flush again in a cluster (longer than a notification takes
	// between nodes).
	ClusterLateFlush = 2 * time.Second

	// GapRepairDelay: a sequence missing below one routed or confirmed
	// (a stanza lost between nodes, a delivery that failed) is given from
	// the archive by the offline flush for one of the user's available
	// sessions when it is still missing this long after (delivery.go);
	// longer than two sender nodes' stanzas can overtake each other.
	GapRepairDelay = 250 * time.Millisecond

	// OfflineBatch is how many offline messages are read per query when a
	// user comes online.
	OfflineBatch = 200

	// MaxBlocklist bounds one user's XEP-0191 blocklist.
	MaxBlocklist = 1000

	// FlushedMemory is how long a session remembers the ids it received by
	// offline flush, so that a concurrent live delivery is not doubled.
	FlushedMemory = 30 * time.Second

	// SMMaxUnacked bounds the stanzas an XEP-0198 stream keeps until the
	// client acknowledges them; over it the stream is closed as a slow
	// consumer (its unacknowledged messages come again as offline ones).
	SMMaxUnacked = 1000

	// SMRequestEvery: the server asks for an ack (<r/>) after this many
	// stanzas, and at the end of every burst it writes.
	SMRequestEvery = 20

	// CSIMaxHeld bounds what an inactive (XEP-0352) session holds back
	// (presence and chat states, coalesced per sender); over it everything
	// held is flushed.
	CSIMaxHeld = 500

	// SMResumeTimeout is how long a resumable XEP-0198 session whose
	// stream died waits for its client to resume (the max of <enabled/>).
	SMResumeTimeout = 300 * time.Second

	// SMExpiredKept is how many timed-out XEP-0198 resume ids a server
	// remembers, to answer a late <resume/> with <failed h/> (the stanzas
	// of the client it handled) instead of a bare <failed/>.
	SMExpiredKept = 10000
)

// XEP-0153 avatar hashes in presence (avatarhash.go).
const (
	// AvatarHashTTL is how long a user's avatar hash is kept: a change on
	// another node of a cluster shows in this node's presence that late.
	AvatarHashTTL = time.Minute
	// AvatarHashCacheSize bounds the cache (then it starts over).
	AvatarHashCacheSize = 100000
)

// BOSH (bosh.go).
const (
	// BOSHMaxWait is the longest a request is held waiting for stanzas
	// (the session's wait, at most what the client asked).
	BOSHMaxWait = 60 * time.Second
	// BOSHRequests is how many requests a client may have open at once
	// (hold is 1).
	BOSHRequests = 2
	// BOSHInactivity ends a session whose client holds no request for
	// that long.
	BOSHInactivity = 60 * time.Second
	// BOSHMaxRequest bounds a request body (its stanzas with the <body/>).
	BOSHMaxRequest = MaxStanzaSize + 4<<10
	// BOSHMaxPending bounds the stanzas waiting for the client's next
	// request; over it the session ends as a slow consumer.
	BOSHMaxPending = 1 << 20
	// BOSHFeedTimeout is how long a request waits for the session's
	// reader to take its stanzas, or for the request before it.
	BOSHFeedTimeout = 10 * time.Second
)
