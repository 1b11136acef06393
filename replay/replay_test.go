package replay_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/sidehook/sidehook/internal/auth"
	"github.com/sidehook/sidehook/replay"
)

const secret = "0123456789abcdef0123456789abcdef"

// seen is one request a test server received.
type seen struct {
	method, path, query string
	header              http.Header
	body                []byte
	req                 *http.Request
}

func server(tb testing.TB, status int, answer string) (*httptest.Server, chan seen) {
	tb.Helper()
	ch := make(chan seen, 4)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		ch <- seen{method: r.Method, path: r.URL.Path, query: r.URL.RawQuery, header: r.Header.Clone(), body: b, req: r}
		w.WriteHeader(status)
		io.WriteString(w, answer)
	}))
	tb.Cleanup(srv.Close)
	return srv, ch
}

func item() replay.Item {
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	h.Set("X-Team", "billing")
	h.Set("Webhook-Id", "evt_1")
	h.Set("Webhook-Timestamp", "1")
	h.Set("Authorization", "Bearer stale")
	h.Set("X-Webio-Token", "stale")
	h.Set("Webhook-Signature", "v1,stale")
	h.Set("Connection", "keep-alive")
	h.Set("Content-Length", "999")
	h.Set("Sidehook-Event", "payment")
	return replay.Item{
		ID: "cap_01", Method: "POST", Path: "/hooks", RawQuery: "a=1",
		Header: h, Body: []byte(`{"type":"payment"}`), WebhookID: "evt_1", Event: "payment",
	}
}

// TestSendLeavesNoConnection: Send with no Client closes the connection
// of the client it made once the answer is read. Nothing can use it
// again, and it would hold two goroutines here (and one at the target)
// until the idle timeout: a Batch of a thousand items, a thousand of them.
func TestSendLeavesNoConnection(t *testing.T) {
	srv, ch := server(t, 200, "ok")
	before := goleak.IgnoreCurrent()
	for i := range 3 {
		if res := replay.Send(context.Background(), item(), replay.Options{To: srv.URL}); res.Status != 200 {
			t.Fatalf("send %d: got %+v, want 200", i, res)
		}
		<-ch
	}
	if err := goleak.Find(before); err != nil {
		t.Errorf("after Send: got goroutines left, want none:\n%v", err)
	}
}

func TestSendHeaders(t *testing.T) {
	srv, ch := server(t, 200, "ok")
	now := time.Unix(1_800_000_000, 0)
	res := replay.Send(context.Background(), item(), replay.Options{To: srv.URL, Now: func() time.Time { return now }, UserAgent: "sidehook/test"})
	if !res.OK() || res.Status != 200 || res.Body != "ok" || res.ID != "cap_01" || res.Method != "POST" {
		t.Fatalf("got %+v, want OK, status 200, body ok for POST cap_01", res)
	}
	got := <-ch
	if got.path != "/hooks" || got.query != "a=1" || !bytes.Equal(got.body, []byte(`{"type":"payment"}`)) {
		t.Errorf("got %s %s?%s %q, want /hooks?a=1 with the payment body", got.method, got.path, got.query, got.body)
	}
	if res.Target != srv.URL+"/hooks?a=1" {
		t.Errorf("target: got %s, want %s", res.Target, srv.URL+"/hooks?a=1")
	}
	// A loopback answer takes well under a millisecond: counted in whole
	// ones it would read as no time at all.
	if res.LatencyMS <= 0 {
		t.Errorf("latency_ms: got %v, want the time taken, to the microsecond", res.LatencyMS)
	}
	want := map[string]string{
		"Content-Type":       "application/json",
		"X-Team":             "billing",
		"Webhook-Id":         "evt_1",
		"Webhook-Timestamp":  strconv.FormatInt(now.Unix(), 10),
		"Sidehook-Replay-Of": "cap_01",
		"Sidehook-Event":     "payment",
		"User-Agent":         "sidehook/test",
		"Authorization":      "",
		"X-Webio-Token":      "",
		"Webhook-Signature":  "",
		// Nothing the original did not carry: Go's default transport
		// would add Accept-Encoding: gzip.
		"Accept-Encoding": "",
	}
	for k, v := range want {
		if g := got.header.Get(k); g != v {
			t.Errorf("%s: got %q, want %q", k, g, v)
		}
	}
	if got.req.ContentLength != int64(len(`{"type":"payment"}`)) {
		t.Errorf("content length: got %d, want %d", got.req.ContentLength, len(`{"type":"payment"}`))
	}
}

// TestNewClientReportsRedirects: a redirect is the replay's answer, not
// followed (a POST would go on as a GET without its body).
func TestNewClientReportsRedirects(t *testing.T) {
	elsewhere, ch := server(t, 200, "moved here")
	srv := httptest.NewServer(http.RedirectHandler(elsewhere.URL, http.StatusFound))
	t.Cleanup(srv.Close)
	res := replay.Send(context.Background(), item(), replay.Options{To: srv.URL, Client: replay.NewClient(5 * time.Second)})
	if res.Status != http.StatusFound {
		t.Errorf("got %+v, want the 302 as the answer", res)
	}
	select {
	case got := <-ch:
		t.Errorf("the redirect was followed: %s %s", got.method, got.path)
	default:
	}
}

