package upload

import (
	"context"
	"crypto/subtle"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Slot is a granted XEP-0363 upload: the client PUTs to PutURL and shares
// GetURL (the file's capability URL once stored).
type Slot struct {
	Token          string
	PutURL, GetURL string
	// Authorization is the value of the Authorization header the PUT
	// must carry (XEP-0363 §5 <header/>): the URL alone, which becomes
	// the shared download link, cannot upload.
	Authorization string
}

// Request grants userID a slot for one file of size bytes: ErrTooLarge
// over the size limit, ErrQuota over the user's quota, ErrBadName, and
// ErrType when the client declares a contentType ("" when it does not)
// that is not allowed. The declared type is not kept: the type is sniffed
// from the bytes at the PUT, and checked again.
func (s *Store) Request(ctx context.Context, userID int64, filename string, size int64, contentType string) (*Slot, error) {
	if size <= 0 {
		return nil, ErrEmpty
	}
	filename, err := cleanName(filename)
	if err != nil {
		return nil, err
	}
	if contentType != "" && !s.TypeAllowed(contentType) {
		return nil, ErrType
	}
	if err := s.checkSize(ctx, userID, size); err != nil {
		return nil, err
	}
	token, putKey := newToken(), newToken()
	if _, err := s.db.ExecContext(ctx, s.db.Rebind(`INSERT INTO uploads (token, user_id, filename, size, content_type, created_at, put_key) VALUES (?, ?, ?, ?, ?, ?, ?)`),
		token, userID, filename, size, "", time.Now().UnixMicro(), putKey); err != nil {
		return nil, fmt.Errorf("upload: new slot: %w", err)
	}
	u := s.opts.PublicURL + "/upload/" + token + "/" + url.PathEscape(filename)
	return &Slot{Token: token, PutURL: u, GetURL: u, Authorization: "Bearer " + putKey}, nil
}

type slotRow struct {
	Token      string        `db:"token"`
	UserID     int64         `db:"user_id"`
	Filename   string        `db:"filename"`
	Size       int64         `db:"size"`
	CreatedAt  int64         `db:"created_at"`
	UploadedAt sql.NullInt64 `db:"uploaded_at"`
	PutKey     string        `db:"put_key"`
}

func (s *Store) slot(ctx context.Context, token string) (*slotRow, error) {
	var r slotRow
	err := s.db.GetContext(ctx, &r, s.db.Rebind(`SELECT token, user_id, filename, size, created_at, uploaded_at, put_key FROM uploads WHERE token = ?`), token)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("upload: slot: %w", err)
	}
	return &r, nil
}

// Handler serves the capability URLs: PUT (a slot's upload), GET and HEAD
// /upload/{token}/{name}, and the CORS preflight (OPTIONS) for the
// configured web origins.
func (s *Store) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("PUT /upload/{token}/{name}", s.put)
	mux.HandleFunc("GET /upload/{token}/{name}", s.get)
	mux.HandleFunc("HEAD /upload/{token}/{name}", s.get)
	mux.HandleFunc("OPTIONS /upload/{token}/{name}", s.preflight)
	return mux
}

// corsOrigin is the Access-Control-Allow-Origin value for the request's
// Origin, or "" when that origin is not allowed.
func (s *Store) corsOrigin(r *http.Request) string {
	o := r.Header.Get("Origin")
	if o == "" {
		return ""
	}
	if slices.Contains(s.opts.Origins, "*") {
		return "*"
	}
	if slices.Contains(s.opts.Origins, o) {
		return o
	}
	return ""
}

func (s *Store) cors(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Add("Vary", "Origin")
	if o := s.corsOrigin(r); o != "" {
		h.Set("Access-Control-Allow-Origin", o)
		h.Set("Access-Control-Expose-Headers", "Content-Length, Content-Type, Content-Disposition")
	}
}

