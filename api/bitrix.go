package api

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"vestnik/roster"
	"vestnik/xmppcore/mam"
	"vestnik/xmppcore/muc"
)

// The Bitrix24-compatible facade: /rest/{user_id}/{token}/{method}[.json]
// takes the im.* calls that portal integrations make (docs/bitrix-compat.md)
// and translates each into the same core operations the native REST API
// uses — muc.Service for chats, the Messenger for personal messages and
// notifications, the archive for history, the roster for users — acting
// as portal user {user_id}. It holds no rule of its own: who may see, post
// to, change or leave a chat is the core's answer, mapped to Bitrix24's
// error codes. Answers are {"result": …, "time": {…}} or
// {"error": "CODE", "error_description": "…"}.

// BitrixPrefix is where the facade is mounted.
const BitrixPrefix = "/rest/"

// bxMethod is one facade method: the token scope it needs and its body.
type bxMethod struct {
	scope string
	fn    func(c *bxCall) (any, error)
}

// bxMethods is the method table (names in lower case: Bitrix24 matches
// them without regard to case).
var bxMethods = map[string]bxMethod{
	"im.message.add":         {roster.ScopePost, (*bxCall).messageAdd},
	"im.message.update":      {roster.ScopePost, (*bxCall).messageUpdate},
	"im.message.delete":      {roster.ScopePost, (*bxCall).messageDelete},
	"im.message.like":        {roster.ScopePost, (*bxCall).messageLike},
	"im.chat.add":            {roster.ScopePost, (*bxCall).chatAdd},
	"im.chat.get":            {roster.ScopeRead, (*bxCall).chatGet},
	"im.dialog.get":          {roster.ScopeRead, (*bxCall).dialogGet},
	"im.chat.user.add":       {roster.ScopePost, (*bxCall).chatUserAdd},
	"im.chat.user.delete":    {roster.ScopePost, (*bxCall).chatUserDelete},
	"im.chat.user.list":      {roster.ScopeRead, (*bxCall).chatUserList},
	"im.chat.updatetitle":    {roster.ScopePost, (*bxCall).chatUpdateTitle},
	"im.chat.updatecolor":    {roster.ScopePost, (*bxCall).chatUpdateColor},
	"im.chat.updateavatar":   {roster.ScopePost, (*bxCall).chatUpdateAvatar},
	"im.chat.leave":          {roster.ScopePost, (*bxCall).chatLeave},
	"im.dialog.messages.get": {roster.ScopeRead, (*bxCall).dialogMessagesGet},
	"im.recent.get":          {roster.ScopeRead, (*bxCall).recentGet},
	"im.dialog.read":         {roster.ScopePost, (*bxCall).dialogRead}, // api/bitrix_read.go
	"im.notify.personal.add": {roster.ScopePost, (*bxCall).notifyAdd},
	"im.notify.system.add":   {roster.ScopePost, (*bxCall).notifyAdd},
	"im.notify.confirm":      {roster.ScopePost, (*bxCall).notifyConfirm}, // api/bitrix_bots.go
	"im.user.get":            {roster.ScopeRead, (*bxCall).userGet},
	"im.search.chat.list":    {roster.ScopeRead, (*bxCall).searchChatList},
	// Chat bots (api/bitrix_bots.go).
	"imbot.register":         {roster.ScopeAdmin, (*bxCall).botRegister},
	"imbot.unregister":       {roster.ScopeAdmin, (*bxCall).botUnregister},
	"imbot.message.add":      {roster.ScopePost, (*bxCall).botMessageAdd},
	"imbot.command.register": {roster.ScopeAdmin, (*bxCall).botCommandRegister},
}

// bxError is an error answer in Bitrix24's form.
type bxError struct {
	status int
	code   string
	desc   string
}

func (e *bxError) Error() string { return "bitrix: " + e.code + ": " + e.desc }

// bxEmpty: a required parameter is missing (CHAT_ID_EMPTY, as Bitrix24).
func bxEmpty(name string) error {
	return &bxError{http.StatusBadRequest, name + "_EMPTY", name + " is required"}
}

// bxInvalid: a parameter has a value the facade cannot take.
func bxInvalid(name, msg string) error {
	return &bxError{http.StatusBadRequest, "INVALID_" + name, name + ": " + msg}
}

// bxUnsupported: a parameter Vestnik has no place for; refused rather
// than dropped.
func bxUnsupported(name, msg string) error {
	return &bxError{http.StatusBadRequest, "UNSUPPORTED_" + name, name + ": " + msg + " (docs/bitrix-compat.md)"}
}

var errAccess = &bxError{http.StatusForbidden, "ACCESS_DENIED", "the chat does not exist or this user may not see it"}

// bxCall is one facade request, acting as user.
type bxCall struct {
	a     *API
	r     *http.Request
	ctx   context.Context
	tok   *roster.Token
	user  *roster.User
	p     bxParams
	users userCache
}

