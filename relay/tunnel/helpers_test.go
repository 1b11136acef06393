package tunnel_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/sidehook/sidehook/relay"
	"github.com/sidehook/sidehook/relay/tunnel"
)

const (
	testOrg  = "acme"
	testKey  = "test-api-key"
	testName = "laptop"
)

// fastServer are timers short enough for tests to see a dead peer in
// milliseconds.
func fastServer() tunnel.ServerOptions {
	return tunnel.ServerOptions{PingInterval: 50 * time.Millisecond, PongWait: time.Second, WriteWait: time.Second, HelloWait: time.Second}
}

// fakeRelay is the relay's side as the relay wires it: GET /v1/tunnel
// checks the API key and hands the connection to the current Server;
// GET /v1/endpoints lists one tunnel endpoint.
type fakeRelay struct {
	*httptest.Server
	srv       atomic.Pointer[tunnel.Server]
	connected chan string // a name per onConnect
	endpoints string      // the JSON /v1/endpoints answers
}

func newFakeRelay(tb testing.TB, opts tunnel.ServerOptions) *fakeRelay {
	tb.Helper()
	fr := newFakeRelayHandler(tb, opts)
	fr.Server = httptest.NewServer(fr.handler())
	tb.Cleanup(fr.Close)
	return fr
}

func newFakeRelayHandler(tb testing.TB, opts tunnel.ServerOptions) *fakeRelay {
	tb.Helper()
	fr := &fakeRelay{connected: make(chan string, 64),
		endpoints: `{"endpoints":[{"id":"crm","url":"tunnel://` + testName + `/hooks","events":["*"],"auth":["webio-token","jwt"]}]}`}
	fr.srv.Store(tunnel.NewServer(opts))
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := fr.srv.Load().Close(ctx); err != nil {
			tb.Errorf("close tunnel server: %v", err)
		}
	})
	return fr
}

func (fr *fakeRelay) handler() http.Handler {
	mux := http.NewServeMux()
	authed := func(r *http.Request) bool { return r.Header.Get("Authorization") == "Bearer "+testKey }
	mux.HandleFunc("GET /v1/tunnel", func(w http.ResponseWriter, r *http.Request) {
		if !authed(r) {
			http.Error(w, `{"error":"unauthorized","reason":"bad API key"}`, http.StatusUnauthorized)
			return
		}
		name := r.URL.Query().Get("name")
		fr.srv.Load().Serve(w, r, testOrg, name, func([]string) { fr.connected <- name })
	})
	mux.HandleFunc("GET /v1/endpoints", func(w http.ResponseWriter, r *http.Request) {
		if !authed(r) {
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		io.WriteString(w, fr.endpoints)
	})
	return mux
}

func (fr *fakeRelay) tunnels() *tunnel.Server { return fr.srv.Load() }

// send is the relay's dispatcher sending one POST through the tunnel.
func (fr *fakeRelay) send(ctx context.Context, path, evt string, body []byte) (*relay.Response, error) {
	h := http.Header{"Content-Type": {"application/json"}, "Sidehook-Event": {evt}, "Webhook-Id": {"evt_1"}}
	return fr.tunnels().Send(ctx, &relay.OutboundRequest{Method: http.MethodPost, URL: "tunnel://" + testName + path, Header: h,
		Body: body, Org: testOrg, DeliveryID: "dlv_1", Attempt: 1}, 1<<20)
}

// lines is a Stdout that tells waiters about each line written.
type lines struct {
	mu    sync.Mutex
	buf   bytes.Buffer
	added chan struct{}
}

func newLines() *lines { return &lines{added: make(chan struct{}, 1)} }

func (l *lines) Write(p []byte) (int, error) {
	l.mu.Lock()
	l.buf.Write(p)
	l.mu.Unlock()
	select {
	case l.added <- struct{}{}:
	default:
	}
	return len(p), nil
}

func (l *lines) all() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Split(strings.TrimSpace(l.buf.String()), "\n")
}

// jsonLines returns the --json lines of type typ.
func (l *lines) jsonLines(tb testing.TB, typ string) []map[string]any {
	tb.Helper()
	var out []map[string]any
	for _, s := range l.all() {
		if s == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(s), &m); err != nil {
			tb.Fatalf("line %q is not JSON: %v", s, err)
		}
		if m["type"] == typ {
			out = append(out, m)
		}
	}
	return out
}

// wait blocks until cond holds or 10 s pass. cond is checked on each line
// written and on a short tick, for conditions on other writers too.
func (l *lines) wait(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	deadline := time.NewTimer(10 * time.Second)
	defer deadline.Stop()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-l.added:
		case <-tick.C:
		case <-deadline.C:
			tb.Fatalf("timed out waiting for %s; output:\n%s", what, strings.Join(l.all(), "\n"))
		}
	}
}

// runningClient is a Client whose Run goes on in the background until the
// test ends or stop is called.
type runningClient struct {
	*tunnel.Client
	out     *lines
	cancel  context.CancelFunc
	done    chan error
	stopped sync.Once
}

