package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// These tests reach inside the store to simulate a crash: skipApply logs
// groups to the WAL without applying them to Badger (as if the process died
// between the fdatasync and the apply, or power failed before Badger's
// files reached the disk), and noCheckpoint makes Close keep the WAL. The
// reopened store can then only have those writes from the WAL replay.

func openInternal(tb testing.TB, opts Options) *Store {
	tb.Helper()
	if opts.MinFreeBytes == 0 {
		opts.MinFreeBytes = -1
	}
	s, err := Open(opts)
	if err != nil {
		tb.Fatalf("open: %v", err)
	}
	tb.Cleanup(func() { _ = s.Close() })
	return s
}

// openUnapplied opens a store in a new directory whose writes reach the WAL
// and never Badger, as if the process died after each group's sync: what
// reopening dir finds comes from the replay alone.
func openUnapplied(tb testing.TB) (s *Store, dir string) {
	tb.Helper()
	dir = tb.TempDir()
	s = openInternal(tb, Options{Dir: dir})
	s.hooks.skipApply.Store(true)
	return s, dir
}

// crash closes s the way a crash would leave it: Badger without the
// skipped groups, the WAL in place.
func crash(tb testing.TB, s *Store) {
	tb.Helper()
	s.hooks.noCheckpoint.Store(true)
	if err := s.Close(); err != nil {
		tb.Fatalf("close: %v", err)
	}
}

func write(tb testing.TB, s *Store, ops ...Op) {
	tb.Helper()
	if err := s.Write(context.Background(), ops...); err != nil {
		tb.Fatalf("write: %v", err)
	}
}

func wantValue(tb testing.TB, s *Store, key, want string) {
	tb.Helper()
	got, err := s.Get([]byte(key))
	if err != nil || string(got) != want {
		tb.Errorf("%s: got %q (%d bytes), %v; want %q (%d bytes)", key, clipped(string(got)), len(got), err, clipped(want), len(want))
	}
}

// clipped keeps a failure message about a megabyte value readable.
func clipped(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}

func wantMissing(tb testing.TB, s *Store, key string) {
	tb.Helper()
	if got, err := s.Get([]byte(key)); !errors.Is(err, ErrNotFound) {
		tb.Errorf("%s: got %q, %v; want %v", key, got, err, ErrNotFound)
	}
}

func TestReplayAfterCrash(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := openInternal(t, Options{Dir: dir})
	write(t, s, Set([]byte("applied"), []byte("a")), Set([]byte("overwritten"), []byte("old")), Set([]byte("deleted"), []byte("d")))
	s.hooks.skipApply.Store(true)
	write(t, s, Set([]byte("overwritten"), []byte("new")), Delete([]byte("deleted")))
	for i := range 50 {
		write(t, s, Set(fmt.Appendf(nil, "logged/%02d", i), bytes.Repeat([]byte{byte(i)}, 1000)))
	}
	if _, err := s.Get([]byte("logged/00")); !errors.Is(err, ErrNotFound) {
		t.Fatalf("skipApply: the write reached Badger (%v): the test proves nothing", err)
	}
	crash(t, s)

	s = openInternal(t, Options{Dir: dir})
	wantValue(t, s, "applied", "a")
	wantValue(t, s, "overwritten", "new")
	wantMissing(t, s, "deleted")
	for i := range 50 {
		wantValue(t, s, fmt.Sprintf("logged/%02d", i), string(bytes.Repeat([]byte{byte(i)}, 1000)))
	}
	// The applied group's record too: replaying it again is harmless.
	if st := s.Stats(); st.Replayed != 52 {
		t.Errorf("got %d records replayed, want 52", st.Replayed)
	}
	// The replayed segment is gone once Badger holds its records durably.
	if segs, _ := listSegments(dir); len(segs) != 1 {
		t.Errorf("got segments %v, want one", segs)
	}
	// A second crash right away replays nothing: the new segment reuses
	// the replayed one, whose old records no longer check out.
	crash(t, s)
	s = openInternal(t, Options{Dir: dir})
	if st := s.Stats(); st.Replayed != 0 {
		t.Errorf("second open: got %d records replayed, want 0", st.Replayed)
	}
	wantValue(t, s, "logged/49", string(bytes.Repeat([]byte{49}, 1000)))
}

