package api

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"

	"vestnik/xmppcore"
	"vestnik/xmppcore/mam"
	"vestnik/xmppcore/rich"
)

// Edits, retractions and reactions: the core's operations
// (xmppcore/edits.go) on behalf of from_user_id, with the same rule as
// for a Jabber client or the browser; the parties' clients are told live.

// MessageChanges is what the API needs from the core to change messages
// (xmppcore.Server implements it, beside Messenger).
type MessageChanges interface {
	EditMessage(ctx context.Context, r xmppcore.ChangeRequest, body string) (*mam.Message, error)
	EditRichMessage(ctx context.Context, r xmppcore.ChangeRequest, f func(old *rich.Content) *rich.Content) (*mam.Message, error)
	RetractMessage(ctx context.Context, r xmppcore.ChangeRequest) (*mam.Message, error)
	AddReaction(ctx context.Context, r xmppcore.ChangeRequest, reaction string) (*mam.Message, []mam.Reaction, error)
	RemoveReaction(ctx context.Context, r xmppcore.ChangeRequest, reaction string) (*mam.Message, []mam.Reaction, error)
}

// reactionJSON is one reaction on a message and who gave it (portal ids).
type reactionJSON struct {
	Emoji string   `json:"emoji"`
	Users []string `json:"users"`
}

// changes returns the core's message operations, or answers 503.
func (a *API) changes(w http.ResponseWriter) (MessageChanges, bool) {
	mc, ok := a.msgr.(MessageChanges)
	if !ok {
		writeError(w, http.StatusServiceUnavailable, "unavailable", "message changes are not available on this server")
	}
	return mc, ok
}

// pathMessage reads {id}, a message id.
func pathMessage(w http.ResponseWriter, r *http.Request) (int64, bool) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		writeError(w, http.StatusNotFound, "message_not_found", "no such message")
		return 0, false
	}
	return id, true
}

// changeFailed answers a refused change in the error model.
func (a *API) changeFailed(w http.ResponseWriter, r *http.Request, err error, field string) {
	switch {
	case errors.Is(err, mam.ErrNotFound):
		writeError(w, http.StatusNotFound, "message_not_found", "no such message, or the user may not read it")
	case errors.Is(err, mam.ErrTooLate):
		writeError(w, http.StatusConflict, "edit_window_over", "the time to change this message is over")
	case errors.Is(err, mam.ErrRetracted):
		writeError(w, http.StatusConflict, "message_retracted", "the message was deleted")
	case errors.Is(err, xmppcore.ErrBlocked):
		writeError(w, http.StatusForbidden, "blocked", "one of the two users blocked the other")
	case errors.Is(err, mam.ErrForbidden):
		writeError(w, http.StatusForbidden, "not_author", "only its author may change a message")
	case errors.Is(err, mam.ErrInvalid):
		writeFieldError(w, field, "invalid_"+field, strings.TrimPrefix(err.Error(), mam.ErrInvalid.Error()+": "))
	default:
		a.internal(w, r, err)
	}
}

type patchMessageReq struct {
	FromUserID userID  `json:"from_user_id"`
	Message    *string `json:"message"`
	// Attach and Keyboard replace a rich message's (absent: kept; an
	// empty list removes them).
	Attach   *rich.Attach   `json:"attach"`
	Keyboard *[]rich.Button `json:"keyboard"`
}

// patchMessage edits a message: PATCH /messages/{id}.
func (a *API) patchMessage(w http.ResponseWriter, r *http.Request) {
	mc, ok := a.changes(w)
	if !ok {
		return
	}
	id, ok := pathMessage(w, r)
	if !ok {
		return
	}
	var req patchMessageReq
	if !decode(w, r, &req) {
		return
	}
	richGiven := req.Attach != nil || req.Keyboard != nil
	if !richGiven || req.Message != nil {
		if err := checkText("message", req.Message); err != nil {
			a.fail(w, r, err)
			return
		}
	}
	from, err := a.resolve(r, "from_user_id", req.FromUserID)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	cr := xmppcore.ChangeRequest{User: from.ID, Ref: mam.Ref{ID: id}}
	var m *mam.Message
	if richGiven {
		m, err = mc.EditRichMessage(r.Context(), cr, func(old *rich.Content) *rich.Content {
			if req.Message != nil {
				old.Text = *req.Message
			}
			if req.Attach != nil {
				old.Attach = req.Attach
			}
			if req.Keyboard != nil {
				old.Keyboard = *req.Keyboard
			}
			return old
		})
	} else {
		m, err = mc.EditMessage(r.Context(), cr, *req.Message)
	}
	var fe *rich.FieldError
	if errors.As(err, &fe) {
		a.fail(w, r, err)
		return
	}
	if err != nil {
		a.changeFailed(w, r, err, "message")
		return
	}
	a.writeMessage(w, r, m)
}

