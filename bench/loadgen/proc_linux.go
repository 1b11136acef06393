package loadgen

import (
	"os"
	"syscall"
)

// sysProcAttr makes the kernel kill a child when the loadgen dies, even by
// SIGKILL, where no deferred cleanup runs.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}

// preallocate reserves size bytes for f without writing them.
func preallocate(f *os.File, size int64) error {
	return syscall.Fallocate(int(f.Fd()), 0, 0, size)
}

// datasync flushes f's data, not its timestamps.
func datasync(f *os.File) error { return syscall.Fdatasync(int(f.Fd())) }
