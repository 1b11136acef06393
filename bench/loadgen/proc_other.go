//go:build !linux

package loadgen

import "syscall"

// sysProcAttr: outside Linux there is no parent-death signal; Group.Close
// is the only cleanup.
func sysProcAttr() *syscall.SysProcAttr { return nil }
