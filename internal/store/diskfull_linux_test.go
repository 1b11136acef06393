//go:build linux

package store_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

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

// smallStore is sized for a tmpfs of a few MiB: its reserve is the floor.
func smallStore(dir string) store.Options {
	o := store.Options{Dir: dir, MemTableSize: 1 << 20, ValueLogFileSize: 1 << 20, GCInterval: -1}
	o.Reserve = store.ReserveFloor(o)
	return o
}

// TestDiskFull fills an 8 MiB tmpfs from 16 writers. Every writer must get
// ErrDiskFull (an ENOSPC) rather than the process dying of SIGBUS under
// Badger's mmapped writes, and Failed says so; after the filesystem grows,
// Failed clears, writes succeed again and every acknowledged write is there.
func TestDiskFull(t *testing.T) {
	t.Parallel()
	mnt := mountTmpfs(t, "8m")
	dir := filepath.Join(mnt, "db")
	s, err := store.Open(smallStore(dir))
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
				if !errors.Is(err, store.ErrDiskFull) || !errors.Is(err, syscall.ENOSPC) || !strings.Contains(err.Error(), "disk full") {
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
	// Failed asked right after a writer's refusal may rightly say nil:
	// another writer's smaller group fitted (the store takes writes), or
	// a checkpoint trimmed the log. A group far larger than what is left
	// is refused, and Failed says so until that much fits.
	var big []store.Op
	for i := range 7 {
		big = append(big, store.Set(fmt.Appendf(nil, "big/%d", i), bytes.Repeat([]byte("b"), 900<<10)))
	}
	if err := s.Write(context.Background(), big...); !errors.Is(err, store.ErrDiskFull) {
		t.Fatalf("a 6 MiB write on the full 8 MiB disk: got %v, want %v", err, store.ErrDiskFull)
	}
	if err := s.Failed(); !errors.Is(err, store.ErrDiskFull) || !strings.Contains(err.Error(), "disk full") {
		t.Errorf("Failed after that refusal: got %v, want %v", err, store.ErrDiskFull)
	}
	if v, err := s.Get(acked[0]); err != nil || !bytes.Equal(v, val) {
		t.Errorf("read on a full disk: got %d bytes, %v", len(v), err)
	}

	// Space returns.
	if err := syscall.Mount("tmpfs", mnt, "tmpfs", syscall.MS_REMOUNT, "size=64m"); err != nil {
		t.Fatalf("grow tmpfs: %v", err)
	}
	if err := s.Failed(); err != nil {
		t.Errorf("Failed once space returned: got %v, want nil", err)
	}
	if err := s.Write(context.Background(), store.Set([]byte("after"), val)); err != nil {
		t.Fatalf("write after space returned: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}

	s2 := openStore(t, smallStore(dir))
	for _, k := range append(acked, []byte("after")) {
		if v, err := s2.Get(k); err != nil || !bytes.Equal(v, val) {
			t.Fatalf("acknowledged %s: got %d bytes, %v", k, len(v), err)
		}
	}
}

const diskFullDirEnv = "SIDEHOOK_STORE_DISKFULL_DIR"

// TestDiskFullCloseAndOpen is a stop and a start on a filesystem another
// process filled to the last byte, where Badger's close (which flushes its
// memtable through a mapping) and open (which writes new log headers the
// same way) died of SIGBUS. A child process (this test binary again)
// writes, fills the filesystem, and closes: it must exit normally, its
// Close saying "disk full". Open on the full filesystem must fail saying
// "disk full"; once space is freed, it opens with every acknowledged write.
func TestDiskFullCloseAndOpen(t *testing.T) {
	if mnt := os.Getenv(diskFullDirEnv); mnt != "" {
		diskFullChild(mnt)
		return
	}
	t.Parallel()
	mnt := mountTmpfs(t, "16m")
	dir := filepath.Join(mnt, "db")

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestDiskFullCloseAndOpen$", "-test.count=1")
	cmd.Env = append(os.Environ(), diskFullDirEnv+"="+mnt)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var acked []string
	var closeErr string
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		line := sc.Text()
		if k, ok := strings.CutPrefix(line, "ack "); ok {
			acked = append(acked, k)
		}
		if e, ok := strings.CutPrefix(line, "close: "); ok {
			closeErr = e
		}
	}
	_, _ = io.Copy(io.Discard, out)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("child on a full disk: %v (it must exit normally)\n%s", err, stderr.String())
	}
	if len(acked) == 0 {
		t.Fatalf("child acknowledged nothing\n%s", stderr.String())
	}
	if !strings.Contains(closeErr, "disk full") {
		t.Errorf("close on a full disk: got %q, want an error saying disk full", closeErr)
	}

	// Start on the full filesystem: an error, not a crash.
	if s, err := store.Open(smallStore(dir)); err == nil {
		s.Close()
		t.Fatal("open on a full disk: got nil, want an error")
	} else if !errors.Is(err, store.ErrDiskFull) || !strings.Contains(err.Error(), "disk full") || strings.Contains(err.Error(), "\n") {
		t.Fatalf("open on a full disk: got %q, want one line saying disk full", err)
	}

	if err := os.Remove(filepath.Join(mnt, "filler")); err != nil {
		t.Fatal(err)
	}
	s := openStore(t, smallStore(dir))
	for _, k := range acked {
		if v, err := s.Get([]byte(k)); err != nil || !bytes.Equal(v, crashValue(k)) {
			t.Fatalf("acknowledged %s after the full disk: got %d bytes, %v", k, len(v), err)
		}
	}
	mustWrite(t, s, store.Set([]byte("after"), []byte("a")))
	t.Logf("%d acknowledged writes survived a close and an open on a full disk", len(acked))
}

// diskFullChild writes, fills mnt to the last byte, checks that writes are
// refused, closes the store and prints what Close said.
func diskFullChild(mnt string) {
	fail := func(f string, v ...any) {
		fmt.Fprintf(os.Stderr, "child: "+f+"\n", v...)
		os.Exit(2)
	}
	s, err := store.Open(smallStore(filepath.Join(mnt, "db")))
	if err != nil {
		fail("open: %v", err)
	}
	for i := range 200 {
		k := fmt.Sprintf("df/%04d", i)
		if err := s.Write(context.Background(), store.Set([]byte(k), crashValue(k))); err != nil {
			fail("write: %v", err)
		}
		fmt.Printf("ack %s\n", k)
	}
	if err := fillUp(filepath.Join(mnt, "filler")); err != nil {
		fail("fill: %v", err)
	}
	if err := s.Write(context.Background(), store.Set([]byte("df/refused"), []byte("x"))); !errors.Is(err, store.ErrDiskFull) {
		fail("write on a full disk: got %v, want %v", err, store.ErrDiskFull)
	}
	if err := s.Failed(); !errors.Is(err, store.ErrDiskFull) {
		fail("Failed on a full disk: got %v, want %v", err, store.ErrDiskFull)
	}
	fmt.Printf("close: %v\n", s.Close())
	os.Exit(0)
}

// fillUp writes path until the filesystem has no byte left.
func fillUp(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	for _, chunk := range []int{1 << 20, 4096, 1} {
		buf := make([]byte, chunk)
		for {
			if _, err := f.Write(buf); errors.Is(err, syscall.ENOSPC) {
				break
			} else if err != nil {
				return err
			}
		}
	}
	return f.Sync()
}
