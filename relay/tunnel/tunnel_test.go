package tunnel_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sidehook/sidehook/relay"
	"github.com/sidehook/sidehook/relay/tunnel"
)

func TestDeliveryRoundTrip(t *testing.T) {
	fr := newFakeRelay(t, fastServer())
	a := newApp(t)
	a.answerWith(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-App", "yes")
		w.WriteHeader(http.StatusAccepted)
		io.WriteString(w, `{"ok":true}`)
	})
	rc := startClient(t, clientConfig(fr.URL, a.URL+"/base"))

	// Not valid UTF-8, and JSON whose spacing a re-encoder would change:
	// the app must get these exact bytes.
	body := []byte("{ \"type\" : \"payment\",\n \"x\":\"\xff\xfe\" }")
	h := http.Header{"Content-Type": {"application/json"}, "Sidehook-Event": {"payment"}, "Webhook-Id": {"evt_1"},
		"X-Webio-Token": {"tok.en.sig"}, "Webhook-Signature": {"v1,abc v1,def"}}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	res, err := fr.tunnels().Send(ctx, &relay.OutboundRequest{Method: http.MethodPost, URL: "tunnel://" + testName + "/hooks/in?x=1&y=%20",
		Header: h, Body: body, Org: testOrg, DeliveryID: "dlv_9", Attempt: 3}, 4096)
	if err != nil {
		t.Fatalf("Send: %v", err)
	}
	if res.Status != http.StatusAccepted || res.Header.Get("X-App") != "yes" || string(res.Body) != `{"ok":true}` {
		t.Errorf("response: got %d %v %q, want 202 with X-App and the app's body", res.Status, res.Header, res.Body)
	}
	if res.Latency <= 0 {
		t.Errorf("latency: got %v, want > 0", res.Latency)
	}
	got := a.requests()
	if len(got) != 1 {
		t.Fatalf("app got %d requests, want 1", len(got))
	}
	r := got[0]
	if r.Method != http.MethodPost || r.Path != "/base/hooks/in" || r.Query != "x=1&y=%20" {
		t.Errorf("request line: got %s %s?%s, want POST /base/hooks/in?x=1&y=%%20", r.Method, r.Path, r.Query)
	}
	if !bytes.Equal(r.Body, body) {
		t.Errorf("body: got %q, want the exact bytes %q", r.Body, body)
	}
	for k, v := range h {
		if got := r.Header.Values(k); strings.Join(got, "|") != strings.Join(v, "|") {
			t.Errorf("header %s: got %q, want %q", k, got, v)
		}
	}
	rc.out.wait(t, "the delivery line", func() bool { return len(rc.out.jsonLines(t, "delivery")) == 1 })
	line := rc.out.jsonLines(t, "delivery")[0]
	if line["event"] != "payment" || line["status"] != float64(202) || line["attempt"] != float64(3) || line["delivery_id"] != "dlv_9" {
		t.Errorf("delivery line: got %v, want payment 202 attempt 3 dlv_9", line)
	}
}

// TestResultLostWithConnection: the app answers after the connection that
// brought the delivery is gone, so its answer never reaches the relay,
// which records no answer and sends the delivery again. The line says so,
// rather than a bare 200 the developer then sees twice.
func TestResultLostWithConnection(t *testing.T) {
	fr := newFakeRelay(t, fastServer())
	a := newApp(t)
	arrived, release := make(chan struct{}, 1), make(chan struct{})
	var once sync.Once
	unblock := func() { once.Do(func() { close(release) }) }
	t.Cleanup(unblock)
	a.answerWith(func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		<-release
		io.WriteString(w, `{"ok":true}`)
	})
	rc := startClient(t, clientConfig(fr.URL, a.URL))
	fr.waitConnected(t, 1)
	sent := make(chan error, 1)
	go func() {
		_, err := fr.send(context.Background(), "/", "payment", []byte("{}"))
		sent <- err
	}()
	select {
	case <-arrived:
	case <-time.After(10 * time.Second):
		t.Fatal("the delivery never reached the app")
	}
	old := fr.srv.Swap(tunnel.NewServer(fastServer()))
	if err := old.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := <-sent; err == nil {
		t.Fatal("Send over a connection closed mid-flight: got no error, want the relay to retry")
	}
	rc.out.wait(t, "the disconnected line", func() bool { return len(rc.out.jsonLines(t, "disconnected")) > 0 })
	unblock()
	rc.out.wait(t, "the delivery line", func() bool { return len(rc.out.jsonLines(t, "delivery")) == 1 })
	line := rc.out.jsonLines(t, "delivery")[0]
	if line["status"] != float64(200) || line["result_lost"] != true {
		t.Errorf("delivery line: got %v, want status 200 and result_lost", line)
	}
}

