package xmppcore

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"vestnik/xmppcore/mam"
	"vestnik/xmppcore/rich"
)

// Rich messages: text with BB-codes, an attachment and a keyboard
// (package rich) travel as one <rich xmlns='urn:vestnik:rich:0'/> payload
// element of the message, kept by the archive with the message. The rule
// is one for every door and lives here: NormalizeRich validates the
// element of any message before it is archived (a Jabber client or a bot
// may send one too) and makes the body its plain-text fallback, so every
// Jabber client reads something sensible. Doors build the element with
// RichMessage.

// NSRich is the namespace of the rich payload element.
const NSRich = rich.NS

// ErrRich wraps a refused rich content; errors.As finds the
// *rich.FieldError naming the field.
var ErrRich = fmt.Errorf("%w: rich content", mam.ErrInvalid)

func richErr(err error) error { return fmt.Errorf("%w: %w", ErrRich, err) }

// RichMessage returns the body and the payload element of a message with
// content c: for content with nothing but plain text, the text and no
// element; otherwise the plain-text fallback and the element.
func RichMessage(c *rich.Content) (string, *Element, error) {
	if c.Empty() {
		return c.Text, nil, nil
	}
	if err := c.Validate(); err != nil {
		return "", nil, richErr(err)
	}
	el := NewElement(NSRich, "rich")
	el.Text = c.Encode()
	return c.Fallback(), el, nil
}

// RichOf returns the rich content of an archived message's payload, or
// nil when it has none (or it cannot be read).
func RichOf(payload string) *rich.Content {
	if !strings.Contains(payload, NSRich) {
		return nil
	}
	kids, err := ParseFragment(payload)
	if err != nil {
		return nil
	}
	return RichOfElements(kids)
}

// RichOfElements returns the rich content among a message's children.
func RichOfElements(kids []*Element) *rich.Content {
	for _, k := range kids {
		if k.Name.Space == NSRich && k.Name.Local == "rich" {
			if c, err := rich.Decode(k.Text); err == nil {
				return c
			}
		}
	}
	return nil
}

// NormalizeRich applies the rule to a message's children before it is
// archived: at most one rich element, valid, re-encoded; the body becomes
// its fallback. A body with BB-codes and no rich element gets one holding
// its text. ok is false when nothing changed.
func NormalizeRich(kids []*Element) (body string, out []*Element, ok bool, err error) {
	var found *Element
	out = kids[:0:0]
	for _, k := range kids {
		if k.Name.Space == NSRich {
			if found != nil || k.Name.Local != "rich" {
				return "", kids, true, richErr(errors.New("one <rich/> element per message"))
			}
			found = k
			continue
		}
		out = append(out, k)
	}
	if found == nil {
		// BB-codes typed as a plain body (a browser, a Jabber client):
		// the same rule as a door's rich message — the text is kept in
		// the element, the body becomes its plain fallback. XEP-0393
		// styling (*bold*) is not BB-code: Jabber clients render it.
		for _, k := range kids {
			if k.Name.Space == NSClient && k.Name.Local == "body" && rich.HasBBCode(k.Text) {
				body, el, err := RichMessage(&rich.Content{Text: k.Text})
				if err != nil || el == nil {
					break // too long for a rich element: kept as typed
				}
				return body, append(out, el), true, nil
			}
		}
		return "", kids, false, nil
	}
	if len(found.Text) > rich.MaxSize*2 {
		return "", kids, true, richErr(&rich.FieldError{Field: "attach", Code: "attach_too_large", Message: "too large"})
	}
	c, err := rich.Decode(found.Text)
	if err != nil {
		return "", kids, true, richErr(err)
	}
	body, el, err := RichMessage(c)
	if err != nil {
		return "", kids, true, err
	}
	if el != nil {
		out = append(out, el)
	}
	return body, out, true, nil
}

// NormalizeRichPayload is NormalizeRich over a serialized payload (the
// chat service's form); body is returned unchanged when the payload has
// no rich element.
func NormalizeRichPayload(body, payload string) (string, string, error) {
	if !strings.Contains(payload, NSRich) {
		if !rich.HasBBCode(body) {
			return body, payload, nil
		}
		nb, el, err := RichMessage(&rich.Content{Text: body})
		if err != nil || el == nil {
			return body, payload, nil // too long for a rich element: kept as typed
		}
		return nb, string(el.AppendXML([]byte(payload), NSClient)), nil
	}
	kids, err := ParseFragment(payload)
	if err != nil {
		return body, payload, err
	}
	nb, kids, ok, err := NormalizeRich(kids)
	if err != nil || !ok {
		return body, payload, err
	}
	var b []byte
	for _, k := range kids {
		b = k.AppendXML(b, NSClient)
	}
	return nb, string(b), nil
}

