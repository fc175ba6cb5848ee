// Package extdisco serves XEP-0215 external service discovery: the STUN and
// TURN servers (and any other service) an operator lists for XMPP clients,
// with short-lived TURN credentials made from a shared secret the way TURN
// servers check them (the "TURN REST API" convention coturn and others use:
// username "expiry:login", password base64(HMAC-SHA1(secret, username))).
package extdisco

import (
	"context"
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"
	"time"

	"vestnik/xmppcore"
)

// NS is the namespace of XEP-0215 version 2.
const NS = "urn:xmpp:extdisco:2"

// DefaultTTL is how long credentials made from a secret stay valid.
const DefaultTTL = 24 * time.Hour

// Service is one external service.
type Service struct {
	Type      string `json:"type"`      // stun, turn, turns, ftp, …
	Host      string `json:"host"`      // host name or address
	Port      int    `json:"port"`      // 0: not given
	Transport string `json:"transport"` // tcp, udp or empty
	Name      string `json:"name"`      // shown to users; optional
	// Username and Password are fixed credentials; Secret instead makes
	// time-limited ones per user (the two are exclusive).
	Username string `json:"username"`
	Password string `json:"password"`
	Secret   string `json:"secret"`
	// TTL is the lifetime in seconds of credentials made from Secret
	// (0: DefaultTTL).
	TTL int `json:"ttl"`
}

func (sv Service) restricted() bool { return sv.Username != "" || sv.Password != "" || sv.Secret != "" }

// Validate reports what is wrong with a service.
func (sv Service) Validate() error {
	switch {
	case sv.Type == "":
		return errors.New("a service needs a type (stun, turn, …)")
	case sv.Host == "":
		return fmt.Errorf("%s service: a host is required", sv.Type)
	case sv.Port < 0 || sv.Port > 65535:
		return fmt.Errorf("%s service on %s: port %d out of range", sv.Type, sv.Host, sv.Port)
	case sv.Transport != "" && sv.Transport != "tcp" && sv.Transport != "udp":
		return fmt.Errorf("%s service on %s: transport must be tcp or udp", sv.Type, sv.Host)
	case sv.Secret != "" && (sv.Username != "" || sv.Password != ""):
		return fmt.Errorf("%s service on %s: give either a secret or a username and password", sv.Type, sv.Host)
	case sv.TTL < 0:
		return fmt.Errorf("%s service on %s: ttl must not be negative", sv.Type, sv.Host)
	}
	return nil
}

// Load reads a JSON array of services from a file and validates it.
func Load(path string) ([]Service, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("external services: %w", err)
	}
	var list []Service
	if err := json.Unmarshal(b, &list); err != nil {
		return nil, fmt.Errorf("external services %s: %w", path, err)
	}
	for _, sv := range list {
		if err := sv.Validate(); err != nil {
			return nil, fmt.Errorf("external services %s: %w", path, err)
		}
	}
	return list, nil
}

// Credentials returns the username and password a TURN server checking the
// shared secret accepts until expires, for the user login.
func Credentials(secret, login string, expires time.Time) (username, password string) {
	username = strconv.FormatInt(expires.Unix(), 10) + ":" + login
	m := hmac.New(sha1.New, []byte(secret))
	m.Write([]byte(username))
	return username, base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// Register answers the server's XEP-0215 requests with services (none: no
// answers and no feature).
func Register(srv *xmppcore.Server, services []Service) {
	if len(services) == 0 {
		return
	}
	h := &handler{services: services, now: time.Now}
	srv.HandleIQ(NS, h.iq)
}

type handler struct {
	services []Service
	now      func() time.Time
}

func (h *handler) iq(_ context.Context, sess *xmppcore.Session, iq *xmppcore.Element) (*xmppcore.Element, error) {
	if iq.AttrValue("type") != "get" {
		return nil, xmppcore.ErrBadRequest("external services are only read (type get)")
	}
	q := iq.FirstChild()
	switch q.Name.Local {
	case "services":
		// §3.1, §3.2: all services, or those of one type.
		typ := q.AttrValue("type")
		out := xmppcore.NewElement(NS, "services")
		for _, sv := range h.services {
			if typ == "" || sv.Type == typ {
				out.AddChild(h.element(sv, sess.Login()))
			}
		}
		return out, nil
	case "credentials":
		// §3.3: the credentials of the services of one host and type.
		want := q.Child(NS, "service")
		if want == nil || want.AttrValue("host") == "" || want.AttrValue("type") == "" {
			return nil, xmppcore.ErrBadRequest("")
		}
		out := xmppcore.NewElement(NS, "credentials")
		for _, sv := range h.services {
			if sv.Host == want.AttrValue("host") && sv.Type == want.AttrValue("type") && sv.restricted() {
				out.AddChild(h.element(sv, sess.Login()))
			}
		}
		if len(out.Children) == 0 {
			return nil, xmppcore.ErrItemNotFound()
		}
		return out, nil
	}
	return nil, xmppcore.ErrBadRequest("")
}

func (h *handler) element(sv Service, login string) *xmppcore.Element {
	el := xmppcore.NewElement(NS, "service", "host", sv.Host, "type", sv.Type)
	if sv.Port != 0 {
		el.SetAttr("port", strconv.Itoa(sv.Port))
	}
	if sv.Transport != "" {
		el.SetAttr("transport", sv.Transport)
	}
	if sv.Name != "" {
		el.SetAttr("name", sv.Name)
	}
	if !sv.restricted() {
		return el
	}
	el.SetAttr("restricted", "1")
	user, pass := sv.Username, sv.Password
	if sv.Secret != "" {
		ttl := DefaultTTL
		if sv.TTL > 0 {
			ttl = time.Duration(sv.TTL) * time.Second
		}
		user, pass = Credentials(sv.Secret, login, h.now().Add(ttl))
	}
	if user != "" {
		el.SetAttr("username", user)
	}
	if pass != "" {
		el.SetAttr("password", pass)
	}
	return el
}
