package wal

import (
	"errors"
	"os"

	"golang.org/x/sys/unix"
)

// preallocate reserves size bytes for f (keeping what it holds), so that
// writes within them allocate nothing and a full disk is seen here, as an
// error, rather than at a sync.
func preallocate(f *os.File, size int64) error {
	err := unix.Fallocate(int(f.Fd()), 0, 0, size)
	if errors.Is(err, unix.EOPNOTSUPP) {
		return f.Truncate(size)
	}
	return err
}

func datasync(f *os.File) error { return unix.Fdatasync(int(f.Fd())) }
