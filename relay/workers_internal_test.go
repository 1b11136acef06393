package relay

import (
	"sync"
	"testing"
	"time"
)

// waitFor polls cond until it holds or a deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestWorkersReuseIdleGoroutines(t *testing.T) {
	w := newWorkers(time.Minute)
	t.Cleanup(w.stop)

	// Two jobs at once need two workers.
	release := make(chan struct{})
	var wg sync.WaitGroup
	for range 2 {
		wg.Add(1)
		w.run(func() {
			defer wg.Done()
			<-release
		})
	}
	close(release)
	wg.Wait()
	if got := w.started.Load(); got != 2 {
		t.Fatalf("started %d workers for two concurrent jobs, want 2", got)
	}

	// Once they are idle, later jobs run on them.
	waitFor(t, "two idle workers", func() bool { return w.waiting.Load() == 2 })
	for i := range 50 {
		done := make(chan struct{})
		w.run(func() { close(done) })
		<-done
		waitFor(t, "the worker to be idle again", func() bool { return w.waiting.Load() == 2 })
		if got := w.started.Load(); got != 2 {
			t.Fatalf("job %d: %d workers started, want the 2 idle ones reused", i, got)
		}
	}
}

func TestWorkersExit(t *testing.T) {
	t.Run("Idle", func(t *testing.T) {
		w := newWorkers(time.Millisecond)
		t.Cleanup(w.stop)
		done := make(chan struct{})
		w.run(func() { close(done) })
		<-done
		// Idle (waiting) for a millisecond, then gone.
		waitFor(t, "the worker to exit", func() bool { return w.exited.Load() == 1 })
		// A later job gets a new worker.
		done = make(chan struct{})
		w.run(func() { close(done) })
		<-done
		if got := w.started.Load(); got != 2 {
			t.Errorf("started %d workers, want a new one after the idle one left", got)
		}
	})
	t.Run("Stop", func(t *testing.T) {
		w := newWorkers(time.Hour)
		done := make(chan struct{})
		w.run(func() { close(done) })
		<-done
		waitFor(t, "an idle worker", func() bool { return w.waiting.Load() == 1 })
		w.stop()
		waitFor(t, "the worker to exit on stop", func() bool { return w.waiting.Load() == 0 })
		// Stopped workers still run what they are given.
		done = make(chan struct{})
		w.run(func() { close(done) })
		<-done
		w.stop() // twice is safe
	})
}
