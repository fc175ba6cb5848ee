package muc

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jmoiron/sqlx"
)

// Sentinel errors. Validation problems are *InvalidError values.
var (
	ErrNotFound  = errors.New("muc: not found")
	ErrForbidden = errors.New("muc: forbidden")
	ErrConflict  = errors.New("muc: conflict")
	// ErrPasswordRequired: joining a password-protected chat without its
	// password, or with a wrong one. It is an ErrForbidden.
	ErrPasswordRequired = fmt.Errorf("%w: this chat needs its password", ErrForbidden)
	// ErrMembersOnly: entering a closed chat's room without being a
	// member (XMPP: registration-required). It is an ErrForbidden.
	ErrMembersOnly = fmt.Errorf("%w: this chat is for members only", ErrForbidden)
)

// InvalidError is a value the caller got wrong: Field names it (in the REST
// API's spelling), Code is a snake_case reason, Message is for a human.
type InvalidError struct {
	Field, Code, Message string
}

func (e *InvalidError) Error() string { return "muc: " + e.Field + ": " + e.Message }

// UnknownUserError names a user id that is not an active user; the REST
// layer reports it with the portal id.
type UnknownUserError struct {
	Field  string
	UserID int64
}

func (e *UnknownUserError) Error() string {
	return fmt.Sprintf("muc: %s: user %d does not exist or is not active", e.Field, e.UserID)
}

func invalid(field, code, format string, args ...any) *InvalidError {
	return &InvalidError{Field: field, Code: code, Message: fmt.Sprintf(format, args...)}
}

// Chat types.
const (
	TypeOpen   = "open"   // any employee may find and join it
	TypeClosed = "closed" // members only; a member invites
)

// Who sees occupants' real JIDs in a chat's room (Chat.Whois).
const (
	WhoisAnyone     = "anyone"
	WhoisModerators = "moderators"
)

// Member roles as stored in chat_members.role.
const (
	RoleOwner  = "owner"
	RoleMember = "member"
)

// Limits on chat fields.
const (
	MaxTitle       = 255       // characters
	MaxDescription = 4096      // characters
	MaxAvatar      = 256 << 10 // bytes, decoded
	MaxMembers     = 10000     // per request and per chat creation
	maxRoom        = 64        // room localpart, bytes
	queryTimeout   = 10 * time.Second
)

// Colors is the safe list of chat colors (SPEC §5), in display order.
var Colors = []string{"RED", "GREEN", "MINT", "LIGHT_BLUE", "DARK_BLUE", "PURPLE", "AQUA", "PINK",
	"LIME", "BROWN", "AZURE", "KHAKI", "SAND", "MARENGO", "GRAY", "GRAPHITE"}

// ValidColor reports whether c is on the safe list.
func ValidColor(c string) bool {
	for _, x := range Colors {
		if x == c {
			return true
		}
	}
	return false
}

// Chat is a group chat. Members is filled by Get, FindByTitle and ChatsOf.
type Chat struct {
	ID          int64  `db:"id"`
	Room        string `db:"room"` // MUC room localpart
	Title       string `db:"title"`
	Description string `db:"description"`
	Color       string `db:"color"`
	Type        string `db:"type"`
	OwnerID     int64  `db:"owner_id"`
	AvatarType  string `db:"avatar_type"` // "" = no avatar
	// Password is the room secret a non-member gives to join (XEP-0045
	// password-protected room); "" = none. Shown only in the room
	// configuration, to whoever may edit the chat.
	Password string `db:"password"`
	// ShowOffline: a joining occupant gets the presence (unavailable) of
	// the members with a reserved nick who are not in the room
	// (muc#roomconfig_presencebroadcast with "none").
	ShowOffline bool `db:"show_offline"`
	// Whois is who sees the occupants' real JIDs in the room: WhoisAnyone
	// (a non-anonymous room) or WhoisModerators (the owner; a
	// semi-anonymous room, muc#roomconfig_whois).
	Whois string `db:"whois"`
	// Moderated: who enters without being a member is a visitor (no
	// voice) until the owner gives voice or membership.
	Moderated bool      `db:"moderated"`
	CreatedAt time.Time `db:"-"`
	UpdatedAt time.Time `db:"-"`
	Members   []Member  `db:"-"`
}

