package natsstore

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
)

// A store opened with Existing (sidehook relay rotate-key) acts on the
// relays' store or on none: it makes no stream or bucket where the
// relays have none (another prefix, other servers), and it takes no part
// in their shared ack wait, which is a relay's setting.
func TestOpenExisting(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	t.Run("NoRelayStore", func(t *testing.T) {
		srv := startServer(t, nil)
		s, err := Open(ctx, Config{Servers: []string{srv.ClientURL()}, Prefix: "elsewhere", Existing: true})
		if err == nil {
			s.Close()
			t.Fatal("opened a store no relay made")
		}
		if msg := err.Error(); !strings.Contains(msg, `no relay store "elsewhere"`) || strings.Contains(msg, "\n") {
			t.Errorf("error %q: want one line saying there is no relay store elsewhere", msg)
		}
		nc, err := nats.Connect(srv.ClientURL())
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		js, _ := nc.JetStream()
		for name := range js.StreamNames() {
			t.Errorf("a refused open made stream %s", name)
		}
	})
	t.Run("AnotherAckWait", func(t *testing.T) {
		srv := startServer(t, nil)
		url := []string{srv.ClientURL()}
		openStore(t, Config{Servers: url, AckWait: time.Second})
		s, err := Open(ctx, Config{Servers: url, Existing: true}) // 30s
		if err != nil {
			t.Fatalf("open beside a relay with another ack wait: %v", err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		// The relay's setting stands.
		if s, err := Open(ctx, Config{Servers: url, AckWait: 3 * time.Second}); err == nil {
			s.Close()
			t.Fatal("a relay with another ack wait opened beside the running one")
		}
	})
}
