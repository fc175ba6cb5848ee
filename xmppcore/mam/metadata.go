package mam

import (
	"context"
	"strconv"

	"vestnik/xmppcore/stanza"
)

// Metadata answers an XEP-0313 metadata request: the oldest and newest
// messages of an archive the viewer may read (chatID 0: the personal
// archive). It returns the <metadata/> payload as XML; an empty archive
// gives an empty element.
func (s *Store) Metadata(ctx context.Context, viewer, chatID int64) (*stanza.Element, error) {
	first, err := s.Query(ctx, Query{Viewer: viewer, ChatID: chatID, Limit: 1})
	if err != nil {
		return nil, err
	}
	md := stanza.NewElement(NS, "metadata")
	if len(first.Messages) > 0 {
		last, err := s.Query(ctx, Query{Viewer: viewer, ChatID: chatID, Limit: 1, Reverse: true})
		if err != nil {
			return nil, err
		}
		md.AddChild(edge("start", &first.Messages[0]), edge("end", &last.Messages[len(last.Messages)-1]))
	}
	return md, nil
}

func edge(name string, m *Message) *stanza.Element {
	return stanza.NewElement(NS, name, "id", strconv.FormatInt(m.ID, 10),
		"timestamp", m.CreatedAt.UTC().Format("2006-01-02T15:04:05.000000Z"))
}
