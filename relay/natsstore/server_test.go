package natsstore

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/rs/zerolog"

	"github.com/sidehook/sidehook/relay/natsstore/natstest"
)

// startServer runs an embedded JetStream server on a free loopback port,
// shut down when the test ends. mod adjusts its options.
func startServer(t testing.TB, mod func(*server.Options)) *server.Server {
	t.Helper()
	o := natstest.Options(-1, t.TempDir())
	if mod != nil {
		mod(o)
	}
	return natstest.Run(t, o)
}

// waitFor polls cond until it holds or the time is up.
func waitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// openStore opens a store on the servers, closed when the test ends.
func openStore(t testing.TB, cfg Config) *Store {
	t.Helper()
	if cfg.AckWait == 0 {
		cfg.AckWait = 2 * time.Second
	}
	cfg.Logger = zerolog.Nop()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := Open(ctx, cfg)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func newStore(t testing.TB) (*Store, *server.Server) {
	srv := startServer(t, nil)
	return openStore(t, Config{Servers: []string{srv.ClientURL()}}), srv
}