// IsMember reports whether userID is in c.Members.
func (c *Chat) IsMember(userID int64) bool {
	for _, m := range c.Members {
		if m.UserID == userID {
			return true
		}
	}
	return false
}

// Member returns userID's membership, nil when they are not a member.
func (c *Chat) Member(userID int64) *Member {
	for i := range c.Members {
		if c.Members[i].UserID == userID {
			return &c.Members[i]
		}
	}
	return nil
}

// NickHolder returns the member who reserved nick in the room, 0 if
// nobody did.
func (c *Chat) NickHolder(nick string) int64 {
	if nick == "" {
		return 0
	}
	for _, m := range c.Members {
		if m.Nick == nick {
			return m.UserID
		}
	}
	return 0
}

// Member is a chat member with the time they (last) joined and the nick
// they reserved in the room ("" = none; XEP-0045 §7.10).
type Member struct {
	UserID   int64     `db:"user_id"`
	Role     string    `db:"role"`
	Nick     string    `db:"nick"`
	JoinedAt time.Time `db:"-"`
}

// Store keeps chats, members and membership windows.
type Store struct {
	db *sqlx.DB
}

// NewStore returns a store over db.
func NewStore(db *sqlx.DB) *Store { return &Store{db: db} }

// DB returns the database the store uses.
func (s *Store) DB() *sqlx.DB { return s.db }

func (s *Store) withTx(ctx context.Context, f func(tx *sqlx.Tx) error) error {
	tx, err := s.db.BeginTxx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if err := f(tx); err != nil {
		return err
	}
	return tx.Commit()
}

// NewChat is what Create needs.
type NewChat struct {
	Title, Description, Color, Type string
	OwnerID                         int64
	Avatar                          string // data: URL, optional
	Members                         []int64
	Room                            string // room localpart; "" = "chat<id>"
	HideHistory                     bool   // for the initial members (they see nothing earlier anyway)
}

// ValidateFields checks title, description, color and type as Create and
// Update do. Empty color or type are accepted here (defaults apply).
func validateFields(title, description, color, typ *string) error {
	if title != nil {
		t := strings.TrimSpace(*title)
		if t == "" {
			return invalid("title", "empty_title", "title must not be empty")
		}
		if !utf8.ValidString(t) || utf8.RuneCountInString(t) > MaxTitle {
			return invalid("title", "title_too_long", "title must be valid UTF-8 of at most %d characters", MaxTitle)
		}
		if strings.ContainsFunc(t, func(r rune) bool { return r < ' ' || r == 0x7f }) {
			return invalid("title", "invalid_title", "title must be one line without control characters")
		}
		*title = t
	}
	if description != nil {
		if !utf8.ValidString(*description) || utf8.RuneCountInString(*description) > MaxDescription {
			return invalid("description", "description_too_long", "description must be valid UTF-8 of at most %d characters", MaxDescription)
		}
	}
	if color != nil && !ValidColor(*color) {
		return invalid("color", "unknown_color", "color %q is not one of the safe colors (GET /api/v1/colors)", *color)
	}
	if typ != nil && *typ != TypeOpen && *typ != TypeClosed {
		return invalid("type", "unknown_type", "type must be \"open\" or \"closed\", not %q", *typ)
	}
	return nil
}

// ValidRoom reports whether room is acceptable as a new room localpart
// created from XMPP: lowercase letters, digits, '-', '_' and '.', not of
// the reserved form chat<digits>.
func ValidRoom(room string) bool {
	if room == "" || len(room) > maxRoom {
		return false
	}
	for _, r := range room {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.') {
			return false
		}
	}
	if rest, ok := strings.CutPrefix(room, "chat"); ok && rest != "" && strings.Trim(rest, "0123456789") == "" {
		return false
	}
	return true
}

