package bridge

import (
	"context"
	"errors"
	"net/http"
	"strconv"

	"vestnik/xmppcore"
	"vestnik/xmppcore/upload"
)

// Users' photos: GET /avatars/user/{id} for any signed-in colleague, PUT
// and DELETE /photo for the user's own. The rules and the images are the
// photo store's (xmppcore/upload, photo.go); a change goes through the
// core (xmppcore.Server.PhotoChanged, to every node) and is pushed to every
// browser as a "photo" event.

// photoChanged tells every browser on this node of a user's new photo,
// whichever door or node set it (the core's OnPhotoChange).
func (b *Bridge) photoChanged(userID int64, version string) {
	b.broadcast(Frame{"type": "photo", "user": userID, "photo": photoURL(userID, version)})
}

// usePhotos makes p the photo store and routes its changes through the
// core, which tells every node (xmppcore.Server.PhotoChanged,
// OnPhotoChange); without an XMPP core, to this node's browsers only.
func (b *Bridge) usePhotos(p *upload.Photos) {
	b.opts.Photos = p
	x, ok := b.core.(*xmppCore)
	if !ok {
		p.OnChange(b.photoChanged)
		return
	}
	p.OnChange(func(userID int64, version string) {
		x.srv.PhotoChanged(xmppcore.PhotoEvent{UserID: userID, Version: version})
	})
	x.srv.OnPhotoChange(func(ev xmppcore.PhotoEvent) { b.photoChanged(ev.UserID, ev.Version) })
}

// photoURL is the versioned URL of a user's photo, "" for none.
func photoURL(userID int64, version string) string {
	if version == "" {
		return ""
	}
	return upload.PhotoPath(userID) + "?v=" + version
}

// withPhoto fills in the photo URL of one user.
func (b *Bridge) withPhoto(ctx context.Context, u userJSON) userJSON {
	if b.opts.Photos == nil {
		return u
	}
	v, err := b.opts.Photos.Version(ctx, u.ID)
	if err != nil {
		b.log.Warn("photo version", "user", u.ID, "err", err)
		return u
	}
	u.Photo = photoURL(u.ID, v)
	return u
}

func (b *Bridge) handlePhoto(w http.ResponseWriter, r *http.Request) {
	ps := b.opts.Photos
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if ps == nil || err != nil || id <= 0 {
		writeError(w, http.StatusNotFound, "not_found", "no such photo")
		return
	}
	if _, err := b.sessionUser(r); err != nil {
		writeError(w, http.StatusUnauthorized, "no_session", "not signed in")
		return
	}
	p, err := ps.Get(r.Context(), id)
	if errors.Is(err, upload.ErrNoPhoto) {
		writeError(w, http.StatusNotFound, "not_found", "this user has no photo")
		return
	}
	if err != nil {
		b.log.Error("photo", "user", id, "err", err)
		writeError(w, http.StatusInternalServerError, "internal", "the photo could not be read")
		return
	}
	etag := `"` + p.Version + `"`
	w.Header().Set("ETag", etag)
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Content-Security-Policy", "default-src 'none'")
	if r.URL.Query().Get("v") == p.Version {
		// The versioned URL never changes its bytes.
		w.Header().Set("Cache-Control", "private, max-age=31536000, immutable")
	} else {
		w.Header().Set("Cache-Control", "private, no-cache")
	}
	if r.Header.Get("If-None-Match") == etag {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	w.Header().Set("Content-Type", "image/jpeg")
	w.Header().Set("Content-Length", strconv.Itoa(len(p.Image)))
	w.Write(p.Image)
}

// handleSetPhoto makes the request body (a PNG, JPEG or GIF) the signed-in
// user's photo: 200 {"photo": url}.
func (b *Bridge) handleSetPhoto(w http.ResponseWriter, r *http.Request) {
	ps := b.opts.Photos
	if ps == nil {
		writeError(w, http.StatusNotFound, "unavailable", "photos are not enabled on this server")
		return
	}
	if !sameOrigin(r, false) {
		writeError(w, http.StatusForbidden, "forbidden", "photos come from this server's own pages")
		return
	}
	u, err := b.sessionUser(r)
	if err != nil {
		writeError(w, http.StatusUnauthorized, "no_session", "not signed in")
		return
	}
	if r.Method == http.MethodDelete {
		if err := ps.Remove(r.Context(), u.ID); err != nil {
			b.log.Error("remove photo", "err", err)
			writeError(w, http.StatusInternalServerError, "internal", "the photo could not be removed")
			return
		}
	} else {
		if r.ContentLength > upload.MaxPhotoSize {
			writeError(w, http.StatusRequestEntityTooLarge, "photo_too_large", "the photo is larger than 10 MB")
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, upload.MaxPhotoSize+1)
		_, err := ps.Set(r.Context(), u.ID, r.Body)
		var me *http.MaxBytesError
		switch {
		case errors.Is(err, upload.ErrTooLarge), errors.As(err, &me):
			writeError(w, http.StatusRequestEntityTooLarge, "photo_too_large", "the photo is larger than 10 MB")
			return
		case errors.Is(err, upload.ErrNotImage):
			writeError(w, http.StatusUnprocessableEntity, "not_image", "the photo must be a PNG, JPEG or GIF image")
			return
		case err != nil:
			b.log.Error("set photo", "err", err)
			writeError(w, http.StatusInternalServerError, "internal", "the photo could not be stored")
			return
		}
	}
	// The photo event went out from the store's OnChange (photoChanged).
	uj := b.withPhoto(r.Context(), toUserJSON(u))
	writeJSON(w, http.StatusOK, map[string]string{"photo": uj.Photo})
}
