package xmppcore

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/jmoiron/sqlx"

	"vestnik/roster"
	"vestnik/xmppcore/mam"
)

// NewServer returns the XMPP server over the organisation's directory
// (roster) and the message archive (mam). MAM queries on a user's own
// archive are answered through the archive's XEP-0313 handler.
func NewServer(db *sqlx.DB, rs *roster.Store, archive *mam.Store, opts Options) *Server {
	if opts.Domain == "" {
		opts.Domain = "localhost"
	}
	rs.SetDomain(opts.Domain)
	s := NewServerWith(db, RosterDirectory(rs, opts.Domain), MAMArchive(archive), opts)
	s.msgs = archive
	s.registerMAM(archive, mam.NewDirectory(db, s.domain, "conference."+s.domain))
	return s
}

// rosterDirectory adapts *roster.Store to Directory.
type rosterDirectory struct {
	rs     *roster.Store
	domain string

	mu      sync.Mutex // guards depts, deptsAt
	depts   map[int64]roster.Department
	deptsAt time.Time
}

// deptCacheTTL is how long department names are reused for vCards.
const deptCacheTTL = 30 * time.Second

// RosterDirectory adapts the roster store to the Directory the server needs.
func RosterDirectory(rs *roster.Store, domain string) Directory {
	return &rosterDirectory{rs: rs, domain: domain}
}

func mapErr(err error) error {
	switch {
	case errors.Is(err, roster.ErrNotFound), errors.Is(err, mam.ErrNotFound):
		return fmt.Errorf("%w: %w", ErrNotFound, err)
	case errors.Is(err, roster.ErrBadPassword):
		return fmt.Errorf("%w: %w", ErrBadPassword, err)
	}
	return err
}

func (d *rosterDirectory) Credentials(ctx context.Context, login string) (*Credentials, error) {
	c, err := d.rs.Credentials(ctx, login)
	if err != nil {
		return nil, mapErr(err)
	}
	return &Credentials{UserID: c.UserID, Salt: c.Salt, Iterations: c.Iterations,
		SHA1Stored: c.SHA1Stored, SHA1Server: c.SHA1Server, SHA256Stored: c.SHA256Stored, SHA256Server: c.SHA256Server}, nil
}

func (d *rosterDirectory) CheckPassword(ctx context.Context, login, password string) (int64, error) {
	u, err := d.rs.CheckPassword(ctx, login, password)
	if err != nil {
		return 0, mapErr(err)
	}
	return u.ID, nil
}

func (d *rosterDirectory) departments(ctx context.Context) map[int64]roster.Department {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.depts != nil && time.Since(d.deptsAt) < deptCacheTTL {
		return d.depts
	}
	list, err := d.rs.Departments(ctx)
	if err != nil {
		return d.depts
	}
	m := make(map[int64]roster.Department, len(list))
	for _, x := range list {
		m[x.ID] = x
	}
	d.depts, d.deptsAt = m, time.Now()
	return m
}

func (d *rosterDirectory) account(ctx context.Context, u *roster.User) *Account {
	a := &Account{ID: u.ID, Login: u.Login, Name: u.Name, Email: u.Email, Title: u.Title, Active: u.Active}
	if len(u.Departments) > 0 {
		depts := d.departments(ctx)
		for _, id := range u.Departments {
			if x, ok := depts[id]; ok {
				a.Departments = append(a.Departments, x.Name)
			}
		}
		// The organisation is the root above the primary department.
		x, ok := depts[u.Departments[0]]
		for i := 0; ok && x.ParentID != 0 && i < 100; i++ {
			var p roster.Department
			if p, ok = depts[x.ParentID]; ok {
				x = p
			}
		}
		if ok || x.Name != "" {
			a.Org = x.Name
		}
	}
	return a
}

func (d *rosterDirectory) UserByLogin(ctx context.Context, login string) (*Account, error) {
	u, err := d.rs.UserByLogin(ctx, login)
	if err != nil {
		return nil, mapErr(err)
	}
	return d.account(ctx, u), nil
}

