package api

import (
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"time"

	"vestnik/roster"
	"vestnik/xmppcore/muc"
	"vestnik/xmppcore/rich"
)

var typeOfString = reflect.TypeOf("")

// chatJSON is a chat in answers. User ids are portal ids.
type chatJSON struct {
	ID          int64        `json:"id"`
	JID         string       `json:"jid"`
	Title       string       `json:"title"`
	Description string       `json:"description"`
	Color       string       `json:"color"`
	Type        string       `json:"type"`
	OwnerID     string       `json:"owner_id"`
	Avatar      *string      `json:"avatar"`
	CreatedAt   time.Time    `json:"created_at"`
	Members     []memberJSON `json:"members"`
}

type memberJSON struct {
	UserID   string    `json:"user_id"`
	Login    string    `json:"login"`
	Name     string    `json:"name"`
	Role     string    `json:"role"`
	JoinedAt time.Time `json:"joined_at"`
}

// userCache maps internal ids to users within one request.
type userCache map[int64]*roster.User

func (a *API) user(r *http.Request, cache userCache, id int64) *roster.User {
	if u, ok := cache[id]; ok {
		return u
	}
	u, err := a.users.UserByID(r.Context(), id)
	if err != nil {
		u = &roster.User{ID: id, ExtID: "", Login: "", Name: ""}
	}
	cache[id] = u
	return u
}

func (a *API) chatJSON(r *http.Request, cache userCache, c *muc.Chat) chatJSON {
	out := chatJSON{ID: c.ID, JID: a.chats.RoomJID(c), Title: c.Title, Description: c.Description, Color: c.Color,
		Type: c.Type, OwnerID: a.user(r, cache, c.OwnerID).ExtID, CreatedAt: c.CreatedAt, Members: []memberJSON{}}
	if c.AvatarType != "" {
		u := fmt.Sprintf("/avatars/chat/%d?v=%d", c.ID, c.UpdatedAt.UnixMicro())
		out.Avatar = &u
	}
	for _, m := range c.Members {
		u := a.user(r, cache, m.UserID)
		out.Members = append(out.Members, memberJSON{UserID: u.ExtID, Login: u.Login, Name: u.Name, Role: m.Role, JoinedAt: m.JoinedAt})
	}
	return out
}

// pathID parses the {name} path value as a chat id; a malformed one is
// answered 404 (no such chat).
func pathID(w http.ResponseWriter, r *http.Request, name string) (int64, bool) {
	id, err := strconv.ParseInt(r.PathValue(name), 10, 64)
	if err != nil || id <= 0 {
		writeError(w, http.StatusNotFound, "not_found", "no such chat: "+r.PathValue(name))
		return 0, false
	}
	return id, true
}

// actor resolves an optional from_user_id: "" is the integration (0).
func (a *API) actor(r *http.Request, id userID) (int64, error) {
	if id == "" || id == "0" {
		if tok := requestToken(r); tok != nil && tok.AsUser != 0 {
			return tok.AsUser, nil // a user's token acts as that user
		}
		return 0, nil
	}
	u, err := a.resolve(r, "from_user_id", id)
	if err != nil {
		return 0, err
	}
	return u.ID, nil
}

// resolveAll maps portal ids to internal ids.
func (a *API) resolveAll(r *http.Request, field string, ids []userID) ([]int64, error) {
	if len(ids) > muc.MaxMembers {
		return nil, badField(field, "too_many_users", "at most %d users at once", muc.MaxMembers)
	}
	out := make([]int64, 0, len(ids))
	for _, id := range ids {
		u, err := a.resolve(r, field, id)
		if err != nil {
			return nil, err
		}
		out = append(out, u.ID)
	}
	return out, nil
}

func (a *API) getColors(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string][]string{"colors": muc.Colors})
}

type postChatReq struct {
	Title       *string  `json:"title"`
	Description string   `json:"description"`
	Color       string   `json:"color"`
	Type        string   `json:"type"`
	OwnerID     userID   `json:"owner_id"`
	Avatar      string   `json:"avatar"`
	Users       []userID `json:"users"`
}

func (a *API) postChat(w http.ResponseWriter, r *http.Request) {
	var req postChatReq
	if !decode(w, r, &req) {
		return
	}
	if req.Title == nil {
		writeFieldError(w, "title", "empty_title", "title is required")
		return
	}
	owner, err := a.resolve(r, "owner_id", req.OwnerID)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	members, err := a.resolveAll(r, "users", req.Users)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	c, err := a.chats.Create(r.Context(), 0, muc.NewChat{Title: *req.Title, Description: req.Description, Color: req.Color,
		Type: req.Type, OwnerID: owner.ID, Avatar: req.Avatar, Members: members})
	if err != nil {
		a.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, a.chatJSON(r, userCache{}, c))
}

func (a *API) findChats(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query().Get("title")
	if len(q) > 4*muc.MaxTitle {
		writeFieldError(w, "title", "title_too_long", "the search text is too long")
		return
	}
	limit := muc.MaxFound
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			writeFieldError(w, "limit", "invalid_limit", "limit must be a positive number")
			return
		}
		limit = n
	}
	chats, err := a.chats.Store().FindByTitle(r.Context(), q, 0, limit)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	cache := userCache{}
	out := make([]chatJSON, 0, len(chats))
	for i := range chats {
		out = append(out, a.chatJSON(r, cache, &chats[i]))
	}
	writeJSON(w, http.StatusOK, map[string]any{"chats": out})
}

func (a *API) getChat(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r, "id")
	if !ok {
		return
	}
	c, err := a.chats.Get(r.Context(), 0, id)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, a.chatJSON(r, userCache{}, c))
}

