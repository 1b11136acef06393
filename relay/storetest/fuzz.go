package storetest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/sidehook/sidehook/relay"
)

// FuzzCursor is the fuzz body every implementation runs from its own
// FuzzCursor: a cursor comes from a client's query string; whatever it
// holds, a listing answers a page or ErrBadCursor, never a panic. s is a
// fresh, empty store that the caller closes.
func FuzzCursor(f *testing.F, s relay.Store) {
	ctx := context.Background()
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	for _, id := range []string{"a", "b", "c"} {
		due := t0
		ev := &relay.Event{ID: id, Org: "acme", Type: "t", ReceivedAt: t0}
		d := &relay.Delivery{ID: id, EventID: id, Org: "acme", Endpoint: "e", Status: relay.StatusPending, CreatedAt: t0, NextAttemptAt: &due}
		if _, err := s.Accept(ctx, ev, []*relay.Delivery{d}); err != nil {
			f.Fatal(err)
		}
	}
	p, err := s.Events(ctx, "acme", relay.EventFilter{Limit: 1})
	if err != nil {
		f.Fatal(err)
	}
	for _, seed := range []string{p.Next, "", "AAAAAAAAAAAA", "////", "\x00", "not a cursor"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, cursor string) {
		for _, list := range []func() error{
			func() error { _, err := s.Events(ctx, "acme", relay.EventFilter{Cursor: cursor, Limit: 2}); return err },
			func() error {
				_, err := s.Deliveries(ctx, "acme", relay.DeliveryFilter{Cursor: cursor, Limit: 2})
				return err
			},
		} {
			if err := list(); err != nil && !errors.Is(err, relay.ErrBadCursor) {
				t.Fatalf("cursor %q: got %v, want a page or ErrBadCursor", cursor, err)
			}
		}
	})
}
