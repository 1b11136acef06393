package natstunnel

import (
	"context"
	"sync"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/rs/zerolog"

	"github.com/sidehook/sidehook/relay/natsstore/natstest"
	"github.com/sidehook/sidehook/relay/tunnel"
)

// TestCloseTwiceAndConcurrently: Close may be called twice, and from
// several goroutines at once; every call returns nil, and only once the
// server has stopped: its presence loop ended, so the caller may close the
// connection after it (the last presence, "gone", went out before). The
// calls race, so a few servers are closed so.
func TestCloseTwiceAndConcurrently(t *testing.T) {
	srv := natstest.Run(t, natstest.Options(-1, t.TempDir()))
	nc, err := nats.Connect(srv.ClientURL())
	if err != nil {
		t.Fatalf("connect to nats: %v", err)
	}
	t.Cleanup(nc.Close)
	ctx := context.Background()
	for range 1000 {
		s := New(tunnel.NewServer(tunnel.ServerOptions{Logger: zerolog.Nop()}), nc, "sidehook", Options{Logger: zerolog.Nop()})
		if err := s.Start(ctx); err != nil {
			t.Fatalf("start: %v", err)
		}
		var wg sync.WaitGroup
		begin := make(chan struct{})
		for range 4 {
			wg.Go(func() {
				<-begin
				if err := s.Close(ctx); err != nil {
					t.Errorf("Close: got %v, want nil", err)
				}
				select {
				case <-s.loopDone:
				default:
					t.Errorf("Close returned with the presence loop running, want it ended")
				}
			})
		}
		close(begin)
		wg.Wait()
		if err := s.Close(ctx); err != nil {
			t.Errorf("Close again: got %v, want nil", err)
		}
	}
}
