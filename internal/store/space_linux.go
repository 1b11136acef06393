//go:build linux

package store

import (
	"fmt"
	"os"
	"runtime"
	"syscall"

	"golang.org/x/sys/unix"
)

// freeBytes reports the space available to us on the filesystem holding dir.
func freeBytes(dir string) (free int64, ok bool, err error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0, false, err
	}
	return int64(st.Bavail) * st.Bsize, true, nil
}

func allocated(fi os.FileInfo) int64 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return st.Blocks * 512
	}
	return fi.Size()
}

// fdatasync flushes a file's data, and its metadata only where reading the
// data back needs it (the size, new blocks): what a WAL append needs.
func fdatasync(f *os.File) error {
	for {
		err := unix.Fdatasync(int(f.Fd()))
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return fmt.Errorf("fdatasync %s: %w", f.Name(), err)
		}
		return nil
	}
}

// fdatasyncKeepP is fdatasync without handing the calling goroutine's P to
// the scheduler while the call blocks (a raw system call). Through the
// scheduler, a busy process gives the P away during the call, and the
// writer, back from the kernel, queues behind every runnable request
// handler before it can answer the group it just made durable: that wait,
// paid by every request of every group, was most of the receiver's commit
// latency under load (see docs/BENCHMARKS.md). The price is a P idle for
// the call's duration, and a stop-the-world that waits for it; callers use
// it only while syncs are short, and never with a single P, which would
// stall the whole process.
func fdatasyncKeepP(f *os.File) error {
	if runtime.GOMAXPROCS(0) < 2 {
		return fdatasync(f)
	}
	for {
		_, _, errno := unix.RawSyscall(unix.SYS_FDATASYNC, f.Fd(), 0, 0)
		switch errno {
		case 0:
			return nil
		case unix.EINTR:
			continue
		}
		return fmt.Errorf("fdatasync %s: %w", f.Name(), errno)
	}
}

// preallocate reserves size bytes for f. A filesystem that cannot, or a
// nearly full one, is no error: appends then extend the file.
func preallocate(f *os.File, size int64) {
	_ = unix.Fallocate(int(f.Fd()), 0, 0, size)
}

// writeBackRange writes the range's dirty pages back and waits for them
// (sync_file_range): data only, no metadata, no cache flush. It is not
// a sync; it only leaves less for the next one to write.
func writeBackRange(f *os.File, off, n int64) error {
	for {
		err := unix.SyncFileRange(int(f.Fd()), off, n,
			unix.SYNC_FILE_RANGE_WAIT_BEFORE|unix.SYNC_FILE_RANGE_WRITE|unix.SYNC_FILE_RANGE_WAIT_AFTER)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return fmt.Errorf("sync_file_range %s: %w", f.Name(), err)
		}
		return nil
	}
}
