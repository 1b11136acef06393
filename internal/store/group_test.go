package store

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"testing"
	"time"
)

// TestGroupBytes: a group takes queued writes up to the group budget (at
// least one), the rest waiting for the next group. The WAL logs a group as
// one record of at most 1 GiB: seventeen writes of a 64 MiB value queued
// at once made a larger one, which failed the store until a restart.
func TestGroupBytes(t *testing.T) {
	t.Parallel()
	const (
		budget  = 1 << 20
		value   = 300 << 10 // three fit a budget, not four
		writers = 8
	)
	var (
		mu      sync.Mutex
		groups  []int
		entered = make(chan struct{})
		gate    = make(chan struct{})
		hold    sync.Once
	)
	s := openInternal(t, Options{groupBytes: budget, beforeSync: func(n int) {
		mu.Lock()
		groups = append(groups, n)
		mu.Unlock()
		// The first group holds the writer until every other write is
		// queued behind it.
		hold.Do(func() {
			close(entered)
			<-gate
		})
	}})
	ctx := context.Background()
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := s.Write(ctx, Set([]byte("first"), []byte("1"))); err != nil {
			t.Errorf("write first: %v", err)
		}
	})
	<-entered
	for i := range writers {
		wg.Go(func() {
			k := fmt.Appendf(nil, "big/%d", i)
			if err := s.Write(ctx, Set(k, bytes.Repeat([]byte{byte(i)}, value))); err != nil {
				t.Errorf("write %s: %v", k, err)
			}
		})
	}
	waitQueued(t, s, writers)
	close(gate)
	wg.Wait()
	if err := s.Failed(); err != nil {
		t.Fatalf("Failed: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	total := 0
	for i, n := range groups[1:] {
		if n > budget/value {
			t.Errorf("group %d: got %d writes of %d bytes, want at most %d (a budget of %d)", i+1, n, value, budget/value, budget)
		}
		total += n
	}
	if total != writers {
		t.Errorf("got %d writes in the groups after the first, want %d (groups %v)", total, writers, groups)
	}
	for i := range writers {
		if v, err := s.Get(fmt.Appendf(nil, "big/%d", i)); err != nil || len(v) != value {
			t.Errorf("get big/%d: got %d bytes, %v", i, len(v), err)
		}
	}
}

// waitQueued waits until n writes wait in s's queue.
func waitQueued(tb testing.TB, s *Store, n int) {
	tb.Helper()
	deadline := time.NewTimer(10 * time.Second)
	defer deadline.Stop()
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for {
		s.mu.Lock()
		queued := len(s.queue)
		s.mu.Unlock()
		if queued >= n {
			return
		}
		select {
		case <-tick.C:
		case <-deadline.C:
			tb.Fatalf("got %d writes queued within 10s, want %d", queued, n)
		}
	}
}
