package wal

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func openLog(t *testing.T, dir string, segSize int64) *Log {
	t.Helper()
	l := New(dir, segSize)
	if err := l.Open(); err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() { _ = l.Close() })
	return l
}

func replayAll(t *testing.T, l *Log) []string {
	t.Helper()
	var got []string
	if err := l.Replay(func(p []byte) error {
		got = append(got, string(p))
		return nil
	}); err != nil {
		t.Fatalf("replay: %v", err)
	}
	return got
}

func record(i int) []byte {
	return fmt.Appendf(nil, "record %06d %s", i, bytes.Repeat([]byte("x"), i%300))
}

// retireAll rotates l and trims every segment before the new one (the
// first trimmed becomes the spare); it returns the new one's number.
func retireAll(t *testing.T, l *Log) uint64 {
	t.Helper()
	next, err := l.Rotate()
	if err != nil {
		t.Fatal(err)
	}
	if err := l.TrimBefore(next); err != nil {
		t.Fatal(err)
	}
	return next
}

func segmentFiles(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

func TestAppendReplay(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		segSize int64
		records int
		perCall int
		wantSeg int // segments on disk at the end, at least
	}{
		{name: "one record", segSize: 1 << 20, records: 1, perCall: 1, wantSeg: 1},
		{name: "one segment", segSize: 1 << 20, records: 500, perCall: 7, wantSeg: 1},
		{name: "rotates at the size", segSize: 4096, records: 500, perCall: 3, wantSeg: 10},
		{name: "records larger than a segment", segSize: 16, records: 20, perCall: 1, wantSeg: 20},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			l := openLog(t, dir, tt.segSize)
			if got := replayAll(t, l); len(got) != 0 {
				t.Fatalf("replay of a new log: got %d records, want 0", len(got))
			}
			var want []string
			for i := 0; i < tt.records; i += tt.perCall {
				var batch [][]byte
				for j := i; j < min(i+tt.perCall, tt.records); j++ {
					batch = append(batch, record(j))
					want = append(want, string(record(j)))
				}
				if err := l.Append(batch...); err != nil {
					t.Fatalf("append: %v", err)
				}
				if err := l.Sync(); err != nil {
					t.Fatalf("sync: %v", err)
				}
			}
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			if n := len(segmentFiles(t, dir)); n < tt.wantSeg {
				t.Errorf("got %d segments, want at least %d", n, tt.wantSeg)
			}
			got := replayAll(t, openLog(t, dir, tt.segSize))
			if !slices.Equal(got, want) {
				t.Errorf("replay: got %d records, want %d in order", len(got), len(want))
			}
		})
	}
}

func TestAppendRefusesEmptyRecord(t *testing.T) {
	t.Parallel()
	l := openLog(t, t.TempDir(), 4096)
	if err := l.Append([]byte("ok"), nil); err == nil {
		t.Fatal("append of an empty record: got nil, want an error")
	}
}

// TestTornTail: a record cut short or overwritten is where the log ends;
// Replay truncates it, and the records before it stay.
func TestTornTail(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		damage func(data []byte, lastFrame int) []byte
	}{
		{name: "cut in the payload", damage: func(d []byte, last int) []byte { return d[:last+HeaderSize+3] }},
		{name: "cut in the header", damage: func(d []byte, last int) []byte { return d[:last+5] }},
		{name: "flipped payload byte", damage: func(d []byte, last int) []byte { d[last+HeaderSize+2] ^= 1; return d }},
		{name: "huge length", damage: func(d []byte, last int) []byte { copy(d[last:], []byte{0xff, 0xff, 0xff, 0x7f}); return d }},
		{name: "garbage", damage: func(d []byte, last int) []byte { return append(d[:last], bytes.Repeat([]byte{0xa5}, 100)...) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			l := openLog(t, dir, 1<<20)
			for i := range 10 {
				if err := l.Append(record(i)); err != nil {
					t.Fatal(err)
				}
			}
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(dir, fmt.Sprintf("%016x.wal", 1))
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			last := 0
			for i := range 9 {
				last += HeaderSize + len(record(i))
			}
			if err := os.WriteFile(path, tt.damage(data, last), 0o600); err != nil {
				t.Fatal(err)
			}
			l = openLog(t, dir, 1<<20)
			got := replayAll(t, l)
			if len(got) != 9 || got[8] != string(record(8)) {
				t.Fatalf("replay: got %d records, want the 9 before the damage", len(got))
			}
			fi, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			if fi.Size() != int64(last) {
				t.Errorf("segment size after replay: got %d, want %d (the torn tail truncated)", fi.Size(), last)
			}
			// The log goes on after the tear.
			if err := l.Append([]byte("after")); err != nil {
				t.Fatal(err)
			}
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			got = replayAll(t, openLog(t, dir, 1<<20))
			if len(got) != 10 || got[9] != "after" {
				t.Errorf("replay after appending: got %d records, last %q; want 10, last \"after\"", len(got), got[len(got)-1])
			}
		})
	}
}

