// Package upload is Vestnik's one file store and its XMPP door. Every file,
// whatever door it comes through — an XEP-0363 slot PUT by a Jabber client,
// REST (POST /api/v1/files), the web client (POST /files) — is stored here
// under the data directory with a size limit, a per-user quota, a content
// type sniffed from its bytes and, for images, a JPEG thumbnail.
//
// A file has two ways out. Its capability URL, /upload/{token}/{name}, is
// what Jabber clients download without credentials: the token is 256
// random bits, and a message carries a file by naming that URL
// (xmppcore.AttachFiles links it to the message). The checked paths (the
// bridge's GET /files/{id}, REST's GET /api/v1/files/{id}) serve it only to
// its uploader and to whoever may read a message carrying it — the
// archive's access rule (mam.Store.CarriesReadable).
package upload

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
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
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jmoiron/sqlx"

	"vestnik/xmppcore"
	"vestnik/xmppcore/mam"
)

// NS is the XEP-0363 namespace.
const NS = "urn:xmpp:http:upload:0"

// Limits and defaults.
const (
	DefaultMaxSize = 100 << 20 // bytes per file (Options.MaxSize)
	DefaultQuota   = 5 << 30   // bytes stored per user (Options.Quota)
	DefaultReserve = 1 << 30   // bytes of disk left free under the file store (Options.DiskReserve)
	MaxFilesPerMsg = 10        // files one message may carry
	maxNameLen     = 200       // characters in a file name
	slotLifetime   = 5 * time.Minute
	tokenBytes     = 32 // random bytes of a capability token (64 hex digits)
	defaultTimeout = 10 * time.Second
	sniffLen       = 512 // bytes http.DetectContentType looks at
	thumbSide      = 320 // pixels: a thumbnail fits in thumbSide × thumbSide
	maxThumbPixels = 50_000_000
	thumbQuality   = 80
)

var (
	ErrTooLarge = errors.New("upload: file too large")
	ErrQuota    = errors.New("upload: quota exceeded")
	// ErrFull: the server's file storage is full (Options.Total, or the
	// disk down to Options.DiskReserve).
	ErrFull     = errors.New("upload: file storage full")
	ErrBadName  = errors.New("upload: bad file name")
	ErrEmpty    = errors.New("upload: empty file")
	ErrNotFound = errors.New("upload: not found")
	// ErrUnknownFile: a message names a file that does not exist or that
	// the sender may not share.
	ErrUnknownFile = errors.New("upload: unknown file")
	// ErrType: the file's type is not among Options.AllowedTypes (the
	// type a client declares for a slot, or the one sniffed from the
	// bytes at every door).
	ErrType = errors.New("upload: file type not allowed")
)

// Options tune the store; zero values are the documented defaults.
type Options struct {
	// MaxSize is the largest file accepted, in bytes (DefaultMaxSize).
	MaxSize int64
	// Quota is how many bytes one user may have stored (DefaultQuota;
	// negative: unlimited).
	Quota int64
	// PublicURL is the base URL clients reach the HTTP server at, e.g.
	// https://chat.example.com behind a proxy; slot and file URLs start
	// with it.
	PublicURL string
	// Origins are the web origins (https://portal.example.com, or "*")
	// allowed by CORS on /upload/ (Converse.js and other browser clients
	// PUT and GET there from their own pages); none: no CORS.
	Origins []string
	// Total caps the bytes of all stored files (0: no cap but the disk
	// reserve).
	Total int64
	// DiskReserve is how many bytes of disk a new file must leave free
	// (DefaultReserve; negative: none).
	DiskReserve int64
	// AllowedTypes are the media types users may upload: "text/plain",
	// or every subtype of a type, "image/*"; empty: every type. A file's
	// type is sniffed from its bytes (contentType), so a declared type or
	// a name cannot get round the list: bytes the sniffer does not
	// recognise count as application/octet-stream.
	AllowedTypes []string
	// OrphanAfter is how long a file no live message carries is kept
	// (DefaultOrphanAfter); SweepEvery how often Sweep runs
	// (DefaultSweepEvery).
	OrphanAfter, SweepEvery time.Duration
}

// Store keeps file records in the database and their bytes under dir: the
// file at dir/{token}, its thumbnail at dir/{token}.thumb.
type Store struct {
	db   *sqlx.DB
	arch *mam.Store
	dir  string
	opts Options
}

