package relay_test

import (
	"context"
	"net"
	"path/filepath"
	"testing"

	"github.com/sidehook/sidehook/internal/closetest"
	"github.com/sidehook/sidehook/relay"
	"github.com/sidehook/sidehook/relay/badgerstore"
	"github.com/sidehook/sidehook/relay/memstore"
	"github.com/sidehook/sidehook/relay/tunnel"
)

// TestCloseTwiceAndConcurrently: the relay's components may be closed
// twice and from several goroutines at once (a signal handler and a
// deferred Close, say): every call returns nil, and only once the
// component is closed. The package's goleak check then finds nothing
// they left running.
func TestCloseTwiceAndConcurrently(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name string
		// open returns the component's Close and a check that it is
		// closed.
		open func(t *testing.T) (close func() error, closed func(t *testing.T))
	}{
		{"RelayStarted", func(t *testing.T) (func() error, func(*testing.T)) {
			tunnels := tunnel.NewServer(tunnel.ServerOptions{})
			t.Cleanup(func() { _ = tunnels.Close(ctx) })
			cfg := orgConfig(t)
			r := startRelay(t, cfg, relay.Options{Tunnels: tunnels})
			addr := r.Addr().String()
			return func() error { return r.Close(ctx) }, func(t *testing.T) {
				if r.Ready() {
					t.Errorf("Ready after Close: got true, want false")
				}
				if c, err := net.Dial("tcp", addr); err == nil {
					c.Close()
					t.Errorf("dial %s after Close: got a connection, want it refused", addr)
				}
			}
		}},
		{"RelayNeverStarted", func(t *testing.T) (func() error, func(*testing.T)) {
			cfg := orgConfig(t)
			r, err := relay.New(cfg, relay.Options{Store: storeFor(t, cfg)})
			if err != nil {
				t.Fatalf("new relay: %v", err)
			}
			return func() error { return r.Close(ctx) }, func(t *testing.T) {
				if r.Ready() {
					t.Errorf("Ready after Close: got true, want false")
				}
				// A relay started after Close would serve until the
				// process ends: Close does its work once.
				if err := r.Start(ctx); err == nil {
					t.Errorf("Start after Close: got nil, want an error")
				}
			}
		}},
		{"TunnelServer", func(t *testing.T) (func() error, func(*testing.T)) {
			s := tunnel.NewServer(tunnel.ServerOptions{})
			return func() error { return s.Close(ctx) }, func(t *testing.T) {
				if err := s.Close(ctx); err != nil {
					t.Errorf("Close once closed: got %v, want nil", err)
				}
			}
		}},
		{"Memstore", func(t *testing.T) (func() error, func(*testing.T)) {
			s := memstore.New()
			return s.Close, func(t *testing.T) {
				if s.Health() == nil {
					t.Errorf("Health after Close: got nil, want an error")
				}
			}
		}},
		{"Badgerstore", func(t *testing.T) (func() error, func(*testing.T)) {
			dir := filepath.Join(t.TempDir(), "db")
			s, err := badgerstore.Open(ctx, badgerstore.Options{Dir: dir, Reserve: -1})
			if err != nil {
				t.Fatalf("open: %v", err)
			}
			t.Cleanup(func() { _ = s.Close() })
			return s.Close, func(t *testing.T) {
				// Badger's directory lock is let go only when it is closed.
				again, err := badgerstore.Open(ctx, badgerstore.Options{Dir: dir, Reserve: -1})
				if err != nil {
					t.Errorf("open again after Close: got %v, want the store closed and its directory free", err)
					return
				}
				if err := again.Close(); err != nil {
					t.Errorf("close the store opened again: %v", err)
				}
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			close, closed := tt.open(t)
			closetest.Concurrently(t, close, closed)
		})
	}
}
