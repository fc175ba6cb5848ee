package roster

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"hash/fnv"
	"sort"
	"strconv"
	"strings"

	"github.com/jmoiron/sqlx"
)

// Presence subscriptions (RFC 6121 §3) for everything the org structure
// does not give: a generated colleague is "both" from the start and no
// subscription stanza changes that; between any other two parties the
// state is negotiated. Each side's state lives in its own row of
// roster_items (subscription, ask = pending out, approved = pre-approved)
// and roster_pending (pending in, with the request as received). The
// transitions are pure (Transition); Store.Subscribe applies one to one
// side in a transaction. Who is told what (roster pushes, the stanzas
// delivered) is the presence code's business (xmppcore).

// SubOp is a subscription stanza as seen from one side: Out when the user
// sends it, In when the user receives it.
type SubOp int

// The subscription stanzas, each in both directions.
const (
	OutSubscribe SubOp = iota
	InSubscribe
	OutSubscribed
	InSubscribed
	OutUnsubscribe
	InUnsubscribe
	OutUnsubscribed
	InUnsubscribed
)

// SubState is one side's subscription state toward a contact.
type SubState struct {
	Subscription string // none, to, from, both
	Ask          bool   // a request of the user waits for the contact (pending out)
	Approved     bool   // the user pre-approved the contact's request (RFC 6121 §3.4)
	PendingIn    bool   // a request of the contact waits for the user
	Generated    bool   // the org structure puts the contact in the roster: always both
	HasItem      bool   // the user's roster holds the contact
}

// To reports whether the user receives the contact's presence.
func (st SubState) To() bool { return st.Subscription == SubTo || st.Subscription == SubBoth }

// From reports whether the contact receives the user's presence.
func (st SubState) From() bool { return st.Subscription == SubFrom || st.Subscription == SubBoth }

// Transition returns the state after op (RFC 6121 §3.1–3.3 and §3.4
// pre-approval). A generated item never changes. An inbound request that
// was pre-approved becomes the subscription at once (the caller answers
// "subscribed" for the user).
func Transition(op SubOp, st SubState) SubState {
	if st.Generated {
		return st
	}
	if st.Subscription == "" {
		st.Subscription = SubNone
	}
	n := st
	switch op {
	case OutSubscribe:
		if !st.To() && !st.Ask {
			n.Ask, n.HasItem = true, true
		}
	case InSubscribe:
		switch {
		case st.From():
		case st.Approved:
			n.Subscription = addFrom(st.Subscription)
			n.Approved, n.PendingIn = false, false
		default:
			n.PendingIn = true
		}
	case OutSubscribed:
		switch {
		case st.PendingIn:
			n.Subscription = addFrom(st.Subscription)
			n.PendingIn, n.Approved, n.HasItem = false, false, true
		case !st.From():
			n.Approved, n.HasItem = true, true
		}
	case InSubscribed:
		if st.Ask {
			n.Ask = false
			if st.Subscription == SubFrom {
				n.Subscription = SubBoth
			} else if st.Subscription == SubNone {
				n.Subscription = SubTo
			}
		}
	case OutUnsubscribe, InUnsubscribed:
		n.Ask = false
		n.Subscription = dropTo(st.Subscription)
	case InUnsubscribe, OutUnsubscribed:
		n.PendingIn = false
		if op == OutUnsubscribed {
			n.Approved = false
		}
		n.Subscription = dropFrom(st.Subscription)
	}
	return n
}

func addFrom(sub string) string {
	if sub == SubTo || sub == SubBoth {
		return SubBoth
	}
	return SubFrom
}

func dropTo(sub string) string {
	switch sub {
	case SubBoth:
		return SubFrom
	case SubTo:
		return SubNone
	}
	return sub
}

func dropFrom(sub string) string {
	switch sub {
	case SubBoth:
		return SubTo
	case SubFrom:
		return SubNone
	}
	return sub
}