// NewStore returns the file store keeping files under dir; arch decides
// who may read the messages that carry them.
func NewStore(db *sqlx.DB, dir string, arch *mam.Store, opts Options) (*Store, error) {
	if opts.MaxSize <= 0 {
		opts.MaxSize = DefaultMaxSize
	}
	if opts.Quota == 0 {
		opts.Quota = DefaultQuota
	}
	if opts.DiskReserve == 0 {
		opts.DiskReserve = DefaultReserve
	}
	if opts.OrphanAfter <= 0 {
		opts.OrphanAfter = DefaultOrphanAfter
	}
	if opts.SweepEvery <= 0 {
		opts.SweepEvery = DefaultSweepEvery
	}
	opts.PublicURL = strings.TrimRight(opts.PublicURL, "/")
	for i, t := range opts.AllowedTypes {
		t = strings.ToLower(strings.TrimSpace(t))
		major, minor, ok := strings.Cut(t, "/")
		if !ok || major == "" || minor == "" || strings.ContainsAny(t, " ;,") || (major == "*" && minor != "*") {
			return nil, fmt.Errorf("upload: allowed type %q is not a media type such as text/plain or image/*", opts.AllowedTypes[i])
		}
		opts.AllowedTypes[i] = t
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("upload: %w", err)
	}
	return &Store{db: db, arch: arch, dir: dir, opts: opts}, nil
}

// MaxSize is the largest file accepted.
func (s *Store) MaxSize() int64 { return s.opts.MaxSize }

// Quota is how many bytes one user may store (negative: unlimited).
func (s *Store) Quota() int64 { return s.opts.Quota }

// File is a stored file.
type File struct {
	ID          int64  `db:"id" json:"id"`
	Token       string `db:"token" json:"-"`
	UserID      int64  `db:"user_id" json:"-"`
	Name        string `db:"name" json:"name"`
	Size        int64  `db:"size" json:"size"`
	ContentType string `db:"content_type" json:"content_type"`
	SHA256      string `db:"sha256" json:"-"`
	Thumb       bool   `db:"thumb" json:"-"`
	CreatedAt   int64  `db:"created_at" json:"-"` // unix µs
}

const fileColumns = `id, token, user_id, name, size, content_type, sha256, thumb, created_at`

// URL is the file's capability URL (what Jabber clients download).
func (s *Store) URL(f *File) string {
	return s.opts.PublicURL + "/upload/" + f.Token + "/" + url.PathEscape(f.Name)
}

// Ref is f as a message carries it.
func (s *Store) Ref(f *File) xmppcore.FileRef {
	return xmppcore.FileRef{ID: f.ID, URL: s.URL(f), Name: f.Name, Size: f.Size, ContentType: f.ContentType, Thumb: f.Thumb}
}

// TypeAllowed reports whether files of media type ct (parameters such as
// charset ignored) may be uploaded (Options.AllowedTypes).
func (s *Store) TypeAllowed(ct string) bool {
	if len(s.opts.AllowedTypes) == 0 {
		return true
	}
	ct, _, _ = strings.Cut(ct, ";")
	ct = strings.ToLower(strings.TrimSpace(ct))
	major, _, _ := strings.Cut(ct, "/")
	for _, t := range s.opts.AllowedTypes {
		if t == ct || t == "*/*" || (strings.HasSuffix(t, "/*") && t[:len(t)-2] == major) {
			return true
		}
	}
	return false
}

// cleanName checks a client's file name: a name, not a path (no '/' or
// '\\'), else ErrBadName.
func cleanName(name string) (string, error) {
	if strings.ContainsAny(name, "/\\") {
		return "", ErrBadName
	}
	if name == "." || name == "" || name == ".." || !utf8.ValidString(name) ||
		utf8.RuneCountInString(name) > maxNameLen || strings.ContainsAny(name, "\x00\r\n") {
		return "", ErrBadName
	}
	return name, nil
}

