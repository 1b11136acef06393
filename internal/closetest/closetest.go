// Package closetest checks that a component's Close may be called twice
// and from several goroutines at once (a signal handler and a deferred
// Close, say), as every sidehook component promises. Test-only: the binary
// never links it.
package closetest

import (
	"sync"
	"testing"
)

// Concurrently calls close from four goroutines at once, then once more,
// and wants every call to return nil and, once it has returned, the
// component closed (closed fails the test when it is not). closed runs one
// at a time: a check may reopen what was closed.
func Concurrently(t *testing.T, close func() error, closed func(t *testing.T)) {
	t.Helper()
	var wg sync.WaitGroup
	var checks sync.Mutex
	errs := make(chan error, 5)
	for range 4 {
		wg.Go(func() {
			errs <- close()
			checks.Lock()
			defer checks.Unlock()
			closed(t)
		})
	}
	wg.Wait()
	errs <- close()
	closed(t)
	for range 5 {
		if err := <-errs; err != nil {
			t.Errorf("Close: got %v, want nil", err)
		}
	}
}