// KeyboardPress is a user pressing a command button of a message's
// keyboard: the core event integrations hear about (webhooks publish it
// as keyboard.pressed, bots answer it).
type KeyboardPress struct {
	MessageID int64 // archive id of the message with the keyboard
	ChatID    int64 // its chat (0 for a personal message)
	AuthorID  int64 // who sent the message (0: system)
	ToID      int64 // the other party of a personal message
	UserID    int64 // who pressed
	Button    int   // index of the button in the keyboard
	Text      string
	Command   string
	Params    string // the button's command_params
	At        time.Time
}

// Keyboard errors, all mam.ErrInvalid.
var (
	ErrNoButton = fmt.Errorf("%w: no such button", mam.ErrInvalid)
	ErrDisabled = fmt.Errorf("%w: the button is disabled or has no command", mam.ErrInvalid)
)

// OnKeyboardPress adds a hook told of every keyboard press on this node,
// after the press was checked. Hooks run on the pressing goroutine and
// must not block (queue the work).
func (s *Server) OnKeyboardPress(f func(ctx context.Context, p KeyboardPress)) {
	s.extMu.Lock()
	defer s.extMu.Unlock()
	s.keyboardHooks = append(s.keyboardHooks, f)
}

// PressButton is the core operation for a press on button (its index in
// the keyboard) of message id by user: the user must be able to read the
// message (mam's access rule; else mam.ErrNotFound), the button must
// exist and carry a command (link and client-action buttons are handled
// by the client). The press is then told to the OnKeyboardPress hooks.
func (s *Server) PressButton(ctx context.Context, user, id int64, button int) (*KeyboardPress, error) {
	if s.msgs == nil {
		return nil, ErrChangesUnavailable
	}
	m, err := s.msgs.Resolve(ctx, user, mam.Ref{ID: id})
	if err != nil {
		return nil, err
	}
	if m.Deleted {
		return nil, mam.ErrRetracted
	}
	c := RichOf(m.Payload)
	if c == nil || button < 0 || button >= len(c.Keyboard) {
		return nil, ErrNoButton
	}
	b := c.Keyboard[button]
	if !b.Pressable() {
		return nil, ErrDisabled
	}
	p := KeyboardPress{MessageID: m.ID, ChatID: m.ChatID, AuthorID: m.FromID, ToID: m.ToID, UserID: user,
		Button: button, Text: b.Text, Command: b.Command, Params: b.CommandParams, At: time.Now()}
	s.extMu.RLock()
	hooks := s.keyboardHooks
	s.extMu.RUnlock()
	for _, h := range hooks {
		h(ctx, p)
	}
	s.log.Debug("keyboard pressed", "message", strconv.FormatInt(m.ID, 10), "user", user, "button", button)
	return &p, nil
}

// EditRichMessage edits a message's text and rich content together (the
// rule of EditMessage: its author, within the edit window): f gets the
// current content (the text alone for a plain message) and returns the
// new one, which is validated like a new message's. Everyone who has the
// message is told, with the new rich element.
func (s *Server) EditRichMessage(ctx context.Context, r ChangeRequest, f func(old *rich.Content) *rich.Content) (*mam.Message, error) {
	return s.editRich(ctx, r, f, false)
}

// editRich: plainStaysPlain keeps a message without rich content plain
// (EditMessage: a Jabber client's correction is text as typed).
func (s *Server) editRich(ctx context.Context, r ChangeRequest, f func(old *rich.Content) *rich.Content, plainStaysPlain bool) (*mam.Message, error) {
	m, err := s.resolveChange(ctx, r)
	if err != nil {
		return nil, err
	}
	m, err = s.msgs.EditWith(ctx, r.User, m.ID, func(m *mam.Message) error {
		kids, err := ParseFragment(m.Payload)
		if err != nil {
			return err
		}
		old := RichOfElements(kids)
		if old == nil {
			if plainStaysPlain {
				m.Body = f(&rich.Content{Text: m.Body}).Text
				return nil
			}
			old = &rich.Content{Text: m.Body}
		}
		body, el, err := RichMessage(f(old))
		if err != nil {
			return err
		}
		var b []byte
		for _, k := range kids {
			if k.Name.Space != NSRich {
				b = k.AppendXML(b, NSClient)
			}
		}
		if el != nil {
			b = el.AppendXML(b, NSClient)
		}
		m.Body, m.Payload = body, string(b)
		return nil
	})
	if err != nil {
		return nil, err
	}
	s.tellChange(ctx, &MessageChange{Op: ChangeEdit, Message: m, Actor: r.User, ClientID: r.ClientID}, r.Via)
	return m, nil
}
