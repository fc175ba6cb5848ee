package mam

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/jmoiron/sqlx"
)

// Reactions (XEP-0444): each user keeps a set of reactions on a message.
// The rule, for every door: only someone who may read the message (the
// access rule) reacts, to a personal, chat or system message that is not
// retracted; a set replaces the user's previous one (empty removes it);
// a set is bounded.

// Limits of reactions.
const (
	MaxReactions     = 10 // distinct reactions one user keeps on one message
	MaxReactionBytes = 64 // one reaction (an emoji, with its modifiers and joiners)
	maxReactionRunes = 16
)

// Reaction is one reaction on a message and who gave it, in the order
// they did.
type Reaction struct {
	Emoji string
	Users []int64
}

// NormalizeReactions checks a set of reactions and drops repeats, keeping
// the order. Each is non-empty, at most MaxReactionBytes and a few
// characters, without spaces or control characters; at most MaxReactions.
func NormalizeReactions(set []string) ([]string, error) {
	out := make([]string, 0, len(set))
	for _, r := range set {
		if err := checkReaction(r); err != nil {
			return nil, err
		}
		if !slices.Contains(out, r) {
			out = append(out, r)
		}
	}
	if len(out) > MaxReactions {
		return nil, fmt.Errorf("%w: more than %d reactions", ErrInvalid, MaxReactions)
	}
	return out, nil
}

func checkReaction(r string) error {
	if r == "" || len(r) > MaxReactionBytes || utf8.RuneCountInString(r) > maxReactionRunes || !utf8.ValidString(r) {
		return fmt.Errorf("%w: a reaction is an emoji of at most %d bytes", ErrInvalid, MaxReactionBytes)
	}
	for _, c := range r {
		if unicode.IsSpace(c) || unicode.IsControl(c) {
			return fmt.Errorf("%w: a reaction has no spaces or control characters", ErrInvalid)
		}
	}
	return nil
}

// React replaces userID's reactions on message id with set (XEP-0444:
// the whole set; empty removes them all). It returns the message and
// everyone's reactions on it after the change.
func (s *Store) React(ctx context.Context, userID, id int64, set []string) (*Message, []Reaction, error) {
	set, err := NormalizeReactions(set)
	if err != nil {
		return nil, nil, err
	}
	return s.react(ctx, userID, id, func([]string) ([]string, error) { return set, nil })
}

// AddReaction adds one reaction of userID to message id (nothing changes
// when it is there already).
func (s *Store) AddReaction(ctx context.Context, userID, id int64, reaction string) (*Message, []Reaction, error) {
	if err := checkReaction(reaction); err != nil {
		return nil, nil, err
	}
	return s.react(ctx, userID, id, func(cur []string) ([]string, error) {
		if slices.Contains(cur, reaction) {
			return cur, nil
		}
		if len(cur) >= MaxReactions {
			return nil, fmt.Errorf("%w: more than %d reactions", ErrInvalid, MaxReactions)
		}
		return append(cur, reaction), nil
	})
}

// RemoveReaction takes one reaction of userID off message id.
func (s *Store) RemoveReaction(ctx context.Context, userID, id int64, reaction string) (*Message, []Reaction, error) {
	return s.react(ctx, userID, id, func(cur []string) ([]string, error) {
		return slices.DeleteFunc(cur, func(r string) bool { return r == reaction }), nil
	})
}