// TestTrimRecycles: a checkpoint drops the segments before the rotation,
// keeps one as the spare, and the next segment reuses it without old
// records coming back.
func TestTrimRecycles(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	l := openLog(t, dir, 4096)
	for i := range 100 {
		if err := l.Append(record(i)); err != nil {
			t.Fatal(err)
		}
	}
	next := retireAll(t, l)
	if names := segmentFiles(t, dir); len(names) != 1 || filepath.Ext(names[0]) != spareExt {
		t.Fatalf("after the trim: got %v, want the spare alone", names)
	}
	if got := l.Grows(1, 10); got != 0 {
		t.Errorf("Grows with a spare to recycle: got %d, want 0", got)
	}
	if err := l.Append([]byte("new")); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	want := []string{fmt.Sprintf("%016x.wal", next)}
	if names := segmentFiles(t, dir); !slices.Equal(names, want) {
		t.Fatalf("after an append: got %v, want %v", names, want)
	}
	if got := replayAll(t, openLog(t, dir, 4096)); !slices.Equal(got, []string{"new"}) {
		t.Errorf("replay of the recycled segment: got %d records %.40q, want [new]", len(got), got)
	}
	// Reopened with the spare alone, the log numbers its next segment above
	// the spare's, whose old frames then stay invalid.
	l = openLog(t, dir, 4096)
	replayAll(t, l)
	retireAll(t, l)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l = openLog(t, dir, 4096)
	if got := replayAll(t, l); len(got) != 0 {
		t.Fatalf("replay after trimming all: got %d records, want 0", len(got))
	}
	if err := l.Append([]byte("newer")); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if got := replayAll(t, openLog(t, dir, 4096)); !slices.Equal(got, []string{"newer"}) {
		t.Errorf("replay after recycling across a reopen: got %.40q, want [newer]", got)
	}
}

func TestGrows(t *testing.T) {
	t.Parallel()
	l := openLog(t, t.TempDir(), 4096)
	if got := l.Grows(1, 100); got != 4096 {
		t.Errorf("before the first segment: got %d, want 4096", got)
	}
	if err := l.Append(make([]byte, 100)); err != nil {
		t.Fatal(err)
	}
	if got := l.Grows(1, 100); got != 0 {
		t.Errorf("within the segment: got %d, want 0", got)
	}
	if got := l.Grows(1, 10000); got != 10000+HeaderSize {
		t.Errorf("a record larger than a segment: got %d, want %d", got, 10000+HeaderSize)
	}
}

func TestReplayStopsOnCallbackError(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	l := openLog(t, dir, 4096)
	if err := l.Append([]byte("a"), []byte("b")); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	boom := errors.New("boom")
	n := 0
	err := openLog(t, dir, 4096).Replay(func([]byte) error { n++; return boom })
	if !errors.Is(err, boom) || n != 1 {
		t.Errorf("got %v after %d records, want boom after 1", err, n)
	}
}

// FuzzDecodeFrame: whatever follows a valid frame, decoding never panics,
// returns the valid frame intact, and anything it accepts after it is a
// frame that checks out.
func FuzzDecodeFrame(f *testing.F) {
	f.Add([]byte("hello"), []byte{})
	f.Add([]byte("hello"), []byte{5, 0, 0, 0, 1, 2, 3, 4, 'a'})
	f.Add([]byte("x"), bytes.Repeat([]byte{0xff}, 20))
	f.Fuzz(func(t *testing.T, payload, tail []byte) {
		if len(payload) == 0 {
			return
		}
		data := append(appendFrame(nil, 7, payload), tail...)
		got, n, ok := decodeFrame(data, 7)
		if !ok || !bytes.Equal(got, payload) || n != HeaderSize+len(payload) {
			t.Fatalf("valid frame: got %q, %d, %v; want %q, %d, true", got, n, ok, payload, HeaderSize+len(payload))
		}
		if _, _, ok := decodeFrame(data, 8); ok {
			t.Fatal("a frame of segment 7 checked out in segment 8")
		}
		rest := data[n:]
		if p, m, ok := decodeFrame(rest, 7); ok {
			if m > len(rest) || !bytes.Equal(appendFrame(nil, 7, p), rest[:m]) {
				t.Fatalf("accepted a tail that is not a frame: %x", rest)
			}
		}
	})
}

