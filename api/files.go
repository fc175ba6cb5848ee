package api

import (
	"errors"
	"io"
	"mime"
	"net/http"
	"strings"

	"vestnik/xmppcore/upload"
)

// fileJSON is a stored file as REST shows it.
type fileJSON struct {
	ID          int64  `json:"id"`
	URL         string `json:"url"`
	Name        string `json:"name"`
	Size        int64  `json:"size"`
	ContentType string `json:"content_type"`
}

// postFile stores a file sent as multipart/form-data (field "file", and
// "from_user_id" before or after it), streamed to disk: 201 with its id,
// which POST /messages and POST /chats/{id}/messages take in files[].
func (a *API) postFile(w http.ResponseWriter, r *http.Request) {
	fs := a.opts.Files
	if fs == nil {
		writeError(w, http.StatusNotFound, "not_found", "file uploads are not enabled on this server")
		return
	}
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	mr, err := r.MultipartReader()
	if ct != "multipart/form-data" || err != nil {
		writeError(w, http.StatusBadRequest, "malformed_body", "send multipart/form-data with the fields file and from_user_id")
		return
	}
	var (
		fromID string
		rec    *upload.Received
		file   *upload.File
	)
	defer func() {
		if rec != nil {
			rec.Discard()
		}
	}()
	for file == nil {
		p, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			a.uploadFailed(w, r, err)
			return
		}
		switch p.FormName() {
		case "from_user_id":
			b, err := io.ReadAll(io.LimitReader(p, 256))
			if err != nil {
				a.uploadFailed(w, r, err)
				return
			}
			fromID = strings.TrimSpace(string(b))
		case "file":
			if rec != nil {
				writeFieldError(w, "file", "too_many_files", "send one file per request")
				return
			}
			if fromID != "" {
				// The uploader is known: the quota is checked before
				// reading the file.
				u, err := a.resolve(r, "from_user_id", userID(fromID))
				if err != nil {
					a.fail(w, r, err)
					return
				}
				if file, err = fs.Save(r.Context(), u.ID, p.FileName(), p); err != nil {
					a.uploadFailed(w, r, err)
					return
				}
				continue
			}
			if rec, err = fs.Receive(p.FileName(), p); err != nil {
				a.uploadFailed(w, r, err)
				return
			}
		}
	}
	if file == nil && rec == nil {
		writeFieldError(w, "file", "missing_file", "the form has no file field")
		return
	}
	if file == nil {
		u, err := a.resolve(r, "from_user_id", userID(fromID))
		if err != nil {
			a.fail(w, r, err)
			return
		}
		file, err = fs.Commit(r.Context(), u.ID, rec)
		rec = nil // Commit removes the temporary file either way
		if err != nil {
			a.uploadFailed(w, r, err)
			return
		}
	}
	writeJSON(w, http.StatusCreated, fileJSON{ID: file.ID, URL: fs.URL(file), Name: file.Name, Size: file.Size, ContentType: file.ContentType})
}

// uploadFailed answers a failed upload in the error model.
func (a *API) uploadFailed(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case errors.Is(err, upload.ErrTooLarge), isTooLarge(err):
		writeError(w, http.StatusRequestEntityTooLarge, "file_too_large", "the file is larger than the limit of this server")
	case errors.Is(err, upload.ErrQuota):
		writeError(w, http.StatusRequestEntityTooLarge, "quota_exceeded", "the user's upload quota is used up")
	case errors.Is(err, upload.ErrFull):
		writeError(w, http.StatusInsufficientStorage, "storage_full", "the server's file storage is full")
	case errors.Is(err, upload.ErrType):
		writeError(w, http.StatusUnsupportedMediaType, "file_type_not_allowed", "File type not allowed on this server")
	case errors.Is(err, upload.ErrBadName):
		writeFieldError(w, "file", "bad_file_name", "the file needs a name (filename in its Content-Disposition)")
	case errors.Is(err, upload.ErrEmpty):
		writeFieldError(w, "file", "empty_file", "the file is empty")
	case errors.Is(err, io.ErrUnexpectedEOF), strings.Contains(err.Error(), "multipart"):
		writeError(w, http.StatusBadRequest, "malformed_body", "the multipart body is malformed or cut short")
	default:
		a.internal(w, r, err)
	}
}

// getFile downloads a file on behalf of user_id: its uploader or someone
// who may read a message carrying it (403 otherwise).
func (a *API) getFile(w http.ResponseWriter, r *http.Request) {
	a.serveFile(w, r, false)
}

func (a *API) getFileThumb(w http.ResponseWriter, r *http.Request) {
	a.serveFile(w, r, true)
}

func (a *API) serveFile(w http.ResponseWriter, r *http.Request, thumb bool) {
	if a.opts.Files == nil {
		writeError(w, http.StatusNotFound, "not_found", "file uploads are not enabled on this server")
		return
	}
	id, ok := pathID(w, r, "id")
	if !ok {
		return
	}
	u, err := a.resolve(r, "user_id", userID(r.URL.Query().Get("user_id")))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	err = a.opts.Files.ServeFile(w, r, u.ID, id, thumb)
	switch {
	case errors.Is(err, upload.ErrNotFound):
		writeError(w, http.StatusNotFound, "not_found", "no such file")
	case errors.Is(err, upload.ErrForbidden):
		writeError(w, http.StatusForbidden, "forbidden", "this user may not download the file")
	case err != nil:
		a.internal(w, r, err)
	}
}

// withFiles is the body of a message that carries files: the text and the
// files' URLs (upload.Store.Compose); 422 naming files for an unknown
// file or one the sender may not share.
func (a *API) withFiles(r *http.Request, fromID int64, text *string, files []int64, rich bool) (string, error) {
	if len(files) == 0 && rich {
		if text == nil {
			return "", nil
		}
		if len(*text) > MaxMessage {
			return "", badField("message", "message_too_long", "must be at most %d bytes", MaxMessage)
		}
		return *text, nil
	}
	if len(files) == 0 {
		if err := checkText("message", text); err != nil {
			return "", err
		}
		return *text, nil
	}
	t := ""
	if text != nil {
		t = *text
	}
	if len(t) > MaxMessage {
		return "", badField("message", "message_too_long", "must be at most %d bytes", MaxMessage)
	}
	if a.opts.Files == nil {
		return "", badField("files", "unknown_file", "file uploads are not enabled on this server")
	}
	if fromID == 0 {
		return "", badField("files", "missing_user", "a message with files needs from_user_id")
	}
	body, _, err := a.opts.Files.Compose(r.Context(), fromID, t, files)
	if errors.Is(err, upload.ErrUnknownFile) {
		return "", badField("files", "unknown_file", "%s", strings.TrimPrefix(err.Error(), upload.ErrUnknownFile.Error()+": "))
	}
	return body, err
}
