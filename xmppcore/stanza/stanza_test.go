package stanza

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestRoundTrip(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"empty message", `<message xmlns='jabber:client' to='a@b' type='chat'/>`, `<message xmlns='jabber:client' to='a@b' type='chat'/>`},
		{"child namespace", `<message xmlns='jabber:client'><body>hi &amp; &lt;bye&gt;</body><active xmlns='http://jabber.org/protocol/chatstates'/></message>`,
			`<message xmlns='jabber:client'><body>hi &amp; &lt;bye&gt;</body><active xmlns='http://jabber.org/protocol/chatstates'/></message>`},
		{"attribute quotes", `<iq xmlns='jabber:client' id="a'b&quot;c"/>`, `<iq xmlns='jabber:client' id='a&apos;b&quot;c'/>`},
		{"xml:lang", `<presence xmlns='jabber:client' xml:lang='ru'/>`, `<presence xmlns='jabber:client' xml:lang='ru'/>`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			el, err := Parse(tt.in)
			if err != nil {
				t.Fatalf("parse: %v", err)
			}
			if got := el.String(); got != tt.want {
				t.Fatalf("got %s, want %s", got, tt.want)
			}
			again, err := Parse(el.String())
			if err != nil {
				t.Fatalf("reparse: %v", err)
			}
			if !reflect.DeepEqual(again, el) {
				t.Fatalf("reparsed %s, want %s", again, el)
			}
		})
	}
}

func TestParseFragmentRefuses(t *testing.T) {
	deep := strings.Repeat("<a>", MaxDepth+1) + strings.Repeat("</a>", MaxDepth+1)
	manyAttrs := "<a"
	for i := 0; i <= MaxAttrs; i++ {
		manyAttrs += " a" + strings.Repeat("x", i) + "='1'"
	}
	manyAttrs += "/>"
	tests := []struct {
		name, in string
		want     error
	}{
		{"too deep", deep, ErrTooDeep},
		{"too many attributes", manyAttrs, ErrTooLarge},
		{"too large", "<a>" + strings.Repeat("x", MaxFragmentSize) + "</a>", ErrTooLarge},
		{"comment", "<a><!-- c --></a>", ErrRestrictedXML},
		{"processing instruction", "<a><?pi x?></a>", ErrRestrictedXML},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := ParseFragment(tt.in); !errors.Is(err, tt.want) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
		})
	}
	var nwf *NotWellFormed
	for _, in := range []string{"<a>", "<a></b>", "<a>&ent;</a>"} {
		if _, err := ParseFragment(in); !errors.As(err, &nwf) {
			t.Errorf("%q: got %v, want not well-formed", in, err)
		}
	}
}

func TestParseFragment(t *testing.T) {
	els, err := ParseFragment(`<body>x</body><delay xmlns='urn:xmpp:delay' stamp='s'/>`)
	if err != nil {
		t.Fatal(err)
	}
	if len(els) != 2 || els[0].Name.Space != NSClient || els[1].Name.Space != NSDelay || els[1].AttrValue("stamp") != "s" {
		t.Fatalf("got %v", els)
	}
	if els, err := ParseFragment("  "); err != nil || els != nil {
		t.Fatalf("blank: got %v, %v", els, err)
	}
	if _, err := Parse("<a/><b/>"); err == nil {
		t.Fatal("two elements parsed as one")
	}
}

func TestForm(t *testing.T) {
	x := NewForm(FormSubmit, "urn:example", FormField("text-single", "a", "A", "1"), FormField("", "ids", "", "2", "3"), FormField("", "empty", ""))
	x, err := Parse(x.String())
	if err != nil {
		t.Fatal(err)
	}
	if got := FormType(x); got != "urn:example" {
		t.Fatalf("form type: got %q", got)
	}
	got := FormValues(x)
	want := map[string][]string{"FORM_TYPE": {"urn:example"}, "a": {"1"}, "ids": {"2", "3"}, "empty": nil}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	if len(FormValues(nil)) != 0 || FormType(nil) != "" {
		t.Fatal("nil form has values")
	}
}

func TestErrorReply(t *testing.T) {
	iq := NewElement(NSClient, "iq", "id", "1", "from", "a@b/r", "to", "b", "type", "get")
	iq.AddChild(NewElement("urn:q", "query"))
	e := &Error{Type: ErrTypeCancel, Condition: "item-not-found", Text: "none", App: NewElement("urn:app", "why")}
	got := ErrorReply(iq, e).String()
	want := `<iq xmlns='jabber:client' id='1' from='b' to='a@b/r' type='error'><query xmlns='urn:q'/><error type='cancel'><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/><text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'>none</text><why xmlns='urn:app'/></error></iq>`
	if got != want {
		t.Fatalf("got %s, want %s", got, want)
	}
}
