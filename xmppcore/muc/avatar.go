package muc

import (
	"encoding/base64"
	"net/http"
	"net/url"
	"strings"
)

// avatarTypes are the image types a chat avatar may have.
var avatarTypes = map[string]bool{"image/png": true, "image/jpeg": true, "image/gif": true, "image/webp": true}

// ParseAvatar decodes a data: URL ("data:image/png;base64,…") into the image
// and its media type. The declared type must be an allowed image type and
// match what the bytes are; the image is at most MaxAvatar bytes.
func ParseAvatar(s string) ([]byte, string, error) {
	rest, ok := strings.CutPrefix(s, "data:")
	if !ok {
		return nil, "", invalid("avatar", "invalid_avatar", "avatar must be a data: URL")
	}
	meta, payload, ok := strings.Cut(rest, ",")
	if !ok {
		return nil, "", invalid("avatar", "invalid_avatar", "avatar data: URL has no comma")
	}
	if len(payload) > base64.StdEncoding.EncodedLen(MaxAvatar)+4 {
		return nil, "", invalid("avatar", "avatar_too_large", "avatar must be at most %d KiB", MaxAvatar>>10)
	}
	mediaType, isBase64 := strings.CutSuffix(meta, ";base64")
	mediaType, _, _ = strings.Cut(mediaType, ";")
	mediaType = strings.ToLower(strings.TrimSpace(mediaType))
	if !avatarTypes[mediaType] {
		return nil, "", invalid("avatar", "invalid_avatar", "avatar must be a PNG, JPEG, GIF or WebP image, not %q", mediaType)
	}
	var data []byte
	var err error
	if isBase64 {
		data, err = base64.RawStdEncoding.DecodeString(strings.TrimRight(strings.TrimSpace(payload), "="))
	} else {
		var u string
		u, err = url.PathUnescape(payload)
		data = []byte(u)
	}
	if err != nil {
		return nil, "", invalid("avatar", "invalid_avatar", "avatar data is not valid base64")
	}
	if len(data) == 0 {
		return nil, "", invalid("avatar", "invalid_avatar", "avatar image is empty")
	}
	if len(data) > MaxAvatar {
		return nil, "", invalid("avatar", "avatar_too_large", "avatar must be at most %d KiB", MaxAvatar>>10)
	}
	if got := http.DetectContentType(data); got != mediaType {
		return nil, "", invalid("avatar", "invalid_avatar", "avatar bytes are not a %s image", mediaType)
	}
	return data, mediaType, nil
}