// Create validates nc and stores the chat with its owner and members. The
// owner must be an active user; so must every member.
func (s *Store) Create(ctx context.Context, nc NewChat) (*Chat, error) {
	if nc.Color == "" {
		nc.Color = Colors[0]
	}
	if nc.Type == "" {
		nc.Type = TypeOpen
	}
	if err := validateFields(&nc.Title, &nc.Description, &nc.Color, &nc.Type); err != nil {
		return nil, err
	}
	var avatar []byte
	var avatarType string
	if nc.Avatar != "" {
		var err error
		if avatar, avatarType, err = ParseAvatar(nc.Avatar); err != nil {
			return nil, err
		}
	}
	if nc.Room != "" && !ValidRoom(nc.Room) {
		return nil, invalid("room", "invalid_room", "room name %q is not allowed", nc.Room)
	}
	if len(nc.Members) > MaxMembers {
		return nil, invalid("users", "too_many_users", "at most %d users at once", MaxMembers)
	}
	ctx, cancel := context.WithTimeout(ctx, queryTimeout)
	defer cancel()
	var id int64
	err := s.withTx(ctx, func(tx *sqlx.Tx) error {
		if err := checkActive(ctx, tx, "owner_id", []int64{nc.OwnerID}); err != nil {
			return err
		}
		if err := checkActive(ctx, tx, "users", nc.Members); err != nil {
			return err
		}
		room := nc.Room
		if room == "" {
			var b [8]byte
			rand.Read(b[:])
			room = "new-" + hex.EncodeToString(b[:])
		} else {
			var n int
			if err := tx.GetContext(ctx, &n, tx.Rebind(`SELECT COUNT(*) FROM chats WHERE room = ?`), room); err != nil {
				return err
			}
			if n > 0 {
				return fmt.Errorf("%w: room %q exists", ErrConflict, room)
			}
		}
		now := time.Now().UnixMicro()
		err := tx.GetContext(ctx, &id, tx.Rebind(`INSERT INTO chats
			(room, title, title_lower, description, color, type, owner_id, avatar, avatar_type, created_at, updated_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`),
			room, nc.Title, strings.ToLower(nc.Title), nc.Description, nc.Color, nc.Type, nc.OwnerID,
			avatar, avatarType, now, now)
		if err != nil {
			return err
		}
		if nc.Room == "" {
			if _, err := tx.ExecContext(ctx, tx.Rebind(`UPDATE chats SET room = ? WHERE id = ?`), fmt.Sprintf("chat%d", id), id); err != nil {
				return err
			}
		}
		users := append([]int64{nc.OwnerID}, nc.Members...)
		_, err = addMembers(ctx, tx, id, nc.OwnerID, users, nc.HideHistory, now)
		return err
	})
	if err != nil {
		return nil, wrap("create chat", err)
	}
	return s.Get(ctx, id)
}

func wrap(what string, err error) error {
	if err == nil {
		return nil
	}
	var ie *InvalidError
	var ue *UnknownUserError
	if errors.As(err, &ie) || errors.As(err, &ue) || errors.Is(err, ErrNotFound) || errors.Is(err, ErrForbidden) || errors.Is(err, ErrConflict) {
		return err
	}
	return fmt.Errorf("muc: %s: %w", what, err)
}

// checkActive makes sure every id names an active user.
func checkActive(ctx context.Context, tx *sqlx.Tx, field string, ids []int64) error {
	if len(ids) == 0 {
		return nil
	}
	uniq := dedupe(ids)
	query, args, err := sqlx.In(`SELECT id FROM users WHERE active = TRUE AND id IN (?)`, uniq)
	if err != nil {
		return err
	}
	var found []int64
	if err := tx.SelectContext(ctx, &found, tx.Rebind(query), args...); err != nil {
		return err
	}
	if len(found) == len(uniq) {
		return nil
	}
	ok := make(map[int64]bool, len(found))
	for _, id := range found {
		ok[id] = true
	}
	for _, id := range uniq {
		if !ok[id] {
			return &UnknownUserError{Field: field, UserID: id}
		}
	}
	return nil
}

