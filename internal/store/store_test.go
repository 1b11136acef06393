package store_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/sidehook/sidehook/internal/store"
)

// openStore opens a store that the test closes at cleanup.
func openStore(tb testing.TB, opts store.Options) *store.Store {
	tb.Helper()
	if !opts.InMemory && opts.Dir == "" {
		opts.Dir = tb.TempDir()
	}
	if opts.Reserve == 0 {
		// The machine's disk may be fuller than the production default.
		opts.Reserve = -1
	}
	s, err := store.Open(opts)
	// A reopen may find Badger's directory lock still held though Close
	// released it: a parallel test that starts a child process (exec)
	// forks a copy of every descriptor, the lock's included, and the copy
	// holds the lock until the child's exec closes it, which on a loaded
	// machine can take a while. A lock never released still fails here.
	for deadline := time.Now().Add(10 * time.Second); errors.Is(err, store.ErrLocked) && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
		s, err = store.Open(opts)
	}
	if err != nil {
		tb.Fatalf("open: %v", err)
	}
	tb.Cleanup(func() {
		if err := s.Close(); err != nil {
			tb.Errorf("close: %v", err)
		}
	})
	return s
}

func mustWrite(tb testing.TB, s *store.Store, ops ...store.Op) {
	tb.Helper()
	if err := s.Write(context.Background(), ops...); err != nil {
		tb.Fatalf("write: %v", err)
	}
}

// scanKeys returns the keys a scan visits, and checks each value.
func scanKeys(tb testing.TB, s *store.Store, opts store.ScanOptions) []string {
	tb.Helper()
	var keys []string
	err := s.Scan(context.Background(), opts, func(k, v []byte) error {
		if opts.KeysOnly {
			if v != nil {
				tb.Errorf("KeysOnly: got value %q for %q, want nil", v, k)
			}
		} else if want := "v:" + string(k); string(v) != want {
			tb.Errorf("value of %q: got %q, want %q", k, v, want)
		}
		keys = append(keys, string(k))
		return nil
	})
	if err != nil {
		tb.Fatalf("scan: %v", err)
	}
	return keys
}

