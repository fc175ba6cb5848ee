package webhook

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode"

	"github.com/jmoiron/sqlx"

	"vestnik/xmppcore/mam"
)

// event is one outgoing event before it is queued for its receivers.
type event struct {
	kind   string
	chain  string // ordering key
	chatID int64  // 0: not a chat's
	peer   int64  // a personal event: the user addressed (a bot gets it)
	author int64  // who caused it: a bot never gets its own events
	owner  int64  // a bot the event is for alone among bots (its keyboard); 0: any bot concerned
	data   map[string]any
	// members are the bots in chatID, read by the first bot webhook
	// that asks (enqueue sets the pointer).
	members *botSet
}

type botSet struct {
	loaded bool
	ids    []int64
}

func chatChain(chatID int64) string { return "c" + itoa(chatID) }

func pairChain(a, b int64) string { return "p" + itoa(min(a, b)) + ":" + itoa(max(a, b)) }

// ArchiveChange is the archive's hook (mam.Options.OnChange): it queues
// message.created, command.received, message.updated, message.deleted and
// reaction.added for the webhooks that want them, in the archive's
// transaction — a group commit's events in one insert.
func (s *Service) ArchiveChange(ctx context.Context, tx *sqlx.Tx, cs []mam.Change) error {
	hooks, err := s.webhooks(ctx, tx)
	if err != nil || len(hooks) == 0 {
		return err
	}
	var rows []queueRow
	for _, c := range cs {
		if err := s.archiveEvents(ctx, tx, hooks, c, &rows); err != nil {
			return err
		}
	}
	return s.insert(ctx, tx, rows)
}

// archiveEvents adds the queue rows of one archive change to rows.
func (s *Service) archiveEvents(ctx context.Context, tx *sqlx.Tx, hooks []*Webhook, c mam.Change, rows *[]queueRow) error {
	m := c.Message
	if m.Kind == mam.KindHeadline {
		return nil
	}
	wanted := false
	for _, h := range hooks {
		if h.wants(c.Kind) || c.Kind == mam.ChangeCreated && h.wants(CommandReceived) {
			wanted = true
			break
		}
	}
	if !wanted {
		return nil
	}
	msg, err := s.messageJSON(ctx, tx, m)
	if err != nil {
		return err
	}
	ev := event{kind: c.Kind, chatID: m.ChatID, author: m.FromID, data: map[string]any{"message": msg}}
	if m.ChatID != 0 {
		ev.chain = chatChain(m.ChatID)
	} else {
		ev.chain, ev.peer = pairChain(m.FromID, m.ToID), m.ToID
	}
	if c.UserID != 0 {
		ev.author = c.UserID
		if ev.data["user_id"], err = s.extID(ctx, tx, c.UserID); err != nil {
			return err
		}
	}
	if c.Kind == mam.ChangeReaction {
		ev.data["reactions"] = c.Reactions
	}
	if err := s.collect(ctx, tx, hooks, ev, rows); err != nil {
		return err
	}
	if c.Kind == mam.ChangeCreated && m.Kind != mam.KindSystem {
		if cmd, params, ok := ParseCommand(m.Body); ok {
			cev := ev
			cev.kind = CommandReceived
			cev.data = map[string]any{"command": cmd, "params": params, "message": msg,
				"chat_id": msg["chat_id"], "from_user_id": msg["from_user_id"]}
			if m.ChatID == 0 {
				cev.data["to_user_id"] = msg["to_user_id"]
			}
			return s.collect(ctx, tx, hooks, cev, rows)
		}
	}
	return nil
}

// ParseCommand reads a bot command from a message's text: "/name params",
// the name a letter followed by letters, digits, '_' or '-' (and an
// optional "@bot" suffix kept in the name); ok is false for other text.
func ParseCommand(text string) (cmd, params string, ok bool) {
	t := strings.TrimSpace(text)
	if len(t) < 2 || t[0] != '/' {
		return "", "", false
	}
	name, rest, _ := strings.Cut(t[1:], " ")
	if nl := strings.IndexByte(name, '\n'); nl >= 0 {
		name, rest = name[:nl], name[nl+1:]+" "+rest
	}
	for i, r := range name {
		if i == 0 && !unicode.IsLetter(r) || !(unicode.IsLetter(r) || unicode.IsDigit(r) || strings.ContainsRune("_-@.", r)) {
			return "", "", false
		}
	}
	return "/" + name, strings.TrimSpace(rest), name != ""
}