func dedupe(ids []int64) []int64 {
	seen := make(map[int64]bool, len(ids))
	out := make([]int64, 0, len(ids))
	for _, id := range ids {
		if !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	return out
}

// maxMessageID is the newest archive id, 0 for an empty archive.
func maxMessageID(ctx context.Context, q sqlx.QueryerContext) (int64, error) {
	var id sql.NullInt64
	if err := sqlx.GetContext(ctx, q, &id, `SELECT MAX(id) FROM messages`); err != nil {
		return 0, err
	}
	return id.Int64, nil
}

// addMembers adds the users not yet members and opens their membership
// windows. A window starts at 0 (all earlier history visible) unless
// hideHistory is set or the user was a member before and left: then it
// starts after the newest message, so what was said before (or while they
// were away) stays hidden.
func addMembers(ctx context.Context, tx *sqlx.Tx, chatID, ownerID int64, users []int64, hideHistory bool, now int64) ([]int64, error) {
	users = dedupe(users)
	if len(users) == 0 {
		return nil, nil
	}
	var existing []int64
	if err := tx.SelectContext(ctx, &existing, tx.Rebind(`SELECT user_id FROM chat_members WHERE chat_id = ?`), chatID); err != nil {
		return nil, err
	}
	isMember := make(map[int64]bool, len(existing))
	for _, id := range existing {
		isMember[id] = true
	}
	var hadPeriod map[int64]bool
	var maxID int64 = -1
	var added []int64
	for _, u := range users {
		if isMember[u] {
			continue
		}
		if hadPeriod == nil {
			var past []int64
			if err := tx.SelectContext(ctx, &past, tx.Rebind(`SELECT DISTINCT user_id FROM chat_periods WHERE chat_id = ?`), chatID); err != nil {
				return nil, err
			}
			hadPeriod = make(map[int64]bool, len(past))
			for _, id := range past {
				hadPeriod[id] = true
			}
		}
		var from int64
		if hideHistory || hadPeriod[u] {
			if maxID < 0 {
				m, err := maxMessageID(ctx, tx)
				if err != nil {
					return nil, err
				}
				maxID = m
			}
			from = maxID + 1
		}
		role := RoleMember
		if u == ownerID {
			role = RoleOwner
		}
		res, err := tx.ExecContext(ctx, tx.Rebind(`INSERT INTO chat_members (chat_id, user_id, role, joined_at) VALUES (?, ?, ?, ?)
			ON CONFLICT (chat_id, user_id) DO NOTHING`), chatID, u, role, now)
		if err != nil {
			return nil, err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			continue // added meanwhile by a concurrent request
		}
		// A user who left and rejoins before any new message would reuse
		// from_id: extend that window instead.
		res, err = tx.ExecContext(ctx, tx.Rebind(`UPDATE chat_periods SET to_id = NULL WHERE chat_id = ? AND user_id = ? AND from_id = ?`), chatID, u, from)
		if err != nil {
			return nil, err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			if _, err := tx.ExecContext(ctx, tx.Rebind(`INSERT INTO chat_periods (chat_id, user_id, from_id, to_id) VALUES (?, ?, ?, NULL)`),
				chatID, u, from); err != nil {
				return nil, err
			}
		}
		isMember[u] = true
		added = append(added, u)
	}
	return added, nil
}

type chatRow struct {
	Chat
	CreatedAt int64 `db:"created_at"`
	UpdatedAt int64 `db:"updated_at"`
}

const chatCols = `id, room, title, description, color, type, owner_id, avatar_type, password, show_offline, whois, moderated, created_at, updated_at`

func (r chatRow) chat() Chat {
	c := r.Chat
	c.CreatedAt = time.UnixMicro(r.CreatedAt).UTC()
	c.UpdatedAt = time.UnixMicro(r.UpdatedAt).UTC()
	return c
}

// Get returns the chat with its members, ErrNotFound if there is none.
func (s *Store) Get(ctx context.Context, id int64) (*Chat, error) {
	return s.getBy(ctx, `id = ?`, id)
}

// ByRoom returns the chat whose room localpart is room, with its members.
func (s *Store) ByRoom(ctx context.Context, room string) (*Chat, error) {
	return s.getBy(ctx, `room = ?`, room)
}

func (s *Store) getBy(ctx context.Context, where string, arg any) (*Chat, error) {
	ctx, cancel := context.WithTimeout(ctx, queryTimeout)
	defer cancel()
	var r chatRow
	err := s.db.GetContext(ctx, &r, s.db.Rebind(`SELECT `+chatCols+` FROM chats WHERE `+where), arg)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("muc: get chat: %w", err)
	}
	c := r.chat()
	if c.Members, err = s.Members(ctx, c.ID); err != nil {
		return nil, err
	}
	return &c, nil
}

