package rich

import (
	"fmt"
	"regexp"
	"strings"
)

// BB-codes, as Bitrix24 writes them: [b], [i], [u], [s], [url],
// [url=…]…[/url], [user=ID]…[/user], [chat=ID]…[/chat], [br], [quote],
// [code], and the action codes [send=…], [put=…], [call=…] whose text is
// kept. Tag names are case-insensitive. The web client renders them
// (webclient/static/js/rich.js); PlainText turns them into the text a
// Jabber client shows.

var bbTagRE = regexp.MustCompile(`(?i)\[(?:/?(?:b|i|u|s|url|user|chat|quote|code|send|put|call|color|size)(?:=[^\]\n]*)?|br)\]`)

// HasBBCode reports whether s contains a BB-code tag.
func HasBBCode(s string) bool { return strings.IndexByte(s, '[') >= 0 && bbTagRE.MatchString(s) }

var (
	urlArgRE  = regexp.MustCompile(`(?is)\[url=([^\]\n]*)\](.*?)\[/url\]`)
	urlRE     = regexp.MustCompile(`(?is)\[url\](.*?)\[/url\]`)
	refRE     = regexp.MustCompile(`(?is)\[(user|chat|send|put|call)=[^\]\n]*\](.*?)\[/(?:user|chat|send|put|call)\]`)
	brRE      = regexp.MustCompile(`(?i)\[br\]`)
	simpleRE  = pairREs("b", "i", "u", "s", "color", "size")
	codeRE    = regexp.MustCompile(`(?is)\[code\](.*?)\[/code\]`)
	quoteOpen = regexp.MustCompile(`(?i)\[quote\]`)
	quoteEnd  = regexp.MustCompile(`(?i)\[/quote\]`)
)

// PlainText turns BB-coded text into readable plain text: formatting tags
// go, a link keeps its text with the URL in parentheses (when they
// differ), mentions keep their name, [br] is a line break, a quote's
// lines start with "> ", a code block is kept as written.
func PlainText(s string) string {
	if !HasBBCode(s) {
		return s
	}
	var b strings.Builder
	last := 0
	for _, m := range codeRE.FindAllStringSubmatchIndex(s, -1) {
		b.WriteString(plainSegment(s[last:m[0]]))
		b.WriteString(s[m[2]:m[3]])
		last = m[1]
	}
	b.WriteString(plainSegment(s[last:]))
	return b.String()
}

func plainSegment(s string) string {
	if !HasBBCode(s) {
		return s
	}
	s = brRE.ReplaceAllString(s, "\n")
	s = urlArgRE.ReplaceAllStringFunc(s, func(m string) string {
		p := urlArgRE.FindStringSubmatch(m)
		href, label := strings.TrimSpace(p[1]), stripSimple(p[2])
		if label == "" || label == href {
			return href
		}
		return label + " (" + href + ")"
	})
	s = urlRE.ReplaceAllString(s, "$1")
	s = refRE.ReplaceAllString(s, "$2")
	s = stripSimple(s)
	// Quotes, innermost first: the last opening before the first closing.
	for range 64 {
		end := quoteEnd.FindStringIndex(s)
		if end == nil {
			break
		}
		opens := quoteOpen.FindAllStringIndex(s[:end[0]], -1)
		if len(opens) == 0 {
			s = s[:end[0]] + s[end[1]:] // a closing tag without an opening one
			continue
		}
		open := opens[len(opens)-1]
		inner := strings.Trim(s[open[1]:end[0]], "\n")
		lines := strings.Split(inner, "\n")
		for i, l := range lines {
			lines[i] = "> " + l
		}
		before, after := s[:open[0]], s[end[1]:]
		if before != "" && !strings.HasSuffix(before, "\n") {
			before += "\n"
		}
		if after != "" && !strings.HasPrefix(after, "\n") {
			after = "\n" + after
		}
		s = before + strings.Join(lines, "\n") + after
	}
	return quoteOpen.ReplaceAllString(s, "")
}

// pairREs matches each formatting tag with its closing tag.
func pairREs(names ...string) []*regexp.Regexp {
	out := make([]*regexp.Regexp, len(names))
	for i, n := range names {
		out[i] = regexp.MustCompile(`(?is)\[` + n + `(?:=[^\]\n]*)?\](.*?)\[/` + n + `\]`)
	}
	return out
}

// stripSimple removes paired formatting tags ([b]…[/b], [color=…]…[/color]);
// a tag never closed stays as written (as the web client shows it).
func stripSimple(s string) string {
	for range 8 {
		before := s
		for _, re := range simpleRE {
			s = re.ReplaceAllString(s, "$1")
		}
		if s == before {
			break
		}
	}
	return s
}

// Fallback is the plain text a client that does not know the payload
// element shows: the text without BB-codes, then each block of the
// attachment and the keyboard's buttons as readable lines.
func (c *Content) Fallback() string {
	var parts []string
	if t := strings.TrimSpace(PlainText(c.Text)); t != "" {
		parts = append(parts, t)
	}
	if c.Attach != nil {
		for _, b := range c.Attach.Blocks {
			if s := b.fallback(); s != "" {
				parts = append(parts, s)
			}
		}
	}
	var kb, line []string
	for _, btn := range c.Keyboard {
		if btn.IsNewline() {
			if len(line) > 0 {
				kb = append(kb, strings.Join(line, " "))
			}
			line = nil
			continue
		}
		s := "[" + strings.TrimSpace(btn.Text) + "]"
		if btn.Link != "" {
			s += " " + btn.Link
		}
		line = append(line, s)
	}
	if len(line) > 0 {
		kb = append(kb, strings.Join(line, " "))
	}
	if len(kb) > 0 {
		parts = append(parts, strings.Join(kb, "\n"))
	}
	return strings.Join(parts, "\n")
}

func (b *Block) fallback() string {
	switch {
	case b.Message != "":
		return strings.TrimSpace(PlainText(b.Message))
	case b.Link != nil:
		var l []string
		if b.Link.Name != "" {
			l = append(l, PlainText(b.Link.Name))
		}
		if b.Link.Desc != "" {
			l = append(l, PlainText(b.Link.Desc))
		}
		if b.Link.Link != "" {
			l = append(l, b.Link.Link)
		}
		return strings.Join(l, "\n")
	case b.Image != nil:
		l := make([]string, 0, len(b.Image))
		for _, im := range b.Image {
			l = append(l, strings.TrimSpace("[image] "+im.Name+" "+im.Link))
		}
		return strings.Join(l, "\n")
	case b.File != nil:
		l := make([]string, 0, len(b.File))
		for _, f := range b.File {
			s := "[file] " + f.Name
			if f.Size > 0 {
				s += " (" + humanSize(int64(f.Size)) + ")"
			}
			l = append(l, strings.TrimSpace(s+" "+f.Link))
		}
		return strings.Join(l, "\n")
	case b.Grid != nil:
		l := make([]string, 0, len(b.Grid))
		for _, it := range b.Grid {
			s := PlainText(it.Value)
			if it.Name != "" {
				s = PlainText(it.Name) + ": " + s
			}
			if it.Link != "" {
				s += " " + it.Link
			}
			l = append(l, strings.TrimSpace(s))
		}
		return strings.Join(l, "\n")
	case b.Delimiter != nil:
		return "────────"
	case b.User != nil:
		return strings.TrimSpace(b.User.Name + " " + b.User.Link)
	}
	return ""
}

func humanSize(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}
