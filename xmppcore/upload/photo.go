package upload

import (
	"bytes"
	"context"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"image"
	"image/jpeg"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/jmoiron/sqlx"

	"vestnik/roster"
	"vestnik/xmppcore"
)

// Users' photos (issue 11). A user has at most two: one they uploaded
// ("own", from the web client) and one from the HR import's photo URL
// ("hr"); the own one wins. Both are kept as a square JPEG the server made
// (PhotoSide pixels, centre-cropped), in user_photos (migration 0230), and
// served by the bridge at PhotoPath with the hash as version.
//
// The HR photo is fetched by the server, never by browsers, and only from
// a URL the HR import gave (an org-scope REST token or the CLI, trusted
// like the rest of the org data; roster checks it is http or https): on
// the first request for the photo after the URL changed, with a timeout,
// a size limit, at most a few redirects, and only if the bytes decode as a
// PNG, JPEG or GIF of bounded dimensions. A failed fetch is remembered and
// tried again after PhotoRetry. The own photo also becomes the vCard PHOTO
// and the PEP avatar (xmppcore.Server.SetPhoto), so Jabber clients show it;
// one a Jabber client sets comes the other way (PhotoFromXMPP).

// Photo limits.
const (
	PhotoSide      = 256              // pixels of the square photo
	MaxPhotoSize   = 10 << 20         // bytes of an uploaded or fetched image
	PhotoRetry     = time.Hour        // a failed HR fetch is tried again after this
	photoFetchTTL  = 15 * time.Second // one HR fetch, redirects included
	photoRedirects = 3
)

var (
	// ErrNotImage: the bytes are not a PNG, JPEG or GIF image the server
	// can read (or its dimensions are absurd).
	ErrNotImage = errors.New("upload: not a PNG, JPEG or GIF image")
	// ErrNoPhoto: the user has no photo.
	ErrNoPhoto = errors.New("upload: no photo")
)

// PhotoPath is the URL path a user's photo is served at.
func PhotoPath(userID int64) string { return "/avatars/user/" + strconv.FormatInt(userID, 10) }

// PhotoSetter is what the photos need of the XMPP core: publishing the
// photo as the vCard PHOTO and avatar (xmppcore.Server).
type PhotoSetter interface {
	SetPhoto(ctx context.Context, login, mimeType, binval string) error
}

// Photos owns users' photos.
type Photos struct {
	db     *sqlx.DB
	users  *roster.Store
	xmpp   PhotoSetter
	client *http.Client
	log    *slog.Logger

	mu       sync.Mutex
	fetching map[int64]chan struct{} // user id → closed when that user's HR fetch ends
	onChange func(userID int64, version string)
}

// OnChange registers f, told of every change of a user's own photo (from
// the web client or an XMPP client) with the new version ("" = none left).
// Call before serving; f must not block.
func (p *Photos) OnChange(f func(userID int64, version string)) {
	p.mu.Lock()
	p.onChange = f
	p.mu.Unlock()
}

func (p *Photos) changed(ctx context.Context, userID int64) {
	p.mu.Lock()
	f := p.onChange
	p.mu.Unlock()
	if f == nil {
		return
	}
	v, err := p.Version(ctx, userID)
	if err != nil {
		p.log.Warn("photo version", "user", userID, "err", err)
		return
	}
	f(userID, v)
}

// PhotoFromXMPP makes a photo a Jabber client set (vCard PHOTO or PEP
// avatar; xmppcore.PhotoListener) the user's own photo here too, without
// publishing it back; an empty binval removes it. An image the server
// cannot read is logged and ignored.
func (p *Photos) PhotoFromXMPP(ctx context.Context, userID int64, mimeType, binval string) {
	if binval == "" {
		if err := p.removeOwn(ctx, userID); err != nil {
			p.log.Error("photo from xmpp", "user", userID, "err", err)
			return
		}
		p.changed(ctx, userID)
		return
	}
	raw, err := base64.StdEncoding.DecodeString(binval)
	if err == nil && len(raw) > MaxPhotoSize {
		err = ErrTooLarge
	}
	var img []byte
	if err == nil {
		img, err = squarePhoto(raw)
	}
	if err == nil {
		err = p.put(ctx, userID, "own", "", img, photoHash(img))
	}
	if err != nil {
		p.log.Warn("photo from xmpp", "user", userID, "type", mimeType, "err", err)
		return
	}
	p.changed(ctx, userID)
}

