// Package rich is the model of a rich message: text with BB-codes, an
// attachment of blocks (text, link, image, file, grid, delimiter, user)
// and a keyboard of buttons, in the shapes Bitrix24's im API uses. It
// validates them (one rule for every door), bounds their size, turns them
// into a readable plain-text fallback for clients that know nothing of
// them (Jabber clients read the message body), and encodes them as one
// namespaced payload element of the message (<rich
// xmlns='urn:vestnik:rich:0'>JSON</rich>), which the archive keeps with
// the message.
//
// The package is a leaf: it imports nothing of Vestnik's.
package rich

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"
)

// NS is the namespace of the payload element.
const NS = "urn:vestnik:rich:0"

// Limits.
const (
	MaxSize      = 32 << 10 // bytes of the encoded content (text, attachment and keyboard)
	MaxBlocks    = 50       // blocks of an attachment
	MaxItems     = 50       // images, files or grid items of one block
	MaxButtons   = 40       // buttons of a keyboard (new lines included)
	MaxText      = 4096     // bytes of a text field (a message block, a grid value)
	MaxName      = 512      // bytes of a name, a description or a button's text
	MaxURL       = 2048     // bytes of a URL
	MaxDimension = 10000    // pixels of a width, height or delimiter size
)

// ErrInvalid is wrapped by every validation error.
var ErrInvalid = errors.New("rich: invalid")

// FieldError names what is wrong and where, for a clear 400: Field is a
// path such as "attach.blocks[2].link.link", Code a snake_case code.
type FieldError struct {
	Field, Code, Message string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Message }

// Unwrap makes every FieldError an ErrInvalid.
func (e *FieldError) Unwrap() error { return ErrInvalid }

func fieldErr(field, code, format string, a ...any) error {
	return &FieldError{Field: field, Code: code, Message: fmt.Sprintf(format, a...)}
}

// Content is what a rich message carries besides its plain body.
type Content struct {
	// Text is the message text as written, BB-codes included.
	Text     string   `json:"text,omitempty"`
	Attach   *Attach  `json:"attach,omitempty"`
	Keyboard []Button `json:"keyboard,omitempty"`
}

// Attach is an attachment: an optional accent color and its blocks, in
// order.
type Attach struct {
	Color  string  `json:"color,omitempty"`
	Blocks []Block `json:"blocks"`
}

// Block is one block of an attachment; exactly one field is set.
type Block struct {
	Message   string     `json:"message,omitempty"`
	Link      *Link      `json:"link,omitempty"`
	Image     Images     `json:"image,omitempty"`
	File      Files      `json:"file,omitempty"`
	Grid      []GridItem `json:"grid,omitempty"`
	Delimiter *Delimiter `json:"delimiter,omitempty"`
	User      *User      `json:"user,omitempty"`
}

// Link is a link block: a name, a description, a URL and a preview image.
type Link struct {
	Name    string `json:"name,omitempty"`
	Desc    string `json:"desc,omitempty"`
	Link    string `json:"link,omitempty"`
	Preview string `json:"preview,omitempty"`
	UserID  Num    `json:"user_id,omitempty"`
	ChatID  Num    `json:"chat_id,omitempty"`
}

// Image is one image of an image block.
type Image struct {
	Name    string `json:"name,omitempty"`
	Link    string `json:"link"`
	Preview string `json:"preview,omitempty"`
	Width   Num    `json:"width,omitempty"`
	Height  Num    `json:"height,omitempty"`
}

// File is one file of a file block.
type File struct {
	Name string `json:"name,omitempty"`
	Link string `json:"link"`
	Size Num    `json:"size,omitempty"`
}

// GridItem is one name–value pair of a grid block.
type GridItem struct {
	Display string `json:"display,omitempty"` // BLOCK, LINE, ROW, TABLE (default BLOCK)
	Name    string `json:"name,omitempty"`
	Value   string `json:"value,omitempty"`
	Width   Num    `json:"width,omitempty"`
	Color   string `json:"color,omitempty"`
	Link    string `json:"link,omitempty"`
	UserID  Num    `json:"user_id,omitempty"`
	ChatID  Num    `json:"chat_id,omitempty"`
}

// Delimiter is a separating line.
type Delimiter struct {
	Size  Num    `json:"size,omitempty"`
	Color string `json:"color,omitempty"`
}

// User is a user block: a name, an avatar and a link (or a user or chat
// of this server).
type User struct {
	Name   string `json:"name"`
	Avatar string `json:"avatar,omitempty"`
	Link   string `json:"link,omitempty"`
	UserID Num    `json:"user_id,omitempty"`
	ChatID Num    `json:"chat_id,omitempty"`
}

