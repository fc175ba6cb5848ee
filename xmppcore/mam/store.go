// Package mam is Vestnik's one message archive. Every personal and chat
// message is appended here before anyone acknowledges it; the same rows serve
// offline delivery (a per-user delivery mark over the archive), history for
// XMPP clients (XEP-0313 Message Archive Management), the bridge and REST,
// full-text search, and retention.
//
// Who may read a message is decided in one place (access.go): personal
// messages by their sender and recipient, chat messages by members inside
// their membership windows (chat_periods).
package mam

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
	"weak"

	"github.com/jmoiron/sqlx"
)

// Message kinds.
const (
	KindChat      = "chat"      // personal message: FromID and ToID
	KindGroupchat = "groupchat" // chat message: FromID and ChatID
	KindSystem    = "system"    // chat system message: ChatID, no author
	KindHeadline  = "headline"  // notification to ToID
)

// Limits.
const (
	MaxBody     = 64 << 10  // bytes of a message body
	MaxPayload  = 192 << 10 // bytes of the verbatim extra XML
	maxOriginID = 256
	maxResource = 1024
	// MaxLang is the longest xml:lang kept (RFC 5646 §4.4.1: 35
	// characters hold any tag a registry subtag makes).
	MaxLang        = 35
	defaultTimeout = 10 * time.Second
)

var (
	ErrNotFound  = errors.New("mam: not found")
	ErrForbidden = errors.New("mam: forbidden")
	ErrInvalid   = errors.New("mam: invalid message")
	// ErrTooLate and ErrRetracted are ErrForbidden with a reason: the
	// edit window of the message is over, or it was retracted.
	ErrTooLate   = fmt.Errorf("%w: the time to change this message is over", ErrForbidden)
	ErrRetracted = fmt.Errorf("%w: the message was retracted", ErrForbidden)
)

// Message is one archived message. IDs are internal user and chat ids; 0
// means none.
type Message struct {
	ID        int64
	CreatedAt time.Time
	Kind      string
	// Personal: FromID and ToID. Chat: FromID (0 for system) and ChatID.
	FromID, ToID, ChatID int64
	FromResource         string
	OriginID             string
	Body                 string
	// Payload holds extra child elements kept verbatim as XML (receipt
	// requests, markers, …); may be "".
	Payload string
	// Lang is the message's xml:lang as its author's client gave it
	// (the stanza's, else the stream's default), "" when unknown.
	Lang     string
	EditedAt *time.Time
	Deleted  bool
	// Files are the ids of stored files (package upload) the message
	// carries; Append records them in message_files with the message, so
	// whoever may read it may download them. Not read back by queries.
	Files []int64
	// ReplyTo is the archive id of the message this one answers
	// (XEP-0461), 0 for none; the door resolves it (ReplyTarget).
	ReplyTo int64
	// Seq is a personal message's delivery sequence: the recipient's
	// next number, given by Append in the transaction that stores it
	// (delivery.go). 0 for other kinds.
	Seq int64
}

// Options tune the store; zero values are the documented defaults.
type Options struct {
	// Retention is how long messages are kept; 0 keeps them forever.
	Retention time.Duration
	// RetentionInterval is how often the retention job runs (default 1h).
	RetentionInterval time.Duration
	// RetentionBatch is how many messages one delete removes (default
	// 1000); the job pauses between batches.
	RetentionBatch int
	// MaxBatch is how many concurrent appends share one transaction
	// (default 256).
	MaxBatch int
	// EditWindow is how long after sending its author may edit or
	// retract a message, from any door (default DefaultEditWindow;
	// negative: no limit).
	EditWindow time.Duration
	// OnCommit, if set, is told how long each group commit took and how
	// many messages it stored (for the archive commit histogram). It runs
	// on the committing goroutine and must not block.
	OnCommit func(took time.Duration, messages int)
	// OnChange, if set, is told every change of the archive (appends,
	// edits, retractions, added reactions) inside the transaction that
	// makes it (changes.go): a group commit's appends together, in id
	// order. An error fails the changes. It must be quick: appends wait
	// for it.
	OnChange func(ctx context.Context, tx *sqlx.Tx, cs []Change) error
}

