package mam

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/jmoiron/sqlx"

	"vestnik/xmppcore/stanza"
)

// XEP-0313 preferences. Every message is stored whatever the preferences
// say (offline delivery, REST history and search need it); the preferences
// decide what the user's MAM queries return: with default "always" all but
// the "never" JIDs, with "never" only the "always" JIDs. "roster" behaves as
// "always": everyone a user has exchanged a personal message with is in
// their roster (SPEC section 4).

// Preference modes.
const (
	PrefAlways = "always"
	PrefNever  = "never"
	PrefRoster = "roster"
)

const maxPrefJIDs = 500

// Prefs are a user's archiving preferences.
type Prefs struct {
	Default string
	Always  []string // bare JIDs
	Never   []string
}

// Prefs returns the user's preferences (default "always").
func (s *Store) Prefs(ctx context.Context, userID int64) (*Prefs, error) {
	p := &Prefs{Default: PrefAlways}
	err := s.db.GetContext(ctx, &p.Default, s.db.Rebind(`SELECT default_mode FROM mam_prefs WHERE user_id = ?`), userID)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("mam: prefs of %d: %w", userID, err)
	}
	var rows []struct {
		JID  string `db:"jid"`
		Mode string `db:"mode"`
	}
	if err := s.db.SelectContext(ctx, &rows, s.db.Rebind(`SELECT jid, mode FROM mam_prefs_jids WHERE user_id = ? ORDER BY jid`), userID); err != nil {
		return nil, fmt.Errorf("mam: prefs of %d: %w", userID, err)
	}
	for _, r := range rows {
		if r.Mode == PrefNever {
			p.Never = append(p.Never, r.JID)
		} else {
			p.Always = append(p.Always, r.JID)
		}
	}
	return p, nil
}

// SetPrefs replaces the user's preferences.
func (s *Store) SetPrefs(ctx context.Context, userID int64, p *Prefs) error {
	if p.Default != PrefAlways && p.Default != PrefNever && p.Default != PrefRoster {
		return fmt.Errorf("%w: default must be always, never or roster", ErrInvalid)
	}
	if len(p.Always)+len(p.Never) > maxPrefJIDs {
		return fmt.Errorf("%w: more than %d JIDs", ErrInvalid, maxPrefJIDs)
	}
	err := s.withTx(ctx, func(tx *sqlx.Tx) error {
		if _, err := tx.ExecContext(ctx, tx.Rebind(`INSERT INTO mam_prefs (user_id, default_mode) VALUES (?, ?)
			ON CONFLICT (user_id) DO UPDATE SET default_mode = excluded.default_mode`), userID, p.Default); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, tx.Rebind(`DELETE FROM mam_prefs_jids WHERE user_id = ?`), userID); err != nil {
			return err
		}
		seen := map[string]bool{}
		for mode, jids := range map[string][]string{PrefAlways: p.Always, PrefNever: p.Never} {
			for _, j := range jids {
				j = strings.ToLower(strings.TrimSpace(j))
				if j == "" || seen[j] || len(j) > 3071 {
					continue
				}
				seen[j] = true
				if _, err := tx.ExecContext(ctx, tx.Rebind(`INSERT INTO mam_prefs_jids (user_id, jid, mode) VALUES (?, ?, ?)`),
					userID, j, mode); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("mam: set prefs of %d: %w", userID, err)
	}
	return nil
}

func (p *Prefs) ids(ctx context.Context, dir Directory, jids []string) ([]int64, error) {
	var out []int64
	for _, j := range jids {
		id, err := dir.UserByJID(ctx, j)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, id)
	}
	return out, nil
}

// hidden reports whether the conversation with user `with` is hidden.
func (p *Prefs) hidden(ctx context.Context, dir Directory, with int64) (bool, error) {
	if with == 0 {
		return false, nil
	}
	never, err := p.ids(ctx, dir, p.Never)
	if err != nil {
		return false, err
	}
	for _, id := range never {
		if id == with {
			return true, nil
		}
	}
	if p.Default != PrefNever {
		return false, nil
	}
	always, err := p.ids(ctx, dir, p.Always)
	if err != nil {
		return false, err
	}
	for _, id := range always {
		if id == with {
			return false, nil
		}
	}
	return true, nil
}

// filters returns the other parties to leave out, and (default never) the
// only ones to show; only is non-nil (maybe empty) when it applies.
func (p *Prefs) filters(ctx context.Context, dir Directory) (exclude, only []int64, err error) {
	if exclude, err = p.ids(ctx, dir, p.Never); err != nil {
		return nil, nil, err
	}
	if p.Default == PrefNever {
		if only, err = p.ids(ctx, dir, p.Always); err != nil {
			return nil, nil, err
		}
		if only == nil {
			only = []int64{}
		}
	}
	return exclude, only, nil
}

// HandlePrefs answers a prefs IQ (typ "get" or "set", prefs = the <prefs/>
// element for a set) with the resulting <prefs/> element.
func (s *Store) HandlePrefs(ctx context.Context, viewer int64, typ string, prefs *stanza.Element) (*stanza.Element, error) {
	if typ == "set" {
		if prefs == nil || prefs.Name.Space != NS || prefs.Name.Local != "prefs" {
			return nil, badRequest("malformed prefs")
		}
		if prefs.Size() > MaxQueryXML*4 {
			return nil, &Error{Type: "modify", Condition: "policy-violation", Text: "prefs too large"}
		}
		p := &Prefs{Default: prefs.AttrValue("default")}
		if l := prefs.Child(NS, "always"); l != nil {
			p.Always = jidList(l)
		}
		if l := prefs.Child(NS, "never"); l != nil {
			p.Never = jidList(l)
		}
		if err := s.SetPrefs(ctx, viewer, p); errors.Is(err, ErrInvalid) {
			return nil, badRequest("%v", err)
		} else if err != nil {
			return nil, err
		}
	}
	p, err := s.Prefs(ctx, viewer)
	if err != nil {
		return nil, err
	}
	always, never := stanza.NewElement(NS, "always"), stanza.NewElement(NS, "never")
	for _, j := range p.Always {
		always.AddText(NS, "jid", j)
	}
	for _, j := range p.Never {
		never.AddText(NS, "jid", j)
	}
	return stanza.NewElement(NS, "prefs", "default", p.Default).AddChild(always, never), nil
}

// jidList is the <jid/> texts of an <always/> or <never/>.
func jidList(l *stanza.Element) []string {
	var out []string
	for _, c := range l.Children {
		if c.Name.Local == "jid" {
			out = append(out, c.Text)
		}
	}
	return out
}
