package xmppcore

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"hash"
	"strconv"
	"strings"

	"mellium.im/xmpp/jid"
)

// NSSASL is the SASL namespace of RFC 6120.
const NSSASL = "urn:ietf:params:xml:ns:xmpp-sasl"

// SASL mechanisms offered, strongest first. Channel binding (-PLUS) is not
// offered: a client that picks it gets invalid-mechanism.
var saslMechanisms = []string{"SCRAM-SHA-256", "SCRAM-SHA-1"}

// saslFailure is a SASL failure condition (RFC 6120 6.5).
type saslFailure struct {
	cond string
	text string
}

func (f *saslFailure) Error() string { return "xmppcore: sasl " + f.cond }

var (
	errSASLMalformed = &saslFailure{cond: "malformed-request"}
	errSASLNotAuth   = &saslFailure{cond: "not-authorized"}
	errSASLMech      = &saslFailure{cond: "invalid-mechanism"}
	errSASLEncrypt   = &saslFailure{cond: "encryption-required"}
	errSASLAborted   = &saslFailure{cond: "aborted"}
	errSASLTemporary = &saslFailure{cond: "temporary-auth-failure"}
	errSASLThrottled = &saslFailure{cond: "temporary-auth-failure", text: "too many failed attempts; try again later"}
)

// saslStep is one mechanism's server state: it takes the client's
// (decoded) response and returns the challenge or, with done, the
// additional data of success, and the authenticated login.
type saslStep interface {
	step(ctx context.Context, in []byte) (out []byte, done bool, err error)
	login() string
}

// scramServer verifies SCRAM (RFC 5802, RFC 7677) against stored keys.
type scramServer struct {
	dir     Directory
	domain  string
	newHash func() hash.Hash
	sha256  bool

	state           int
	user            string
	gs2Header       string
	clientFirstBare string
	serverFirst     string
	nonce           string
	creds           *Credentials
	fake            bool // unknown user: go through the motions, fail at the end
}

func (s *scramServer) login() string { return s.user }

func (s *scramServer) step(ctx context.Context, in []byte) ([]byte, bool, error) {
	switch s.state {
	case 0:
		return s.first(ctx, in)
	case 1:
		return s.final(in)
	}
	return nil, false, errSASLMalformed
}

func (s *scramServer) first(ctx context.Context, in []byte) ([]byte, bool, error) {
	msg := string(in)
	// gs2-header: cbind-flag "," [authzid] ","
	switch {
	case strings.HasPrefix(msg, "n,"), strings.HasPrefix(msg, "y,"):
	case strings.HasPrefix(msg, "p="):
		return nil, false, errSASLNotAuth // channel binding was not offered
	default:
		return nil, false, errSASLMalformed
	}
	i := strings.IndexByte(msg[2:], ',')
	if i < 0 {
		return nil, false, errSASLMalformed
	}
	authz := msg[2 : 2+i]
	s.gs2Header = msg[:2+i+1]
	s.clientFirstBare = msg[2+i+1:]
	var user, cnonce string
	for _, f := range strings.Split(s.clientFirstBare, ",") {
		switch {
		case strings.HasPrefix(f, "n="):
			user = f[2:]
		case strings.HasPrefix(f, "r="):
			cnonce = f[2:]
		case strings.HasPrefix(f, "m="):
			return nil, false, errSASLMalformed
		}
	}
	if user == "" || cnonce == "" {
		return nil, false, errSASLMalformed
	}
	user = strings.NewReplacer("=2C", ",", "=3D", "=").Replace(user)
	login, ok := normalizeLogin(user, s.domain)
	if !ok {
		s.fake = true
	}
	if authz != "" {
		if !strings.HasPrefix(authz, "a=") || !authzMatches(authz[2:], login, s.domain) {
			return nil, false, &saslFailure{cond: "invalid-authzid"}
		}
	}
	s.user = login
	if !s.fake {
		c, err := s.dir.Credentials(ctx, login)
		switch {
		case errors.Is(err, ErrNotFound):
			s.fake = true
		case err != nil:
			return nil, false, errSASLTemporary
		default:
			s.creds = c
		}
	}
	salt, iter := []byte(nil), 4096
	if s.fake {
		salt = make([]byte, 16)
		rand.Read(salt)
	} else {
		salt, iter = s.creds.Salt, s.creds.Iterations
	}
	s.nonce = cnonce + randomID(18)
	s.serverFirst = "r=" + s.nonce + ",s=" + base64.StdEncoding.EncodeToString(salt) + ",i=" + strconv.Itoa(iter)
	s.state = 1
	return []byte(s.serverFirst), false, nil
}