type patchChatReq struct {
	FromUserID  userID  `json:"from_user_id"`
	Title       *string `json:"title"`
	Description *string `json:"description"`
	Color       *string `json:"color"`
	Type        *string `json:"type"`
	Avatar      *string `json:"avatar"`
	OwnerID     userID  `json:"owner_id"` // hands the chat to this member
}

// patchChat edits a chat. With from_user_id the rule of who may edit
// applies (the owner); without it the integration acts.
func (a *API) patchChat(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r, "id")
	if !ok {
		return
	}
	var req patchChatReq
	if !decode(w, r, &req) {
		return
	}
	actor, err := a.actor(r, req.FromUserID)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	up := muc.Update{Title: req.Title, Description: req.Description, Color: req.Color, Type: req.Type, Avatar: req.Avatar}
	if req.OwnerID != "" {
		owner, err := a.resolve(r, "owner_id", req.OwnerID)
		if err != nil {
			a.fail(w, r, err)
			return
		}
		up.OwnerID = &owner.ID
	}
	c, err := a.chats.Update(r.Context(), actor, id, up)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, a.chatJSON(r, userCache{}, c))
}

func (a *API) getAvatar(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r, "id")
	if !ok {
		return
	}
	img, typ, err := a.chats.Store().Avatar(r.Context(), id)
	if errors.Is(err, muc.ErrNotFound) {
		writeError(w, http.StatusNotFound, "not_found", "this chat has no avatar")
		return
	}
	if err != nil {
		a.internal(w, r, err)
		return
	}
	w.Header().Set("Content-Type", typ)
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Content-Security-Policy", "default-src 'none'")
	w.Header().Set("Cache-Control", "public, max-age=300")
	w.Header().Set("Content-Length", strconv.Itoa(len(img)))
	w.Write(img)
}

type postUsersReq struct {
	FromUserID  userID   `json:"from_user_id"`
	Users       []userID `json:"users"`
	HideHistory *bool    `json:"hide_history"`
	SkipMessage bool     `json:"skip_message"`
}

func (a *API) postChatUsers(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r, "id")
	if !ok {
		return
	}
	var req postUsersReq
	if !decode(w, r, &req) {
		return
	}
	if len(req.Users) == 0 {
		writeFieldError(w, "users", "missing_users", "give at least one user id")
		return
	}
	actor, err := a.actor(r, req.FromUserID)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	users, err := a.resolveAll(r, "users", req.Users)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	added, err := a.chats.AddMembers(r.Context(), actor, id, users, req.HideHistory, req.SkipMessage)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	c, err := a.chats.Get(r.Context(), 0, id)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	cache := userCache{}
	ext := make([]string, 0, len(added))
	for _, u := range added {
		ext = append(ext, a.user(r, cache, u).ExtID)
	}
	writeJSON(w, http.StatusOK, map[string]any{"added": ext, "chat": a.chatJSON(r, cache, c)})
}

func (a *API) deleteChatUser(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r, "id")
	if !ok {
		return
	}
	u, err := a.resolve(r, "user_id", userID(r.PathValue("user_id")))
	if err != nil {
		writeError(w, http.StatusNotFound, "not_found", "no such user: "+r.PathValue("user_id"))
		return
	}
	actor, err := a.actor(r, userID(r.URL.Query().Get("from_user_id")))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	if err := a.chats.RemoveMember(r.Context(), actor, id, u.ID); err != nil {
		a.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

type postChatMessageReq struct {
	FromUserID userID  `json:"from_user_id"`
	Message    *string `json:"message"`
	System     bool    `json:"system"`
	Files      []int64 `json:"files"`
	// ReplyTo is the id of the chat message this one answers (XEP-0461).
	ReplyTo int64 `json:"reply_to"`
	// Attach and Keyboard make a rich message (package rich).
	Attach   *rich.Attach  `json:"attach"`
	Keyboard []rich.Button `json:"keyboard"`
}

func (a *API) postChatMessage(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r, "id")
	if !ok {
		return
	}
	var req postChatMessageReq
	if !decode(w, r, &req) {
		return
	}
	if len(req.Files) == 0 && !isRich(req.Attach, req.Keyboard) {
		if err := checkText("message", req.Message); err != nil {
			a.fail(w, r, err)
			return
		}
	}
	var from int64
	if !req.System || (req.FromUserID != "" && req.FromUserID != "0") {
		u, err := a.resolve(r, "from_user_id", req.FromUserID)
		if err != nil {
			a.fail(w, r, err)
			return
		}
		from = u.ID
	} else if tok := requestToken(r); tok != nil && tok.AsUser != 0 {
		from = tok.AsUser // a user's token posts system messages as that user, where it is a member
	}
	body, err := a.withFiles(r, from, req.Message, req.Files, isRich(req.Attach, req.Keyboard))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	replyTo := req.ReplyTo
	if req.System {
		replyTo = 0
	}
	msgID, err := a.chats.PostRich(r.Context(), id, from, &rich.Content{Text: body, Attach: req.Attach, Keyboard: req.Keyboard}, req.System, replyTo)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	if msgID == 0 {
		// A command (/getChatId) answered to the sender; nothing stored.
		writeJSON(w, http.StatusOK, map[string]any{"chat_id": id})
		return
	}
	writeJSON(w, http.StatusCreated, map[string]int64{"id": msgID})
}

// checkText validates a required message text.
func checkText(field string, s *string) error {
	if s == nil || strings.TrimSpace(*s) == "" {
		return badField(field, "empty_"+field, "must not be empty")
	}
	if len(*s) > MaxMessage {
		return badField(field, field+"_too_long", "must be at most %d bytes", MaxMessage)
	}
	return nil
}
