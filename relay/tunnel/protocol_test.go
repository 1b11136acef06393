package tunnel_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/sidehook/sidehook/internal/closetest"
	"github.com/sidehook/sidehook/relay"
	"github.com/sidehook/sidehook/relay/tunnel"
)

// dialRaw opens a tunnel websocket by hand, to play a client that
// misbehaves.
func dialRaw(tb testing.TB, fr *fakeRelay, key string) (*websocket.Conn, *http.Response, error) {
	tb.Helper()
	u := "ws" + strings.TrimPrefix(fr.URL, "http") + tunnel.TunnelPath + "?name=" + testName
	ws, resp, err := websocket.DefaultDialer.Dial(u, http.Header{"Authorization": {"Bearer " + key}})
	if err == nil {
		tb.Cleanup(func() { ws.Close() })
	}
	return ws, resp, err
}

func writeMsg(tb testing.TB, ws *websocket.Conn, m *tunnel.Message) {
	tb.Helper()
	b, err := tunnel.Encode(m)
	if err != nil {
		tb.Fatal(err)
	}
	if err := ws.WriteMessage(websocket.TextMessage, b); err != nil {
		tb.Fatalf("write %s: %v", m.Type, err)
	}
}

func readMsg(tb testing.TB, ws *websocket.Conn) *tunnel.Message {
	tb.Helper()
	ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, data, err := ws.ReadMessage()
	if err != nil {
		tb.Fatalf("read: %v", err)
	}
	m, err := tunnel.Decode(data)
	if err != nil {
		tb.Fatalf("decode %s: %v", data, err)
	}
	return m
}

// rawReady dials and says hello, returning once ready came.
func rawReady(tb testing.TB, fr *fakeRelay) *websocket.Conn {
	tb.Helper()
	ws, _, err := dialRaw(tb, fr, testKey)
	if err != nil {
		tb.Fatal(err)
	}
	writeMsg(tb, ws, &tunnel.Message{Type: tunnel.TypeHello, Version: tunnel.ProtocolVersion})
	if m := readMsg(tb, ws); m.Type != tunnel.TypeReady || m.Org != testOrg || m.Name != testName {
		tb.Fatalf("after hello: got %+v, want ready for %s of %s", m, testName, testOrg)
	}
	fr.waitConnected(tb, 1)
	return ws
}

func TestHalfOpenClient(t *testing.T) {
	opts := fastServer()
	fr := newFakeRelay(t, opts)
	// A client that took a delivery and then stopped reading: it answers
	// no ping, as a laptop asleep or a dead NAT entry would not.
	rawReady(t, fr)

	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := fr.send(ctx, "/", "payment", []byte("{}"))
	if err == nil || ctx.Err() != nil || !strings.Contains(err.Error(), "disconnected before answering") {
		t.Fatalf("Send to a half-open client: got %v, want it cut with its in-flight send failed", err)
	}
	if d := time.Since(start); d > 5*opts.PongWait {
		t.Errorf("half-open client cut after %v, want about PongWait (%v)", d, opts.PongWait)
	}
	if n := len(fr.tunnels().Tunnels(testOrg)); n != 0 {
		t.Errorf("Tunnels after the cut: got %d, want 0", n)
	}

	// The relay's retry goes to a healthy client of the same name.
	a := newApp(t)
	startClient(t, clientConfig(fr.URL, a.URL))
	if _, err := fr.send(context.Background(), "/", "payment", []byte("{}")); err != nil {
		t.Fatalf("retry on a healthy client: %v", err)
	}
	if n := len(a.requests()); n != 1 {
		t.Errorf("healthy client's app got %d requests, want 1", n)
	}
}