func TestScan(t *testing.T) {
	t.Parallel()
	s := openStore(t, store.Options{InMemory: true})
	all := []string{"a", "a/1", "a/2", "a/3", "a/4", "a/5", "a0", "b/1", "b/2", "c", "\xff\xff/1", "\xff\xff/2"}
	var ops []store.Op
	for _, k := range all {
		ops = append(ops, store.Set([]byte(k), []byte("v:"+k)))
	}
	mustWrite(t, s, ops...)

	tests := []struct {
		name string
		opts store.ScanOptions
		want []string
	}{
		{"All", store.ScanOptions{}, all},
		{"AllReverse", store.ScanOptions{Reverse: true}, reversed(all)},
		{"Prefix", store.ScanOptions{Prefix: []byte("a/")}, []string{"a/1", "a/2", "a/3", "a/4", "a/5"}},
		// "a0" is the first key after the prefix: reverse seeks land on it.
		{"PrefixReverse", store.ScanOptions{Prefix: []byte("a/"), Reverse: true}, []string{"a/5", "a/4", "a/3", "a/2", "a/1"}},
		{"PrefixNoMatch", store.ScanOptions{Prefix: []byte("x")}, nil},
		{"PrefixNoMatchReverse", store.ScanOptions{Prefix: []byte("x"), Reverse: true}, nil},
		{"PrefixAllFF", store.ScanOptions{Prefix: []byte("\xff\xff")}, []string{"\xff\xff/1", "\xff\xff/2"}},
		{"PrefixAllFFReverse", store.ScanOptions{Prefix: []byte("\xff\xff"), Reverse: true}, []string{"\xff\xff/2", "\xff\xff/1"}},
		{"After", store.ScanOptions{Prefix: []byte("a/"), After: []byte("a/2")}, []string{"a/3", "a/4", "a/5"}},
		{"AfterReverse", store.ScanOptions{Prefix: []byte("a/"), After: []byte("a/4"), Reverse: true}, []string{"a/3", "a/2", "a/1"}},
		{"AfterMissingKey", store.ScanOptions{Prefix: []byte("a/"), After: []byte("a/25")}, []string{"a/3", "a/4", "a/5"}},
		{"AfterMissingKeyReverse", store.ScanOptions{Prefix: []byte("a/"), After: []byte("a/25"), Reverse: true}, []string{"a/2", "a/1"}},
		{"AfterBeforePrefix", store.ScanOptions{Prefix: []byte("a/"), After: []byte("0")}, []string{"a/1", "a/2", "a/3", "a/4", "a/5"}},
		{"AfterBeforePrefixReverse", store.ScanOptions{Prefix: []byte("a/"), After: []byte("0"), Reverse: true}, nil},
		{"AfterBeyondPrefix", store.ScanOptions{Prefix: []byte("a/"), After: []byte("z")}, nil},
		{"AfterBeyondPrefixReverse", store.ScanOptions{Prefix: []byte("a/"), After: []byte("z"), Reverse: true}, []string{"a/5", "a/4", "a/3", "a/2", "a/1"}},
		{"AfterLast", store.ScanOptions{Prefix: []byte("a/"), After: []byte("a/5")}, nil},
		{"AfterFirstReverse", store.ScanOptions{Prefix: []byte("a/"), After: []byte("a/1"), Reverse: true}, nil},
		{"AfterNoPrefix", store.ScanOptions{After: []byte("b/2")}, []string{"c", "\xff\xff/1", "\xff\xff/2"}},
		{"AfterNoPrefixReverse", store.ScanOptions{After: []byte("a/1"), Reverse: true}, []string{"a"}},
		{"Limit", store.ScanOptions{Prefix: []byte("a/"), Limit: 2}, []string{"a/1", "a/2"}},
		{"LimitReverse", store.ScanOptions{Prefix: []byte("a/"), Limit: 2, Reverse: true}, []string{"a/5", "a/4"}},
		{"LimitAfter", store.ScanOptions{Prefix: []byte("a/"), Limit: 2, After: []byte("a/2")}, []string{"a/3", "a/4"}},
		{"LimitAboveCount", store.ScanOptions{Prefix: []byte("b/"), Limit: 10}, []string{"b/1", "b/2"}},
		{"KeysOnly", store.ScanOptions{Prefix: []byte("b/"), KeysOnly: true}, []string{"b/1", "b/2"}},
		{"KeysOnlyReverseLimit", store.ScanOptions{Prefix: []byte("a/"), KeysOnly: true, Reverse: true, Limit: 1}, []string{"a/5"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := scanKeys(t, s, tt.opts)
			if !equal(got, tt.want) {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

// TestScanPaging walks a prefix page by page with the After cursor, the way
// the APIs list newest-first.
func TestScanPaging(t *testing.T) {
	t.Parallel()
	s := openStore(t, store.Options{InMemory: true})
	var want []string
	for i := range 25 {
		k := fmt.Sprintf("p/%03d", i)
		want = append(want, k)
		mustWrite(t, s, store.Set([]byte(k), []byte("v:"+k)))
	}
	for _, reverse := range []bool{false, true} {
		var got []string
		var after []byte
		for {
			page := scanKeys(t, s, store.ScanOptions{Prefix: []byte("p/"), Reverse: reverse, After: after, Limit: 7})
			got = append(got, page...)
			if len(page) < 7 {
				break
			}
			after = []byte(page[len(page)-1])
		}
		w := want
		if reverse {
			w = reversed(want)
		}
		if !equal(got, w) {
			t.Errorf("reverse=%v: got %q, want %q", reverse, got, w)
		}
	}
}

func TestScanStop(t *testing.T) {
	t.Parallel()
	s := openStore(t, store.Options{InMemory: true})
	mustWrite(t, s, store.Set([]byte("k1"), nil), store.Set([]byte("k2"), nil), store.Set([]byte("k3"), nil))

	t.Run("ErrStop", func(t *testing.T) {
		n := 0
		err := s.Scan(context.Background(), store.ScanOptions{}, func(k, v []byte) error {
			n++
			return store.ErrStop
		})
		if err != nil || n != 1 {
			t.Errorf("got n=%d err=%v, want n=1 err=nil", n, err)
		}
	})
	t.Run("CallbackError", func(t *testing.T) {
		boom := errors.New("boom")
		err := s.Scan(context.Background(), store.ScanOptions{}, func(k, v []byte) error { return boom })
		if !errors.Is(err, boom) {
			t.Errorf("got %v, want %v", err, boom)
		}
	})
	t.Run("Canceled", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		n := 0
		err := s.Scan(ctx, store.ScanOptions{}, func(k, v []byte) error {
			n++
			cancel()
			return nil
		})
		if !errors.Is(err, context.Canceled) || n != 1 {
			t.Errorf("got n=%d err=%v, want n=1 err=%v", n, err, context.Canceled)
		}
	})
	t.Run("NegativeLimit", func(t *testing.T) {
		err := s.Scan(context.Background(), store.ScanOptions{Limit: -1}, func(k, v []byte) error { return nil })
		if err == nil {
			t.Error("got nil, want an error")
		}
	})
}

// TestSnapshot: a snapshot sees the store as it was when taken, however
// long it is read, and holds Close until it is closed.
func TestSnapshot(t *testing.T) {
	t.Parallel()
	s, err := store.Open(store.Options{Dir: t.TempDir(), Reserve: -1})
	if err != nil {
		t.Fatal(err)
	}
	mustWrite(t, s, store.Set([]byte("k1"), []byte("v:k1")))
	sn, err := s.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	mustWrite(t, s, store.Set([]byte("k2"), []byte("v:k2")), store.Delete([]byte("k1")))
	var keys []string
	err = sn.Scan(context.Background(), store.ScanOptions{}, func(k, v []byte) error {
		keys = append(keys, string(k)+"="+string(v))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"k1=v:k1"}; !slices.Equal(keys, want) {
		t.Errorf("the snapshot: got %v, want %v", keys, want)
	}
	if got := scanKeys(t, s, store.ScanOptions{}); !slices.Equal(got, []string{"k2"}) {
		t.Errorf("the store: got %v, want [k2]", got)
	}

	closed := make(chan error, 1)
	go func() { closed <- s.Close() }()
	select {
	case err := <-closed:
		t.Fatalf("Close returned (%v) with a snapshot open", err)
	case <-time.After(50 * time.Millisecond):
	}
	sn.Close()
	sn.Close() // a second Close does nothing
	if err := <-closed; err != nil {
		t.Fatalf("Close: %v", err)
	}
	if _, err := s.Snapshot(); !errors.Is(err, store.ErrClosed) {
		t.Errorf("Snapshot of a closed store: got %v, want ErrClosed", err)
	}
}

func TestGet(t *testing.T) {
	t.Parallel()
	s := openStore(t, store.Options{})
	mustWrite(t, s, store.Set([]byte("small"), []byte("v")), store.Set([]byte("big"), bytes.Repeat([]byte("x"), 4096)))

	t.Run("OK", func(t *testing.T) {
		for k, want := range map[string]int{"small": 1, "big": 4096} {
			v, err := s.Get([]byte(k))
			if err != nil || len(v) != want {
				t.Errorf("%s: got %d bytes, %v; want %d bytes", k, len(v), err, want)
			}
		}
	})
	t.Run("Copy", func(t *testing.T) {
		v, _ := s.Get([]byte("big"))
		v[0] = 'y'
		if v2, _ := s.Get([]byte("big")); v2[0] != 'x' {
			t.Error("Get returned a shared buffer")
		}
	})
	t.Run("ErrNotFound", func(t *testing.T) {
		if _, err := s.Get([]byte("missing")); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("got %v, want %v", err, store.ErrNotFound)
		}
	})
	t.Run("Deleted", func(t *testing.T) {
		mustWrite(t, s, store.Set([]byte("gone"), []byte("v")))
		mustWrite(t, s, store.Delete([]byte("gone")))
		if _, err := s.Get([]byte("gone")); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("got %v, want %v", err, store.ErrNotFound)
		}
	})
	t.Run("EmptyKey", func(t *testing.T) {
		if _, err := s.Get(nil); err == nil {
			t.Error("got nil, want an error")
		}
	})
}

func TestWriteInvalid(t *testing.T) {
	t.Parallel()
	s := openStore(t, store.Options{InMemory: true})
	tests := []struct {
		name string
		op   store.Op
	}{
		{"EmptyKey", store.Set(nil, []byte("v"))},
		{"KeyTooLong", store.Set(bytes.Repeat([]byte("k"), 65001), nil)},
		{"ReservedPrefix", store.Set([]byte("!badger!head"), nil)},
		{"NegativeTTL", store.SetTTL([]byte("k"), nil, -time.Second)},
		{"DeleteWithValue", store.Op{Key: []byte("k"), Value: []byte("v"), Delete: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// The valid op must not be applied: a Write is all or nothing.
			err := s.Write(context.Background(), store.Set([]byte("valid"), nil), tt.op)
			if err == nil {
				t.Fatal("got nil, want an error")
			}
			if _, err := s.Get([]byte("valid")); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("valid op of a failed write: got %v, want %v", err, store.ErrNotFound)
			}
		})
	}
	if err := s.Write(context.Background()); err != nil {
		t.Errorf("empty write: got %v, want nil", err)
	}
}

func TestTTL(t *testing.T) {
	t.Parallel()
	s := openStore(t, store.Options{})
	mustWrite(t, s,
		// Expiry is kept in whole seconds: 2 s leaves the key at least a
		// second of life, 1 s could end it at once.
		store.SetTTL([]byte("t/short"), []byte("v:t/short"), 2*time.Second),
		store.SetTTL([]byte("t/long"), []byte("v:t/long"), time.Hour),
		store.Set([]byte("t/forever"), []byte("v:t/forever")),
	)
	if v, err := s.Get([]byte("t/short")); err != nil || string(v) != "v:t/short" {
		t.Fatalf("before expiry: got %q, %v; want %q", v, err, "v:t/short")
	}
	deadline := time.Now().Add(6 * time.Second)
	for {
		_, err := s.Get([]byte("t/short"))
		if errors.Is(err, store.ErrNotFound) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("t/short still visible after its TTL: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if got, want := scanKeys(t, s, store.ScanOptions{Prefix: []byte("t/")}), []string{"t/forever", "t/long"}; !equal(got, want) {
		t.Errorf("scan: got %q, want %q", got, want)
	}
	if got, want := scanKeys(t, s, store.ScanOptions{Prefix: []byte("t/"), Reverse: true, KeysOnly: true}), []string{"t/long", "t/forever"}; !equal(got, want) {
		t.Errorf("reverse scan: got %q, want %q", got, want)
	}
}

func TestDeletePrefix(t *testing.T) {
	t.Parallel()
	s := openStore(t, store.Options{})
	// More keys than one delete chunk.
	const n = 2500
	ops := make([]store.Op, 0, n)
	for i := range n {
		ops = append(ops, store.Set(fmt.Appendf(nil, "d/%05d", i), []byte("v")))
	}
	mustWrite(t, s, ops...)
	mustWrite(t, s, store.Set([]byte("d"), []byte("v:d")), store.Set([]byte("d0"), []byte("v:d0")), store.Set([]byte("c/1"), []byte("v:c/1")))

	if err := s.DeletePrefix(context.Background(), []byte("d/")); err != nil {
		t.Fatalf("delete prefix: %v", err)
	}
	if got := scanKeys(t, s, store.ScanOptions{Prefix: []byte("d/"), KeysOnly: true}); len(got) != 0 {
		t.Errorf("got %d keys left under the prefix, want 0", len(got))
	}
	if got, want := scanKeys(t, s, store.ScanOptions{}), []string{"c/1", "d", "d0"}; !equal(got, want) {
		t.Errorf("others: got %q, want %q", got, want)
	}
	if err := s.DeletePrefix(context.Background(), []byte("none/")); err != nil {
		t.Errorf("missing prefix: got %v, want nil", err)
	}
	if err := s.DeletePrefix(context.Background(), nil); err == nil {
		t.Error("empty prefix: got nil, want an error")
	}
}

func TestWriteConcurrent(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s, err := store.Open(store.Options{Dir: dir, Reserve: -1})
	if err != nil {
		t.Fatal(err)
	}
	const writers, each = 64, 40
	var wg sync.WaitGroup
	for g := range writers {
		wg.Go(func() {
			for i := range each {
				k := fmt.Appendf(nil, "w/%02d/%03d", g, i)
				// Two ops per write, to check they travel together.
				err := s.Write(context.Background(), store.Set(k, append([]byte("v:"), k...)), store.Set(append(k, "/b"...), bytes.Repeat([]byte{byte(g)}, 1024)))
				if err != nil {
					t.Errorf("write %s: %v", k, err)
					return
				}
			}
		})
	}
	wg.Wait()
	st := s.Stats()
	t.Logf("writes=%d groups=%d txns=%d syncs=%d max group=%d", st.Writes, st.Groups, st.Txns, st.Syncs, st.MaxGroup)
	if st.Writes != writers*each || st.Ops != 2*writers*each {
		t.Errorf("stats: got %d writes, %d ops; want %d, %d", st.Writes, st.Ops, writers*each, 2*writers*each)
	}
	// Batching: 64 writers blocked on fsync must share syncs.
	if st.Syncs >= st.Writes {
		t.Errorf("got %d syncs for %d writes, want fewer syncs than writes", st.Syncs, st.Writes)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = openStore(t, store.Options{Dir: dir})
	for g := range writers {
		for i := range each {
			k := fmt.Appendf(nil, "w/%02d/%03d", g, i)
			if v, err := s.Get(k); err != nil || string(v) != "v:"+string(k) {
				t.Fatalf("after reopen %s: got %q, %v", k, v, err)
			}
			if v, err := s.Get(append(k, "/b"...)); err != nil || len(v) != 1024 || v[0] != byte(g) {
				t.Fatalf("after reopen %s/b: got %d bytes, %v", k, len(v), err)
			}
		}
	}
}

// TestWriteSplitsBigGroups makes groups larger than one Badger transaction:
// they must be split between callers, each caller's ops staying together.
func TestWriteSplitsBigGroups(t *testing.T) {
	t.Parallel()
	// A 1 MiB memtable caps a transaction at about 150 KiB.
	s := openStore(t, store.Options{MemTableSize: 1 << 20})
	const writers, each, opsPer = 16, 5, 200
	var wg sync.WaitGroup
	for g := range writers {
		wg.Go(func() {
			for i := range each {
				ops := make([]store.Op, opsPer)
				for j := range ops {
					// Below the value threshold: the values count in the txn.
					ops[j] = store.Set(fmt.Appendf(nil, "s/%02d/%02d/%03d", g, i, j), bytes.Repeat([]byte("v"), 200))
				}
				if err := s.Write(context.Background(), ops...); err != nil {
					t.Errorf("write: %v", err)
				}
			}
		})
	}
	wg.Wait()
	st := s.Stats()
	t.Logf("groups=%d txns=%d syncs=%d", st.Groups, st.Txns, st.Syncs)
	if st.Txns <= st.Groups {
		t.Errorf("got %d txns in %d groups: no group was split, the test no longer covers it", st.Txns, st.Groups)
	}
	if got := len(scanKeys(t, s, store.ScanOptions{Prefix: []byte("s/"), KeysOnly: true})); got != writers*each*opsPer {
		t.Errorf("got %d keys, want %d", got, writers*each*opsPer)
	}

	t.Run("ErrTooBig", func(t *testing.T) {
		ops := make([]store.Op, 2000)
		for j := range ops {
			ops[j] = store.Set(fmt.Appendf(nil, "big/%04d", j), bytes.Repeat([]byte("v"), 200))
		}
		if err := s.Write(context.Background(), ops...); err == nil {
			t.Fatal("got nil, want an error for a write larger than a transaction")
		}
		if got := scanKeys(t, s, store.ScanOptions{Prefix: []byte("big/"), KeysOnly: true}); len(got) != 0 {
			t.Errorf("got %d keys of the failed write, want 0", len(got))
		}
		mustWrite(t, s, store.Set([]byte("after"), nil))
	})
}

func TestWriteContext(t *testing.T) {
	t.Parallel()
	s := openStore(t, store.Options{})

	t.Run("CanceledBefore", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if err := s.Write(ctx, store.Set([]byte("c/never"), nil)); !errors.Is(err, context.Canceled) {
			t.Fatalf("got %v, want %v", err, context.Canceled)
		}
		if _, err := s.Get([]byte("c/never")); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("got %v, want %v", err, store.ErrNotFound)
		}
	})
	t.Run("CanceledWhileWaiting", func(t *testing.T) {
		// Cancel at assorted moments; every write must be all or nothing.
		const n = 200
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				ctx, cancel := context.WithTimeout(context.Background(), time.Duration(i%20)*50*time.Microsecond)
				defer cancel()
				ops := []store.Op{
					store.Set(fmt.Appendf(nil, "c/%03d/a", i), []byte("v")),
					store.Set(fmt.Appendf(nil, "c/%03d/b", i), bytes.Repeat([]byte("v"), 1024)),
					store.Set(fmt.Appendf(nil, "c/%03d/c", i), []byte("v")),
				}
				err := s.Write(ctx, ops...)
				if err != nil && !errors.Is(err, context.DeadlineExceeded) {
					t.Errorf("got %v, want nil or %v", err, context.DeadlineExceeded)
				}
			})
		}
		wg.Wait()
		// Let the writer finish what was queued by callers that left.
		mustWrite(t, s, store.Set([]byte("c/zz"), nil))
		for i := range n {
			got := len(scanKeys(t, s, store.ScanOptions{Prefix: fmt.Appendf(nil, "c/%03d/", i), KeysOnly: true}))
			if got != 0 && got != 3 {
				t.Errorf("write %d: got %d of 3 ops applied, want 0 or 3", i, got)
			}
		}
	})
}