func TestReadyLine(t *testing.T) {
	fr := newFakeRelay(t, fastServer())
	a := newApp(t)
	cfg := clientConfig(fr.URL, a.URL)
	cfg.Events = []string{"payment"}
	rc := startClient(t, cfg)
	ready := rc.out.jsonLines(t, "ready")[0]
	want := map[string]any{"name": testName, "org": testOrg, "public_url": fr.URL + "/in/" + testOrg, "jwks_url": fr.URL + "/.well-known/jwks.json", "forward": a.URL}
	for k, v := range want {
		if ready[k] != v {
			t.Errorf("ready %s: got %v, want %v", k, ready[k], v)
		}
	}
	eps, _ := ready["endpoints"].([]any)
	if len(eps) != 1 || !strings.Contains(fmt.Sprint(eps[0]), "webio-token") || !strings.Contains(fmt.Sprint(eps[0]), "jwks.json") {
		t.Errorf("ready endpoints: got %v, want crm with its webio-token and jwt hints", eps)
	}
	if fmt.Sprint(ready["events"]) != "[payment]" {
		t.Errorf("ready events: got %v, want [payment]", ready["events"])
	}
}

func TestReadyLineDisabledEndpoint(t *testing.T) {
	// An endpoint that answered 410 is disabled: the tunnel connects, and
	// nothing comes until the developer enables it again.
	fr := newFakeRelay(t, fastServer())
	fr.endpoints = `{"endpoints":[{"id":"crm","url":"tunnel://` + testName + `/hooks","events":["*"],"auth":[],"enabled":false,` +
		`"disabled_reason":"answered 410 Gone"},{"id":"values","url":"tunnel://` + testName + `/values","events":["custom_value_request"],"auth":[],"enabled":true}]}`
	a := newApp(t)
	rc := startClient(t, clientConfig(fr.URL, a.URL))
	ready := rc.out.jsonLines(t, "ready")[0]
	warning, _ := ready["warning"].(string)
	if !strings.Contains(warning, "endpoint crm is disabled (answered 410 Gone)") || !strings.Contains(warning, "PUT /v1/endpoints/crm") || strings.Contains(warning, "values") {
		t.Errorf("ready warning: got %q, want crm named disabled with its reason and how to enable it", warning)
	}
}

// TestReadyLineEventsFilter: an --events filter that takes none of an
// endpoint's event types (a typo, "payments") is said at once, not left
// to a silence the developer cannot tell from no events; an endpoint the
// filter takes is not named.
func TestReadyLineEventsFilter(t *testing.T) {
	fr := newFakeRelay(t, fastServer())
	fr.endpoints = `{"endpoints":[{"id":"crm","url":"tunnel://` + testName + `/hooks","events":["payment","message_send"],"auth":[]},` +
		`{"id":"values","url":"tunnel://` + testName + `/values","events":["custom_value_request"],"auth":[]},` +
		`{"id":"all","url":"tunnel://` + testName + `/all","events":["*"],"auth":[]}]}`
	a := newApp(t)
	tests := []struct {
		name   string
		events []string
		want   string // "" for no warning
	}{
		{"TakesSome", []string{"payment"}, `--events payment takes none of the events of endpoint values (custom_value_request): its deliveries wait for a client that takes them`},
		{"Typo", []string{"payments"}, "--events payments takes none of the events of endpoint crm (payment, message_send)"},
		{"Wildcard", []string{"*"}, ""},
		{"All", nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := clientConfig(fr.URL, a.URL)
			cfg.Events = tt.events
			rc := startClient(t, cfg)
			warning, _ := rc.out.jsonLines(t, "ready")[0]["warning"].(string)
			if tt.want == "" && warning != "" || !strings.Contains(warning, tt.want) {
				t.Errorf("ready warning: got %q, want %q", warning, tt.want)
			}
			if strings.Contains(warning, "endpoint all") {
				t.Errorf("ready warning %q names endpoint all, which takes every type", warning)
			}
		})
	}
}

func TestReadyLineText(t *testing.T) {
	fr := newFakeRelay(t, fastServer())
	fr.endpoints = `{"endpoints":[{"id":"other","url":"http://example.com","events":["*"],"auth":[]}]}`
	a := newApp(t)
	out := newLines()
	cfg := clientConfig(fr.URL, a.URL)
	cfg.Stdout = out
	cfg.JSON = false
	c, err := tunnel.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	out.wait(t, "the ready line", func() bool { return strings.HasPrefix(out.all()[0], "ready") })
	out.wait(t, "the whole ready text", func() bool { return strings.Contains(strings.Join(out.all(), "\n"), "warning") })
	text := strings.Join(out.all(), "\n")
	for _, want := range []string{"POST " + fr.URL + "/in/" + testOrg, "no endpoint of acme has url tunnel://laptop"} {
		if !strings.Contains(text, want) {
			t.Errorf("ready text %q lacks %q", text, want)
		}
	}
}

func TestSendNoClient(t *testing.T) {
	fr := newFakeRelay(t, fastServer())
	start := time.Now()
	_, err := fr.send(context.Background(), "/", "payment", []byte("{}"))
	if !isNoClient(err) || !strings.Contains(err.Error(), "no tunnel client connected for "+testName) {
		t.Fatalf("Send with no client: got %v, want ErrNoClient naming the tunnel", err)
	}
	if time.Since(start) > time.Second {
		t.Errorf("Send with no client took %v, want at once", time.Since(start))
	}
}

