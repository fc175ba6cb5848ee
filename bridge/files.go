package bridge

import (
	"context"
	"errors"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"

	"vestnik/xmppcore"
	"vestnik/xmppcore/upload"
)

// File is a file a message carries, as the client sees it. url and
// thumb_url are this server's checked paths (the session cookie decides).
type File struct {
	ID          int64  `json:"id"`
	Name        string `json:"name"`
	Size        int64  `json:"size"`
	ContentType string `json:"content_type"`
	URL         string `json:"url"`
	ThumbURL    string `json:"thumb_url,omitempty"`
}

func fileOf(f xmppcore.FileRef) File {
	out := File{ID: f.ID, Name: f.Name, Size: f.Size, ContentType: f.ContentType, URL: upload.WebPath(f.ID)}
	if f.Thumb {
		out.ThumbURL = upload.WebThumbPath(f.ID)
	}
	return out
}

// filesOf reads the files the core attached to a message (xmppcore.NSFile
// elements, written only by the server) from its children.
func filesOf(kids []*xmppcore.Element) []File {
	var out []File
	for _, k := range kids {
		if f, ok := xmppcore.ParseFileElement(k); ok {
			out = append(out, fileOf(f))
		}
	}
	return out
}

// filesOfPayload is filesOf over an archived payload.
func filesOfPayload(payload string) []File {
	if !strings.Contains(payload, xmppcore.NSFile) {
		return nil
	}
	kids, err := xmppcore.ParseFragment(payload)
	if err != nil {
		return nil
	}
	return filesOf(kids)
}

// handleUpload stores a file the signed-in user sends as multipart/form-
// data (field "file"), streamed to disk: 201 with the File, whose id a
// send command then carries in files[].
func (b *Bridge) handleUpload(w http.ResponseWriter, r *http.Request) {
	fs := b.opts.Files
	if fs == nil {
		writeError(w, http.StatusNotFound, "unavailable", "file uploads are not enabled on this server")
		return
	}
	if !sameOrigin(r, false) {
		writeError(w, http.StatusForbidden, "forbidden", "uploads come from this server's own pages")
		return
	}
	u, err := b.sessionUser(r)
	if err != nil {
		if !errors.Is(err, ErrNotFound) {
			b.log.Error("upload session", "err", err)
		}
		writeError(w, http.StatusUnauthorized, "no_session", "not signed in")
		return
	}
	if r.ContentLength > fs.MaxSize()+64<<10 {
		writeError(w, http.StatusRequestEntityTooLarge, "file_too_large", "the file is larger than the limit of this server")
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, fs.MaxSize()+64<<10)
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	mr, err := r.MultipartReader()
	if ct != "multipart/form-data" || err != nil {
		writeError(w, http.StatusBadRequest, "bad_request", "send multipart/form-data with the field file")
		return
	}
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			writeError(w, http.StatusBadRequest, "bad_request", "the form has no file field")
			return
		}
		if err != nil {
			writeError(w, http.StatusBadRequest, "bad_request", "the multipart body is malformed")
			return
		}
		if p.FormName() != "file" {
			continue
		}
		f, err := fs.Save(r.Context(), u.ID, p.FileName(), p)
		var me *http.MaxBytesError
		switch {
		case errors.Is(err, upload.ErrTooLarge), errors.As(err, &me):
			writeError(w, http.StatusRequestEntityTooLarge, "file_too_large", "the file is larger than the limit of this server")
		case errors.Is(err, upload.ErrQuota):
			writeError(w, http.StatusRequestEntityTooLarge, "quota_exceeded", "your upload quota is used up")
		case errors.Is(err, upload.ErrFull):
			writeError(w, http.StatusInsufficientStorage, "storage_full", "the server's file storage is full")
		case errors.Is(err, upload.ErrType):
			writeError(w, http.StatusUnsupportedMediaType, "file_type_not_allowed", "File type not allowed on this server")
		case errors.Is(err, upload.ErrBadName), errors.Is(err, upload.ErrEmpty):
			writeError(w, http.StatusUnprocessableEntity, "bad_file", "the file needs a name and some content")
		case err != nil:
			b.log.Error("upload", "err", err)
			writeError(w, http.StatusInternalServerError, "internal", "the file could not be stored")
		default:
			writeJSON(w, http.StatusCreated, map[string]File{"file": fileOf(fs.Ref(f))})
		}
		return
	}
}

func (b *Bridge) handleFile(w http.ResponseWriter, r *http.Request) {
	b.serveFile(w, r, false)
}

func (b *Bridge) handleThumb(w http.ResponseWriter, r *http.Request) {
	b.serveFile(w, r, true)
}

// serveFile downloads a file for the signed-in user: its uploader or
// someone who may read a message carrying it.
func (b *Bridge) serveFile(w http.ResponseWriter, r *http.Request, thumb bool) {
	fs := b.opts.Files
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if fs == nil || err != nil || id <= 0 {
		writeError(w, http.StatusNotFound, "not_found", "no such file")
		return
	}
	u, err := b.sessionUser(r)
	if err != nil {
		writeError(w, http.StatusUnauthorized, "no_session", "not signed in")
		return
	}
	err = fs.ServeFile(w, r, u.ID, id, thumb)
	switch {
	case errors.Is(err, upload.ErrNotFound):
		writeError(w, http.StatusNotFound, "not_found", "no such file")
	case errors.Is(err, upload.ErrForbidden):
		writeError(w, http.StatusForbidden, "forbidden", "you may not download this file")
	case err != nil:
		b.log.Error("download", "err", err)
		writeError(w, http.StatusInternalServerError, "internal", "the file could not be read")
	}
}

// withFiles is the body of a message carrying files (the text and their
// URLs, upload.Store.Compose; the core then links them) and the files as
// the answer shows them.
func (c *conn) withFiles(ctx context.Context, text string, ids []int64) (string, []File, error) {
	fs := c.b.opts.Files
	if fs == nil {
		return "", nil, bad("unavailable", "file uploads are not enabled on this server")
	}
	body, files, err := fs.Compose(ctx, c.user.ID, text, ids)
	if errors.Is(err, upload.ErrUnknownFile) {
		return "", nil, bad("bad_files", "files: "+strings.TrimPrefix(err.Error(), upload.ErrUnknownFile.Error()+": "))
	}
	if err != nil {
		return "", nil, err
	}
	out := make([]File, len(files))
	for i, f := range files {
		out[i] = fileOf(fs.Ref(f))
	}
	return body, out, nil
}
