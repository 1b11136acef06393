//go:build linux

package store

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestSegmentAppendENOSPC fills a small tmpfs with WAL records: the append
// that finds no space must fail with ENOSPC and leave the segment as it
// was, every earlier record readable, and appends must work again once
// space returns.
func TestSegmentAppendENOSPC(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "mnt")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size=1m"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("mount tmpfs (needs root): %v", err)
		}
		t.Skipf("mount tmpfs (needs root): %v", err)
	}
	t.Cleanup(func() { _ = syscall.Unmount(dir, syscall.MNT_DETACH) })

	// No preallocation: appends extend the file, and so can fail.
	sg, err := createSegment(dir, 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer sg.close()
	batch := []*request{newRequest([]Op{Set([]byte("k"), make([]byte, 100<<10))})}
	var written uint64
	for seq := uint64(1); ; seq++ {
		broken, err := sg.append(appendRecord(nil, seq, nil, batch, []int{0}, time.Now()))
		if err == nil {
			written++
			continue
		}
		if !errors.Is(err, syscall.ENOSPC) || broken {
			t.Fatalf("got %v (broken %v), want ENOSPC and a segment cut back", err, broken)
		}
		break
	}
	if fi, err := sg.f.Stat(); err != nil || fi.Size() != sg.off {
		t.Fatalf("after ENOSPC: file size %v (%v), want %d", fi.Size(), err, sg.off)
	}
	var read uint64
	end, err := readSegment(dir, 1, func(walRecord) error { read++; return nil })
	if err != nil || end.damaged || read != written || written == 0 {
		t.Fatalf("read %d of %d records (end %+v, %v)", read, written, end, err)
	}

	// Space returns.
	if err := syscall.Mount("tmpfs", dir, "tmpfs", syscall.MS_REMOUNT, "size=4m"); err != nil {
		t.Fatalf("grow tmpfs: %v", err)
	}
	if _, err := sg.append(appendRecord(nil, written+1, nil, batch, []int{0}, time.Now())); err != nil {
		t.Fatalf("append after space returned: %v", err)
	}
}

// TestFdatasyncKeepP: the raw system call syncs like the scheduled one and
// reports errors the same way.
func TestFdatasyncKeepP(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "sync"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write([]byte("record")); err != nil {
		t.Fatal(err)
	}
	if err := fdatasyncKeepP(f); err != nil {
		t.Fatalf("sync: %v", err)
	}
	f.Close()
	err = fdatasyncKeepP(f)
	if err == nil || !strings.Contains(err.Error(), f.Name()) {
		t.Fatalf("sync of a closed file: got %v, want an error naming it", err)
	}
}
