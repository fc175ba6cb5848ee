package muc

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"mellium.im/xmpp/jid"

	"vestnik/xmppcore"
)

// Mentions in chats (XEP-0372): a chat message names members either with
// <reference type='mention' uri='xmpp:login@domain'/> (Jabber clients)
// or in its text as @Full Name or @login (the browser, REST, any
// client). The rule, in one place for every door (post): a reference to
// an employee who is no longer active refuses the message; text
// mentions are written into the stored message as references (so Jabber
// clients highlight them too, live and from the archive); every member
// named, other than the author, gets a notification (Server.Notify).

// NSReference is the namespace of XEP-0372 references.
const NSReference = "urn:xmpp:reference:0"

// maxMentionNotices bounds the notifications one message raises.
const maxMentionNotices = 50

// Notifier is what the service needs to tell a mentioned member
// (xmppcore.Server).
type Notifier interface {
	NotifyWith(ctx context.Context, r xmppcore.NotifyRequest) (int64, error)
}

// mentions finds whom a chat message by author names. It returns the
// references to add to the payload for mentions in the text, and the
// members to notify.
func (s *Service) mentions(ctx context.Context, c *Chat, author int64, body, payload string) (string, []int64, error) {
	var named []int64
	explicit := map[int64]bool{}
	if strings.Contains(payload, NSReference) {
		kids, err := xmppcore.ParseFragment(payload)
		if err != nil {
			return "", nil, err
		}
		for _, k := range kids {
			if k.Name.Space != NSReference || k.Name.Local != "reference" || k.AttrValue("type") != "mention" {
				continue
			}
			j, err := jid.Parse(strings.TrimPrefix(k.AttrValue("uri"), "xmpp:"))
			if err != nil || j.Domainpart() != s.opts.Domain || j.Localpart() == "" {
				continue
			}
			u, err := s.users.UserByLogin(ctx, j.Localpart())
			if err != nil {
				continue // not an employee: just text
			}
			if !u.Active {
				return "", nil, invalid("message", "inactive_mention", "%s is no longer an active employee", u.Name)
			}
			explicit[u.ID] = true
			named = append(named, u.ID)
		}
	}
	var extra []byte
	if strings.IndexByte(body, '@') >= 0 {
		found, err := s.textMentions(ctx, c, body)
		if err != nil {
			return "", nil, err
		}
		for _, f := range found {
			if explicit[f.user] {
				continue
			}
			named = append(named, f.user)
			extra = el(NSReference, "reference", "type", "mention", "uri", "xmpp:"+f.login+"@"+s.opts.Domain,
				"begin", strconv.Itoa(f.begin), "end", strconv.Itoa(f.end)).AppendXML(extra, nsClient)
		}
	}
	var notify []int64
	if len(named) > 0 {
		members, err := s.store.Members(ctx, c.ID)
		if err != nil {
			return "", nil, err
		}
		for _, u := range named {
			if u != author && !slices.Contains(notify, u) && slices.ContainsFunc(members, func(m Member) bool { return m.UserID == u }) {
				notify = append(notify, u)
			}
		}
	}
	if len(notify) > maxMentionNotices {
		notify = notify[:maxMentionNotices]
	}
	return string(extra), notify, nil
}

type textMention struct {
	user       int64
	login      string
	begin, end int // code points, the @ included
}

// textMentions finds @Full Name and @login of the chat's active members
// in body (case-insensitive, the longest name at each @, ending at a
// word boundary).
func (s *Service) textMentions(ctx context.Context, c *Chat, body string) ([]textMention, error) {
	members, err := s.store.Members(ctx, c.ID)
	if err != nil {
		return nil, err
	}
	type name struct {
		user  int64
		login string
		text  []rune
	}
	var names []name
	for _, m := range members {
		u, err := s.cache.byID(ctx, m.UserID)
		if err != nil || !u.Active {
			continue
		}
		names = append(names, name{u.ID, u.Login, []rune(u.Name)}, name{u.ID, u.Login, []rune(u.Login)})
	}
	// Longest first, so "@Мария Петрова" wins over a member called "Мария".
	slices.SortFunc(names, func(a, b name) int { return len(b.text) - len(a.text) })
	runes := []rune(body)
	var out []textMention
	for i := 0; i < len(runes); i++ {
		if runes[i] != '@' || (i > 0 && isWord(runes[i-1])) {
			continue
		}
		for _, n := range names {
			end := i + 1 + len(n.text)
			if len(n.text) == 0 || end > len(runes) || !equalFold(runes[i+1:end], n.text) || (end < len(runes) && isWord(runes[end])) {
				continue
			}
			if !slices.ContainsFunc(out, func(m textMention) bool { return m.user == n.user }) {
				out = append(out, textMention{user: n.user, login: n.login, begin: i, end: end})
			}
			i = end - 1
			break
		}
	}
	return out, nil
}

func isWord(r rune) bool { return unicode.IsLetter(r) || unicode.IsDigit(r) || r == '_' }

func equalFold(a, b []rune) bool {
	for i := range a {
		if unicode.ToLower(a[i]) != unicode.ToLower(b[i]) {
			return false
		}
	}
	return true
}

// notifyMentions tells each mentioned member that author named them.
// The notification names the author, the chat and the message.
func (s *Service) notifyMentions(ctx context.Context, c *Chat, author, messageID int64, body string, users []int64) {
	if s.notifier == nil || len(users) == 0 {
		return
	}
	excerpt := body
	if utf8.RuneCountInString(excerpt) > 140 {
		excerpt = string([]rune(excerpt)[:140]) + "…"
	}
	text := fmt.Sprintf("%s mentioned you in «%s»: %s", s.displayName(ctx, author), c.Title, excerpt)
	for _, u := range users {
		r := xmppcore.NotifyRequest{UserID: u, Text: text, SenderID: author, ChatID: c.ID, MessageID: messageID}
		if _, err := s.notifier.NotifyWith(ctx, r); err != nil {
			s.log.Warn("mention notification", "chat", c.ID, "user", u, "err", err)
		}
	}
}