// react changes userID's set on message id to f(current set) in one
// transaction.
func (s *Store) react(ctx context.Context, userID, id int64, f func(cur []string) ([]string, error)) (*Message, []Reaction, error) {
	ctx, cancel := context.WithTimeout(ctx, defaultTimeout)
	defer cancel()
	if err := s.Settle(ctx); err != nil {
		return nil, nil, err
	}
	var msg *Message
	var sum []Reaction
	err := s.withTx(ctx, func(tx *sqlx.Tx) error {
		cond, args := readable(userID)
		var r msgRow
		err := tx.GetContext(ctx, &r, tx.Rebind(`SELECT `+msgColumns+` FROM messages m WHERE m.id = ? AND `+cond),
			append([]any{id}, args...)...)
		if errors.Is(err, sql.ErrNoRows) {
			return ErrNotFound
		}
		if err != nil {
			return err
		}
		m := r.message()
		if m.Kind == KindHeadline {
			return ErrForbidden
		}
		if m.Deleted {
			return ErrRetracted
		}
		var cur []string
		if err := tx.SelectContext(ctx, &cur, tx.Rebind(`SELECT reaction FROM reactions WHERE message_id = ? AND user_id = ?
			ORDER BY created_at, reaction`), id, userID); err != nil {
			return err
		}
		next, err := f(slices.Clone(cur))
		if err != nil {
			return err
		}
		for _, x := range cur {
			if !slices.Contains(next, x) {
				if _, err := tx.ExecContext(ctx, tx.Rebind(`DELETE FROM reactions WHERE message_id = ? AND user_id = ? AND reaction = ?`),
					id, userID, x); err != nil {
					return err
				}
			}
		}
		now := time.Now().UnixMicro()
		var added []string
		for i, x := range next {
			if slices.Contains(cur, x) {
				continue
			}
			added = append(added, x)
			// created_at orders the summary; i keeps a set's own order.
			if _, err := tx.ExecContext(ctx, tx.Rebind(`INSERT INTO reactions (message_id, user_id, reaction, created_at)
				VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING`), id, userID, x, now+int64(i)); err != nil {
				return err
			}
		}
		all, err := s.reactionsOf(ctx, tx, []int64{id})
		if err != nil {
			return err
		}
		if len(added) > 0 {
			if err := s.tell(ctx, tx, Change{Kind: ChangeReaction, Message: &m, UserID: userID, Reactions: added}); err != nil {
				return err
			}
		}
		msg, sum = &m, all[id]
		return nil
	})
	if err != nil {
		if isRuleErr(err) {
			return nil, nil, err
		}
		return nil, nil, fmt.Errorf("mam: react to %d: %w", id, err)
	}
	return msg, sum, nil
}

// Reactions returns the reactions on each of the messages ids (those
// without any are absent from the map), for history pages.
func (s *Store) Reactions(ctx context.Context, ids []int64) (map[int64][]Reaction, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	ctx, cancel := context.WithTimeout(ctx, defaultTimeout)
	defer cancel()
	out, err := s.reactionsOf(ctx, s.db, ids)
	if err != nil {
		return nil, fmt.Errorf("mam: reactions: %w", err)
	}
	return out, nil
}

func (s *Store) reactionsOf(ctx context.Context, q sqlx.QueryerContext, ids []int64) (map[int64][]Reaction, error) {
	out := make(map[int64][]Reaction)
	for start := 0; start < len(ids); start += MaxLimit {
		part := ids[start:min(start+MaxLimit, len(ids))]
		in := `(?` + strings.Repeat(", ?", len(part)-1) + `)`
		var rows []struct {
			MessageID int64  `db:"message_id"`
			UserID    int64  `db:"user_id"`
			Reaction  string `db:"reaction"`
		}
		if err := sqlx.SelectContext(ctx, q, &rows, sqlx.Rebind(sqlx.BindType(s.db.DriverName()),
			`SELECT message_id, user_id, reaction FROM reactions WHERE message_id IN `+in+`
			ORDER BY message_id, created_at, user_id, reaction`), anys(part)...); err != nil {
			return nil, err
		}
		for _, r := range rows {
			list := out[r.MessageID]
			i := slices.IndexFunc(list, func(x Reaction) bool { return x.Emoji == r.Reaction })
			if i < 0 {
				list = append(list, Reaction{Emoji: r.Reaction})
				i = len(list) - 1
			}
			list[i].Users = append(list[i].Users, r.UserID)
			out[r.MessageID] = list
		}
	}
	return out, nil
}

// isRuleErr reports the errors that are answers, not failures.
func isRuleErr(err error) bool {
	return errors.Is(err, ErrNotFound) || errors.Is(err, ErrForbidden) || errors.Is(err, ErrInvalid)
}
