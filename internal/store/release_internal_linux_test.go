//go:build linux

package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"
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