// NewPhotos returns the photo store; xmpp may be nil (no vCard or avatar
// is published then).
func NewPhotos(db *sqlx.DB, users *roster.Store, xmpp PhotoSetter, log *slog.Logger) *Photos {
	if log == nil {
		log = slog.Default()
	}
	client := &http.Client{
		Timeout: photoFetchTTL,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) >= photoRedirects {
				return errors.New("too many redirects")
			}
			if req.URL.Scheme != "http" && req.URL.Scheme != "https" {
				return errors.New("redirect to a non-http URL")
			}
			return nil
		},
	}
	return &Photos{db: db, users: users, xmpp: xmpp, client: client, log: log, fetching: map[int64]chan struct{}{}}
}

// A UserPhoto is a photo as served.
type UserPhoto struct {
	Image   []byte // JPEG
	Version string // changes with the image
}

// Set makes the image read from r the user's own photo: it is decoded,
// centre-cropped, scaled to PhotoSide and stored as JPEG; Jabber clients
// get it as the vCard PHOTO and avatar. ErrTooLarge past MaxPhotoSize,
// ErrNotImage for anything but a readable PNG, JPEG or GIF; then nothing
// changes. It returns the new version.
func (p *Photos) Set(ctx context.Context, userID int64, r io.Reader) (string, error) {
	u, err := p.users.UserByID(ctx, userID)
	if err != nil {
		return "", fmt.Errorf("upload: photo of %d: %w", userID, err)
	}
	raw, err := io.ReadAll(io.LimitReader(r, MaxPhotoSize+1))
	if err != nil {
		return "", fmt.Errorf("upload: read photo: %w", err)
	}
	if len(raw) > MaxPhotoSize {
		return "", ErrTooLarge
	}
	img, err := squarePhoto(raw)
	if err != nil {
		return "", err
	}
	hash := photoHash(img)
	if err := p.put(ctx, userID, "own", "", img, hash); err != nil {
		return "", err
	}
	if p.xmpp != nil {
		if err := p.xmpp.SetPhoto(ctx, u.Login, "image/jpeg", base64.StdEncoding.EncodeToString(img)); err != nil {
			return "", err
		}
	}
	p.changed(ctx, userID)
	return hash, nil
}

// Remove deletes the user's own photo (the HR one, if any, shows again)
// and their vCard PHOTO and avatar.
func (p *Photos) Remove(ctx context.Context, userID int64) error {
	u, err := p.users.UserByID(ctx, userID)
	if err != nil {
		return fmt.Errorf("upload: photo of %d: %w", userID, err)
	}
	if err := p.removeOwn(ctx, userID); err != nil {
		return err
	}
	if p.xmpp != nil {
		if err := p.xmpp.SetPhoto(ctx, u.Login, "", ""); err != nil {
			return err
		}
	}
	p.changed(ctx, userID)
	return nil
}

func (p *Photos) removeOwn(ctx context.Context, userID int64) error {
	ctx, cancel := context.WithTimeout(ctx, defaultTimeout)
	defer cancel()
	if _, err := p.db.ExecContext(ctx, p.db.Rebind(`DELETE FROM user_photos WHERE user_id = ? AND source = 'own'`), userID); err != nil {
		return fmt.Errorf("upload: remove photo of %d: %w", userID, err)
	}
	return nil
}

func (p *Photos) put(ctx context.Context, userID int64, source, url string, img []byte, hash string) error {
	ctx, cancel := context.WithTimeout(ctx, defaultTimeout)
	defer cancel()
	_, err := p.db.ExecContext(ctx, p.db.Rebind(`INSERT INTO user_photos (user_id, source, url, image, hash, updated_at) VALUES (?, ?, ?, ?, ?, ?)
		ON CONFLICT (user_id, source) DO UPDATE SET url = excluded.url, image = excluded.image, hash = excluded.hash, updated_at = excluded.updated_at`),
		userID, source, url, img, hash, time.Now().UnixMicro())
	if err != nil {
		return fmt.Errorf("upload: store photo of %d: %w", userID, err)
	}
	return nil
}

type photoRow struct {
	UserID    int64  `db:"user_id"`
	Source    string `db:"source"`
	URL       string `db:"url"`
	Image     []byte `db:"image"`
	Hash      string `db:"hash"`
	UpdatedAt int64  `db:"updated_at"`
}