func TestSendLocalAnswers(t *testing.T) {
	tests := []struct {
		name       string
		answer     http.HandlerFunc
		wantStatus int
		wantBody   int
		truncated  bool
	}{
		{"ServerError", func(w http.ResponseWriter, r *http.Request) { http.Error(w, "boom", 500) }, 500, len("boom\n"), false},
		{"NotFound", func(w http.ResponseWriter, r *http.Request) { http.NotFound(w, r) }, 404, len("404 page not found\n"), false},
		{"Redirect", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/elsewhere", http.StatusFound) }, 302, -1, false},
		{"OversizeCut", func(w http.ResponseWriter, r *http.Request) { w.Write(bytes.Repeat([]byte("a"), 100<<10)) }, 200, tunnel.MaxResultBody, true},
		{"ExactlyMax", func(w http.ResponseWriter, r *http.Request) { w.Write(bytes.Repeat([]byte("a"), tunnel.MaxResultBody)) }, 200, tunnel.MaxResultBody, false},
	}
	fr := newFakeRelay(t, fastServer())
	a := newApp(t)
	rc := startClient(t, clientConfig(fr.URL, a.URL))
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a.answerWith(tt.answer)
			res, err := fr.send(context.Background(), "/", "payment", []byte("{}"))
			if err != nil {
				t.Fatalf("Send: got %v, want a response (the relay applies its retry rules to it)", err)
			}
			if res.Status != tt.wantStatus {
				t.Errorf("status: got %d, want %d", res.Status, tt.wantStatus)
			}
			if tt.wantBody >= 0 && len(res.Body) != tt.wantBody {
				t.Errorf("body: got %d bytes, want %d", len(res.Body), tt.wantBody)
			}
			rc.out.wait(t, "the delivery line", func() bool { return len(rc.out.jsonLines(t, "delivery")) == i+1 })
			line := rc.out.jsonLines(t, "delivery")[i]
			if got := line["truncated"] == true; got != tt.truncated {
				t.Errorf("line says truncated %v, want %v: %v", got, tt.truncated, line)
			}
		})
	}
}

func TestSendKeepCutsBody(t *testing.T) {
	fr := newFakeRelay(t, fastServer())
	a := newApp(t)
	startClient(t, clientConfig(fr.URL, a.URL))
	res, err := fr.tunnels().Send(context.Background(), &relay.OutboundRequest{Method: http.MethodPost, URL: "tunnel://" + testName,
		Header: http.Header{}, Body: []byte("x"), Org: testOrg}, 4)
	if err != nil {
		t.Fatal(err)
	}
	if string(res.Body) != `{"ok` || !res.Truncated {
		t.Errorf("body with keep 4: got %q truncated %v, want %q truncated", res.Body, res.Truncated, `{"ok`)
	}
	res, err = fr.tunnels().Send(context.Background(), &relay.OutboundRequest{Method: http.MethodPost, URL: "tunnel://" + testName,
		Header: http.Header{}, Body: []byte("x"), Org: testOrg}, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Body) == 0 || res.Truncated {
		t.Errorf("body with keep 1 MiB: got %q truncated %v, want it whole", res.Body, res.Truncated)
	}
}

// TestSendOverClientLimit: a delivery bigger than the client reads fails
// its attempt saying why and what changes it, in the relay's error and on
// the client's line for that delivery, and the connection, with whatever
// else is in flight on it, carries on (it used to be cut at each retry of
// that delivery). A client that states no limit reads what the relay's
// ready announces, a frame that holds a body of its limits.max_body: such
// a body goes through, and only a larger one (an event taken under a
// higher max_body) fails.
func TestSendOverClientLimit(t *testing.T) {
	tests := []struct {
		name       string
		maxBody    int64 // the relay's limits.max_body
		maxMessage int64 // the client's own limit; 0: the relay's
		fits, over int   // a body that goes through, one that does not
		want       []string
	}{
		{"ClientMaxMessage", 0, 64 << 10, 2, 100 << 10,
			[]string{"not sent", "body of 100 KiB", "over the 64 KiB this tunnel client reads", "max_message"}},
		{"RelayMaxBody", 32 << 10, 0, 32 << 10, 1 << 20,
			[]string{"not sent", "body of 1.0 MiB", "limits.max_body of 32 KiB"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := fastServer()
			opts.MaxBody = tt.maxBody
			fr := newFakeRelay(t, opts)
			a := newApp(t)
			cfg := clientConfig(fr.URL, a.URL)
			cfg.MaxMessage = tt.maxMessage
			rc := startClient(t, cfg)
			_, err := fr.send(context.Background(), "/", "payment", bytes.Repeat([]byte("a"), tt.over))
			for _, want := range tt.want {
				if err == nil || !strings.Contains(err.Error(), want) {
					t.Fatalf("Send of %d bytes: got %v, want an error saying %q", tt.over, err, want)
				}
			}
			// The developer at the client sees why the delivery never
			// reached the app, on the delivery's own line.
			rc.out.wait(t, "the line of the delivery not sent", func() bool { return len(rc.out.jsonLines(t, "delivery")) == 1 })
			if line := rc.out.jsonLines(t, "delivery")[0]; line["delivery_id"] != "dlv_1" || line["status"] != float64(0) ||
				!strings.Contains(fmt.Sprint(line["error"]), tt.want[len(tt.want)-1]) {
				t.Errorf("line of the delivery not sent: got %v, want dlv_1 with status 0 and the reason", line)
			}
			if _, err := fr.send(context.Background(), "/", "payment", bytes.Repeat([]byte("a"), tt.fits)); err != nil {
				t.Fatalf("Send of %d bytes after it: got %v, want the answer", tt.fits, err)
			}
			for _, typ := range []string{"disconnected", "connect_failed"} {
				if got := rc.out.jsonLines(t, typ); len(got) > 0 {
					t.Errorf("got %v, want the connection kept", got)
				}
			}
			if got := a.requests(); len(got) != 1 || len(got[0].Body) != tt.fits {
				t.Errorf("the app got %d requests, want 1 of %d bytes", len(got), tt.fits)
			}
		})
	}
}

