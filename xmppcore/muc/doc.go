// Package muc owns group chats: the chat model and its store (members,
// membership windows for history, avatars), the rules of who may do what
// (open and closed chats, owners), posting to a chat, and the chats as
// XEP-0045 rooms at conference.<domain> (with moderation: kick, voice,
// ban) and XEP-0402 and XEP-0048 bookmarks.
//
// Destroying a room (XEP-0045 §10.9, by its owner or a server admin)
// closes the chat: every occupant leaves with a <destroy/> notice, every
// member is removed (their bookmarks are retracted), and the chat turns
// closed, so nobody can join it again by name. Its history stays in the
// archive: former members still read what was said during their
// membership, through MAM and the REST API. The room name stays taken.
package muc
