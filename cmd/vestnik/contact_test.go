package main

import (
	"reflect"
	"testing"
)

// TestContactAddresses: --admin-contact and --contact-addresses become
// XEP-0157 addresses by kind; bad input is refused.
func TestContactAddresses(t *testing.T) {
	got, err := contactAddresses("it@example.com, xmpp:admin@example.com", "abuse=mailto:abuse@example.com,support=https://example.com/help")
	want := map[string][]string{"admin": {"mailto:it@example.com", "xmpp:admin@example.com"},
		"abuse": {"mailto:abuse@example.com"}, "support": {"https://example.com/help"}}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v %v, want %v", got, err, want)
	}
	if got, err := contactAddresses("", ""); err != nil || got != nil {
		t.Fatalf("none: got %v %v, want nil", got, err)
	}
	for _, bad := range [][2]string{{"not an address", ""}, {"", "boss=mailto:x@example.com"}, {"", "mailto:x@example.com"}, {"", "abuse=nothing"}} {
		if _, err := contactAddresses(bad[0], bad[1]); err == nil {
			t.Errorf("%q %q: accepted", bad[0], bad[1])
		}
	}
}
