package tunnel

import (
	"bytes"
	"fmt"
	"net/http"
	"strings"
	"testing"
)

func TestResultFitsFrame(t *testing.T) {
	// The worst a local app can answer: the most body a result carries and
	// headers that JSON escapes the most ("<" is 6 bytes as \u003c), as
	// few big values or as many tiny ones.
	tests := []struct {
		name string
		h    http.Header
	}{
		{"BigValues", func() http.Header {
			h := http.Header{}
			for i := range 64 {
				h.Set(fmt.Sprintf("X-Big-%02d", i), strings.Repeat("<", 32<<10))
			}
			return h
		}()},
		{"ManyTinyValues", func() http.Header {
			h := http.Header{}
			for i := range 200_000 {
				h.Add(fmt.Sprintf("X-%d", i%1000), "<")
			}
			return h
		}()},
		{"EmptyValues", http.Header{"X-Empty": make([]string, 500_000)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, dropped := boundHeaders(tt.h)
			if dropped == 0 || h.Get(HeaderDropped) == "" {
				t.Errorf("got %d dropped, %s %q, want some dropped and said so", dropped, HeaderDropped, h.Get(HeaderDropped))
			}
			frame, err := Encode(&Message{Type: TypeResult, ID: 1<<64 - 1, DeliveryID: "dlv_01J0000000000000000000000", Status: 200,
				Headers: h, Body: bytes.Repeat([]byte{0xff}, MaxResultBody), Truncated: true, DurationMS: 30000})
			if err != nil {
				t.Fatal(err)
			}
			if len(frame) > maxResultFrame/2 {
				t.Errorf("result frame: got %d bytes, want well under the relay's limit of %d", len(frame), maxResultFrame)
			}
			if _, err := Decode(frame); err != nil {
				t.Errorf("Decode: %v", err)
			}
		})
	}
}

func TestBoundHeadersKeepsSmall(t *testing.T) {
	h := http.Header{"Content-Type": {"application/json"}, "X-A": {strings.Repeat("a", 100<<10)}, "X-B": {"b1", "b2"}}
	got, dropped := boundHeaders(h)
	if dropped != 1 || got.Get("Content-Type") != "application/json" || strings.Join(got["X-B"], ",") != "b1,b2" || got["X-A"] != nil {
		t.Errorf("got %v (%d dropped), want X-A dropped and the rest kept", got, dropped)
	}
	small := http.Header{"Content-Type": {"text/plain"}}
	if got, dropped := boundHeaders(small); dropped != 0 || len(got) != 1 {
		t.Errorf("headers under the bound: got %v (%d dropped), want them as they are", got, dropped)
	}
}
