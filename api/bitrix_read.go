package api

import (
	"errors"
	"net/http"

	"vestnik/xmppcore"
	"vestnik/xmppcore/mam"
)

// The facade's im.dialog.read: the core's read operation
// (xmppcore/read.go), as for every door.

// dialogRead: im.dialog.read (DIALOG_ID, MESSAGE_ID; without MESSAGE_ID
// everything up to the newest message the user may read). The answer is
// Bitrix24's: dialogId, chatId, lastId (the read mark now) and counter
// (the unread messages left).
func (c *bxCall) dialogRead() (any, error) {
	rm, ok := c.a.msgr.(ReadMarks)
	if !ok {
		return nil, &bxError{http.StatusServiceUnavailable, "SERVICE_UNAVAILABLE", "read marks are not available on this server"}
	}
	archive, err := c.archive()
	if err != nil {
		return nil, err
	}
	dialogID, _ := c.p.str("DIALOG_ID")
	d, err := c.dialogForRead("DIALOG_ID")
	if err != nil {
		return nil, err
	}
	id, err := c.p.id("MESSAGE_ID")
	if err != nil {
		return nil, err
	}
	rr := xmppcore.ReadRequest{User: c.user.ID, Chat: d.chatID, UpTo: id}
	if d.peer != nil {
		rr.With = d.peer.ID
	}
	if d.chatID != 0 {
		if _, err := c.a.chats.Get(c.ctx, c.user.ID, d.chatID); err != nil {
			return nil, err
		}
	}
	if id == 0 {
		page, err := archive.Query(c.ctx, mam.Query{Viewer: c.user.ID, With: rr.With, ChatID: rr.Chat, Limit: 1, Reverse: true})
		if err != nil {
			return nil, err
		}
		if len(page.Messages) == 0 {
			return false, nil // nothing to read: Bitrix24 answers false
		}
		rr.UpTo = page.Messages[len(page.Messages)-1].ID
	}
	mark, _, err := rm.MarkRead(c.ctx, rr)
	if errors.Is(err, mam.ErrNotFound) {
		return nil, &bxError{http.StatusBadRequest, "MESSAGE_ID_ERROR", "MESSAGE_ID: no such message in this dialog, or the user may not read it"}
	}
	if err != nil {
		return nil, err
	}
	counter, err := unreadIn(c.ctx, archive, c.user.ID, rr.With, rr.Chat)
	if err != nil {
		return nil, err
	}
	return map[string]any{"dialogId": dialogID, "chatId": d.chatID, "lastId": mark.UpTo, "counter": counter}, nil
}