func TestHalfOpenRelay(t *testing.T) {
	// The client's side: a relay that stops answering pings is given up
	// within PongWait and dialled again.
	fr := newFakeRelayHandler(t, fastServer())
	a := newApp(t)
	stall := make(chan struct{})
	var stalled atomic.Bool
	inner := fr.handler()
	fr.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == tunnel.TunnelPath && stalled.CompareAndSwap(false, true) {
			// Upgrade, answer the hello, then never read or write again.
			ws := acceptReady(w, r)
			if ws == nil {
				return
			}
			defer ws.Close()
			<-stall
			return
		}
		inner.ServeHTTP(w, r)
	}))
	t.Cleanup(fr.Close)
	t.Cleanup(func() { close(stall) })
	cfg := clientConfig(fr.URL, a.URL)
	cfg.PongWait = 500 * time.Millisecond
	rc := startClient(t, cfg)
	fr.waitConnected(t, 1) // the second dial reached the real tunnel server
	if n := len(rc.out.jsonLines(t, "disconnected")); n != 1 {
		t.Fatalf("disconnected lines: got %d, want 1", n)
	}
	// What happened, not Go's "read tcp A->B: i/o timeout".
	want := "no word from the relay for 500ms"
	if e, _ := rc.out.jsonLines(t, "disconnected")[0]["error"].(string); !strings.Contains(e, want) || strings.Contains(e, "i/o timeout") {
		t.Errorf("disconnected error: got %q, want it to say %q", e, want)
	}
	if _, err := fr.send(context.Background(), "/", "payment", []byte("{}")); err != nil {
		t.Fatalf("Send after the client re-dialled: %v", err)
	}
}

func TestMalformedMessages(t *testing.T) {
	fr := newFakeRelay(t, fastServer())
	ws := rawReady(t, fr)
	bad := []struct {
		name  string
		frame string
		want  string
	}{
		{"NotJSON", `{nope`, "not a JSON message"},
		{"NoType", `{"id":1}`, "no type"},
		{"UnknownType", `{"type":"gossip"}`, "unknown message type"},
		{"BadBase64", `{"type":"result","id":1,"status":200,"body":"!!!"}`, "base64"},
		{"ResultNoID", `{"type":"result","status":200}`, "delivery_id) is required"},
		{"HelloAgain", `{"type":"hello","version":1}`, "unexpected hello"},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			if err := ws.WriteMessage(websocket.TextMessage, []byte(tt.frame)); err != nil {
				t.Fatal(err)
			}
			m := readMsg(t, ws)
			if m.Type != tunnel.TypeError || !strings.Contains(m.Error, tt.want) {
				t.Errorf("answer to %s: got %+v, want an error saying %q", tt.frame, m, tt.want)
			}
		})
	}
	// The connection survived all of that: it still takes a delivery.
	done := make(chan error, 1)
	go func() {
		res, err := fr.send(context.Background(), "/x", "payment", []byte("{}"))
		if err == nil && res.Status != http.StatusTeapot {
			err = errors.New("wrong status")
		}
		done <- err
	}()
	m := readMsg(t, ws)
	if m.Type != tunnel.TypeDelivery || m.Path != "/x" || string(m.Body) != "{}" {
		t.Fatalf("got %+v, want the delivery", m)
	}
	writeMsg(t, ws, &tunnel.Message{Type: tunnel.TypeResult, ID: m.ID, DeliveryID: m.DeliveryID, Status: http.StatusTeapot})
	if err := <-done; err != nil {
		t.Fatalf("Send after malformed messages: %v", err)
	}
}

func TestBadHello(t *testing.T) {
	tests := []struct {
		name  string
		frame string
		want  string
	}{
		{"WrongVersion", `{"type":"hello","version":99}`, "protocol version 99"},
		{"NotHello", `{"type":"result","id":1,"status":200}`, "must be a hello"},
		{"BadEvents", `{"type":"hello","version":1,"events":["NOT AN EVENT"]}`, "not an event type"},
	}
	fr := newFakeRelay(t, fastServer())
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ws, _, err := dialRaw(t, fr, testKey)
			if err != nil {
				t.Fatal(err)
			}
			ws.WriteMessage(websocket.TextMessage, []byte(tt.frame))
			ws.SetReadDeadline(time.Now().Add(5 * time.Second))
			_, _, err = ws.ReadMessage()
			var ce *websocket.CloseError
			if !errors.As(err, &ce) || ce.Code != websocket.ClosePolicyViolation || !strings.Contains(ce.Text, tt.want) {
				t.Errorf("got %v, want a policy-violation close saying %q", err, tt.want)
			}
		})
	}
	if n := len(fr.tunnels().Tunnels("")); n != 0 {
		t.Errorf("Tunnels after bad hellos: got %d, want 0", n)
	}
}