func TestSendAppDown(t *testing.T) {
	fr := newFakeRelay(t, fastServer())
	a := newApp(t)
	rc := startClient(t, clientConfig(fr.URL, a.URL))
	a.Close()
	res, err := fr.send(context.Background(), "/", "payment", []byte("{}"))
	if err == nil || !strings.Contains(err.Error(), "local app") || !strings.Contains(err.Error(), "connection refused") {
		t.Fatalf("Send to a stopped app: got %v, want an error from the local app (a refused connection, retried)", err)
	}
	if res == nil || res.Latency <= 0 {
		t.Errorf("Send to a stopped app: got response %+v, want one with the attempt's latency", res)
	}
	rc.out.wait(t, "the delivery line", func() bool { return len(rc.out.jsonLines(t, "delivery")) == 1 })
	if line := rc.out.jsonLines(t, "delivery")[0]; line["status"] != float64(0) || line["error"] == nil {
		t.Errorf("delivery line: got %v, want status 0 with the error", line)
	}
}

func TestSendTimeout(t *testing.T) {
	fr := newFakeRelay(t, fastServer())
	a := newApp(t)
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	a.answerWith(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	startClient(t, clientConfig(fr.URL, a.URL))
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	res, err := fr.send(ctx, "/", "payment", []byte("{}"))
	// Either end may see the deadline first: the relay's context, or the
	// client's forward, which is given the same timeout.
	if !errors.Is(err, context.DeadlineExceeded) && (err == nil || !strings.Contains(err.Error(), "did not answer within the endpoint's timeout")) {
		t.Fatalf("Send to a slow app: got %v, want the endpoint timeout", err)
	}
	// The client gives the app a tenth less than the relay's 200ms.
	if res == nil || res.Latency < 150*time.Millisecond {
		t.Errorf("Send to a slow app: got response %+v, want one with the latency of the timeout", res)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Send to a slow app took %v, want about the 200ms timeout", d)
	}
}

func TestEventsFilter(t *testing.T) {
	fr := newFakeRelay(t, fastServer())
	a := newApp(t)
	cfg := clientConfig(fr.URL, a.URL)
	cfg.Events = []string{"payment", "delivery_report"}
	startClient(t, cfg)
	if _, err := fr.send(context.Background(), "/", "payment", []byte("{}")); err != nil {
		t.Errorf("payment: got %v, want delivered", err)
	}
	_, err := fr.send(context.Background(), "/", "inbound_message", []byte("{}"))
	if !isNoClient(err) || !strings.Contains(err.Error(), `takes event "inbound_message"`) {
		t.Errorf("inbound_message: got %v, want ErrNoClient saying no client takes it", err)
	}
	if n := len(a.requests()); n != 1 {
		t.Errorf("app got %d requests, want 1 (the payment)", n)
	}
}

func TestTwoClientsShare(t *testing.T) {
	fr := newFakeRelay(t, fastServer())
	a := newApp(t)
	one := startClient(t, clientConfig(fr.URL, a.URL))
	two := startClient(t, clientConfig(fr.URL, a.URL))
	if n := len(fr.tunnels().Tunnels(testOrg)); n != 2 {
		t.Fatalf("Tunnels: got %d clients, want 2", n)
	}
	const n = 100
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			h := http.Header{"Sidehook-Event": {"payment"}, "Sidehook-Delivery": {fmt.Sprint("dlv_", i)}}
			_, err := fr.tunnels().Send(context.Background(), &relay.OutboundRequest{Method: http.MethodPost, URL: "tunnel://" + testName,
				Header: h, Body: []byte("{}"), Org: testOrg, DeliveryID: fmt.Sprint("dlv_", i), Attempt: 1}, 4096)
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("Send: %v", err)
		}
	}
	seen := map[string]int{}
	for _, r := range a.requests() {
		seen[r.Header.Get("Sidehook-Delivery")]++
	}
	if len(seen) != n {
		t.Errorf("app saw %d distinct deliveries, want %d", len(seen), n)
	}
	for id, c := range seen {
		if c != 1 {
			t.Errorf("delivery %s reached the app %d times, want once", id, c)
		}
	}
	// A line is printed after its result is sent, so after Send returns.
	count := func() (int, int) { return len(one.out.jsonLines(t, "delivery")), len(two.out.jsonLines(t, "delivery")) }
	one.out.wait(t, "every delivery line", func() bool { l1, l2 := count(); return l1+l2 >= n })
	l1, l2 := count()
	if l1+l2 != n || l1 == 0 || l2 == 0 {
		t.Errorf("clients forwarded %d and %d, want %d shared by both", l1, l2, n)
	}
}

