package muc

import (
	"context"

	"vestnik/xmppcore"
	"vestnik/xmppcore/stanza"
)

// langKey carries, while a client's groupchat message is posted, its
// xml:lang (the core stamped the stream's default on a message without
// one), so post archives it with the message. Other doors post without
// it: the core does not know a browser's or an integration's language.
type langKey struct{}

// withLang returns ctx carrying the language of message e.
func withLang(ctx context.Context, e *xmppcore.Element) context.Context {
	if l := e.Lang(); l != "" {
		return context.WithValue(ctx, langKey{}, l)
	}
	return ctx
}

// langOf is the language withLang put in ctx, or "".
func langOf(ctx context.Context) string {
	l, _ := ctx.Value(langKey{}).(string)
	return l
}

// setLang gives msg the archived message's language.
func setLang(msg *xmppcore.Element, lang string) {
	if lang != "" {
		msg.Attr = append(msg.Attr, stanza.LangAttr(lang))
	}
}
