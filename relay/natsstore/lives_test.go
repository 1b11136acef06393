package natsstore

import (
	"bytes"
	"context"
	"errors"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/sidehook/sidehook/relay"
)

// holdingProxy forwards TCP to a NATS server. Once told to hold, it
// forwards nothing more the server sends, and reports when the client
// sends bytes holding a given string: a request is then out and its
// answer never comes back, as when the server dies with it in flight.
type holdingProxy struct {
	ln     net.Listener
	target string

	mu    sync.Mutex
	hold  []byte        // while set, server bytes are dropped
	seen  chan struct{} // closed when the client sent hold
	conns []net.Conn
}

func newHoldingProxy(t *testing.T, target string) *holdingProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &holdingProxy{ln: ln, target: target}
	t.Cleanup(func() {
		ln.Close()
		p.cut()
	})
	go p.serve()
	return p
}

func (p *holdingProxy) url() string { return "nats://" + p.ln.Addr().String() }

func (p *holdingProxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		s, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, c, s)
		p.mu.Unlock()
		go p.pipe(s, c, true)
		go p.pipe(c, s, false)
	}
}

func (p *holdingProxy) pipe(dst, src net.Conn, fromClient bool) {
	defer dst.Close()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			p.mu.Lock()
			held := p.hold != nil
			if held && fromClient && p.seen != nil && bytes.Contains(buf[:n], p.hold) {
				close(p.seen)
				p.seen = nil
			}
			p.mu.Unlock()
			if !held || fromClient {
				if _, werr := dst.Write(buf[:n]); werr != nil {
					return
				}
			}
		}
		if err != nil {
			return
		}
	}
}

// holdAfter holds the server's answers from now on, and returns a channel
// closed once the client has sent s.
func (p *holdingProxy) holdAfter(s string) <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.hold, p.seen = []byte(s), make(chan struct{})
	return p.seen
}

// cut closes every connection and forwards normally again.
func (p *holdingProxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
	p.conns, p.hold, p.seen = nil, nil, nil
}

// A request whose connection is lost ends then, as unavailable, instead of
// waiting out opTimeout: a Take waiting on one held its endpoint's lock,
// and every delivery of the endpoint stalled 10 s after a NATS restart.
func TestLostConnectionEndsRequests(t *testing.T) {
	srv := startServer(t, nil)
	p := newHoldingProxy(t, srv.Addr().String())
	s := openStore(t, Config{Servers: []string{p.url()}})
	ctx := context.Background()
	ev, ds := mkEvent("acme", "evt_lost", time.Now(), false, "crm")
	accept(t, s, ev, ds)

	sent := p.holdAfter(s.subj.event("acme", "evt_lost"))
	errc := make(chan error, 1)
	start := time.Now()
	go func() {
		_, err := s.Event(ctx, "acme", "evt_lost")
		errc <- err
	}()
	<-sent
	p.cut()
	select {
	case err := <-errc:
		if !errors.Is(err, relay.ErrUnavailable) {
			t.Errorf("read on a lost connection: %v, want relay.ErrUnavailable", err)
		}
		t.Logf("the read ended %v after it began", time.Since(start).Round(time.Millisecond))
	case <-time.After(opTimeout / 2):
		t.Fatalf("a read whose connection was lost was still waiting after %v (opTimeout %v)", opTimeout/2, opTimeout)
	}

	waitFor(t, 10*time.Second, "the connection back", func() bool { return s.Health() == nil })
	got, err := s.Event(ctx, "acme", "evt_lost")
	if err != nil || got.ID != "evt_lost" {
		t.Fatalf("read after the reconnect: %v, %v", got, err)
	}
}