// itemChanged reports whether the roster item a client sees differs.
func itemChanged(a, b SubState) bool {
	return a.HasItem != b.HasItem || a.Subscription != b.Subscription || a.Ask != b.Ask || a.Approved != b.Approved
}

// Peer names the other party: an employee (ID) or any other bare JID.
type Peer struct {
	ID  int64
	JID string
}

func (p Peer) key() (string, error) {
	if p.ID != 0 {
		return contactKey(p.ID), nil
	}
	if p.JID == "" || len(p.JID) > 3071 || strings.Contains(p.JID, "/") {
		return "", errors.New("roster: subscription without a valid bare JID")
	}
	return strings.ToLower(p.JID), nil
}

// SubResult is what Subscribe did to the user's side.
type SubResult struct {
	Before, After SubState
	// ItemChanged: the roster item changed (push it, at Version).
	ItemChanged bool
	// Version is the user's roster version after the operation.
	Version int64
}

// ErrLimit: a subscription would pass one of the limits below (or
// MaxOwnItems).
var ErrLimit = errors.New("roster: subscription limit reached")

// MaxPendingStanza bounds a stored subscription request.
const MaxPendingStanza = 16 << 10

// MaxPending bounds the requests waiting for one user.
const MaxPending = 1000

// Subscribe applies op to userID's side of the subscription with peer, in
// one transaction. For InSubscribe, request is the <presence
// type='subscribe'/> as received (kept whole for re-delivery: XEP-0379
// tokens); it is stored when the request becomes pending.
func (s *Store) Subscribe(ctx context.Context, userID int64, peer Peer, op SubOp, request string) (SubResult, error) {
	key, err := peer.key()
	if err != nil {
		return SubResult{}, err
	}
	if op == InSubscribe && len(request) > MaxPendingStanza {
		return SubResult{}, fmt.Errorf("%w: request over %d bytes", ErrLimit, MaxPendingStanza)
	}
	ctx, cancel := context.WithTimeout(ctx, queryTimeout)
	defer cancel()
	var res SubResult
	err = s.withTx(ctx, func(tx *sqlx.Tx) error {
		st, row, err := s.subState(ctx, tx, userID, peer.ID, key)
		if err != nil {
			return err
		}
		res.Before = st
		n := Transition(op, st)
		res.After = n
		res.ItemChanged = itemChanged(st, n)
		changed := res.ItemChanged
		if res.ItemChanged {
			if err := writeSub(ctx, tx, userID, key, row, n); err != nil {
				return err
			}
		}
		if st.PendingIn && !n.PendingIn {
			if _, err := tx.ExecContext(ctx, tx.Rebind(`DELETE FROM roster_pending WHERE user_id = ? AND jid = ?`), userID, key); err != nil {
				return err
			}
			changed = true
		}
		if !st.PendingIn && n.PendingIn {
			var cnt int
			if err := tx.GetContext(ctx, &cnt, tx.Rebind(`SELECT COUNT(*) FROM roster_pending WHERE user_id = ?`), userID); err != nil {
				return err
			}
			if cnt >= MaxPending {
				return fmt.Errorf("%w: more than %d pending requests", ErrLimit, MaxPending)
			}
			if _, err := tx.ExecContext(ctx, tx.Rebind(`INSERT INTO roster_pending (user_id, jid, stanza, created_at) VALUES (?, ?, ?, ?)`),
				userID, key, request, now()); err != nil {
				return err
			}
			changed = true
		}
		if changed {
			v, err := bumpVersion(ctx, tx, userID)
			if err != nil {
				return err
			}
			res.Version = v
			return nil
		}
		return tx.GetContext(ctx, &res.Version, tx.Rebind(`SELECT COALESCE(MAX(version), 0) FROM roster_versions WHERE user_id = ?`), userID)
	})
	if err != nil {
		return SubResult{}, fmt.Errorf("roster: subscription of %d with %s: %w", userID, key, err)
	}
	return res, nil
}

