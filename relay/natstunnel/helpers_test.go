package natstunnel_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/rs/zerolog"

	"github.com/sidehook/sidehook/relay"
	"github.com/sidehook/sidehook/relay/natsstore/natstest"
	"github.com/sidehook/sidehook/relay/natstunnel"
	"github.com/sidehook/sidehook/relay/tunnel"
)

const (
	testOrg    = "acme"
	testKey    = "test-api-key"
	testName   = "laptop"
	testPrefix = "sidehook"
)

// startNATS runs an embedded NATS server; edit changes its options.
func startNATS(tb testing.TB, edit ...func(*server.Options)) *server.Server {
	tb.Helper()
	o := natstest.Options(-1, tb.TempDir())
	for _, e := range edit {
		e(o)
	}
	return natstest.Run(tb, o)
}

// node is one relay's tunnel side: its own NATS connection, its local
// tunnel server wrapped by a natstunnel.Server, and GET /v1/tunnel as the
// relay routes it (the key authenticates org acme).
type node struct {
	*natstunnel.Server
	nc        *nats.Conn
	url       string
	connected chan string // a name per onConnect
}

func newNode(tb testing.TB, srv *server.Server, opts natstunnel.Options) *node {
	tb.Helper()
	nc, err := nats.Connect(srv.ClientURL())
	if err != nil {
		tb.Fatalf("connect to nats: %v", err)
	}
	tb.Cleanup(nc.Close) // last: after the server below is closed
	local := tunnel.NewServer(tunnel.ServerOptions{Logger: zerolog.Nop(), PingInterval: 50 * time.Millisecond, PongWait: time.Second,
		WriteWait: time.Second, HelloWait: time.Second})
	opts.Logger = zerolog.New(zerolog.NewTestWriter(tb)).Level(zerolog.InfoLevel)
	n := &node{Server: natstunnel.New(local, nc, testPrefix, opts), nc: nc, connected: make(chan string, 64)}
	if err := n.Start(context.Background()); err != nil {
		tb.Fatalf("start: %v", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/tunnel", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+testKey {
			http.Error(w, `{"error":"unauthorized","reason":"bad API key"}`, http.StatusUnauthorized)
			return
		}
		name := r.URL.Query().Get("name")
		n.Serve(w, r, testOrg, name, func([]string) { n.connected <- name })
	})
	hs := httptest.NewServer(mux)
	tb.Cleanup(hs.Close)
	n.url = hs.URL
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := n.Close(ctx); err != nil {
			tb.Errorf("close: %v", err)
		}
	})
	return n
}

// waitConnected waits for the next client of the node to be ready.
func (n *node) waitConnected(tb testing.TB) {
	tb.Helper()
	select {
	case <-n.connected:
	case <-time.After(10 * time.Second):
		tb.Fatal("timed out waiting for a tunnel client to connect")
	}
}

// client is a running tunnel client; stop ends it.
type client struct {
	cancel context.CancelFunc
	done   chan error
	once   sync.Once
}

// connect runs a tunnel client of name on n forwarding to forward, and
// waits until n has it.
func connect(tb testing.TB, n *node, forward string) *client {
	tb.Helper()
	return connectEvents(tb, n, forward)
}

// connectEvents is connect for a client with --events events.
func connectEvents(tb testing.TB, n *node, forward string, events ...string) *client {
	tb.Helper()
	c, err := tunnel.NewClient(tunnel.ClientConfig{RelayURL: n.url, APIKey: testKey, Name: testName, Forward: forward, Events: events,
		Logger: zerolog.Nop(), BackoffMin: 5 * time.Millisecond, BackoffMax: 50 * time.Millisecond,
		PingInterval: 50 * time.Millisecond, PongWait: time.Second})
	if err != nil {
		tb.Fatalf("tunnel client: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cl := &client{cancel: cancel, done: make(chan error, 1)}
	go func() { cl.done <- c.Run(ctx) }()
	tb.Cleanup(func() { cl.stop(tb) })
	n.waitConnected(tb)
	return cl
}

func (c *client) stop(tb testing.TB) {
	tb.Helper()
	c.once.Do(func() {
		c.cancel()
		if err := <-c.done; err != nil {
			tb.Errorf("tunnel client Run: %v", err)
		}
	})
}

// app is the developer's local app: it records each request and answers
// with answer (200 {"ok":true} and X-App: yes by default).
type app struct {
	*httptest.Server
	mu     sync.Mutex
	got    []gotRequest
	answer http.HandlerFunc
}

type gotRequest struct {
	Method, Path, Query string
	Header              http.Header
	Body                []byte
}

func newApp(tb testing.TB, answer http.HandlerFunc) *app {
	tb.Helper()
	a := &app{answer: answer}
	a.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		a.mu.Lock()
		a.got = append(a.got, gotRequest{r.Method, r.URL.Path, r.URL.RawQuery, r.Header.Clone(), b})
		a.mu.Unlock()
		if a.answer != nil {
			a.answer(w, r)
			return
		}
		w.Header().Set("X-App", "yes")
		io.WriteString(w, `{"ok":true}`)
	}))
	tb.Cleanup(a.Close)
	return a
}

func (a *app) requests() []gotRequest {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]gotRequest(nil), a.got...)
}

// post is a delivery of body to tunnel://laptop/hooks, as a relay sends it.
func post(body []byte) *relay.OutboundRequest {
	return &relay.OutboundRequest{Method: http.MethodPost, URL: "tunnel://" + testName + "/hooks",
		Header: http.Header{"Content-Type": {"application/json"}, "Sidehook-Event": {"payment"}, "Webhook-Id": {"evt_1"}},
		Body:   body, Org: testOrg, DeliveryID: "dlv_1", Attempt: 2}
}

// send calls Send within timeout.
func send(s relay.Transport, req *relay.OutboundRequest, timeout time.Duration) (*relay.Response, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return s.Send(ctx, req, 1<<20)
}

// waitFor polls cond until it holds or 10 s pass.
func waitFor(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
