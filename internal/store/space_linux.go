//go:build linux

package store

import (
	"fmt"
	"os"
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

// preallocate reserves size bytes for f. A filesystem that cannot, or a
// nearly full one, is no error: appends then extend the file.
func preallocate(f *os.File, size int64) {
	_ = unix.Fallocate(int(f.Fd()), 0, 0, size)
}
