package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"mime/multipart"
	"net/http"
	"net/http/cookiejar"
	"os/exec"
	"strings"
	"testing"
	"time"

	"vestnik/migrations"
	"vestnik/migrations/dbtest"
)

// TestUploadAllowedTypes: `serve --upload-allowed-types text/plain,image/*`
// refuses an executable at the REST API and the web client's upload with
// 415 file_type_not_allowed, whatever its name says, and takes text.
// (XEP-0363 is covered by xmppcore/upload and the scansion suite.)
func TestUploadAllowedTypes(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin := buildBinary(t)
	dbURL := dbtest.URL(t, migrations.SQLite)
	s := startServer(t, bin, dbURL, "--demo", "on", "--upload-allowed-types", "text/plain,image/*")
	base := "http://" + s.httpAt
	tok, err := exec.Command(bin, "token", "create", "types-test", "--db", dbURL).Output()
	if err != nil {
		t.Fatalf("token create: %v", err)
	}
	token := strings.TrimSpace(string(tok))
	elf := append([]byte("\x7fELF\x02\x01\x01\x00"), make([]byte, 120)...)

	if code, body := uploadREST(t, base, token, "notes.txt", elf, "5"); code != 415 ||
		!strings.Contains(fmt.Sprint(body), "file_type_not_allowed") {
		t.Errorf("REST executable: got %d %v, want 415 file_type_not_allowed", code, body)
	}
	if code, body := uploadREST(t, base, token, "notes.txt", []byte("plain words"), "5"); code != 201 {
		t.Errorf("REST text: got %d %v, want 201", code, body)
	}

	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, Timeout: 5 * time.Second}
	resp, err := c.Post(base+"/login", "application/json", strings.NewReader(`{"login":"bob","password":"demo"}`))
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("web login: %v %v", resp, err)
	}
	resp.Body.Close()
	web := func(name string, data []byte) (int, string) {
		var b bytes.Buffer
		mw := multipart.NewWriter(&b)
		w, _ := mw.CreateFormFile("file", name)
		w.Write(data)
		mw.Close()
		req, _ := http.NewRequest("POST", base+"/files", &b)
		req.Header.Set("Content-Type", mw.FormDataContentType())
		req.Header.Set("Origin", base)
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		json.NewDecoder(resp.Body).Decode(&out)
		return resp.StatusCode, fmt.Sprint(out)
	}
	if code, body := web("tool.png", elf); code != 415 || !strings.Contains(body, "file_type_not_allowed") {
		t.Errorf("web executable: got %d %s, want 415 file_type_not_allowed", code, body)
	}
	if code, body := web("a.txt", []byte("hello")); code != 201 {
		t.Errorf("web text: got %d %s, want 201", code, body)
	}
}