// bitrix serves /rest/{user_id}/{token}/{method}.
func (a *API) bitrix(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	if r.Method != http.MethodGet && r.Method != http.MethodPost {
		w.Header().Set("Allow", "GET, POST")
		writeBitrixError(w, &bxError{http.StatusMethodNotAllowed, "INVALID_REQUEST", "use GET or POST"})
		return
	}
	tok, err := a.verify(r.Context(), r.PathValue("token"))
	if errors.Is(err, roster.ErrNotFound) {
		writeBitrixError(w, &bxError{http.StatusUnauthorized, "INVALID_CREDENTIALS", "invalid request credentials"})
		return
	}
	if err != nil {
		a.bitrixInternal(w, r, err)
		return
	}
	if !a.allow(tok.ID) {
		w.Header().Set("Retry-After", "1")
		writeBitrixError(w, &bxError{http.StatusServiceUnavailable, "QUERY_LIMIT_EXCEEDED", "too many requests for this token; slow down"})
		return
	}
	name := strings.ToLower(strings.TrimSuffix(r.PathValue("method"), ".json"))
	m, ok := bxMethods[name]
	if !ok {
		writeBitrixError(w, &bxError{http.StatusNotFound, "ERROR_METHOD_NOT_FOUND", "method not found: " + r.PathValue("method")})
		return
	}
	if !tok.Allows(m.scope) {
		writeBitrixError(w, &bxError{http.StatusUnauthorized, "insufficient_scope",
			"this token lacks the " + strconv.Quote(m.scope) + " scope (vestnik token create --scope)"})
		return
	}
	a.recordUse(r.Context(), tok.ID)
	ext := r.PathValue("user_id")
	var u *roster.User
	if ext != "" && len(ext) <= 200 {
		u, err = a.userByExtID(r.Context(), ext)
	}
	switch {
	case err != nil && !errors.Is(err, roster.ErrNotFound):
		a.bitrixInternal(w, r, err)
		return
	case u == nil || err != nil || !u.Active:
		writeBitrixError(w, &bxError{http.StatusUnauthorized, "INVALID_CREDENTIALS", "user " + strconv.Quote(ext) + " does not exist or is not active"})
		return
	case tok.AsUser != 0 && tok.AsUser != u.ID:
		writeBitrixError(w, &bxError{http.StatusUnauthorized, "INVALID_CREDENTIALS", "this token may act only as the user it was made for"})
		return
	}
	if r.ContentLength > MaxBody {
		writeBitrixError(w, &bxError{http.StatusRequestEntityTooLarge, "INVALID_REQUEST", "the request body is larger than the limit"})
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, MaxBody)
	p, err := parseBitrixParams(r)
	if err != nil {
		a.bitrixFail(w, r, err)
		return
	}
	c := &bxCall{a: a, r: r, ctx: r.Context(), tok: tok, user: u, p: p, users: userCache{u.ID: u}}
	res, err := m.fn(c)
	if err != nil {
		a.bitrixFail(w, r, err)
		return
	}
	end := time.Now()
	writeJSON(w, http.StatusOK, bxResult{Result: res, Time: bxTime{Start: unixFloat(start), Finish: unixFloat(end),
		Duration: end.Sub(start).Seconds(), Processing: end.Sub(start).Seconds(), DateStart: atom(start), DateFinish: atom(end)}})
}

// bxResult is a successful answer.
type bxResult struct {
	Result any    `json:"result"`
	Time   bxTime `json:"time"`
}

// bxTime is Bitrix24's timing block (seconds; dates in ATOM).
type bxTime struct {
	Start      float64 `json:"start"`
	Finish     float64 `json:"finish"`
	Duration   float64 `json:"duration"`
	Processing float64 `json:"processing"`
	DateStart  string  `json:"date_start"`
	DateFinish string  `json:"date_finish"`
}

// bitrixNoRoute answers paths under /rest/ that name no method.
func (a *API) bitrixNoRoute(w http.ResponseWriter, r *http.Request) {
	writeBitrixError(w, &bxError{http.StatusNotFound, "ERROR_METHOD_NOT_FOUND", "use /rest/{user_id}/{token}/{method}"})
}

func writeBitrixError(w http.ResponseWriter, e *bxError) {
	writeJSON(w, e.status, map[string]string{"error": e.code, "error_description": e.desc})
}

func (a *API) bitrixInternal(w http.ResponseWriter, r *http.Request, err error) {
	a.log.Error("bitrix call failed", "path", bitrixLogPath(r), "err", err)
	writeBitrixError(w, &bxError{http.StatusInternalServerError, "INTERNAL_SERVER_ERROR", "the server failed to handle the request; it is logged"})
}

// bitrixLogPath is the request path without its token.
func bitrixLogPath(r *http.Request) string {
	return BitrixPrefix + r.PathValue("user_id") + "/…/" + r.PathValue("method")
}

// bxFieldNames maps the core's field names to the facade's parameters.
var bxFieldNames = map[string]string{"title": "TITLE", "description": "DESCRIPTION", "color": "COLOR", "type": "TYPE",
	"avatar": "AVATAR", "users": "USERS", "message": "MESSAGE", "owner_id": "OWNER_ID", "from_user_id": "USER_ID", "to_user_id": "DIALOG_ID"}