// TestReplayDamagedTail damages the last record of the WAL in the ways a
// crash (or a disk) can: the records before it must all come back, and the
// damaged one, never acknowledged, must not.
func TestReplayDamagedTail(t *testing.T) {
	t.Parallel()
	const n = 10
	tests := []struct {
		name   string
		damage func(f *os.File, last, end int64) error
		want   int // records recovered
	}{
		{"TornHeader", func(f *os.File, last, end int64) error { return f.Truncate(last + 5) }, n - 1},
		{"TornPayload", func(f *os.File, last, end int64) error { return f.Truncate(end - 1) }, n - 1},
		{"FlippedByte", func(f *os.File, last, end int64) error {
			_, err := f.WriteAt([]byte{0xAA}, last+walHeaderSize+20)
			return err
		}, n - 1},
		{"BadLength", func(f *os.File, last, end int64) error {
			_, err := f.WriteAt([]byte{0xff, 0xff, 0xff, 0x7f}, last)
			return err
		}, n - 1},
		{"NeverWritten", func(f *os.File, last, end int64) error {
			_, err := f.WriteAt(make([]byte, end-last), last)
			return err
		}, n - 1},
		{"GarbageAfter", func(f *os.File, last, end int64) error {
			_, err := f.WriteAt([]byte("garbage that is no record at all"), end)
			return err
		}, n},
		{"Intact", func(f *os.File, last, end int64) error { return nil }, n},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, dir := openUnapplied(t)
			var offs []int64
			for i := range n {
				write(t, s, Set(fmt.Appendf(nil, "k/%02d", i), fmt.Appendf(nil, "value %d", i)))
				s.wal.mu.Lock()
				offs = append(offs, s.wal.seg.off)
				s.wal.mu.Unlock()
			}
			path := filepath.Join(dir, segmentName(s.wal.seg.num))
			crash(t, s)

			f, err := os.OpenFile(path, os.O_RDWR, 0)
			if err != nil {
				t.Fatal(err)
			}
			err = tt.damage(f, offs[n-2], offs[n-1])
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				t.Fatal(err)
			}

			s = openInternal(t, Options{Dir: dir})
			for i := range n {
				k := fmt.Sprintf("k/%02d", i)
				if i < tt.want {
					wantValue(t, s, k, fmt.Sprintf("value %d", i))
				} else {
					wantMissing(t, s, k)
				}
			}
			// Writes go on, and survive the next crash.
			write(t, s, Set([]byte("after"), []byte("a")))
			crash(t, s)
			s = openInternal(t, Options{Dir: dir})
			wantValue(t, s, "after", "a")
			wantValue(t, s, "k/00", "value 0")
		})
	}
}

// writeSegment writes a segment by hand: one record per element of reqs,
// numbered from seq.
func writeSegment(tb testing.TB, dir string, num uint64, seq uint64, recs ...[]walAbort) *segment {
	tb.Helper()
	sg, err := createSegment(dir, num, 0)
	if err != nil {
		tb.Fatal(err)
	}
	for i, aborts := range recs {
		s := seq + uint64(i)
		batch := []*request{
			newRequest([]Op{Set(fmt.Appendf(nil, "r/%d/0", s), []byte("v"))}),
			newRequest([]Op{Set(fmt.Appendf(nil, "r/%d/1", s), []byte("v"))}),
		}
		if _, err := sg.append(appendRecord(nil, s, aborts, batch, []int{0, 1}, time.Now())); err != nil {
			tb.Fatal(err)
		}
	}
	return sg
}