// preflight answers a browser's CORS preflight for PUT and GET.
func (s *Store) preflight(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Allow", "GET, HEAD, PUT, OPTIONS")
	h.Add("Vary", "Origin")
	if r.Header.Get("Origin") != "" {
		o := s.corsOrigin(r)
		if o == "" {
			http.Error(w, "origin not allowed", http.StatusForbidden)
			return
		}
		h.Set("Access-Control-Allow-Origin", o)
		h.Set("Access-Control-Allow-Methods", "GET, HEAD, PUT, OPTIONS")
		// The headers a slot may carry (XEP-0363 §5) and Content-Type.
		h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type, Cookie, Expires")
		h.Set("Access-Control-Max-Age", "86400")
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Store) put(w http.ResponseWriter, r *http.Request) {
	s.cors(w, r)
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
	case slot.PutKey != "" && subtle.ConstantTimeCompare([]byte(r.Header.Get("Authorization")), []byte("Bearer "+slot.PutKey)) != 1:
		// XEP-0363 §5: the slot's Authorization header is missing or wrong.
		http.Error(w, "the slot's Authorization header is required", http.StatusForbidden)
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
	res, err := s.db.ExecContext(r.Context(), s.db.Rebind(`UPDATE uploads SET uploaded_at = ? WHERE token = ? AND uploaded_at IS NULL`), time.Now().UnixMicro(), token)
	if err != nil {
		http.Error(w, "cannot store the file", http.StatusInternalServerError)
		return
	}
	if k, _ := res.RowsAffected(); k != 1 {
		http.Error(w, "slot already used", http.StatusConflict)
		return
	}
	rec, err := s.receive(r.Body, slot.Size)
	if err == nil && rec.size != slot.Size {
		os.Remove(rec.tmp)
		err = io.ErrUnexpectedEOF
	}
	if err != nil {
		// The slot may be used again.
		s.db.ExecContext(context.WithoutCancel(r.Context()), s.db.Rebind(`UPDATE uploads SET uploaded_at = NULL WHERE token = ?`), token)
		http.Error(w, "incomplete upload", http.StatusBadRequest)
		return
	}
	if _, err := s.commit(r.Context(), slot.UserID, token, slot.Filename, rec); err != nil {
		s.db.ExecContext(context.WithoutCancel(r.Context()), s.db.Rebind(`UPDATE uploads SET uploaded_at = NULL WHERE token = ?`), token)
		if errors.Is(err, ErrQuota) {
			http.Error(w, "upload quota exceeded", http.StatusRequestEntityTooLarge)
			return
		}
		if errors.Is(err, ErrFull) {
			http.Error(w, "file storage full", http.StatusInsufficientStorage)
			return
		}
		if errors.Is(err, ErrType) {
			http.Error(w, "File type not allowed", http.StatusUnsupportedMediaType)
			return
		}
		http.Error(w, "cannot store the file", http.StatusInternalServerError)
		return
	}
	w.WriteHeader(http.StatusCreated)
}

// get serves a capability URL: whoever knows the token may download.
func (s *Store) get(w http.ResponseWriter, r *http.Request) {
	s.cors(w, r)
	token := r.PathValue("token")
	if !validToken(token) {
		http.NotFound(w, r)
		return
	}
	f, err := s.byToken(r.Context(), token)
	if err != nil || f.Name != r.PathValue("name") {
		http.NotFound(w, r)
		return
	}
	s.serve(w, r, f, false)
}

// ServeFile serves file id (or its thumbnail) to viewer on a checked path
// (the bridge with the session cookie, REST on a user's behalf): 404 when
// it does not exist, 403 when viewer may not download it.
func (s *Store) ServeFile(w http.ResponseWriter, r *http.Request, viewer, id int64, thumb bool) error {
	f, err := s.Get(r.Context(), id)
	if errors.Is(err, ErrNotFound) || err == nil && thumb && !f.Thumb {
		return ErrNotFound
	}
	if err != nil {
		return err
	}
	ok, err := s.CanDownload(r.Context(), viewer, f)
	if err != nil {
		return err
	}
	if !ok {
		return ErrForbidden
	}
	w.Header().Set("Cache-Control", "private, max-age=3600")
	s.serve(w, r, f, thumb)
	return nil
}

// ErrForbidden: the viewer may not download the file.
var ErrForbidden = errors.New("upload: forbidden")

func (s *Store) serve(w http.ResponseWriter, r *http.Request, f *File, thumb bool) {
	path, ctype := filepath.Join(s.dir, f.Token), f.ContentType
	if thumb {
		path, ctype = path+".thumb", "image/jpeg"
	}
	fh, err := os.Open(path)
	if err != nil {
		http.NotFound(w, r)
		return
	}
	defer fh.Close()
	st, err := fh.Stat()
	if err != nil {
		http.NotFound(w, r)
		return
	}
	h := w.Header()
	h.Set("Content-Type", ctype)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Security-Policy", "default-src 'none'; sandbox")
	if h.Get("Cache-Control") == "" {
		h.Set("Cache-Control", "public, max-age=31536000, immutable")
	}
	disp := "attachment"
	if strings.HasPrefix(ctype, "image/") && ctype != "image/svg+xml" {
		disp = "inline"
	}
	h.Set("Content-Disposition", mime.FormatMediaType(disp, map[string]string{"filename": f.Name}))
	h.Set("Content-Length", strconv.FormatInt(st.Size(), 10))
	if r.Method == http.MethodHead {
		return
	}
	io.Copy(w, fh)
}
