package roster

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jmoiron/sqlx"
)

// Bots are accounts an integration makes (POST /api/v1/bots, Bitrix24's
// imbot.register): a user with the portal id "bot_<code>" and the login
// "bot-<code>", active, in no department, with a row in bots. HR imports
// leave them alone. A bot acts through a REST token bound to it and hears
// about its chats through its webhook (package webhook).

// BotExtPrefix starts the portal id of every bot.
const BotExtPrefix = "bot_"

// MaxBotCommands bounds the commands one bot registers.
const MaxBotCommands = 100

var botCode = regexp.MustCompile(`^[a-z0-9][a-z0-9_]{0,63}$`)

var botCommand = regexp.MustCompile(`^[\p{L}][\p{L}\p{N}_-]{0,63}$`)

// ErrBotExists: a bot with that code exists.
var ErrBotExists = errors.New("roster: a bot with this code exists")

// BotError is a bot refused for a field.
type BotError struct{ Field, Message string }

func (e *BotError) Error() string { return "roster: bot: " + e.Field + ": " + e.Message }

// Bot is a bot account.
type Bot struct {
	UserID   int64
	Code     string
	ExtID    string
	Login    string
	Name     string
	Commands []string
}

// CreateBot makes a bot account: code (lower-case letters, digits, '_';
// Bitrix24's CODE lower-cased) and a display name.
func (s *Store) CreateBot(ctx context.Context, code, name string) (*Bot, error) {
	code = strings.ToLower(strings.TrimSpace(code))
	if !botCode.MatchString(code) {
		return nil, &BotError{"code", "must be 1 to 64 lower-case letters, digits or '_', starting with a letter or digit"}
	}
	name = strings.TrimSpace(name)
	if name == "" || len(name) > 255 || !utf8.ValidString(name) {
		return nil, &BotError{"name", "must be 1 to 255 bytes of text"}
	}
	b := &Bot{Code: code, ExtID: BotExtPrefix + code, Login: "bot-" + strings.ReplaceAll(code, "_", "-"), Name: name}
	now := time.Now().UnixMicro()
	err := s.withTx(ctx, func(tx *sqlx.Tx) error {
		var n int
		if err := tx.GetContext(ctx, &n, tx.Rebind(`SELECT COUNT(*) FROM users WHERE ext_id = ? OR login = ?`), b.ExtID, b.Login); err != nil {
			return err
		}
		if n > 0 {
			return ErrBotExists
		}
		if err := tx.GetContext(ctx, &b.UserID, tx.Rebind(`INSERT INTO users (ext_id, login, name, email, title, active, created_at, updated_at)
			VALUES (?, ?, ?, '', 'Bot', TRUE, ?, ?) RETURNING id`), b.ExtID, b.Login, b.Name, now, now); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, tx.Rebind(`INSERT INTO bots (user_id, code, commands, created_at) VALUES (?, ?, '', ?)`), b.UserID, code, now)
		return err
	})
	if err != nil {
		if errors.Is(err, ErrBotExists) {
			return nil, err
		}
		return nil, fmt.Errorf("roster: create bot %q: %w", code, err)
	}
	return b, nil
}

type botRow struct {
	UserID   int64  `db:"user_id"`
	Code     string `db:"code"`
	Commands string `db:"commands"`
	ExtID    string `db:"ext_id"`
	Login    string `db:"login"`
	Name     string `db:"name"`
	Active   bool   `db:"active"`
}

// BotByUserID returns an active bot; ErrNotFound for a user who is not
// one (or a bot that was removed).
func (s *Store) BotByUserID(ctx context.Context, userID int64) (*Bot, error) {
	var r botRow
	err := s.db.GetContext(ctx, &r, s.db.Rebind(`SELECT b.user_id, b.code, b.commands, u.ext_id, u.login, u.name, u.active
		FROM bots b JOIN users u ON u.id = b.user_id WHERE b.user_id = ?`), userID)
	if errors.Is(err, sql.ErrNoRows) || err == nil && !r.Active {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("roster: bot %d: %w", userID, err)
	}
	return &Bot{UserID: r.UserID, Code: r.Code, ExtID: r.ExtID, Login: r.Login, Name: r.Name, Commands: strings.Fields(r.Commands)}, nil
}

// AddBotCommand registers a command ("echo", without the slash) of a bot.
func (s *Store) AddBotCommand(ctx context.Context, userID int64, command string) error {
	command = strings.TrimPrefix(strings.TrimSpace(command), "/")
	if !botCommand.MatchString(command) {
		return &BotError{"command", "must be a word of letters, digits, '_' or '-', starting with a letter"}
	}
	b, err := s.BotByUserID(ctx, userID)
	if err != nil {
		return err
	}
	if slices.Contains(b.Commands, command) {
		return nil
	}
	if len(b.Commands) >= MaxBotCommands {
		return &BotError{"command", fmt.Sprintf("a bot has at most %d commands", MaxBotCommands)}
	}
	_, err = s.db.ExecContext(ctx, s.db.Rebind(`UPDATE bots SET commands = ? WHERE user_id = ?`), strings.Join(append(b.Commands, command), " "), userID)
	if err != nil {
		return fmt.Errorf("roster: bot %d command: %w", userID, err)
	}
	return nil
}

// DeleteBot deactivates a bot (its history stays, as an employee's does),
// revokes its tokens, and forgets its code so that it can be made again.
func (s *Store) DeleteBot(ctx context.Context, userID int64) error {
	b, err := s.BotByUserID(ctx, userID)
	if err != nil {
		return err
	}
	now := time.Now().UnixMicro()
	gone := fmt.Sprintf("%s.deleted.%d", b.ExtID, now)
	err = s.withTx(ctx, func(tx *sqlx.Tx) error {
		if _, err := tx.ExecContext(ctx, tx.Rebind(`UPDATE users SET active = FALSE, ext_id = ?, login = ?, updated_at = ? WHERE id = ?`),
			gone, gone, now, userID); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, tx.Rebind(`UPDATE bots SET code = ? WHERE user_id = ?`), gone, userID); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, tx.Rebind(`UPDATE api_tokens SET revoked_at = ? WHERE as_user = ? AND revoked_at IS NULL`), now, userID); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, tx.Rebind(`INSERT INTO events (kind, user_id, created_at) VALUES (?, ?, ?)`), EventDeactivated, userID, now)
		return err
	})
	if err != nil {
		return fmt.Errorf("roster: delete bot %d: %w", userID, err)
	}
	return nil
}