func TestBadNameRefused(t *testing.T) {
	fr := newFakeRelay(t, fastServer())
	u := "ws" + strings.TrimPrefix(fr.URL, "http") + tunnel.TunnelPath + "?name=no/slash"
	_, resp, err := websocket.DefaultDialer.Dial(u, http.Header{"Authorization": {"Bearer " + testKey}})
	if err == nil || resp == nil || resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("dial with a bad name: got %v %v, want 400", resp, err)
	}
}

func TestProbe(t *testing.T) {
	fr := newFakeRelay(t, fastServer())
	ws, _, err := dialRaw(t, fr, testKey)
	if err != nil {
		t.Fatal(err)
	}
	writeMsg(t, ws, &tunnel.Message{Type: tunnel.TypeHello, Version: tunnel.ProtocolVersion, Probe: true})
	if m := readMsg(t, ws); m.Type != tunnel.TypeReady || m.PublicURL != fr.URL+"/in/"+testOrg {
		t.Fatalf("probe: got %+v, want ready with the public URL", m)
	}
	ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, _, err := ws.ReadMessage(); !websocket.IsCloseError(err, websocket.CloseNormalClosure) {
		t.Errorf("after the probe's ready: got %v, want a normal close", err)
	}
	if n := len(fr.tunnels().Tunnels("")); n != 0 {
		t.Errorf("a probe was registered as a client: %d", n)
	}
	select {
	case <-fr.connected:
		t.Errorf("a probe ran onConnect")
	default:
	}
}

func TestCloseCutsSilentClient(t *testing.T) {
	opts := fastServer()
	opts.HelloWait = time.Minute
	fr := newFakeRelay(t, opts)
	ws, _, err := dialRaw(t, fr, testKey)
	if err != nil {
		t.Fatal(err)
	}
	// The upgrade is done before Dial returns; Serve is now waiting for a
	// hello that never comes.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := fr.tunnels().Close(ctx); err != nil {
		t.Fatalf("Close with a client that never said hello: %v", err)
	}
	ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, _, err := ws.ReadMessage(); err == nil {
		t.Errorf("read after Close: got a message, want the connection closed")
	}
}

func TestTunnelRouteErrors(t *testing.T) {
	tests := []struct {
		name       string
		query      string
		upgrade    bool
		closed     bool
		wantStatus int
		wantCode   string
		wantReason string
	}{
		{"NotWebsocket", "?name=" + testName, false, false, http.StatusBadRequest, "not_websocket", "websocket"},
		{"BadName", "?name=no/slash", true, false, http.StatusBadRequest, "invalid_query", `"no/slash"`},
		{"NoName", "", true, false, http.StatusBadRequest, "invalid_query", "name is required"},
		{"ShuttingDown", "?name=" + testName, true, true, http.StatusServiceUnavailable, "shutting_down", "shutting down"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fr := newFakeRelay(t, fastServer())
			if tt.closed {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				if err := fr.tunnels().Close(ctx); err != nil {
					t.Fatal(err)
				}
			}
			req, err := http.NewRequest(http.MethodGet, fr.URL+tunnel.TunnelPath+tt.query, nil)
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Authorization", "Bearer "+testKey)
			if tt.upgrade {
				req.Header.Set("Connection", "Upgrade")
				req.Header.Set("Upgrade", "websocket")
				req.Header.Set("Sec-WebSocket-Version", "13")
				req.Header.Set("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
			}
			resp, err := fr.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var body struct{ Error, Reason string }
			if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
				t.Fatalf("body: %v, want JSON {\"error\",\"reason\"}", err)
			}
			if resp.StatusCode != tt.wantStatus || body.Error != tt.wantCode || !strings.Contains(body.Reason, tt.wantReason) {
				t.Errorf("got %d %+v, want %d %q with a reason saying %q", resp.StatusCode, body, tt.wantStatus, tt.wantCode, tt.wantReason)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type: got %q, want application/json", ct)
			}
		})
	}
}

func TestStopWhileWaitingForReady(t *testing.T) {
	// A relay that takes the hello and is slow to say ready: stopping the
	// client must not wait for its PongWait.
	hello := make(chan struct{}, 1)
	stall := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := (&websocket.Upgrader{}).Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer ws.Close()
		if _, _, err := ws.ReadMessage(); err == nil {
			hello <- struct{}{}
		}
		<-stall
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(stall) })
	cfg := clientConfig(srv.URL, "http://127.0.0.1:1")
	cfg.PongWait = time.Minute
	c, err := tunnel.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	stopsOnCancel(t, c, hello, "the client's hello", "ready")
}

