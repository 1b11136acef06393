package natsstore

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// hearing is what one store heard with HearChanges: "from msg", in order.
type hearing struct {
	mu    sync.Mutex
	heard []string
}

func (h *hearing) got() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.heard)
}

func hear(t *testing.T, s *Store) *hearing {
	t.Helper()
	h := &hearing{}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	err := s.HearChanges(ctx, func(from string, msg []byte) {
		h.mu.Lock()
		h.heard = append(h.heard, from+" "+string(msg))
		h.mu.Unlock()
	})
	if err != nil {
		t.Fatalf("HearChanges: got %v, want nil", err)
	}
	return h
}

// TestShareChanges: what a store shares is heard by every other store of
// its prefix, in the order shared, named by the store that shared it;
// never by the store itself, nor by a store of another prefix on the
// same NATS. Each share is flushed before the next store's: the server
// then passes it to every subscriber before what follows, so an echo or
// a leak across prefixes would be heard before the message waited for.
func TestShareChanges(t *testing.T) {
	srv := startServer(t, nil)
	servers := []string{srv.ClientURL()}
	a, b := openStore(t, Config{Servers: servers}), openStore(t, Config{Servers: servers})
	x, y := openStore(t, Config{Servers: servers, Prefix: "other"}), openStore(t, Config{Servers: servers, Prefix: "other"})
	heard := map[*Store]*hearing{a: hear(t, a), b: hear(t, b), x: hear(t, x), y: hear(t, y)}
	share := func(s *Store, msgs ...string) {
		t.Helper()
		for _, m := range msgs {
			if err := s.ShareChanges([]byte(m)); err != nil {
				t.Fatalf("ShareChanges(%s): got %v, want nil", m, err)
			}
		}
		if err := s.nc.Flush(); err != nil {
			t.Fatalf("flush: %v", err)
		}
	}
	share(a, "a1", "a2")
	share(x, "x1")
	share(b, "b1")
	share(y, "y1")
	share(a, "a3")
	want := map[*Store][]string{
		a: {b.id + " b1"},
		b: {a.id + " a1", a.id + " a2", a.id + " a3"},
		x: {y.id + " y1"},
		y: {x.id + " x1"},
	}
	names := map[*Store]string{a: "a", b: "b", x: "x", y: "y"}
	for s, w := range want {
		waitFor(t, 5*time.Second, names[s]+" to hear "+w[len(w)-1], func() bool {
			return slices.Contains(heard[s].got(), w[len(w)-1])
		})
	}
	// a3 was shared last: a heard everything it will of b and x by now.
	for s, w := range want {
		if got := heard[s].got(); !slices.Equal(got, w) {
			t.Errorf("%s heard %q, want %q", names[s], got, w)
		}
	}
}

// TestCloseEndsHearing: Close ends what HearChanges started, whose ctx
// may never end.
func TestCloseEndsHearing(t *testing.T) {
	s, _ := newStore(t)
	before := goleak.IgnoreCurrent()
	if err := s.HearChanges(context.Background(), func(string, []byte) {}); err != nil {
		t.Fatalf("HearChanges: got %v, want nil", err)
	}
	s.Close()
	if err := goleak.Find(before); err != nil {
		t.Errorf("after Close: got goroutines left, want none:\n%v", err)
	}
	if err := s.HearChanges(context.Background(), func(string, []byte) {}); err == nil {
		t.Errorf("HearChanges after Close: got nil, want an error")
	}
}
