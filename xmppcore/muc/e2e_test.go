package muc_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/jmoiron/sqlx"

	"vestnik/api"
	"vestnik/migrations/dbtest"
	"vestnik/xmppcore/mam"
)

// TestRESTToRoomToClient is the whole path: a chat made and posted to over
// REST (HTTP, bearer token) reaches a real XMPP client joined to the room
// over TCP/STARTTLS/SCRAM; a member who is not joined finds it in the
// archive afterwards, over MAM on the room JID.
func TestRESTToRoomToClient(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlx.DB) {
		ctx := context.Background()
		w := newWorld(t, db)
		token, err := w.users.CreateToken(ctx, "portal")
		if err != nil {
			t.Fatal(err)
		}
		a := api.New(w.users, w.chats, w.srv, api.Options{})
		mux := http.NewServeMux()
		mux.Handle(api.Prefix+"/", a.Handler())
		hs := httptest.NewServer(mux)
		defer hs.Close()
		post := func(path, body string) string {
			t.Helper()
			req, _ := http.NewRequest("POST", hs.URL+path, strings.NewReader(body))
			req.Header.Set("Authorization", "Bearer "+token)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != 201 {
				t.Fatalf("POST %s: %d %s", path, resp.StatusCode, b)
			}
			return string(b)
		}
		// Ivanov (portal id 2) owns a closed chat with Smirnov (6) and Popov (9).
		out := post("/api/v1/chats", `{"title":"Сделка с «Ромашкой»","type":"closed","color":"GREEN","owner_id":"2","users":["6","9"]}`)
		var id int64
		fmt.Sscanf(out[strings.Index(out, `"id":`)+5:], "%d", &id)
		room := fmt.Sprintf("chat%d@conference.%s", id, domain)
		if !strings.Contains(out, `"jid":"`+room+`"`) {
			t.Fatalf("chat: %s", out)
		}

		smirnov := w.login(t, "smirnov", "gajim")
		join(smirnov, room, "Алексей")
		smirnov.Expect("<subject></subject>")

		out = post(fmt.Sprintf("/api/v1/chats/%d/messages", id), `{"from_user_id":2,"message":"Договор подписан <ура>"}`)
		var msgID int64
		fmt.Sscanf(out[strings.Index(out, `"id":`)+5:], "%d", &msgID)
		got := smirnov.Expect("Договор подписан &lt;ура&gt;", "from='"+room+"/ivanov'", fmt.Sprintf("id='%d'", msgID), "by='"+room+"'")
		if !strings.Contains(got, "type='groupchat'") {
			t.Fatalf("not a groupchat message: %s", got)
		}
		post(fmt.Sprintf("/api/v1/chats/%d/messages", id), `{"message":"Сделка закрыта","system":true}`)
		smirnov.Expect("Сделка закрыта", "from='"+room+"'", "system='true'")

		// Popov was not joined: the archive has both for him, after the
		// chat's created notice.
		page, err := w.archive.Query(ctx, mam.Query{Viewer: w.user(t, "popov").ID, ChatID: id, Limit: 10})
		if err != nil || len(page.Messages) != 3 || page.Messages[0].Kind != mam.KindSystem || !strings.Contains(page.Messages[0].Payload, "type='created'") ||
			page.Messages[1].Body != "Договор подписан <ура>" || page.Messages[2].Kind != mam.KindSystem {
			t.Fatalf("archive for a member not joined: %+v %v", page, err)
		}
		popov := w.login(t, "popov", "phone")
		popov.Send(`<iq type='set' id='mam1' to='` + room + `'><query xmlns='urn:xmpp:mam:2' queryid='q'/></iq>`)
		popov.Expect("queryid='q'", "Договор подписан")
		popov.Expect("id='mam1'", "type='result'")
	})
}