// version decides a user's photo version from their rows and HR URL: the
// own photo's hash; else the HR photo's, when fetched from the current
// URL; else, for a URL not fetched yet (or due for a retry), one made from
// the URL (the first request fetches it); "" = no photo.
func version(own, hr *photoRow, photoURL string, now time.Time) string {
	switch {
	case own != nil:
		return own.Hash
	case photoURL == "":
		return ""
	case hr != nil && hr.URL == photoURL && hr.Hash != "":
		return hr.Hash
	case hr != nil && hr.URL == photoURL && now.Sub(time.UnixMicro(hr.UpdatedAt)) < PhotoRetry:
		return "" // failed recently
	}
	sum := sha256.Sum256([]byte(photoURL))
	return "u" + hex.EncodeToString(sum[:6])
}

// Versions returns the photo version of each of users who has one (the
// caller has them already: the contact list).
func (p *Photos) Versions(ctx context.Context, users []roster.User) (map[int64]string, error) {
	ctx, cancel := context.WithTimeout(ctx, defaultTimeout)
	defer cancel()
	var rows []photoRow
	if err := p.db.SelectContext(ctx, &rows, `SELECT user_id, source, url, hash, updated_at FROM user_photos`); err != nil {
		return nil, fmt.Errorf("upload: photo versions: %w", err)
	}
	own, hr := map[int64]*photoRow{}, map[int64]*photoRow{}
	for i := range rows {
		if rows[i].Source == "own" {
			own[rows[i].UserID] = &rows[i]
		} else {
			hr[rows[i].UserID] = &rows[i]
		}
	}
	now := time.Now()
	out := make(map[int64]string)
	for _, u := range users {
		if v := version(own[u.ID], hr[u.ID], u.PhotoURL, now); v != "" {
			out[u.ID] = v
		}
	}
	return out, nil
}

// Version is one user's photo version, "" if none.
func (p *Photos) Version(ctx context.Context, userID int64) (string, error) {
	u, err := p.users.UserByID(ctx, userID)
	if err != nil {
		return "", err
	}
	own, hr, err := p.rows(ctx, userID, false)
	if err != nil {
		return "", err
	}
	return version(own, hr, u.PhotoURL, time.Now()), nil
}

func (p *Photos) rows(ctx context.Context, userID int64, withImage bool) (own, hr *photoRow, err error) {
	ctx, cancel := context.WithTimeout(ctx, defaultTimeout)
	defer cancel()
	cols := `user_id, source, url, hash, updated_at`
	if withImage {
		cols += `, image`
	}
	var rows []photoRow
	if err := p.db.SelectContext(ctx, &rows, p.db.Rebind(`SELECT `+cols+` FROM user_photos WHERE user_id = ?`), userID); err != nil {
		return nil, nil, fmt.Errorf("upload: photo of %d: %w", userID, err)
	}
	for i := range rows {
		if rows[i].Source == "own" {
			own = &rows[i]
		} else {
			hr = &rows[i]
		}
	}
	return own, hr, nil
}

// Get returns the user's photo: their own, else the HR import's (fetched
// now if its URL is new or a retry is due). ErrNoPhoto if there is none.
func (p *Photos) Get(ctx context.Context, userID int64) (*UserPhoto, error) {
	for attempt := 0; ; attempt++ {
		u, err := p.users.UserByID(ctx, userID)
		if errors.Is(err, roster.ErrNotFound) {
			return nil, ErrNoPhoto
		} else if err != nil {
			return nil, err
		}
		own, hr, err := p.rows(ctx, userID, true)
		if err != nil {
			return nil, err
		}
		if own != nil {
			return &UserPhoto{Image: own.Image, Version: own.Hash}, nil
		}
		v := version(nil, hr, u.PhotoURL, time.Now())
		switch {
		case v == "":
			return nil, ErrNoPhoto
		case hr != nil && v == hr.Hash:
			return &UserPhoto{Image: hr.Image, Version: hr.Hash}, nil
		case attempt > 0:
			return nil, ErrNoPhoto
		}
		p.fetchHR(ctx, userID, u.PhotoURL)
	}
}

// FallbackPhoto is the HR photo of a user who has no own photo, for their
// vCard PHOTO (xmppcore.PhotoFallback): fetched now if its URL is new or a
// retry is due, then from the cache. "" when there is none.
func (p *Photos) FallbackPhoto(ctx context.Context, userID int64) (mimeType, binval string) {
	own, _, err := p.rows(ctx, userID, false)
	if err != nil || own != nil {
		return "", "" // an own photo is the vCard's own PHOTO, or was removed from it
	}
	ph, err := p.Get(ctx, userID)
	if err != nil {
		if !errors.Is(err, ErrNoPhoto) {
			p.log.Warn("hr photo for the vcard", "user", userID, "err", err)
		}
		return "", ""
	}
	return "image/jpeg", base64.StdEncoding.EncodeToString(ph.Image)
}

