package tunnel_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/sidehook/sidehook/relay/tunnel"
)

// TestRunLeavesNoConnection: once Run has returned, the client holds no
// connection to the local app, which outlives it (the app's keep-alive
// connection would otherwise hold two goroutines here, and one in the
// app, until the transport's idle timeout).
func TestRunLeavesNoConnection(t *testing.T) {
	fr := newFakeRelay(t, fastServer())
	a := newApp(t)
	before := goleak.IgnoreCurrent()
	rc := startClient(t, clientConfig(fr.URL, a.URL))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := fr.send(ctx, "/", "payment", []byte("{}")); err != nil {
		t.Fatalf("Send: %v", err)
	}
	rc.stop(t)
	if err := goleak.Find(before); err != nil {
		t.Errorf("after Run returned: got goroutines left, want none:\n%v", err)
	}
}

// TestCloseWaitsForOnConnect: Close waits, up to ctx, for the onConnect
// calls it started, as for the handlers: the relay reads its store there,
// and closes the store after the tunnel server.
func TestCloseWaitsForOnConnect(t *testing.T) {
	s := tunnel.NewServer(fastServer())
	entered, release := make(chan struct{}), make(chan struct{})
	var returned atomic.Bool
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.Serve(w, r, testOrg, r.URL.Query().Get("name"), func([]string) {
			close(entered)
			<-release
			returned.Store(true)
		})
	}))
	t.Cleanup(hs.Close)
	runClient(t, clientConfig(hs.URL, newApp(t).URL))
	select {
	case <-entered:
	case <-time.After(10 * time.Second):
		t.Fatal("timed out waiting for onConnect")
	}

	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := s.Close(ctx); err == nil {
		t.Errorf("Close while onConnect runs: got nil, want ctx's error (it waits for onConnect until ctx is done)")
	}
	close(release)
	if err := s.Close(context.Background()); err != nil {
		t.Errorf("Close once onConnect may return: got %v, want nil", err)
	}
	if !returned.Load() {
		t.Errorf("Close returned before onConnect did")
	}
}