// forPost returns the chat with, as its only member, userID when they
// are one: what posting needs, in one query, whatever the chat's size.
func (s *Store) forPost(ctx context.Context, chatID, userID int64) (*Chat, error) {
	ctx, cancel := context.WithTimeout(ctx, queryTimeout)
	defer cancel()
	var r struct {
		chatRow
		Role     sql.NullString `db:"role"`
		JoinedAt sql.NullInt64  `db:"joined_at"`
	}
	err := s.db.GetContext(ctx, &r, s.db.Rebind(`SELECT c.id, c.room, c.title, c.description, c.color, c.type, c.owner_id,
		c.avatar_type, c.password, c.show_offline, c.whois, c.moderated, c.created_at, c.updated_at, m.role, m.joined_at
		FROM chats c LEFT JOIN chat_members m ON m.chat_id = c.id AND m.user_id = ? WHERE c.id = ?`), userID, chatID)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("muc: get chat %d: %w", chatID, err)
	}
	c := r.chat()
	if r.Role.Valid {
		c.Members = []Member{{UserID: userID, Role: r.Role.String, JoinedAt: time.UnixMicro(r.JoinedAt.Int64).UTC()}}
	}
	return &c, nil
}

type memberRow struct {
	ChatID   int64  `db:"chat_id"`
	UserID   int64  `db:"user_id"`
	Role     string `db:"role"`
	Nick     string `db:"nick"`
	JoinedAt int64  `db:"joined_at"`
}

func (r memberRow) member() Member {
	return Member{UserID: r.UserID, Role: r.Role, Nick: r.Nick, JoinedAt: time.UnixMicro(r.JoinedAt).UTC()}
}

// Members lists the chat's members, owner first, then by join time.
func (s *Store) Members(ctx context.Context, chatID int64) ([]Member, error) {
	var rows []memberRow
	err := s.db.SelectContext(ctx, &rows, s.db.Rebind(`SELECT chat_id, user_id, role, nick, joined_at FROM chat_members
		WHERE chat_id = ? ORDER BY CASE role WHEN 'owner' THEN 0 ELSE 1 END, joined_at, user_id`), chatID)
	if err != nil {
		return nil, fmt.Errorf("muc: members of %d: %w", chatID, err)
	}
	ms := make([]Member, len(rows))
	for i, r := range rows {
		ms[i] = r.member()
	}
	return ms, nil
}

// IsMember reports whether userID is a member of chatID.
func (s *Store) IsMember(ctx context.Context, chatID, userID int64) (bool, error) {
	var n int
	err := s.db.GetContext(ctx, &n, s.db.Rebind(`SELECT COUNT(*) FROM chat_members WHERE chat_id = ? AND user_id = ?`), chatID, userID)
	if err != nil {
		return false, fmt.Errorf("muc: is member: %w", err)
	}
	return n > 0, nil
}

