package receiver_test

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/sidehook/sidehook/internal/closetest"
	"github.com/sidehook/sidehook/receiver"
	"github.com/sidehook/sidehook/receiver/badgerstore"
	"github.com/sidehook/sidehook/receiver/memstore"
	"github.com/sidehook/sidehook/web"
	"github.com/sidehook/sidehook/web/webtest"
)

// TestCloseTwiceAndConcurrently: the receiver's components may be closed
// twice and from several goroutines at once: every call returns nil, and
// only once the component is closed. The package's goleak check then
// finds nothing they left running.
func TestCloseTwiceAndConcurrently(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name string
		// open returns the component's Close and a check that it is
		// closed.
		open func(t *testing.T) (close func() error, closed func(t *testing.T))
	}{
		{"ServerStarted", func(t *testing.T) (func() error, func(*testing.T)) {
			srv := start(t, receiver.Config{})
			addr := srv.Addr()
			// A dashboard open: its websocket must end with Close.
			ws := dialDashboard(t, srv, nil)
			if m := webtest.ReadWS(t, ws); m.Type != web.MsgSnapshot {
				t.Fatalf("dashboard: got %+v, want a snapshot", m)
			}
			return func() error { return srv.Close(ctx) }, func(t *testing.T) {
				if c, err := net.Dial("tcp", addr); err == nil {
					c.Close()
					t.Errorf("dial %s after Close: got a connection, want it refused", addr)
				}
				_ = ws.SetReadDeadline(time.Now().Add(10 * time.Second))
				if _, _, err := ws.ReadMessage(); err == nil {
					t.Errorf("dashboard websocket after Close: got a message, want it ended")
				}
			}
		}},
		{"ServerNeverStarted", func(t *testing.T) (func() error, func(*testing.T)) {
			srv, err := receiver.New(receiver.Config{Listen: "127.0.0.1:0", Store: memstore.New()})
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			return func() error { return srv.Close(ctx) }, func(t *testing.T) {
				if err := srv.Start(ctx); err == nil {
					t.Errorf("Start after Close: got nil, want an error")
				}
			}
		}},
		{"Badgerstore", func(t *testing.T) (func() error, func(*testing.T)) {
			dir := t.TempDir()
			st, err := badgerstore.Open(badgerstore.Options{Dir: dir, Logger: zerolog.Nop()})
			if err != nil {
				t.Fatalf("open: %v", err)
			}
			t.Cleanup(func() { _ = st.Close() })
			return st.Close, func(t *testing.T) {
				// Badger's directory lock is let go only when it is closed.
				again, err := badgerstore.Open(badgerstore.Options{Dir: dir, Logger: zerolog.Nop()})
				if err != nil {
					t.Errorf("open again after Close: got %v, want the store closed and its directory free", err)
					return
				}
				if err := again.Close(); err != nil {
					t.Errorf("close the store opened again: %v", err)
				}
			}
		}},
		{"Memstore", func(t *testing.T) (func() error, func(*testing.T)) {
			st := memstore.New()
			return st.Close, func(*testing.T) {}
		}},
		{"WebHub", func(t *testing.T) (func() error, func(*testing.T)) {
			h := web.NewHub(web.HubOptions{})
			sub := h.Subscribe(ctx)
			return func() error { return h.Shutdown(ctx) }, func(t *testing.T) {
				select {
				case <-sub.Done():
				default:
					t.Errorf("subscription after Shutdown: open, want it ended")
				}
				if n := h.Subscribers(); n != 0 {
					t.Errorf("subscribers after Shutdown: got %d, want 0", n)
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