func TestTunnelsInFlight(t *testing.T) {
	fr := newFakeRelay(t, fastServer())
	a := newApp(t)
	entered := make(chan struct{})
	release := make(chan struct{})
	a.answerWith(func(w http.ResponseWriter, r *http.Request) {
		entered <- struct{}{}
		<-release
	})
	before := time.Now()
	startClient(t, clientConfig(fr.URL, a.URL))
	done := make(chan error, 1)
	go func() { _, err := fr.send(context.Background(), "/", "payment", []byte("{}")); done <- err }()
	<-entered
	list := fr.tunnels().Tunnels(testOrg)
	if len(list) != 1 {
		t.Fatalf("Tunnels: got %v, want one client", list)
	}
	ti := list[0]
	if ti.Name != testName || ti.Org != testOrg || ti.InFlight != 1 || ti.RemoteAddr == "" || ti.Since.Before(before.Add(-time.Second)) {
		t.Errorf("Tunnels: got %+v, want %s of %s with 1 in flight, an address and a since", ti, testName, testOrg)
	}
	if other := fr.tunnels().Tunnels("someone-else"); len(other) != 0 {
		t.Errorf("Tunnels of another org: got %v, want none", other)
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if n := fr.tunnels().Tunnels("")[0].InFlight; n != 0 {
		t.Errorf("in flight after the answer: got %d, want 0", n)
	}
}

func TestWrongAPIKey(t *testing.T) {
	fr := newFakeRelay(t, fastServer())
	cfg := clientConfig(fr.URL, "http://127.0.0.1:1")
	cfg.APIKey = "wrong"
	c, err := tunnel.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err = c.Run(ctx)
	if !errors.Is(err, tunnel.ErrUnauthorized) {
		t.Fatalf("Run with a wrong key: got %v, want ErrUnauthorized", err)
	}
	if msg := err.Error(); strings.Contains(msg, "\n") || !strings.Contains(msg, "401") || !strings.Contains(msg, "--api-key") {
		t.Errorf("error %q: want one line naming the 401 and --api-key", msg)
	}
	if ctx.Err() != nil {
		t.Errorf("Run retried a refused key until the deadline")
	}
	if err := c.Run(ctx); err == nil || !strings.Contains(err.Error(), "twice") {
		t.Errorf("a second Run: got %v, want refused", err)
	}
}

func TestNotARelay(t *testing.T) {
	// --relay names another server (the local app, a web page, an http://
	// URL that redirects to https://): retrying will not make it a relay.
	tests := []struct {
		name   string
		answer http.HandlerFunc
		want   string
	}{
		{"Page", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "<html>\n<p>my app</p>\n</html>\n") }, "HTTP 200, not a websocket"},
		{"Redirect", func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, "https://relay.example/v1/tunnel", http.StatusMovedPermanently)
		}, "redirected to https://relay.example/v1/tunnel"},
		{"NotFound", func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusNotFound)
			io.WriteString(w, "<html>\n<h1>Not here</h1>\n</html>")
		}, "no tunnel route (HTTP 404)"},
		{"MethodNotAllowed", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusMethodNotAllowed) }, "HTTP 405"},
		// The mock receiver checking tokens (--relay given its port, one
		// off the relay's) refuses the request, not the API key.
		{"ReceiverWantsToken", func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, `{"error":"invalid_token","reason":"webio-token: missing x-webio-token header"}`, http.StatusUnauthorized)
		}, "with HTTP 401, not a relay refusing the API key: is it a sidehook relay? webio-token: missing x-webio-token header"},
		// Not HTTP at all (--relay given the NATS port): not retried with
		// the server's greeting in every line.
		{"NotHTTP", func(w http.ResponseWriter, r *http.Request) {
			conn, _, err := w.(http.Hijacker).Hijack()
			if err != nil {
				return
			}
			defer conn.Close()
			io.WriteString(conn, "INFO {\"server_id\":\"NDY5\",\"version\":\"2.15.3\"}\r\n")
		}, "does not answer in HTTP: is it a sidehook relay?"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(tt.answer)
			t.Cleanup(srv.Close)
			err := runUntilGivesUp(t, clientConfig(srv.URL, "http://127.0.0.1:1"))
			if err == nil || !strings.Contains(err.Error(), tt.want) || strings.Contains(err.Error(), "\n") {
				t.Errorf("got %v, want one line saying %q", err, tt.want)
			}
		})
	}
}

