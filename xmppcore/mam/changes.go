package mam

import (
	"context"
	"slices"
	"time"

	"github.com/jmoiron/sqlx"
)

// Kinds of archive changes told to Options.OnChange. They are also the
// names of the outgoing events (package webhook).
const (
	ChangeCreated  = "message.created"
	ChangeUpdated  = "message.updated"
	ChangeDeleted  = "message.deleted"
	ChangeReaction = "reaction.added"
)

// Change is one change of the archive, told to Options.OnChange inside the
// transaction that makes it, so that whatever the hook writes there (the
// outgoing event queue) commits or rolls back with it. Every door's
// messages, edits, retractions and reactions pass here.
type Change struct {
	Kind    string
	Message *Message // as it is after the change, ID and CreatedAt set
	// UserID is who edited, retracted or reacted (ChangeCreated: 0).
	UserID int64
	// Reactions are the reactions UserID added (ChangeReaction).
	Reactions []string
}

// appended tells the hook about the appended messages of a batch.
func (s *Store) appended(ctx context.Context, tx *sqlx.Tx, batch []*appendReq) error {
	// The batch may hold messages queued through other Stores over the
	// same database (sharedAppender): each store's hook hears its own.
	for _, st := range storesOf(batch) {
		if st.opts.OnChange == nil {
			continue
		}
		var cs []Change
		for _, r := range batch {
			if r.st == st {
				m := *r.m
				m.ID, m.CreatedAt = r.id, time.UnixMicro(r.created).UTC()
				cs = append(cs, Change{Kind: ChangeCreated, Message: &m})
			}
		}
		if err := st.opts.OnChange(ctx, tx, cs); err != nil {
			return err
		}
	}
	return nil
}

// storesOf lists the Stores that queued batch's messages, in order.
func storesOf(batch []*appendReq) []*Store {
	var out []*Store
	for _, r := range batch {
		if !slices.Contains(out, r.st) {
			out = append(out, r.st)
		}
	}
	return out
}

// tell tells the hook about an edit, retraction or reaction.
func (s *Store) tell(ctx context.Context, tx *sqlx.Tx, c Change) error {
	if s.opts.OnChange == nil {
		return nil
	}
	m := *c.Message
	c.Message = &m
	return s.opts.OnChange(ctx, tx, []Change{c})
}
