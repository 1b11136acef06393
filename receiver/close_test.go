package receiver_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
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

// TestCloseCutsADelayWithTheCapturedAnswer: a request whose rule is still
// delaying its answer when Close begins gets the answer its capture
// records, at once, not an empty 200 once the grace is over (the capture
// is stored before the delay, so it cannot change afterwards); a fault is
// still the fault. Close does not spend its grace waiting on delays.
func TestCloseCutsADelayWithTheCapturedAnswer(t *testing.T) {
	const delay = time.Minute
	tests := []struct {
		name, rules string
		wantStatus  int  // what the client gets and the capture says
		wantErr     bool // the client gets no answer (a fault)
	}{
		{"RuleAnswer", `[{"respond":{"status":418,"headers":{"x-rule":"tea"},"body":"slow tea","delay":"1m"}}]`, 418, false},
		{"DefaultAnswer", `[{"respond":{"delay":"1m"}}]`, 200, false},
		{"Fault", `[{"respond":{"fault":"close","delay":"1m"}}]`, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rules, err := receiver.ParseRules([]byte(tt.rules))
			if err != nil {
				t.Fatal(err)
			}
			// A grace far shorter than the delay: before, it ran out and
			// the handler gave up without writing.
			srv := start(t, receiver.Config{Store: memstore.New(), Rules: rules, ShutdownGrace: 300 * time.Millisecond})
			type answer struct {
				resp response
				err  error
			}
			got := make(chan answer, 1)
			go func() {
				resp, err := http.Post(srv.URL()+"/slow", "application/json", strings.NewReader(`{}`))
				if err != nil {
					got <- answer{err: err}
					return
				}
				defer resp.Body.Close()
				b, err := io.ReadAll(resp.Body)
				got <- answer{resp: response{status: resp.StatusCode, header: resp.Header, body: b}, err: err}
			}()
			waitCount(t, srv, 1)
			c := only(t, srv)
			begun := time.Now()
			if err := srv.Close(context.Background()); err != nil {
				t.Fatalf("Close: %v", err)
			}
			if took := time.Since(begun); took >= delay/2 {
				t.Errorf("Close took %v, want it not to wait out the %v delay", took, delay)
			}
			a := <-got
			if c.Response.Status != tt.wantStatus {
				t.Errorf("capture's status: got %d, want %d", c.Response.Status, tt.wantStatus)
			}
			if tt.wantErr {
				if a.err == nil {
					t.Errorf("client: got %d %q, want no answer, as the capture's fault %q", a.resp.status, a.resp.body, c.Response.Fault)
				}
				return
			}
			if a.err != nil {
				t.Fatalf("client: %v, want the captured %d %q", a.err, c.Response.Status, c.Response.Body)
			}
			if a.resp.status != c.Response.Status || string(a.resp.body) != c.Response.Body {
				t.Errorf("client got %d %q, capture says %d %q: want the same answer", a.resp.status, a.resp.body, c.Response.Status, c.Response.Body)
			}
			for name, vals := range c.Response.Headers {
				if g := a.resp.header.Values(name); strings.Join(g, ",") != strings.Join(vals, ",") {
					t.Errorf("header %s: client got %q, capture says %q", name, g, vals)
				}
			}
		})
	}
}

// blockingStore holds every Append until release is closed, as a slow
// disk does; entered is closed when the first one begins.
type blockingStore struct {
	receiver.Store
	entered, release chan struct{}
	once             sync.Once
}

func (s *blockingStore) Append(ctx context.Context, c *receiver.Capture) error {
	s.once.Do(func() { close(s.entered) })
	<-s.release
	return s.Store.Append(ctx, c)
}

// TestCloseCutCaptureSaysSo: when the shutdown grace runs out for another
// reason than a delay (a slow store write, a client not reading its
// answer), the connection is cut; the capture then says the answer did
// not reach the client, instead of recording an answer the client never
// got. Close returns only once the capture says so: its store may be
// closed next.
func TestCloseCutCaptureSaysSo(t *testing.T) {
	t.Run("SlowStoreWrite", func(t *testing.T) {
		inner := memstore.New()
		st := &blockingStore{Store: inner, entered: make(chan struct{}), release: make(chan struct{})}
		srv := start(t, receiver.Config{Store: st, ShutdownGrace: 100 * time.Millisecond})
		clientErr := make(chan error, 1)
		go func() {
			resp, err := http.Post(srv.URL()+"/slow", "application/json", strings.NewReader(`{}`))
			if err == nil {
				_, err = io.ReadAll(resp.Body)
				resp.Body.Close()
			}
			clientErr <- err
		}()
		<-st.entered
		closed := make(chan error, 1)
		go func() { closed <- srv.Close(context.Background()) }()
		// The grace runs out with the write still going: the client's
		// connection is cut.
		if err := <-clientErr; err == nil {
			t.Fatalf("client: got an answer, want the connection cut")
		}
		close(st.release)
		if err := <-closed; err != nil {
			t.Fatalf("Close: %v", err)
		}
		c := onlyIn(t, inner)
		if c.Response.Status != 0 || c.Response.Error == "" || c.Response.Body != "" {
			t.Errorf("capture's response: got status %d body %q error %q, want status 0, no body and an error: the client got no answer",
				c.Response.Status, c.Response.Body, c.Response.Error)
		}
	})
	t.Run("ClientNotReading", func(t *testing.T) {
		// An answer far larger than what the sockets buffer: its write
		// waits on a client that reads nothing.
		const size = 32 << 20
		rules := []receiver.Rule{{Respond: receiver.Respond{Status: 200, Body: strings.Repeat("x", size)}}}
		st := memstore.New()
		srv := start(t, receiver.Config{Store: st, Rules: rules, ShutdownGrace: 100 * time.Millisecond})
		conn, err := net.Dial("tcp", srv.Addr())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		if _, err := io.WriteString(conn, "POST /big HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 2\r\n\r\n{}"); err != nil {
			t.Fatal(err)
		}
		waitCount(t, srv, 1)
		if err := srv.Close(context.Background()); err != nil {
			t.Fatalf("Close: %v", err)
		}
		got, _ := io.Copy(io.Discard, conn)
		if got >= size {
			t.Fatalf("client read %d bytes, want fewer than the %d-byte body: the connection cut", got, size)
		}
		c := onlyIn(t, st)
		if c.Response.Error == "" {
			t.Errorf("capture's response: got status %d, no error, after the client got %d of its %d-byte body; want an error saying the answer was cut",
				c.Response.Status, got, size)
		}
	})
}

// onlyIn returns the one capture st holds.
func onlyIn(tb testing.TB, st receiver.Store) receiver.Capture {
	tb.Helper()
	caps, _, err := st.List(context.Background(), receiver.Query{})
	if err != nil {
		tb.Fatal(err)
	}
	if len(caps) != 1 {
		tb.Fatalf("got %d captures, want 1", len(caps))
	}
	return caps[0]
}