func (d *rosterDirectory) UserByID(ctx context.Context, id int64) (*Account, error) {
	u, err := d.rs.UserByID(ctx, id)
	if err != nil {
		return nil, mapErr(err)
	}
	return d.account(ctx, u), nil
}

func (d *rosterDirectory) Roster(ctx context.Context, userID int64) ([]RosterItem, error) {
	items, err := d.rs.Roster(ctx, userID)
	if err != nil {
		return nil, mapErr(err)
	}
	out := make([]RosterItem, len(items))
	for i, it := range items {
		j := it.JID
		if j == "" && it.Login != "" {
			j = it.Login + "@" + d.domain
		}
		out[i] = RosterItem{JID: j, ContactID: it.ContactID, Name: it.Name, Groups: it.Groups,
			Subscription: it.Subscription, Ask: it.Ask, Approved: it.Approved, Generated: it.Generated}
	}
	return out, nil
}

func (d *rosterDirectory) RosterVersion(ctx context.Context, userID int64, items []RosterItem) (string, error) {
	in := make([]roster.Item, 0, len(items))
	for _, it := range items {
		if it.Generated {
			login, _, _ := strings.Cut(it.JID, "@")
			in = append(in, roster.Item{ContactID: it.ContactID, Login: login, Name: it.Name, Groups: it.Groups, Generated: true})
		}
	}
	return d.rs.RosterVersion(ctx, userID, in)
}

func (d *rosterDirectory) Subscribe(ctx context.Context, userID int64, peer roster.Peer, op roster.SubOp, request string) (roster.SubResult, error) {
	r, err := d.rs.Subscribe(ctx, userID, peer, op, request)
	return r, mapErr(err)
}

func (d *rosterDirectory) SubscriptionState(ctx context.Context, userID int64, peer roster.Peer) (roster.SubState, error) {
	st, err := d.rs.SubscriptionState(ctx, userID, peer)
	return st, mapErr(err)
}

func (d *rosterDirectory) PendingRequests(ctx context.Context, userID int64) ([]roster.Pending, error) {
	p, err := d.rs.PendingRequests(ctx, userID)
	return p, mapErr(err)
}

func (d *rosterDirectory) SetRosterItem(ctx context.Context, userID int64, it RosterItem) error {
	return mapErr(d.rs.SetItem(ctx, userID, roster.Item{JID: it.JID, ContactID: it.ContactID, Name: it.Name,
		Groups: it.Groups, Subscription: it.Subscription, Ask: it.Ask, Approved: it.Approved}))
}

func (d *rosterDirectory) RemoveRosterItem(ctx context.Context, userID int64, jid string) error {
	return mapErr(d.rs.RemoveItem(ctx, userID, jid))
}

func (d *rosterDirectory) Events(ctx context.Context, afterID int64, limit int) ([]Event, error) {
	evs, err := d.rs.Events(ctx, afterID, limit)
	if err != nil {
		return nil, err
	}
	out := make([]Event, len(evs))
	for i, e := range evs {
		out[i] = Event{ID: e.ID, Kind: e.Kind, UserID: e.UserID, ContactID: e.ContactID}
	}
	return out, nil
}

func (d *rosterDirectory) Logout(ctx context.Context, login string) error {
	return mapErr(d.rs.Logout(ctx, login))
}

func (d *rosterDirectory) LastEventID(ctx context.Context) (int64, error) {
	return d.rs.LastEventID(ctx)
}

// mamArchive adapts *mam.Store to Archive.
type mamArchive struct{ st *mam.Store }

// MAMArchive adapts the message archive to the Archive the server needs.
func MAMArchive(st *mam.Store) Archive { return mamArchive{st} }