// deleteMessage retracts a message: DELETE /messages/{id}?from_user_id=
// (or from_user_id in a JSON body). The archive keeps a tombstone.
func (a *API) deleteMessage(w http.ResponseWriter, r *http.Request) {
	mc, ok := a.changes(w)
	if !ok {
		return
	}
	id, ok := pathMessage(w, r)
	if !ok {
		return
	}
	var req struct {
		FromUserID userID `json:"from_user_id"`
	}
	if q := strings.TrimSpace(r.URL.Query().Get("from_user_id")); q != "" {
		req.FromUserID = userID(q)
	} else if r.ContentLength != 0 && !decode(w, r, &req) {
		return
	}
	from, err := a.resolve(r, "from_user_id", req.FromUserID)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	m, err := mc.RetractMessage(r.Context(), xmppcore.ChangeRequest{User: from.ID, Ref: mam.Ref{ID: id}})
	if err != nil {
		a.changeFailed(w, r, err, "message")
		return
	}
	a.writeMessage(w, r, m)
}

func (a *API) writeMessage(w http.ResponseWriter, r *http.Request, m *mam.Message) {
	x := &extIDs{a: a, r: r, cache: map[int64]string{}}
	out, err := x.message(m)
	if err != nil {
		a.internal(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"message": out})
}

type reactionReq struct {
	FromUserID userID  `json:"from_user_id"`
	Reaction   *string `json:"reaction"`
}

// postReaction adds a reaction: POST /messages/{id}/reactions. Adding one
// the user has already changes nothing; DELETE takes it off.
func (a *API) postReaction(w http.ResponseWriter, r *http.Request) {
	var req reactionReq
	if !decode(w, r, &req) {
		return
	}
	a.reaction(w, r, req, true)
}

// deleteReaction takes a reaction off: DELETE
// /messages/{id}/reactions?from_user_id=&reaction= (or the same in a JSON
// body).
func (a *API) deleteReaction(w http.ResponseWriter, r *http.Request) {
	var req reactionReq
	q := r.URL.Query()
	if q.Has("from_user_id") || q.Has("reaction") {
		req.FromUserID = userID(strings.TrimSpace(q.Get("from_user_id")))
		rc := q.Get("reaction")
		req.Reaction = &rc
	} else if r.ContentLength != 0 && !decode(w, r, &req) {
		return
	}
	a.reaction(w, r, req, false)
}

func (a *API) reaction(w http.ResponseWriter, r *http.Request, req reactionReq, add bool) {
	mc, ok := a.changes(w)
	if !ok {
		return
	}
	id, ok := pathMessage(w, r)
	if !ok {
		return
	}
	if req.Reaction == nil || *req.Reaction == "" {
		writeFieldError(w, "reaction", "missing_reaction", "the reaction (an emoji) is required")
		return
	}
	from, err := a.resolve(r, "from_user_id", req.FromUserID)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	cr := xmppcore.ChangeRequest{User: from.ID, Ref: mam.Ref{ID: id}}
	var sum []mam.Reaction
	if add {
		_, sum, err = mc.AddReaction(r.Context(), cr, *req.Reaction)
	} else {
		_, sum, err = mc.RemoveReaction(r.Context(), cr, *req.Reaction)
	}
	if err != nil {
		a.changeFailed(w, r, err, "reaction")
		return
	}
	x := &extIDs{a: a, r: r, cache: map[int64]string{}}
	out, err := x.reactionList(sum)
	if err != nil {
		a.internal(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"message_id": id, "reactions": out})
}

// reactionList names the users of a reaction summary by portal id.
func (x *extIDs) reactionList(sum []mam.Reaction) ([]reactionJSON, error) {
	out := make([]reactionJSON, 0, len(sum))
	for _, s := range sum {
		rj := reactionJSON{Emoji: s.Emoji, Users: make([]string, 0, len(s.Users))}
		for _, u := range s.Users {
			ext, err := x.of(u)
			if err != nil {
				return nil, err
			}
			rj.Users = append(rj.Users, *ext)
		}
		out = append(out, rj)
	}
	return out, nil
}

// reactions adds their reactions to a page of messages (one query).
func (x *extIDs) reactions(msgs []archiveMessage) error {
	ids := make([]int64, len(msgs))
	for i := range msgs {
		ids[i] = msgs[i].ID
	}
	all, err := x.a.opts.Archive.Reactions(x.r.Context(), ids)
	if err != nil {
		return err
	}
	for i := range msgs {
		if sum := all[msgs[i].ID]; len(sum) > 0 {
			if msgs[i].Reactions, err = x.reactionList(sum); err != nil {
				return err
			}
		}
	}
	return nil
}
