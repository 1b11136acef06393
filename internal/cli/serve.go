package cli

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/signal"
	"syscall"

	"github.com/sidehook/sidehook/internal/units"
)

// checkListen refuses an address a server could not listen on, before
// anything starts; where says which flag or key gave it.
func checkListen(where, addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return usageErrorf("%s %q: want HOST:PORT, such as 127.0.0.1:8080 or :8080", where, addr)
	}
	if _, ok := units.ParsePort(port); !ok {
		return usageErrorf("%s %q: the port must be a number from 0 to 65535", where, addr)
	}
	if host != "" && net.ParseIP(host) == nil && !validHostname(host) {
		return usageErrorf("%s %q: %q is not an IP address or a host name", where, addr, host)
	}
	return nil
}

func validHostname(h string) bool {
	if len(h) > 253 {
		return false
	}
	for _, r := range h {
		if !(r == '-' || r == '.' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
			return false
		}
	}
	return true
}

// busyPort turns a server's failure to listen because the address is taken
// into a message that names what to change; any other error is returned as
// it is (relay and receiver name themselves in their errors).
func busyPort(err error, cmd, addr, change string) error {
	if errors.Is(err, syscall.EADDRINUSE) {
		return fmt.Errorf("%s: %s is already in use: choose another address with %s", cmd, addr, change)
	}
	return err
}

// drainContext is canceled by a second stop signal (SIGINT, SIGTERM,
// SIGHUP): the first one started a graceful stop, the second skips the
// drain.
func drainContext() (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(context.Background())
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, stopSignals()...)
	go func() {
		defer signal.Stop(sig)
		select {
		case <-sig:
			cancel()
		case <-ctx.Done():
		}
	}()
	return ctx, cancel
}

// closeWithin stops a component with a bounded drain (a second signal cuts
// it short).
func closeWithin(close func(context.Context) error) {
	ctx, cancel := drainContext()
	defer cancel()
	_ = close(ctx)
}