// Button is one keyboard button, or a line break (Type NEWLINE). A button
// has a text and one action: a link to open, a command for the
// integration (pressing it is a core event, see xmppcore.KeyboardPress),
// or a client action (PUT, SEND, COPY, CALL, DIALOG with ActionValue).
type Button struct {
	Type          string `json:"type,omitempty"` // NEWLINE
	Text          string `json:"text,omitempty"`
	Link          string `json:"link,omitempty"`
	Command       string `json:"command,omitempty"`
	CommandParams string `json:"command_params,omitempty"`
	Action        string `json:"action,omitempty"`
	ActionValue   string `json:"action_value,omitempty"`
	BgColor       string `json:"bg_color,omitempty"`
	TextColor     string `json:"text_color,omitempty"`
	Display       string `json:"display,omitempty"` // LINE (default) or BLOCK
	Width         Num    `json:"width,omitempty"`
	Disabled      Flag   `json:"disabled,omitempty"`
	Block         Flag   `json:"block,omitempty"`
}

// IsNewline reports whether b is a line break, not a button.
func (b *Button) IsNewline() bool { return strings.EqualFold(b.Type, "NEWLINE") }

// Pressable reports whether pressing b is an event for the server (a
// command button that is not disabled).
func (b *Button) Pressable() bool { return !b.IsNewline() && b.Command != "" && !bool(b.Disabled) }

// Num is a number that also decodes from a string ("200"), as
// form-encoded integrations send it.
type Num int64

// UnmarshalJSON accepts a number, a numeric string or "".
func (n *Num) UnmarshalJSON(b []byte) error {
	s := strings.TrimSpace(string(b))
	if s == "null" {
		*n = 0
		return nil
	}
	if strings.HasPrefix(s, `"`) {
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		s = strings.TrimSpace(s)
		if s == "" {
			*n = 0
			return nil
		}
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		f, ferr := strconv.ParseFloat(s, 64)
		if ferr != nil {
			return fmt.Errorf("not a number: %s", s)
		}
		v = int64(f)
	}
	*n = Num(v)
	return nil
}

// Flag is a boolean that also decodes from "Y"/"N" (Bitrix24's form).
type Flag bool

// UnmarshalJSON accepts true/false, "Y"/"N", "true"/"false", "1"/"0".
func (f *Flag) UnmarshalJSON(b []byte) error {
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	switch x := v.(type) {
	case nil:
		*f = false
	case bool:
		*f = Flag(x)
	case float64:
		*f = x != 0
	case string:
		switch strings.ToUpper(strings.TrimSpace(x)) {
		case "Y", "TRUE", "1":
			*f = true
		case "N", "FALSE", "0", "":
			*f = false
		default:
			return fmt.Errorf("not Y or N: %q", x)
		}
	default:
		return fmt.Errorf("not Y or N")
	}
	return nil
}

// Images is a list of images that also decodes from one object.
type Images []Image

// UnmarshalJSON accepts an object or an array of objects.
func (l *Images) UnmarshalJSON(b []byte) error { return oneOrMany(b, (*[]Image)(l)) }

// Files is a list of files that also decodes from one object.
type Files []File

// UnmarshalJSON accepts an object or an array of objects.
func (l *Files) UnmarshalJSON(b []byte) error { return oneOrMany(b, (*[]File)(l)) }

func oneOrMany[T any](b []byte, out *[]T) error {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '{' {
		var one T
		if err := json.Unmarshal(b, &one); err != nil {
			return err
		}
		*out = []T{one}
		return nil
	}
	return json.Unmarshal(b, out)
}

// Empty reports whether c carries nothing a plain body would not: no
// attachment, no keyboard, and text without BB-codes.
func (c *Content) Empty() bool {
	return c == nil || (c.Attach == nil || len(c.Attach.Blocks) == 0) && len(c.Keyboard) == 0 && !HasBBCode(c.Text)
}

// Validate applies the rules: sizes, one kind per block, URLs only
// http(s) (and mailto for links), colors as #rgb or #rrggbb, known
// display values and actions. It returns a *FieldError.
func (c *Content) Validate() error {
	if !utf8.ValidString(c.Text) {
		return fieldErr("message", "invalid_text", "must be UTF-8 text")
	}
	if c.Attach != nil {
		if err := c.Attach.validate("attach"); err != nil {
			return err
		}
	}
	if len(c.Keyboard) > MaxButtons {
		return fieldErr("keyboard", "too_many_buttons", "at most %d buttons", MaxButtons)
	}
	for i := range c.Keyboard {
		if err := c.Keyboard[i].validate(fmt.Sprintf("keyboard[%d]", i)); err != nil {
			return err
		}
	}
	if c.Attach != nil && len(c.Attach.Blocks) == 0 && len(c.Keyboard) == 0 && strings.TrimSpace(c.Text) == "" {
		return fieldErr("attach", "empty_attach", "an attachment needs at least one block")
	}
	b, err := json.Marshal(c)
	if err != nil {
		return fieldErr("attach", "invalid_attach", "cannot be encoded")
	}
	if len(b) > MaxSize {
		return fieldErr("attach", "attach_too_large", "text, attachment and keyboard together must be at most %d bytes", MaxSize)
	}
	return nil
}

