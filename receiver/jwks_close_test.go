package receiver_test

import (
	"context"
	"encoding/base64"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/sidehook/sidehook/internal/auth"
	"github.com/sidehook/sidehook/internal/closetest"
	"github.com/sidehook/sidehook/receiver"
	"github.com/sidehook/sidehook/receiver/memstore"
)

// TestCloseStopsJWKSFetch: the receiver's Close stops a fetch of the
// JWKS (--jwks-url) still in progress, one the request that began it
// gave up waiting for, and waits for it: none of it outlives the
// receiver, however slow the key server.
func TestCloseStopsJWKSFetch(t *testing.T) {
	jwksURL, fetching := closetest.Hanging(t) // the fetch ends only when it gives up
	// In memory: Badger's store starts goroutines of its own as it works,
	// which this count would take for the receiver's.
	before := goleak.IgnoreCurrent()
	srv := start(t, receiver.Config{Store: memstore.New(), Verify: auth.VerifyConfig{JWKS: auth.NewJWKSFetcher(jwksURL, nil, auth.JWKSOptions{})}})

	// A token whose kid sends the receiver to the JWKS.
	seg := func(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
	exp := strconv.FormatInt(time.Now().Add(time.Hour).Unix(), 10)
	token := seg(`{"alg":"RS256","typ":"JWT","kid":"k1"}`) + "." + seg(`{"exp":`+exp+`}`) + "." + seg("sig")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, srv.URL()+"/hook", strings.NewReader(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	client := &http.Client{Transport: &http.Transport{}}
	defer client.CloseIdleConnections()
	errc := make(chan error, 1)
	go func() {
		resp, err := client.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		errc <- err
	}()
	select {
	case <-fetching:
	case err := <-errc:
		t.Fatalf("answered before the key was fetched (%v), want the fetch first", err)
	}
	cancel() // the sender gives up; the fetch goes on for the next token
	<-errc

	if err := srv.Close(context.Background()); err != nil {
		t.Fatalf("Close: got %v, want nil", err)
	}
	if err := goleak.Find(before); err != nil {
		t.Errorf("after Close: got goroutines left, want none:\n%v", err)
	}
}