// MembersAdded queues chat.member_added: users joined chat chatID, added
// by actor (0: the integration or the server). Bots that were added get it
// too (their welcome).
func (s *Service) MembersAdded(ctx context.Context, chatID, actor int64, users []int64) {
	s.emit(ctx, func(q sqlx.QueryerContext) (event, error) {
		ids := make([]string, 0, len(users))
		for _, u := range users {
			ext, err := s.extID(ctx, q, u)
			if err != nil {
				return event{}, err
			}
			ids = append(ids, ext)
		}
		data := map[string]any{"chat_id": chatID, "users": ids, "actor": nil}
		if actor != 0 {
			ext, err := s.extID(ctx, q, actor)
			if err != nil {
				return event{}, err
			}
			data["actor"] = ext
		}
		return event{kind: ChatMemberAdded, chain: chatChain(chatID), chatID: chatID, author: -1, data: data}, nil
	})
}

// KeyPress is a press of a command button of a message's keyboard, as
// the core's keyboard operation reports it (xmppcore.KeyboardPress).
type KeyPress struct {
	MessageID int64
	ChatID    int64 // the message's chat; 0: a personal message
	AuthorID  int64 // the message's author (the bot whose keyboard it is)
	ToID      int64 // a personal message: its recipient
	UserID    int64 // who pressed
	Button    int   // the button's index in the keyboard
	Text      string
	Command   string // the button's command (Bitrix24's COMMAND)
	Params    string // its COMMAND_PARAMS
}

// KeyboardPressed queues keyboard.pressed: the core's keyboard operation
// calls it (through its press hook) once the press is checked. The bot
// whose keyboard it is gets it (no other bot), and every webhook that
// asked for keyboard.pressed; a Bitrix24 bot gets it as ONIMCOMMANDADD
// (COMMAND_CONTEXT=KEYBOARD) when it registered the command.
func (s *Service) KeyboardPressed(ctx context.Context, p KeyPress) {
	s.emit(ctx, func(q sqlx.QueryerContext) (event, error) {
		user, err := s.extID(ctx, q, p.UserID)
		if err != nil {
			return event{}, err
		}
		data := map[string]any{"message_id": p.MessageID, "user_id": user, "button": p.Button, "text": p.Text,
			"command": p.Command, "params": p.Params}
		ev := event{kind: KeyboardPressed, chatID: p.ChatID, author: p.UserID, owner: p.AuthorID, data: data}
		if ev.owner == 0 {
			ev.owner = -1 // a system message's keyboard: no bot's
		}
		if p.ChatID != 0 {
			ev.chain, data["chat_id"] = chatChain(p.ChatID), p.ChatID
		} else {
			peer := p.AuthorID
			if peer == p.UserID {
				peer = p.ToID
			}
			ev.chain = pairChain(p.UserID, peer)
			if data["to_user_id"], err = s.extID(ctx, q, peer); err != nil {
				return event{}, err
			}
		}
		return ev, nil
	})
}

// Answer is a press of a notification's button.
type Answer struct {
	NotificationID int64
	UserID         int64 // who answered (the notification's recipient)
	SenderID       int64 // the notification's sender; 0: none (the bot, if one, gets it alone)
	Tag, Value     string
	Link           string
}

// NotificationAction queues notification.action.
func (s *Service) NotificationAction(ctx context.Context, a Answer) {
	s.emit(ctx, func(q sqlx.QueryerContext) (event, error) {
		user, err := s.extID(ctx, q, a.UserID)
		if err != nil {
			return event{}, err
		}
		data := map[string]any{"notification_id": a.NotificationID, "user_id": user, "value": a.Value, "tag": a.Tag,
			"link": a.Link, "sender_id": nil}
		if a.SenderID != 0 {
			if data["sender_id"], err = s.extID(ctx, q, a.SenderID); err != nil {
				return event{}, err
			}
		}
		return event{kind: NotificationAction, chain: "n" + itoa(a.UserID), author: a.UserID, owner: a.SenderID, data: data}, nil
	})
}

