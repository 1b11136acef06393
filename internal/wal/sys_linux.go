package wal

import (
	"errors"
	"os"
	"runtime"

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

// datasyncKeepP is fdatasync as a raw system call, which keeps the
// calling goroutine's P while the kernel writes. Through the scheduler, a
// busy process hands the P away during the call (sysmon takes it back
// every time, and so runs at its fastest), and the writer, back from the
// kernel, waits for a P behind every runnable handler before it can answer
// the group it just made durable. The price is a P idle for the call and a
// stop-the-world that waits for it: Log.Sync uses it only while syncs are
// short, and never with a single P, which would stall the process.
func datasyncKeepP(f *os.File) error {
	if runtime.GOMAXPROCS(0) < 2 {
		return datasync(f)
	}
	for {
		_, _, errno := unix.RawSyscall(unix.SYS_FDATASYNC, f.Fd(), 0, 0)
		switch errno {
		case 0:
			return nil
		case unix.EINTR:
			continue
		}
		return errno
	}
}