func TestNewClientBadConfig(t *testing.T) {
	ok := clientConfig("http://relay.example", "http://localhost:3000")
	notPEM := filepath.Join(t.TempDir(), "key.pem")
	if err := os.WriteFile(notPEM, []byte("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	caFile, _ := testCA(t)
	https := func(c *tunnel.ClientConfig) { c.Forward = "https://localhost:3443/hooks" }
	tests := []struct {
		name string
		edit func(*tunnel.ClientConfig)
		want string
	}{
		{"NoRelay", func(c *tunnel.ClientConfig) { c.RelayURL = "" }, "relay URL"},
		{"RelayNotHTTP", func(c *tunnel.ClientConfig) { c.RelayURL = "ftp://x" }, "relay URL"},
		{"NoForward", func(c *tunnel.ClientConfig) { c.Forward = "localhost:3000" }, "forward URL"},
		// url.Parse takes any digits as a port: each delivery would
		// fail to dial, or the client retry for ever.
		{"ForwardPortOutOfRange", func(c *tunnel.ClientConfig) { c.Forward = "http://127.0.0.1:99999" }, "the port must be a number from 1 to 65535"},
		{"ForwardPortZero", func(c *tunnel.ClientConfig) { c.Forward = "http://127.0.0.1:0/hooks" }, "the port must be a number from 1 to 65535"},
		{"RelayPortOutOfRange", func(c *tunnel.ClientConfig) { c.RelayURL = "http://127.0.0.1:70000" }, "relay URL"},
		// What is wrong with a URL that is otherwise fine is said, and a
		// password in it is not printed back.
		{"ForwardQuery", func(c *tunnel.ClientConfig) { c.Forward = "http://127.0.0.1:3000/hooks?key=abc" },
			`forward URL "http://127.0.0.1:3000/hooks?key=abc": a query is not kept (the app gets each delivery's own): want http(s)://HOST[:PORT][/PATH]`},
		{"ForwardFragment", func(c *tunnel.ClientConfig) { c.Forward = "http://127.0.0.1:3000/hooks#x" }, `a #fragment is never sent`},
		{"RelayPassword", func(c *tunnel.ClientConfig) { c.RelayURL = "https://me:hunter2@relay.example" },
			`relay URL "https://me:xxxxx@relay.example": no user:password (the API key authenticates)`},
		{"NoKey", func(c *tunnel.ClientConfig) { c.APIKey = "" }, "API key"},
		{"NoName", func(c *tunnel.ClientConfig) { c.Name = "" }, "name is required"},
		{"BadName", func(c *tunnel.ClientConfig) { c.Name = "a/b" }, "may hold only"},
		{"BadEvent", func(c *tunnel.ClientConfig) { c.Events = []string{"Payment!"} }, "not an event type"},
		{"PublicInspector", func(c *tunnel.ClientConfig) { c.Inspect = "0.0.0.0:0" }, "loopback"},
		{"InspectorNoPort", func(c *tunnel.ClientConfig) { c.Inspect = "localhost" }, "inspector address"},
		// A port alone, as ngrok's inspector is known by, is not "missing
		// port".
		{"InspectorPortOnly", func(c *tunnel.ClientConfig) { c.Inspect = "4040" }, `inspector address "4040": want a loopback HOST:PORT, such as 127.0.0.1:4040`},
		{"ForwardCAMissing", func(c *tunnel.ClientConfig) { https(c); c.ForwardCA = "/nonexistent/ca.pem" }, "read --forward-ca file: open /nonexistent/ca.pem"},
		{"ForwardCANotPEM", func(c *tunnel.ClientConfig) { https(c); c.ForwardCA = notPEM }, "--forward-ca file " + notPEM + " holds no PEM certificate"},
		{"ForwardCAAndSkipVerify", func(c *tunnel.ClientConfig) { https(c); c.ForwardCA, c.SkipVerify = caFile, true }, "--forward-ca and --skip-verify: choose one"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := ok
			tt.edit(&cfg)
			_, err := tunnel.NewClient(cfg)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %v, want an error saying %q", err, tt.want)
			}
		})
	}
	if _, err := tunnel.NewClient(ok); err != nil {
		t.Errorf("a good config: got %v", err)
	}
	for name, edit := range map[string]func(*tunnel.ClientConfig){
		"ForwardCA":  func(c *tunnel.ClientConfig) { https(c); c.ForwardCA = caFile },
		"SkipVerify": func(c *tunnel.ClientConfig) { https(c); c.SkipVerify = true },
		// --print-secret forwards nothing: the flags have nothing to
		// check against, and the CA file is still read.
		"NoForward": func(c *tunnel.ClientConfig) { c.Forward, c.ForwardCA = "", caFile },
	} {
		cfg := ok
		edit(&cfg)
		if _, err := tunnel.NewClient(cfg); err != nil {
			t.Errorf("%s: got %v, want a client", name, err)
		}
	}
}

