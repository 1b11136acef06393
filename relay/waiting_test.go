package relay_test

import (
	"context"
	"fmt"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sidehook/sidehook/relay"
	"github.com/sidehook/sidehook/relay/config"
)

// slowCount is a store whose count of what waits is, like badgerstore's,
// fixed at WaitingSnapshot and read afterwards; the read waits for
// release.
type slowCount struct {
	relay.Store
	release chan struct{}
}

func (s *slowCount) WaitingSnapshot(ctx context.Context) (func(context.Context) (map[relay.EndpointRef]int64, error), error) {
	m, err := s.Store.Waiting(ctx)
	if err != nil {
		return nil, err
	}
	return func(ctx context.Context) (map[relay.EndpointRef]int64, error) {
		select {
		case <-s.release:
			return m, nil
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}, nil
}

// TestStartCountsInTheBackground: a relay serves before its store has
// counted what waits, and the queue depth it reaches counts every waiting
// delivery once: those waiting at the start, those ingested while the
// count ran, less one of the first that was delivered meanwhile.
func TestStartCountsInTheBackground(t *testing.T) {
	var up atomic.Bool
	rcv := newSink(t, nil, func(*http.Request, int) int {
		if up.Load() {
			return 200
		}
		return 500
	})
	cfg := orgConfig(t, config.RawEndpoint{ID: "crm", URL: rcv.URL(), Retry: &config.RawRetry{Schedule: []string{"1h"}}})
	wantDepth := func(r *relay.Relay, want int) {
		t.Helper()
		eventually(t, 10*time.Second, func() error {
			if got := queueDepth(t, r, "crm"); got != want {
				return fmt.Errorf("queue depth: got %d, want %d", got, want)
			}
			return nil
		})
	}
	ingestN := func(r *relay.Relay, n int) []string {
		t.Helper()
		var ids []string
		for range n {
			ans := ingest(t, r, `{"type":"payment"}`, nil)
			ids = append(ids, ans.Deliveries[0].ID)
			waitDelivery(t, r, ans.Deliveries[0].ID, "failed", 5*time.Second)
		}
		return ids
	}

	st := &slowCount{Store: storeFor(t, cfg), release: make(chan struct{})}
	r1 := startRelay(t, cfg, relay.Options{Store: st.Store})
	old := ingestN(r1, 5)
	wantDepth(r1, 5)
	if err := r1.Close(t.Context()); err != nil {
		t.Fatal(err)
	}

	r2 := startRelay(t, cfg, relay.Options{Store: st})
	if !r2.Ready() {
		t.Fatal("the relay is not ready while its store counts")
	}
	ingestN(r2, 3)
	up.Store(true)
	if a := call(t, "POST", r2.URL()+"/v1/deliveries/"+old[0]+"/retry", apiKey, nil, nil); a.Status != 202 && a.Status != 200 {
		t.Fatalf("retry: got %d %s, want 202 or 200", a.Status, a.Body)
	}
	waitDelivery(t, r2, old[0], "delivered", 5*time.Second)
	// Before the count: what arrived since the start, less what ended.
	wantDepth(r2, 2)
	close(st.release)
	wantDepth(r2, 7)
}
