package web

import (
	"encoding/base64"
	"unicode/utf8"

	"github.com/sidehook/sidehook/internal/event"
)

// MaxItemBody is how many bytes of a request body an Item's Data carries.
// A snapshot holds SnapshotSize items and a browser up to MaxItems: whole
// 1 MiB bodies would make both megabytes per item. The server keeps the
// whole body, and a replay sends it.
const MaxItemBody = 64 << 10

// Fields of an Item's Data that say its body was cut to MaxItemBody: the
// page then says so, will not edit it, and warns when copying it as curl.
const (
	FieldBodyPreview = "body_preview" // true when the body was cut
	FieldBodySize    = "body_size"    // the whole body's length in bytes
)

// ItemBody returns b as an Item's Data carries it: as text when b is valid
// UTF-8 ("utf8"), else base64 ("base64") — the encoding is decided on the
// whole body, so it is the one the server's API uses — cut to its first
// MaxItemBody bytes (at a rune boundary for text). cut reports whether
// anything was left out.
func ItemBody(b []byte) (body, encoding string, cut bool) {
	// The encoding is decided on the whole body, before the cut.
	if !utf8.Valid(b) {
		if len(b) > MaxItemBody {
			b, cut = b[:MaxItemBody], true
		}
		return base64.StdEncoding.EncodeToString(b), event.BodyBase64, cut
	}
	kept := event.CutText(b, MaxItemBody)
	return string(kept), event.BodyUTF8, len(kept) < len(b)
}