func TestClose(t *testing.T) {
	t.Parallel()
	s, err := store.Open(store.Options{Dir: t.TempDir(), Reserve: -1})
	if err != nil {
		t.Fatal(err)
	}
	mustWrite(t, s, store.Set([]byte("k"), []byte("v")))
	if err := s.Close(); err != nil {
		t.Fatalf("first close: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second close: %v", err)
	}
	if err := s.Write(context.Background(), store.Set([]byte("k"), nil)); !errors.Is(err, store.ErrClosed) {
		t.Errorf("write: got %v, want %v", err, store.ErrClosed)
	}
	if _, err := s.Get([]byte("k")); !errors.Is(err, store.ErrClosed) {
		t.Errorf("get: got %v, want %v", err, store.ErrClosed)
	}
	if err := s.Scan(context.Background(), store.ScanOptions{}, func(k, v []byte) error { return nil }); !errors.Is(err, store.ErrClosed) {
		t.Errorf("scan: got %v, want %v", err, store.ErrClosed)
	}
	if err := s.DeletePrefix(context.Background(), []byte("k")); !errors.Is(err, store.ErrClosed) {
		t.Errorf("delete prefix: got %v, want %v", err, store.ErrClosed)
	}
	if err := s.RunGC(context.Background()); !errors.Is(err, store.ErrClosed) {
		t.Errorf("gc: got %v, want %v", err, store.ErrClosed)
	}
	_ = s.Stats()
}

