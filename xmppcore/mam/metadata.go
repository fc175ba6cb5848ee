package mam

import (
	"context"
	"strconv"
)

// Metadata answers an XEP-0313 metadata request: the oldest and newest
// messages of an archive the viewer may read (chatID 0: the personal
// archive). It returns the <metadata/> payload as XML; an empty archive
// gives an empty element.
func (s *Store) Metadata(ctx context.Context, viewer, chatID int64) (string, error) {
	first, err := s.Query(ctx, Query{Viewer: viewer, ChatID: chatID, Limit: 1})
	if err != nil {
		return "", err
	}
	b := []byte(`<metadata xmlns='` + NS + `'>`)
	if len(first.Messages) > 0 {
		last, err := s.Query(ctx, Query{Viewer: viewer, ChatID: chatID, Limit: 1, Reverse: true})
		if err != nil {
			return "", err
		}
		b = appendEdge(b, "start", &first.Messages[0])
		b = appendEdge(b, "end", &last.Messages[len(last.Messages)-1])
	}
	return string(append(b, `</metadata>`...)), nil
}

func appendEdge(b []byte, name string, m *Message) []byte {
	b = append(b, `<`+name+` id='`...)
	b = strconv.AppendInt(b, m.ID, 10)
	b = append(b, `' timestamp='`...)
	b = m.CreatedAt.UTC().AppendFormat(b, "2006-01-02T15:04:05.000000Z")
	return append(b, `'/>`...)
}