// FallbackPhotoHash is the XEP-0153 hash (hex SHA-1 of the JPEG) of the
// photo FallbackPhoto gives, without fetching
// (xmppcore.PhotoFallbackHash): "" and known for none, known false while
// the HR photo is not fetched from its current URL (or a retry is due).
func (p *Photos) FallbackPhotoHash(ctx context.Context, userID int64) (hash string, known bool) {
	u, err := p.users.UserByID(ctx, userID)
	if err != nil {
		return "", false
	}
	own, hr, err := p.rows(ctx, userID, true)
	if err != nil {
		return "", false
	}
	if own != nil {
		return "", true // the own photo is the vCard's PHOTO, or was removed from it
	}
	switch v := version(nil, hr, u.PhotoURL, time.Now()); {
	case v == "":
		return "", true
	case hr != nil && v == hr.Hash:
		sum := sha1.Sum(hr.Image)
		return hex.EncodeToString(sum[:]), true
	}
	return "", false
}

// fetchHR fetches the HR photo of a user once at a time (concurrent
// requests wait for the one fetch) and records the outcome.
func (p *Photos) fetchHR(ctx context.Context, userID int64, url string) {
	p.mu.Lock()
	if ch, ok := p.fetching[userID]; ok {
		p.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
		}
		return
	}
	ch := make(chan struct{})
	p.fetching[userID] = ch
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		delete(p.fetching, userID)
		p.mu.Unlock()
		close(ch)
	}()
	// The fetch outlives a browser that gives up: others wait for it.
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), photoFetchTTL)
	defer cancel()
	img, err := p.fetch(fctx, url)
	hash := ""
	if err != nil {
		p.log.Warn("hr photo fetch failed", "user", userID, "err", err)
		img = nil
	} else {
		hash = photoHash(img)
	}
	if err := p.put(fctx, userID, "hr", url, img, hash); err != nil {
		p.log.Error("hr photo", "user", userID, "err", err)
	}
}

func (p *Photos) fetch(ctx context.Context, url string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "image/png, image/jpeg, image/gif")
	resp, err := p.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("status %d", resp.StatusCode)
	}
	if resp.ContentLength > MaxPhotoSize {
		return nil, ErrTooLarge
	}
	raw, err := io.ReadAll(io.LimitReader(resp.Body, MaxPhotoSize+1))
	if err != nil {
		return nil, err
	}
	if len(raw) > MaxPhotoSize {
		return nil, ErrTooLarge
	}
	return squarePhoto(raw)
}

func photoHash(img []byte) string {
	sum := sha256.Sum256(img)
	return hex.EncodeToString(sum[:8])
}

// squarePhoto decodes a PNG, JPEG or GIF, crops its centre square and
// scales it to PhotoSide (never enlarging), as a JPEG small enough for a
// vCard.
func squarePhoto(raw []byte) ([]byte, error) {
	cfg, format, err := image.DecodeConfig(bytes.NewReader(raw))
	if err != nil {
		return nil, ErrNotImage
	}
	switch format {
	case "png", "jpeg", "gif":
	default:
		return nil, ErrNotImage
	}
	if cfg.Width <= 0 || cfg.Height <= 0 || int64(cfg.Width)*int64(cfg.Height) > maxThumbPixels {
		return nil, ErrNotImage
	}
	img, _, err := image.Decode(bytes.NewReader(raw))
	if err != nil {
		return nil, ErrNotImage
	}
	b := img.Bounds()
	side := min(b.Dx(), b.Dy())
	x0, y0 := b.Min.X+(b.Dx()-side)/2, b.Min.Y+(b.Dy()-side)/2
	crop := image.Image(cropped{img, image.Rect(x0, y0, x0+side, y0+side)})
	small := scaleDown(crop, PhotoSide)
	var buf bytes.Buffer
	// The vCard holds it base64-encoded within xmppcore.MaxVCardSize.
	for _, q := range []int{85, 70, 50} {
		buf.Reset()
		if err := jpeg.Encode(&buf, small, &jpeg.Options{Quality: q}); err != nil {
			return nil, err
		}
		if buf.Len()*4/3 < xmppcore.MaxVCardSize-4<<10 {
			break
		}
	}
	return buf.Bytes(), nil
}

// cropped is a view of an image limited to a rectangle.
type cropped struct {
	image.Image
	r image.Rectangle
}

func (c cropped) Bounds() image.Rectangle { return c.r }
