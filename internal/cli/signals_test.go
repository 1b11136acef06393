package cli

import (
	"os"
	"os/signal"
	"slices"
	"syscall"
	"testing"
)

// TestStopSignals: a hangup stops gracefully, unless the process was
// started ignoring it (nohup), which it must go on doing.
func TestStopSignals(t *testing.T) {
	if signal.Ignored(syscall.SIGHUP) {
		t.Fatal("the test process ignores SIGHUP already: run it without nohup")
	}
	var hup os.Signal = syscall.SIGHUP
	if !slices.Contains(stopSignals(), hup) {
		t.Errorf("stop signals %v: want SIGHUP among them", stopSignals())
	}
	signal.Ignore(syscall.SIGHUP)
	t.Cleanup(func() { signal.Reset(syscall.SIGHUP) })
	if slices.Contains(stopSignals(), hup) {
		t.Errorf("started under nohup, stop signals %v: want no SIGHUP", stopSignals())
	}
}
