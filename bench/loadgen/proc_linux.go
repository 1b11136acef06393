package loadgen

import "syscall"

// sysProcAttr makes the kernel kill a child when the loadgen dies, even by
// SIGKILL, where no deferred cleanup runs.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
