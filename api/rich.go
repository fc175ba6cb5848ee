package api

import (
	"context"
	"errors"
	"net/http"

	"vestnik/xmppcore"
)

// KeyboardPresser presses a keyboard button of a message on behalf of a
// user (xmppcore.Server implements it): the core's keyboard-pressed event.
type KeyboardPresser interface {
	PressButton(ctx context.Context, user, id int64, button int) (*xmppcore.KeyboardPress, error)
}

type pressReq struct {
	FromUserID userID `json:"from_user_id"`
	Button     *int   `json:"button"`
}

// postPress is POST /messages/{id}/keyboard: from_user_id presses button
// (its index in the message's keyboard), as the browser's button does.
func (a *API) postPress(w http.ResponseWriter, r *http.Request) {
	kp, ok := a.msgr.(KeyboardPresser)
	if !ok {
		writeError(w, http.StatusServiceUnavailable, "unavailable", "keyboards are not available on this server")
		return
	}
	id, ok := pathMessage(w, r)
	if !ok {
		return
	}
	var req pressReq
	if !decode(w, r, &req) {
		return
	}
	if req.Button == nil {
		writeFieldError(w, "button", "missing_button", "the index of the button in the message's keyboard")
		return
	}
	from, err := a.resolve(r, "from_user_id", req.FromUserID)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	p, err := kp.PressButton(r.Context(), from.ID, id, *req.Button)
	if errors.Is(err, xmppcore.ErrNoButton) || errors.Is(err, xmppcore.ErrDisabled) {
		writeFieldError(w, "button", "no_button", "the message has no command button with this index")
		return
	}
	if err != nil {
		a.changeFailed(w, r, err, "button")
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"message_id": p.MessageID, "button": p.Button, "command": p.Command, "command_params": p.Params})
}
