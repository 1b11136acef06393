//go:build linux

package store_test

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sidehook/sidehook/internal/store"
)

// releaseValue is a distinct 1 KB value per key, so that a page refaulted
// from the wrong place or zeroed cannot pass for another key's.
func releaseValue(i int) []byte {
	v := bytes.Repeat(fmt.Appendf(nil, "%08d|", i), 1024/9+1)
	return v[:1024]
}

// TestReleaseKeepsData drops the mapped pages of a store full of data, and
// reads everything back from the page cache, then from a reopened store.
func TestReleaseKeepsData(t *testing.T) {
	dir := t.TempDir()
	opts := store.WithValueLogFileSize(store.Options{
		Dir: dir, GCInterval: -1, ReleaseInterval: -1, MinFreeBytes: -1, MemTableSize: 1 << 20,
	}, 4<<20)
	s, err := store.Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	const n = 8000
	for i := 0; i < n; i += 100 {
		ops := make([]store.Op, 0, 100)
		for j := i; j < i+100; j++ {
			ops = append(ops, store.Set(fmt.Appendf(nil, "r/%06d", j), releaseValue(j)))
		}
		mustWrite(t, s, ops...)
	}
	before := mappedRSS(t, dir)
	if err := s.Release(); err != nil {
		t.Fatalf("release: %v", err)
	}
	after := mappedRSS(t, dir)
	st := s.Stats()
	t.Logf("resident pages of the store's files: %d KiB -> %d KiB; %d releases, %d bytes advised", before>>10, after>>10, st.Releases, st.ReleasedBytes)
	if st.Releases != 1 || st.ReleasedBytes == 0 || st.ReleaseErrors != 0 {
		t.Errorf("stats after a release: %+v", st)
	}
	if before > 4<<20 && after >= before/2 {
		t.Errorf("release left %d of %d resident bytes", after, before)
	}
	checkRelease(t, s, n)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Release(); err != nil {
		t.Errorf("release after close: %v", err)
	}
	s2 := openStore(t, opts)
	checkRelease(t, s2, n)
}

// TestReleaseConcurrent runs releases back to back while writers, readers
// and the value log GC work, with small memtables and value log files so
// that flushes, compactions and rotations happen throughout.
func TestReleaseConcurrent(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	opts := store.WithValueLogFileSize(store.Options{
		Dir: dir, GCInterval: -1, ReleaseInterval: time.Millisecond, MinFreeBytes: -1, MemTableSize: 256 << 10,
	}, 1<<20)
	s, err := store.Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	const writers, perWriter = 4, 300
	var written atomic.Int64 // keys below written are all acknowledged
	var wg sync.WaitGroup
	var done atomic.Int32
	for w := range writers {
		wg.Go(func() {
			defer done.Add(1)
			for i := range perWriter {
				k := w*perWriter + i
				if err := s.Write(context.Background(), store.Set(fmt.Appendf(nil, "r/%06d", k), releaseValue(k))); err != nil {
					t.Errorf("write %d: %v", k, err)
					return
				}
				if w == 0 {
					written.Store(int64(i))
				}
			}
		})
	}
	stop := func() bool { return done.Load() == writers }
	wg.Go(func() { // reader of writer 0's acknowledged keys
		for !stop() {
			for i := range int(written.Load()) {
				v, err := s.Get(fmt.Appendf(nil, "r/%06d", i))
				if err != nil || !bytes.Equal(v, releaseValue(i)) {
					t.Errorf("get r/%06d while releasing: %d bytes, %v", i, len(v), err)
					return
				}
			}
		}
	})
	wg.Go(func() { // explicit releases besides the 1ms loop
		for !stop() {
			if err := s.Release(); err != nil {
				t.Errorf("release: %v", err)
				return
			}
		}
	})
	wg.Go(func() { // overwrites make garbage for the GC to rewrite
		for i := 0; !stop(); i = (i + 1) % 200 {
			k := fmt.Appendf(nil, "g/%04d", i)
			if err := s.Write(context.Background(), store.Set(k, releaseValue(i))); err != nil {
				t.Errorf("write %s: %v", k, err)
				return
			}
			if i == 0 {
				if err := s.RunGC(context.Background()); err != nil {
					t.Errorf("gc: %v", err)
					return
				}
			}
		}
	})
	wg.Wait()
	st := s.Stats()
	t.Logf("%d releases (%d MiB advised), %d gc rewrites", st.Releases, st.ReleasedBytes>>20, st.GCRewrites)
	if st.ReleaseErrors != 0 {
		t.Errorf("%d release errors", st.ReleaseErrors)
	}
	checkRelease(t, s, writers*perWriter)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	checkRelease(t, openStore(t, opts), writers*perWriter)
}

func TestReleaseInMemory(t *testing.T) {
	t.Parallel()
	s := openStore(t, store.Options{InMemory: true})
	mustWrite(t, s, store.Set([]byte("k"), releaseValue(1)))
	if err := s.Release(); err != nil {
		t.Fatal(err)
	}
	if st := s.Stats(); st.Releases != 0 {
		t.Errorf("in memory: %d releases", st.Releases)
	}
}

func checkRelease(t *testing.T, s *store.Store, n int) {
	t.Helper()
	for i := range n {
		v, err := s.Get(fmt.Appendf(nil, "r/%06d", i))
		if err != nil || !bytes.Equal(v, releaseValue(i)) {
			t.Fatalf("r/%06d: %d bytes, %v", i, len(v), err)
		}
	}
}

// mappedRSS sums the resident pages of the mappings of dir's files.
func mappedRSS(t *testing.T, dir string) int64 {
	t.Helper()
	return store.SmapsBytes(t, dir, "Rss:")
}
