package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestComponentsConfig(t *testing.T) {
	file := filepath.Join(t.TempDir(), "components")
	if err := os.WriteFile(file, []byte("# app servers\npush.example.com=p=q\n\nbot.example.com = x\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := components([]string{"gw.example.com=s1"}, file)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"gw.example.com": "s1", "push.example.com": "p=q", "bot.example.com": "x"}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: got %q, want %q", k, got[k], v)
		}
	}
	for _, tc := range []struct {
		name  string
		pairs []string
		want  string
	}{
		{"no secret", []string{"a.example.com="}, "not NAME=SECRET"},
		{"no equals", []string{"a.example.com"}, "not NAME=SECRET"},
		{"twice", []string{"a.example.com=x", "a.example.com=y"}, "given twice"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := components(tc.pairs, "")
			if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "=x") {
				t.Errorf("got %v, want an error with %q and no secret", err, tc.want)
			}
		})
	}
	if _, err := components(nil, filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Error("a missing file: no error")
	}
}
