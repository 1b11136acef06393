package natsstore

import (
	"context"
	"strings"
	"testing"
	"time"
)

// AckWait is the lease, the head lock and the consumers' ack wait of every
// relay sharing a stream: a relay asking for another one refuses to start
// while a relay with the first runs, instead of setting the consumers to
// its own and leaving the others' leases to lapse (or to outlive a death).
// Once none runs, the next to start sets it.
func TestAckWaitAgreed(t *testing.T) {
	srv := startServer(t, nil)
	url := []string{srv.ClientURL()}
	a := openStore(t, Config{Servers: url, AckWait: time.Second})
	b := openStore(t, Config{Servers: url, AckWait: time.Second}) // the same: as ever
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	refused := func(t *testing.T, ackWait time.Duration, want string) {
		t.Helper()
		s, err := Open(ctx, Config{Servers: url, AckWait: ackWait})
		if err == nil {
			s.Close()
			t.Fatalf("a store with ack wait %s opened beside one with 1s", ackWait)
		}
		if !strings.Contains(err.Error(), want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("error %q, want one line saying %q", err, want)
		}
	}
	tests := []struct {
		name    string
		ackWait time.Duration
		want    string
	}{
		{"Longer", 3 * time.Second, "relays on stream sidehook use store.ack_wait 1s and this relay asks for 3s: set store.ack_wait to 1s; to change it, stop them all and wait 2s"},
		{"Default", 0, "relays on stream sidehook use store.ack_wait 1s and this relay asks for 30s: set store.ack_wait to 1s"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { refused(t, tt.ackWait, tt.want) })
	}
	t.Run("WhileOneRuns", func(t *testing.T) {
		// Long after the relays opened, the running ones keep it theirs.
		since := time.Now()
		waitFor(t, 10*time.Second, "the setting to be refreshed", func() bool {
			e, err := a.ctl.Get(ctx, ackWaitKey)
			return err == nil && e.Created().After(since.Add(3*time.Second))
		})
		a.Close()
		refused(t, 3*time.Second, "use store.ack_wait 1s and this relay asks for 3s")
	})
	t.Run("AfterAllStopped", func(t *testing.T) {
		b.Close()
		var s *Store
		waitFor(t, 10*time.Second, "a store with another ack wait to open", func() bool {
			var err error
			s, err = Open(ctx, Config{Servers: url, AckWait: 3 * time.Second})
			return err == nil
		})
		s.Close()
	})
}