// TestRunNeedsForward: a client made without Forward may PrintSecret, but
// Run refuses at once, before dialling.
func TestRunNeedsForward(t *testing.T) {
	cfg := clientConfig("http://127.0.0.1:1", "")
	c, err := tunnel.NewClient(cfg)
	if err != nil {
		t.Fatalf("NewClient without Forward: got %v, want a client for PrintSecret", err)
	}
	if err := c.Run(context.Background()); err == nil || !strings.Contains(err.Error(), "forward") {
		t.Errorf("Run without Forward: got %v, want an error naming the forward URL", err)
	}
}

func TestReconnect(t *testing.T) {
	fr := newFakeRelay(t, fastServer())
	a := newApp(t)
	rc := startClient(t, clientConfig(fr.URL, a.URL))
	fr.waitConnected(t, 1)

	// The relay restarts its tunnel side: the client is cut, dials again
	// and its deliveries flow through the new server.
	old := fr.srv.Swap(tunnel.NewServer(fastServer()))
	if err := old.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	fr.waitConnected(t, 1)
	if _, err := fr.send(context.Background(), "/", "payment", []byte("{}")); err != nil {
		t.Fatalf("Send after the reconnect: %v", err)
	}
	if n := len(rc.out.jsonLines(t, "disconnected")); n == 0 {
		t.Errorf("no disconnected line printed")
	}
	if n := len(rc.out.jsonLines(t, "ready")); n != 2 {
		t.Errorf("ready lines: got %d, want 2", n)
	}
	if _, err := old.Send(context.Background(), &relay.OutboundRequest{URL: "tunnel://" + testName, Org: testOrg, Header: http.Header{}}, 0); !errors.Is(err, tunnel.ErrClosed) {
		t.Errorf("Send on a closed server: got %v, want ErrClosed", err)
	}
}

func TestParseURL(t *testing.T) {
	tests := []struct {
		in                string
		name, path, query string
		bad               bool
	}{
		{in: "tunnel://laptop", name: "laptop"},
		{in: "tunnel://laptop/", name: "laptop", path: "/"},
		{in: "tunnel://laptop/hooks/in?a=1", name: "laptop", path: "/hooks/in", query: "a=1"},
		{in: "tunnel://laptop/a%2Fb", name: "laptop", path: "/a%2Fb"},
		{in: "http://laptop/", bad: true},
		{in: "tunnel://", bad: true},
		{in: "tunnel://lap:80/", bad: true},
		{in: "tunnel://u@lap/", bad: true},
		{in: "tunnel://lap/#frag", bad: true},
	}
	for _, tt := range tests {
		name, path, query, err := tunnel.ParseURL(tt.in)
		if tt.bad {
			if err == nil {
				t.Errorf("ParseURL(%q): got nil error, want one", tt.in)
			}
			continue
		}
		if err != nil || name != tt.name || path != tt.path || query != tt.query {
			t.Errorf("ParseURL(%q): got %q %q %q %v, want %q %q %q", tt.in, name, path, query, err, tt.name, tt.path, tt.query)
		}
	}
}

func TestPrintSecret(t *testing.T) {
	fr := newFakeRelay(t, fastServer())
	out := newLines()
	cfg := clientConfig(fr.URL, "http://127.0.0.1:1")
	cfg.Stdout = out
	cfg.JSON = false
	c, err := tunnel.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.PrintSecret(context.Background()); err != nil {
		t.Fatalf("PrintSecret: %v", err)
	}
	text := strings.Join(out.all(), "\n")
	for _, want := range []string{"POST " + fr.URL + "/in/acme", "endpoint crm", "webio-token", fr.URL + "/.well-known/jwks.json"} {
		if !strings.Contains(text, want) {
			t.Errorf("PrintSecret output %q lacks %q", text, want)
		}
	}
	if n := len(fr.tunnels().Tunnels("")); n != 0 {
		t.Errorf("PrintSecret left %d clients registered", n)
	}

	cfg.APIKey = "wrong"
	c, err = tunnel.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.PrintSecret(context.Background()); !errors.Is(err, tunnel.ErrUnauthorized) {
		t.Errorf("PrintSecret with a wrong key: got %v, want ErrUnauthorized", err)
	}
}

func TestValidName(t *testing.T) {
	for _, ok := range []string{"laptop", "a", "dev-1.team_x", strings.Repeat("a", 63)} {
		if err := tunnel.ValidName(ok); err != nil {
			t.Errorf("ValidName(%q): %v", ok, err)
		}
	}
	for _, bad := range []string{"", "Laptop", "-a", ".a", "a/b", "a b", strings.Repeat("a", 64)} {
		if err := tunnel.ValidName(bad); err == nil {
			t.Errorf("ValidName(%q): got nil, want an error", bad)
		}
	}
}

