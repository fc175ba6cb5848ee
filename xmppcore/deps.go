package xmppcore

import (
	"context"
	"errors"
	"time"

	"vestnik/roster"
)

// ErrNotFound is returned by a Directory or Archive when the thing asked
// for does not exist.
var ErrNotFound = errors.New("xmppcore: not found")

// ErrBadPassword is returned by Directory.CheckPassword for a wrong password.
var ErrBadPassword = errors.New("xmppcore: bad password")

// Directory is what the XMPP server needs from the organisation's user
// directory (package roster): accounts, credentials, rosters and change
// events. RosterDirectory adapts *roster.Store.
type Directory interface {
	// Credentials returns the SCRAM keys of an active account, ErrNotFound
	// when there is no such active account or it has no password.
	Credentials(ctx context.Context, login string) (*Credentials, error)
	// CheckPassword verifies a password (SASL PLAIN) in constant time:
	// ErrNotFound for no such active account, ErrBadPassword when wrong.
	CheckPassword(ctx context.Context, login, password string) (userID int64, err error)
	UserByLogin(ctx context.Context, login string) (*Account, error)
	UserByID(ctx context.Context, id int64) (*Account, error)
	Roster(ctx context.Context, userID int64) ([]RosterItem, error)
	SetRosterItem(ctx context.Context, userID int64, it RosterItem) error
	RemoveRosterItem(ctx context.Context, userID int64, jid string) error
	// RosterVersion returns the version of the roster items (as Roster
	// returned them), XEP-0237.
	RosterVersion(ctx context.Context, userID int64, items []RosterItem) (string, error)
	// Subscribe applies a subscription stanza to one side (roster.Store.Subscribe).
	Subscribe(ctx context.Context, userID int64, peer roster.Peer, op roster.SubOp, request string) (roster.SubResult, error)
	// SubscriptionState returns one side's subscription state.
	SubscriptionState(ctx context.Context, userID int64, peer roster.Peer) (roster.SubState, error)
	// PendingRequests returns the subscription requests waiting for the user.
	PendingRequests(ctx context.Context, userID int64) ([]roster.Pending, error)
	Events(ctx context.Context, afterID int64, limit int) ([]Event, error)
	LastEventID(ctx context.Context) (int64, error)
	// Logout ends every session of the account on every node (as
	// `vestnik user logout`); ErrNotFound for no such account.
	Logout(ctx context.Context, login string) error
}

// Credentials are the stored SCRAM keys of an account.
type Credentials struct {
	UserID                     int64
	Salt                       []byte
	Iterations                 int
	SHA1Stored, SHA1Server     []byte
	SHA256Stored, SHA256Server []byte
}

// Account is an employee as the XMPP server sees them.
type Account struct {
	ID                        int64
	Login, Name, Email, Title string
	Departments               []string // department names, primary first
	Org                       string   // the organisation (root department) name
	Active                    bool
}

// RosterItem is one roster entry (RFC 6121). JID is the bare JID string;
// ContactID is the employee's id, 0 for a JID outside the company.
type RosterItem struct {
	JID          string
	ContactID    int64
	Name         string
	Groups       []string
	Subscription string // none, to, from, both
	Ask          bool
	Approved     bool
	Generated    bool // from the org structure (always both)
}

// Event is a change written by HR sync or the CLI (see roster.Event).
type Event struct {
	ID        int64
	Kind      string // roster_add, roster_remove, deactivated, password, user_updated
	UserID    int64
	ContactID int64
}

// Archive is what the XMPP server needs from the message archive
// (package mam). MAMArchive adapts *mam.Store.
type Archive interface {
	// Append stores m (setting ID, CreatedAt and Seq) and returns once
	// it is committed; newContact reports a first personal message
	// between the two users. routed, if not nil, is called as soon as m
	// has its ID, CreatedAt and Seq, telling whether m is committed yet
	// (mam.Store.AppendThen: on SQLite it is not): delivery need not wait
	// for the disk, the sender's acknowledgement does.
	Append(ctx context.Context, m *ArchivedMessage, routed func(committed bool)) (newContact bool, err error)
	// Settle waits until what was numbered before the call is stored
	// (mam.Store.Settle); never call it holding a lock routing takes.
	Settle(ctx context.Context) error
	// UndeliveredAfter returns personal messages to userID with an id
	// above afterID, oldest first (in sequence order), retracted ones
	// included (Deleted).
	UndeliveredAfter(ctx context.Context, userID, afterID int64, limit int) ([]ArchivedMessage, error)
	// SeqOf returns the delivery sequence of personal message id to
	// userID (0 when it is not one).
	SeqOf(ctx context.Context, userID, id int64) (int64, error)
	// Mark returns the user's stored delivery mark.
	Mark(ctx context.Context, userID int64) (DeliveryMark, error)
	// MarkUpTo raises the mark to the newest personal message to the user
	// at or below archive id upToID and returns the stored mark.
	MarkUpTo(ctx context.Context, userID, upToID int64) (DeliveryMark, error)
	// StoreMarks raises many users' marks in one transaction (never
	// lowers one).
	StoreMarks(ctx context.Context, marks map[int64]DeliveryMark) error
}

// DeliveryMark is a user's delivery mark: every personal message up to
// delivery sequence Seq (archive id ID) was confirmed by one of the
// user's clients.
type DeliveryMark struct {
	Seq int64
	ID  int64
}

// ArchivedMessage is a personal message as stored in the archive.
type ArchivedMessage struct {
	ID           int64
	CreatedAt    time.Time
	FromID, ToID int64
	FromResource string
	OriginID     string // the client's id: origin-id, else the stanza id
	Body         string
	Payload      string // other child elements, serialized
	Lang         string // xml:lang as the client gave it (stanza, else stream), "": none
	Files        []int64
	ReplyTo      int64 // the archive id this message answers (XEP-0461), 0: none
	Seq          int64 // the recipient's delivery sequence (set by Append)
	Deleted      bool  // retracted (UndeliveredAfter only)
}
