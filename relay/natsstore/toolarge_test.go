package natsstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/sidehook/sidehook/relay"
)

// TestTooLarge: on servers with a 32 KiB max payload, a body above it is
// split over records and stored, up to BodyLimit with as many deliveries
// as it promises room for; an event that no atomic batch can hold
// (too many records, or metadata over one record) is refused with
// relay.ErrTooLarge, which no retry gets past, and stores nothing: the
// events around it are untouched.
func TestTooLarge(t *testing.T) {
	srv := startServer(t, func(o *server.Options) { o.MaxPayload = 32 << 10 })
	s := openStore(t, Config{Servers: []string{srv.ClientURL()}})
	ctx := context.Background()
	kept, kds := mkEvent("acme", "kept", t0, false, "a")
	accept(t, s, kept, kds)
	// n endpoints of names as long as width: each delivery adds about
	// twice that to the event's metadata.
	endpoints := func(n, width int) []string {
		eps := make([]string, n)
		for i := range eps {
			eps[i] = fmt.Sprintf("%0*d", width, i)
		}
		return eps
	}
	tests := []struct {
		name    string
		body    int
		eps     []string
		tooBig  bool
		because string // what the refusal must say: the limit exactly
	}{
		{"BodyOverMaxPayload", 100 << 10, []string{"a", "b"}, false, ""},
		{"BodyLimitWithItsDeliveries", int(s.BodyLimit().MaxBody), endpoints(relay.BodyLimitFanOut, 64), false, ""},
		{"BodyOverABatch", 25 << 20, []string{"a"}, true, "the body alone takes more than one atomic batch of 1000 records holds"},
		{"DeliveriesAtTheLimit", 10, endpoints(332, 4), false, ""},
		{"DeliveriesOverABatch", 10, endpoints(333, 4), true, "with this body an event has at most 332 deliveries"},
		{"MetadataOverARecord", 10, endpoints(320, 40), true, "over the 24 KiB of one record"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev, ds := mkEvent("acme", tt.name, t0, false, tt.eps...)
			ev.Body = bytes.Repeat([]byte("x"), tt.body)
			_, err := s.Accept(ctx, ev, ds)
			if !tt.tooBig {
				if err != nil {
					t.Fatalf("Accept: %v", err)
				}
				got, err := s.Event(ctx, "acme", ev.ID)
				if err != nil || !bytes.Equal(got.Body, ev.Body) {
					t.Fatalf("read back: %v, body equal %v", err, err == nil && bytes.Equal(got.Body, ev.Body))
				}
				return
			}
			if !errors.Is(err, relay.ErrTooLarge) || errors.Is(err, relay.ErrUnavailable) {
				t.Fatalf("Accept: got %v, want ErrTooLarge saying %q", err, tt.because)
			}
			if !strings.Contains(err.Error(), tt.because) {
				t.Errorf("Accept: got %q, want it to say %q", err, tt.because)
			}
			if _, err := s.Event(ctx, "acme", ev.ID); !errors.Is(err, relay.ErrNotFound) {
				t.Errorf("the refused event: got %v, want ErrNotFound", err)
			}
		})
	}
	if got, err := s.Event(ctx, "acme", "kept"); err != nil || !bytes.Equal(got.Body, kept.Body) {
		t.Errorf("the event before: %v", err)
	}
	next, nds := mkEvent("acme", "next", t0, false, "a")
	accept(t, s, next, nds)
}
