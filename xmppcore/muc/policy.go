package muc

import (
	"crypto/subtle"
	"fmt"
)

// The rules of who may do what with a chat live here and nowhere else; the
// REST API, the bridge and the MUC service all ask these functions.
//
// actor 0 is the integration itself (a REST call without from_user_id): it
// may do everything an owner may.

// canEdit: rename, recolor, describe, change the avatar or the type.
func canEdit(c *Chat, actor int64) error {
	if actor == 0 || actor == c.OwnerID {
		return nil
	}
	return fmt.Errorf("%w: only the owner may change the chat", ErrForbidden)
}

// canAdd: an open chat may be joined by anyone (adding only themselves) and
// members may add others; a closed chat takes new members only from a
// member's invitation.
//
// password is what a user joining by themselves gave: a password-protected
// chat (Chat.Password) is joined only with it; members add others without.
func canAdd(c *Chat, actor int64, users []int64, password string) error {
	if actor == 0 || c.IsMember(actor) {
		return nil
	}
	if c.Type == TypeOpen && len(users) == 1 && users[0] == actor {
		return checkPassword(c, password)
	}
	if c.Type == TypeOpen {
		return fmt.Errorf("%w: join the chat before adding others", ErrForbidden)
	}
	return fmt.Errorf("%w: only a member may invite to a closed chat", ErrForbidden)
}

// canRemove: the owner removes anyone, everyone may leave.
func canRemove(c *Chat, actor, user int64) error {
	if actor == 0 || actor == user || actor == c.OwnerID {
		return nil
	}
	return fmt.Errorf("%w: only the owner may remove members", ErrForbidden)
}

// canEnter: reading is not joining. Members enter the chat's room; in an
// open chat anyone else may enter too, as a reader (XEP-0045 affiliation
// none: live messages, no membership), with the chat's password when it
// has one; a closed chat refuses non-members (ErrMembersOnly). Bans are
// checked by the caller (they need the store).
func canEnter(c *Chat, user int64, password string) error {
	if c.IsMember(user) {
		return nil
	}
	if c.Type != TypeOpen {
		return ErrMembersOnly
	}
	return checkPassword(c, password)
}

// canPost: members post; in an open chat a non-member's first message
// makes them a member (join reports whether that is needed). password is
// what the author gave to enter the room ("" from doors without one).
func canPost(c *Chat, author int64, password string) (join bool, err error) {
	if c.IsMember(author) {
		return false, nil
	}
	if c.Type == TypeOpen {
		return true, checkPassword(c, password)
	}
	return false, fmt.Errorf("%w: only members may post to a closed chat", ErrForbidden)
}

// checkPassword: a chat without a password, or the right one (compared
// in constant time); else ErrPasswordRequired.
func checkPassword(c *Chat, given string) error {
	if c.Password == "" || subtle.ConstantTimeCompare([]byte(given), []byte(c.Password)) == 1 {
		return nil
	}
	return ErrPasswordRequired
}

// canSee: open chats are visible to everyone, closed ones to members.
func canSee(c *Chat, viewer int64) bool {
	return viewer == 0 || c.Type == TypeOpen || c.IsMember(viewer)
}
