package freshconn_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/sidehook/sidehook/internal/freshconn"
)

// TestShutdownWithSpareConnection: with the tracker, a connection that
// never sent a request does not hold Shutdown; one that did is drained.
func TestShutdownWithSpareConnection(t *testing.T) {
	var fresh freshconn.Tracker
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok")
	}))
	srv.Config.ConnState = fresh.Track
	srv.Start()
	t.Cleanup(srv.Close)

	spare, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { spare.Close() })
	// The accept loop takes connections in order: once a request on a
	// later connection is answered, the spare one is tracked.
	resp, err := srv.Client().Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()

	fresh.CloseAll()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := srv.Config.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown with a spare connection open: %v", err)
	}
	if _, err := spare.Read(make([]byte, 1)); err == nil {
		t.Error("spare connection still open after shutdown")
	}
}