func (a mamArchive) Append(ctx context.Context, m *ArchivedMessage, routed func(bool)) (bool, error) {
	mm := &mam.Message{Kind: mam.KindChat, FromID: m.FromID, ToID: m.ToID, FromResource: m.FromResource,
		OriginID: m.OriginID, Body: m.Body, Payload: m.Payload, Lang: m.Lang, Files: m.Files, ReplyTo: m.ReplyTo}
	var then func(bool)
	if routed != nil {
		then = func(committed bool) {
			m.ID, m.CreatedAt, m.Seq = mm.ID, mm.CreatedAt, mm.Seq
			routed(committed)
		}
	}
	newContact, err := a.st.AppendThen(ctx, mm, then)
	if err != nil {
		return false, err
	}
	m.ID, m.CreatedAt, m.Seq = mm.ID, mm.CreatedAt, mm.Seq
	return newContact, nil
}

func (a mamArchive) Settle(ctx context.Context) error { return a.st.Settle(ctx) }

func (a mamArchive) UndeliveredAfter(ctx context.Context, userID, afterID int64, limit int) ([]ArchivedMessage, error) {
	msgs, err := a.st.UndeliveredAfter(ctx, userID, afterID, limit)
	if err != nil {
		return nil, err
	}
	out := make([]ArchivedMessage, len(msgs))
	for i, m := range msgs {
		out[i] = ArchivedMessage{ID: m.ID, CreatedAt: m.CreatedAt, FromID: m.FromID, ToID: m.ToID,
			FromResource: m.FromResource, OriginID: m.OriginID, Body: m.Body, Payload: m.Payload,
			Lang: m.Lang, Seq: m.Seq, Deleted: m.Deleted}
	}
	return out, nil
}

func (a mamArchive) SeqOf(ctx context.Context, userID, id int64) (int64, error) {
	return a.st.SeqOf(ctx, userID, id)
}

func (a mamArchive) Mark(ctx context.Context, userID int64) (DeliveryMark, error) {
	m, err := a.st.Mark(ctx, userID)
	return DeliveryMark(m), err
}

func (a mamArchive) MarkUpTo(ctx context.Context, userID, upToID int64) (DeliveryMark, error) {
	m, err := a.st.MarkUpTo(ctx, userID, upToID)
	return DeliveryMark(m), err
}

func (a mamArchive) StoreMarks(ctx context.Context, marks map[int64]DeliveryMark) error {
	m := make(map[int64]mam.Mark, len(marks))
	for u, x := range marks {
		m[u] = mam.Mark(x)
	}
	return a.st.StoreMarks(ctx, m)
}

// registerMAM answers XEP-0313 queries on the user's own archive.
func (s *Server) registerMAM(st *mam.Store, dir mam.Directory) {
	s.HandleIQ(mam.NS, func(ctx context.Context, sess *Session, iq *Element) (*Element, error) {
		q := iq.Children[0]
		if q.Name.Local == "prefs" {
			out, err := st.HandlePrefs(ctx, sess.userID, iq.AttrValue("type"), q)
			if err != nil {
				return nil, mamError(err)
			}
			return out, nil
		}
		if q.Name.Local == "metadata" && iq.AttrValue("type") == "get" {
			out, err := st.Metadata(ctx, sess.userID, 0)
			if err != nil {
				return nil, mamError(err)
			}
			return out, nil
		}
		if q.Name.Local != "query" {
			return nil, ErrBadRequest("")
		}
		resp, err := st.HandleQuery(ctx, dir, mam.Request{Viewer: sess.userID, ArchiveJID: sess.bareStr, To: sess.jidStr, Query: q,
			Get: iq.AttrValue("type") == "get"})
		if err != nil {
			return nil, mamError(err)
		}
		for _, r := range resp.Results {
			sess.deliver(r)
		}
		return resp.Fin, nil
	})
	for _, f := range mam.Features {
		s.AddFeature(f)
	}
	s.AddFeature(NSRetract) // XEP-0424: retractions leave tombstones in the archive
}

func mamError(err error) error {
	var me *mam.Error
	if errors.As(err, &me) {
		return &StanzaError{Type: me.Type, Condition: me.Condition, Text: me.Text}
	}
	return err
}
