// Package muc owns group chats: the chat model and its store (members,
// membership windows for history, avatars), the rules of who may do what
// (open and closed chats, owners), posting to a chat, and the chats as
// XEP-0045 rooms at conference.<domain> with XEP-0402 and XEP-0048
// bookmarks.
package muc