// DefaultEditWindow is how long a message stays editable by default: a
// day, enough to fix a typo or take back a message sent to the wrong
// person, short enough that yesterday's agreements stay as they were read.
const DefaultEditWindow = 24 * time.Hour

// Store is the archive over one database (SQLite or PostgreSQL).
type Store struct {
	db   *sqlx.DB
	pg   bool
	opts Options

	// ap: the group commit (append.go), shared by every Store over the
	// same *sqlx.DB on SQLite, where one process writes and numbers.
	ap *appender

	// Deferred full-text indexing on SQLite (ftsindex.go). ftsDirty
	// starts set: messages may be pending from an earlier run.
	ftsMu        sync.Mutex // one indexer at a time
	ftsDirty     atomic.Bool
	ftsScheduled atomic.Bool
}

// appender is the group commit state of a database (append.go).
type appender struct {
	mu      sync.Mutex
	queue   []*appendReq
	leading bool
	// Early numbering on SQLite (one writing process): ids and the
	// recipients' delivery sequences are given in memory when a message
	// is queued, so it can be routed before its commit (AppendThen).
	// nextID is the last id given (0: not read yet), doneID the last id
	// whose batch finished (batches finish in id order), settled is
	// closed and cleared when doneID moves (settle). seqTop holds the
	// recipients' counters, read once per user. All guarded by mu.
	nextID, doneID int64
	settled        chan struct{}
	seqTop         map[int64]int64
	// pairs: on SQLite, the personal_contacts pairs known to be stored
	// (nothing deletes them), so an append to a known pair skips that
	// insert; leader-only, filled after commits, at most
	// maxKnownPairs.
	pairs map[[2]int64]struct{}
	// On SQLite, appends run on one connection of their own (writer,
	// taken by the first leader and kept) with statements prepared once
	// (msgStmt, contactsStmt): another pooled connection would find its
	// page cache stale after every commit made elsewhere and read the
	// pages again, and an unprepared insert is parsed anew each time.
	// Leader-only, like pairs.
	writer                *sqlx.Conn
	msgStmt, contactsStmt *sqlx.Stmt
}

// appenders: the appender of each SQLite *sqlx.DB a Store was made for,
// let go with the database.
var appenders struct {
	sync.Mutex
	m map[weak.Pointer[sqlx.DB]]*appender
}

// sharedAppender returns the appender of db: every Store over one SQLite
// database numbers and commits through the same one.
func sharedAppender(db *sqlx.DB) *appender {
	k := weak.Make(db)
	appenders.Lock()
	defer appenders.Unlock()
	if ap, ok := appenders.m[k]; ok {
		return ap
	}
	if appenders.m == nil {
		appenders.m = map[weak.Pointer[sqlx.DB]]*appender{}
	}
	ap := &appender{}
	appenders.m[k] = ap
	runtime.AddCleanup(db, func(k weak.Pointer[sqlx.DB]) {
		appenders.Lock()
		delete(appenders.m, k)
		appenders.Unlock()
	}, k)
	return ap
}

// NewStore returns the archive stored in db with default options.
func NewStore(db *sqlx.DB) *Store {
	return NewStoreOptions(db, Options{})
}

// NewStoreOptions returns the archive stored in db.
func NewStoreOptions(db *sqlx.DB, opts Options) *Store {
	if opts.MaxBatch <= 0 {
		opts.MaxBatch = 256
	}
	if opts.RetentionInterval <= 0 {
		opts.RetentionInterval = time.Hour
	}
	if opts.RetentionBatch <= 0 {
		opts.RetentionBatch = 1000
	}
	if opts.EditWindow == 0 {
		opts.EditWindow = DefaultEditWindow
	}
	s := &Store{db: db, pg: db.DriverName() == "postgres", opts: opts, ap: &appender{}}
	if !s.pg {
		s.ap = sharedAppender(db)
	}
	s.ftsDirty.Store(true)
	return s
}

// columns selected for a Message, with the alias m.
const msgColumns = `m.id, m.created_at, m.kind, m.from_id, m.to_id, m.chat_id, m.from_resource,
	m.origin_id, m.body, m.payload, m.edited_at, m.deleted, m.reply_to, m.to_seq, m.lang`