// TestTrimStopsAtAFailure: a segment that cannot be removed stops the trim
// there, so the segments left run on without a gap; a later trim goes on.
func TestTrimStopsAtAFailure(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	l := openLog(t, dir, 4096)
	for i := 0; len(l.segs) < 4; i++ {
		if err := l.Append(record(i)); err != nil {
			t.Fatal(err)
		}
	}
	next, err := l.Rotate()
	if err != nil {
		t.Fatal(err)
	}
	segs := slices.Clone(l.segs)
	// The first becomes the spare; a non-empty directory in the second's
	// place makes its removal fail.
	stuck := l.path(segs[1])
	if err := os.Remove(stuck); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(stuck, "x"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := l.TrimBefore(next); err == nil {
		t.Fatal("trim with a segment it cannot remove: got no error")
	}
	if !slices.Equal(l.segs, segs[1:]) {
		t.Errorf("segments after the failed trim: got %x, want %x", l.segs, segs[1:])
	}
	for _, n := range segs[2:] {
		if _, err := os.Stat(l.path(n)); err != nil {
			t.Errorf("segment %x after the one that failed: %v", n, err)
		}
	}
	if err := os.RemoveAll(stuck); err != nil {
		t.Fatal(err)
	}
	if err := l.TrimBefore(next); err != nil {
		t.Fatalf("trim once the segment can go: %v", err)
	}
	if len(l.segs) != 0 {
		t.Errorf("segments after the second trim: got %x, want none", l.segs)
	}
}

// TestZeroAhead: Append writes zeros after its records, a chunk ahead and
// no further, within the segment: over a recycled segment's old frames
// too, and beyond the segment's size never, even after a record larger
// than a segment.
func TestZeroAhead(t *testing.T) {
	t.Parallel()
	const segSize = 3 * zeroChunk
	dir := t.TempDir()
	l := openLog(t, dir, segSize)
	old := bytes.Repeat([]byte{0xAB}, 64<<10)
	for l.off+int64(len(old))+HeaderSize <= segSize {
		if err := l.Append(old); err != nil {
			t.Fatal(err)
		}
	}
	retireAll(t, l)
	read := func() []byte {
		t.Helper()
		b, err := os.ReadFile(l.path(l.segs[len(l.segs)-1]))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	zeroUpTo := func(what string, b []byte, from, to int) {
		t.Helper()
		if !bytes.Equal(b[from:to], make([]byte, to-from)) {
			t.Errorf("%s: bytes %d to %d are not all zero", what, from, to)
		}
		if to < len(b) && b[to] == 0 {
			t.Errorf("%s: byte %d, past the chunk, is zero: the old frames should be there", what, to)
		}
	}

	if err := l.Append([]byte("new")); err != nil { // into the recycled segment
		t.Fatal(err)
	}
	end := int(l.off)
	b := read()
	if len(b) != segSize {
		t.Fatalf("recycled segment of %d bytes, want %d", len(b), segSize)
	}
	zeroUpTo("after the first record", b, end, end+zeroChunk)

	// Records up to the zeroed mark write no more zeros; past it, a chunk.
	mark := end + zeroChunk
	for l.off+int64(len(old))+HeaderSize <= int64(mark) {
		if err := l.Append(old); err != nil {
			t.Fatal(err)
		}
	}
	zeroUpTo("up to the mark", read(), int(l.off), mark)
	if err := l.Append(old); err != nil {
		t.Fatal(err)
	}
	end = int(l.off)
	zeroUpTo("past the mark", read(), end, min(end+zeroChunk, segSize))

	// A record larger than a segment: its segment is that large, no more.
	big := bytes.Repeat([]byte{0xCD}, segSize+1)
	if err := l.Append(big); err != nil {
		t.Fatal(err)
	}
	if b := read(); len(b) != HeaderSize+len(big) {
		t.Errorf("the segment of a record larger than a segment: %d bytes, want %d", len(b), HeaderSize+len(big))
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	got := replayAll(t, openLog(t, dir, segSize))
	if len(got) < 3 || got[0] != "new" || got[len(got)-1] != string(big) {
		t.Errorf("replay: %d records, want new, then the 64 KiB ones, then the big one", len(got))
	}
}
