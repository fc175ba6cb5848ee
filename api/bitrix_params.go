package api

import (
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
)

// Parameters of a Bitrix24 REST call. PHP integrations send them
// form-encoded with PHP's array syntax (USERS[]=1&USERS[]=2, USERS[0]=1,
// ATTACH[0][MESSAGE]=…), others as JSON; GET sends them in the query.
// They all become one tree: a value is a string, a []any (A[]=…) or a
// map[string]any (A[key]=…, also A[0]=…). Top-level names are
// case-insensitive, as in Bitrix24 (kept upper case).

// bxParams is the parameter tree of one call.
type bxParams map[string]any

// bxMaxParams bounds the number of form values in a call.
const bxMaxParams = 20000

// parseBitrixParams reads the query string and, for POST, the body
// (application/x-www-form-urlencoded, multipart/form-data or JSON).
func parseBitrixParams(r *http.Request) (bxParams, error) {
	p := bxParams{}
	if err := p.addForm(r.URL.Query()); err != nil {
		return nil, err
	}
	if r.Method != http.MethodPost {
		return p, nil
	}
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	switch ct {
	case "", "application/x-www-form-urlencoded":
		b, err := io.ReadAll(r.Body)
		if err != nil {
			return nil, bodyError(err)
		}
		vals, err := url.ParseQuery(string(b))
		if err != nil {
			return nil, &bxError{http.StatusBadRequest, "INVALID_REQUEST", "the body is not valid form encoding"}
		}
		return p, p.addForm(vals)
	case "multipart/form-data":
		if err := r.ParseMultipartForm(MaxBody); err != nil {
			return nil, bodyError(err)
		}
		for name := range r.MultipartForm.File {
			return nil, &bxError{http.StatusBadRequest, "INVALID_REQUEST",
				fmt.Sprintf("%s: file parts are not accepted; send images as base64 text", name)}
		}
		return p, p.addForm(r.MultipartForm.Value)
	case "application/json":
		dec := json.NewDecoder(r.Body)
		dec.UseNumber()
		var m map[string]any
		if err := dec.Decode(&m); err != nil {
			if isTooLarge(err) {
				return nil, bodyError(err)
			}
			return nil, &bxError{http.StatusBadRequest, "INVALID_REQUEST", "the body must be one JSON object"}
		}
		for k, v := range m {
			p[strings.ToUpper(k)] = jsonValue(v)
		}
		return p, nil
	}
	return nil, &bxError{http.StatusUnsupportedMediaType, "INVALID_REQUEST",
		"send parameters form-encoded, as multipart/form-data or as JSON, not " + ct}
}

func bodyError(err error) error {
	if isTooLarge(err) || strings.Contains(err.Error(), "too large") {
		return &bxError{http.StatusRequestEntityTooLarge, "INVALID_REQUEST", "the request body is larger than the limit"}
	}
	return &bxError{http.StatusBadRequest, "INVALID_REQUEST", "the body could not be read"}
}

// jsonValue turns a decoded JSON value into the tree's forms: numbers and
// booleans become strings ("Y"/"N" for booleans, as PHP's integrations
// send them), null an empty string.
func jsonValue(v any) any {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	case json.Number:
		return x.String()
	case bool:
		if x {
			return "Y"
		}
		return "N"
	case []any:
		for i := range x {
			x[i] = jsonValue(x[i])
		}
		return x
	case map[string]any:
		for k := range x {
			x[k] = jsonValue(x[k])
		}
		return x
	}
	return fmt.Sprint(v)
}

// addForm adds form values, parsing PHP's bracket syntax in their names.
func (p bxParams) addForm(vals url.Values) error {
	n := 0
	for _, vs := range vals {
		n += len(vs)
	}
	if n > bxMaxParams {
		return &bxError{http.StatusBadRequest, "INVALID_REQUEST", "too many parameters"}
	}
	// Sorted names make A[0]… and A[]… come out in a stable order.
	names := make([]string, 0, len(vals))
	for name := range vals {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		path, err := splitName(name)
		if err != nil {
			return err
		}
		path[0] = strings.ToUpper(path[0])
		for _, v := range vals[name] {
			if err := setPath(map[string]any(p), path, v, name); err != nil {
				return err
			}
		}
	}
	return nil
}

