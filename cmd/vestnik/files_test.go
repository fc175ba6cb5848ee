package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"vestnik/migrations"
	"vestnik/migrations/dbtest"
)

// TestFilesEndToEnd runs `vestnik serve` and checks the file store from
// each door: slixmpp uploads through XEP-0363 (disco form, slot, PUT) and
// sends the URL with an out-of-band element; REST uploads a file and posts
// it to a closed chat and to a person. Both download byte for byte (the
// capability URL, REST on a reader's behalf, slixmpp over the OOB URL of
// the live message), both are refused to others, MAM returns the OOB
// element, and /upload/ answers the CORS preflight.
func TestFilesEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	const python = "/usr/bin/python3"
	if err := exec.Command(python, "-c", "import slixmpp, aiohttp").Run(); err != nil {
		if os.Getenv("VESTNIK_REQUIRE_ALL") == "1" {
			t.Fatalf("python3-slixmpp is not available (%v) but VESTNIK_REQUIRE_ALL=1", err)
		}
		t.Skipf("python3-slixmpp not available: %v", err)
	}
	bin := buildBinary(t)
	const maxSize = 3 << 20
	for _, backend := range dbtest.Backends(t) {
		t.Run(backend, func(t *testing.T) {
			dbURL := dbtest.URL(t, backend)
			httpAt := freeAddr(t)
			base := "http://" + httpAt
			s := startServerAt(t, bin, dbURL, httpAt, "--demo", "on", "--upload-max-size", "3M", "--upload-quota", "20M",
				"--public-url", base+"/", "--upload-origins", "https://portal.example.com")
			tok, err := exec.Command(bin, "token", "create", "files-test", "--db", dbURL).Output()
			if err != nil {
				t.Fatalf("token create: %v", err)
			}
			token := strings.TrimSpace(string(tok))
			db, err := migrations.Open(context.Background(), dbURL)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()

			// CORS preflight of a browser XMPP client on the configured origin.
			req, _ := http.NewRequest("OPTIONS", base+"/upload/"+strings.Repeat("a", 64)+"/x.png", nil)
			req.Header.Set("Origin", "https://portal.example.com")
			req.Header.Set("Access-Control-Request-Method", "PUT")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != 204 || resp.Header.Get("Access-Control-Allow-Origin") != "https://portal.example.com" {
				t.Fatalf("preflight: got %d %v", resp.StatusCode, resp.Header)
			}

			slixData := randomBytes(t, 2<<20+12345)
			path := filepath.Join(t.TempDir(), "схема сети.bin")
			if err := os.WriteFile(path, slixData, 0o600); err != nil {
				t.Fatal(err)
			}
			_, port, _ := net.SplitHostPort(s.c2sAt)
			ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
			defer cancel()
			py := exec.CommandContext(ctx, python, "testdata/files.py", "127.0.0.1", port, "example.test", "demo", path, fmt.Sprint(maxSize))
			var stderr bytes.Buffer
			py.Stderr = &stderr
			out, _ := py.StdoutPipe()
			if err := py.Start(); err != nil {
				t.Fatal(err)
			}
			lines := bufio.NewScanner(out)
			next := func(prefix string) string {
				t.Helper()
				for lines.Scan() {
					l := lines.Text()
					if rest, ok := strings.CutPrefix(l, prefix+" "); ok {
						return rest
					}
					if l == prefix {
						return ""
					}
					if strings.HasPrefix(l, "FAIL") {
						py.Wait()
						t.Fatalf("files.py: %s\n%s\nserver:\n%s", l, stderr.String(), s.out)
					}
				}
				py.Wait()
				t.Fatalf("files.py ended before %s:\n%s\nserver:\n%s", prefix, stderr.String(), s.out)
				return ""
			}

			// 1. The file slixmpp uploaded (alice → bob).
			slixURL := next("SLIX_URL")
			if !strings.HasPrefix(slixURL, base+"/upload/") {
				t.Fatalf("slot URL %q does not start with --public-url %s", slixURL, base)
			}
			if code, body := get(t, slixURL); code != 200 || body != string(slixData) {
				t.Fatalf("capability URL: got %d and %d bytes, want the %d uploaded", code, len(body), len(slixData))
			}
			token64 := strings.Split(strings.TrimPrefix(slixURL, base+"/upload/"), "/")[0]
			var slixID int64
			if err := db.Get(&slixID, db.Rebind(`SELECT id FROM files WHERE token = ?`), token64); err != nil {
				t.Fatal(err)
			}
			restGet := func(p string) (int, string) {
				t.Helper()
				req, _ := http.NewRequest("GET", base+"/api/v1"+p, nil)
				req.Header.Set("Authorization", "Bearer "+token)
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				defer resp.Body.Close()
				b, _ := io.ReadAll(resp.Body)
				return resp.StatusCode, string(b)
			}
			// alice (4) uploaded it, bob (5) received it, carol (14) did not.
			for _, c := range []struct {
				user string
				want int
			}{{"4", 200}, {"5", 200}, {"14", 403}} {
				code, body := restGet(fmt.Sprintf("/files/%d?user_id=%s", slixID, c.user))
				if code != c.want || code == 200 && body != string(slixData) {
					t.Errorf("slixmpp's file as user %s: got %d (%d bytes), want %d", c.user, code, len(body), c.want)
				}
			}

			// 2. A file bob uploads over REST: to a closed chat of alice
			// and bob, and to alice personally.
			restData := randomBytes(t, 1<<20+7)
			st, up := uploadREST(t, base, token, "план.pdf", restData, "5")
			if st != 201 {
				t.Fatalf("REST upload: %d %v", st, up)
			}
			restID := int64(up["id"].(float64))
			restURL := up["url"].(string)
			chat := postJSON(t, base+"/api/v1/chats", token, `{"title":"Файлы","color":"GREEN","type":"closed","owner_id":"5","users":["4","5"]}`)
			var c struct {
				ID  int64  `json:"id"`
				JID string `json:"jid"`
			}
			json.Unmarshal([]byte(chat), &c)
			postJSON(t, fmt.Sprintf("%s/api/v1/chats/%d/messages", base, c.ID), token, fmt.Sprintf(`{"from_user_id":"5","message":"план","files":[%d]}`, restID))
			postJSON(t, base+"/api/v1/messages", token, fmt.Sprintf(`{"from_user_id":"5","to_user_id":"4","files":[%d]}`, restID))
			sum := sha256.Sum256(restData)
			if got := next("REST_SHA"); got != hex.EncodeToString(sum[:]) {
				t.Fatalf("slixmpp downloaded the REST file with sha256 %s, want %x", got, sum)
			}
			next("OK")
			if err := py.Wait(); err != nil {
				t.Fatalf("files.py: %v\n%s", err, stderr.String())
			}
			for _, c := range []struct {
				user string
				want int
			}{{"4", 200}, {"5", 200}, {"14", 403}} {
				code, body := restGet(fmt.Sprintf("/files/%d?user_id=%s", restID, c.user))
				if code != c.want || code == 200 && body != string(restData) {
					t.Errorf("REST file as user %s: got %d (%d bytes), want %d", c.user, code, len(body), c.want)
				}
			}
			// carol may not pass on a file she cannot read.
			req, _ = http.NewRequest("POST", base+"/api/v1/messages", strings.NewReader(fmt.Sprintf(`{"from_user_id":"14","to_user_id":"4","files":[%d]}`, restID)))
			req.Header.Set("Authorization", "Bearer "+token)
			if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 422 {
				t.Fatalf("a stranger sending the file: %v %v, want 422", resp, err)
			}

			// 3. MAM gives Jabber clients the out-of-band element too: the
			// room's archive and alice's personal archive (this test
			// client prints elements without their xmlns; slixmpp above
			// read the live element's namespace).
			alice := xdial(t, s.c2sAt, "alice@example.test", "demo")
			oob := func(u string) string { return "<x><url>" + u + "</url></x>" }
			alice.send(`<iq xmlns='jabber:client' type='set' id='q1' to='` + c.JID + `'><query xmlns='urn:xmpp:mam:2' queryid='room'/></iq>`)
			alice.expect("<message", `queryid="room"`, "<body>план&#xA;"+restURL+"</body>", oob(restURL))
			alice.send(`<iq xmlns='jabber:client' type='set' id='q2'><query xmlns='urn:xmpp:mam:2' queryid='mine'/></iq>`)
			alice.expect("<message", `queryid="mine"`, "<body>"+slixURL+"</body>", oob(slixURL))
			alice.expect("<message", `queryid="mine"`, "<body>"+restURL+"</body>", oob(restURL))
			s.stop(t)
		})
	}
}

// startServerAt is startServer on a given HTTP address (so that
// --public-url can name it).
func startServerAt(t *testing.T, bin, dbURL, httpAt string, extra ...string) *server {
	t.Helper()
	return startServer(t, bin, dbURL, append([]string{"--http", httpAt}, extra...)...)
}

func randomBytes(t *testing.T, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	rand.Read(b)
	return b
}

// uploadREST posts a file to POST /api/v1/files.
func uploadREST(t *testing.T, base, token, name string, data []byte, from string) (int, map[string]any) {
	t.Helper()
	var b bytes.Buffer
	mw := multipart.NewWriter(&b)
	mw.WriteField("from_user_id", from)
	w, _ := mw.CreateFormFile("file", name)
	w.Write(data)
	mw.Close()
	req, _ := http.NewRequest("POST", base+"/api/v1/files", &b)
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}
