// Package upload is HTTP file upload (XEP-0363): XMPP clients ask the
// upload.<domain> service for a slot, PUT the file over HTTP, and share the
// GET URL. Files live under the data directory, one per slot token.
package upload

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jmoiron/sqlx"
)

// NS is the XEP-0363 namespace.
const NS = "urn:xmpp:http:upload:0"

// Limits.
const (
	DefaultMaxSize = 10 << 20 // bytes per file
	maxNameLen     = 200      // characters in a file name
	slotLifetime   = 5 * time.Minute
)

var (
	ErrTooLarge = errors.New("upload: file too large")
	ErrBadName  = errors.New("upload: bad file name")
	ErrNotFound = errors.New("upload: not found")
)

// Options tune the service; zero values are the documented defaults.
type Options struct {
	MaxSize   int64  // DefaultMaxSize when 0
	PublicURL string // base URL clients reach the HTTP server at, e.g. http://localhost:8080
}

// Store keeps slots in the database and files under dir.
type Store struct {
	db   *sqlx.DB
	dir  string
	opts Options
}

// NewStore returns a store keeping files under dir.
func NewStore(db *sqlx.DB, dir string, opts Options) (*Store, error) {
	if opts.MaxSize == 0 {
		opts.MaxSize = DefaultMaxSize
	}
	opts.PublicURL = strings.TrimRight(opts.PublicURL, "/")
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("upload: %w", err)
	}
	return &Store{db: db, dir: dir, opts: opts}, nil
}

// MaxSize is the largest file accepted.
func (s *Store) MaxSize() int64 { return s.opts.MaxSize }

// Slot is a granted upload: the client PUTs to PutURL and shares GetURL.
type Slot struct {
	Token          string
	PutURL, GetURL string
}

// Request grants userID a slot for one file.
func (s *Store) Request(ctx context.Context, userID int64, filename string, size int64, contentType string) (*Slot, error) {
	if size <= 0 || size > s.opts.MaxSize {
		return nil, ErrTooLarge
	}
	filename = filepath.Base(strings.ReplaceAll(filename, "\\", "/"))
	if filename == "." || filename == "/" || filename == "" || utf8.RuneCountInString(filename) > maxNameLen ||
		strings.ContainsAny(filename, "\x00\r\n") {
		return nil, ErrBadName
	}
	if contentType == "" {
		contentType = "application/octet-stream"
	}
	if _, _, err := mime.ParseMediaType(contentType); err != nil {
		contentType = "application/octet-stream"
	}
	b := make([]byte, 16)
	rand.Read(b)
	token := hex.EncodeToString(b)
	if _, err := s.db.ExecContext(ctx, s.db.Rebind(`INSERT INTO uploads (token, user_id, filename, size, content_type, created_at) VALUES (?, ?, ?, ?, ?, ?)`),
		token, userID, filename, size, contentType, time.Now().UnixMicro()); err != nil {
		return nil, fmt.Errorf("upload: new slot: %w", err)
	}
	u := s.opts.PublicURL + "/upload/" + token + "/" + url.PathEscape(filename)
	return &Slot{Token: token, PutURL: u, GetURL: u}, nil
}

type slotRow struct {
	Token       string        `db:"token"`
	Filename    string        `db:"filename"`
	Size        int64         `db:"size"`
	ContentType string        `db:"content_type"`
	CreatedAt   int64         `db:"created_at"`
	UploadedAt  sql.NullInt64 `db:"uploaded_at"`
}

func (s *Store) slot(ctx context.Context, token string) (*slotRow, error) {
	var r slotRow
	err := s.db.GetContext(ctx, &r, s.db.Rebind(`SELECT token, filename, size, content_type, created_at, uploaded_at FROM uploads WHERE token = ?`), token)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("upload: slot: %w", err)
	}
	return &r, nil
}

// Handler serves PUT and GET /upload/{token}/{name}.
func (s *Store) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("PUT /upload/{token}/{name}", s.put)
	mux.HandleFunc("GET /upload/{token}/{name}", s.get)
	mux.HandleFunc("HEAD /upload/{token}/{name}", s.get)
	return mux
}

func validToken(t string) bool {
	if len(t) != 32 {
		return false
	}
	_, err := hex.DecodeString(t)
	return err == nil
}

func (s *Store) put(w http.ResponseWriter, r *http.Request) {
	token := r.PathValue("token")
	if !validToken(token) {
		http.Error(w, "no such upload slot", http.StatusNotFound)
		return
	}
	slot, err := s.slot(r.Context(), token)
	if err != nil {
		http.Error(w, "no such upload slot", http.StatusNotFound)
		return
	}
	switch {
	case slot.Filename != r.PathValue("name"):
		http.Error(w, "no such upload slot", http.StatusNotFound)
		return
	case slot.UploadedAt.Valid:
		http.Error(w, "slot already used", http.StatusConflict)
		return
	case time.Since(time.UnixMicro(slot.CreatedAt)) > slotLifetime:
		http.Error(w, "slot expired", http.StatusForbidden)
		return
	case r.ContentLength != slot.Size:
		http.Error(w, "Content-Length differs from the requested size", http.StatusBadRequest)
		return
	}
	if ct := r.Header.Get("Content-Type"); ct != "" && ct != slot.ContentType {
		http.Error(w, "Content-Type differs from the requested type", http.StatusBadRequest)
		return
	}
	tmp, err := os.CreateTemp(s.dir, token+".part*")
	if err != nil {
		http.Error(w, "cannot store the file", http.StatusInternalServerError)
		return
	}
	defer os.Remove(tmp.Name())
	n, err := io.Copy(tmp, http.MaxBytesReader(w, r.Body, slot.Size))
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil || n != slot.Size {
		http.Error(w, "incomplete upload", http.StatusBadRequest)
		return
	}
	res, err := s.db.ExecContext(r.Context(), s.db.Rebind(`UPDATE uploads SET uploaded_at = ? WHERE token = ? AND uploaded_at IS NULL`), time.Now().UnixMicro(), token)
	if err == nil {
		if k, _ := res.RowsAffected(); k != 1 {
			http.Error(w, "slot already used", http.StatusConflict)
			return
		}
	}
	if err != nil || os.Rename(tmp.Name(), filepath.Join(s.dir, token)) != nil {
		http.Error(w, "cannot store the file", http.StatusInternalServerError)
		return
	}
	w.WriteHeader(http.StatusCreated)
}

func (s *Store) get(w http.ResponseWriter, r *http.Request) {
	token := r.PathValue("token")
	if !validToken(token) {
		http.NotFound(w, r)
		return
	}
	slot, err := s.slot(r.Context(), token)
	if err != nil || !slot.UploadedAt.Valid || slot.Filename != r.PathValue("name") {
		http.NotFound(w, r)
		return
	}
	f, err := os.Open(filepath.Join(s.dir, token))
	if err != nil {
		http.NotFound(w, r)
		return
	}
	defer f.Close()
	h := w.Header()
	h.Set("Content-Type", slot.ContentType)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Security-Policy", "default-src 'none'; sandbox")
	h.Set("Cache-Control", "public, max-age=31536000, immutable")
	if !strings.HasPrefix(slot.ContentType, "image/") {
		h.Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": slot.Filename}))
	}
	h.Set("Content-Length", strconv.FormatInt(slot.Size, 10))
	if r.Method == http.MethodHead {
		return
	}
	io.Copy(w, f)
}