func (a *Attach) validate(f string) error {
	if err := checkColor(f+".color", a.Color); err != nil {
		return err
	}
	if len(a.Blocks) > MaxBlocks {
		return fieldErr(f+".blocks", "too_many_blocks", "at most %d blocks", MaxBlocks)
	}
	for i := range a.Blocks {
		if err := a.Blocks[i].validate(fmt.Sprintf("%s.blocks[%d]", f, i)); err != nil {
			return err
		}
	}
	return nil
}

func (b *Block) validate(f string) error {
	n := 0
	if b.Message != "" {
		n++
	}
	for _, set := range []bool{b.Link != nil, b.Image != nil, b.File != nil, b.Grid != nil, b.Delimiter != nil, b.User != nil} {
		if set {
			n++
		}
	}
	if n != 1 {
		return fieldErr(f, "invalid_block", "a block has exactly one of message, link, image, file, grid, delimiter, user")
	}
	switch {
	case b.Message != "":
		return checkText(f+".message", b.Message, MaxText)
	case b.Link != nil:
		l := b.Link
		if l.Link == "" && l.UserID == 0 && l.ChatID == 0 {
			return fieldErr(f+".link.link", "missing_link", "a link block needs a link (or a user_id or chat_id)")
		}
		return first(checkText(f+".link.name", l.Name, MaxName), checkText(f+".link.desc", l.Desc, MaxText),
			checkURL(f+".link.link", l.Link, true), checkURL(f+".link.preview", l.Preview, false), checkID(f+".link", l.UserID, l.ChatID))
	case b.Image != nil:
		if len(b.Image) == 0 || len(b.Image) > MaxItems {
			return fieldErr(f+".image", "invalid_image", "between 1 and %d images", MaxItems)
		}
		for i, im := range b.Image {
			g := fmt.Sprintf("%s.image[%d]", f, i)
			if im.Link == "" {
				return fieldErr(g+".link", "missing_link", "an image needs a link")
			}
			if err := first(checkText(g+".name", im.Name, MaxName), checkURL(g+".link", im.Link, false),
				checkURL(g+".preview", im.Preview, false), checkDim(g+".width", im.Width), checkDim(g+".height", im.Height)); err != nil {
				return err
			}
		}
	case b.File != nil:
		if len(b.File) == 0 || len(b.File) > MaxItems {
			return fieldErr(f+".file", "invalid_file", "between 1 and %d files", MaxItems)
		}
		for i, fl := range b.File {
			g := fmt.Sprintf("%s.file[%d]", f, i)
			if fl.Link == "" {
				return fieldErr(g+".link", "missing_link", "a file needs a link")
			}
			if fl.Size < 0 {
				return fieldErr(g+".size", "invalid_size", "must not be negative")
			}
			if err := first(checkText(g+".name", fl.Name, MaxName), checkURL(g+".link", fl.Link, false)); err != nil {
				return err
			}
		}
	case b.Grid != nil:
		if len(b.Grid) == 0 || len(b.Grid) > MaxItems {
			return fieldErr(f+".grid", "invalid_grid", "between 1 and %d items", MaxItems)
		}
		for i, it := range b.Grid {
			g := fmt.Sprintf("%s.grid[%d]", f, i)
			switch strings.ToUpper(it.Display) {
			case "", "BLOCK", "LINE", "ROW", "TABLE":
			default:
				return fieldErr(g+".display", "invalid_display", "must be BLOCK, LINE, ROW or TABLE")
			}
			if err := first(checkText(g+".name", it.Name, MaxName), checkText(g+".value", it.Value, MaxText),
				checkDim(g+".width", it.Width), checkColor(g+".color", it.Color), checkURL(g+".link", it.Link, true),
				checkID(g, it.UserID, it.ChatID)); err != nil {
				return err
			}
		}
	case b.Delimiter != nil:
		return first(checkDim(f+".delimiter.size", b.Delimiter.Size), checkColor(f+".delimiter.color", b.Delimiter.Color))
	case b.User != nil:
		u := b.User
		if strings.TrimSpace(u.Name) == "" {
			return fieldErr(f+".user.name", "missing_name", "a user block needs a name")
		}
		return first(checkText(f+".user.name", u.Name, MaxName), checkURL(f+".user.avatar", u.Avatar, false),
			checkURL(f+".user.link", u.Link, true), checkID(f+".user", u.UserID, u.ChatID))
	}
	return nil
}