// TestReplaySegments checks the rules for records missing between
// segments, with segments written by hand.
func TestReplaySegments(t *testing.T) {
	t.Parallel()
	t.Run("AbortedRecordAndRequest", func(t *testing.T) {
		// Segment 1 ends torn in record 3, which the writer gave up on:
		// segment 2 starts at 4 and aborts record 3 and a request of 2.
		dir := t.TempDir()
		sg := writeSegment(t, dir, 1, 1, nil, nil, nil)
		if err := sg.f.Truncate(sg.off - 3); err != nil {
			t.Fatal(err)
		}
		sg.close()
		writeSegment(t, dir, 2, 4, []walAbort{{seq: 3, req: abortAll}, {seq: 2, req: 1}}).close()
		s := openInternal(t, Options{Dir: dir})
		wantValue(t, s, "r/1/0", "v")
		wantValue(t, s, "r/1/1", "v")
		wantValue(t, s, "r/2/0", "v")
		wantMissing(t, s, "r/2/1")
		wantMissing(t, s, "r/3/0")
		wantValue(t, s, "r/4/1", "v")
		write(t, s, Set([]byte("after"), nil))
		crash(t, s)
		s = openInternal(t, Options{Dir: dir})
		wantValue(t, s, "after", "")
		wantValue(t, s, "r/4/0", "v")
	})
	t.Run("LostRecord", func(t *testing.T) {
		// Record 2 is corrupt in a segment that is not the last: records
		// after it exist, so acknowledged writes would be lost.
		dir := t.TempDir()
		sg := writeSegment(t, dir, 1, 1, nil, nil, nil)
		if _, err := sg.f.WriteAt([]byte{0xAA}, sg.off/2); err != nil {
			t.Fatal(err)
		}
		sg.close()
		writeSegment(t, dir, 2, 4, nil).close()
		s, err := Open(Options{Dir: dir, MinFreeBytes: -1})
		if err == nil {
			s.Close()
			t.Fatal("got nil, want an error")
		}
		if !strings.Contains(err.Error(), "lost") {
			t.Errorf("got %v, want an error saying records are lost", err)
		}
		if segs, _ := listSegments(dir); len(segs) != 2 {
			t.Errorf("a failed open changed the wal: got segments %v", segs)
		}
	})
	t.Run("EmptySegments", func(t *testing.T) {
		// A checkpoint can leave a new segment before any record went in.
		dir := t.TempDir()
		writeSegment(t, dir, 1, 1, nil, nil).close()
		writeSegment(t, dir, 2, 0).close()
		writeSegment(t, dir, 3, 3, nil).close()
		s := openInternal(t, Options{Dir: dir})
		for _, k := range []string{"r/1/0", "r/2/1", "r/3/0"} {
			wantValue(t, s, k, "v")
		}
	})
}

