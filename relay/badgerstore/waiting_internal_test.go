package badgerstore

import (
	"context"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/sidehook/sidehook/internal/store"
	"github.com/sidehook/sidehook/relay"
)

// TestOpenDropsObsoleteCounts: the durable counts an older version kept
// beside the due indexes are deleted at open; the due indexes stay.
func TestOpenDropsObsoleteCounts(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	s, err := Open(ctx, Options{Dir: dir, Logger: zerolog.Nop(), Reserve: -1})
	if err != nil {
		t.Fatal(err)
	}
	due := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	ev := &relay.Event{ID: "e1", Type: "t", Org: "acme", ReceivedAt: due, Body: []byte("{}"),
		Deliveries: []relay.DeliveryRef{{ID: "d1", Endpoint: "a"}}}
	d := &relay.Delivery{ID: "d1", EventID: "e1", Org: "acme", Endpoint: "a", Type: "t", Status: relay.StatusPending, CreatedAt: due, NextAttemptAt: &due}
	if _, err := s.Accept(ctx, ev, []*relay.Delivery{d}); err != nil {
		t.Fatal(err)
	}
	old := []store.Op{
		store.Set([]byte("qn/acme/a"), []byte{2}),
		store.Set([]byte("qc/\x00\x00\x00\x00\x00\x00\x00\x01"), []byte{7, 'a', 'c', 'm', 'e', '/', 'a', 2}),
		store.Set([]byte("qs"), make([]byte, 8)),
	}
	if err := s.db.Write(ctx, old...); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s, err = Open(ctx, Options{Dir: dir, Logger: zerolog.Nop(), Reserve: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	for _, op := range old {
		if _, err := s.db.Get(op.Key); err != store.ErrNotFound {
			t.Errorf("%q after open: got %v, want deleted", op.Key, err)
		}
	}
	m, err := s.Waiting(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n := m[relay.EndpointRef{Org: "acme", Endpoint: "a"}]; n != 1 || len(m) != 1 {
		t.Errorf("Waiting: got %v, want acme/a 1", m)
	}
}

func TestQueueEndpoint(t *testing.T) {
	tests := []struct {
		key    string
		want   string
		wantOK bool
	}{
		{"q/acme/crm/\x00\x00\x00\x00\x00\x00\x00\x01d1", "acme/crm", true},
		{"q/acme/crm/", "acme/crm", true},
		{"q/acme/crm", "", false},
		{"q/acme", "", false},
		{"qn/acme/crm/x", "", false},
		{"d/acme/d1", "", false},
	}
	for _, tt := range tests {
		got, ok := queueEndpoint([]byte(tt.key))
		if ok != tt.wantOK || string(got) != tt.want {
			t.Errorf("queueEndpoint(%q) = %q, %v; want %q, %v", tt.key, got, ok, tt.want, tt.wantOK)
		}
	}
}
