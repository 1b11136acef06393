package relay_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/sidehook/sidehook/internal/target"
	"github.com/sidehook/sidehook/relay"
	"github.com/sidehook/sidehook/relay/config"
	"github.com/sidehook/sidehook/web"
	"github.com/sidehook/sidehook/web/webtest"
)

const (
	adminToken = "admin-token-0123456789"
	keyAcme    = "key-acme"
	keyGlobex  = "key-globex"
)

var jsonType = map[string]string{"Content-Type": "application/json"}

// tenantRelay is a relay listening on every interface with two
// organisations, each with an endpoint; its traffic goes to 127.0.0.1.
type tenantRelay struct {
	r          *relay.Relay
	base       string
	acme, glob *sink
}

func startTenants(t *testing.T) *tenantRelay {
	t.Helper()
	tr := &tenantRelay{acme: newSink(t, nil, nil), glob: newSink(t, nil, nil)}
	f := config.File{
		Listen:     "0.0.0.0:0",
		AdminToken: adminToken,
		Retry:      &config.RawRetry{Schedule: []string{"10ms"}},
		Organisations: []config.RawOrg{
			{ID: "acme", APIKeys: []string{keyAcme}, SecretKey: secretKey, Endpoints: []config.RawEndpoint{{ID: "crm", URL: tr.acme.URL() + "/acme"}}},
			{ID: "globex", APIKeys: []string{keyGlobex}, SecretKey: secretKey, Endpoints: []config.RawEndpoint{{ID: "erp", URL: tr.glob.URL() + "/globex"}}},
		},
	}
	cfg, err := f.Validate(nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Data = t.TempDir()
	tr.r = startRelay(t, cfg, relay.Options{})
	_, port, err := net.SplitHostPort(tr.r.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	tr.base = "http://127.0.0.1:" + port
	return tr
}

// send ingests an event with key and waits until it is delivered; it
// returns the delivery id.
func (tr *tenantRelay) send(t *testing.T, key string) string {
	t.Helper()
	a := call(t, "POST", tr.base+"/v1/events", key, []byte(`{"type":"payment"}`), nil)
	var ans ingestAnswer
	a.decode(t, &ans)
	if a.Status != http.StatusAccepted || len(ans.Deliveries) != 1 {
		t.Fatalf("ingest: got %d %s, want 202 with one delivery", a.Status, a.Body)
	}
	id := ans.Deliveries[0].ID
	deadline := time.Now().Add(5 * time.Second)
	for {
		var d deliveryView
		call(t, "GET", tr.base+"/v1/deliveries/"+id, key, nil, nil).decode(t, &d)
		if d.Status == "delivered" {
			return id
		}
		if time.Now().After(deadline) {
			t.Fatalf("delivery %s: %q after 5s, want delivered", id, d.Status)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func snapshotIDs(t *testing.T, base, token string) map[string]bool {
	t.Helper()
	c := webtest.DialWS(t, base, http.Header{"Authorization": {"Bearer " + token}})
	m := webtest.ReadWS(t, c)
	if m.Type != web.MsgSnapshot {
		t.Fatalf("got %+v, want a snapshot", m)
	}
	ids := map[string]bool{}
	for _, it := range m.Items {
		ids[it.ID] = true
	}
	return ids
}

// TestTenantsIsolated: beyond loopback, an organisation's key sees and
// acts on its own deliveries only, on the dashboard, its actions and
// /metrics; the admin token sees the whole relay.
func TestTenantsIsolated(t *testing.T) {
	tr := startTenants(t)
	acmeDlv := tr.send(t, keyAcme)
	globDlv := tr.send(t, keyGlobex)

	t.Run("SnapshotOrgKey", func(t *testing.T) {
		ids := snapshotIDs(t, tr.base, keyAcme)
		if !ids[acmeDlv] || ids[globDlv] || len(ids) != 1 {
			t.Errorf("acme's key sees %v, want only %s", ids, acmeDlv)
		}
	})
	t.Run("SnapshotAdmin", func(t *testing.T) {
		ids := snapshotIDs(t, tr.base, adminToken)
		if !ids[acmeDlv] || !ids[globDlv] || len(ids) != 2 {
			t.Errorf("the admin token sees %v, want both organisations' deliveries", ids)
		}
	})
	t.Run("LiveOrgKey", func(t *testing.T) {
		c := webtest.DialWS(t, tr.base, http.Header{"Authorization": {"Bearer " + keyGlobex}})
		if m := webtest.ReadWS(t, c); m.Type != web.MsgSnapshot {
			t.Fatalf("got %+v, want a snapshot", m)
		}
		// acme's changes are published before globex's: had they
		// reached this viewer, they would come first.
		other := tr.send(t, keyAcme)
		mine := tr.send(t, keyGlobex)
		deadline := time.Now().Add(10 * time.Second)
		for {
			m := webtest.ReadWS(t, c)
			if m.Type == web.MsgItem && m.Item.ID == other {
				t.Fatalf("globex's viewer received acme's delivery %s", other)
			}
			if m.Type == web.MsgItem && m.Item.ID == mine && m.Item.Status == "delivered" {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("no live item for %s", mine)
			}
		}
	})
	t.Run("Actions", func(t *testing.T) {
		before := len(tr.glob.requests())
		for _, tt := range []struct {
			name, path, token, body string
			want                    int
		}{
			{"ReplayOtherOrg", "/_sidehook/replay", keyAcme, `{"ids":["` + globDlv + `"],"to":"` + tr.acme.URL() + `/x"}`, http.StatusNotFound},
			{"RequeueOtherOrg", "/_sidehook/replay", keyAcme, `{"ids":["` + globDlv + `"]}`, http.StatusNotFound},
			{"RetryOtherOrg", "/_sidehook/deliveries/" + globDlv + "/retry", keyAcme, "", http.StatusNotFound},
			{"RetryNoKey", "/_sidehook/deliveries/" + globDlv + "/retry", "", "", http.StatusUnauthorized},
			{"RetryOwn", "/_sidehook/deliveries/" + acmeDlv + "/retry", keyAcme, "", http.StatusAccepted},
		} {
			t.Run(tt.name, func(t *testing.T) {
				var body []byte
				if tt.body != "" {
					body = []byte(tt.body)
				}
				if a := call(t, "POST", tr.base+tt.path, tt.token, body, jsonType); a.Status != tt.want {
					t.Errorf("got %d %s, want %d", a.Status, a.Body, tt.want)
				}
			})
		}
		if n := len(tr.glob.requests()); n != before {
			t.Errorf("globex's endpoint got %d more requests from acme's key", n-before)
		}
		if got := tr.acme.requests(); len(got) != 0 && got[len(got)-1].Path == "/x" {
			t.Errorf("globex's delivery was replayed to %s", got[len(got)-1].Path)
		}
		a := call(t, "POST", tr.base+"/_sidehook/deliveries/"+globDlv+"/retry", adminToken, nil, nil)
		if a.Status != http.StatusAccepted {
			t.Errorf("admin retry of globex's delivery: got %d %s, want 202", a.Status, a.Body)
		}
	})
	t.Run("Metrics", func(t *testing.T) {
		for _, tt := range []struct {
			name, token string
			status      int
			has, hasNot []string
		}{
			{"NoKey", "", http.StatusUnauthorized, nil, nil},
			{"WrongKey", "nope", http.StatusUnauthorized, nil, nil},
			{"OrgKey", keyAcme, http.StatusOK, []string{`organisation="acme"`}, []string{`organisation="globex"`, "go_goroutines", "sidehook_websocket_clients"}},
			{"Admin", adminToken, http.StatusOK, []string{`organisation="acme"`, `organisation="globex"`, "go_goroutines"}, nil},
		} {
			t.Run(tt.name, func(t *testing.T) {
				a := call(t, "GET", tr.base+"/metrics", tt.token, nil, nil)
				if a.Status != tt.status {
					t.Fatalf("got %d %s, want %d", a.Status, a.Body, tt.status)
				}
				for _, s := range tt.has {
					if !bytes.Contains(a.Body, []byte(s)) {
						t.Errorf("metrics lack %s:\n%s", s, a.Body)
					}
				}
				for _, s := range tt.hasNot {
					if bytes.Contains(a.Body, []byte(s)) {
						t.Errorf("metrics show %s to %s", s, tt.name)
					}
				}
			})
		}
	})
}

// request sends a request with a chosen Host and headers.
func request(t *testing.T, method, url, host string, body string, header map[string]string) answer {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if host != "" {
		req.Host = host
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return answer{Status: resp.StatusCode, Body: b, Header: resp.Header}
}

// TestDashboardGuard: on loopback the dashboard, its actions and /metrics
// answer only loopback names (DNS rebinding) and refuse cross-site
// requests; the dashboard keeps working from its own origin.
func TestDashboardGuard(t *testing.T) {
	flaky := newSink(t, nil, func(*http.Request, int) int { return http.StatusBadRequest })
	victim := newSink(t, nil, nil)
	r := startRelay(t, orgConfig(t, config.RawEndpoint{ID: "crm", URL: flaky.URL()}), relay.Options{AllowHosts: []string{"devbox.test"}})
	dlv := ingest(t, r, `{"type":"payment"}`, nil).Deliveries[0].ID
	waitDelivery(t, r, dlv, "dead", 5*time.Second)
	replay := `{"ids":["` + dlv + `"],"to":"` + victim.URL() + `/steal"}`
	_, port, _ := net.SplitHostPort(r.Addr().String())

	for _, tt := range []struct {
		name, method, path, host, body string
		header                         map[string]string
		want                           int
	}{
		{"PageOtherHost", "GET", web.UIPath, "attacker.example", "", nil, http.StatusMisdirectedRequest},
		{"WebsocketOtherHost", "GET", web.WSPath, "attacker.example:" + port, "", nil, http.StatusMisdirectedRequest},
		{"MetricsOtherHost", "GET", "/metrics", "attacker.example", "", nil, http.StatusMisdirectedRequest},
		{"ReplayOtherHost", "POST", "/_sidehook/replay", "attacker.example", replay, jsonType, http.StatusMisdirectedRequest},
		{"PageLocalhost", "GET", web.UIPath, "localhost:" + port, "", nil, http.StatusOK},
		{"PageAllowedHost", "GET", web.UIPath, "devbox.test:" + port, "", nil, http.StatusOK},
		{"MetricsLoopback", "GET", "/metrics", "", "", nil, http.StatusOK},
		{"ReplayCrossSiteTextPlain", "POST", "/_sidehook/replay", "", replay,
			map[string]string{"Content-Type": "text/plain", "Origin": "http://attacker.example", "Sec-Fetch-Site": "cross-site"}, http.StatusForbidden},
		{"ReplayTextPlain", "POST", "/_sidehook/replay", "", replay, map[string]string{"Content-Type": "text/plain"}, http.StatusUnsupportedMediaType},
		{"RetryCrossSite", "POST", "/_sidehook/deliveries/" + dlv + "/retry", "", "",
			map[string]string{"Origin": "http://attacker.example", "Sec-Fetch-Site": "cross-site"}, http.StatusForbidden},
		{"WebsocketCrossSite", "GET", web.WSPath, "", "",
			map[string]string{"Connection": "Upgrade", "Upgrade": "websocket", "Origin": "http://attacker.example", "Sec-Fetch-Site": "cross-site"}, http.StatusForbidden},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if a := request(t, tt.method, r.URL()+tt.path, tt.host, tt.body, tt.header); a.Status != tt.want {
				t.Errorf("got %d %s, want %d", a.Status, a.Body, tt.want)
			}
		})
	}
	if n := len(victim.requests()); n != 0 {
		t.Errorf("the replay target got %d requests from refused replays", n)
	}
	t.Run("SameOrigin", func(t *testing.T) {
		a := request(t, "POST", r.URL()+"/_sidehook/replay", "", replay,
			map[string]string{"Content-Type": "application/json", "Origin": r.URL(), "Sec-Fetch-Site": "same-origin"})
		if a.Status != http.StatusOK {
			t.Fatalf("got %d %s, want 200", a.Status, a.Body)
		}
		victim.wait(t, 5*time.Second, func(c []captured) bool { return len(c) == 1 })
	})
}

// TestTargetsDenied: endpoint URLs and replay targets the outbound policy
// denies (link-local metadata, the relay itself) are refused at the API
// with 400 target_denied, and nothing is sent.
func TestTargetsDenied(t *testing.T) {
	rcv := newSink(t, nil, nil)
	r := startRelay(t, orgConfig(t, config.RawEndpoint{ID: "crm", URL: rcv.URL()}), relay.Options{})
	dlv := ingest(t, r, `{"type":"payment"}`, nil).Deliveries[0].ID
	waitDelivery(t, r, dlv, "delivered", 5*time.Second)
	if a := call(t, "POST", r.URL()+"/v1/endpoints", apiKey, []byte(`{"id":"api","url":"`+rcv.URL()+`/api"}`), nil); a.Status != http.StatusCreated {
		t.Fatalf("create an allowed endpoint: got %d %s, want 201", a.Status, a.Body)
	}
	metadata := "http://169.254.169.254/latest/meta-data/"
	self := r.URL() + "/v1/events"
	_, port, _ := net.SplitHostPort(r.Addr().String())
	selfByName := "http://localhost:" + port + "/v1/events"

	for _, tt := range []struct {
		name, method, path, body string
		dashboard                bool
	}{
		{"CreateMetadata", "POST", "/v1/endpoints", `{"id":"meta","url":"` + metadata + `"}`, false},
		{"CreateSelf", "POST", "/v1/endpoints", `{"id":"loop","url":"` + self + `"}`, false},
		{"CreateSelfByName", "POST", "/v1/endpoints", `{"id":"loop","url":"` + selfByName + `"}`, false},
		{"UpdateMetadata", "PUT", "/v1/endpoints/api", `{"id":"api","url":"` + metadata + `"}`, false},
		{"ReplayToMetadata", "POST", "/v1/replay", `{"filter":{"ids":["` + dlv + `"]},"to":"` + metadata + `"}`, false},
		{"ReplayToSelf", "POST", "/v1/replay", `{"filter":{"ids":["` + dlv + `"]},"to":"` + self + `"}`, false},
		{"DashboardReplayToMetadata", "POST", "/_sidehook/replay", `{"ids":["` + dlv + `"],"to":"` + metadata + `"}`, true},
		{"DashboardReplayToSelf", "POST", "/_sidehook/replay", `{"ids":["` + dlv + `"],"to":"` + self + `"}`, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			key := apiKey
			if tt.dashboard {
				key = ""
			}
			a := call(t, tt.method, r.URL()+tt.path, key, []byte(tt.body), jsonType)
			var e struct{ Error, Reason string }
			a.decode(t, &e)
			if a.Status != http.StatusBadRequest || e.Error != "target_denied" || e.Reason == "" {
				t.Errorf("got %d %s, want 400 target_denied", a.Status, a.Body)
			}
			// Metadata can be allowed, and the reason says how, once; the
			// relay's own listener is never worth allowing.
			want := 0
			if strings.Contains(tt.body, metadata) {
				want = 1
			}
			if n := strings.Count(e.Reason, "--allow-target"); n != want {
				t.Errorf("reason %q names --allow-target %d times, want %d", e.Reason, n, want)
			}
		})
	}
	var list struct{ Events []struct{ ID string } }
	call(t, "GET", r.URL()+"/v1/events?limit=10", apiKey, nil, nil).decode(t, &list)
	if len(list.Events) != 1 {
		t.Errorf("the relay holds %d events, want 1: a replay reached it", len(list.Events))
	}

	t.Run("ConfigEndpointFailsStart", func(t *testing.T) {
		cfg := orgConfig(t, config.RawEndpoint{ID: "meta", URL: metadata})
		r, err := relay.New(cfg, relay.Options{Store: storeFor(t, cfg)})
		if err != nil {
			t.Fatal(err)
		}
		err = r.Start(context.Background())
		t.Cleanup(func() { _ = r.Close(context.Background()) })
		if !errors.Is(err, target.ErrDenied) || !strings.Contains(err.Error(), "organisations[0].endpoints[0].url") {
			t.Fatalf("start: got %v, want the endpoint denied", err)
		}
	})
	t.Run("AllowRule", func(t *testing.T) {
		cfg := orgConfig(t, config.RawEndpoint{ID: "meta", URL: metadata})
		cfg.AllowTargets = []string{"169.254.169.254"}
		startRelay(t, cfg, relay.Options{})
	})
}

// fullStore is a store whose disk fills on demand.
type fullStore struct {
	relay.Store
	full atomic.Bool
}

func (s *fullStore) Accept(ctx context.Context, ev *relay.Event, ds []*relay.Delivery) (*relay.Event, error) {
	if s.full.Load() {
		return nil, fmt.Errorf("badger: write: %w", relay.ErrDiskFull)
	}
	return s.Store.Accept(ctx, ev, ds)
}

func (s *fullStore) Health() error {
	if s.full.Load() {
		return errFull
	}
	return s.Store.Health()
}

var errFull = errors.Join(errors.New("free space below the reserve"), relay.ErrDiskFull)

// lockedBuffer is a log destination safe for concurrent handlers.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) text() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// errorLines are the error lines logged so far, decoded.
func (l *lockedBuffer) errorLines(t *testing.T) []map[string]any {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []map[string]any
	for _, line := range bytes.Split(l.b.Bytes(), []byte("\n")) {
		if len(line) == 0 {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal(line, &m); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		if m["level"] == "error" {
			out = append(out, m)
		}
	}
	return out
}

// TestDiskFullAnswers: a full disk is an answer: /readyz and every refused
// ingest say "disk full", and the log says so about once a second,
// counting the lines it held back.
func TestDiskFullAnswers(t *testing.T) {
	rcv := newSink(t, nil, nil)
	cfg := orgConfig(t, config.RawEndpoint{ID: "crm", URL: rcv.URL()})
	st := &fullStore{Store: storeFor(t, cfg)}
	logs := &lockedBuffer{}
	r := runRelay(t, cfg, relay.Options{Store: st, Logger: zerolog.New(logs)})
	if a := call(t, "GET", r.URL()+"/readyz", "", nil, nil); a.Status != http.StatusOK {
		t.Fatalf("readyz: got %d %s, want 200", a.Status, a.Body)
	}
	storeUp := func(want string) {
		t.Helper()
		if m := string(call(t, "GET", r.URL()+"/metrics", "", nil, nil).Body); !strings.Contains(m, "\nsidehook_relay_store_up "+want+"\n") {
			t.Errorf("/metrics: want sidehook_relay_store_up %s", want)
		}
	}
	storeUp("1")
	st.full.Store(true)
	storeUp("0")

	a := call(t, "GET", r.URL()+"/readyz", "", nil, nil)
	if a.Status != http.StatusServiceUnavailable || !bytes.Contains(a.Body, []byte("disk full")) {
		t.Errorf("readyz: got %d %s, want 503 saying disk full", a.Status, a.Body)
	}
	if bytes.Contains(a.Body, []byte("free space below the reserve")) {
		t.Errorf("readyz: got %s, want the store's own error kept out of the answer", a.Body)
	}
	refuse := func() {
		t.Helper()
		a := call(t, "POST", r.URL()+"/v1/events", apiKey, []byte(`{"type":"payment"}`), nil)
		var e struct{ Error, Reason string }
		a.decode(t, &e)
		if a.Status != http.StatusServiceUnavailable || !strings.HasPrefix(e.Reason, "disk full") {
			t.Fatalf("ingest: got %d %s, want 503 with a reason saying disk full", a.Status, a.Body)
		}
	}
	start := time.Now()
	const burst = 40
	for range burst {
		refuse()
	}
	lines := logs.errorLines(t)
	if max := 1 + int(time.Since(start)/time.Second); len(lines) < 1 || len(lines) > max {
		t.Fatalf("%d refused ingests in %s logged %d error lines, want 1 to %d: %v", burst, time.Since(start), len(lines), max, lines)
	}
	// The next line to pass counts those held back since the last one: a
	// line after the burst counts what the burst held back (on a loaded
	// machine the burst itself may have taken over a second, and passed
	// a second line before its end).
	sent := burst
	deadline := time.Now().Add(5 * time.Second)
	for n := len(lines); len(lines) == n; {
		if time.Now().After(deadline) {
			t.Fatalf("no second error line within 5s")
		}
		time.Sleep(20 * time.Millisecond)
		refuse()
		sent++
		lines = logs.errorLines(t)
	}
	total := len(lines)
	for _, l := range lines {
		if n, ok := l["suppressed"].(float64); ok {
			total += int(n)
		}
	}
	if _, ok := lines[len(lines)-1]["suppressed"]; !ok || total != sent {
		t.Errorf("%d refused ingests: %d error lines counting %d in all, want every refusal counted: %v", sent, len(lines), total, lines)
	}

	st.full.Store(false)
	if a := call(t, "GET", r.URL()+"/readyz", "", nil, nil); a.Status != http.StatusOK {
		t.Errorf("readyz once space is freed: got %d %s, want 200", a.Status, a.Body)
	}
	ingest(t, r, `{"type":"payment"}`, nil)
}

// TestMaxQueueExact: concurrent ingests never together put more than
// max_queue deliveries in an organisation's queue.
func TestMaxQueueExact(t *testing.T) {
	rcv := newSink(t, nil, nil)
	release := make(chan struct{})
	rcv.handle(func(w http.ResponseWriter, r *http.Request) {
		<-release
		w.WriteHeader(http.StatusOK)
	})
	cfg := orgConfig(t, config.RawEndpoint{ID: "crm", URL: rcv.URL()})
	const limit = 5
	cfg.Limits.MaxQueue = limit
	// Accepts wait for company: one more than max_queue at once is what
	// an inexact check lets through. An exact one never lets that many
	// in, so they go on after a moment.
	st := newHookStore(t)
	var inAccept atomic.Int64
	crowd := make(chan struct{})
	st.accept = func(ctx context.Context, ev *relay.Event, ds []*relay.Delivery) (*relay.Event, error) {
		if inAccept.Add(1) == limit+1 {
			close(crowd)
		}
		select {
		case <-crowd:
		case <-time.After(300 * time.Millisecond):
		}
		return st.Store.Accept(ctx, ev, ds)
	}
	r := startRelay(t, cfg, relay.Options{Store: st})
	t.Cleanup(func() { close(release) })

	const producers = 48
	var accepted, refused atomic.Int64
	var wg sync.WaitGroup
	for range producers {
		wg.Go(func() {
			req, _ := http.NewRequest("POST", r.URL()+"/v1/events", strings.NewReader(`{"type":"payment"}`))
			req.Header.Set("Authorization", "Bearer "+apiKey)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Errorf("ingest: %v", err)
				return
			}
			resp.Body.Close()
			switch resp.StatusCode {
			case http.StatusAccepted:
				accepted.Add(1)
			case http.StatusTooManyRequests:
				refused.Add(1)
			default:
				t.Errorf("ingest: got %d, want 202 or 429", resp.StatusCode)
			}
		})
	}
	wg.Wait()
	if accepted.Load() != limit || refused.Load() != producers-limit {
		t.Errorf("got %d accepted, %d refused; want exactly %d accepted (max_queue)", accepted.Load(), refused.Load(), limit)
	}
}

// TestBearerAnyCase: /metrics and the dashboard's APIs read the
// Authorization scheme as /v1 does, case-insensitively (RFC 9110 §11.1):
// "bearer <key>" on loopback is that organisation's view, not the whole
// relay's, and beyond loopback "BEARER <admin token>" is the admin's.
func TestBearerAnyCase(t *testing.T) {
	f := config.File{
		Listen: "127.0.0.1:0",
		Organisations: []config.RawOrg{
			{ID: "acme", APIKeys: []string{keyAcme}},
			{ID: "globex", APIKeys: []string{keyGlobex}},
		},
	}
	cfg, err := f.Validate(nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Data = t.TempDir()
	loop := startRelay(t, cfg, relay.Options{})
	tr := startTenants(t)
	for _, r := range []string{loop.URL(), tr.base} {
		for _, key := range []string{keyAcme, keyGlobex} {
			if a := call(t, "POST", r+"/v1/events", key, []byte(`{"type":"payment"}`), nil); a.Status != http.StatusAccepted {
				t.Fatalf("ingest: got %d %s, want 202", a.Status, a.Body)
			}
		}
	}
	for _, tt := range []struct {
		name, base, authz string
		has, hasNot       []string
	}{
		{"LoopbackLower", loop.URL(), "bearer " + keyAcme, []string{`organisation="acme"`}, []string{`organisation="globex"`}},
		{"LoopbackUpper", loop.URL(), "BEARER " + keyGlobex, []string{`organisation="globex"`}, []string{`organisation="acme"`}},
		{"LoopbackTabs", loop.URL(), "Bearer  \t" + keyAcme + " ", []string{`organisation="acme"`}, []string{`organisation="globex"`}},
		{"BeyondLoopbackAdmin", tr.base, "bEaReR " + adminToken, []string{`organisation="acme"`, `organisation="globex"`}, nil},
		{"BeyondLoopbackOrg", tr.base, "bearer " + keyAcme, []string{`organisation="acme"`}, []string{`organisation="globex"`}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			a := call(t, "GET", tt.base+"/metrics", "", nil, map[string]string{"Authorization": tt.authz})
			if a.Status != http.StatusOK {
				t.Fatalf("got %d %s, want 200", a.Status, a.Body)
			}
			for _, s := range tt.has {
				if !bytes.Contains(a.Body, []byte(s)) {
					t.Errorf("metrics lack %s", s)
				}
			}
			for _, s := range tt.hasNot {
				if bytes.Contains(a.Body, []byte(s)) {
					t.Errorf("metrics show %s to %q", s, tt.authz)
				}
			}
		})
	}
	t.Run("DashboardAPI", func(t *testing.T) {
		a := call(t, "GET", tr.base+"/_sidehook/tunnels", "", nil, map[string]string{"Authorization": "bearer " + adminToken})
		if a.Status != http.StatusOK {
			t.Errorf("got %d %s, want 200", a.Status, a.Body)
		}
	})
}
