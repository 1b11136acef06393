package web_test

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/sidehook/sidehook/web"
)

// itemLog stands in for a server's store: items in publish order, Recent
// newest first.
type itemLog struct {
	mu    sync.Mutex
	items []web.Item
	err   error
	// scoped: Recent honours web.ScopeFrom, as servers must.
	scoped bool
}

func (l *itemLog) add(it web.Item) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.items = append(l.items, it)
}

func (l *itemLog) len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.items)
}

func (l *itemLog) Recent(ctx context.Context, n int) ([]web.Item, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.err != nil {
		return nil, l.err
	}
	out := make([]web.Item, 0, n)
	scope := web.ScopeFrom(ctx)
	for i := len(l.items) - 1; i >= 0 && len(out) < n; i-- {
		if l.scoped && scope != "" && l.items[i].Org != scope {
			continue
		}
		out = append(out, l.items[i])
	}
	return out, nil
}

type dashOptions struct {
	Role         string
	ClientBuffer int
	MaxViewers   int
	Authorize    func(*http.Request) bool
	Scope        func(*http.Request) string
	NoHub        bool
	// Routes adds the server's own endpoints (replay, retry) beside the
	// dashboard, as the receiver and the relay do.
	Routes func(mux *http.ServeMux)
}

// dashboard is a server that mounts web.NewHandler the way the receiver and
// the relay do, on 127.0.0.1.
type dashboard struct {
	URL   string
	Hub   *web.Hub
	Log   *itemLog
	Reg   *prometheus.Registry
	Inner http.Handler
}

func startDashboard(tb testing.TB, o dashOptions) *dashboard {
	tb.Helper()
	d := &dashboard{Log: &itemLog{}, Reg: prometheus.NewRegistry()}
	var hub *web.Hub
	if !o.NoHub {
		hub = web.NewHub(web.HubOptions{ClientBuffer: o.ClientBuffer, MaxViewers: o.MaxViewers, Logger: zerolog.Nop(), Registerer: d.Reg})
		tb.Cleanup(func() { _ = hub.Close() })
	}
	d.Hub = hub
	d.Inner = web.NewHandler(web.Config{
		Role: o.Role, Hub: hub, Recent: d.Log.Recent, Authorize: o.Authorize, Scope: o.Scope, Logger: zerolog.Nop(),
	})
	mux := http.NewServeMux()
	mux.Handle("/_sidehook/ui/", d.Inner)
	mux.Handle("/_sidehook/ui", d.Inner)
	mux.Handle("/_sidehook/ws", d.Inner)
	if o.Routes != nil {
		o.Routes(mux)
	}
	srv := httptest.NewServer(mux) // binds 127.0.0.1:0
	// The hub closes first (cleanups run last-in first-out), which ends
	// every websocket, so Close does not wait on hijacked connections.
	tb.Cleanup(srv.Close)
	if hub != nil {
		tb.Cleanup(func() { _ = hub.Close() })
	}
	d.URL = srv.URL
	return d
}

// publish stores it and then publishes it, as servers do after a commit.
func (d *dashboard) publish(it web.Item) {
	d.Log.add(it)
	d.Hub.Publish(it)
}

func (d *dashboard) wsURL() string { return "ws" + strings.TrimPrefix(d.URL, "http") + web.WSPath }

func dial(tb testing.TB, d *dashboard, header http.Header) *websocket.Conn {
	tb.Helper()
	c, resp, err := websocket.DefaultDialer.DialContext(tb.Context(), d.wsURL(), header)
	if err != nil {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		tb.Fatalf("dial %s: %v (HTTP %d)", d.wsURL(), err, status)
	}
	tb.Cleanup(func() { _ = c.Close() })
	return c
}

// dialStalled connects a client for a test to leave unread. Its socket's
// receive buffer is set, which turns off the kernel's autotuning (up to
// 32 MiB here): a few MiB then block the server's writer, where tens would
// be needed otherwise. Much smaller, and draining it at the end of a test
// would outlast the server's write deadline.
func dialStalled(tb testing.TB, d *dashboard) *websocket.Conn {
	tb.Helper()
	small := websocket.Dialer{NetDialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		if err := c.(*net.TCPConn).SetReadBuffer(256 << 10); err != nil {
			c.Close()
			return nil, err
		}
		return c, nil
	}}
	c, _, err := small.DialContext(tb.Context(), d.wsURL(), nil)
	if err != nil {
		tb.Fatalf("dial a client to leave unread: %v", err)
	}
	tb.Cleanup(func() { _ = c.Close() })
	return c
}

// wireMsg is any message of the wire protocol.
type wireMsg struct {
	Type  string     `json:"type"`
	Items []web.Item `json:"items"`
	Item  *web.Item  `json:"item"`
	Count int        `json:"count"`
	Error string     `json:"error"`
}

func readMsg(tb testing.TB, c *websocket.Conn) wireMsg {
	tb.Helper()
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, b, err := c.ReadMessage()
	if err != nil {
		tb.Fatalf("read websocket: %v", err)
	}
	var m wireMsg
	if err := json.Unmarshal(b, &m); err != nil {
		tb.Fatalf("decode %q: %v", b, err)
	}
	return m
}

// waitFor polls cond until it holds or 5s pass.
func waitFor(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// bearerAuth is what a server's admin-token check looks like.
func bearerAuth(token string) func(*http.Request) bool {
	return func(r *http.Request) bool { return r.Header.Get("Authorization") == "Bearer "+token }
}
