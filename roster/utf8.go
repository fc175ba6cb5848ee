package roster

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"
	"unicode/utf8"
)

// NotUTF8 is the message of a Problem for text that is not valid UTF-8.
const NotUTF8 = "not valid UTF-8"

// InvalidUTF8 finds the first bytes of a JSON document that are not valid
// UTF-8 (which encoding/json would silently turn into U+FFFD) and names
// the field they are in, as a path: `employees[3].name`, `title`; "" when
// they are outside any field. bad is false for a valid document. Every
// JSON body a door accepts is checked with it before it is decoded.
func InvalidUTF8(b []byte) (field string, line int, bad bool) {
	if utf8.Valid(b) {
		return "", 0, false
	}
	off := 0
	for off < len(b) {
		r, size := utf8.DecodeRune(b[off:])
		if r == utf8.RuneError && size <= 1 {
			break
		}
		off += size
	}
	line = bytes.Count(b[:off], []byte("\n")) + 1
	type frame struct {
		array     bool
		key       string
		index     int
		expectKey bool
	}
	var stack []frame
	path := func() string {
		var sb strings.Builder
		for _, f := range stack {
			if f.array {
				sb.WriteString("[" + strconv.Itoa(f.index) + "]")
				continue
			}
			if sb.Len() > 0 {
				sb.WriteByte('.')
			}
			sb.WriteString(f.key)
		}
		return sb.String()
	}
	// valueDone moves the innermost container past the value just read.
	valueDone := func() {
		if n := len(stack); n > 0 {
			if stack[n-1].array {
				stack[n-1].index++
			} else {
				stack[n-1].expectKey = true
			}
		}
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	for {
		tok, err := dec.Token()
		if err != nil {
			return path(), line, true
		}
		past := dec.InputOffset() > int64(off)
		if d, ok := tok.(json.Delim); ok {
			switch d {
			case '{':
				stack = append(stack, frame{expectKey: true})
			case '[':
				stack = append(stack, frame{array: true})
			default:
				stack = stack[:len(stack)-1]
				valueDone()
			}
			continue
		}
		if n := len(stack); n > 0 && !stack[n-1].array && stack[n-1].expectKey {
			stack[n-1].key, _ = tok.(string)
			stack[n-1].expectKey = false
			if past {
				return path(), line, true
			}
			continue
		}
		if past {
			return path(), line, true
		}
		valueDone()
	}
}