// TestCloseWithWaiters closes the store under 32 busy writers: each write
// gets nil (and is then durable) or ErrClosed, and none hangs.
func TestCloseWithWaiters(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s, err := store.Open(store.Options{Dir: dir, Reserve: -1})
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu    sync.Mutex
		acked [][]byte
		wg    sync.WaitGroup
	)
	started := make(chan struct{}, 32)
	for g := range 32 {
		wg.Go(func() {
			for i := 0; ; i++ {
				k := fmt.Appendf(nil, "cw/%02d/%05d", g, i)
				err := s.Write(context.Background(), store.Set(k, []byte("v")))
				if errors.Is(err, store.ErrClosed) {
					return
				}
				if err != nil {
					t.Errorf("got %v, want nil or %v", err, store.ErrClosed)
					return
				}
				mu.Lock()
				acked = append(acked, k)
				mu.Unlock()
				if i == 5 {
					started <- struct{}{}
				}
			}
		})
	}
	for range 32 {
		<-started
	}
	// Close concurrently with a Scan whose callback reads: neither may
	// deadlock the other.
	scanDone := make(chan error, 1)
	go func() {
		scanDone <- s.Scan(context.Background(), store.ScanOptions{KeysOnly: true}, func(k, _ []byte) error {
			_, err := s.Get(k)
			if err != nil && !errors.Is(err, store.ErrClosed) && !errors.Is(err, store.ErrNotFound) {
				return err
			}
			return nil
		})
	}()
	if err := s.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	wg.Wait()
	if err := <-scanDone; err != nil && !errors.Is(err, store.ErrClosed) {
		t.Errorf("scan: %v", err)
	}

	s = openStore(t, store.Options{Dir: dir})
	for _, k := range acked {
		if _, err := s.Get(k); err != nil {
			t.Fatalf("acked %s: %v", k, err)
		}
	}
	t.Logf("%d writes acknowledged before close", len(acked))
}

