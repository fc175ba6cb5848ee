package rich

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func TestPlainText(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"plain", "hello [world]", "hello [world]"},
		{"bold italic", "[b]bold[/b] and [I]it[/I] [u]u[/u] [s]s[/s]", "bold and it u s"},
		{"url", "see [url]https://a.test/x[/url]", "see https://a.test/x"},
		{"url with text", "[url=https://a.test]the site[/url]!", "the site (https://a.test)!"},
		{"url same text", "[url=https://a.test]https://a.test[/url]", "https://a.test"},
		{"user and chat", "hi [user=5]Ivan Petrov[/user] in [chat=7]Sales[/chat]", "hi Ivan Petrov in Sales"},
		{"br", "one[br]two[BR]three", "one\ntwo\nthree"},
		{"quote", "he said[quote]yes\nsure[/quote]ok", "he said\n> yes\n> sure\nok"},
		{"nested quote", "[quote]a[quote]b[/quote][/quote]", "> a\n> > b"},
		{"code kept", "run [code][b]x[/b] := 1[/code] now [b]!", "run [b]x[/b] := 1 now [b]!"},
		{"unclosed stays", "array[i] and [b]bold[/b] [u]", "array[i] and bold [u]"},
		{"nested", "[b][i]both[/i][/b] [color=#f00]red[/color]", "both red"},
		{"stray closing quote", "a[/quote]b", "ab"},
		{"send keeps text", "[send=yes]Yes[/send]", "Yes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := PlainText(tt.in); got != tt.want {
				t.Errorf("PlainText(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func decodeContent(t *testing.T, s string) *Content {
	t.Helper()
	c, err := Decode(s)
	if err != nil {
		t.Fatalf("decode %s: %v", s, err)
	}
	return c
}

func TestValidate(t *testing.T) {
	long := strings.Repeat("x", MaxText+1)
	tests := []struct{ name, in, field, code string }{
		{"ok", `{"text":"t","attach":{"blocks":[{"message":"[b]hi[/b]"},{"link":{"name":"n","link":"https://a.test"}},{"image":{"link":"https://a.test/i.png","width":"100"}},{"file":[{"name":"f.pdf","link":"https://a.test/f","size":"2048"}]},{"grid":[{"name":"a","value":"b","display":"LINE"}]},{"delimiter":{"size":200,"color":"#c6c6c6"}},{"user":{"name":"Ivan","link":"mailto:i@a.test"}}]},"keyboard":[{"text":"Yes","command":"vote","command_params":"1"},{"type":"NEWLINE"},{"text":"Open","link":"https://a.test","bg_color":"#333"}]}`, "", ""},
		{"two kinds in a block", `{"attach":{"blocks":[{"message":"a","link":{"link":"https://a.test"}}]}}`, "attach.blocks[0]", "invalid_block"},
		{"empty block", `{"attach":{"blocks":[{}]}}`, "attach.blocks[0]", "invalid_block"},
		{"javascript link", `{"attach":{"blocks":[{"link":{"link":"javascript:alert(1)"}}]}}`, "attach.blocks[0].link.link", "invalid_url"},
		{"data image", `{"attach":{"blocks":[{"image":[{"link":"data:image/png;base64,AAAA"}]}]}}`, "attach.blocks[0].image[0].link", "invalid_url"},
		{"mailto image", `{"attach":{"blocks":[{"image":[{"link":"mailto:a@b.test"}]}]}}`, "attach.blocks[0].image[0].link", "invalid_url"},
		{"bad color", `{"attach":{"color":"red;x","blocks":[{"message":"a"}]}}`, "attach.color", "invalid_color"},
		{"long message", `{"attach":{"blocks":[{"message":"` + long + `"}]}}`, "attach.blocks[0].message", "too_long"},
		{"bad display", `{"attach":{"blocks":[{"grid":[{"name":"a","display":"FANCY"}]}]}}`, "attach.blocks[0].grid[0].display", "invalid_display"},
		{"button without action", `{"keyboard":[{"text":"x"}]}`, "keyboard[0]", "invalid_button"},
		{"button without text", `{"keyboard":[{"command":"x"}]}`, "keyboard[0].text", "missing_text"},
		{"button bad action", `{"keyboard":[{"text":"x","action":"EVAL","action_value":"1"}]}`, "keyboard[0].action", "invalid_action"},
		{"button bad link", `{"keyboard":[{"text":"x","link":"vbscript:x"}]}`, "keyboard[0].link", "invalid_url"},
		{"user without name", `{"attach":{"blocks":[{"user":{"link":"https://a.test"}}]}}`, "attach.blocks[0].user.name", "missing_name"},
		{"negative size", `{"attach":{"blocks":[{"delimiter":{"size":-1}}]}}`, "attach.blocks[0].delimiter.size", "invalid_size"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := decodeContent(t, tt.in).Validate()
			if tt.field == "" {
				if err != nil {
					t.Fatalf("got %v, want nil", err)
				}
				return
			}
			var fe *FieldError
			if !errors.As(err, &fe) || !errors.Is(err, ErrInvalid) {
				t.Fatalf("got %v, want a FieldError", err)
			}
			if fe.Field != tt.field || fe.Code != tt.code {
				t.Errorf("got %s/%s, want %s/%s", fe.Field, fe.Code, tt.field, tt.code)
			}
		})
	}
}