// stop cancels Run and waits for it; the test's cleanup calls it too.
func (rc *runningClient) stop(tb testing.TB) {
	tb.Helper()
	rc.stopped.Do(func() {
		rc.cancel()
		if err := <-rc.done; err != nil {
			tb.Errorf("Run after cancel: got %v, want nil", err)
		}
	})
}

func clientConfig(relayURL, forward string) tunnel.ClientConfig {
	return tunnel.ClientConfig{RelayURL: relayURL, APIKey: testKey, Name: testName, Forward: forward, JSON: true,
		Logger: zerolog.Nop(), BackoffMin: 5 * time.Millisecond, BackoffMax: 50 * time.Millisecond,
		PingInterval: 50 * time.Millisecond, PongWait: time.Second}
}

// runUntilGivesUp runs a client of cfg that is expected to stop by itself
// (a wrong key, something that is not a relay) and returns why it stopped;
// still retrying after 10 s fails the test.
func runUntilGivesUp(tb testing.TB, cfg tunnel.ClientConfig) error {
	tb.Helper()
	c, err := tunnel.NewClient(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err = c.Run(ctx)
	if ctx.Err() != nil {
		tb.Fatalf("Run retried until the deadline, want it to give up")
	}
	return err
}

// runClient runs a client of cfg in the background until the test ends
// and returns what it prints; unlike startClient it waits for nothing, for
// clients that may never be ready.
func runClient(tb testing.TB, cfg tunnel.ClientConfig) *lines {
	tb.Helper()
	out := newLines()
	cfg.Stdout = out
	c, err := tunnel.NewClient(cfg)
	if err != nil {
		tb.Fatalf("NewClient: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	tb.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			tb.Errorf("Run after cancel: got %v, want nil", err)
		}
	})
	return out
}

// startClient runs a client and waits for its n-th ready line.
func startClient(tb testing.TB, cfg tunnel.ClientConfig) *runningClient {
	tb.Helper()
	out := newLines()
	cfg.Stdout = out
	cfg.JSON = true
	c, err := tunnel.NewClient(cfg)
	if err != nil {
		tb.Fatalf("NewClient: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	rc := &runningClient{Client: c, out: out, cancel: cancel, done: make(chan error, 1)}
	go func() { rc.done <- c.Run(ctx) }()
	tb.Cleanup(func() { rc.stop(tb) })
	out.wait(tb, "the ready line", func() bool { return len(out.jsonLines(tb, "ready")) > 0 })
	return rc
}

// app is the local app: it records every request and answers with answer.
type app struct {
	*httptest.Server
	mu     sync.Mutex
	got    []gotRequest
	answer atomic.Pointer[http.HandlerFunc]
}

type gotRequest struct {
	Method, Path, Query string
	Header              http.Header
	Body                []byte
}

func newApp(tb testing.TB) *app {
	tb.Helper()
	a := &app{}
	a.Server = httptest.NewServer(a.handler())
	tb.Cleanup(a.Close)
	return a
}

// newTLSApp is newApp serving HTTPS with cert, or with httptest's own
// self-signed certificate when cert is nil.
func newTLSApp(tb testing.TB, cert *tls.Certificate) *app {
	tb.Helper()
	a := &app{}
	a.Server = httptest.NewUnstartedServer(a.handler())
	if cert != nil {
		a.TLS = &tls.Config{Certificates: []tls.Certificate{*cert}}
	}
	// The tests make handshakes fail on purpose: the server's log of each
	// would only be noise.
	a.Config.ErrorLog = log.New(io.Discard, "", 0)
	a.StartTLS()
	tb.Cleanup(a.Close)
	return a
}

func (a *app) handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		a.mu.Lock()
		a.got = append(a.got, gotRequest{r.Method, r.URL.Path, r.URL.RawQuery, r.Header.Clone(), b})
		a.mu.Unlock()
		if h := a.answer.Load(); h != nil {
			(*h)(w, r)
			return
		}
		w.Header().Set("X-App", "yes")
		io.WriteString(w, `{"ok":true}`)
	})
}

func (a *app) answerWith(h http.HandlerFunc) { a.answer.Store(&h) }

func (a *app) requests() []gotRequest {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]gotRequest(nil), a.got...)
}

// waitConnected waits for n more onConnect calls.
func (fr *fakeRelay) waitConnected(tb testing.TB, n int) {
	tb.Helper()
	for range n {
		select {
		case <-fr.connected:
		case <-time.After(10 * time.Second):
			tb.Fatal("timed out waiting for a tunnel client to connect")
		}
	}
}

func isNoClient(err error) bool { return errors.Is(err, tunnel.ErrNoClient) }

// relayRequest builds an OutboundRequest to the test tunnel.
type relayRequest struct {
	method string
	path   string
	header http.Header
	body   []byte
}

func (r relayRequest) req() *relay.OutboundRequest {
	m := r.method
	if m == "" {
		m = http.MethodPost
	}
	return &relay.OutboundRequest{Method: m, URL: "tunnel://" + testName + r.path, Header: r.header, Body: r.body,
		Org: testOrg, DeliveryID: "dlv_1", Attempt: 1}
}
