//go:build linux

package store_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"

	"github.com/sidehook/sidehook/internal/store"
)

// mountTmpfs mounts a tmpfs of the given size on a fresh directory. Without
// the privilege to mount, the test is skipped, or fails under CI=true.
func mountTmpfs(tb testing.TB, size string) string {
	tb.Helper()
	dir := filepath.Join(tb.TempDir(), "mnt")
	if err := os.Mkdir(dir, 0o700); err != nil {
		tb.Fatal(err)
	}
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size="+size); err != nil {
		if os.Getenv("CI") == "true" {
			tb.Fatalf("mount tmpfs (needs root): %v", err)
		}
		tb.Skipf("mount tmpfs (needs root): %v", err)
	}
	tb.Cleanup(func() {
		if err := syscall.Unmount(dir, syscall.MNT_DETACH); err != nil {
			tb.Errorf("unmount %s: %v", dir, err)
		}
	})
	return dir
}

// TestDiskFull fills an 8 MiB tmpfs from 16 writers. Every writer must get
// ErrDiskFull (an ENOSPC) rather than the process dying of SIGBUS under
// Badger's mmapped writes; after the filesystem grows, writes succeed again
// and every acknowledged write is there.
func TestDiskFull(t *testing.T) {
	t.Parallel()
	mnt := mountTmpfs(t, "8m")
	dir := filepath.Join(mnt, "db")
	opts := store.Options{Dir: dir, MemTableSize: 1 << 20, MinFreeBytes: 2 << 20, GCInterval: -1}
	s, err := store.Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })

	val := bytes.Repeat([]byte("f"), 1024)
	var (
		mu    sync.Mutex
		acked [][]byte
		wg    sync.WaitGroup
	)
	for g := range 16 {
		wg.Go(func() {
			for i := range 10000 {
				k := fmt.Appendf(nil, "full/%02d/%05d", g, i)
				err := s.Write(context.Background(), store.Set(k, val))
				if err == nil {
					mu.Lock()
					acked = append(acked, k)
					mu.Unlock()
					continue
				}
				if !errors.Is(err, store.ErrDiskFull) || !errors.Is(err, syscall.ENOSPC) {
					t.Errorf("got %v, want %v", err, store.ErrDiskFull)
				}
				return
			}
			t.Errorf("writer %d never saw the disk full", g)
		})
	}
	wg.Wait()
	st := s.Stats()
	t.Logf("%d writes acknowledged, %d refused, vlog %d bytes", len(acked), st.DiskFull, st.VLogBytes)
	if st.DiskFull < 16 {
		t.Errorf("got %d writes refused, want at least 16", st.DiskFull)
	}

	// Space returns.
	if err := syscall.Mount("tmpfs", mnt, "tmpfs", syscall.MS_REMOUNT, "size=64m"); err != nil {
		t.Fatalf("grow tmpfs: %v", err)
	}
	if err := s.Write(context.Background(), store.Set([]byte("after"), val)); err != nil {
		t.Fatalf("write after space returned: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}

	s2 := openStore(t, store.Options{Dir: dir, MinFreeBytes: 2 << 20})
	for _, k := range append(acked, []byte("after")) {
		if v, err := s2.Get(k); err != nil || !bytes.Equal(v, val) {
			t.Fatalf("acknowledged %s: got %d bytes, %v", k, len(v), err)
		}
	}
}