func TestLimits(t *testing.T) {
	var c Content
	c.Attach = &Attach{}
	for range MaxBlocks + 1 {
		c.Attach.Blocks = append(c.Attach.Blocks, Block{Message: "x"})
	}
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "at most") {
		t.Errorf("%d blocks: got %v, want too many", MaxBlocks+1, err)
	}
	c.Attach.Blocks = nil
	for range 20 {
		c.Attach.Blocks = append(c.Attach.Blocks, Block{Message: strings.Repeat("y", MaxText)})
	}
	var fe *FieldError
	if err := c.Validate(); !errors.As(err, &fe) || fe.Code != "attach_too_large" {
		t.Errorf("%d bytes: got %v, want attach_too_large", 20*MaxText, err)
	}
	kb := Content{}
	for range MaxButtons + 1 {
		kb.Keyboard = append(kb.Keyboard, Button{Text: "a", Command: "b"})
	}
	if err := kb.Validate(); !errors.As(err, &fe) || fe.Code != "too_many_buttons" {
		t.Errorf("%d buttons: got %v, want too_many_buttons", MaxButtons+1, err)
	}
}

func TestFallback(t *testing.T) {
	c := decodeContent(t, `{"text":"Deal [b]#12[/b] closed","attach":{"blocks":[{"user":{"name":"CRM bot"}},{"link":{"name":"Deal 12","desc":"Big one","link":"https://crm.test/12"}},{"delimiter":{}},{"grid":[{"name":"Sum","value":"100 ₽"},{"name":"Owner","value":"[user=3]Ivan[/user]"}]},{"image":{"name":"chart","link":"https://crm.test/c.png"}},{"file":{"name":"deal.pdf","link":"https://crm.test/d.pdf","size":1536}}]},"keyboard":[{"text":"Approve","command":"approve"},{"text":"Open","link":"https://crm.test/12"},{"type":"NEWLINE"},{"text":"Reject","command":"reject"}]}`)
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	want := "Deal #12 closed\nCRM bot\nDeal 12\nBig one\nhttps://crm.test/12\n────────\nSum: 100 ₽\nOwner: Ivan\n[image] chart https://crm.test/c.png\n[file] deal.pdf (1.5 KB) https://crm.test/d.pdf\n[Approve] [Open] https://crm.test/12\n[Reject]"
	if got := c.Fallback(); got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}

func TestLooseDecoding(t *testing.T) {
	// Form-encoded integrations send numbers and flags as strings, one
	// image as an object.
	c := decodeContent(t, `{"attach":{"blocks":[{"image":{"link":"https://a.test/i.png","width":"120","height":80}}]},"keyboard":[{"text":"x","command":"c","disabled":"Y"}]}`)
	if c.Attach.Blocks[0].Image[0].Width != 120 || c.Attach.Blocks[0].Image[0].Height != 80 {
		t.Errorf("got %+v", c.Attach.Blocks[0].Image)
	}
	if !bool(c.Keyboard[0].Disabled) || c.Keyboard[0].Pressable() {
		t.Errorf("disabled: got %+v", c.Keyboard[0])
	}
	if _, err := Decode(`{"keyboard":[{"text":"x","disabled":"maybe"}]}`); err == nil {
		t.Error("disabled=maybe: got nil error")
	}
	b, _ := json.Marshal(c)
	if strings.Contains(string(b), `"120"`) {
		t.Errorf("numbers encode as numbers: %s", b)
	}
	if (&Content{Text: "plain *text*"}).Empty() != true || (&Content{Text: "[b]x[/b]"}).Empty() {
		t.Error("Empty: BB-coded text is rich, plain text is not")
	}
}

func TestSafeURL(t *testing.T) {
	for s, want := range map[string]bool{
		"https://a.test/x?y=1": true, "http://a.test": true, "mailto:a@b.test": true,
		"javascript:alert(1)": false, "JAVASCRIPT:alert(1)": false, "//a.test": false, "/relative": false,
		"https://a.test/\"onerror=": false, "https:///nohost": false, "": false,
	} {
		if got := SafeURL(s, true); got != want {
			t.Errorf("SafeURL(%q) = %v, want %v", s, got, want)
		}
	}
	if SafeURL("mailto:a@b.test", false) {
		t.Error("mailto where only http(s) is allowed")
	}
}
