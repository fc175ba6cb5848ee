package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"vestnik/roster"
	"vestnik/xmppcore/muc"
	"vestnik/xmppcore/rich"
)

// errorBody is the error model of SPEC §6.
type errorBody struct {
	Error errorDetail `json:"error"`
}

type errorDetail struct {
	Code    string   `json:"code"`
	Message string   `json:"message"`
	Field   string   `json:"field,omitempty"`
	Details []string `json:"details,omitempty"`
}

// writeError answers with the error model.
func writeError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, errorBody{Error: errorDetail{Code: code, Message: msg}})
}

// writeFieldError answers 422 naming the field at fault.
func writeFieldError(w http.ResponseWriter, field, code, msg string) {
	writeJSON(w, http.StatusUnprocessableEntity, errorBody{Error: errorDetail{Code: code, Message: field + ": " + msg, Field: field}})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.Encode(v)
}

// internal logs an unexpected failure and answers 500 with nothing inside.
func (a *API) internal(w http.ResponseWriter, r *http.Request, err error) {
	a.log.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	writeError(w, http.StatusInternalServerError, "internal_error", "the server failed to handle the request; it is logged")
}

// fail maps an error of the services to an answer.
func (a *API) fail(w http.ResponseWriter, r *http.Request, err error) {
	var ie *muc.InvalidError
	var ue *muc.UnknownUserError
	var fe *fieldError
	var re *rich.FieldError
	switch {
	case errors.As(err, &fe):
		writeFieldError(w, fe.field, fe.code, fe.msg)
	case errors.As(err, &re):
		writeFieldError(w, re.Field, re.Code, re.Message)
	case errors.Is(err, errTokenUser):
		writeError(w, http.StatusForbidden, "token_user", err.Error())
	case errors.As(err, &ie):
		writeFieldError(w, ie.Field, ie.Code, ie.Message)
	case errors.As(err, &ue):
		writeFieldError(w, ue.Field, "unknown_user", fmt.Sprintf("user %s does not exist or is not active", a.extID(r, ue.UserID)))
	case errors.Is(err, muc.ErrNotFound):
		writeError(w, http.StatusNotFound, "not_found", "no such chat or member")
	case errors.Is(err, muc.ErrForbidden):
		writeError(w, http.StatusForbidden, "forbidden", strings.TrimPrefix(err.Error(), muc.ErrForbidden.Error()+": "))
	case errors.Is(err, muc.ErrConflict):
		writeError(w, http.StatusConflict, "conflict", "it exists already")
	case errors.Is(err, muc.ErrRateLimited):
		w.Header().Set("Retry-After", "1")
		writeError(w, http.StatusTooManyRequests, "rate_limited", strings.TrimPrefix(err.Error(), muc.ErrRateLimited.Error()+": "))
	default:
		a.internal(w, r, err)
	}
}

// extID names an internal user id by its portal id for messages.
func (a *API) extID(r *http.Request, id int64) string {
	if u, err := a.users.UserByID(r.Context(), id); err == nil {
		return fmt.Sprintf("%q", u.ExtID)
	}
	return "(unknown)"
}

// errTokenUser: a token made --as-user acts as that user only.
var errTokenUser = errors.New("this token may act only as the user it was made for")

// checkActing refuses a user other than the one the request's token is
// bound to (tokens without a user may act as anyone).
func checkActing(r *http.Request, userID int64) error {
	if tok := requestToken(r); tok != nil && tok.AsUser != 0 && userID != tok.AsUser {
		return errTokenUser
	}
	return nil
}

// fieldError is a 422 raised by the API itself.
type fieldError struct{ field, code, msg string }

func (e *fieldError) Error() string { return "api: " + e.field + ": " + e.msg }

func badField(field, code, format string, args ...any) error {
	return &fieldError{field: field, code: code, msg: fmt.Sprintf(format, args...)}
}