// listWith loads chats matching the query and fills their members with one
// more query.
func (s *Store) listWith(ctx context.Context, query string, args ...any) ([]Chat, error) {
	ctx, cancel := context.WithTimeout(ctx, queryTimeout)
	defer cancel()
	var rows []chatRow
	if err := s.db.SelectContext(ctx, &rows, s.db.Rebind(query), args...); err != nil {
		return nil, fmt.Errorf("muc: list chats: %w", err)
	}
	chats := make([]Chat, len(rows))
	if len(rows) == 0 {
		return chats, nil
	}
	ids := make([]int64, len(rows))
	pos := make(map[int64]int, len(rows))
	for i, r := range rows {
		chats[i] = r.chat()
		chats[i].Members = []Member{}
		ids[i] = r.ID
		pos[r.ID] = i
	}
	q, qargs, err := sqlx.In(`SELECT chat_id, user_id, role, nick, joined_at FROM chat_members WHERE chat_id IN (?)
		ORDER BY chat_id, CASE role WHEN 'owner' THEN 0 ELSE 1 END, joined_at, user_id`, ids)
	if err != nil {
		return nil, fmt.Errorf("muc: list members: %w", err)
	}
	var ms []memberRow
	if err := s.db.SelectContext(ctx, &ms, s.db.Rebind(q), qargs...); err != nil {
		return nil, fmt.Errorf("muc: list members: %w", err)
	}
	for _, m := range ms {
		c := &chats[pos[m.ChatID]]
		c.Members = append(c.Members, m.member())
	}
	return chats, nil
}

// MaxFound bounds FindByTitle.
const MaxFound = 100

// FindByTitle returns up to limit chats whose title contains q, ignoring
// case (Cyrillic too), newest first. viewer 0 sees all chats; otherwise
// closed chats are listed only to their members.
func (s *Store) FindByTitle(ctx context.Context, q string, viewer int64, limit int) ([]Chat, error) {
	if limit <= 0 || limit > MaxFound {
		limit = MaxFound
	}
	pat := "%" + likeEscape(strings.ToLower(q)) + "%"
	query := `SELECT ` + chatCols + ` FROM chats WHERE title_lower LIKE ? ESCAPE '\'`
	args := []any{pat}
	if viewer != 0 {
		query += ` AND (type = 'open' OR id IN (SELECT chat_id FROM chat_members WHERE user_id = ?))`
		args = append(args, viewer)
	}
	query += ` ORDER BY id DESC LIMIT ?`
	args = append(args, limit)
	return s.listWith(ctx, query, args...)
}

func likeEscape(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)
	return r.Replace(s)
}

// ChatsOf returns the chats userID is a member of, by id.
func (s *Store) ChatsOf(ctx context.Context, userID int64) ([]Chat, error) {
	return s.listWith(ctx, `SELECT `+chatCols+` FROM chats WHERE id IN (SELECT chat_id FROM chat_members WHERE user_id = ?) ORDER BY id`, userID)
}

// OpenChats returns every open chat, by id (for room discovery).
func (s *Store) OpenChats(ctx context.Context) ([]Chat, error) {
	return s.listWith(ctx, `SELECT `+chatCols+` FROM chats WHERE type = 'open' ORDER BY id`)
}

// AddMembers adds users to the chat (those already members are skipped)
// and returns who was added. See addMembers for hideHistory.
func (s *Store) AddMembers(ctx context.Context, chatID int64, users []int64, hideHistory bool) ([]int64, error) {
	if len(users) > MaxMembers {
		return nil, invalid("users", "too_many_users", "at most %d users at once", MaxMembers)
	}
	ctx, cancel := context.WithTimeout(ctx, queryTimeout)
	defer cancel()
	var added []int64
	err := s.withTx(ctx, func(tx *sqlx.Tx) error {
		var owner int64
		err := tx.GetContext(ctx, &owner, tx.Rebind(`SELECT owner_id FROM chats WHERE id = ?`), chatID)
		if errors.Is(err, sql.ErrNoRows) {
			return ErrNotFound
		}
		if err != nil {
			return err
		}
		if err := checkActive(ctx, tx, "users", users); err != nil {
			return err
		}
		added, err = addMembers(ctx, tx, chatID, owner, users, hideHistory, time.Now().UnixMicro())
		return err
	})
	if err != nil {
		return nil, wrap("add members", err)
	}
	return added, nil
}