func (s *scramServer) final(in []byte) ([]byte, bool, error) {
	s.state = 2
	msg := string(in)
	i := strings.LastIndex(msg, ",p=")
	if i < 0 {
		return nil, false, errSASLMalformed
	}
	withoutProof := msg[:i]
	proof, err := base64.StdEncoding.DecodeString(msg[i+3:])
	if err != nil {
		return nil, false, errSASLMalformed
	}
	var cbind, nonce string
	for _, f := range strings.Split(withoutProof, ",") {
		switch {
		case strings.HasPrefix(f, "c="):
			cbind = f[2:]
		case strings.HasPrefix(f, "r="):
			nonce = f[2:]
		}
	}
	if nonce != s.nonce {
		return nil, false, errSASLNotAuth
	}
	if cb, err := base64.StdEncoding.DecodeString(cbind); err != nil || string(cb) != s.gs2Header {
		return nil, false, errSASLNotAuth
	}
	if s.fake {
		return nil, false, errSASLNotAuth
	}
	stored, server := s.creds.SHA1Stored, s.creds.SHA1Server
	if s.sha256 {
		stored, server = s.creds.SHA256Stored, s.creds.SHA256Server
	}
	authMsg := s.clientFirstBare + "," + s.serverFirst + "," + withoutProof
	sig := hmacSum(s.newHash, stored, authMsg)
	if len(proof) != len(sig) {
		return nil, false, errSASLNotAuth
	}
	clientKey := make([]byte, len(sig))
	for i := range sig {
		clientKey[i] = proof[i] ^ sig[i]
	}
	h := s.newHash()
	h.Write(clientKey)
	if subtle.ConstantTimeCompare(h.Sum(nil), stored) != 1 {
		return nil, false, errSASLNotAuth
	}
	return []byte("v=" + base64.StdEncoding.EncodeToString(hmacSum(s.newHash, server, authMsg))), true, nil
}

// plainServer is SASL PLAIN (RFC 4616), offered only under TLS. The
// password is checked against the stored SCRAM-SHA-256 keys.
type plainServer struct {
	dir    Directory
	domain string
	user   string
}

func (p *plainServer) login() string { return p.user }

func (p *plainServer) step(ctx context.Context, in []byte) ([]byte, bool, error) {
	parts := bytes.Split(in, []byte{0})
	if len(parts) != 3 {
		return nil, false, errSASLMalformed
	}
	login, ok := normalizeLogin(string(parts[1]), p.domain)
	if !ok {
		return nil, false, errSASLNotAuth
	}
	if len(parts[0]) > 0 && !authzMatches(string(parts[0]), login, p.domain) {
		return nil, false, &saslFailure{cond: "invalid-authzid"}
	}
	p.user = login // the login tried, for the throttle, even if it fails
	if _, err := p.dir.CheckPassword(ctx, login, string(parts[2])); err != nil {
		if errors.Is(err, ErrNotFound) || errors.Is(err, ErrBadPassword) {
			return nil, false, errSASLNotAuth
		}
		return nil, false, errSASLTemporary
	}
	return nil, true, nil
}

func hmacSum(h func() hash.Hash, key []byte, msg string) []byte {
	m := hmac.New(h, key)
	m.Write([]byte(msg))
	return m.Sum(nil)
}

// normalizeLogin turns a SASL username (a localpart, or a bare JID of our
// domain) into the login it names.
func normalizeLogin(user, domain string) (string, bool) {
	if strings.ContainsRune(user, '@') {
		j, err := jid.Parse(user)
		if err != nil || j.Domainpart() != domain || j.Resourcepart() != "" {
			return "", false
		}
		return j.Localpart(), j.Localpart() != ""
	}
	j, err := jid.New(user, domain, "")
	if err != nil || j.Localpart() == "" {
		return "", false
	}
	return j.Localpart(), true
}

// authzMatches reports whether an authorization identity names the
// authenticated account itself (no proxy authorization).
func authzMatches(authz, login, domain string) bool {
	j, err := jid.Parse(authz)
	if err != nil {
		return false
	}
	return j.Localpart() == login && j.Domainpart() == domain && j.Resourcepart() == ""
}

// randomID returns a random URL-safe identifier of n bytes of entropy.
func randomID(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}
