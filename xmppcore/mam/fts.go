package mam

import (
	"html"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/kljensen/snowball/english"
	"github.com/kljensen/snowball/russian"
)

// Full-text search stores, per message, a string of stemmed terms: each word
// of the body lower-cased and stemmed with the Snowball stemmer of its script
// (Russian for Cyrillic, English for Latin), plus meta terms naming who may
// find it ("0u<user>" for both ends of a personal message, "0c<chat>" for a
// chat). The index (FTS5 on SQLite, a GIN tsvector on PostgreSQL) then
// narrows a search to one user's archive by itself; the access rule is
// still applied in SQL on top.

// Search limits.
const (
	maxWordRunes  = 64   // longer "words" are not indexed
	maxQueryTerms = 16   // words of a search query
	maxDocTerms   = 4000 // words of a message indexed
	snippetRunes  = 160  // length of a highlighted snippet
)

type span struct{ start, end int } // byte offsets of a word in a text

// wordSpans returns the words (runs of letters and digits) of text.
func wordSpans(text string) []span {
	var out []span
	start := -1
	for i, r := range text {
		inWord := unicode.IsLetter(r) || unicode.IsDigit(r) || unicode.Is(unicode.Mn, r)
		switch {
		case inWord && start < 0:
			start = i
		case !inWord && start >= 0:
			out = append(out, span{start, i})
			start = -1
		}
	}
	if start >= 0 {
		out = append(out, span{start, len(text)})
	}
	return out
}

// stem normalizes one word: lower case, ё as е, combining marks dropped, and
// the Snowball stem of its script. It returns "" for words not indexed.
func stem(word string) string {
	if utf8.RuneCountInString(word) > maxWordRunes {
		return ""
	}
	var b strings.Builder
	cyr, lat := 0, 0
	for _, r := range word {
		if unicode.Is(unicode.Mn, r) {
			continue
		}
		r = unicode.ToLower(r)
		if r == 'ё' {
			r = 'е'
		}
		switch {
		case unicode.Is(unicode.Cyrillic, r):
			cyr++
		case unicode.Is(unicode.Latin, r):
			lat++
		}
		b.WriteRune(r)
	}
	w := b.String()
	switch {
	case w == "":
		return ""
	case cyr > 0 && cyr >= lat:
		w = russian.Stem(w, true)
	case lat > 0:
		w = english.Stem(w, true)
	}
	if isMeta(w) {
		return ""
	}
	return w
}

// isMeta reports whether t has the shape of a meta term (0u123, 0c45); such
// words are not indexed so that text can never pose as a meta term.
func isMeta(t string) bool {
	if len(t) < 3 || t[0] != '0' || (t[1] != 'u' && t[1] != 'c') {
		return false
	}
	for _, c := range t[2:] {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

func userTerm(id int64) string { return "0u" + strconv.FormatInt(id, 10) }
func chatTerm(id int64) string { return "0c" + strconv.FormatInt(id, 10) }

// textTerms returns the distinct stems of text, in order of appearance.
func textTerms(text string, max int) []string {
	seen := map[string]bool{}
	var out []string
	for _, sp := range wordSpans(text) {
		t := stem(text[sp.start:sp.end])
		if t == "" || seen[t] {
			continue
		}
		seen[t] = true
		out = append(out, t)
		if max > 0 && len(out) == max {
			break
		}
	}
	return out
}

// IndexTerms returns the full-text terms the archive indexes for m ("" =
// not indexed), for tools that write archived rows themselves (db copy).
func IndexTerms(m *Message) string { return docTerms(m) }

// docTerms is the indexed term string of a message, "" when its body has no
// words (it is then not indexed).
func docTerms(m *Message) string {
	if m.Deleted {
		return ""
	}
	// Every occurrence counts (bm25 weighs term frequency); bounded.
	var ts []string
	for _, sp := range wordSpans(m.Body) {
		if t := stem(m.Body[sp.start:sp.end]); t != "" {
			ts = append(ts, t)
			if len(ts) == maxDocTerms {
				break
			}
		}
	}
	if len(ts) == 0 {
		return ""
	}
	if m.ChatID != 0 {
		ts = append(ts, chatTerm(m.ChatID))
	} else {
		ts = append(ts, userTerm(m.FromID), userTerm(m.ToID))
	}
	return strings.Join(ts, " ")
}

// ftsQuery builds a full-text query: every word term, and at least one of
// the scope terms (none = no scope). Terms are letters and digits only, so
// quoting them is safe in both syntaxes.
func (s *Store) ftsQuery(words, scope []string) string {
	and, or, q := " AND ", " OR ", `"`
	if s.pg {
		and, or, q = " & ", " | ", `'`
	}
	parts := make([]string, 0, len(words)+1)
	for _, w := range words {
		parts = append(parts, q+w+q)
	}
	if len(scope) > 0 {
		alt := make([]string, len(scope))
		for i, t := range scope {
			alt[i] = q + t + q
		}
		parts = append(parts, "("+strings.Join(alt, or)+")")
	}
	return strings.Join(parts, and)
}

// Snippet returns an HTML-escaped excerpt of body, about snippetRunes long,
// around the first word matching one of the query's stems, with every
// matching word wrapped in <mark>…</mark>. Both backends use it, so hits look
// the same everywhere.
func Snippet(body, query string) string {
	return snippet(body, textTerms(query, maxQueryTerms))
}

func snippet(body string, terms []string) string {
	want := make(map[string]bool, len(terms))
	for _, t := range terms {
		want[t] = true
	}
	spans := wordSpans(body)
	var marks []span
	for _, sp := range spans {
		if want[stem(body[sp.start:sp.end])] {
			marks = append(marks, sp)
		}
	}
	// Window: start a little before the first match, on a word boundary.
	from := 0
	if len(marks) > 0 {
		from = back(body, marks[0].start, snippetRunes/4)
		for _, sp := range spans {
			if sp.end > from && sp.start < from {
				from = sp.start
				break
			}
		}
	}
	to := forward(body, from, snippetRunes)
	if to < len(body) {
		for _, sp := range spans {
			if sp.start < to && sp.end > to {
				to = sp.start
				break
			}
		}
		if to <= from { // one very long word
			to = forward(body, from, snippetRunes)
		}
	}
	var b strings.Builder
	if from > 0 {
		b.WriteString("…")
	}
	pos := from
	for _, sp := range marks {
		if sp.start < from || sp.end > to {
			continue
		}
		b.WriteString(html.EscapeString(body[pos:sp.start]))
		b.WriteString("<mark>")
		b.WriteString(html.EscapeString(body[sp.start:sp.end]))
		b.WriteString("</mark>")
		pos = sp.end
	}
	b.WriteString(html.EscapeString(body[pos:to]))
	if to < len(body) {
		b.WriteString("…")
	}
	return strings.TrimSpace(b.String())
}

// back moves n runes back from byte offset i.
func back(s string, i, n int) int {
	for ; n > 0 && i > 0; n-- {
		_, size := utf8.DecodeLastRuneInString(s[:i])
		i -= size
	}
	return i
}

// forward moves n runes forward from byte offset i.
func forward(s string, i, n int) int {
	for ; n > 0 && i < len(s); n-- {
		_, size := utf8.DecodeRuneInString(s[i:])
		i += size
	}
	return i
}
