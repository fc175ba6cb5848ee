package roster

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/jmoiron/sqlx"
)

// Item is one roster entry as a user sees it.
type Item struct {
	// JID is the contact's bare JID: for a non-employee the one the user
	// added; for an employee Login@domain when the store knows the domain
	// (SetDomain), else empty and the caller builds it from Login.
	JID          string
	ContactID    int64  // the employee; 0 for a non-employee JID
	Login        string // the employee's login; "" for non-employees
	Name         string
	Groups       []string
	Subscription string // "both" for generated items; RFC 6121 values otherwise
	Ask          bool
	Approved     bool
	Generated    bool // the org structure puts this contact in the roster
}

// Subscription states (RFC 6121).
const (
	SubNone = "none"
	SubTo   = "to"
	SubFrom = "from"
	SubBoth = "both"
)

// Limits on user roster edits.
const (
	MaxItemName   = 1024
	MaxItemGroups = 64
	MaxGroupName  = 1024
	MaxOwnItems   = 5000 // hand-added items per user
)

// rosterItemRow is a user's own edit: a hand-added item or an override of
// a generated one. Employees are keyed "#<id>", others by bare JID.
type rosterItemRow struct {
	JID          string `db:"jid"`
	Name         string `db:"name"`
	Groups       string `db:"groups"`
	Subscription string `db:"subscription"`
	Ask          bool   `db:"ask"`
	Approved     bool   `db:"approved"`
	Hidden       bool   `db:"hidden"`
}

func contactKey(id int64) string { return "#" + strconv.FormatInt(id, 10) }

func parseContactKey(k string) (int64, bool) {
	if !strings.HasPrefix(k, "#") {
		return 0, false
	}
	id, err := strconv.ParseInt(k[1:], 10, 64)
	return id, err == nil
}

func splitGroups(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

// Roster returns the user's roster: the generated items (SPEC §4) with the
// user's renames and regroupings, without those the user removed, plus the
// items the user added by hand. Items are sorted by name.
func (s *Store) Roster(ctx context.Context, userID int64) ([]Item, error) {
	ctx, cancel := context.WithTimeout(ctx, queryTimeout)
	defer cancel()
	var gen []struct {
		U     int64  `db:"u"`
		C     int64  `db:"c"`
		G     string `db:"g"`
		Login string `db:"login"`
		Name  string `db:"name"`
	}
	st, err := s.rosterStmt(ctx)
	if err != nil {
		return nil, fmt.Errorf("roster: generate roster of %d: %w", userID, err)
	}
	args := make([]any, len(genBranches))
	for i := range args {
		args[i] = userID
	}
	if err := st.SelectContext(ctx, &gen, args...); err != nil {
		return nil, fmt.Errorf("roster: generate roster of %d: %w", userID, err)
	}
	var own []rosterItemRow
	if err := s.db.SelectContext(ctx, &own, s.db.Rebind(
		`SELECT jid, name, groups, subscription, ask, approved, hidden FROM roster_items WHERE user_id = ?`), userID); err != nil {
		return nil, fmt.Errorf("roster: items of %d: %w", userID, err)
	}

	byContact := make(map[int64]*Item, len(gen))
	var items []*Item
	for _, r := range gen {
		it := byContact[r.C]
		if it == nil {
			it = &Item{ContactID: r.C, Login: r.Login, Name: r.Name, Subscription: SubBoth, Generated: true}
			byContact[r.C] = it
			items = append(items, it)
		}
		if r.G != "" {
			it.Groups = append(it.Groups, r.G)
		}
	}
	var handEmployees []int64
	handRows := map[int64]rosterItemRow{}
	for _, r := range own {
		id, isEmployee := parseContactKey(r.JID)
		if isEmployee {
			if it := byContact[id]; it != nil {
				if r.Hidden {
					it.Generated = false // marker: drop below
					it.Subscription = ""
					continue
				}
				if r.Name != "" {
					it.Name = r.Name
				}
				if r.Groups != "" {
					it.Groups = splitGroups(r.Groups)
				}
				continue
			}
			if !r.Hidden {
				handEmployees = append(handEmployees, id)
				handRows[id] = r
			}
			continue
		}
		if r.Hidden {
			continue
		}
		items = append(items, &Item{JID: r.JID, Name: r.Name, Groups: splitGroups(r.Groups),
			Subscription: r.Subscription, Ask: r.Ask, Approved: r.Approved})
	}
	if len(handEmployees) > 0 {
		q, args, err := sqlx.In(`SELECT id, login, name FROM users WHERE active AND id IN (?)`, handEmployees)
		if err != nil {
			return nil, fmt.Errorf("roster: items of %d: %w", userID, err)
		}
		var us []struct {
			ID    int64  `db:"id"`
			Login string `db:"login"`
			Name  string `db:"name"`
		}
		if err := s.db.SelectContext(ctx, &us, s.db.Rebind(q), args...); err != nil {
			return nil, fmt.Errorf("roster: items of %d: %w", userID, err)
		}
		for _, u := range us {
			// The name is the user's own (RFC 6121): none unless they
			// gave one.
			r := handRows[u.ID]
			items = append(items, &Item{ContactID: u.ID, Login: u.Login, Name: r.Name, Groups: splitGroups(r.Groups),
				Subscription: r.Subscription, Ask: r.Ask, Approved: r.Approved})
		}
	}
	out := make([]Item, 0, len(items))
	for _, it := range items {
		if it.ContactID != 0 && it.Subscription == "" {
			continue // a generated item the user removed
		}
		if it.ContactID != 0 && s.domain != "" {
			it.JID = it.Login + "@" + s.domain
		}
		sort.Strings(it.Groups)
		out = append(out, *it)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Name != out[j].Name {
			return out[i].Name < out[j].Name
		}
		return out[i].ContactID < out[j].ContactID
	})
	return out, nil
}

