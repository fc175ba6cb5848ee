package api

import (
	"context"
	"errors"
	"net/http"
	"strconv"

	"vestnik/roster"
	"vestnik/xmppcore"
	"vestnik/xmppcore/mam"
)

// Read state on behalf of a user: the core's operation
// (xmppcore/read.go) with the rule every door has (a message the user may
// read in that conversation; a mark never moves backwards); the
// colleague or the chat and the user's own devices are told live.

// ReadMarks is what the API needs from the core to mark conversations
// read (xmppcore.Server implements it, beside Messenger).
type ReadMarks interface {
	MarkRead(ctx context.Context, r xmppcore.ReadRequest) (mam.ReadMark, bool, error)
}

type readReq struct {
	ChatID *int64 `json:"chat_id"`
	With   userID `json:"with"`
	UpTo   int64  `json:"up_to"`
}

// postRead answers POST /users/{id}/read: the user has read the
// conversation with a colleague (with) or a chat (chat_id) up to message
// up_to. 200 {"up_to": the stored mark, "moved": …, "unread": …}.
func (a *API) postRead(w http.ResponseWriter, r *http.Request) {
	rm, ok := a.msgr.(ReadMarks)
	if !ok || a.opts.Archive == nil {
		writeError(w, http.StatusServiceUnavailable, "unavailable", "read marks are not available on this server")
		return
	}
	u, ok := a.pathUser(w, r)
	if !ok {
		return
	}
	var req readReq
	if !decode(w, r, &req) {
		return
	}
	if (req.ChatID == nil) == (req.With == "") {
		writeError(w, http.StatusBadRequest, "bad_target", "give either chat_id or with (a colleague's id), not both")
		return
	}
	if req.UpTo <= 0 {
		writeError(w, http.StatusBadRequest, "bad_up_to", "up_to must be the id of the last message read")
		return
	}
	rr := xmppcore.ReadRequest{User: u.ID, UpTo: req.UpTo}
	if req.ChatID != nil {
		if *req.ChatID <= 0 {
			writeError(w, http.StatusNotFound, "not_found", "no such chat")
			return
		}
		if _, err := a.chats.Get(r.Context(), u.ID, *req.ChatID); err != nil {
			a.fail(w, r, err)
			return
		}
		rr.Chat = *req.ChatID
	} else {
		peer, err := a.users.UserByExtID(r.Context(), string(req.With))
		if errors.Is(err, roster.ErrNotFound) {
			writeError(w, http.StatusNotFound, "not_found", "no such user: "+strconv.Quote(string(req.With)))
			return
		}
		if err != nil {
			a.internal(w, r, err)
			return
		}
		rr.With = peer.ID
	}
	mark, moved, err := rm.MarkRead(r.Context(), rr)
	switch {
	case errors.Is(err, mam.ErrNotFound):
		writeError(w, http.StatusNotFound, "message_not_found", "no such message in this conversation, or the user may not read it")
		return
	case errors.Is(err, mam.ErrInvalid):
		writeError(w, http.StatusBadRequest, "bad_target", err.Error())
		return
	case err != nil:
		a.internal(w, r, err)
		return
	}
	unread, err := unreadIn(r.Context(), a.opts.Archive, u.ID, rr.With, rr.Chat)
	if err != nil {
		a.internal(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"up_to": mark.UpTo, "moved": moved, "unread": unread})
}

// unreadIn is the user's unread count in one conversation, as the
// archive counts it for the conversation list.
func unreadIn(ctx context.Context, arch *mam.Store, user, with, chatID int64) (int, error) {
	cs, err := arch.Conversations(ctx, user, 0)
	if err != nil {
		return 0, err
	}
	for _, c := range cs {
		if c.With == with && c.ChatID == chatID {
			return c.Unread, nil
		}
	}
	return 0, nil
}
