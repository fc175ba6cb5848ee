package xmppcore

import (
	"context"
	"strconv"
	"strings"
)

// NSFile marks, in a message, a stored file it carries:
// <file xmlns='urn:vestnik:file:0' id='…' name='…' size='…' type='…'
// url='…' thumb='true'/>. Only the server writes it (AttachFiles drops
// any a client sent), so a door may trust it without a lookup.
const NSFile = "urn:vestnik:file:0"

// Files is what the core needs from the file store (package upload).
type Files interface {
	// FilesIn returns the stored files whose URLs appear in body (a file
	// is carried by its capability URL: whoever has it may download it,
	// so naming it in a message shares it).
	FilesIn(ctx context.Context, body string) ([]FileRef, error)
}

// FileRef is a stored file as a message carries it.
type FileRef struct {
	ID          int64
	URL         string // the capability URL Jabber clients download
	Name        string
	Size        int64
	ContentType string
	Thumb       bool // a JPEG thumbnail exists
}

// FileElement is the NSFile element describing f.
func FileElement(f FileRef) *Element {
	e := NewElement(NSFile, "file", "id", strconv.FormatInt(f.ID, 10), "name", f.Name,
		"size", strconv.FormatInt(f.Size, 10), "type", f.ContentType, "url", f.URL)
	if f.Thumb {
		e.SetAttr("thumb", "true")
	}
	return e
}

// ParseFileElement reads an NSFile element back; ok is false for anything
// else.
func ParseFileElement(e *Element) (f FileRef, ok bool) {
	if e.Name.Space != NSFile || e.Name.Local != "file" {
		return f, false
	}
	id, err := strconv.ParseInt(e.AttrValue("id"), 10, 64)
	if err != nil || id <= 0 {
		return f, false
	}
	size, _ := strconv.ParseInt(e.AttrValue("size"), 10, 64)
	return FileRef{ID: id, URL: e.AttrValue("url"), Name: e.AttrValue("name"), Size: size,
		ContentType: e.AttrValue("type"), Thumb: e.AttrValue("thumb") == "true"}, true
}

// AttachFiles is the one rule for files in messages, applied by the core
// before a message is archived (personal messages here, chat messages in
// package muc): it drops NSFile elements a client sent, finds the stored
// files whose URLs the body or an out-of-band element carries, and for each adds an XEP-0066
// out-of-band element (unless the client sent one for that URL), so Dino,
// Gajim and Conversations show it inline, and an NSFile element. It returns
// the new children and the ids to archive with the message.
func AttachFiles(ctx context.Context, f Files, body string, kids []*Element) ([]*Element, []int64, error) {
	for _, k := range kids {
		if k.Name.Space == NSFile {
			kids = dropFileElements(kids)
			break
		}
	}
	if f == nil {
		return kids, nil, nil
	}
	// The body, and the URLs of out-of-band elements (a client may send a
	// caption as the body and the URL only there).
	text := body
	for _, k := range kids {
		if k.Name.Space == NSOOB && k.Name.Local == "x" {
			if u := k.ChildText(NSOOB, "url"); strings.Contains(u, "/upload/") {
				text += "\n" + u
			}
		}
	}
	if !strings.Contains(text, "/upload/") {
		return kids, nil, nil
	}
	refs, err := f.FilesIn(ctx, text)
	if err != nil || len(refs) == 0 {
		return kids, nil, err
	}
	ids := make([]int64, 0, len(refs))
	for _, r := range refs {
		ids = append(ids, r.ID)
		if !hasOOB(kids, r.URL) {
			x := NewElement(NSOOB, "x")
			x.AddText(NSOOB, "url", r.URL)
			kids = append(kids, x)
		}
		kids = append(kids, FileElement(r))
	}
	return kids, ids, nil
}

// AttachFilesPayload is AttachFiles over an archived payload (serialized
// children, as package muc keeps them).
func AttachFilesPayload(ctx context.Context, f Files, body, payload string) (string, []int64, error) {
	if !strings.Contains(payload, NSFile) && (f == nil || !strings.Contains(body, "/upload/") && !strings.Contains(payload, "/upload/")) {
		return payload, nil, nil
	}
	kids, err := ParseFragment(payload)
	if err != nil {
		return payload, nil, err
	}
	kids, ids, err := AttachFiles(ctx, f, body, kids)
	if err != nil {
		return payload, nil, err
	}
	var b []byte
	for _, k := range kids {
		b = k.AppendXML(b, NSClient)
	}
	return string(b), ids, nil
}

func dropFileElements(kids []*Element) []*Element {
	out := make([]*Element, 0, len(kids))
	for _, k := range kids {
		if k.Name.Space != NSFile {
			out = append(out, k)
		}
	}
	return out
}

func hasOOB(kids []*Element, url string) bool {
	for _, k := range kids {
		if k.Name.Space == NSOOB && k.Name.Local == "x" && strings.TrimSpace(k.ChildText(NSOOB, "url")) == url {
			return true
		}
	}
	return false
}
