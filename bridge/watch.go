package bridge

import "vestnik/xmppcore"

// Watch has the core report presence changes and chat typing from every
// door and node (xmppcore.Server.OnPresence, OnChatTyping).
func (x *xmppCore) Watch(presence func(Presence), typing func(chatID, userID int64, state string, members []int64)) {
	x.srv.OnPresence(func(ev xmppcore.PresenceEvent) {
		presence(Presence{User: ev.UserID, Show: ev.Show, Status: ev.Status})
	})
	x.srv.OnChatTyping(func(ev xmppcore.ChatTypingEvent) {
		typing(ev.ChatID, ev.UserID, ev.State, ev.Members)
	})
}

// ChatTyping goes through the core, which tells the other nodes.
func (x *xmppCore) ChatTyping(chatID, userID int64, state string, members []int64) {
	x.srv.ChatTyping(xmppcore.ChatTypingEvent{ChatID: chatID, UserID: userID, State: state, Members: members})
}