func newToken() string {
	b := make([]byte, tokenBytes)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// validToken accepts the store's tokens (64 hex digits) and the 32-digit
// ones of slots granted before the file store.
func validToken(t string) bool {
	if len(t) != 2*tokenBytes && len(t) != 32 {
		return false
	}
	_, err := hex.DecodeString(t)
	return err == nil
}

// Used is how many bytes userID has stored.
func (s *Store) Used(ctx context.Context, userID int64) (int64, error) {
	var n sql.NullInt64
	if err := s.db.GetContext(ctx, &n, s.db.Rebind(`SELECT SUM(size) FROM files WHERE user_id = ?`), userID); err != nil {
		return 0, fmt.Errorf("upload: used by %d: %w", userID, err)
	}
	return n.Int64, nil
}

// checkSize tells whether userID may store size more bytes (size 0: any
// file at all): ErrTooLarge, ErrQuota or nil.
func (s *Store) checkSize(ctx context.Context, userID, size int64) error {
	if size > s.opts.MaxSize {
		return ErrTooLarge
	}
	if s.opts.Quota < 0 {
		return s.checkRoom(ctx, size)
	}
	used, err := s.Used(ctx, userID)
	if err != nil {
		return err
	}
	if used+max(size, 1) > s.opts.Quota {
		return ErrQuota
	}
	return s.checkRoom(ctx, size)
}

// checkRoom tells whether the server may store size more bytes: the
// total cap and the disk reserve (ErrFull).
func (s *Store) checkRoom(ctx context.Context, size int64) error {
	if free := diskFree(s.dir); s.opts.DiskReserve > 0 && free >= 0 && free-size < s.opts.DiskReserve {
		return ErrFull
	}
	if s.opts.Total <= 0 {
		return nil
	}
	var all sql.NullInt64
	if err := s.db.GetContext(ctx, &all, `SELECT SUM(size) FROM files`); err != nil {
		return fmt.Errorf("upload: stored bytes: %w", err)
	}
	if all.Int64+max(size, 1) > s.opts.Total {
		return ErrFull
	}
	return nil
}

// received is a file read to a temporary file, not yet stored.
type received struct {
	tmp   string
	size  int64
	sha   string
	ctype string
}

// sniffer keeps the first sniffLen bytes written through it.
type sniffer struct{ head []byte }

func (w *sniffer) Write(p []byte) (int, error) {
	if n := sniffLen - len(w.head); n > 0 {
		w.head = append(w.head, p[:min(n, len(p))]...)
	}
	return len(p), nil
}

// receive streams r into a temporary file under the store's directory,
// hashing and sniffing as it writes (memory stays flat whatever the size),
// and refuses more than limit bytes with ErrTooLarge.
func (s *Store) receive(r io.Reader, limit int64) (*received, error) {
	tmp, err := os.CreateTemp(s.dir, "part-*")
	if err != nil {
		return nil, fmt.Errorf("upload: temporary file: %w", err)
	}
	h := sha256.New()
	sn := &sniffer{head: make([]byte, 0, sniffLen)}
	n, err := io.Copy(io.MultiWriter(tmp, h, sn), io.LimitReader(r, limit+1))
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil && n > limit {
		err = ErrTooLarge
	}
	if err == nil && n == 0 {
		err = ErrEmpty
	}
	if err != nil {
		os.Remove(tmp.Name())
		return nil, err
	}
	return &received{tmp: tmp.Name(), size: n, sha: hex.EncodeToString(h.Sum(nil)), ctype: http.DetectContentType(sn.head)}, nil
}

// contentType is the sniffed type, refined by the name's extension only
// where sniffing cannot tell (office documents are zip files; most
// formats sniff as octet-stream). Never a type a browser would render as
// a page: downloads are served with nosniff and a sandbox anyway.
func contentType(sniffed, name string) string {
	if sniffed != "application/octet-stream" && sniffed != "application/zip" {
		return sniffed
	}
	ext := strings.ToLower(filepath.Ext(name))
	if t, ok := zipFormats[ext]; ok && sniffed == "application/zip" {
		return t
	}
	if byExt := mime.TypeByExtension(ext); byExt != "" &&
		!strings.HasPrefix(byExt, "text/html") && !strings.Contains(byExt, "xml") && !strings.Contains(byExt, "javascript") {
		return byExt
	}
	return sniffed
}

// zipFormats are document formats that are zip files, which systems
// without a mime.types file do not know by extension.
var zipFormats = map[string]string{
	".docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
	".xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
	".pptx": "application/vnd.openxmlformats-officedocument.presentationml.presentation",
	".odt":  "application/vnd.oasis.opendocument.text",
	".ods":  "application/vnd.oasis.opendocument.spreadsheet",
	".odp":  "application/vnd.oasis.opendocument.presentation",
}

// commit stores a received file for userID under token (a slot's, or a
// new one), within the quota, makes its thumbnail and returns the record.
// On error the temporary file is gone.
func (s *Store) commit(ctx context.Context, userID int64, token, name string, rec *received) (*File, error) {
	defer os.Remove(rec.tmp)
	ctx, cancel := context.WithTimeout(ctx, defaultTimeout)
	defer cancel()
	f := &File{Token: token, UserID: userID, Name: name, Size: rec.size, ContentType: contentType(rec.ctype, name),
		SHA256: rec.sha, CreatedAt: time.Now().UnixMicro()}
	// The allowed types are checked on what the bytes are: a file the
	// sniffer does not recognise is application/octet-stream here, whatever
	// its name says (an executable named notes.txt is not text).
	checked := f.ContentType
	if rec.ctype == "application/octet-stream" {
		checked = rec.ctype
	}
	if !s.TypeAllowed(checked) {
		return nil, ErrType
	}
	path := filepath.Join(s.dir, token)
	if err := os.Rename(rec.tmp, path); err != nil {
		return nil, fmt.Errorf("upload: store file: %w", err)
	}
	if free := diskFree(s.dir); s.opts.DiskReserve > 0 && free >= 0 && free < s.opts.DiskReserve {
		os.Remove(path)
		return nil, ErrFull
	}
	f.Thumb = makeThumb(path, path+".thumb", f.ContentType) == nil
	quota, total := s.opts.Quota, s.opts.Total
	if quota < 0 {
		quota = 1 << 62
	}
	if total <= 0 {
		total = 1 << 62
	}
	// One statement checks the quota and the total and inserts, so two
	// uploads racing on SQLite (serialized writers) cannot both pass them.
	err := s.db.GetContext(ctx, &f.ID, s.db.Rebind(`INSERT INTO files (token, user_id, name, size, content_type, sha256, thumb, created_at)
		SELECT CAST(? AS TEXT), CAST(? AS BIGINT), CAST(? AS TEXT), CAST(? AS BIGINT), CAST(? AS TEXT),
			CAST(? AS TEXT), CAST(? AS BOOLEAN), CAST(? AS BIGINT)
		WHERE COALESCE((SELECT SUM(size) FROM files WHERE user_id = ?), 0) + ? <= ?
		AND COALESCE((SELECT SUM(size) FROM files), 0) + ? <= ?
		RETURNING id`), f.Token, f.UserID, f.Name, f.Size, f.ContentType, f.SHA256, f.Thumb, f.CreatedAt,
		userID, f.Size, quota, f.Size, total)
	if err != nil {
		os.Remove(path)
		os.Remove(path + ".thumb")
		if errors.Is(err, sql.ErrNoRows) {
			if used, uerr := s.Used(ctx, userID); uerr == nil && used+f.Size <= quota {
				return nil, ErrFull // within the user's quota: the total refused it
			}
			return nil, ErrQuota
		}
		return nil, fmt.Errorf("upload: record file: %w", err)
	}
	return f, nil
}

// Save stores a file userID sends (REST, the web client): streamed to
// disk, never held in memory. ErrBadName, ErrEmpty, ErrTooLarge, ErrQuota,
// ErrType.
func (s *Store) Save(ctx context.Context, userID int64, name string, r io.Reader) (*File, error) {
	name, err := cleanName(name)
	if err != nil {
		return nil, err
	}
	if err := s.checkSize(ctx, userID, 0); err != nil {
		return nil, err
	}
	return s.SaveReceived(ctx, userID, name, r)
}

// SaveReceived is Save for a door that learns the uploader only after
// reading the file (a multipart form whose user field comes last): the
// quota is checked when the file is recorded.
func (s *Store) SaveReceived(ctx context.Context, userID int64, name string, r io.Reader) (*File, error) {
	name, err := cleanName(name)
	if err != nil {
		return nil, err
	}
	rec, err := s.receive(r, s.opts.MaxSize)
	if err != nil {
		return nil, err
	}
	return s.commit(ctx, userID, newToken(), name, rec)
}

// Receive reads a file before its uploader is known (see SaveReceived);
// give the result to Commit or Discard.
func (s *Store) Receive(name string, r io.Reader) (*Received, error) {
	name, err := cleanName(name)
	if err != nil {
		return nil, err
	}
	rec, err := s.receive(r, s.opts.MaxSize)
	if err != nil {
		return nil, err
	}
	return &Received{name: name, rec: rec}, nil
}

// Received is a file read to disk and not yet recorded.
type Received struct {
	name string
	rec  *received
}

// Commit records the file for userID (quota checked).
func (s *Store) Commit(ctx context.Context, userID int64, r *Received) (*File, error) {
	return s.commit(ctx, userID, newToken(), r.name, r.rec)
}

// Discard removes a file that will not be recorded.
func (r *Received) Discard() { os.Remove(r.rec.tmp) }

// Get returns file id, whoever may download it.
func (s *Store) Get(ctx context.Context, id int64) (*File, error) {
	ctx, cancel := context.WithTimeout(ctx, defaultTimeout)
	defer cancel()
	var f File
	err := s.db.GetContext(ctx, &f, s.db.Rebind(`SELECT `+fileColumns+` FROM files WHERE id = ?`), id)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("upload: file %d: %w", id, err)
	}
	return &f, nil
}

