package e2e

import (
	"context"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/sidehook/sidehook/relay"
	"github.com/sidehook/sidehook/relay/natsstore"
	"github.com/sidehook/sidehook/relay/natsstore/natstest"
)

// watchStore is a natsstore whose control watch the test sees end. Its
// watch ends only once the relay has read what it sent last, more than
// the relay's channel holds: a relay that stopped reading at Close
// without waiting for the watch would leave it running.
type watchStore struct {
	*natsstore.Store
	ended chan struct{}
}

func (s *watchStore) WatchControl(ctx context.Context, changed chan<- string) error {
	inner := make(chan string)
	if err := s.Store.WatchControl(ctx, inner); err != nil {
		return err
	}
	go func() {
		for what := range inner {
			changed <- what
		}
		for range cap(changed) + 1 {
			changed <- "no-such-org"
		}
		close(s.ended)
		close(changed)
	}()
	return nil
}

// TestCloseWaitsForControlWatch: the relay's Close waits for the watch
// of the shared store it started, so none of it outlives the relay
// while the store lives on (the store's Close would wait for it too).
func TestCloseWaitsForControlWatch(t *testing.T) {
	srv := natstest.Run(t, natstest.Options(-1, t.TempDir()))
	st := &watchStore{Store: openStore(t, []string{srv.ClientURL()}, 1), ended: make(chan struct{})}
	r, err := relay.New(orgConfig(t), relay.Options{Store: st, Logger: zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.InfoLevel)})
	if err != nil {
		t.Fatalf("relay: %v", err)
	}
	if err := r.Start(context.Background()); err != nil {
		t.Fatalf("start relay: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := r.Close(ctx); err != nil {
		t.Fatalf("Close: got %v, want nil", err)
	}
	select {
	case <-st.ended:
	default:
		t.Errorf("after the relay's Close: got the store's control watch running, want it ended")
	}
}
