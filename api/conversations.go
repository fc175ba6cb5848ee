package api

import (
	"net/http"
	"strings"

	"vestnik/xmppcore/mam"
)

// Reading chats and conversation lists on behalf of a user, under the
// archive's access rule (the membership windows of hide_history, leaving
// and rejoining) and the chat service's visibility rule.

// readerParam resolves the query parameter that names the user reading
// (required; a token made for a user reads only as that user).
func (a *API) readerParam(w http.ResponseWriter, r *http.Request, name string) (int64, bool) {
	if strings.TrimSpace(r.URL.Query().Get(name)) == "" {
		writeFieldError(w, name, "missing_user", "the reading user's id is required")
		return 0, false
	}
	id, ok := a.queryUser(w, r, name)
	if !ok {
		return 0, false
	}
	if err := checkActing(r, id); err != nil {
		writeError(w, http.StatusForbidden, "token_user", err.Error())
		return 0, false
	}
	return id, true
}

// writePage answers a page of archived messages (oldest first) with their
// reactions.
func (a *API) writePage(w http.ResponseWriter, r *http.Request, p *mam.Page) {
	x := &extIDs{a: a, r: r, cache: map[int64]string{}}
	out := make([]archiveMessage, 0, len(p.Messages))
	for i := range p.Messages {
		m, err := x.message(&p.Messages[i])
		if err != nil {
			a.internal(w, r, err)
			return
		}
		out = append(out, m)
	}
	if err := x.reactions(out); err != nil {
		a.internal(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"messages": out, "complete": p.Complete})
}

// getChatMessages answers GET /chats/{id}/messages?user_id=&before=&limit=:
// the chat's history as member user_id may see it, the newest page before
// message `before`, oldest first.
func (a *API) getChatMessages(w http.ResponseWriter, r *http.Request) {
	if !a.archiveReady(w) {
		return
	}
	id, ok := pathID(w, r, "id")
	if !ok {
		return
	}
	reader, ok := a.readerParam(w, r, "user_id")
	if !ok {
		return
	}
	if _, err := a.chats.Get(r.Context(), reader, id); err != nil {
		a.fail(w, r, err)
		return
	}
	before, ok := queryInt(w, r, "before", 0, 0)
	if !ok {
		return
	}
	limit, ok := queryInt(w, r, "limit", mam.DefaultLimit, mam.MaxLimit)
	if !ok {
		return
	}
	p, err := a.opts.Archive.Query(r.Context(), mam.Query{Viewer: reader, ChatID: id, BeforeID: before, Limit: int(limit), Reverse: true})
	if err != nil {
		a.internal(w, r, err)
		return
	}
	a.writePage(w, r, p)
}

// recentJSON is one conversation of a user's list.
type recentJSON struct {
	With        *string        `json:"with,omitempty"`    // the colleague of a personal conversation
	ChatID      *int64         `json:"chat_id,omitempty"` // or the chat
	LastMessage archiveMessage `json:"last_message"`
	Unread      int            `json:"unread"` // messages from others after the user's read mark
}

// getRecent answers GET /users/{id}/recent?limit=: the user's
// conversations, personal and chats, by their newest message the user may
// read, newest first, each with its unread count (mam/read.go).
func (a *API) getRecent(w http.ResponseWriter, r *http.Request) {
	if !a.archiveReady(w) {
		return
	}
	u, ok := a.pathUser(w, r)
	if !ok {
		return
	}
	limit, ok := queryInt(w, r, "limit", 50, mam.MaxRecent)
	if !ok {
		return
	}
	convs, err := a.opts.Archive.Conversations(r.Context(), u.ID, int(limit))
	if err != nil {
		a.internal(w, r, err)
		return
	}
	x := &extIDs{a: a, r: r, cache: map[int64]string{}}
	out := make([]recentJSON, 0, len(convs))
	for i := range convs {
		m := &convs[i].Last
		am, err := x.message(m)
		if err != nil {
			a.internal(w, r, err)
			return
		}
		c := recentJSON{LastMessage: am, Unread: convs[i].Unread}
		if m.ChatID != 0 {
			c.ChatID = &m.ChatID
		} else {
			peer := m.ToID
			if peer == u.ID {
				peer = m.FromID
			}
			if c.With, err = x.of(peer); err != nil {
				a.internal(w, r, err)
				return
			}
		}
		out = append(out, c)
	}
	writeJSON(w, http.StatusOK, map[string]any{"conversations": out})
}