func (s *Store) byToken(ctx context.Context, token string) (*File, error) {
	var f File
	err := s.db.GetContext(ctx, &f, s.db.Rebind(`SELECT `+fileColumns+` FROM files WHERE token = ?`), token)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("upload: file: %w", err)
	}
	return &f, nil
}

// CanDownload reports whether viewer may download f on the checked paths:
// the uploader, and whoever may read a message carrying it (the
// archive's access rule, not a copy of it).
func (s *Store) CanDownload(ctx context.Context, viewer int64, f *File) (bool, error) {
	if viewer != 0 && f.UserID == viewer {
		return true, nil
	}
	return s.arch.CarriesReadable(ctx, viewer, f.ID)
}

// tokensIn finds capability tokens in text: /upload/{token}/.
func tokensIn(text string) []string {
	var out []string
	for rest := text; ; {
		i := strings.Index(rest, "/upload/")
		if i < 0 {
			return out
		}
		rest = rest[i+len("/upload/"):]
		j := strings.IndexByte(rest, '/')
		if j > 0 && validToken(rest[:j]) && !slices.Contains(out, rest[:j]) {
			out = append(out, rest[:j])
			if len(out) == MaxFilesPerMsg {
				return out
			}
		}
	}
}

// FilesIn implements xmppcore.Files: the stored files whose capability
// URLs the body names, in the order named.
func (s *Store) FilesIn(ctx context.Context, body string) ([]xmppcore.FileRef, error) {
	tokens := tokensIn(body)
	if len(tokens) == 0 {
		return nil, nil
	}
	ctx, cancel := context.WithTimeout(ctx, defaultTimeout)
	defer cancel()
	q, args, err := sqlx.In(`SELECT `+fileColumns+` FROM files WHERE token IN (?)`, tokens)
	if err != nil {
		return nil, err
	}
	var files []File
	if err := s.db.SelectContext(ctx, &files, s.db.Rebind(q), args...); err != nil {
		return nil, fmt.Errorf("upload: files in a message: %w", err)
	}
	out := make([]xmppcore.FileRef, 0, len(files))
	for _, t := range tokens {
		for i := range files {
			if files[i].Token == t {
				out = append(out, s.Ref(&files[i]))
			}
		}
	}
	return out, nil
}