// stopsOnCancel runs c until reached says it got to the step named what,
// cancels it, and checks that Run returns nil at once rather than go on
// waiting for waitedFor.
func stopsOnCancel(t *testing.T, c *tunnel.Client, reached <-chan struct{}, what, waitedFor string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	select {
	case <-reached:
	case <-time.After(10 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run after cancel: got %v, want nil", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("Run still waiting for %s 5s after cancel, want it to stop at once", waitedFor)
	}
}

// TestStopWhileWaitingForUpgrade: a relay that took the connection and
// does not answer the upgrade (hung, or a proxy in the way): stopping the
// client must not wait for the dialer's 15 s handshake timeout.
func TestStopWhileWaitingForUpgrade(t *testing.T) {
	relayURL, asked := closetest.Hanging(t)
	c, err := tunnel.NewClient(clientConfig(relayURL, "http://127.0.0.1:1"))
	if err != nil {
		t.Fatal(err)
	}
	stopsOnCancel(t, c, asked, "the client's upgrade request", "the upgrade")
}

func TestClientShowsRelayReason(t *testing.T) {
	fr := newFakeRelay(t, fastServer())
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := fr.tunnels().Close(ctx); err != nil {
		t.Fatal(err)
	}
	out := runClient(t, clientConfig(fr.URL, "http://127.0.0.1:1"))
	out.wait(t, "a connect_failed line", func() bool { return len(out.jsonLines(t, "connect_failed")) > 0 })
	got := out.jsonLines(t, "connect_failed")[0]["error"].(string)
	if !strings.Contains(got, "HTTP 503: the relay is shutting down") || strings.Contains(got, `"reason"`) {
		t.Errorf("connect_failed line: got %q, want the relay's reason, not its JSON", got)
	}
}

// TestRetryLines: a dial that never got to ready (the relay down, an error
// status, an error instead of ready) is printed as connect_failed, a
// connection that was ready and is lost as disconnected, so a program
// reading --json tells "not connected yet" from "connection lost"; the
// text lines say the same. Each case's relay behaves the same on every
// dial, so no line of the other kind may appear while the client retries.
func TestRetryLines(t *testing.T) {
	// upgrade accepts the websocket, reads the hello and sends first.
	upgrade := func(first *tunnel.Message) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			ws, err := (&websocket.Upgrader{}).Upgrade(w, r, nil)
			if err != nil {
				return
			}
			defer ws.Close()
			ws.ReadMessage()
			b, _ := tunnel.Encode(first)
			ws.WriteMessage(websocket.TextMessage, b)
		}
	}
	tests := []struct {
		name     string
		relay    http.HandlerFunc // nil: nothing listens
		wantType string
		wantText string
		wantErr  string
	}{
		// Said once, with what to check, not Go's "dial HOST: dial tcp
		// HOST: connect: connection refused".
		{"Refused", nil, "connect_failed", "cannot connect: ", "connection refused (is the relay running on 127.0.0.1:"},
		{"ShuttingDown", func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, `{"error":"unavailable","reason":"the relay is shutting down"}`, http.StatusServiceUnavailable)
		}, "connect_failed", "cannot connect: ", "HTTP 503: the relay is shutting down"},
		{"ErrorBeforeReady", upgrade(&tunnel.Message{Type: tunnel.TypeError, Error: "busy"}),
			"connect_failed", "cannot connect: ", "the relay says: busy"},
		{"LostAfterReady", upgrade(&tunnel.Message{Type: tunnel.TypeReady, Version: tunnel.ProtocolVersion, Org: testOrg, Name: testName}),
			// No close frame, the socket just gone (a relay killed): not
			// "the relay closed the tunnel: unexpected EOF".
			"disconnected", "disconnected: ", "the connection to the relay was cut without a close (the relay stopped, or the network)"},
	}
	other := map[string]string{"connect_failed": "disconnected", "disconnected": "connect_failed"}
	for _, tt := range tests {
		relayURL := func(t *testing.T) string {
			if tt.relay == nil {
				// A port that was free a moment ago: the dial is refused.
				ln, err := net.Listen("tcp", "127.0.0.1:0")
				if err != nil {
					t.Fatal(err)
				}
				ln.Close()
				return "http://" + ln.Addr().String()
			}
			srv := httptest.NewServer(tt.relay)
			t.Cleanup(srv.Close)
			return srv.URL
		}
		t.Run(tt.name+"/JSON", func(t *testing.T) {
			out := runClient(t, clientConfig(relayURL(t), "http://127.0.0.1:1"))
			// Two lines: the second comes after a retry, which must be
			// reported alike.
			out.wait(t, "two "+tt.wantType+" lines", func() bool { return len(out.jsonLines(t, tt.wantType)) >= 2 })
			if n := len(out.jsonLines(t, other[tt.wantType])); n != 0 {
				t.Errorf("%s lines: got %d, want 0", other[tt.wantType], n)
			}
			l := out.jsonLines(t, tt.wantType)[0]
			if e, _ := l["error"].(string); !strings.Contains(e, tt.wantErr) {
				t.Errorf("error: got %q, want it to say %q", e, tt.wantErr)
			}
			if s, _ := l["retry_in_s"].(float64); s <= 0 {
				t.Errorf("retry_in_s: got %v, want the wait before the next dial", l["retry_in_s"])
			}
		})
		t.Run(tt.name+"/Text", func(t *testing.T) {
			cfg := clientConfig(relayURL(t), "http://127.0.0.1:1")
			cfg.JSON = false
			out := runClient(t, cfg)
			var retries []string
			out.wait(t, "two retry lines", func() bool {
				retries = retries[:0]
				for _, l := range out.all() {
					if strings.Contains(l, "; retrying in ") {
						retries = append(retries, l)
					}
				}
				return len(retries) >= 2
			})
			for _, l := range retries {
				if !strings.HasPrefix(l, tt.wantText) || !strings.Contains(l, tt.wantErr) {
					t.Errorf("retry line: got %q, want it to start %q and say %q", l, tt.wantText, tt.wantErr)
				}
			}
		})
	}
}

