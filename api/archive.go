package api

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"vestnik/roster"
	"vestnik/xmppcore"
	"vestnik/xmppcore/mam"
	"vestnik/xmppcore/rich"
)

// History and search (owner: archive). Both read the archive on behalf of
// the user named in the path: the archive's access rule decides what they
// see, exactly as over MAM and the bridge.

// maxSearchText bounds the q parameter of a search, in bytes.
const maxSearchText = 500

// archiveMessage is a message as the REST API shows it.
type archiveMessage struct {
	ID         int64   `json:"id"`
	Kind       string  `json:"kind"` // chat (personal), groupchat, system, headline
	FromUserID *string `json:"from_user_id"`
	ToUserID   *string `json:"to_user_id,omitempty"`
	ChatID     *int64  `json:"chat_id,omitempty"`
	Text       string  `json:"text"`
	CreatedAt  string  `json:"created_at"`
	Edited     bool    `json:"edited"`
	EditedAt   *string `json:"edited_at"`
	Deleted    bool    `json:"deleted"`
	// Reactions, in history (omitted when none).
	Reactions []reactionJSON `json:"reactions,omitempty"`
	// ReplyTo is the id of the message this one answers (XEP-0461).
	ReplyTo int64 `json:"reply_to,omitempty"`
	// A rich message's attachment and keyboard; its text is then the
	// text as sent, BB-codes included (omitted when none).
	Attach   *rich.Attach  `json:"attach,omitempty"`
	Keyboard []rich.Button `json:"keyboard,omitempty"`
}

type searchHit struct {
	archiveMessage
	Snippet string `json:"snippet"`
}

// extIDs maps internal user ids to portal ids within one request.
type extIDs struct {
	a     *API
	r     *http.Request
	cache map[int64]string
}

func (x *extIDs) of(id int64) (*string, error) {
	if id == 0 {
		return nil, nil
	}
	if s, ok := x.cache[id]; ok {
		return &s, nil
	}
	u, err := x.a.users.UserByID(x.r.Context(), id)
	if errors.Is(err, roster.ErrNotFound) {
		s := "" // a user removed from the database: shown as ""
		x.cache[id] = s
		return &s, nil
	}
	if err != nil {
		return nil, err
	}
	x.cache[id] = u.ExtID
	return &u.ExtID, nil
}

func (x *extIDs) message(m *mam.Message) (archiveMessage, error) {
	out := archiveMessage{ID: m.ID, Kind: m.Kind, Text: m.Body, Deleted: m.Deleted, Edited: m.EditedAt != nil && !m.Deleted,
		CreatedAt: m.CreatedAt.UTC().Format(time.RFC3339Nano)}
	var err error
	if out.FromUserID, err = x.of(m.FromID); err != nil {
		return out, err
	}
	if m.ChatID != 0 {
		out.ChatID = &m.ChatID
	} else if out.ToUserID, err = x.of(m.ToID); err != nil {
		return out, err
	}
	if m.EditedAt != nil {
		s := m.EditedAt.UTC().Format(time.RFC3339Nano)
		out.EditedAt = &s
	}
	if c := xmppcore.RichOf(m.Payload); c != nil && !m.Deleted {
		out.Text, out.Attach, out.Keyboard = c.Text, c.Attach, c.Keyboard
	}
	if m.ReplyTo != 0 && !m.Deleted {
		// The quote a Jabber client put in the body for clients
		// without XEP-0461 is not part of the text.
		out.ReplyTo = m.ReplyTo
		if kids, err := xmppcore.ParseFragment(m.Payload); err == nil {
			out.Text = xmppcore.StripReplyFallback(out.Text, kids)
		}
	}
	return out, nil
}

// pathUser is the user named by {id}: any known user, active or not (a
// deactivated employee's history stays readable).
func (a *API) pathUser(w http.ResponseWriter, r *http.Request) (*roster.User, bool) {
	id := r.PathValue("id")
	if id == "" || len(id) > 200 {
		writeError(w, http.StatusNotFound, "not_found", "no such user")
		return nil, false
	}
	u, err := a.users.UserByExtID(r.Context(), id)
	if errors.Is(err, roster.ErrNotFound) {
		writeError(w, http.StatusNotFound, "not_found", "no such user: "+strconv.Quote(id))
		return nil, false
	}
	if err != nil {
		a.internal(w, r, err)
		return nil, false
	}
	if err := checkActing(r, u.ID); err != nil {
		writeError(w, http.StatusForbidden, "token_user", err.Error())
		return nil, false
	}
	return u, true
}