// decode reads a JSON object body into v. Unknown fields are ignored;
// wrong types are 422 naming the field; malformed JSON is 400; a body over
// the limit is 413. It reports whether the handler may go on.
//
// Text that is not valid UTF-8 is 400 invalid_utf8 naming the field: it
// is refused, never stored with replacement characters.
func decode(w http.ResponseWriter, r *http.Request, v any) bool {
	b, err := io.ReadAll(r.Body)
	if err != nil {
		if isTooLarge(err) {
			writeError(w, http.StatusRequestEntityTooLarge, "body_too_large", "the request body is larger than the limit for this endpoint")
		} else {
			writeError(w, http.StatusBadRequest, "malformed_json", "the body could not be read")
		}
		return false
	}
	if field, _, bad := roster.InvalidUTF8(b); bad {
		writeInvalidUTF8(w, field)
		return false
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	err = dec.Decode(v)
	if err == nil {
		if _, err2 := dec.Token(); err2 != io.EOF {
			if isTooLarge(err2) {
				err = err2
			} else {
				writeError(w, http.StatusBadRequest, "malformed_json", "the body must be one JSON object")
				return false
			}
		}
	}
	if err == nil {
		return true
	}
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	var fe *fieldError
	switch {
	case isTooLarge(err):
		writeError(w, http.StatusRequestEntityTooLarge, "body_too_large", "the request body is larger than the limit for this endpoint")
	case errors.As(err, &fe):
		writeFieldError(w, fe.field, fe.code, fe.msg)
	case errors.As(err, &te):
		if te.Field == "" {
			writeError(w, http.StatusBadRequest, "malformed_json", "the body must be a JSON object")
		} else {
			writeFieldError(w, te.Field, "invalid_type", fmt.Sprintf("must be %s, not %s", jsonType(te.Type.Kind().String()), te.Value))
		}
	case errors.As(err, &se), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		writeError(w, http.StatusBadRequest, "malformed_json", "the body is not valid JSON")
	default:
		writeError(w, http.StatusBadRequest, "malformed_json", "the body is not valid JSON: "+err.Error())
	}
	return false
}

// writeInvalidUTF8 answers 400 for a body with text that is not UTF-8.
func writeInvalidUTF8(w http.ResponseWriter, field string) {
	msg := "the body is not valid UTF-8"
	if field != "" {
		msg = field + ": not valid UTF-8 text"
	}
	writeJSON(w, http.StatusBadRequest, errorBody{Error: errorDetail{Code: "invalid_utf8", Message: msg, Field: field}})
}

func isTooLarge(err error) bool {
	var me *http.MaxBytesError
	return errors.As(err, &me)
}

func jsonType(kind string) string {
	switch kind {
	case "string":
		return "a string"
	case "bool":
		return "true or false"
	case "slice":
		return "an array"
	case "struct", "map":
		return "an object"
	case "int", "int64", "float64":
		return "a number"
	}
	return kind
}

// userID is a portal user id in a request: a JSON string or number.
type userID string

func (u *userID) UnmarshalJSON(b []byte) error {
	s := strings.TrimSpace(string(b))
	switch {
	case s == "null":
		*u = ""
	case strings.HasPrefix(s, `"`):
		var str string
		if err := json.Unmarshal(b, &str); err != nil {
			return err
		}
		*u = userID(strings.TrimSpace(str))
	default:
		var n json.Number
		if err := json.Unmarshal(b, &n); err != nil {
			return &json.UnmarshalTypeError{Value: s, Type: typeOfString}
		}
		if _, err := n.Int64(); err != nil {
			return &json.UnmarshalTypeError{Value: "number " + s, Type: typeOfString}
		}
		*u = userID(n.String())
	}
	return nil
}

// resolve maps a portal id to an active user; field names it in errors.
func (a *API) resolve(r *http.Request, field string, id userID) (*roster.User, error) {
	if id == "" || id == "0" {
		return nil, badField(field, "missing_user", "a user id is required")
	}
	if len(id) > 200 {
		return nil, badField(field, "unknown_user", "no such user")
	}
	u, err := a.userByExtID(r.Context(), string(id))
	if errors.Is(err, roster.ErrNotFound) || err == nil && !u.Active {
		return nil, badField(field, "unknown_user", "user %q does not exist or is not active", string(id))
	}
	if err != nil {
		return nil, err
	}
	// from_user_id is the acting user on every route.
	if field == "from_user_id" {
		if err := checkActing(r, u.ID); err != nil {
			return nil, err
		}
	}
	return u, nil
}