// TestSpecClientResult: a client written to SPEC §8 answers with
// delivery_id alone; the result reaches its Send when that delivery id is
// the only one in flight, and is refused, with an error message, when it
// names none.
// TestFlappingRelayBacksOff: a relay (or a proxy before it) that says
// ready and drops the connection at once, every time, is dialled with a
// growing wait, not hammered at the shortest one: only a connection that
// held starts the backoff over.
func TestFlappingRelayBacksOff(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if ws := acceptReady(w, r); ws != nil {
			ws.Close()
		}
	}))
	t.Cleanup(srv.Close)
	cfg := clientConfig(srv.URL, "http://127.0.0.1:1")
	// A dial and a ready take a few ms: well under the shortest wait.
	cfg.BackoffMin, cfg.BackoffMax = 50*time.Millisecond, 5*time.Second
	out := runClient(t, cfg)
	out.wait(t, "five disconnected lines", func() bool { return len(out.jsonLines(t, "disconnected")) >= 5 })
	lines := out.jsonLines(t, "disconnected")
	first, fifth := lines[0]["retry_in_s"].(float64), lines[4]["retry_in_s"].(float64)
	// 50 ms·2⁴ ±20% against 50 ms ±20%: at least 8 times longer.
	if fifth < 8*first {
		t.Errorf("waits after 1 and 5 lost connections: %vs and %vs, want the fifth at least 8 times the first", first, fifth)
	}
}

func TestSpecClientResult(t *testing.T) {
	fr := newFakeRelay(t, fastServer())
	ws := rawReady(t, fr)
	type sent struct {
		res *relay.Response
		err error
	}
	done := make(chan sent, 1)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	go func() {
		res, err := fr.send(ctx, "/", "payment", []byte("{}"))
		done <- sent{res, err}
	}()
	d := readMsg(t, ws)
	if d.Type != tunnel.TypeDelivery || d.DeliveryID != "dlv_1" {
		t.Fatalf("got %+v, want the delivery dlv_1", d)
	}
	writeMsg(t, ws, &tunnel.Message{Type: tunnel.TypeResult, DeliveryID: "dlv_other", Status: 200})
	if m := readMsg(t, ws); m.Type != tunnel.TypeError || !strings.Contains(m.Error, "dlv_other") {
		t.Fatalf("a result for no delivery in flight: got %+v, want an error naming it", m)
	}
	writeMsg(t, ws, &tunnel.Message{Type: tunnel.TypeResult, DeliveryID: "dlv_1", Status: 201})
	if s := <-done; s.err != nil || s.res.Status != 201 {
		t.Fatalf("Send: got %+v, %v; want the client's 201", s.res, s.err)
	}
}

