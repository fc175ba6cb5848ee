package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"sort"
	"strconv"
	"strings"

	"vestnik/xmppcore"
	"vestnik/xmppcore/rich"
)

// The facade's ATTACH and KEYBOARD: Bitrix24's shapes (upper-case keys,
// the full form {ID, COLOR, BLOCKS} or an array of blocks, KEYBOARD as
// {BUTTONS} or an array, either as a JSON string; form-encoded as
// ATTACH[0][MESSAGE]=…) translated into package rich's, which validates
// them as it does for every door.

// bxRich reads MESSAGE (optional when ATTACH or KEYBOARD is given),
// ATTACH and KEYBOARD into rich content. given is false when neither
// ATTACH nor KEYBOARD was sent.
func (c *bxCall) bxRich(textRequired bool) (content *rich.Content, given bool, err error) {
	content = &rich.Content{}
	if c.given("ATTACH") {
		var a rich.Attach
		if err := bxDecode(c.p["ATTACH"], "", &a); err != nil {
			return nil, true, bxInvalidCode("ATTACH_ERROR", "ATTACH", err.Error())
		}
		content.Attach, given = &a, true
	}
	if c.given("KEYBOARD") {
		var kb []rich.Button
		if err := bxDecode(c.p["KEYBOARD"], "buttons", &kb); err != nil {
			return nil, true, bxInvalidCode("KEYBOARD_ERROR", "KEYBOARD", err.Error())
		}
		content.Keyboard, given = kb, true
	}
	if textRequired && !given {
		if content.Text, err = c.message("MESSAGE"); err != nil {
			return nil, false, err
		}
		return content, false, nil
	}
	if content.Text, err = c.p.str("MESSAGE"); err != nil {
		return nil, given, err
	}
	if len(content.Text) > MaxMessage {
		return nil, given, bxInvalid("MESSAGE", "too long")
	}
	if given && strings.TrimSpace(content.Text) == "" && (content.Attach == nil || len(content.Attach.Blocks) == 0) && len(content.Keyboard) == 0 {
		return nil, given, bxEmpty("MESSAGE")
	}
	return content, given, nil
}

func bxInvalidCode(code, name, msg string) error {
	return &bxError{http.StatusBadRequest, code, name + ": " + msg}
}

// bxRichError maps a refused rich content to ATTACH_ERROR or
// KEYBOARD_ERROR naming the field; other errors pass.
func bxRichError(err error) error {
	var fe *rich.FieldError
	if !errors.As(err, &fe) {
		return err
	}
	if strings.HasPrefix(fe.Field, "keyboard") {
		return bxInvalidCode("KEYBOARD_ERROR", "KEYBOARD", strings.TrimPrefix(fe.Field, "keyboard")+": "+fe.Message)
	}
	return bxInvalidCode("ATTACH_ERROR", "ATTACH", strings.TrimPrefix(strings.TrimPrefix(fe.Field, "attach"), ".")+": "+fe.Message)
}

// bxDecode turns a parameter tree (or a JSON string of one) into v:
// keys lower-cased, maps with numeric keys (A[0][…]) made lists; wrapper
// is a key whose value is taken when the object has it (KEYBOARD's
// BUTTONS).
func bxDecode(tree any, wrapper string, v any) error {
	if s, ok := tree.(string); ok {
		s = strings.TrimSpace(s)
		if !strings.HasPrefix(s, "{") && !strings.HasPrefix(s, "[") {
			return errors.New("must be an object, an array or their JSON")
		}
		dec := json.NewDecoder(strings.NewReader(s))
		dec.UseNumber()
		var x any
		if err := dec.Decode(&x); err != nil {
			return errors.New("not valid JSON")
		}
		tree = jsonValue(x)
	}
	t := bxLower(tree)
	if m, ok := t.(map[string]any); ok && wrapper != "" {
		if w, ok := m[wrapper]; ok {
			t = w
		}
	}
	b, err := json.Marshal(t)
	if err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(v); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && te.Field != "" {
			return errors.New(strings.ToUpper(te.Field) + ": wrong type")
		}
		return errors.New(strings.TrimPrefix(err.Error(), "json: "))
	}
	return nil
}

// bxLower lower-cases keys and turns maps whose keys are all numbers into
// lists in their order.
func bxLower(v any) any {
	switch x := v.(type) {
	case []any:
		out := make([]any, len(x))
		for i := range x {
			out[i] = bxLower(x[i])
		}
		return out
	case map[string]any:
		numeric := len(x) > 0
		for k := range x {
			if _, err := strconv.Atoi(k); err != nil {
				numeric = false
				break
			}
		}
		if numeric {
			keys := make([]int, 0, len(x))
			for k := range x {
				n, _ := strconv.Atoi(k)
				keys = append(keys, n)
			}
			sort.Ints(keys)
			out := make([]any, len(keys))
			for i, k := range keys {
				out[i] = bxLower(x[strconv.Itoa(k)])
			}
			return out
		}
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[strings.ToLower(k)] = bxLower(e)
		}
		return out
	}
	return v
}

// bxParamsOf is a rich message's ATTACH and KEYBOARD as
// im.dialog.messages.get shows them in params, in Bitrix24's upper-case
// shape; nil when the message has neither.
func bxParamsOf(c *rich.Content) map[string]any {
	if c == nil || (c.Attach == nil && len(c.Keyboard) == 0) {
		return nil
	}
	out := map[string]any{}
	if c.Attach != nil {
		out["ATTACH"] = []any{map[string]any{"ID": 1, "COLOR": c.Attach.Color, "BLOCKS": bxUpper(c.Attach.Blocks)}}
	}
	if len(c.Keyboard) > 0 {
		out["KEYBOARD"] = bxUpper(c.Keyboard)
	}
	return out
}

// bxUpper is v's JSON with upper-case keys.
func bxUpper(v any) any {
	b, _ := json.Marshal(v)
	var x any
	_ = json.Unmarshal(b, &x)
	var up func(any) any
	up = func(v any) any {
		switch t := v.(type) {
		case []any:
			for i := range t {
				t[i] = up(t[i])
			}
			return t
		case map[string]any:
			out := make(map[string]any, len(t))
			for k, e := range t {
				out[strings.ToUpper(k)] = up(e)
			}
			return out
		}
		return v
	}
	return up(x)
}

// richOfMessage is the rich content of an archived message (nil: none).
func richOfMessage(payload string) *rich.Content { return xmppcore.RichOf(payload) }
