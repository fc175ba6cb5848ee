package cluster

import (
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
)

// Kinds of messages between nodes. One message is one NATS message: a
// header line, then the body.
const (
	// On a user's subject (SubjectUser), to the nodes holding a session of
	// the user:
	kindStanza = 'm' // a stanza for a local user (Resource "" = by bare-JID rules)
	kindKick   = 'k' // close a local session (Resource "" = all of the user's)
	// On the presence subject, one ordered stream per node (Seq counts
	// its session changes):
	kindBound     = 'r' // a session was bound (no presence yet)
	kindPresence  = 'p' // a session's presence changed (Body: the presence, "" when gone)
	kindHeartbeat = 'h' // the node is alive; Seq is its last session change
	kindBye       = 'b' // the node is leaving: drop its sessions now
	// On the broadcast subject, a chat's, a user's or a node's subject:
	kindAll = 'c' // a stanza for the Handler's Broadcast
	// On a node's subject:
	kindAsk      = 'q' // a question (Seq: its number) for the Handler's Answer
	kindAnswered = 'a' // every answer to question Seq has been sent
)

// message is the wire form of what one node tells another.
type message struct {
	Kind      byte
	Seq       uint64 // presence stream: the sender's session-change count; kindStanza: the delivery sequence (0 = none)
	From      string // sending node id
	UserID    int64  // the user concerned; for kindSpool the spool row id
	Priority  int
	Available bool
	Resource  string
	Body      string
}

var errBadMessage = errors.New("cluster: malformed message")

// encode renders m as "K seq from user prio avail resource\nbody"; the
// resource is query-escaped so the header has no spaces or newlines.
func (m *message) encode() []byte {
	return m.appendTo(make([]byte, 0, 48+len(m.From)+len(m.Resource)+len(m.Body)))
}

// appendTo appends what encode makes to b.
func (m *message) appendTo(b []byte) []byte {
	res := m.Resource
	if needsEscape(res) {
		res = url.QueryEscape(res)
	}
	b = append(b, m.Kind, ' ')
	b = strconv.AppendUint(b, m.Seq, 10)
	b = append(b, ' ')
	b = append(b, m.From...)
	b = append(b, ' ')
	b = strconv.AppendInt(b, m.UserID, 10)
	b = append(b, ' ')
	b = strconv.AppendInt(b, int64(m.Priority), 10)
	if m.Available {
		b = append(b, " 1 "...)
	} else {
		b = append(b, " 0 "...)
	}
	b = append(b, res...)
	b = append(b, '\n')
	return append(b, m.Body...)
}

// needsEscape reports whether QueryEscape would change s.
func needsEscape(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.' || c == '~') {
			return true
		}
	}
	return false
}

// decode parses what encode made; the header is read field by field
// without allocating.
func decode(s string) (*message, error) {
	head, body, ok := strings.Cut(s, "\n")
	if !ok {
		return nil, errBadMessage
	}
	var f [7]string
	rest := head
	for i := range f {
		if i == len(f)-1 {
			f[i] = rest
			if strings.IndexByte(rest, ' ') >= 0 {
				return nil, fmt.Errorf("%w: header %q", errBadMessage, head)
			}
			break
		}
		var ok bool
		if f[i], rest, ok = strings.Cut(rest, " "); !ok {
			return nil, fmt.Errorf("%w: header %q", errBadMessage, head)
		}
	}
	if len(f[0]) != 1 {
		return nil, fmt.Errorf("%w: header %q", errBadMessage, head)
	}
	m := &message{Kind: f[0][0], From: f[2], Body: body}
	var err error
	if m.Seq, err = strconv.ParseUint(f[1], 10, 64); err != nil {
		return nil, fmt.Errorf("%w: seq: %v", errBadMessage, err)
	}
	if m.UserID, err = strconv.ParseInt(f[3], 10, 64); err != nil {
		return nil, fmt.Errorf("%w: user: %v", errBadMessage, err)
	}
	if m.Priority, err = strconv.Atoi(f[4]); err != nil {
		return nil, fmt.Errorf("%w: priority: %v", errBadMessage, err)
	}
	m.Available = f[5] == "1"
	if m.Resource, err = url.QueryUnescape(f[6]); err != nil {
		return nil, fmt.Errorf("%w: resource: %v", errBadMessage, err)
	}
	if !validNodeID(m.From) {
		return nil, fmt.Errorf("%w: node id %q", errBadMessage, m.From)
	}
	return m, nil
}

// validNodeID accepts what can be one token of a NATS subject and a NATS
// server name: lowercase letters, digits and '_', 1–40 of them.
func validNodeID(id string) bool {
	if id == "" || len(id) > 40 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}