var buttonActions = map[string]bool{"PUT": true, "SEND": true, "COPY": true, "CALL": true, "DIALOG": true}

func (b *Button) validate(f string) error {
	if b.Type != "" && !b.IsNewline() {
		return fieldErr(f+".type", "invalid_type", "the only type is NEWLINE")
	}
	if b.IsNewline() {
		return nil
	}
	if strings.TrimSpace(b.Text) == "" {
		return fieldErr(f+".text", "missing_text", "a button needs a text")
	}
	n := 0
	for _, s := range []string{b.Link, b.Command, b.Action} {
		if s != "" {
			n++
		}
	}
	if n != 1 {
		return fieldErr(f, "invalid_button", "a button has exactly one of link, command, action")
	}
	if b.Action != "" {
		if !buttonActions[strings.ToUpper(b.Action)] {
			return fieldErr(f+".action", "invalid_action", "must be PUT, SEND, COPY, CALL or DIALOG")
		}
		if b.ActionValue == "" {
			return fieldErr(f+".action_value", "missing_action_value", "an action needs a value")
		}
	}
	switch strings.ToUpper(b.Display) {
	case "", "LINE", "BLOCK":
	default:
		return fieldErr(f+".display", "invalid_display", "must be LINE or BLOCK")
	}
	if strings.ContainsAny(b.Command, " \t\r\n") {
		return fieldErr(f+".command", "invalid_command", "a command is one word")
	}
	return first(checkText(f+".text", b.Text, MaxName), checkURL(f+".link", b.Link, true),
		checkText(f+".command", b.Command, MaxName), checkText(f+".command_params", b.CommandParams, MaxText),
		checkText(f+".action_value", b.ActionValue, MaxText), checkColor(f+".bg_color", b.BgColor),
		checkColor(f+".text_color", b.TextColor), checkDim(f+".width", b.Width))
}

func checkText(f, s string, limit int) error {
	if len(s) > limit {
		return fieldErr(f, "too_long", "must be at most %d bytes", limit)
	}
	if !utf8.ValidString(s) {
		return fieldErr(f, "invalid_text", "must be UTF-8 text")
	}
	return nil
}

func checkDim(f string, n Num) error {
	if n < 0 || n > MaxDimension {
		return fieldErr(f, "invalid_size", "must be between 0 and %d", MaxDimension)
	}
	return nil
}

func checkID(f string, user, chat Num) error {
	if user < 0 || chat < 0 {
		return fieldErr(f, "invalid_id", "ids are positive")
	}
	return nil
}

var colorRE = regexp.MustCompile(`^#(?:[0-9a-fA-F]{3}|[0-9a-fA-F]{6})$`)

func checkColor(f, c string) error {
	if c != "" && !colorRE.MatchString(c) {
		return fieldErr(f, "invalid_color", "must be a color as #rgb or #rrggbb")
	}
	return nil
}

// SafeURL reports whether s is a URL a client may open: absolute http or
// https (and mailto when mailto is true), with no spaces or control
// characters.
func SafeURL(s string, mailto bool) bool {
	if s == "" || len(s) > MaxURL || strings.ContainsAny(s, " \t\r\n\x00\"<>\\`") {
		return false
	}
	u, err := url.Parse(s)
	if err != nil {
		return false
	}
	switch strings.ToLower(u.Scheme) {
	case "http", "https":
		return u.Host != ""
	case "mailto":
		return mailto && u.Opaque != ""
	}
	return false
}

func checkURL(f, s string, mailto bool) error {
	if s == "" {
		return nil
	}
	if len(s) > MaxURL {
		return fieldErr(f, "too_long", "must be at most %d bytes", MaxURL)
	}
	if !SafeURL(s, mailto) {
		if mailto {
			return fieldErr(f, "invalid_url", "must be an http, https or mailto URL")
		}
		return fieldErr(f, "invalid_url", "must be an http or https URL")
	}
	return nil
}

// Encode is the JSON of c (the payload element's text).
func (c *Content) Encode() string {
	b, _ := json.Marshal(c)
	return string(b)
}

// Decode parses the JSON of a payload element; it does not validate.
func Decode(s string) (*Content, error) {
	var c Content
	if err := json.Unmarshal([]byte(s), &c); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	return &c, nil
}

// first is the first error that is not nil.
func first(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// UnmarshalJSON accepts the full form {"color", "blocks": […]} and the
// short form, an array of blocks.
func (a *Attach) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '[' {
		a.Color = ""
		return json.Unmarshal(b, &a.Blocks)
	}
	type plain Attach
	return json.Unmarshal(b, (*plain)(a))
}