// rosterStmt prepares the roster query once: planning it costs more than
// running it.
func (s *Store) rosterStmt(ctx context.Context) (*sqlx.Stmt, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.genStmt != nil {
		return s.genStmt, nil
	}
	st, err := s.db.PreparexContext(ctx, s.db.Rebind(genSQL(func(col string) string { return col + " = ?" }, false, "cu.login, cu.name")))
	if err != nil {
		return nil, err
	}
	s.genStmt = st
	return st, nil
}

// resolve finds the roster_items key of a JID, login or contact id.
func (s *Store) resolve(ctx context.Context, contactID int64, login, jid string) (key string, id int64, err error) {
	if contactID != 0 {
		return contactKey(contactID), contactID, nil
	}
	onDomain := false
	if login == "" && jid != "" {
		local, domain, hasAt := strings.Cut(strings.ToLower(jid), "@")
		switch {
		case hasAt && s.domain != "" && domain == s.domain:
			login, onDomain = local, true
		case !hasAt && !strings.Contains(jid, "."):
			login = local // a bare login
		}
	}
	if login != "" {
		u, err := s.UserByLogin(ctx, login)
		// A JID on the domain that is no employee's (yet, or any more)
		// is kept as written, like a JID of another server.
		if errors.Is(err, ErrNotFound) && onDomain {
			return strings.ToLower(jid), 0, nil
		}
		if err != nil {
			return "", 0, err
		}
		return contactKey(u.ID), u.ID, nil
	}
	if jid == "" || len(jid) > 3071 {
		return "", 0, errors.New("roster: item without a valid JID")
	}
	return strings.ToLower(jid), 0, nil
}

// SetItem stores a user's roster edit (RFC 6121 roster set: add, rename,
// regroup). The contact is it.ContactID, else it.Login, else it.JID (a bare
// JID on the store's domain names an employee). For a generated item only
// the name and groups are kept as overrides (a removed generated item comes
// back). For other items Subscription (empty keeps the stored value, or
// "none" for a new item), Ask and Approved are stored as given. Running
// servers are not notified through events: the caller pushes the item.
func (s *Store) SetItem(ctx context.Context, userID int64, it Item) error {
	if len(it.Name) > MaxItemName || len(it.Groups) > MaxItemGroups {
		return errors.New("roster: set item: name or groups too long")
	}
	groups := make([]string, 0, len(it.Groups))
	for _, g := range it.Groups {
		g = strings.TrimSpace(g)
		if g == "" {
			continue
		}
		if len(g) > MaxGroupName || strings.ContainsAny(g, "\n\r") {
			return errors.New("roster: set item: bad group name")
		}
		groups = append(groups, g)
	}
	switch it.Subscription {
	case "", SubNone, SubTo, SubFrom, SubBoth:
	default:
		return fmt.Errorf("roster: set item: bad subscription %q", it.Subscription)
	}
	key, _, err := s.resolve(ctx, it.ContactID, it.Login, it.JID)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, queryTimeout)
	defer cancel()
	err = s.withTx(ctx, func(tx *sqlx.Tx) error {
		var cur rosterItemRow
		err := tx.GetContext(ctx, &cur, tx.Rebind(`SELECT jid, name, groups, subscription, ask, approved, hidden
			FROM roster_items WHERE user_id = ? AND jid = ?`), userID, key)
		exists := err == nil
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		sub, ask, approved := it.Subscription, it.Ask, it.Approved
		if sub == "" {
			// A roster set (RFC 6121 §2.1.5) keeps the subscription
			// state: only the presence stanzas change it.
			sub, ask, approved = cur.Subscription, cur.Ask, cur.Approved
			if !exists || cur.Hidden {
				sub, ask, approved = SubNone, false, false
			}
		}
		if _, err := bumpVersion(ctx, tx, userID); err != nil {
			return err
		}
		if !exists {
			var n int
			if err := tx.GetContext(ctx, &n, tx.Rebind(`SELECT COUNT(*) FROM roster_items WHERE user_id = ?`), userID); err != nil {
				return err
			}
			if n >= MaxOwnItems {
				return fmt.Errorf("more than %d roster items", MaxOwnItems)
			}
			_, err = tx.ExecContext(ctx, tx.Rebind(`INSERT INTO roster_items (user_id, jid, name, groups, subscription, ask, approved, hidden)
				VALUES (?, ?, ?, ?, ?, ?, ?, FALSE)`), userID, key, it.Name, strings.Join(groups, "\n"), sub, ask, approved)
			return err
		}
		_, err = tx.ExecContext(ctx, tx.Rebind(`UPDATE roster_items SET name = ?, groups = ?, subscription = ?, ask = ?, approved = ?,
			hidden = FALSE WHERE user_id = ? AND jid = ?`), it.Name, strings.Join(groups, "\n"), sub, ask, approved, userID, key)
		return err
	})
	if err != nil {
		return fmt.Errorf("roster: set item for %d: %w", userID, err)
	}
	return nil
}