// queryInt reads an optional positive integer query parameter: 400 when
// it is not a number, 422 when it is out of [1, max] (max 0: no bound).
func queryInt(w http.ResponseWriter, r *http.Request, name string, def, max int64) (int64, bool) {
	v := strings.TrimSpace(r.URL.Query().Get(name))
	if v == "" {
		return def, true
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		writeError(w, http.StatusBadRequest, "malformed_parameter", name+" must be a whole number")
		return 0, false
	}
	if n < 1 || max > 0 && n > max {
		msg := "must be a positive number"
		if max > 0 {
			msg = "must be between 1 and " + strconv.FormatInt(max, 10)
		}
		writeFieldError(w, name, "out_of_range", msg)
		return 0, false
	}
	return n, true
}

// queryUser reads an optional user parameter (portal id); ok=false after
// answering 422 for an unknown user.
func (a *API) queryUser(w http.ResponseWriter, r *http.Request, name string) (id int64, ok bool) {
	v := strings.TrimSpace(r.URL.Query().Get(name))
	if v == "" {
		return 0, true
	}
	u, err := a.users.UserByExtID(r.Context(), v)
	if errors.Is(err, roster.ErrNotFound) || len(v) > 200 {
		writeFieldError(w, name, "unknown_user", "user "+strconv.Quote(v)+" does not exist")
		return 0, false
	}
	if err != nil {
		a.internal(w, r, err)
		return 0, false
	}
	return u.ID, true
}

func (a *API) archiveReady(w http.ResponseWriter) bool {
	if a.opts.Archive == nil {
		writeError(w, http.StatusServiceUnavailable, "archive_unavailable", "the message archive is not configured")
		return false
	}
	return true
}

// getHistory answers GET /users/{id}/history?with=&before=&limit=: the
// personal correspondence of user id with user `with`, the newest page
// before message `before` (default: the latest), oldest first.
func (a *API) getHistory(w http.ResponseWriter, r *http.Request) {
	if !a.archiveReady(w) {
		return
	}
	u, ok := a.pathUser(w, r)
	if !ok {
		return
	}
	if strings.TrimSpace(r.URL.Query().Get("with")) == "" {
		writeFieldError(w, "with", "missing_user", "the other user's id is required")
		return
	}
	with, ok := a.queryUser(w, r, "with")
	if !ok {
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
	p, err := a.opts.Archive.Query(r.Context(), mam.Query{Viewer: u.ID, With: with, BeforeID: before, Limit: int(limit), Reverse: true})
	if err != nil {
		a.internal(w, r, err)
		return
	}
	a.writePage(w, r, p)
}

// searchArchive answers GET /users/{id}/search?q=&with=&chat_id=&before=&limit=:
// full-text search over what user id may read, best first, with
// highlighted snippets.
func (a *API) searchArchive(w http.ResponseWriter, r *http.Request) {
	if !a.archiveReady(w) {
		return
	}
	u, ok := a.pathUser(w, r)
	if !ok {
		return
	}
	q := strings.TrimSpace(r.URL.Query().Get("q"))
	switch {
	case q == "":
		writeFieldError(w, "q", "missing_text", "the text to search for is required")
		return
	case len(q) > maxSearchText:
		writeFieldError(w, "q", "too_long", "at most "+strconv.Itoa(maxSearchText)+" bytes")
		return
	}
	with, ok := a.queryUser(w, r, "with")
	if !ok {
		return
	}
	chat, ok := queryInt(w, r, "chat_id", 0, 0)
	if !ok {
		return
	}
	if with != 0 && chat != 0 {
		writeFieldError(w, "chat_id", "conflicting_scope", "give with or chat_id, not both")
		return
	}
	before, ok := queryInt(w, r, "before", 0, 0)
	if !ok {
		return
	}
	limit, ok := queryInt(w, r, "limit", mam.DefaultSearchLimit, mam.MaxSearchLimit)
	if !ok {
		return
	}
	hits, err := a.opts.Archive.Search(r.Context(), u.ID, q, mam.SearchOptions{With: with, ChatID: chat, BeforeID: before, Limit: int(limit)})
	if err != nil {
		a.internal(w, r, err)
		return
	}
	x := &extIDs{a: a, r: r, cache: map[int64]string{}}
	out := make([]searchHit, 0, len(hits))
	for i := range hits {
		m, err := x.message(&hits[i].Message)
		if err != nil {
			a.internal(w, r, err)
			return
		}
		out = append(out, searchHit{archiveMessage: m, Snippet: hits[i].Snippet})
	}
	writeJSON(w, http.StatusOK, map[string]any{"hits": out})
}