// emit queues an event made outside the archive's transaction, in a
// transaction of its own; a failure is logged (the core operation it
// follows has happened).
func (s *Service) emit(ctx context.Context, make func(q sqlx.QueryerContext) (event, error)) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	hooks, err := s.webhooks(ctx, s.db)
	if err != nil {
		s.log.Warn("queue event", "err", err)
		return
	}
	if len(hooks) == 0 {
		return
	}
	tx, err := s.db.BeginTxx(ctx, nil)
	if err != nil {
		s.log.Warn("queue event", "err", err)
		return
	}
	defer tx.Rollback()
	ev, err := make(tx)
	var rows []queueRow
	if err == nil {
		err = s.collect(ctx, tx, hooks, ev, &rows)
	}
	if err == nil {
		err = s.insert(ctx, tx, rows)
	}
	if err == nil {
		err = tx.Commit()
	}
	if err != nil {
		s.log.Warn("queue event", "err", err)
		return
	}
	s.Wake()
}

// queueRow is one delivery to write.
type queueRow struct {
	webhook     int64
	chain, kind string
	data        string
}

// collect adds a row for each webhook that wants ev, within its queue's
// bound.
func (s *Service) collect(ctx context.Context, tx *sqlx.Tx, hooks []*Webhook, ev event, rows *[]queueRow) error {
	var body []byte
	ev.members = &botSet{}
	for _, h := range hooks {
		if !h.hears(ev.kind) || h.ChatID != 0 && h.ChatID != ev.chatID {
			continue
		}
		if h.BotID != 0 {
			ok, err := s.botConcerned(ctx, tx, h, ev)
			if err != nil {
				return err
			}
			if !ok {
				continue
			}
		}
		s.mu.Lock()
		full := s.pending[h.ID] >= s.opts.MaxQueue
		if full {
			s.dropped++
		} else {
			s.pending[h.ID]++
		}
		s.mu.Unlock()
		if full {
			s.log.Warn("webhook queue full: event dropped", "webhook", h.ID, "event", ev.kind)
			continue
		}
		if body == nil {
			var err error
			if body, err = s.encode(ev.data); err != nil {
				return err
			}
		}
		*rows = append(*rows, queueRow{webhook: h.ID, chain: ev.chain, kind: ev.kind, data: string(body)})
	}
	return nil
}

// insertChunk bounds the rows of one insert (6 parameters each, under
// SQLite's 999).
const insertChunk = 100

// insert writes rows, in order, with multi-row inserts.
func (s *Service) insert(ctx context.Context, tx *sqlx.Tx, rows []queueRow) error {
	if len(rows) == 0 {
		return nil
	}
	now := time.Now().UnixMicro()
	for len(rows) > 0 {
		n := min(len(rows), insertChunk)
		q := make([]byte, 0, 120+n*24)
		q = append(q, "INSERT INTO webhook_queue (webhook_id, chain, kind, data, attempts, next_at, created_at) VALUES "...)
		args := make([]any, 0, n*6)
		for i, r := range rows[:n] {
			if i > 0 {
				q = append(q, ", "...)
			}
			q = append(q, "(?, ?, ?, ?, 0, ?, ?)"...)
			args = append(args, r.webhook, r.chain, r.kind, r.data, now, now)
		}
		if _, err := tx.ExecContext(ctx, tx.Rebind(string(q)), args...); err != nil {
			return fmt.Errorf("webhook: queue %d events: %w", n, err)
		}
		rows = rows[n:]
	}
	s.Wake()
	return nil
}

