package event

import (
	"encoding/base64"
	"fmt"
	"unicode/utf8"
)

// How a body travels in JSON (SPEC §5 "body" and "body_encoding"): as text
// when its bytes are valid UTF-8, else as standard base64. One convention
// for captures, stored events, dashboard items and export files, so any of
// them can be read back into the exact bytes.
const (
	BodyUTF8   = "utf8"
	BodyBase64 = "base64"
)

// EncodeBody returns b as JSON text and the encoding that says how.
func EncodeBody(b []byte) (text, encoding string) {
	if utf8.Valid(b) {
		return string(b), BodyUTF8
	}
	return base64.StdEncoding.EncodeToString(b), BodyBase64
}

// DecodeBody returns the bytes EncodeBody was given; an empty encoding is
// read as utf8.
func DecodeBody(text, encoding string) ([]byte, error) {
	switch encoding {
	case BodyUTF8, "":
		return []byte(text), nil
	case BodyBase64:
		b, err := base64.StdEncoding.DecodeString(text)
		if err != nil {
			return nil, fmt.Errorf("body is not valid base64: %w", err)
		}
		return b, nil
	default:
		return nil, fmt.Errorf("unknown body_encoding %q (want utf8 or base64)", encoding)
	}
}

// CutText returns at most the first n bytes of b. When b is valid UTF-8 the
// cut backs off to a rune boundary, so the result stays valid text.
func CutText(b []byte, n int) []byte {
	if len(b) <= n {
		return b
	}
	valid := utf8.Valid(b)
	b = b[:n]
	if valid {
		for i := 0; i < utf8.UTFMax && len(b) > 0 && !utf8.Valid(b); i++ {
			b = b[:len(b)-1]
		}
	}
	return b
}