func TestInMemory(t *testing.T) {
	t.Parallel()
	s := openStore(t, store.Options{InMemory: true})
	var wg sync.WaitGroup
	for g := range 16 {
		wg.Go(func() {
			for i := range 20 {
				if err := s.Write(context.Background(), store.Set(fmt.Appendf(nil, "m/%02d/%02d", g, i), []byte("v"))); err != nil {
					t.Errorf("write: %v", err)
				}
			}
		})
	}
	wg.Wait()
	st := s.Stats()
	if st.Writes != 320 || st.Groups == 0 || st.Syncs != 0 {
		t.Errorf("got writes=%d groups=%d syncs=%d, want 320, >0, 0", st.Writes, st.Groups, st.Syncs)
	}
	if got := len(scanKeys(t, s, store.ScanOptions{Prefix: []byte("m/"), KeysOnly: true})); got != 320 {
		t.Errorf("got %d keys, want 320", got)
	}
	if err := s.RunGC(context.Background()); err != nil {
		t.Errorf("gc: got %v, want nil", err)
	}
}

func TestOpenErrors(t *testing.T) {
	t.Parallel()
	if _, err := store.Open(store.Options{}); err == nil {
		t.Error("no dir: got nil, want an error")
	}
	s := openStore(t, store.Options{})
	// Badger locks its directory: a second open must fail, not corrupt it.
	dir := t.TempDir()
	s1, err := store.Open(store.Options{Dir: dir, Reserve: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer s1.Close()
	if s2, err := store.Open(store.Options{Dir: dir, Reserve: -1}); err == nil {
		s2.Close()
		t.Error("second open of a dir: got nil, want an error")
	} else if !errors.Is(err, store.ErrLocked) {
		t.Errorf("second open of a dir: got %v, want ErrLocked", err)
	}
	_ = s
}

func TestRunGC(t *testing.T) {
	t.Parallel()
	// Small memtables flush often, and compactions tell Badger what is
	// garbage.
	s := openStore(t, store.Options{GCInterval: -1, MemTableSize: 256 << 10, ValueLogFileSize: 1 << 20})
	val := bytes.Repeat([]byte("g"), 1024)
	const keys, rounds = 1000, 20
	// Overwrite every key many times: most of the value log is garbage.
	for round := range rounds {
		for i := 0; i < keys; i += 100 {
			ops := make([]store.Op, 0, 100)
			for j := i; j < i+100; j++ {
				ops = append(ops, store.Set(fmt.Appendf(nil, "g/%04d", j), append(val, byte(round))))
			}
			mustWrite(t, s, ops...)
		}
	}
	before := s.Stats()
	// Compactions run in the background: retry until one has.
	deadline := time.Now().Add(10 * time.Second)
	for s.Stats().GCRewrites == 0 && time.Now().Before(deadline) {
		if err := s.RunGC(context.Background()); err != nil {
			t.Fatalf("gc: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	after := s.Stats()
	t.Logf("gc: %d runs rewrote %d files; vlog %d -> %d bytes", after.GCRuns, after.GCRewrites, before.VLogBytes, after.VLogBytes)
	if after.GCRewrites == 0 {
		t.Error("gc rewrote nothing")
	}
	for i := range keys {
		if v, err := s.Get(fmt.Appendf(nil, "g/%04d", i)); err != nil || v[len(v)-1] != rounds-1 {
			t.Fatalf("after gc g/%04d: got %d bytes, %v", i, len(v), err)
		}
	}
}

func TestBadgerLogs(t *testing.T) {
	t.Parallel()
	var buf syncBuffer
	log := zerolog.New(&buf).Level(zerolog.DebugLevel).With().Str("component", "store").Logger()
	s := openStore(t, store.Options{Logger: log})
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	if !strings.Contains(out, `"engine":"badger"`) || !strings.Contains(out, `"level":"debug"`) {
		t.Errorf("badger's info logs not at debug: %s", out)
	}
	// Each line a JSON object with each key once, as log pipelines want.
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if strings.Count(line, `"component":`) > 1 {
			t.Errorf("a key twice: %s", line)
		}
	}
	if strings.Contains(out, `"level":"info"`) {
		t.Errorf("badger logged at info: %s", out)
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

func reversed(s []string) []string {
	out := make([]string, len(s))
	for i, v := range s {
		out[len(s)-1-i] = v
	}
	return out
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestBackgroundGC(t *testing.T) {
	t.Parallel()
	s := openStore(t, store.Options{GCInterval: 5 * time.Millisecond})
	mustWrite(t, s, store.Set([]byte("k"), bytes.Repeat([]byte("v"), 1024)))
	deadline := time.Now().Add(5 * time.Second)
	for s.Stats().GCRuns < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("got %d background gc runs, want 2", s.Stats().GCRuns)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestInMemoryValues writes values of every size an in-memory store takes,
// some above Badger's on-disk value threshold, and reads them back.
func TestInMemoryValues(t *testing.T) {
	t.Parallel()
	s := openStore(t, store.Options{InMemory: true})
	sizes := []int{0, 300, 1000, 1024, 64 << 10, 256 << 10, store.MaxInMemoryValue}
	for _, n := range sizes {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			k := fmt.Appendf(nil, "v/%d", n)
			val := bytes.Repeat([]byte{byte(n)}, n)
			// With the other ops a relay event write carries.
			mustWrite(t, s, store.Set(k, val), store.Set(append(k, "/index"...), nil), store.SetTTL(append(k, "/ttl"...), []byte("t"), time.Hour))
			got, err := s.Get(k)
			if err != nil || !bytes.Equal(got, val) {
				t.Fatalf("got %d bytes, %v; want %d bytes", len(got), err, n)
			}
		})
	}
	t.Run("ErrValueTooLarge", func(t *testing.T) {
		err := s.Write(context.Background(), store.Set([]byte("v/small"), nil), store.Set([]byte("v/huge"), make([]byte, store.MaxInMemoryValue+1)))
		if !errors.Is(err, store.ErrValueTooLarge) {
			t.Fatalf("got %v, want %v", err, store.ErrValueTooLarge)
		}
		if _, err := s.Get([]byte("v/small")); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("op of a refused write: got %v, want %v", err, store.ErrNotFound)
		}
	})
	t.Run("ErrTxnTooBig", func(t *testing.T) {
		// Three 1 MiB values cannot share one transaction: an error, not a
		// panic, and nothing applied.
		ops := make([]store.Op, 3)
		for i := range ops {
			ops[i] = store.Set(fmt.Appendf(nil, "v/many/%d", i), make([]byte, 1<<20))
		}
		if err := s.Write(context.Background(), ops...); err == nil {
			t.Fatal("got nil, want an error")
		}
		if got := scanKeys(t, s, store.ScanOptions{Prefix: []byte("v/many/"), KeysOnly: true}); len(got) != 0 {
			t.Errorf("got %d keys of the failed write, want 0", len(got))
		}
	})
}

func TestValueTooLargeOnDisk(t *testing.T) {
	t.Parallel()
	s := openStore(t, store.Options{ValueLogFileSize: 1 << 20})
	err := s.Write(context.Background(), store.Set([]byte("huge"), make([]byte, 1<<20+1)))
	if !errors.Is(err, store.ErrValueTooLarge) {
		t.Fatalf("got %v, want %v", err, store.ErrValueTooLarge)
	}
	mustWrite(t, s, store.Set([]byte("max"), make([]byte, 1<<20-100)))
}

// TestReadYourWritesUnderLoad has 16 goroutines write and read back at
// once, with a small memtable so that Badger moves to new memtable logs
// under the writes: every acknowledged write must be readable at once and
// after a reopen.
func TestReadYourWritesUnderLoad(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s, err := store.Open(store.Options{Dir: dir, Reserve: -1, MemTableSize: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	const writers, each = 16, 150
	var wg sync.WaitGroup
	for g := range writers {
		wg.Go(func() {
			for i := range each {
				k := fmt.Appendf(nil, "ry/%02d/%04d", g, i)
				if err := s.Write(context.Background(), store.Set(k, bytes.Repeat(k, 60))); err != nil {
					t.Errorf("write %s: %v", k, err)
					return
				}
				if v, err := s.Get(k); err != nil || !bytes.Equal(v, bytes.Repeat(k, 60)) {
					t.Errorf("read own write %s: got %d bytes, %v", k, len(v), err)
					return
				}
			}
		})
	}
	wg.Wait()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openStore(t, store.Options{Dir: dir})
	if got := len(scanKeys2(t, s, "ry/")); got != writers*each {
		t.Errorf("after reopen: got %d keys, want %d", got, writers*each)
	}
}

// TestDirHoldsBadgerFilesOnly: the data directory, created with its
// parents, holds Badger's own files and the write-ahead log's directory,
// nothing else.
func TestDirHoldsBadgerFilesOnly(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "a", "b", "db")
	s := openStore(t, store.Options{Dir: dir})
	mustWrite(t, s, store.Set([]byte("k"), bytes.Repeat([]byte("v"), 4096)))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	badger := regexp.MustCompile(`^(\d+\.(mem|vlog|sst)|MANIFEST|KEYREGISTRY|DISCARD|LOCK)$`)
	for _, e := range entries {
		if e.Name() == "wal" && e.IsDir() {
			continue
		}
		if !badger.MatchString(e.Name()) {
			t.Errorf("got %s in the data directory, want Badger's files and wal/ only", e.Name())
		}
	}
}

// scanKeys2 lists the keys under prefix, whatever their values.
func scanKeys2(tb testing.TB, s *store.Store, prefix string) []string {
	tb.Helper()
	var keys []string
	err := s.Scan(context.Background(), store.ScanOptions{Prefix: []byte(prefix), KeysOnly: true}, func(k, _ []byte) error {
		keys = append(keys, string(k))
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
	return keys
}

// TestMaxValue: MaxValue is the largest value Write takes, on disk and in
// memory, so a caller can bound what it writes before it opens a store.
func TestMaxValue(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		opts store.Options
		want int64
	}{
		{"Default", store.Options{}, store.DefaultValueLogFileSize},
		{"ValueLogFile", store.Options{ValueLogFileSize: 1 << 20}, 1 << 20},
		{"InMemory", store.Options{InMemory: true, ValueLogFileSize: 1 << 20}, store.MaxInMemoryValue},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := store.MaxValue(tt.opts); got != tt.want {
				t.Fatalf("got %d, want %d", got, tt.want)
			}
		})
	}
	s := openStore(t, store.Options{ValueLogFileSize: 1 << 20})
	mustWrite(t, s, store.Set([]byte("max"), make([]byte, store.MaxValue(store.Options{ValueLogFileSize: 1 << 20}))))
}
