//go:build linux

package store

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestParseMapsLine(t *testing.T) {
	const dir = "/data/db"
	tests := []struct {
		name       string
		line       string
		start, end uintptr
		ok         bool
	}{
		{"SharedFileInDir", "7f0000000000-7f0000400000 rw-s 00000000 fd:01 1234 /data/db/000001.vlog", 0x7f0000000000, 0x7f0000400000, true},
		{"PathWithSpace", "1000-2000 r--s 00000000 fd:01 1 /data/db/a b", 0x1000, 0x2000, true},
		{"Private", "1000-2000 rw-p 00000000 fd:01 1234 /data/db/000001.vlog", 0, 0, false},
		{"OtherDir", "1000-2000 rw-s 00000000 fd:01 1234 /data/other/000001.vlog", 0, 0, false},
		{"Subdir", "1000-2000 rw-s 00000000 fd:01 1234 /data/db/sub/x", 0, 0, false},
		{"Anonymous", "1000-2000 rw-s 00000000 00:00 0", 0, 0, false},
		{"Deleted", "1000-2000 rw-s 00000000 fd:01 1234 /data/db/00001.mem (deleted)", 0, 0, false},
		{"BadRange", "2000-1000 rw-s 00000000 fd:01 1234 /data/db/000001.vlog", 0, 0, false},
		{"NotHex", "zz-1000 rw-s 00000000 fd:01 1234 /data/db/000001.vlog", 0, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start, end, ok := parseMapsLine(tt.line, dir)
			if ok != tt.ok || start != tt.start || end != tt.end {
				t.Errorf("got %#x-%#x %v, want %#x-%#x %v", start, end, ok, tt.start, tt.end, tt.ok)
			}
		})
	}
}

// TestReleaseMappings writes 16 MiB through Badger's value log, whose
// pages stay mapped and resident, and releases them.
func TestReleaseMappings(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := openInternal(t, Options{Dir: dir, GCInterval: -1, noRelease: true})
	val := bytes.Repeat([]byte("r"), 1024)
	var wg sync.WaitGroup
	for g := range 16 {
		wg.Go(func() {
			for i := range 64 {
				ops := make([]Op, 16)
				for j := range ops {
					ops[j] = Set(fmt.Appendf(nil, "r/%02d/%02d/%02d", g, i, j), val)
				}
				if err := s.Write(context.Background(), ops...); err != nil {
					t.Errorf("write: %v", err)
					return
				}
			}
		})
	}
	wg.Wait()
	// Dirty pages are not dropped until written back: the checkpoint that
	// syncs them runs beside the writer and may still be running.
	if err := s.syncBadger(); err != nil {
		t.Fatalf("sync: %v", err)
	}
	before := mappedRss(t, dir)
	if before < 8<<20 {
		t.Fatalf("got %d bytes of the data dir resident, want at least 8 MiB: nothing to release", before)
	}
	if err := releaseMappings(dir); err != nil {
		t.Fatalf("release: %v", err)
	}
	after := mappedRss(t, dir)
	t.Logf("resident mapped pages of the data dir: %d KiB before, %d KiB after", before>>10, after>>10)
	if after > before/4 {
		t.Errorf("got %d bytes resident after the release, want at most a quarter of %d", after, before)
	}
	if v, err := s.Get([]byte("r/00/00/00")); err != nil || !bytes.Equal(v, val) {
		t.Errorf("read after the release: got %d bytes, %v", len(v), err)
	}
}

// mappedRss sums the Rss of the shared mappings of dir's files, from
// /proc/self/smaps.
func mappedRss(tb testing.TB, dir string) int64 {
	tb.Helper()
	abs, err := filepath.EvalSymlinks(dir)
	if err != nil {
		tb.Fatal(err)
	}
	data, err := os.ReadFile("/proc/self/smaps")
	if err != nil {
		tb.Fatal(err)
	}
	var total int64
	inDir := false
	for _, line := range strings.Split(string(data), "\n") {
		if _, _, ok := parseMapsLine(line, abs); ok {
			inDir = true
			continue
		}
		f := strings.Fields(line)
		switch {
		case len(f) >= 5 && !strings.HasSuffix(f[0], ":"):
			inDir = false // a mapping of something else
		case inDir && len(f) >= 2 && f[0] == "Rss:":
			kb, err := strconv.ParseInt(f[1], 10, 64)
			if err != nil {
				tb.Fatalf("smaps: %q: %v", line, err)
			}
			total += kb << 10
		}
	}
	return total
}

// TestReleasePollStopsWhenQuiet: with nothing mapping pages the release
// poll stops (an idle process polled 40 times a second), and a write or a
// read starts it again before it returns. Not parallel: the resident
// memory it watches is the process's, and other tests' stores change it.
func TestReleasePollStopsWhenQuiet(t *testing.T) {
	s := openInternal(t, Options{GCInterval: -1})
	ctx := context.Background()
	quiet := func(what string) {
		t.Helper()
		deadline := time.Now().Add(releaseQuiet + 10*time.Second)
		for !s.releaseIdle.Load() {
			if time.Now().After(deadline) {
				t.Fatalf("%s: the release poll still runs", what)
			}
			time.Sleep(releasePoll)
		}
	}
	quiet("after Open")
	if err := s.Write(ctx, Set([]byte("k"), []byte("v"))); err != nil {
		t.Fatalf("write: %v", err)
	}
	if s.releaseIdle.Load() {
		t.Fatal("the release poll still stopped after a write")
	}
	quiet("after the write")
	if _, err := s.Get([]byte("k")); err != nil {
		t.Fatalf("get: %v", err)
	}
	if s.releaseIdle.Load() {
		t.Fatal("the release poll still stopped after a read")
	}
}
