package api

import (
	"errors"
	"net/http"
	"slices"
	"strings"

	"vestnik/xmppcore"
	"vestnik/xmppcore/mam"
	"vestnik/xmppcore/rich"
)

// isN reports a parameter given as "N" (Bitrix24's "remove it").
func isN(v any) bool {
	s, ok := v.(string)
	return ok && strings.EqualFold(strings.TrimSpace(s), "N")
}

// The facade's im.message.update, im.message.delete and im.message.like:
// the core's edit, retraction and reaction operations (xmppcore/edits.go),
// with the rule every door has (the author only, within --edit-window; a
// reaction only by someone who may read the message).

// LikeReaction is the reaction Bitrix24's "like" stands for.
const LikeReaction = "👍"

// messageRef reads MESSAGE_ID.
func (c *bxCall) messageRef() (xmppcore.ChangeRequest, MessageChanges, error) {
	mc, ok := c.a.msgr.(MessageChanges)
	if !ok {
		return xmppcore.ChangeRequest{}, nil, &bxError{http.StatusServiceUnavailable, "SERVICE_UNAVAILABLE", "message changes are not available on this server"}
	}
	id, err := c.p.id("MESSAGE_ID")
	if err != nil {
		return xmppcore.ChangeRequest{}, nil, err
	}
	if id == 0 {
		return xmppcore.ChangeRequest{}, nil, bxEmpty("MESSAGE_ID")
	}
	return xmppcore.ChangeRequest{User: c.user.ID, Ref: mam.Ref{ID: id}}, mc, nil
}

// changeError maps a refused change to Bitrix24's codes.
func changeError(err error) error {
	switch {
	case errors.Is(err, mam.ErrNotFound):
		return &bxError{http.StatusBadRequest, "MESSAGE_ID_ERROR", "MESSAGE_ID: no such message, or the user may not read it"}
	case errors.Is(err, mam.ErrTooLate):
		return &bxError{http.StatusForbidden, "CANT_EDIT_MESSAGE", "the time to change this message is over"}
	case errors.Is(err, mam.ErrRetracted):
		return &bxError{http.StatusBadRequest, "MESSAGE_ID_ERROR", "MESSAGE_ID: the message was deleted"}
	case errors.Is(err, mam.ErrForbidden), errors.Is(err, xmppcore.ErrBlocked):
		return &bxError{http.StatusForbidden, "ACCESS_DENIED", "only its author may change a message"}
	case errors.Is(err, mam.ErrInvalid):
		return &bxError{http.StatusBadRequest, "INVALID_MESSAGE", strings.TrimPrefix(err.Error(), mam.ErrInvalid.Error()+": ")}
	}
	return err
}

// messageUpdate: im.message.update. An empty MESSAGE deletes the message,
// as in Bitrix24.
func (c *bxCall) messageUpdate() (any, error) {
	if err := c.refuse("chat context menus are not supported by Vestnik", "MENU"); err != nil {
		return nil, err
	}
	cr, mc, err := c.messageRef()
	if err != nil {
		return nil, err
	}
	// ATTACH or KEYBOARD "N" (or empty) removes them; absent keeps them.
	dropAttach, dropKeyboard := c.p.has("ATTACH") && !c.given("ATTACH") || isN(c.p["ATTACH"]), c.p.has("KEYBOARD") && !c.given("KEYBOARD") || isN(c.p["KEYBOARD"])
	if isN(c.p["ATTACH"]) {
		delete(c.p, "ATTACH")
	}
	if isN(c.p["KEYBOARD"]) {
		delete(c.p, "KEYBOARD")
	}
	if !c.p.has("MESSAGE") && !c.given("ATTACH") && !c.given("KEYBOARD") && !dropAttach && !dropKeyboard {
		return nil, bxEmpty("MESSAGE")
	}
	text, err := c.p.str("MESSAGE")
	if err != nil {
		return nil, err
	}
	if len(text) > MaxMessage {
		return nil, bxInvalid("MESSAGE", "too long")
	}
	if c.p.has("MESSAGE") && strings.TrimSpace(text) == "" && !c.given("ATTACH") && !c.given("KEYBOARD") {
		_, err = mc.RetractMessage(c.ctx, cr)
		if err != nil {
			return nil, changeError(err)
		}
		return true, nil
	}
	content, _, err := c.bxRich(false)
	if err != nil {
		return nil, err
	}
	hasText := c.p.has("MESSAGE")
	_, err = mc.EditRichMessage(c.ctx, cr, func(old *rich.Content) *rich.Content {
		if hasText {
			old.Text = content.Text
		}
		if content.Attach != nil || dropAttach {
			old.Attach = content.Attach
		}
		if content.Keyboard != nil || dropKeyboard {
			old.Keyboard = content.Keyboard
		}
		return old
	})
	if rerr := bxRichError(err); rerr != err {
		return nil, rerr
	}
	if err != nil {
		return nil, changeError(err)
	}
	return true, nil
}

// messageDelete: im.message.delete.
func (c *bxCall) messageDelete() (any, error) {
	cr, mc, err := c.messageRef()
	if err != nil {
		return nil, err
	}
	if _, err := mc.RetractMessage(c.ctx, cr); err != nil {
		return nil, changeError(err)
	}
	return true, nil
}

// messageLike: im.message.like, ACTION plus, minus or auto (the default:
// a like if the user has none on the message, else taking it back).
func (c *bxCall) messageLike() (any, error) {
	cr, mc, err := c.messageRef()
	if err != nil {
		return nil, err
	}
	action, err := c.p.str("ACTION")
	if err != nil {
		return nil, err
	}
	add := true
	switch strings.ToLower(strings.TrimSpace(action)) {
	case "plus":
	case "minus":
		add = false
	case "", "auto":
		arch, err := c.archive()
		if err != nil {
			return nil, err
		}
		have, err := arch.Reactions(c.ctx, []int64{cr.Ref.ID})
		if err != nil {
			return nil, err
		}
		for _, r := range have[cr.Ref.ID] {
			if r.Emoji == LikeReaction && slices.Contains(r.Users, c.user.ID) {
				add = false
			}
		}
	default:
		return nil, bxInvalid("ACTION", "must be plus, minus or auto")
	}
	if add {
		_, _, err = mc.AddReaction(c.ctx, cr, LikeReaction)
	} else {
		_, _, err = mc.RemoveReaction(c.ctx, cr, LikeReaction)
	}
	if err != nil {
		return nil, changeError(err)
	}
	return true, nil
}