// SubscriptionState returns userID's side of the subscription with peer.
func (s *Store) SubscriptionState(ctx context.Context, userID int64, peer Peer) (SubState, error) {
	key, err := peer.key()
	if err != nil {
		return SubState{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, queryTimeout)
	defer cancel()
	st, _, err := s.subState(ctx, s.db, userID, peer.ID, key)
	if err != nil {
		return SubState{}, fmt.Errorf("roster: subscription of %d with %s: %w", userID, key, err)
	}
	return st, nil
}

// subState reads one side's state; row is nil when the user has no
// roster_items row for the contact.
func (s *Store) subState(ctx context.Context, q sqlx.QueryerContext, userID, contactID int64, key string) (SubState, *rosterItemRow, error) {
	var st SubState
	var row rosterItemRow
	err := sqlx.GetContext(ctx, q, &row, s.db.Rebind(`SELECT jid, name, groups, subscription, ask, approved, hidden
		FROM roster_items WHERE user_id = ? AND jid = ?`), userID, key)
	var rowp *rosterItemRow
	switch {
	case err == nil:
		rowp = &row
		if !row.Hidden {
			st.Subscription, st.Ask, st.Approved, st.HasItem = row.Subscription, row.Ask, row.Approved, true
		}
	case !errors.Is(err, sql.ErrNoRows):
		return st, nil, err
	}
	if st.Subscription == "" {
		st.Subscription = SubNone
	}
	var n int
	if err := sqlx.GetContext(ctx, q, &n, s.db.Rebind(`SELECT COUNT(*) FROM roster_pending WHERE user_id = ? AND jid = ?`), userID, key); err != nil {
		return st, nil, err
	}
	st.PendingIn = n > 0
	if contactID != 0 {
		gen, err := s.generatedPair(ctx, q, userID, contactID)
		if err != nil {
			return st, nil, err
		}
		if gen {
			hidden := rowp != nil && rowp.Hidden
			st = SubState{Subscription: SubBoth, Generated: true, HasItem: !hidden}
		}
	}
	return st, rowp, nil
}

// generatedPair reports whether the org structure puts contactID in
// userID's roster.
func (s *Store) generatedPair(ctx context.Context, q sqlx.QueryerContext, userID, contactID int64) (bool, error) {
	var n int
	args := make([]any, len(genBranches), len(genBranches)+1)
	for i := range args {
		args[i] = userID
	}
	args = append(args, contactID)
	qs := `SELECT COUNT(*) FROM (` + genSQL(func(col string) string { return col + " = ?" }, false, "") + `) y WHERE y.c = ?`
	if err := sqlx.GetContext(ctx, q, &n, s.db.Rebind(qs), args...); err != nil {
		return false, err
	}
	return n > 0, nil
}

// writeSub stores the item part of a new state.
func writeSub(ctx context.Context, tx *sqlx.Tx, userID int64, key string, row *rosterItemRow, n SubState) error {
	if row == nil {
		var cnt int
		if err := tx.GetContext(ctx, &cnt, tx.Rebind(`SELECT COUNT(*) FROM roster_items WHERE user_id = ?`), userID); err != nil {
			return err
		}
		if cnt >= MaxOwnItems {
			return fmt.Errorf("%w: more than %d roster items", ErrLimit, MaxOwnItems)
		}
		_, err := tx.ExecContext(ctx, tx.Rebind(`INSERT INTO roster_items (user_id, jid, name, groups, subscription, ask, approved, hidden)
			VALUES (?, ?, '', '', ?, ?, ?, FALSE)`), userID, key, n.Subscription, n.Ask, n.Approved)
		return err
	}
	_, err := tx.ExecContext(ctx, tx.Rebind(`UPDATE roster_items SET subscription = ?, ask = ?, approved = ?, hidden = FALSE
		WHERE user_id = ? AND jid = ?`), n.Subscription, n.Ask, n.Approved, userID, key)
	return err
}

// bumpVersion raises the user's roster version and returns it.
func bumpVersion(ctx context.Context, tx sqlx.ExtContext, userID int64) (int64, error) {
	var v int64
	err := sqlx.GetContext(ctx, tx, &v, tx.Rebind(`INSERT INTO roster_versions (user_id, version) VALUES (?, 1)
		ON CONFLICT (user_id) DO UPDATE SET version = roster_versions.version + 1 RETURNING version`), userID)
	return v, err
}

// Pending is an inbound subscription request waiting for the user.
type Pending struct {
	ContactID int64  // the requester, an employee; 0 for another JID
	Login     string // the requester's login ("" for another JID)
	JID       string // the requester's bare JID when not an employee
	Stanza    string // the request as received
}

// PendingRequests returns the requests waiting for the user, oldest first
// (re-delivered at each available presence, RFC 6121 §3.1.3).
func (s *Store) PendingRequests(ctx context.Context, userID int64) ([]Pending, error) {
	ctx, cancel := context.WithTimeout(ctx, queryTimeout)
	defer cancel()
	var rows []struct {
		JID    string `db:"jid"`
		Stanza string `db:"stanza"`
	}
	if err := s.db.SelectContext(ctx, &rows, s.db.Rebind(
		`SELECT jid, stanza FROM roster_pending WHERE user_id = ? ORDER BY created_at, jid`), userID); err != nil {
		return nil, fmt.Errorf("roster: pending requests of %d: %w", userID, err)
	}
	out := make([]Pending, 0, len(rows))
	for _, r := range rows {
		p := Pending{Stanza: r.Stanza}
		if id, ok := parseContactKey(r.JID); ok {
			u, err := s.UserByID(ctx, id)
			if errors.Is(err, ErrNotFound) || (err == nil && !u.Active) {
				continue
			}
			if err != nil {
				return nil, fmt.Errorf("roster: pending requests of %d: %w", userID, err)
			}
			p.ContactID, p.Login = id, u.Login
		} else {
			p.JID = r.JID
		}
		out = append(out, p)
	}
	return out, nil
}

// RosterVersion returns the roster's version (XEP-0237; RFC 6121 §2.6):
// the user's counter, raised first when the generated part of items (as
// Roster returned them) differs from what the counter last saw. The
// counter starts at 0, shown as 1; a client's "1" is therefore never
// taken as current (see VersionCurrent).
func (s *Store) RosterVersion(ctx context.Context, userID int64, items []Item) (string, error) {
	h := genDigest(items)
	ctx, cancel := context.WithTimeout(ctx, queryTimeout)
	defer cancel()
	var v int64
	err := s.withTx(ctx, func(tx *sqlx.Tx) error {
		var row struct {
			Version int64  `db:"version"`
			Hash    string `db:"gen_hash"`
		}
		err := tx.GetContext(ctx, &row, tx.Rebind(`SELECT version, gen_hash FROM roster_versions WHERE user_id = ?`), userID)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		v = row.Version
		if row.Hash == h {
			return nil
		}
		if v, err = bumpVersion(ctx, tx, userID); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, tx.Rebind(`UPDATE roster_versions SET gen_hash = ? WHERE user_id = ?`), h, userID)
		return err
	})
	if err != nil {
		return "", fmt.Errorf("roster: version of %d: %w", userID, err)
	}
	return strconv.FormatInt(max(v, 1), 10), nil
}

// VersionCurrent reports whether a client's roster version names the
// current roster (ver as RosterVersion returned it).
func VersionCurrent(client, ver string) bool {
	return client != "" && client != "1" && client == ver
}

// genDigest digests the generated items ("" for none).
func genDigest(items []Item) string {
	var gen []string
	for _, it := range items {
		if it.Generated {
			gen = append(gen, strconv.FormatInt(it.ContactID, 10)+"\x00"+it.Login+"\x00"+it.Name+"\x00"+strings.Join(it.Groups, "\x00"))
		}
	}
	if len(gen) == 0 {
		return ""
	}
	sort.Strings(gen)
	h := fnv.New64a()
	for _, g := range gen {
		h.Write([]byte(g))
		h.Write([]byte{1})
	}
	return strconv.FormatUint(h.Sum64(), 36)
}
