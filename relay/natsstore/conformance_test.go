package natsstore

import (
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/sidehook/sidehook/relay"
	"github.com/sidehook/sidehook/relay/storetest"
)

// TestConformance runs the relay.Store suite on one embedded server, each
// subtest in a stream and bucket of its own prefix.
func TestConformance(t *testing.T) {
	srv := startServer(t, nil)
	var n atomic.Int64
	storetest.Run(t, storetest.Factory{
		New: func(t *testing.T) relay.Store {
			return openStore(t, Config{Servers: []string{srv.ClientURL()}, Prefix: fmt.Sprintf("conf%d", n.Add(1))})
		},
		Reopen: func(t *testing.T, s relay.Store) relay.Store {
			cfg := s.(*Store).cfg
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			return openStore(t, cfg)
		},
	})
}