// TestReplayTTL replays TTLs as absolute expiries: an entry still alive
// keeps its expiry, an expired one is gone, and does not bring back the
// value it replaced.
func TestReplayTTL(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	base := time.Now()
	s := openInternal(t, Options{Dir: dir, clock: func() time.Time { return base }})
	write(t, s, Set([]byte("t/replaced"), []byte("old")))
	s.hooks.skipApply.Store(true)
	write(t, s,
		SetTTL([]byte("t/replaced"), []byte("short"), time.Hour),
		SetTTL([]byte("t/short"), []byte("short"), time.Hour),
		SetTTL([]byte("t/long"), []byte("long"), 10*time.Hour),
	)
	crash(t, s)

	// Reopen two hours later.
	s = openInternal(t, Options{Dir: dir, clock: func() time.Time { return base.Add(2 * time.Hour) }})
	wantMissing(t, s, "t/replaced")
	wantMissing(t, s, "t/short")
	wantValue(t, s, "t/long", "long")
	err := s.db.View(func(txn *badger.Txn) error {
		item, err := txn.Get([]byte("t/long"))
		if err != nil {
			return err
		}
		if got, want := item.ExpiresAt(), uint64(base.Add(10*time.Hour).Unix()); got != want {
			t.Errorf("expiry: got %d, want %d", got, want)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestReplaySkipsFailedCommit makes Badger's commit fail after the group's
// record is durable: the writers get the error, and the abort record keeps
// the replay from applying what they were told failed.
func TestReplaySkipsFailedCommit(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := openInternal(t, Options{Dir: dir})
	write(t, s, Set([]byte("before"), []byte("b")))
	s.hooks.failCommit.Store(true)
	if err := s.Write(context.Background(), Set([]byte("failed"), []byte("f"))); err == nil {
		t.Fatal("got nil, want the injected error")
	}
	s.hooks.failCommit.Store(false)
	wantMissing(t, s, "failed")
	s.hooks.skipApply.Store(true)
	write(t, s, Set([]byte("logged"), []byte("l")))
	crash(t, s)

	s = openInternal(t, Options{Dir: dir})
	wantValue(t, s, "before", "b")
	wantMissing(t, s, "failed")
	wantValue(t, s, "logged", "l")
}

// TestCheckpointCrash crashes right after checkpoints under load, with the
// segment size small enough that a retired segment and the active one
// coexist: the replay of whatever is left must give every write back.
func TestCheckpointCrash(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := openInternal(t, Options{Dir: dir, walSegmentBytes: 16 << 10, MemTableSize: 1 << 20})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range 2000 {
			write(t, s, Set(fmt.Appendf(nil, "c/%04d", i), bytes.Repeat([]byte("c"), 200)))
		}
	}()
	for range 20 {
		if err := s.checkpoint(); err != nil {
			t.Errorf("checkpoint: %v", err)
		}
	}
	<-done
	s.hooks.skipApply.Store(true)
	write(t, s, Set([]byte("c/last"), []byte("l")))
	if st := s.Stats(); st.Checkpoints < 10 {
		t.Errorf("got %d checkpoints, want at least 10", st.Checkpoints)
	}
	crash(t, s)
	s = openInternal(t, Options{Dir: dir})
	for i := range 2000 {
		if _, err := s.Get(fmt.Appendf(nil, "c/%04d", i)); err != nil {
			t.Fatalf("c/%04d: %v", i, err)
		}
	}
	wantValue(t, s, "c/last", "l")
}

// TestChunkedValues checks the in-memory chunks of large values: overwrite,
// delete, TTL and scans must never show or leave stale chunks.
func TestChunkedValues(t *testing.T) {
	t.Parallel()
	s := openInternal(t, Options{InMemory: true})
	big := func(n int, b byte) []byte { return bytes.Repeat([]byte{b}, n) }
	chunkKeys := func() int {
		n := 0
		err := s.db.View(func(txn *badger.Txn) error {
			it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(chunkPrefix)})
			defer it.Close()
			for it.Rewind(); it.Valid(); it.Next() {
				n++
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	write(t, s, Set([]byte("c/a"), big(MaxInMemoryValue, 'a')), Set([]byte("c/b"), big(300<<10, 'b')))
	if got := chunkKeys(); got != 8+2 {
		t.Fatalf("got %d chunks, want 10", got)
	}
	var scanned []int
	err := s.Scan(context.Background(), ScanOptions{}, func(k, v []byte) error {
		scanned = append(scanned, len(v))
		return nil
	})
	if err != nil || len(scanned) != 2 || scanned[0] != MaxInMemoryValue || scanned[1] != 300<<10 {
		t.Fatalf("scan: got value sizes %v, %v; want [%d %d] and no chunk keys", scanned, err, MaxInMemoryValue, 300<<10)
	}
	write(t, s, Set([]byte("c/a"), big(600<<10, 'A')))
	if got := chunkKeys(); got != 3+2 {
		t.Errorf("after shrinking: got %d chunks, want 5", got)
	}
	wantValue(t, s, "c/a", string(big(600<<10, 'A')))
	write(t, s, Set([]byte("c/a"), []byte("small")), Delete([]byte("c/b")))
	if got := chunkKeys(); got != 0 {
		t.Errorf("after overwrite and delete: got %d chunks, want 0", got)
	}
	wantValue(t, s, "c/a", "small")
	wantMissing(t, s, "c/b")

	// Expiry is kept in whole seconds: a TTL of a second can be over in a
	// few milliseconds, and this is about chunks, not expiry.
	write(t, s, SetTTL([]byte("c/ttl"), big(1<<20, 't'), time.Hour))
	wantValue(t, s, "c/ttl", string(big(1<<20, 't')))
	if err := s.DeletePrefix(context.Background(), []byte("c/")); err != nil {
		t.Fatal(err)
	}
	if got := chunkKeys(); got != 0 {
		t.Errorf("after delete prefix: got %d chunks, want 0", got)
	}
	if err := s.Write(context.Background(), Set([]byte(chunkPrefix+"x"), nil)); err == nil {
		t.Error("write to the reserved prefix: got nil, want an error")
	}
}

func FuzzDecodeRecord(f *testing.F) {
	batch := []*request{
		newRequest([]Op{Set([]byte("k"), []byte("v")), Delete([]byte("d"))}),
		newRequest([]Op{SetTTL([]byte("t"), []byte("ttl"), time.Hour)}),
	}
	rec := appendRecord(nil, 7, []walAbort{{seq: 3, req: abortAll}}, batch, []int{0, 1}, time.Unix(1e9, 0))
	f.Add(rec[walHeaderSize:])
	f.Add(appendRecord(nil, 1, nil, nil, nil, time.Now())[walHeaderSize:])
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, p []byte) {
		// A damaged record must be an error, never a panic or a huge
		// allocation; what decodes must hold only valid ops.
		r, err := decodeRecord(p)
		if err != nil {
			return
		}
		for _, ops := range r.reqs {
			for _, op := range ops {
				if len(op.key) == 0 || op.kind < opSet || op.kind > opSetExpiring {
					t.Errorf("decoded an invalid op %+v", op)
				}
			}
		}
	})
}

// TestRecordRoundTrip checks that a record decodes to what was logged.
func TestRecordRoundTrip(t *testing.T) {
	t.Parallel()
	now := time.Unix(1_700_000_000, 0)
	batch := []*request{
		newRequest([]Op{Set([]byte("skipped"), []byte("x"))}),
		newRequest([]Op{Set([]byte("k"), []byte("v")), Delete([]byte("d")), Set([]byte("empty"), nil)}),
		newRequest([]Op{SetTTL([]byte("t"), bytes.Repeat([]byte("t"), 300), time.Minute)}),
	}
	aborts := []walAbort{{seq: 3, req: abortAll}, {seq: 4, req: 1}}
	rec := appendRecord(nil, 9, aborts, batch, []int{1, 2}, now)
	r, err := decodeRecord(rec[walHeaderSize:])
	if err != nil {
		t.Fatal(err)
	}
	want := walRecord{seq: 9, aborts: aborts, reqs: [][]walOp{
		{{kind: opSet, key: []byte("k"), value: []byte("v")}, {kind: opDelete, key: []byte("d")}, {kind: opSet, key: []byte("empty"), value: []byte{}}},
		{{kind: opSetExpiring, key: []byte("t"), value: bytes.Repeat([]byte("t"), 300), expiresAt: 1_700_000_060}},
	}}
	if got, want := fmt.Sprintf("%+v", r), fmt.Sprintf("%+v", want); got != want {
		t.Errorf("got %s, want %s", got, want)
	}
}

// TestReplayInBatches replays a WAL in batches of several sizes: every
// record must come back whatever the batch boundaries, a later record
// winning over an earlier one in another batch, and the mapped pages must
// be released between batches.
func TestReplayInBatches(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		batch int64
	}{
		{"record by record", 1},
		{"a few records", 4 << 10},
		{"default", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, dir := openUnapplied(t)
			val := func(i, round int) []byte { return bytes.Repeat([]byte{byte(i), byte(round)}, 500) }
			for round := range 3 {
				for i := range 20 {
					write(t, s, Set(fmt.Appendf(nil, "k/%02d", i), val(i, round)))
				}
			}
			for i := range 5 {
				write(t, s, Delete(fmt.Appendf(nil, "k/%02d", i)))
			}
			crash(t, s)

			s = openInternal(t, Options{Dir: dir, replayBatch: tt.batch})
			st := s.Stats()
			if st.Replayed != 65 {
				t.Errorf("got %d records replayed, want 65", st.Replayed)
			}
			if releaseSupported && tt.batch == 1 && st.Releases < 65 {
				t.Errorf("got %d releases, want one after each of the 65 batches", st.Releases)
			}
			for i := range 5 {
				wantMissing(t, s, fmt.Sprintf("k/%02d", i))
			}
			for i := 5; i < 20; i++ {
				wantValue(t, s, fmt.Sprintf("k/%02d", i), string(val(i, 2)))
			}
		})
	}
}