// RemoveItem removes an item from the user's roster. A generated item is
// hidden until the org structure adds the contact anew (for instance after
// a move to another department); anything else is deleted. jid is a bare
// JID (an employee's on the store's domain) or an employee's login.
func (s *Store) RemoveItem(ctx context.Context, userID int64, jid string) error {
	key, cid, err := s.resolve(ctx, 0, "", jid)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, queryTimeout)
	defer cancel()
	err = s.withTx(ctx, func(tx *sqlx.Tx) error {
		if _, err := tx.ExecContext(ctx, tx.Rebind(`DELETE FROM roster_items WHERE user_id = ? AND jid = ?`), userID, key); err != nil {
			return err
		}
		// A waiting request goes with the item (the caller answers it
		// with unsubscribed, RFC 6121 §2.5.3).
		if _, err := tx.ExecContext(ctx, tx.Rebind(`DELETE FROM roster_pending WHERE user_id = ? AND jid = ?`), userID, key); err != nil {
			return err
		}
		if _, err := bumpVersion(ctx, tx, userID); err != nil {
			return err
		}
		if cid == 0 {
			return nil
		}
		gen, err := s.generatedPair(ctx, tx, userID, cid)
		if err != nil || !gen {
			return err
		}
		_, err = tx.ExecContext(ctx, tx.Rebind(`INSERT INTO roster_items (user_id, jid, subscription, hidden) VALUES (?, ?, 'both', TRUE)`), userID, key)
		return err
	})
	if err != nil {
		return fmt.Errorf("roster: remove item for %d: %w", userID, err)
	}
	return nil
}

// AddPersonalContact records that a and b exchanged a personal message, in
// both directions, so that each appears in the other's roster. It returns
// added=true when the pair is new, and then writes roster_add events for
// both sides.
func (s *Store) AddPersonalContact(ctx context.Context, a, b int64) (bool, error) {
	if a == b || a == 0 || b == 0 {
		return false, nil
	}
	ctx, cancel := context.WithTimeout(ctx, queryTimeout)
	defer cancel()
	added := false
	err := s.withTx(ctx, func(tx *sqlx.Tx) error {
		var n int
		if err := tx.GetContext(ctx, &n, tx.Rebind(`SELECT COUNT(*) FROM personal_contacts WHERE user_id = ? AND contact_id = ?`), a, b); err != nil {
			return err
		}
		if n > 0 {
			return nil
		}
		if _, err := tx.ExecContext(ctx, tx.Rebind(`INSERT INTO personal_contacts (user_id, contact_id) VALUES (?, ?), (?, ?)`), a, b, b, a); err != nil {
			return err
		}
		added = true
		return insertEvents(ctx, tx, []Event{{Kind: EventRosterAdd, UserID: a, ContactID: b}, {Kind: EventRosterAdd, UserID: b, ContactID: a}})
	})
	if err != nil {
		return false, fmt.Errorf("roster: add personal contact %d-%d: %w", a, b, err)
	}
	return added, nil
}
