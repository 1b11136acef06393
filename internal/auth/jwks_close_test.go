package auth_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/sidehook/sidehook/internal/auth"
	"github.com/sidehook/sidehook/internal/closetest"
)

// TestJWKSFetcherClose: Close stops a fetch in progress, one its caller
// gave up waiting for, and waits for it, so none of it outlives Close
// (not even the connection of the client the fetcher made itself); a key
// that needs a fetch after Close is ErrJWKSClosed. Not parallel: it
// counts goroutines.
func TestJWKSFetcherClose(t *testing.T) {
	url, fetching := closetest.Hanging(t) // the fetch ends only when it gives up
	kid := keyPairs()[auth.ES256].KID
	before := goleak.IgnoreCurrent()
	f := auth.NewJWKSFetcher(url, nil, auth.JWKSOptions{})

	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, _, err := f.Key(ctx, kid)
		errc <- err
	}()
	<-fetching
	cancel() // the caller gives up; the fetch goes on for the next one
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("Key, given up: got %v, want context.Canceled", err)
	}
	if err := f.Close(); err != nil {
		t.Fatalf("Close: got %v, want nil", err)
	}
	if err := goleak.Find(before); err != nil {
		t.Errorf("after Close: got goroutines left, want none:\n%v", err)
	}
	if err := f.Close(); err != nil {
		t.Errorf("Close again: got %v, want nil", err)
	}
}

// TestJWKSFetcherCloseKeepsKeys: after Close the keys already fetched
// are still served; one that needs a fetch is ErrJWKSClosed, and nothing
// is fetched.
func TestJWKSFetcherCloseKeepsKeys(t *testing.T) {
	t.Parallel()
	ec := keyPairs()[auth.ES256]
	srv := newJWKSServer(t, ec)
	clk := newClock()
	f := auth.NewJWKSFetcher(srv.URL, srv.Client(), auth.JWKSOptions{TTL: time.Hour, MinRefetch: time.Second, Now: clk.Now})
	if _, _, err := f.Key(context.Background(), ec.KID); err != nil {
		t.Fatalf("Key: got %v, want the key", err)
	}
	f.Close()
	clk.Add(time.Minute) // past MinRefetch: an unknown kid would fetch
	if _, _, err := f.Key(context.Background(), ec.KID); err != nil {
		t.Errorf("Key fetched before Close: got %v, want the key", err)
	}
	if _, _, err := f.Key(context.Background(), "other"); !errors.Is(err, auth.ErrJWKSClosed) {
		t.Errorf("Key needing a fetch after Close: got %v, want ErrJWKSClosed", err)
	}
	if n := srv.hits.Load(); n != 1 {
		t.Errorf("fetches: got %d, want 1", n)
	}
}
