package loadgen

import (
	"os"
	"syscall"
)

// preallocate reserves size bytes for f without writing them.
func preallocate(f *os.File, size int64) error {
	return syscall.Fallocate(int(f.Fd()), 0, 0, size)
}

// datasync flushes f's data, not its timestamps.
func datasync(f *os.File) error { return syscall.Fdatasync(int(f.Fd())) }