// TestLateResultIsTold: a result that reaches the relay after it stopped
// waiting is not silently dropped: the client, which has printed the
// app's answer, is told the relay recorded no answer and retries.
func TestLateResultIsTold(t *testing.T) {
	fr := newFakeRelay(t, fastServer())
	ws := rawReady(t, fr)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		_, err := fr.send(ctx, "/", "payment", []byte("{}"))
		done <- err
	}()
	d := readMsg(t, ws)
	if d.Type != tunnel.TypeDelivery {
		t.Fatalf("got %+v, want a delivery", d)
	}
	cancel() // the relay stops waiting, as at the endpoint's timeout
	if err := <-done; err == nil {
		t.Fatal("Send after its context ended: got no error")
	}
	writeMsg(t, ws, &tunnel.Message{Type: tunnel.TypeResult, ID: d.ID, DeliveryID: d.DeliveryID, Status: 200})
	if m := readMsg(t, ws); m.Type != tunnel.TypeError || !strings.Contains(m.Error, d.DeliveryID) || !strings.Contains(m.Error, "retried") {
		t.Fatalf("a late result: got %+v, want an error naming the delivery and the retry", m)
	}
}

// TestMaxClientsPerOrg: one organisation's API key cannot hold more than
// its share of a relay's connections (each costs buffers and goroutines
// every organisation shares); another organisation still connects, and a
// closed connection frees its place.
func TestMaxClientsPerOrg(t *testing.T) {
	opts := fastServer()
	opts.MaxClientsPerOrg = 2
	srv := tunnel.NewServer(opts)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Close(ctx)
	})
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		srv.Serve(w, r, r.URL.Query().Get("org"), testName, nil)
	}))
	t.Cleanup(hs.Close)
	dial := func(org string) (*websocket.Conn, *http.Response, error) {
		ws, resp, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(hs.URL, "http")+"/?org="+org, nil)
		if err == nil {
			t.Cleanup(func() { ws.Close() })
		}
		return ws, resp, err
	}
	var first *websocket.Conn
	for i := range 2 {
		ws, _, err := dial("acme")
		if err != nil {
			t.Fatalf("connection %d: %v", i+1, err)
		}
		if i == 0 {
			first = ws
		}
	}
	_, resp, err := dial("acme")
	if err == nil || resp == nil || resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("third connection of one organisation: got %v, %v; want 429", resp, err)
	}
	if _, _, err := dial("other"); err != nil {
		t.Fatalf("another organisation: got %v, want connected", err)
	}
	first.Close()
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, resp, err := dial("acme")
		if err == nil {
			break
		}
		if resp == nil || resp.StatusCode != http.StatusTooManyRequests || time.Now().After(deadline) {
			t.Fatalf("after closing one: got %v, %v; want a place freed", resp, err)
		}
	}
}