// RemoveMember ends userID's membership and closes their history window
// at the newest message. When the owner leaves, the longest-standing
// member becomes the owner. Not a member: ErrNotFound.
func (s *Store) RemoveMember(ctx context.Context, chatID, userID int64) error {
	ctx, cancel := context.WithTimeout(ctx, queryTimeout)
	defer cancel()
	err := s.withTx(ctx, func(tx *sqlx.Tx) error {
		res, err := tx.ExecContext(ctx, tx.Rebind(`DELETE FROM chat_members WHERE chat_id = ? AND user_id = ?`), chatID, userID)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return ErrNotFound
		}
		maxID, err := maxMessageID(ctx, tx)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, tx.Rebind(`UPDATE chat_periods SET to_id = ? WHERE chat_id = ? AND user_id = ? AND to_id IS NULL`),
			maxID, chatID, userID); err != nil {
			return err
		}
		var owner int64
		if err := tx.GetContext(ctx, &owner, tx.Rebind(`SELECT owner_id FROM chats WHERE id = ?`), chatID); err != nil {
			return err
		}
		if owner != userID {
			return nil
		}
		var next []int64
		if err := tx.SelectContext(ctx, &next, tx.Rebind(`SELECT user_id FROM chat_members WHERE chat_id = ? ORDER BY joined_at, user_id LIMIT 1`), chatID); err != nil {
			return err
		}
		if len(next) == 0 {
			return nil // an empty chat keeps its last owner
		}
		if _, err := tx.ExecContext(ctx, tx.Rebind(`UPDATE chats SET owner_id = ?, updated_at = ? WHERE id = ?`), next[0], time.Now().UnixMicro(), chatID); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, tx.Rebind(`UPDATE chat_members SET role = 'owner' WHERE chat_id = ? AND user_id = ?`), chatID, next[0])
		return err
	})
	return wrap("remove member", err)
}

// Update changes the given fields (nil = unchanged).
type Update struct {
	Title, Description, Color, Type *string
	Avatar                          *string // data: URL; "" removes the avatar
	Password                        *string // room secret; "" removes it
	// OwnerID hands the chat to another member (who must be one); the
	// old owner stays a member.
	OwnerID *int64
	// ShowOffline: see Chat.ShowOffline.
	ShowOffline *bool
	// Whois: WhoisAnyone or WhoisModerators (Chat.Whois).
	Whois *string
	// Moderated: see Chat.Moderated.
	Moderated *bool
}

