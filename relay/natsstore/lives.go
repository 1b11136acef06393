package natsstore

import (
	"context"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
)

// lives ends the requests of a lost connection. nats.go leaves a request
// whose server went away waiting out its whole timeout (opTimeout), and a
// Take waiting on one holds its endpoint's lock all that time: after a
// NATS restart, deliveries stalled for 10 s. Each life of the connection
// (from one successful connect to its loss) has a context, ended when the
// connection is lost; every request's context ends with its life's.
type lives struct {
	mu   sync.Mutex
	gen  uint64 // nats.Conn's Reconnects when this life began
	ctx  context.Context
	kill context.CancelFunc
}

// current is the context of nc's present life, or an ended one while nc
// is not connected.
func (l *lives) current(nc *nats.Conn) context.Context {
	l.mu.Lock()
	defer l.mu.Unlock()
	if nc.Status() != nats.CONNECTED {
		// Ended already: a request made now fails at once rather than
		// wait in nats.go's reconnect buffer.
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		return ctx
	}
	// nats.go counts a reconnect before it reports CONNECTED, so a
	// connected nc with a new count is a new life.
	if gen := nc.Stats().Reconnects; l.ctx == nil || gen != l.gen {
		if l.kill != nil {
			l.kill()
		}
		l.gen = gen
		l.ctx, l.kill = context.WithCancel(context.Background())
	}
	return l.ctx
}

// lost ends the lives nc no longer has. It runs in nats.go's disconnect
// callback, which may come after a reconnect: connected again, only the
// lives before the present count are over.
func (l *lives) lost(nc *nats.Conn) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.kill == nil {
		return
	}
	if nc.Status() != nats.CONNECTED || l.gen < nc.Stats().Reconnects {
		l.kill()
	}
}

// bound is ctx for one request: it ends after d, or when the connection
// the request goes out on is lost.
func (s *Store) bound(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithTimeout(ctx, d)
	stop := context.AfterFunc(s.lives.current(s.nc), cancel)
	return ctx, func() {
		stop()
		cancel()
	}
}

// writeCtx is the context of a durable write: it does not end with the
// caller's, only after opTimeout or with the connection.
func (s *Store) writeCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	return s.bound(context.WithoutCancel(ctx), opTimeout)
}