// TestClientReadsWhatReadyAnnounces: a client given no limit of its own
// states none in its hello and reads up to the max_message of the relay's
// ready, whatever that is: above DefaultMaxMessage for a relay whose
// limits.max_body needs it, below here, where a relay that breaks its
// word is cut with 1009 (message too big).
func TestClientReadsWhatReadyAnnounces(t *testing.T) {
	const announced = 4 << 10
	type seen struct {
		helloMax int64
		code     int
		err      error
	}
	got := make(chan seen, 1)
	var served atomic.Bool
	up := websocket.Upgrader{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != tunnel.TunnelPath || served.Swap(true) {
			http.Error(w, `{"error":"unavailable","reason":"once only"}`, http.StatusServiceUnavailable)
			return
		}
		ws, err := up.Upgrade(w, r, nil)
		if err != nil {
			got <- seen{err: err}
			return
		}
		defer ws.Close()
		ws.SetReadDeadline(time.Now().Add(5 * time.Second))
		var s seen
		_, data, err := ws.ReadMessage()
		hello, derr := tunnel.Decode(data)
		if err != nil || derr != nil {
			got <- seen{err: errors.Join(err, derr)}
			return
		}
		s.helloMax = hello.MaxMessage
		for _, m := range []*tunnel.Message{
			{Type: tunnel.TypeReady, Version: tunnel.ProtocolVersion, Org: testOrg, Name: testName, MaxMessage: announced},
			{Type: tunnel.TypeDelivery, ID: 1, DeliveryID: "dlv_big", Method: http.MethodPost, Path: "/", Body: make([]byte, 2*announced)},
		} {
			b, _ := tunnel.Encode(m)
			if err := ws.WriteMessage(websocket.TextMessage, b); err != nil {
				got <- seen{err: err}
				return
			}
		}
		_, _, err = ws.ReadMessage()
		var ce *websocket.CloseError
		if errors.As(err, &ce) {
			s.code = ce.Code
		} else {
			s.err = err
		}
		got <- s
	}))
	t.Cleanup(srv.Close)
	a := newApp(t)
	startClient(t, clientConfig(srv.URL, a.URL))
	var s seen
	select {
	case s = <-got:
	case <-time.After(10 * time.Second):
		t.Fatal("timed out waiting for the client to read the delivery")
	}
	if s.err != nil {
		t.Fatal(s.err)
	}
	if s.helloMax != 0 {
		t.Errorf("hello: got max_message %d, want none (the client reads what ready announces)", s.helloMax)
	}
	if s.code != websocket.CloseMessageTooBig {
		t.Errorf("a delivery over the announced %d bytes: got close code %d, want %d (too big)", announced, s.code, websocket.CloseMessageTooBig)
	}
	if n := len(a.requests()); n != 0 {
		t.Errorf("the app got %d requests, want none", n)
	}
}

// TestDeliveryBodyNotCopied: the relay writes a delivery's body as base64
// straight into the websocket. It used to encode the whole frame first
// (json's base64 of the body, its growing buffer, the copy out: 27 MiB
// allocated for this 4 MiB body), and 16 deliveries of 10 MiB in flight
// took the heap to 750 MiB; now 11 MiB, the body's 10 and little more.
func TestDeliveryBodyNotCopied(t *testing.T) {
	const size = 4 << 20
	opts := fastServer()
	opts.MaxBody = size
	fr := newFakeRelay(t, opts)
	ws := rawReady(t, fr)
	// The client reads each delivery's id from its start and the rest
	// into io.Discard, so what is allocated is the relay's.
	idRe := regexp.MustCompile(`"id":(\d+)`)
	go func() {
		head := make([]byte, 1024)
		for {
			_, r, err := ws.NextReader()
			if err != nil {
				return
			}
			n, _ := io.ReadFull(r, head)
			io.Copy(io.Discard, r)
			m := idRe.FindSubmatch(head[:n])
			if m == nil {
				continue
			}
			id, _ := strconv.ParseUint(string(m[1]), 10, 64)
			b, _ := tunnel.Encode(&tunnel.Message{Type: tunnel.TypeResult, ID: id, Status: http.StatusOK})
			if ws.WriteMessage(websocket.TextMessage, b) != nil {
				return
			}
		}
	}()
	body := bytes.Repeat([]byte("x"), size)
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	if _, err := fr.send(context.Background(), "/", "payment", body); err != nil {
		t.Fatal(err)
	}
	runtime.ReadMemStats(&after)
	if got := after.TotalAlloc - before.TotalAlloc; got > size/4 {
		t.Errorf("a delivery of a %d MiB body allocated %.1f MiB, want well under the body's size", size>>20, float64(got)/(1<<20))
	}
}

// acceptReady plays a relay's side of a connect: it upgrades, reads the
// hello and answers ready. nil: the upgrade failed.
func acceptReady(w http.ResponseWriter, r *http.Request) *websocket.Conn {
	ws, err := (&websocket.Upgrader{}).Upgrade(w, r, nil)
	if err != nil {
		return nil
	}
	ws.ReadMessage()
	b, _ := tunnel.Encode(&tunnel.Message{Type: tunnel.TypeReady, Version: tunnel.ProtocolVersion, Org: testOrg, Name: testName})
	ws.WriteMessage(websocket.TextMessage, b)
	return ws
}
