package natsstore

import (
	"sync"
	"testing"
)

// TestCloseTwiceAndConcurrently: Close may be called twice, and from
// several goroutines at once; every call returns nil, and only once the
// store is closed: its heartbeats stopped and its connection closed. The
// calls race, so a few stores are closed so.
func TestCloseTwiceAndConcurrently(t *testing.T) {
	srv := startServer(t, nil)
	for range 30 {
		s := openStore(t, Config{Servers: []string{srv.ClientURL()}})
		var wg sync.WaitGroup
		for range 4 {
			wg.Go(func() {
				if err := s.Close(); err != nil {
					t.Errorf("Close: got %v, want nil", err)
				}
				if !s.nc.IsClosed() {
					t.Errorf("Close returned with the NATS connection open, want it closed")
				}
			})
		}
		wg.Wait()
		if err := s.Close(); err != nil {
			t.Errorf("Close again: got %v, want nil", err)
		}
	}
}