// Update validates and applies u and returns the updated chat.
func (s *Store) Update(ctx context.Context, chatID int64, u Update) (*Chat, error) {
	if err := validateFields(u.Title, u.Description, u.Color, u.Type); err != nil {
		return nil, err
	}
	sets := []string{"updated_at = ?"}
	args := []any{time.Now().UnixMicro()}
	if u.Title != nil {
		sets = append(sets, "title = ?", "title_lower = ?")
		args = append(args, *u.Title, strings.ToLower(*u.Title))
	}
	if u.Description != nil {
		sets = append(sets, "description = ?")
		args = append(args, *u.Description)
	}
	if u.Color != nil {
		sets = append(sets, "color = ?")
		args = append(args, *u.Color)
	}
	if u.Type != nil {
		sets = append(sets, "type = ?")
		args = append(args, *u.Type)
	}
	if u.Password != nil {
		if len(*u.Password) > MaxPassword {
			return nil, invalid("password", "password_too_long", "the room password must be at most %d bytes", MaxPassword)
		}
		sets = append(sets, "password = ?")
		args = append(args, *u.Password)
	}
	if u.Avatar != nil {
		var data []byte
		var typ string
		if *u.Avatar != "" {
			var err error
			if data, typ, err = ParseAvatar(*u.Avatar); err != nil {
				return nil, err
			}
		}
		sets = append(sets, "avatar = ?", "avatar_type = ?")
		args = append(args, data, typ)
	}
	if u.OwnerID != nil {
		sets = append(sets, "owner_id = ?")
		args = append(args, *u.OwnerID)
	}
	if u.Whois != nil {
		if *u.Whois != WhoisAnyone && *u.Whois != WhoisModerators {
			return nil, invalid("whois", "unknown_whois", "whois must be %q or %q", WhoisAnyone, WhoisModerators)
		}
		sets = append(sets, "whois = ?")
		args = append(args, *u.Whois)
	}
	for _, f := range []struct {
		col string
		v   *bool
	}{{"moderated", u.Moderated}, {"show_offline", u.ShowOffline}} {
		if f.v != nil {
			v := 0 // stored as 0 or 1
			if *f.v {
				v = 1
			}
			sets = append(sets, f.col+" = ?")
			args = append(args, v)
		}
	}
	args = append(args, chatID)
	ctx, cancel := context.WithTimeout(ctx, queryTimeout)
	defer cancel()
	err := s.withTx(ctx, func(tx *sqlx.Tx) error {
		if u.OwnerID != nil {
			var role string
			err := tx.GetContext(ctx, &role, tx.Rebind(`SELECT role FROM chat_members WHERE chat_id = ? AND user_id = ?`), chatID, *u.OwnerID)
			if errors.Is(err, sql.ErrNoRows) {
				var n int
				if err := tx.GetContext(ctx, &n, tx.Rebind(`SELECT COUNT(*) FROM chats WHERE id = ?`), chatID); err != nil {
					return err
				}
				if n == 0 {
					return ErrNotFound
				}
				return invalid("owner_id", "not_member", "the new owner must be a member of the chat")
			}
			if err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, tx.Rebind(`UPDATE chat_members SET role = CASE WHEN user_id = ? THEN 'owner' ELSE 'member' END
				WHERE chat_id = ? AND (role = 'owner' OR user_id = ?)`), *u.OwnerID, chatID, *u.OwnerID); err != nil {
				return err
			}
		}
		res, err := tx.ExecContext(ctx, tx.Rebind(`UPDATE chats SET `+strings.Join(sets, ", ")+` WHERE id = ?`), args...)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return ErrNotFound
		}
		return nil
	})
	if err != nil {
		return nil, wrap(fmt.Sprintf("update chat %d", chatID), err)
	}
	return s.Get(ctx, chatID)
}

// SetNick reserves nick in the chat's room for member userID ("" drops
// the reservation): ErrNotFound when they are not a member, ErrConflict
// when another member holds the nick.
func (s *Store) SetNick(ctx context.Context, chatID, userID int64, nick string) error {
	ctx, cancel := context.WithTimeout(ctx, queryTimeout)
	defer cancel()
	err := s.withTx(ctx, func(tx *sqlx.Tx) error {
		if nick != "" {
			var holders []int64
			if err := tx.SelectContext(ctx, &holders, tx.Rebind(`SELECT user_id FROM chat_members WHERE chat_id = ? AND nick = ? AND user_id <> ?`),
				chatID, nick, userID); err != nil {
				return err
			}
			if len(holders) > 0 {
				return ErrConflict
			}
		}
		res, err := tx.ExecContext(ctx, tx.Rebind(`UPDATE chat_members SET nick = ? WHERE chat_id = ? AND user_id = ?`), nick, chatID, userID)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return ErrNotFound
		}
		return nil
	})
	return wrap(fmt.Sprintf("reserve a nick in chat %d", chatID), err)
}

// Avatar returns the chat's avatar image and its media type; ErrNotFound
// when the chat does not exist or has no avatar.
func (s *Store) Avatar(ctx context.Context, chatID int64) ([]byte, string, error) {
	var r struct {
		Data []byte `db:"avatar"`
		Type string `db:"avatar_type"`
	}
	err := s.db.GetContext(ctx, &r, s.db.Rebind(`SELECT avatar, avatar_type FROM chats WHERE id = ?`), chatID)
	if errors.Is(err, sql.ErrNoRows) || err == nil && len(r.Data) == 0 {
		return nil, "", ErrNotFound
	}
	if err != nil {
		return nil, "", fmt.Errorf("muc: avatar of %d: %w", chatID, err)
	}
	return r.Data, r.Type, nil
}
