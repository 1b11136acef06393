package event_test

import (
	"bytes"
	"encoding/base64"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sidehook/sidehook/internal/event"
)

// FuzzDecodeBody: a body and its encoding come from capture files, export
// lines and API answers. Text is taken as is, base64 decodes to bytes that
// encode back to it, anything else is an error with no bytes; and any
// bytes EncodeBody writes read back exactly.
func FuzzDecodeBody(f *testing.F) {
	for _, s := range [][2]string{
		{"hello", ""}, {"hello", event.BodyUTF8}, {"/w==", event.BodyBase64}, {"/w", event.BodyBase64},
		{"/x==", event.BodyBase64}, {"aGk=\r\n", event.BodyBase64}, {"====", event.BodyBase64},
		{"x", "UTF8"}, {"x", "gzip"}, {"\xff", event.BodyUTF8},
	} {
		f.Add(s[0], s[1], []byte(s[0]))
	}
	f.Fuzz(func(t *testing.T, text, encoding string, b []byte) {
		got, err := event.DecodeBody(text, encoding)
		switch {
		case err != nil:
			if got != nil || encoding != event.BodyBase64 && !strings.Contains(err.Error(), strconv.Quote(encoding)) {
				t.Fatalf("DecodeBody(%q, %q) = %q, %v", text, encoding, got, err)
			}
		case encoding == "" || encoding == event.BodyUTF8:
			if string(got) != text {
				t.Fatalf("DecodeBody(%q, %q) = %q, want %q", text, encoding, got, text)
			}
		case encoding == event.BodyBase64:
			again, err := event.DecodeBody(base64.StdEncoding.EncodeToString(got), event.BodyBase64)
			if err != nil || !bytes.Equal(again, got) {
				t.Fatalf("DecodeBody(%q) = %q, which encodes and reads back as %q, %v", text, got, again, err)
			}
		default:
			t.Fatalf("DecodeBody(%q, %q) = %q: unknown encoding accepted", text, encoding, got)
		}

		text, encoding = event.EncodeBody(b)
		back, err := event.DecodeBody(text, encoding)
		if err != nil || !bytes.Equal(back, b) {
			t.Fatalf("%q written as %q %q, read back as %q, %v", b, text, encoding, back, err)
		}
	})
}

// FuzzParseID: ids come from URLs, cursors and replay selections. One that
// is read is the prefix and a ULID exactly as sidehook writes it, so a
// lookup or a cursor built from it finds what its text names.
func FuzzParseID(f *testing.F) {
	at := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	for _, s := range []string{event.NewID(event.PrefixEvent, at), event.NewID(event.PrefixCapture, at), "dlv_01J00000000000000000000000",
		"evt_notaulid", "evt_", "evt_7ZZZZZZZZZZZZZZZZZZZZZZZZZ", "evt_8ZZZZZZZZZZZZZZZZZZZZZZZZZ", "evt_01J0000000000000000000000I",
		"evt_01J000000000000000000000000", " evt_01J00000000000000000000000"} {
		f.Add(event.PrefixEvent, s)
		f.Add(event.PrefixCapture, s)
	}
	f.Fuzz(func(t *testing.T, prefix, id string) {
		u, err := event.ParseID(prefix, id)
		if err != nil {
			if !errors.Is(err, event.ErrBadID) || u != ([16]byte{}) {
				t.Fatalf("ParseID(%q, %q) = %v, %v; want the zero ULID and ErrBadID", prefix, id, u, err)
			}
			return
		}
		if id != prefix+u.String() {
			t.Fatalf("ParseID(%q, %q) = %v: not the id as sidehook writes it (%s)", prefix, id, u, prefix+u.String())
		}
		if _, err := event.IDTime(prefix, id); err != nil {
			t.Fatalf("IDTime(%q, %q): %v", prefix, id, err)
		}
	})
}