func bxField(field string) string {
	if n, ok := bxFieldNames[field]; ok {
		return n
	}
	return strings.ToUpper(field)
}

// bitrixFail maps an error of the core to Bitrix24's answer.
func (a *API) bitrixFail(w http.ResponseWriter, r *http.Request, err error) {
	var be *bxError
	var ie *muc.InvalidError
	var ue *muc.UnknownUserError
	var fe *fieldError
	switch {
	case errors.As(err, &be):
		writeBitrixError(w, be)
	case errors.As(err, &ie):
		name := bxField(ie.Field)
		code := strings.ToUpper(ie.Code)
		if strings.HasPrefix(ie.Code, "empty_") {
			code = name + "_EMPTY"
		}
		writeBitrixError(w, &bxError{http.StatusBadRequest, code, name + ": " + ie.Message})
	case errors.As(err, &ue):
		writeBitrixError(w, &bxError{http.StatusBadRequest, "USER_NOT_FOUND",
			fmt.Sprintf("%s: user %s does not exist or is not active", bxField(ue.Field), a.extID(r, ue.UserID))})
	case errors.As(err, &fe):
		writeBitrixError(w, &bxError{http.StatusBadRequest, strings.ToUpper(fe.code), bxField(fe.field) + ": " + fe.msg})
	case errors.Is(err, muc.ErrNotFound):
		writeBitrixError(w, errAccess)
	case errors.Is(err, muc.ErrForbidden):
		writeBitrixError(w, &bxError{http.StatusForbidden, "ACCESS_DENIED", strings.TrimPrefix(err.Error(), muc.ErrForbidden.Error()+": ")})
	case errors.Is(err, muc.ErrConflict):
		writeBitrixError(w, &bxError{http.StatusBadRequest, "CONFLICT", "it exists already"})
	case errors.Is(err, muc.ErrRateLimited):
		// Bitrix24's answer to "too fast", which its clients retry.
		w.Header().Set("Retry-After", "1")
		writeBitrixError(w, &bxError{http.StatusServiceUnavailable, "QUERY_LIMIT_EXCEEDED", strings.TrimPrefix(err.Error(), muc.ErrRateLimited.Error()+": ")})
	default:
		a.bitrixInternal(w, r, err)
	}
}

// Values and shapes.