func TestSendSigned(t *testing.T) {
	srv, ch := server(t, 202, "")
	std := []byte("a-standard-secret-of-32-bytes!!!")
	opts := replay.Options{
		To:      srv.URL,
		Schemes: []string{auth.SchemeJWT, auth.SchemeStandard},
		Keys: auth.OutboundKeys{
			JWT:      &auth.SigningKey{Alg: auth.HS256, Secret: []byte(secret)},
			Org:      "demo",
			Standard: [][]byte{std},
		},
	}
	if res := replay.Send(context.Background(), item(), opts); res.Status != 202 {
		t.Fatalf("got %+v, want status 202", res)
	}
	got := <-ch
	v, err := auth.NewVerifier(auth.VerifyConfig{JWTSecret: []byte(secret), RequireSHA256: true, StandardSecrets: [][]byte{std}})
	if err != nil {
		t.Fatal(err)
	}
	got.req.Header = got.header
	if verdict := v.Verify(context.Background(), got.req, got.body); verdict.Status != auth.StatusValid {
		t.Errorf("replayed request does not verify: %+v", verdict)
	}
}

func TestSendEditedBody(t *testing.T) {
	srv, ch := server(t, 200, "")
	opts := replay.Options{To: srv.URL + "/elsewhere?b=2", Body: []byte("edited")}
	replay.Send(context.Background(), item(), opts)
	got := <-ch
	if string(got.body) != "edited" || got.path != "/elsewhere" || got.query != "b=2" {
		t.Errorf("got %s?%s %q, want /elsewhere?b=2 \"edited\"", got.path, got.query, got.body)
	}
}

func TestSendTarget(t *testing.T) {
	srv, ch := server(t, 200, "")
	it := item()
	it.Target = srv.URL + "/original?x=1"
	replay.Send(context.Background(), it, replay.Options{})
	if got := <-ch; got.path != "/original" || got.query != "x=1" {
		t.Errorf("original target: got %s?%s, want /original?x=1", got.path, got.query)
	}
}

func TestSendErrors(t *testing.T) {
	dead := httptest.NewServer(http.NotFoundHandler())
	deadURL := dead.URL
	dead.Close()
	tests := []struct {
		name string
		it   replay.Item
		opts replay.Options
		want string
	}{
		{"NoTarget", item(), replay.Options{}, "no target"},
		{"BadScheme", item(), replay.Options{To: "ftp://x"}, "want an http:// or https:// URL"},
		{"MissingKey", item(), replay.Options{To: "http://127.0.0.1:1", Schemes: []string{auth.SchemeJWT}}, "sign"},
		{"Refused", item(), replay.Options{To: deadURL}, "connection refused"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := replay.Send(context.Background(), tt.it, tt.opts)
			if res.OK() || !strings.Contains(res.Error, tt.want) {
				t.Errorf("got %+v, want an error containing %q", res, tt.want)
			}
		})
	}
}

func TestDryRun(t *testing.T) {
	srv, ch := server(t, 200, "")
	res := replay.Send(context.Background(), item(), replay.Options{To: srv.URL, DryRun: true})
	if res.Error != "" || res.Status != 0 || res.Target != srv.URL+"/hooks?a=1" {
		t.Errorf("got %+v, want no error, status 0, target /hooks?a=1", res)
	}
	select {
	case <-ch:
		t.Error("a dry run sent the request")
	default:
	}
}

func TestResultBodyLimit(t *testing.T) {
	srv, _ := server(t, 500, strings.Repeat("x", 10_000))
	res := replay.Send(context.Background(), item(), replay.Options{To: srv.URL})
	if res.Status != 500 || len(res.Body) != replay.MaxResultBody || res.OK() {
		t.Errorf("got status %d, %d body bytes; want 500, %d body bytes, not OK", res.Status, len(res.Body), replay.MaxResultBody)
	}
}

// TestBuildPathAsSent: a To without a path takes the item's path as sent,
// escapes kept ("/a%2Fb" is one segment, not two); a path an older
// capture kept decoded is escaped rather than sent broken.
func TestBuildPathAsSent(t *testing.T) {
	tests := []struct{ path, want string }{
		{"/hooks", "/hooks"},
		{"/a%2Fb", "/a%2Fb"},
		{"/a%2fb", "/a%2fb"},
		{"/q%3Fx=1%23f%20a", "/q%3Fx=1%23f%20a"},
		{"/caf%C3%A9", "/caf%C3%A9"},
		{"/a b", "/a%20b"},
		{"/100%", "/100%25"},
		{"/x?y", "/x%3Fy"},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			it := item()
			it.Path = tt.path
			req, err := replay.Build(context.Background(), it, replay.Options{To: "http://127.0.0.1:9"})
			if err != nil {
				t.Fatal(err)
			}
			if got := req.URL.EscapedPath(); got != tt.want {
				t.Errorf("path %q: got %q, want %q", tt.path, got, tt.want)
			}
		})
	}
}
