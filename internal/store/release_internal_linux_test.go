//go:build linux

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
	"unsafe"

	"github.com/dgraph-io/badger/v4"
	"golang.org/x/sys/unix"
)

// TestReleaseSkipsValueLogUntilGCDeletion holds a Scan open while the GC
// rewrites a value log file, so that Badger defers deleting (and unmapping)
// that file to the Scan's end: until then a release must leave the value
// log alone, and the GC must not rewrite another file.
func TestReleaseSkipsValueLogUntilGCDeletion(t *testing.T) {
	s := openInternal(t, Options{Dir: t.TempDir(), GCInterval: -1, ReleaseInterval: -1, MemTableSize: 256 << 10, valueLogFileSize: 1 << 20})
	val := bytes.Repeat([]byte("d"), 1024)
	for round := range 20 {
		for i := 0; i < 1000; i += 100 {
			ops := make([]Op, 0, 100)
			for j := i; j < i+100; j++ {
				ops = append(ops, Set(fmt.Appendf(nil, "d/%04d", j), append(val, byte(round))))
			}
			if err := s.Write(context.Background(), ops...); err != nil {
				t.Fatal(err)
			}
		}
	}

	inScan, endScan, scanDone := make(chan struct{}), make(chan struct{}), make(chan error, 1)
	go func() {
		first := true
		scanDone <- s.Scan(context.Background(), ScanOptions{Prefix: []byte("d/")}, func(_, _ []byte) error {
			if first {
				first = false
				close(inScan)
				<-endScan
			}
			return ErrStop
		})
	}()
	<-inScan
	// Compactions run in the background: retry until one has told Badger
	// what is garbage.
	deadline := time.Now().Add(15 * time.Second)
	for s.Stats().GCRewrites == 0 && time.Now().Before(deadline) {
		if err := s.RunGC(context.Background()); err != nil {
			t.Fatalf("gc: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if s.Stats().GCRewrites == 0 {
		close(endScan)
		t.Skip("the gc found nothing to rewrite in time")
	}
	s.vlogMu.Lock()
	pending := !s.vlogDeleted()
	s.vlogMu.Unlock()
	if !pending {
		close(endScan)
		t.Fatal("the rewritten file is gone while a Scan holds an iterator")
	}
	if err := s.gcOnce(); !errors.Is(err, badger.ErrRejected) {
		t.Errorf("gc with a deletion pending: %v, want a rejection", err)
	}
	before := s.Stats().ReleasedBytes
	if err := s.release(); err != nil {
		t.Fatal(err)
	}
	maps, err := dirMappings(s.opts.Dir)
	if err != nil {
		t.Fatal(err)
	}
	var vlog int64
	for _, m := range maps {
		if strings.HasSuffix(m.name, ".vlog") {
			vlog += int64(m.end - m.start)
		}
	}
	if advised := s.Stats().ReleasedBytes - before; vlog > 0 && advised >= vlog {
		t.Errorf("release advised %d bytes with %d of value log mapped: the value log was not skipped", advised, vlog)
	}

	close(endScan)
	if err := <-scanDone; err != nil {
		t.Fatal(err)
	}
	s.vlogMu.Lock()
	deleted := s.vlogDeleted()
	s.vlogMu.Unlock()
	if !deleted {
		t.Error("the rewritten file outlived the last iterator")
	}
	if err := s.RunGC(context.Background()); err != nil {
		t.Errorf("gc after the deletion: %v", err)
	}
}

// TestReleaseTrigger walks the trigger through sequences of resident sizes:
// only growth of releaseGrowth or more since the last reset releases, and
// what stays resident after a release raises the base instead of
// triggering again.
func TestReleaseTrigger(t *testing.T) {
	t.Parallel()
	const g = 10
	type step struct {
		reset    bool // the release ran and measured resident afterwards
		resident int64
		want     bool // due (ignored for a reset)
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{"below the growth", []step{{reset: true, resident: 100}, {resident: 105}, {resident: 109}}},
		{"exactly the growth", []step{{reset: true, resident: 100}, {resident: 110, want: true}}},
		{"shrinking", []step{{reset: true, resident: 100}, {resident: 40}, {resident: 109}}},
		{"unreleased pages raise the base", []step{
			{reset: true, resident: 100}, {resident: 130, want: true},
			{reset: true, resident: 125}, {resident: 130}, {resident: 135, want: true},
		}},
		{"a release that frees everything lowers it", []step{
			{reset: true, resident: 100}, {resident: 130, want: true},
			{reset: true, resident: 20}, {resident: 30, want: true},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			trig := releaseTrigger{growth: g}
			for i, st := range tt.steps {
				if st.reset {
					trig.reset(st.resident)
					continue
				}
				if got := trig.due(st.resident); got != st.want {
					t.Errorf("step %d: due(%d) after base %d = %v, want %v", i, st.resident, trig.base, got, st.want)
				}
			}
		})
	}
}

// TestResidentFileBytes maps a file and touches it: the resident
// file-backed size must grow by at least what was touched, and a release
// of the range must shrink it again.
func TestResidentFileBytes(t *testing.T) {
	const size = 8 << 20
	f, err := os.Create(filepath.Join(t.TempDir(), "000001.vlog"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	data, err := unix.Mmap(int(f.Fd()), 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Munmap(data)
	before, err := residentFileBytes()
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < size; i += os.Getpagesize() {
		data[i] = 1
	}
	touched, err := residentFileBytes()
	if err != nil {
		t.Fatal(err)
	}
	if touched-before < size {
		t.Fatalf("resident file bytes grew by %d after touching %d", touched-before, size)
	}
	m := mapping{start: uintptr(unsafe.Pointer(&data[0])), name: "000001.vlog"}
	m.end = m.start + size
	if err := dontNeed(m); err != nil {
		t.Fatal(err)
	}
	released, err := residentFileBytes()
	if err != nil {
		t.Fatal(err)
	}
	if touched-released < size/2 {
		t.Errorf("resident file bytes %d after the release, %d before: the mapping was not released", released, touched)
	}
}

// TestAdviseTable: a release advises the tables pinned by its iterator and
// those a compaction or flush is writing (newer than the tree), never one
// that left the tree meanwhile or was replaced before it.
func TestAdviseTable(t *testing.T) {
	t.Parallel()
	set := func(ids ...uint64) map[uint64]bool {
		m := make(map[uint64]bool, len(ids))
		for _, id := range ids {
			m[id] = true
		}
		return m
	}
	tests := []struct {
		name          string
		id            uint64
		before, after map[uint64]bool
		want          bool
	}{
		{"pinned", 5, set(4, 5, 6), set(4, 5, 6), true},
		{"compacted away meanwhile", 5, set(4, 5, 6), set(4, 6, 7), false},
		{"joined meanwhile", 7, set(4, 5, 6), set(4, 6, 7), false},
		{"replaced before, still mapped", 3, set(4, 5, 6), set(4, 5, 6), false},
		{"being written", 8, set(4, 5, 6), set(4, 6, 7), true},
		{"empty tree", 1, set(), set(), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			newest := newestTable(tt.before, tt.after)
			if got := adviseTable(tt.id, tt.before, tt.after, newest); got != tt.want {
				t.Errorf("adviseTable(%d, %v, %v, %d) = %v, want %v", tt.id, tt.before, tt.after, newest, got, tt.want)
			}
		})
	}
}

// TestWriteBack: what Badger wrote through its mappings is dirty until
// writeBack, and clean after it.
func TestWriteBack(t *testing.T) {
	dir := t.TempDir()
	s := openInternal(t, Options{Dir: dir, GCInterval: -1, ReleaseInterval: -1})
	val := bytes.Repeat([]byte("w"), 1024)
	for i := 0; i < 2000; i += 100 {
		ops := make([]Op, 0, 100)
		for j := i; j < i+100; j++ {
			ops = append(ops, Set(fmt.Appendf(nil, "w/%05d", j), val))
		}
		if err := s.Write(context.Background(), ops...); err != nil {
			t.Fatal(err)
		}
	}
	before := smapsBytes(t, dir, "Shared_Dirty:", "Private_Dirty:")
	if before < 1<<20 {
		t.Fatalf("%d dirty bytes after writing 2 MB: want them in the mappings", before)
	}
	s.writeBack()
	after := smapsBytes(t, dir, "Shared_Dirty:", "Private_Dirty:")
	t.Logf("dirty bytes in the mappings: %d before, %d after", before, after)
	if after > before/16 {
		t.Errorf("%d of %d dirty bytes left after writeBack", after, before)
	}
}
