package xmppcore

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"vestnik/xmppcore/mam"
)

// Keyboard presses. A message may carry keyboard buttons (Bitrix24's
// KEYBOARD); pressing one is one core operation, PressKey, reached from
// the bridge and REST (POST /api/v1/messages/{id}/keyboard), which tells
// Options.OnKeyboardPressed (the outgoing event keyboard.pressed to the
// author's bot webhook). The press is not a message: nothing is archived.

// Keyboard press limits.
const (
	MaxKeyValue  = 255
	MaxKeyParams = 4096
)

// KeyPress is one press of a keyboard button.
type KeyPress struct {
	MessageID int64
	ChatID    int64 // the message's chat; 0: a personal message
	Peer      int64 // a personal message: the other party of the presser
	Owner     int64 // the message's author (whose keyboard it is)
	UserID    int64 // who pressed
	Value     string
	Params    string
}

// ErrInvalidKey is a press with an empty or oversized value or params.
var ErrInvalidKey = errors.New("xmppcore: a key press needs a value of 1 to 255 bytes and params of at most 4 KiB")

// PressKey records that userID pressed the button value (with params) of
// message id, which they must be able to read: ErrNotFound otherwise.
func (s *Server) PressKey(ctx context.Context, userID, id int64, value, params string) (*KeyPress, error) {
	if strings.TrimSpace(value) == "" || len(value) > MaxKeyValue || len(params) > MaxKeyParams ||
		!utf8.ValidString(value) || !utf8.ValidString(params) {
		return nil, ErrInvalidKey
	}
	if s.msgs == nil {
		return nil, errors.New("xmppcore: press key: no archive")
	}
	m, err := s.msgs.GetFor(ctx, userID, id)
	if errors.Is(err, mam.ErrNotFound) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("xmppcore: press key on %d: %w", id, err)
	}
	if m.Deleted || m.Kind == mam.KindHeadline {
		return nil, ErrNotFound
	}
	p := &KeyPress{MessageID: m.ID, ChatID: m.ChatID, Owner: m.FromID, UserID: userID, Value: value, Params: params}
	if m.ChatID == 0 {
		p.Peer = m.FromID
		if p.Peer == userID {
			p.Peer = m.ToID
		}
	}
	if f := s.opts.OnKeyboardPressed; f != nil {
		f(context.WithoutCancel(ctx), *p)
	}
	return p, nil
}