func TestHugeAnswerHeaders(t *testing.T) {
	// An app may answer with megabytes of headers (Go's transport takes up
	// to 10 MB). The result must still fit the relay's frame limit: a
	// frame over it would cut the connection and every delivery on it.
	fr := newFakeRelay(t, fastServer())
	a := newApp(t)
	entered := make(chan struct{})
	release := make(chan struct{})
	var once sync.Once
	t.Cleanup(func() { once.Do(func() { close(release) }) })
	big := strings.Repeat("a", 32<<10)
	a.answerWith(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			entered <- struct{}{}
			<-release
			io.WriteString(w, "slow ok")
			return
		}
		w.Header().Set("Content-Type", "text/plain")
		for i := range 64 { // 2 MiB of headers
			w.Header().Set(fmt.Sprintf("X-Big-%02d", i), big)
		}
		w.WriteHeader(http.StatusCreated)
		io.WriteString(w, "big ok")
	})
	rc := startClient(t, clientConfig(fr.URL, a.URL))

	slow := make(chan error, 1)
	go func() {
		res, err := fr.send(context.Background(), "/slow", "payment", []byte("{}"))
		if err == nil && (res.Status != http.StatusOK || string(res.Body) != "slow ok") {
			err = fmt.Errorf("got %d %q, want 200 %q", res.Status, res.Body, "slow ok")
		}
		slow <- err
	}()
	<-entered

	res, err := fr.send(context.Background(), "/big", "payment", []byte("{}"))
	if err != nil {
		t.Fatalf("Send to an app answering 2 MiB of headers: got %v, want its answer", err)
	}
	if res.Status != http.StatusCreated || string(res.Body) != "big ok" || res.Header.Get("Content-Type") != "text/plain" {
		t.Errorf("answer: got %d %q Content-Type %q, want 201 %q text/plain", res.Status, res.Body, res.Header.Get("Content-Type"), "big ok")
	}
	if got := res.Header.Get(tunnel.HeaderDropped); !strings.Contains(got, "dropped") {
		t.Errorf("%s: got %q, want it to say headers were dropped", tunnel.HeaderDropped, got)
	}
	size := 0
	for k, vs := range res.Header {
		for _, v := range vs {
			size += len(k) + len(v)
		}
	}
	if size > tunnel.MaxResultHeaders {
		t.Errorf("answer headers: got %d bytes, want at most 64 KiB", size)
	}

	once.Do(func() { close(release) })
	if err := <-slow; err != nil {
		t.Errorf("the delivery in flight meanwhile: %v", err)
	}
	if n := len(fr.tunnels().Tunnels(testOrg)); n != 1 {
		t.Errorf("Tunnels: got %d clients, want the one, still connected", n)
	}
	rc.out.wait(t, "both delivery lines", func() bool { return len(rc.out.jsonLines(t, "delivery")) == 2 })
	if n := len(rc.out.jsonLines(t, "disconnected")); n != 0 {
		t.Errorf("disconnected lines: got %d, want 0", n)
	}
	var dropped []any
	for _, l := range rc.out.jsonLines(t, "delivery") {
		if l["path"] == "/big" {
			dropped = append(dropped, l["headers_dropped"])
		}
	}
	if len(dropped) != 1 || dropped[0] == nil || dropped[0].(float64) <= 0 {
		t.Errorf("the /big delivery line's headers_dropped: got %v, want a count", dropped)
	}
}

// TestClientKeepsToForwardPath: the relay chooses the path appended to
// --forward; one that climbs out of it, percent-encoded or not, is
// refused by the client and never reaches the app. A relay that accepted
// tunnel://NAME/%2e%2e/admin sent it, and servers that decode before
// removing dot segments (nginx, most frameworks) served /admin.
func TestClientKeepsToForwardPath(t *testing.T) {
	fr := newFakeRelay(t, fastServer())
	a := newApp(t)
	startClient(t, clientConfig(fr.URL, a.URL+"/base"))
	for _, path := range []string{"/../admin", "/%2e%2e/admin", "/hooks/%2E%2e/%2e%2E/admin", "/.%2e/admin", "/a%2f..%2fadmin", "/a%5c..%5c..%5cadmin"} {
		t.Run(path, func(t *testing.T) {
			res, err := fr.send(t.Context(), path, "payment", []byte("{}"))
			if err == nil || !strings.Contains(err.Error(), "refused the relay's path") {
				t.Errorf("Send: got %+v, %v; want the client's refusal", res, err)
			}
		})
	}
	if got := a.requests(); len(got) != 0 {
		t.Errorf("app got %d requests (first %s), want none", len(got), got[0].Path)
	}
	// A path that only looks like one is still forwarded.
	if res, err := fr.send(t.Context(), "/a..b/%2e%2ex/.well-known", "payment", []byte("{}")); err != nil || res.Status != http.StatusOK {
		t.Fatalf("Send: got %+v, %v; want the app's 200", res, err)
	}
	if got := a.requests(); len(got) != 1 || got[0].Path != "/base/a..b/..x/.well-known" {
		t.Errorf("app got %+v, want one request to /base/a..b/..x/.well-known", got)
	}
}
