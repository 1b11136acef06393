package event_test

import (
	"bytes"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/sidehook/sidehook/internal/event"
)

func TestBodyRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		in   []byte
		enc  string
	}{
		{"Text", []byte(`{"type":"payment","amount":"£50.00"}`), event.BodyUTF8},
		{"Empty", nil, event.BodyUTF8},
		{"Binary", []byte{0xff, 0x00, 0xfe, 'a'}, event.BodyBase64},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			text, enc := event.EncodeBody(tt.in)
			if enc != tt.enc {
				t.Errorf("encoding: got %q, want %q", enc, tt.enc)
			}
			back, err := event.DecodeBody(text, enc)
			if err != nil || !bytes.Equal(back, tt.in) {
				t.Errorf("got %q %v, want %q", back, err, tt.in)
			}
		})
	}
	if b, err := event.DecodeBody("x", ""); err != nil || string(b) != "x" {
		t.Errorf("empty encoding: got %q %v, want utf8", b, err)
	}
	if _, err := event.DecodeBody("!!", event.BodyBase64); err == nil || !strings.Contains(err.Error(), "not valid base64") {
		t.Errorf("bad base64: got %v, want an error saying not valid base64", err)
	}
	if _, err := event.DecodeBody("x", "rot13"); err == nil || !strings.Contains(err.Error(), "unknown body_encoding") {
		t.Errorf("unknown encoding: got %v, want an error saying unknown body_encoding", err)
	}
}

func TestCutText(t *testing.T) {
	s := []byte("ab£cd") // '£' is two bytes: a, b, 0xc2, 0xa3, c, d
	if got := event.CutText(s, 3); string(got) != "ab" {
		t.Errorf("cut inside a rune: got %q, want %q", got, "ab")
	}
	if got := event.CutText(s, 4); string(got) != "ab£" {
		t.Errorf("cut after a rune: got %q, want %q", got, "ab£")
	}
	if got := event.CutText(s, 100); !bytes.Equal(got, s) {
		t.Errorf("short body: got %q, want it whole, %q", got, s)
	}
	bin := []byte{0xff, 0xfe, 0xfd, 0xfc}
	if got := event.CutText(bin, 3); len(got) != 3 {
		t.Errorf("binary: got %d bytes, want 3 (no rune backing off)", len(got))
	}
	if got := event.CutText([]byte(strings.Repeat("é", 10)), 7); !utf8.Valid(got) {
		t.Errorf("got %q, want valid UTF-8", got)
	}
}