type msgRow struct {
	ID           int64          `db:"id"`
	CreatedAt    int64          `db:"created_at"`
	Kind         string         `db:"kind"`
	FromID       sql.NullInt64  `db:"from_id"`
	ToID         sql.NullInt64  `db:"to_id"`
	ChatID       sql.NullInt64  `db:"chat_id"`
	FromResource string         `db:"from_resource"`
	OriginID     string         `db:"origin_id"`
	Body         string         `db:"body"`
	Payload      string         `db:"payload"`
	EditedAt     sql.NullInt64  `db:"edited_at"`
	Deleted      bool           `db:"deleted"`
	ReplyTo      sql.NullInt64  `db:"reply_to"`
	ToSeq        sql.NullInt64  `db:"to_seq"`
	Lang         sql.NullString `db:"lang"`
}

func (r *msgRow) message() Message {
	m := Message{
		ID:           r.ID,
		CreatedAt:    time.UnixMicro(r.CreatedAt).UTC(),
		Kind:         r.Kind,
		FromID:       r.FromID.Int64,
		ToID:         r.ToID.Int64,
		ChatID:       r.ChatID.Int64,
		FromResource: r.FromResource,
		OriginID:     r.OriginID,
		Body:         r.Body,
		Payload:      r.Payload,
		Deleted:      r.Deleted,
		ReplyTo:      r.ReplyTo.Int64,
		Seq:          r.ToSeq.Int64,
		Lang:         r.Lang.String,
	}
	if r.EditedAt.Valid {
		t := time.UnixMicro(r.EditedAt.Int64).UTC()
		m.EditedAt = &t
	}
	return m
}

func messages(rows []msgRow) []Message {
	out := make([]Message, len(rows))
	for i := range rows {
		out[i] = rows[i].message()
	}
	return out
}

func nullID(id int64) sql.NullInt64 {
	return sql.NullInt64{Int64: id, Valid: id != 0}
}

// nullText is the argument that stores "" as NULL: nil, which costs
// the append path no allocation.
func nullText(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// Get returns the message with the given id, whoever may read it. Use
// GetFor on behalf of a user.
func (s *Store) Get(ctx context.Context, id int64) (*Message, error) {
	ctx, cancel := context.WithTimeout(ctx, defaultTimeout)
	defer cancel()
	if err := s.Settle(ctx); err != nil {
		return nil, err
	}
	var r msgRow
	err := s.db.GetContext(ctx, &r, s.db.Rebind(`SELECT `+msgColumns+` FROM messages m WHERE m.id = ?`), id)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("mam: get %d: %w", id, err)
	}
	m := r.message()
	return &m, nil
}

func (s *Store) withTx(ctx context.Context, f func(tx *sqlx.Tx) error) error {
	tx, err := s.db.BeginTxx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if err := f(tx); err != nil {
		return err
	}
	return tx.Commit()
}

func validate(m *Message) error {
	switch m.Kind {
	case KindChat:
		if m.FromID == 0 || m.ToID == 0 || m.ChatID != 0 {
			return fmt.Errorf("%w: a personal message needs a sender and a recipient and no chat", ErrInvalid)
		}
	case KindGroupchat:
		if m.FromID == 0 || m.ChatID == 0 || m.ToID != 0 {
			return fmt.Errorf("%w: a chat message needs a sender and a chat", ErrInvalid)
		}
	case KindSystem:
		if m.ChatID == 0 || m.ToID != 0 {
			return fmt.Errorf("%w: a system message needs a chat", ErrInvalid)
		}
	case KindHeadline:
		if m.ToID == 0 || m.ChatID != 0 {
			return fmt.Errorf("%w: a headline needs a recipient", ErrInvalid)
		}
	default:
		return fmt.Errorf("%w: unknown kind %q", ErrInvalid, m.Kind)
	}
	if len(m.Body) > MaxBody {
		return fmt.Errorf("%w: body longer than %d bytes", ErrInvalid, MaxBody)
	}
	if len(m.Payload) > MaxPayload {
		return fmt.Errorf("%w: payload longer than %d bytes", ErrInvalid, MaxPayload)
	}
	if len(m.OriginID) > maxOriginID || len(m.FromResource) > maxResource {
		return fmt.Errorf("%w: origin id or resource too long", ErrInvalid)
	}
	if len(m.Lang) > MaxLang {
		return fmt.Errorf("%w: language tag longer than %d bytes", ErrInvalid, MaxLang)
	}
	return nil
}
