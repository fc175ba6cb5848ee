package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestRunErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"unknown command", []string{"frobnicate"}, `unknown command "frobnicate"`},
		{"bad flag", []string{"migrate", "--nope"}, "flag provided but not defined"},
		{"extra argument", []string{"migrate", "x"}, "want 0 argument(s)"},
		{"bad db url", []string{"migrate", "--db", "mysql://x"}, "unsupported database URL"},
		{"unreachable db", []string{"migrate", "--db", "postgres://u@127.0.0.1:1/x?sslmode=disable&connect_timeout=2"}, "cannot reach database"},
		{"bad demo", []string{"serve", "--demo", "maybe"}, "--demo must be"},
		{"bad upload size", []string{"serve", "--upload-max-size", "lots"}, "--upload-max-size must be"},
		{"zero upload size", []string{"serve", "--upload-max-size", "0"}, "--upload-max-size must be"},
		{"bad quota", []string{"serve", "--upload-quota", "-5M"}, "--upload-quota must be"},
		{"bad public url", []string{"serve", "--public-url", "ftp://chat.example.com"}, "--public-url must be"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			err := run(context.Background(), tt.args, strings.NewReader(""), &out, &errb)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want error containing %q", err, tt.want)
			}
		})
	}
}

func TestMigrateFlagFromEnv(t *testing.T) {
	path := filepath.Join(t.TempDir(), "env.db")
	t.Setenv("VESTNIK_DB", "sqlite:"+path)
	var out bytes.Buffer
	if err := run(context.Background(), []string{"migrate"}, nil, &out, &out); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("database from VESTNIK_DB not created: %v", err)
	}
}

func TestSelfSignedCertReused(t *testing.T) {
	dir := t.TempDir()
	c1, err := tlsConfig("", "", dir, "example.test")
	if err != nil {
		t.Fatal(err)
	}
	c2, err := tlsConfig("", "", dir, "example.test")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(c1.Certificates[0].Certificate[0], c2.Certificates[0].Certificate[0]) {
		t.Fatal("second start made a new certificate; want the first reused")
	}
}
