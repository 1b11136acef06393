// Package closetest checks that a component's Close may be called twice
// and from several goroutines at once (a signal handler and a deferred
// Close, say), as every sidehook component promises, and that a stop is
// not held up by a peer that never answers (Hanging). Test-only: the
// binary never links it.
package closetest

import (
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
)

// Hanging starts a server that never answers: each request waits until
// its client gives up or the test ends. asked receives once a request has
// arrived (it holds one; later arrivals do not block). The server is
// closed when the test ends.
func Hanging(tb testing.TB) (url string, asked <-chan struct{}) {
	tb.Helper()
	arrived := make(chan struct{}, 1)
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case arrived <- struct{}{}:
		default:
		}
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	tb.Cleanup(srv.Close)
	tb.Cleanup(func() { close(release) }) // before srv.Close, which waits for the handlers
	return srv.URL, arrived
}

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
