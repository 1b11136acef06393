package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
)

func openInternal(tb testing.TB, opts Options) *Store {
	tb.Helper()
	if !opts.InMemory && opts.Dir == "" {
		opts.Dir = tb.TempDir()
	}
	if opts.Reserve == 0 {
		opts.Reserve = -1 // the machine's disk may be fuller than the default
	}
	s, err := Open(opts)
	if err != nil {
		tb.Fatalf("open: %v", err)
	}
	tb.Cleanup(func() { s.Close() })
	return s
}

// A Write is answered only after the sync of its group: when the writer
// syncs, no write of the group has been answered yet.
func TestWriteAnsweredAfterSync(t *testing.T) {
	t.Parallel()
	type syncPoint struct{ answered, before uint64 }
	var (
		mu     sync.Mutex
		syncs  []syncPoint
		groups uint64 // writes in the groups synced so far
	)
	var s *Store
	s = openInternal(t, Options{beforeSync: func(group int) {
		mu.Lock()
		defer mu.Unlock()
		syncs = append(syncs, syncPoint{answered: s.stats.writes.Load() + s.stats.failed.Load(), before: groups})
		groups += uint64(group)
	}})
	var wg sync.WaitGroup
	const writers = 16
	for g := range writers {
		wg.Go(func() {
			k := fmt.Appendf(nil, "k/%02d", g)
			if err := s.Write(context.Background(), Set(k, k)); err != nil {
				t.Errorf("write: %v", err)
				return
			}
			// Read your write: visible as soon as Write returned.
			if v, err := s.Get(k); err != nil || string(v) != string(k) {
				t.Errorf("get %s after its write: got %q, %v", k, v, err)
			}
		})
	}
	wg.Wait()
	st := s.Stats()
	mu.Lock()
	defer mu.Unlock()
	if uint64(len(syncs)) != st.Syncs || st.Syncs != st.Groups {
		t.Errorf("got %d syncs seen, %d counted, %d groups; want one per group", len(syncs), st.Syncs, st.Groups)
	}
	// At each sync, exactly the writes of the earlier groups are answered.
	for i, p := range syncs {
		if p.answered != p.before {
			t.Errorf("sync %d: got %d writes answered, want %d (those of the groups before it)", i, p.answered, p.before)
		}
	}
	if groups != writers {
		t.Errorf("got %d writes in synced groups, want %d", groups, writers)
	}
}

// A failed sync fails every write of its group and the store, until it is
// reopened; what was synced before stays.
func TestSyncFailure(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	var failing sync.Mutex // held: syncs fail
	broken := false
	s := openInternal(t, Options{Dir: dir, failSync: func() error {
		failing.Lock()
		defer failing.Unlock()
		if broken {
			return errors.New("EIO")
		}
		return nil
	}})
	ctx := context.Background()
	if err := s.Write(ctx, Set([]byte("before"), []byte("b"))); err != nil {
		t.Fatalf("write: %v", err)
	}
	if err := s.Failed(); err != nil {
		t.Fatalf("Failed before any failure: got %v, want nil", err)
	}
	failing.Lock()
	broken = true
	failing.Unlock()

	if err := s.Write(ctx, Set([]byte("lost"), []byte("l"))); err == nil || !strings.Contains(err.Error(), "EIO") {
		t.Fatalf("write with a failing sync: got %v, want the sync's error", err)
	}
	failed := s.Failed()
	if failed == nil || !strings.Contains(failed.Error(), "reopened") {
		t.Fatalf("Failed after a failed sync: got %v, want the sync's error", failed)
	}
	failing.Lock()
	broken = false // the disk is back, but the store stays failed
	failing.Unlock()
	if err := s.Write(ctx, Set([]byte("later"), []byte("x"))); err == nil {
		t.Fatal("write after a failed sync: got nil, want an error")
	}
	if v, err := s.Get([]byte("before")); err != nil || string(v) != "b" {
		t.Errorf("get before: got %q, %v; want b", v, err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}

	s = openInternal(t, Options{Dir: dir})
	if err := s.Failed(); err != nil {
		t.Fatalf("Failed after reopening: got %v, want nil", err)
	}
	if v, err := s.Get([]byte("before")); err != nil || string(v) != "b" {
		t.Errorf("get before after reopening: got %q, %v; want b", v, err)
	}
	if err := s.Write(ctx, Set([]byte("after"), []byte("a"))); err != nil {
		t.Errorf("write after reopening: %v", err)
	}
}
