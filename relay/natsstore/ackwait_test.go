package natsstore

import (
	"context"
	"errors"
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
		if !errors.Is(err, ErrMisconfigured) {
			t.Errorf("error %q is not ErrMisconfigured: the relay would exit 1, as for an outage", err)
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

// A store open for a moment, with no relay running (sidehook relay
// rotate-key), leaves the ack wait to the next relay: it claimed the
// setting for twice its own ack wait, and a relay with another, started
// just after, was refused, told that relays ran that did not.
func TestAckWaitBriefOpenLeavesNoClaim(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	openClose := func(t *testing.T, url []string, ackWait time.Duration) {
		t.Helper()
		s, err := Open(ctx, Config{Servers: url, AckWait: ackWait})
		if err != nil {
			t.Fatalf("open with ack wait %s: %v", ackWait, err)
		}
		if err := s.Close(); err != nil {
			t.Fatalf("close: %v", err)
		}
	}
	refused := func(t *testing.T, url []string, ackWait time.Duration) {
		t.Helper()
		s, err := Open(ctx, Config{Servers: url, AckWait: ackWait})
		if err == nil {
			s.Close()
			t.Fatalf("a store with ack wait %s opened beside a running one with another", ackWait)
		}
	}
	t.Run("NoneRunning", func(t *testing.T) {
		url := []string{startServer(t, nil).ClientURL()}
		openClose(t, url, 0) // rotate-key with the default 30s
		openStore(t, Config{Servers: url, AckWait: time.Second})
	})
	t.Run("OneRunning", func(t *testing.T) {
		url := []string{startServer(t, nil).ClientURL()}
		openStore(t, Config{Servers: url, AckWait: time.Second})
		openClose(t, url, time.Second)
		refused(t, url, 3*time.Second)
	})
	t.Run("OneStartedSince", func(t *testing.T) {
		// The first claimed it, a second started before the first
		// rewrote it, and the first stopped: the second still holds it.
		url := []string{startServer(t, nil).ClientURL()}
		first, err := Open(ctx, Config{Servers: url, AckWait: 30 * time.Second})
		if err != nil {
			t.Fatalf("open: %v", err)
		}
		openStore(t, Config{Servers: url, AckWait: 30 * time.Second})
		first.Close()
		refused(t, url, time.Second)
	})
}