// atom formats t as PHP's DATE_ATOM (what Bitrix24 answers).
func atom(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05-07:00") }

func unixFloat(t time.Time) float64 { return float64(t.UnixMicro()) / 1e6 }

// bxID shows a portal id as Bitrix24 does: a number when it is one.
func bxID(ext string) any {
	if n, err := strconv.ParseInt(ext, 10, 64); err == nil {
		return n
	}
	return ext
}

// userOf is a user by internal id, cached for the call; a user gone from
// the database is shown with an empty portal id.
func (c *bxCall) userOf(id int64) *roster.User { return c.a.user(c.r, c.users, id) }

// active resolves a portal id to an active user; name is the parameter.
func (c *bxCall) active(name, ext string) (*roster.User, error) {
	if ext == "" || ext == "0" {
		return nil, bxEmpty(name)
	}
	var u *roster.User
	var err error
	if len(ext) <= 200 {
		u, err = c.a.userByExtID(c.ctx, ext)
	}
	if err != nil && !errors.Is(err, roster.ErrNotFound) {
		return nil, err
	}
	if u == nil || err != nil || !u.Active {
		return nil, &bxError{http.StatusBadRequest, "USER_NOT_FOUND", name + ": user " + strconv.Quote(ext) + " does not exist or is not active"}
	}
	c.users[u.ID] = u
	return u, nil
}

// dialog is a DIALOG_ID: "chat<ID>" or a portal user id.
type dialog struct {
	chatID int64
	peer   *roster.User
}

func (c *bxCall) dialog(name string) (dialog, error) {
	s, err := c.p.required(name)
	if err != nil {
		return dialog{}, err
	}
	s = strings.TrimSpace(s)
	if rest, ok := strings.CutPrefix(strings.ToLower(s), "chat"); ok {
		id, err := strconv.ParseInt(rest, 10, 64)
		if err != nil || id <= 0 {
			return dialog{}, bxInvalid(name, "must be chat<ID> or a user id")
		}
		return dialog{chatID: id}, nil
	}
	u, err := c.active(name, s)
	if err != nil {
		return dialog{}, err
	}
	return dialog{peer: u}, nil
}

// chatID is a required chat id parameter (a number, or chat<ID>).
func (c *bxCall) chatID(name string) (int64, error) {
	s, err := c.p.required(name)
	if err != nil {
		return 0, err
	}
	s = strings.TrimPrefix(strings.ToLower(strings.TrimSpace(s)), "chat")
	id, err := strconv.ParseInt(s, 10, 64)
	if err != nil || id <= 0 {
		return 0, bxInvalid(name, "must be a chat id")
	}
	return id, nil
}

// message is a required message text within MaxMessage.
func (c *bxCall) message(name string) (string, error) {
	s, err := c.p.required(name)
	if err != nil {
		return "", err
	}
	if len(s) > MaxMessage {
		return "", bxInvalid(name, fmt.Sprintf("must be at most %d bytes", MaxMessage))
	}
	return s, nil
}

// given reports a parameter present with a non-empty value.
func (c *bxCall) given(name string) bool {
	v, ok := c.p[name]
	if !ok {
		return false
	}
	s, isStr := v.(string)
	return !isStr || strings.TrimSpace(s) != ""
}

// refuse fails on parameters Vestnik has no place for.
func (c *bxCall) refuse(why string, names ...string) error {
	for _, n := range names {
		if c.given(n) {
			return bxUnsupported(n, why)
		}
	}
	return nil
}

// avatar turns AVATAR (base64 of an image, or a data: URL) into the data:
// URL the core takes; the core checks the image.
func avatarURL(s string) (string, error) {
	s = strings.TrimSpace(s)
	if strings.HasPrefix(s, "data:") {
		return s, nil
	}
	raw := strings.TrimRight(s, "=")
	if len(raw) > base64.RawStdEncoding.EncodedLen(muc.MaxAvatar)+4 {
		return "", bxInvalid("AVATAR", fmt.Sprintf("must be at most %d KiB", muc.MaxAvatar>>10))
	}
	img, err := base64.RawStdEncoding.DecodeString(raw)
	if err != nil {
		return "", bxInvalid("AVATAR", "must be a base64 image")
	}
	return "data:" + http.DetectContentType(img) + ";base64," + base64.StdEncoding.EncodeToString(img), nil
}

// userJSON is a user as Bitrix24's im methods show one.
func (c *bxCall) userJSON(u *roster.User) map[string]any {
	first, last, _ := strings.Cut(strings.TrimSpace(u.Name), " ")
	out := map[string]any{"id": bxID(u.ExtID), "name": u.Name, "first_name": first, "last_name": strings.TrimSpace(last),
		"work_position": u.Title, "email": u.Email, "active": u.Active, "avatar": "", "extranet": false, "bot": false}
	if o, ok := c.a.msgr.(interface{ Online(int64) bool }); ok {
		out["status"] = "offline"
		if o.Online(u.ID) {
			out["status"] = "online"
		}
	}
	return out
}

// chatJSON is a chat as Bitrix24's im methods show one.
func (c *bxCall) chatJSON(ch *muc.Chat) map[string]any {
	typ, mt := "chat", "C"
	if ch.Type == muc.TypeOpen {
		typ, mt = "open", "O"
	}
	avatar := ""
	if ch.AvatarType != "" {
		avatar = fmt.Sprintf("/avatars/chat/%d?v=%d", ch.ID, ch.UpdatedAt.UnixMicro())
	}
	return map[string]any{"id": ch.ID, "title": ch.Title, "description": ch.Description, "owner": bxID(c.userOf(ch.OwnerID).ExtID),
		"color": ch.Color, "avatar": avatar, "type": typ, "message_type": mt, "extranet": false, "entity_type": "", "entity_id": "",
		"date_create": atom(ch.CreatedAt), "user_counter": len(ch.Members), "dialog_id": "chat" + strconv.FormatInt(ch.ID, 10),
		"jid": c.a.chats.RoomJID(ch)}
}

// authorID is a message's author as Bitrix24 shows it: 0 for a system
// message.
func (c *bxCall) authorID(m *mam.Message) any {
	if m.Kind == mam.KindSystem || m.FromID == 0 {
		return 0
	}
	return bxID(c.userOf(m.FromID).ExtID)
}

// messageJSON is an archived message as im.dialog.messages.get shows it.
func (c *bxCall) messageJSON(m *mam.Message) map[string]any {
	var params map[string]any
	switch {
	case m.Deleted:
		params = map[string]any{"IS_DELETED": "Y"}
	case m.EditedAt != nil:
		params = map[string]any{"IS_EDITED": "Y"}
	}
	text := m.Body
	if rc := richOfMessage(m.Payload); rc != nil && !m.Deleted {
		text = rc.Text
		if rp := bxParamsOf(rc); rp != nil {
			if params == nil {
				params = map[string]any{}
			}
			for k, v := range rp {
				params[k] = v
			}
		}
	}
	return map[string]any{"id": m.ID, "chat_id": m.ChatID, "author_id": c.authorID(m), "date": atom(m.CreatedAt), "text": text, "params": params}
}

// Methods.

// messageAdd: im.message.add (DIALOG_ID, MESSAGE, SYSTEM).
func (c *bxCall) messageAdd() (any, error) {
	if err := c.refuse("chat context menus are not supported by Vestnik", "MENU"); err != nil {
		return nil, err
	}
	d, err := c.dialog("DIALOG_ID")
	if err != nil {
		return nil, err
	}
	content, _, err := c.bxRich(true)
	if err != nil {
		return nil, err
	}
	system, err := c.p.yn("SYSTEM", false)
	if err != nil {
		return nil, err
	}
	if d.peer != nil {
		if system {
			return nil, bxInvalid("SYSTEM", "system messages go to chats (DIALOG_ID=chat<ID>), not to a person")
		}
		rs, ok := c.a.msgr.(RichSender)
		if !ok {
			return nil, &bxError{http.StatusServiceUnavailable, "SERVICE_UNAVAILABLE", "rich messages are not available on this server"}
		}
		id, err := rs.SendPersonalRich(c.ctx, c.user.ID, d.peer.ID, content, 0)
		if err != nil {
			return nil, bxRichError(err)
		}
		return id, nil
	}
	if system {
		// A system message needs no membership in the core; the facade
		// posts only to chats the user may see.
		if _, err := c.a.chats.Get(c.ctx, c.user.ID, d.chatID); err != nil {
			return nil, err
		}
	}
	id, err := c.a.chats.PostRich(c.ctx, d.chatID, c.user.ID, content, system, 0)
	if err != nil || id == 0 {
		return false, bxRichError(err) // /getChatId was answered to the user alone: nothing stored
	}
	return id, nil
}

// chatAdd: im.chat.add.
func (c *bxCall) chatAdd() (any, error) {
	if err := c.refuse("chats are not bound to portal entities in Vestnik", "ENTITY_TYPE", "ENTITY_ID",
		"ENTITY_DATA_1", "ENTITY_DATA_2", "ENTITY_DATA_3"); err != nil {
		return nil, err
	}
	typ := muc.TypeClosed
	t, err := c.p.str("TYPE")
	if err != nil {
		return nil, err
	}
	switch strings.ToUpper(strings.TrimSpace(t)) {
	case "", "CHAT":
	case "OPEN":
		typ = muc.TypeOpen
	default:
		return nil, bxInvalid("TYPE", "must be OPEN or CHAT")
	}
	title, err := c.p.str("TITLE")
	if err != nil {
		return nil, err
	}
	desc, err := c.p.str("DESCRIPTION")
	if err != nil {
		return nil, err
	}
	color, err := c.p.str("COLOR")
	if err != nil {
		return nil, err
	}
	ids, err := c.p.list("USERS")
	if err != nil {
		return nil, err
	}
	if len(ids) > muc.MaxMembers {
		return nil, bxInvalid("USERS", fmt.Sprintf("at most %d users", muc.MaxMembers))
	}
	actor := c.user
	o, err := c.p.str("OWNER_ID")
	if err != nil {
		return nil, err
	}
	if o = strings.TrimSpace(o); o != "" && o != c.user.ExtID {
		// The core makes the creating user the owner. A token that may
		// act as anyone creates the chat as OWNER_ID instead.
		if c.tok.AsUser != 0 {
			return nil, &bxError{http.StatusForbidden, "ACCESS_DENIED", "OWNER_ID: this token may act only as its own user"}
		}
		if actor, err = c.active("OWNER_ID", o); err != nil {
			return nil, err
		}
	}
	members := []int64{c.user.ID}
	names := []string{}
	for _, ext := range ids {
		u, err := c.active("USERS", ext)
		if err != nil {
			return nil, err
		}
		members = append(members, u.ID)
		if len(names) < 3 && u.ID != actor.ID {
			names = append(names, u.Name)
		}
	}
	if strings.TrimSpace(title) == "" {
		// Bitrix24 names an untitled chat after its members.
		title = "Chat with " + strings.Join(append([]string{actor.Name}, names...), ", ")
	}
	var avatar string
	if c.given("AVATAR") {
		s, err := c.p.str("AVATAR")
		if err != nil {
			return nil, err
		}
		if avatar, err = avatarURL(s); err != nil {
			return nil, err
		}
	}
	var first string
	if c.given("MESSAGE") {
		if first, err = c.message("MESSAGE"); err != nil {
			return nil, err
		}
	}
	ch, err := c.a.chats.Create(c.ctx, actor.ID, muc.NewChat{Title: title, Description: desc, Color: strings.ToUpper(strings.TrimSpace(color)),
		Type: typ, Avatar: avatar, Members: members})
	if err != nil {
		return nil, err
	}
	if first != "" {
		if _, err := c.a.chats.PostMessage(c.ctx, ch.ID, c.user.ID, first, false); err != nil {
			return nil, err
		}
	}
	return ch.ID, nil
}

// chatGet: im.chat.get by CHAT_ID or DIALOG_ID=chat<ID>.
func (c *bxCall) chatGet() (any, error) {
	if err := c.refuse("chats are not bound to portal entities in Vestnik; give CHAT_ID or DIALOG_ID", "ENTITY_TYPE", "ENTITY_ID"); err != nil {
		return nil, err
	}
	var id int64
	var err error
	switch {
	case c.given("CHAT_ID"):
		id, err = c.chatID("CHAT_ID")
	case c.given("DIALOG_ID"):
		var d dialog
		if d, err = c.dialog("DIALOG_ID"); err == nil && d.chatID == 0 {
			err = bxInvalid("DIALOG_ID", "must be chat<ID>")
		}
		id = d.chatID
	default:
		err = bxEmpty("CHAT_ID")
	}
	if err != nil {
		return nil, err
	}
	ch, err := c.a.chats.Get(c.ctx, c.user.ID, id)
	if err != nil {
		return nil, err
	}
	out := c.chatJSON(ch)
	out["ID"] = ch.ID
	return out, nil
}

// dialogGet: im.dialog.get (DIALOG_ID): the chat, or the person of a
// personal dialog.
func (c *bxCall) dialogGet() (any, error) {
	d, err := c.dialogForRead("DIALOG_ID")
	if err != nil {
		return nil, err
	}
	if d.peer != nil {
		out := c.userJSON(d.peer)
		out["dialog_id"] = d.peer.ExtID
		out["type"] = "user"
		return out, nil
	}
	ch, err := c.a.chats.Get(c.ctx, c.user.ID, d.chatID)
	if err != nil {
		return nil, err
	}
	return c.chatJSON(ch), nil
}

// chatUserAdd: im.chat.user.add (CHAT_ID, USERS, HIDE_HISTORY).
func (c *bxCall) chatUserAdd() (any, error) {
	id, err := c.chatID("CHAT_ID")
	if err != nil {
		return nil, err
	}
	ids, err := c.p.list("USERS")
	if err != nil {
		return nil, err
	}
	if len(ids) == 0 {
		return nil, bxEmpty("USERS")
	}
	if len(ids) > muc.MaxMembers {
		return nil, bxInvalid("USERS", fmt.Sprintf("at most %d users", muc.MaxMembers))
	}
	users := make([]int64, 0, len(ids))
	for _, ext := range ids {
		u, err := c.active("USERS", ext)
		if err != nil {
			return nil, err
		}
		users = append(users, u.ID)
	}
	var hide *bool
	if c.given("HIDE_HISTORY") {
		h, err := c.p.yn("HIDE_HISTORY", false)
		if err != nil {
			return nil, err
		}
		hide = &h
	}
	if _, err := c.a.chats.AddMembers(c.ctx, c.user.ID, id, users, hide, false); err != nil {
		return nil, err
	}
	return true, nil
}

// chatUserDelete: im.chat.user.delete (CHAT_ID, USER_ID).
func (c *bxCall) chatUserDelete() (any, error) {
	id, err := c.chatID("CHAT_ID")
	if err != nil {
		return nil, err
	}
	ext, err := c.p.required("USER_ID")
	if err != nil {
		return nil, err
	}
	u, err := c.a.users.UserByExtID(c.ctx, strings.TrimSpace(ext))
	if errors.Is(err, roster.ErrNotFound) {
		return nil, &bxError{http.StatusBadRequest, "USER_NOT_FOUND", "USER_ID: user " + strconv.Quote(ext) + " does not exist"}
	}
	if err != nil {
		return nil, err
	}
	err = c.a.chats.RemoveMember(c.ctx, c.user.ID, id, u.ID)
	if errors.Is(err, muc.ErrNotFound) {
		if _, gerr := c.a.chats.Get(c.ctx, c.user.ID, id); gerr == nil {
			return nil, &bxError{http.StatusBadRequest, "USER_NOT_FOUND", "USER_ID: user " + strconv.Quote(ext) + " is not a member of the chat"}
		}
	}
	if err != nil {
		return nil, err
	}
	return true, nil
}

// chatUserList: im.chat.user.list (CHAT_ID): the members' ids.
func (c *bxCall) chatUserList() (any, error) {
	id, err := c.chatID("CHAT_ID")
	if err != nil {
		return nil, err
	}
	ch, err := c.a.chats.Get(c.ctx, c.user.ID, id)
	if err != nil {
		return nil, err
	}
	out := make([]any, 0, len(ch.Members))
	for _, m := range ch.Members {
		out = append(out, bxID(c.userOf(m.UserID).ExtID))
	}
	return out, nil
}

// chatUpdate applies one change on behalf of the user.
func (c *bxCall) chatUpdate(name string, u func(v string) (muc.Update, error)) (any, error) {
	id, err := c.chatID("CHAT_ID")
	if err != nil {
		return nil, err
	}
	v, err := c.p.required(name)
	if err != nil {
		return nil, err
	}
	upd, err := u(v)
	if err != nil {
		return nil, err
	}
	if _, err := c.a.chats.Update(c.ctx, c.user.ID, id, upd); err != nil {
		return nil, err
	}
	return true, nil
}

func (c *bxCall) chatUpdateTitle() (any, error) {
	return c.chatUpdate("TITLE", func(v string) (muc.Update, error) { return muc.Update{Title: &v}, nil })
}

func (c *bxCall) chatUpdateColor() (any, error) {
	return c.chatUpdate("COLOR", func(v string) (muc.Update, error) {
		v = strings.ToUpper(strings.TrimSpace(v))
		return muc.Update{Color: &v}, nil
	})
}

func (c *bxCall) chatUpdateAvatar() (any, error) {
	return c.chatUpdate("AVATAR", func(v string) (muc.Update, error) {
		s, err := avatarURL(v)
		return muc.Update{Avatar: &s}, err
	})
}

// chatLeave: im.chat.leave (CHAT_ID).
func (c *bxCall) chatLeave() (any, error) {
	id, err := c.chatID("CHAT_ID")
	if err != nil {
		return nil, err
	}
	if err := c.a.chats.RemoveMember(c.ctx, c.user.ID, id, c.user.ID); err != nil {
		return nil, err
	}
	return true, nil
}

// bxDefaultLimit and bxMaxLimit bound im.dialog.messages.get.
const (
	bxDefaultLimit = 20
	bxMaxLimit     = 50
)

func (c *bxCall) archive() (*mam.Store, error) {
	if c.a.opts.Archive == nil {
		return nil, &bxError{http.StatusServiceUnavailable, "ARCHIVE_UNAVAILABLE", "the message archive is not configured"}
	}
	return c.a.opts.Archive, nil
}

// dialogMessagesGet: im.dialog.messages.get (DIALOG_ID, LAST_ID, FIRST_ID,
// LIMIT): a page of history, newest first, read through the archive's
// access rule.
func (c *bxCall) dialogMessagesGet() (any, error) {
	archive, err := c.archive()
	if err != nil {
		return nil, err
	}
	d, err := c.dialogForRead("DIALOG_ID")
	if err != nil {
		return nil, err
	}
	lastID, err := c.p.id("LAST_ID")
	if err != nil {
		return nil, err
	}
	firstID, err := c.p.id("FIRST_ID")
	if err != nil {
		return nil, err
	}
	limit, err := c.p.id("LIMIT")
	if err != nil {
		return nil, err
	}
	if limit <= 0 {
		limit = bxDefaultLimit
	}
	limit = min(limit, bxMaxLimit)
	q := mam.Query{Viewer: c.user.ID, ChatID: d.chatID, Limit: int(limit), Reverse: true, BeforeID: lastID}
	if d.peer != nil {
		q.With = d.peer.ID
	}
	if c.p.has("FIRST_ID") && !c.p.has("LAST_ID") {
		q.Reverse, q.BeforeID, q.AfterID = false, 0, firstID
	}
	if d.chatID != 0 {
		if _, err := c.a.chats.Get(c.ctx, c.user.ID, d.chatID); err != nil {
			return nil, err
		}
	}
	page, err := archive.Query(c.ctx, q)
	if err != nil {
		return nil, err
	}
	msgs := make([]any, 0, len(page.Messages))
	users := []any{}
	seen := map[int64]bool{}
	for i := len(page.Messages) - 1; i >= 0; i-- {
		m := &page.Messages[i]
		msgs = append(msgs, c.messageJSON(m))
		if m.Kind != mam.KindSystem && m.FromID != 0 && !seen[m.FromID] {
			seen[m.FromID] = true
			users = append(users, c.userJSON(c.userOf(m.FromID)))
		}
	}
	return map[string]any{"messages": msgs, "users": users, "files": []any{}, "chat_id": d.chatID}, nil
}

// dialogForRead is a DIALOG_ID whose person may also be inactive (their
// history stays readable).
func (c *bxCall) dialogForRead(name string) (dialog, error) {
	s, err := c.p.required(name)
	if err != nil {
		return dialog{}, err
	}
	if strings.HasPrefix(strings.ToLower(strings.TrimSpace(s)), "chat") {
		return c.dialog(name)
	}
	u, err := c.a.users.UserByExtID(c.ctx, strings.TrimSpace(s))
	if errors.Is(err, roster.ErrNotFound) {
		return dialog{}, &bxError{http.StatusBadRequest, "USER_NOT_FOUND", name + ": user " + strconv.Quote(s) + " does not exist"}
	}
	if err != nil {
		return dialog{}, err
	}
	return dialog{peer: u}, nil
}

// recentGet: im.recent.get (SKIP_CHAT, SKIP_DIALOG, LAST_UPDATE): the
// user's conversations with their last message and unread counter
// (mam/read.go), newest first.
func (c *bxCall) recentGet() (any, error) {
	archive, err := c.archive()
	if err != nil {
		return nil, err
	}
	skipChat, err := c.p.yn("SKIP_CHAT", false)
	if err != nil {
		return nil, err
	}
	skipDialog, err := c.p.yn("SKIP_DIALOG", false)
	if err != nil {
		return nil, err
	}
	var since time.Time
	for _, name := range []string{"LAST_UPDATE", "LAST_SYNC_DATE"} {
		if c.given(name) {
			s, _ := c.p.str(name)
			t, err := time.Parse(time.RFC3339, strings.TrimSpace(s))
			if err != nil {
				return nil, bxInvalid(name, "must be a date like 2019-07-11T10:45:31+02:00")
			}
			since = t
		}
	}
	convs, err := archive.Conversations(c.ctx, c.user.ID, 0)
	if err != nil {
		return nil, err
	}
	chats, err := c.a.chats.ChatsOf(c.ctx, c.user.ID)
	if err != nil {
		return nil, err
	}
	byID := make(map[int64]*muc.Chat, len(chats))
	for i := range chats {
		byID[chats[i].ID] = &chats[i]
	}
	type item struct {
		at time.Time
		v  map[string]any
	}
	var items []item
	chatItem := func(ch *muc.Chat, at time.Time, msg any, counter int) item {
		cj := c.chatJSON(ch)
		return item{at, map[string]any{"id": cj["dialog_id"], "type": "chat", "avatar": map[string]any{"url": cj["avatar"], "color": ch.Color},
			"title": ch.Title, "message": msg, "date": atom(at), "chat": cj, "counter": counter}}
	}
	for i := range convs {
		m := &convs[i].Last
		text, attach := m.Body, false
		if rc := richOfMessage(m.Payload); rc != nil && !m.Deleted {
			text, attach = rc.Text, rc.Attach != nil
		}
		msg := map[string]any{"id": m.ID, "text": text, "file": false, "attach": attach, "author_id": c.authorID(m), "date": atom(m.CreatedAt)}
		if m.ChatID != 0 {
			if ch := byID[m.ChatID]; ch != nil && !skipChat {
				delete(byID, m.ChatID)
				items = append(items, chatItem(ch, m.CreatedAt, msg, convs[i].Unread))
			}
			continue
		}
		if skipDialog {
			continue
		}
		peer := m.ToID
		if peer == c.user.ID {
			peer = m.FromID
		}
		u := c.userOf(peer)
		items = append(items, item{m.CreatedAt, map[string]any{"id": bxID(u.ExtID), "type": "user",
			"avatar": map[string]any{"url": "", "color": ""}, "title": u.Name, "message": msg, "date": atom(m.CreatedAt), "user": c.userJSON(u),
			"counter": convs[i].Unread}})
	}
	if !skipChat {
		for _, ch := range chats { // chats with nothing the user may read yet
			if byID[ch.ID] != nil {
				items = append(items, chatItem(byID[ch.ID], ch.CreatedAt, nil, 0))
			}
		}
	}
	sort.SliceStable(items, func(i, j int) bool { return items[i].at.After(items[j].at) })
	out := make([]any, 0, len(items))
	for _, it := range items {
		if !since.IsZero() && it.at.Before(since) {
			continue
		}
		out = append(out, it.v)
	}
	return out, nil
}

// notifyAdd: im.notify.personal.add and im.notify.system.add (USER_ID,
// MESSAGE): a notification through the same path as POST /notifications.
func (c *bxCall) notifyAdd() (any, error) {
	if err := c.refuse("notifications have no sub-tags in Vestnik yet", "SUB_TAG"); err != nil {
		return nil, err
	}
	ext, err := c.p.required("USER_ID")
	if err != nil {
		return nil, err
	}
	to, err := c.active("USER_ID", strings.TrimSpace(ext))
	if err != nil {
		return nil, err
	}
	content, _, err := c.bxRich(true)
	if err != nil {
		return nil, err
	}
	if err := content.Validate(); err != nil {
		return nil, bxRichError(err)
	}
	// A notification is text: BB-codes and an attachment become their
	// readable plain text (docs/bitrix-compat.md).
	text := content.Fallback()
	if len(text) > MaxMessage {
		return nil, bxInvalid("ATTACH", "the notification is too long")
	}
	id, err := c.notifyTagged(to.ID, text) // api/bitrix_bots.go: TAG, and the sender of a personal notification
	if err != nil {
		return nil, err
	}
	return id, nil
}

// userGet: im.user.get (ID; default the calling user).
func (c *bxCall) userGet() (any, error) {
	u := c.user
	if c.given("ID") {
		ext, err := c.p.str("ID")
		if err != nil {
			return nil, err
		}
		ext = strings.TrimSpace(ext)
		if len(ext) > 200 {
			return nil, &bxError{http.StatusBadRequest, "USER_NOT_FOUND", "ID: no such user"}
		}
		if u, err = c.a.users.UserByExtID(c.ctx, ext); errors.Is(err, roster.ErrNotFound) {
			return nil, &bxError{http.StatusBadRequest, "USER_NOT_FOUND", "ID: user " + strconv.Quote(ext) + " does not exist"}
		} else if err != nil {
			return nil, err
		}
	}
	out := c.userJSON(u)
	depts, err := c.a.users.Departments(c.ctx)
	if err != nil {
		return nil, err
	}
	ext := make(map[int64]string, len(depts))
	for _, d := range depts {
		ext[d.ID] = d.ExtID
	}
	ds := make([]any, 0, len(u.Departments))
	for _, d := range u.Departments {
		ds = append(ds, bxID(ext[d]))
	}
	out["departments"] = ds
	return out, nil
}

// searchChatList: im.search.chat.list (FIND, LIMIT): chats whose title
// contains FIND that the user may see.
func (c *bxCall) searchChatList() (any, error) {
	q, err := c.p.required("FIND")
	if err != nil {
		return nil, err
	}
	if len(q) > 4*muc.MaxTitle {
		return nil, bxInvalid("FIND", "the search text is too long")
	}
	limit, err := c.p.id("LIMIT")
	if err != nil {
		return nil, err
	}
	chats, err := c.a.chats.Store().FindByTitle(c.ctx, strings.TrimSpace(q), c.user.ID, int(limit))
	if err != nil {
		return nil, err
	}
	out := make([]any, 0, len(chats))
	for i := range chats {
		out = append(out, c.chatJSON(&chats[i]))
	}
	return out, nil
}