// botConcerned reports whether a bot's webhook gets ev: never its own
// doings; an event for one bot (its keyboard, its notification) only that
// bot; else a personal event addressed to it, or a chat it is a member of.
func (s *Service) botConcerned(ctx context.Context, q sqlx.QueryerContext, h *Webhook, ev event) (bool, error) {
	bot := h.BotID
	if h.Format == FormatBitrix && (ev.kind == CommandReceived || ev.kind == KeyboardPressed) && ev.author != bot {
		// Bitrix24 bots hear only the commands they registered.
		var cmds string
		if err := sqlx.GetContext(ctx, q, &cmds, sqlx.Rebind(bindOf(s.pg), `SELECT commands FROM bots WHERE user_id = ?`), bot); err != nil {
			return false, fmt.Errorf("webhook: commands of bot %d: %w", bot, err)
		}
		name, _ := ev.data["command"].(string)
		if !slices.Contains(strings.Fields(cmds), strings.TrimPrefix(name, "/")) {
			return false, nil
		}
	}
	switch {
	case ev.author == bot:
		return false, nil
	case ev.owner != 0 || ev.kind == NotificationAction:
		return ev.owner == bot, nil
	case ev.chatID == 0:
		return ev.peer == bot, nil
	}
	if !ev.members.loaded {
		// The chat's bots, read once per event (every bot webhook asks).
		if err := sqlx.SelectContext(ctx, q, &ev.members.ids, sqlx.Rebind(bindOf(s.pg), `SELECT m.user_id FROM chat_members m
			JOIN bots b ON b.user_id = m.user_id WHERE m.chat_id = ?`), ev.chatID); err != nil {
			return false, fmt.Errorf("webhook: bots in chat %d: %w", ev.chatID, err)
		}
		ev.members.loaded = true
	}
	return slices.Contains(ev.members.ids, bot), nil
}

func bindOf(pg bool) int {
	if pg {
		return sqlx.DOLLAR
	}
	return sqlx.QUESTION
}

// encode is an event's data as JSON, its message text cut when the whole
// would pass MaxBody.
func (s *Service) encode(data map[string]any) ([]byte, error) {
	b, err := json.Marshal(data)
	if err != nil || len(b) <= s.opts.MaxBody {
		return b, err
	}
	if m, ok := data["message"].(map[string]any); ok {
		c := make(map[string]any, len(m))
		for k, v := range m {
			c[k] = v
		}
		c["text"], c["truncated"] = "", true
		d := make(map[string]any, len(data))
		for k, v := range data {
			d[k] = v
		}
		d["message"] = c
		if d["params"] != nil {
			d["params"] = ""
		}
		return json.Marshal(d)
	}
	return b, nil
}

// messageJSON is a message as events carry it (the REST API's shape:
// portal user ids).
func (s *Service) messageJSON(ctx context.Context, q sqlx.QueryerContext, m *mam.Message) (map[string]any, error) {
	out := map[string]any{"id": m.ID, "kind": m.Kind, "text": m.Body, "created_at": m.CreatedAt.UTC().Format(time.RFC3339Nano),
		"edited": m.EditedAt != nil, "deleted": m.Deleted, "system": m.Kind == mam.KindSystem, "from_user_id": nil}
	if m.FromID != 0 {
		ext, err := s.extID(ctx, q, m.FromID)
		if err != nil {
			return nil, err
		}
		out["from_user_id"] = ext
	}
	if m.ChatID != 0 {
		out["chat_id"] = m.ChatID
	}
	if m.ToID != 0 {
		ext, err := s.extID(ctx, q, m.ToID)
		if err != nil {
			return nil, err
		}
		out["to_user_id"] = ext
	}
	if m.ReplyTo != 0 {
		out["reply_to"] = m.ReplyTo
	}
	if m.Deleted {
		out["text"] = ""
	}
	return out, nil
}

// extID is a user's portal id (it never changes, so it is cached); ""
// for an id that is no user.
func (s *Service) extID(ctx context.Context, q sqlx.QueryerContext, id int64) (string, error) {
	s.mu.Lock()
	ext, ok := s.extIDs[id]
	s.mu.Unlock()
	if ok {
		return ext, nil
	}
	err := sqlx.GetContext(ctx, q, &ext, sqlx.Rebind(bindOf(s.pg), `SELECT ext_id FROM users WHERE id = ?`), id)
	if errors.Is(err, sql.ErrNoRows) {
		// Not a user (an id from elsewhere): no portal id, and the
		// event still goes out; an event never fails a message.
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("webhook: portal id of user %d: %w", id, err)
	}
	s.mu.Lock()
	if len(s.extIDs) > 100000 {
		clear(s.extIDs)
	}
	s.extIDs[id] = ext
	s.mu.Unlock()
	return ext, nil
}
