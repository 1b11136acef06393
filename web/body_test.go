package web_test

import (
	"bytes"
	"encoding/base64"
	"strings"
	"testing"

	"github.com/sidehook/sidehook/web"
)

func TestItemBody(t *testing.T) {
	long := strings.Repeat("a", web.MaxItemBody-1) + "é" // the cut splits é
	bin := bytes.Repeat([]byte{0xff}, web.MaxItemBody+10)
	tests := []struct {
		name     string
		in       []byte
		body     string
		encoding string
		cut      bool
	}{
		{"Empty", nil, "", "utf8", false},
		{"Text", []byte(`{"a":"é"}`), `{"a":"é"}`, "utf8", false},
		{"Binary", []byte{0xff, 0xfe}, "//4=", "base64", false},
		{"ExactlyMax", []byte(strings.Repeat("b", web.MaxItemBody)), strings.Repeat("b", web.MaxItemBody), "utf8", false},
		{"TextCutAtRune", []byte(long), strings.Repeat("a", web.MaxItemBody-1), "utf8", true},
		{"BinaryCut", bin, base64.StdEncoding.EncodeToString(bin[:web.MaxItemBody]), "base64", true},
		// Encoding is decided on the whole body: valid text up to the cut
		// is still base64 when the whole is not UTF-8.
		{"InvalidAfterCut", append([]byte(strings.Repeat("c", web.MaxItemBody)), 0xff), base64.StdEncoding.EncodeToString([]byte(strings.Repeat("c", web.MaxItemBody))), "base64", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body, enc, cut := web.ItemBody(tt.in)
			if body != tt.body || enc != tt.encoding || cut != tt.cut {
				t.Errorf("got %d bytes %s cut=%v, want %d bytes %s cut=%v", len(body), enc, cut, len(tt.body), tt.encoding, tt.cut)
			}
		})
	}
}