// splitName splits "A[b][]" into ["A", "b", ""].
func splitName(name string) ([]string, error) {
	base, rest, ok := strings.Cut(name, "[")
	if !ok {
		return []string{name}, nil
	}
	path := []string{base}
	rest = "[" + rest
	for rest != "" {
		if rest[0] != '[' {
			break // PHP ignores what follows the last bracket
		}
		end := strings.IndexByte(rest, ']')
		if end < 0 {
			return nil, &bxError{http.StatusBadRequest, "INVALID_REQUEST", "malformed parameter name " + strconv.Quote(name)}
		}
		path = append(path, rest[1:end])
		rest = rest[end+1:]
	}
	if base == "" || len(path) > 8 {
		return nil, &bxError{http.StatusBadRequest, "INVALID_REQUEST", "malformed parameter name " + strconv.Quote(name)}
	}
	return path, nil
}

// setPath stores v at path below m ("" in the path appends to a list).
func setPath(m map[string]any, path []string, v, name string) error {
	key := path[0]
	if len(path) == 1 {
		m[key] = v
		return nil
	}
	next := path[1:]
	if next[0] == "" {
		if keyed, isMap := m[key].(map[string]any); isMap {
			// A[k]=x then A[]=y: like PHP, y takes the next free index.
			n := 0
			for k := range keyed {
				if i, err := strconv.Atoi(k); err == nil && i >= n {
					n = i + 1
				}
			}
			next = append([]string{strconv.Itoa(n)}, next[1:]...)
		} else {
			list, _ := m[key].([]any)
			if len(next) == 1 {
				m[key] = append(list, v)
				return nil
			}
			child := map[string]any{}
			m[key] = append(list, child)
			return setPath(child, next[1:], v, name)
		}
	}
	child, ok := m[key].(map[string]any)
	if !ok {
		if list, isList := m[key].([]any); isList {
			// A[]=x then A[5]=y: keep both, the list's items by index.
			child = map[string]any{}
			for i, it := range list {
				child[strconv.Itoa(i)] = it
			}
		} else {
			child = map[string]any{}
		}
		m[key] = child
	}
	return setPath(child, next, v, name)
}

// has reports whether the parameter was given (even empty).
func (p bxParams) has(name string) bool {
	_, ok := p[name]
	return ok
}

// str is a text parameter; a list or keyed value is an error naming it.
func (p bxParams) str(name string) (string, error) {
	v, ok := p[name]
	if !ok {
		return "", nil
	}
	s, ok := v.(string)
	if !ok {
		return "", bxInvalid(name, "must be a single value")
	}
	return s, nil
}

// required is a text parameter that must be given and not blank.
func (p bxParams) required(name string) (string, error) {
	s, err := p.str(name)
	if err != nil {
		return "", err
	}
	if strings.TrimSpace(s) == "" {
		return "", bxEmpty(name)
	}
	return s, nil
}

// yn is a Y/N parameter (also true/false and 1/0); def when absent or empty.
func (p bxParams) yn(name string, def bool) (bool, error) {
	s, err := p.str(name)
	if err != nil {
		return false, err
	}
	switch strings.ToUpper(strings.TrimSpace(s)) {
	case "":
		return def, nil
	case "Y", "TRUE", "1":
		return true, nil
	case "N", "FALSE", "0":
		return false, nil
	}
	return false, bxInvalid(name, "must be Y or N")
}

// id is a positive whole-number parameter; 0 when absent.
func (p bxParams) id(name string) (int64, error) {
	s, err := p.str(name)
	if err != nil || strings.TrimSpace(s) == "" {
		return 0, err
	}
	n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	if err != nil || n < 0 {
		return 0, bxInvalid(name, "must be a whole number")
	}
	return n, nil
}

// list is a list parameter: A[]=…, A[0]=… (by index order), a JSON array,
// or a single value. Items must be single values.
func (p bxParams) list(name string) ([]string, error) {
	v, ok := p[name]
	if !ok {
		return nil, nil
	}
	var items []any
	switch x := v.(type) {
	case string:
		if strings.TrimSpace(x) == "" {
			return nil, nil
		}
		items = []any{x}
	case []any:
		items = x
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Slice(keys, func(i, j int) bool {
			a, ea := strconv.Atoi(keys[i])
			b, eb := strconv.Atoi(keys[j])
			if ea == nil && eb == nil {
				return a < b
			}
			return keys[i] < keys[j]
		})
		for _, k := range keys {
			items = append(items, x[k])
		}
	}
	out := make([]string, 0, len(items))
	for _, it := range items {
		s, ok := it.(string)
		if !ok {
			return nil, bxInvalid(name, "must be a list of values")
		}
		out = append(out, strings.TrimSpace(s))
	}
	return out, nil
}
