package cli

import (
	"context"
	"errors"
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
	t.Cleanup(func() {
		// Reset alone leaves Ignored true for the tests that follow,
		// whose commands would then not stop on SIGHUP; Notify forgets
		// the Ignore, and Stop restores the default.
		ch := make(chan os.Signal, 1)
		signal.Notify(ch, syscall.SIGHUP)
		signal.Stop(ch)
	})
	if slices.Contains(stopSignals(), hup) {
		t.Errorf("started under nohup, stop signals %v: want no SIGHUP", stopSignals())
	}
}

// TestStoppingWithoutSignal: a command whose context is canceled by its
// caller, not a signal, names none.
func TestStoppingWithoutSignal(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if got := stoppedBy(ctx); got != "" {
		t.Errorf("got %q, want no signal", got)
	}
	sigs := make(chan os.Signal, 1)
	ctx, stop := cancelOnSignal(context.Background(), sigs)
	stop()
	if got := stoppedBy(ctx); got != "" || !errors.Is(ctx.Err(), context.Canceled) {
		t.Errorf("stopped by its caller: got signal %q, err %v; want none, canceled", got, ctx.Err())
	}
}