// Compose is the body of a message userID sends with files (REST, the web
// client): the text, then each file's capability URL on a line of its own
// (a file alone is just its URL, as Jabber clients send it, so they show
// it inline). The core then links the files (xmppcore.AttachFiles).
// Each id must name a file the sender may download (their own, or one
// shared with them); otherwise ErrUnknownFile.
func (s *Store) Compose(ctx context.Context, userID int64, text string, ids []int64) (string, []*File, error) {
	if len(ids) > MaxFilesPerMsg {
		return "", nil, fmt.Errorf("%w: at most %d files per message", ErrUnknownFile, MaxFilesPerMsg)
	}
	var files []*File
	lines := []string{}
	if strings.TrimSpace(text) != "" {
		lines = append(lines, text)
	}
	for _, id := range ids {
		f, err := s.Get(ctx, id)
		if errors.Is(err, ErrNotFound) {
			return "", nil, fmt.Errorf("%w: no file %d", ErrUnknownFile, id)
		}
		if err != nil {
			return "", nil, err
		}
		ok, err := s.CanDownload(ctx, userID, f)
		if err != nil {
			return "", nil, err
		}
		if !ok {
			return "", nil, fmt.Errorf("%w: no file %d", ErrUnknownFile, id)
		}
		if slices.ContainsFunc(files, func(g *File) bool { return g.ID == f.ID }) {
			continue
		}
		files = append(files, f)
		lines = append(lines, s.URL(f))
	}
	return strings.Join(lines, "\n"), files, nil
}

// WebPath is where the web client downloads file id (checked, with the
// session cookie); WebThumbPath its thumbnail.
func WebPath(id int64) string      { return "/files/" + strconv.FormatInt(id, 10) }
func WebThumbPath(id int64) string { return WebPath(id) + "/thumb" }
