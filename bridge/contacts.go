package bridge

import (
	"context"

	"vestnik/xmppcore/muc"
)

func toChatJSON(ch muc.Chat, member bool) chatJSON {
	return chatJSON{ID: ch.ID, Title: ch.Title, Description: ch.Description, Color: ch.Color, Type: ch.Type, Members: len(ch.Members), Member: member}
}

type departmentJSON struct {
	ID       int64  `json:"id"`
	Name     string `json:"name"`
	ParentID int64  `json:"parent_id,omitempty"`
	HeadID   int64  `json:"head_id,omitempty"`
}

// contacts is the whole company: departments, active employees, the
// user's chats and everyone's presence (visible company-wide, SPEC §4).
func (c *conn) contacts(ctx context.Context) (any, error) {
	b := c.b
	users, err := b.users.Users(ctx)
	if err != nil {
		return nil, err
	}
	depts, err := b.users.Departments(ctx)
	if err != nil {
		return nil, err
	}
	chats, err := b.chats.ChatsOf(ctx, c.user.ID)
	if err != nil {
		return nil, err
	}
	var photos map[int64]string
	if b.opts.Photos != nil {
		if photos, err = b.opts.Photos.Versions(ctx, users); err != nil {
			return nil, err
		}
	}
	uj := make([]userJSON, len(users))
	for i := range users {
		uj[i] = toUserJSON(&users[i])
		uj[i].Photo = photoURL(users[i].ID, photos[users[i].ID])
	}
	dj := make([]departmentJSON, len(depts))
	for i, d := range depts {
		dj[i] = departmentJSON{ID: d.ID, Name: d.Name, ParentID: d.ParentID, HeadID: d.HeadID}
	}
	cj := make([]chatJSON, len(chats))
	for i, ch := range chats {
		cj[i] = toChatJSON(ch, true)
	}
	var pres []Presence
	if c.link != nil {
		if pres, err = c.link.Presences(ctx); err != nil {
			return nil, err
		}
	}
	return map[string]any{"users": uj, "departments": dj, "chats": cj, "presence": nonNil(pres)}, nil
}
