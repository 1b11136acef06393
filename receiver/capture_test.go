package receiver_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/sidehook/sidehook/fixtures"
	"github.com/sidehook/sidehook/internal/auth"
	"github.com/sidehook/sidehook/internal/event"
	"github.com/sidehook/sidehook/receiver"
	"github.com/sidehook/sidehook/receiver/memstore"
)

var standardKey = []byte("whsec-test-key-of-32-bytes-long!")

func webioToken(tb testing.TB, secret, org string) string {
	tb.Helper()
	tok, err := auth.MintWebioToken([]byte(secret), auth.WebioClaims{Org: org, IssuedAt: time.Now()})
	if err != nil {
		tb.Fatal(err)
	}
	return tok
}

func jwtToken(tb testing.TB, secret string, body []byte, iat time.Time) string {
	tb.Helper()
	tok, err := auth.SignAttempt(auth.SigningKey{Alg: auth.HS256, Secret: []byte(secret)}, auth.AttemptClaims{
		Subject: testOrg, Audience: "crm", Event: "payment", SHA256: auth.BodyHash(body), IssuedAt: iat,
	})
	if err != nil {
		tb.Fatal(err)
	}
	return tok
}

func TestVerification(t *testing.T) {
	body := []byte(`{"type":"payment","amount":"50.00"}`)
	webio := auth.VerifyConfig{WebioSecret: []byte(testSecret), Org: testOrg}
	jwtCfg := auth.VerifyConfig{JWTSecret: []byte(testSecret)}
	std := auth.VerifyConfig{StandardSecrets: [][]byte{standardKey}}
	all := auth.VerifyConfig{WebioSecret: []byte(testSecret), Org: testOrg, JWTSecret: []byte(testSecret), StandardSecrets: [][]byte{standardKey}}
	// The receiver's clock is fixed, so the reasons that name times are
	// known.
	now := time.Now().Truncate(time.Second)
	stamp := func(t time.Time) string { return t.UTC().Format(time.RFC3339) }
	tampered := []byte(`{"type":"payment","amount":"5000.00"}`)
	stdHeaders := func(key []byte, ts time.Time) map[string]string {
		return map[string]string{
			"webhook-id":        "evt_1",
			"webhook-timestamp": fmt.Sprint(ts.Unix()),
			"webhook-signature": auth.SignStandard(key, "evt_1", ts, body),
		}
	}
	with := func(a, b map[string]string) map[string]string {
		out := maps.Clone(a)
		maps.Copy(out, b)
		return out
	}
	tests := []struct {
		name       string
		verify     auth.VerifyConfig
		headers    map[string]string
		wantScheme string // of the verdict
		wantReason string // "" means the request is accepted
		wantStatus string
	}{
		{"Unverified", auth.VerifyConfig{}, nil, "", "", auth.StatusUnverified},
		{"WebioOK", webio, map[string]string{"x-webio-token": webioToken(t, testSecret, testOrg)}, "webio-token", "", auth.StatusValid},
		{"WebioErrMissing", webio, nil, "webio-token", "missing x-webio-token header", auth.StatusInvalid},
		{"WebioErrWrongSecret", webio, map[string]string{"x-webio-token": webioToken(t, strings.Repeat("x", 32), testOrg)}, "webio-token", "signature mismatch", auth.StatusInvalid},
		{"WebioErrWrongOrg", webio, map[string]string{"x-webio-token": webioToken(t, testSecret, "other")}, "webio-token", `wrong org "other", want "demo"`, auth.StatusInvalid},
		{"WebioErrMalformed", webio, map[string]string{"x-webio-token": "not.a.token"}, "webio-token", "malformed token: its header is not (canonical) base64url", auth.StatusInvalid},
		{"JWTOK", jwtCfg, map[string]string{"authorization": "Bearer " + jwtToken(t, testSecret, body, now)}, "jwt", "", auth.StatusValid},
		{"JWTErrExpired", jwtCfg, map[string]string{"authorization": "Bearer " + jwtToken(t, testSecret, body, now.Add(-time.Hour))}, "jwt", "token expired: exp " + stamp(now.Add(-55*time.Minute)) + ", now " + stamp(now), auth.StatusInvalid},
		{"JWTErrTamperedBody", jwtCfg, map[string]string{"authorization": "Bearer " + jwtToken(t, testSecret, tampered, now)}, "jwt",
			"sha256 claim " + strconv.Quote(auth.BodyHash(tampered)) + " does not match the body's " + strconv.Quote(auth.BodyHash(body)), auth.StatusInvalid},
		{"JWTErrNotBearer", jwtCfg, map[string]string{"authorization": "Basic Zm9vOmJhcg=="}, "jwt", `authorization header is not a bearer token: scheme "Basic", want Bearer`, auth.StatusInvalid},
		{"StandardOK", std, stdHeaders(standardKey, now), "standard", "", auth.StatusValid},
		{"StandardErrSignature", std, stdHeaders([]byte("another-key-of-thirty-two-bytes!"), now), "standard",
			fmt.Sprintf(`signature mismatch: none of 1 v1 signature matches webhook-id "evt_1", webhook-timestamp "%d" and the %d-byte body under 1 secret`, now.Unix(), len(body)), auth.StatusInvalid},
		{"StandardErrTooOld", std, stdHeaders(standardKey, now.Add(-10*time.Minute)), "standard",
			fmt.Sprintf("timestamp too old: webhook-timestamp %d, now %d, tolerance 5m0s", now.Add(-10*time.Minute).Unix(), now.Unix()), auth.StatusInvalid},
		{"AllOK", all, with(stdHeaders(standardKey, now), map[string]string{
			"x-webio-token": webioToken(t, testSecret, testOrg),
			"authorization": "Bearer " + jwtToken(t, testSecret, body, now),
		}), "webio-token,jwt,standard", "", auth.StatusValid},
		{"AllErrOneMissing", all, map[string]string{
			"x-webio-token": webioToken(t, testSecret, testOrg),
			"authorization": "Bearer " + jwtToken(t, testSecret, body, now),
		}, "standard", "missing webhook-id header", auth.StatusInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := start(t, receiver.Config{Verify: tt.verify, Now: func() time.Time { return now }})
			r := send(t, "POST", srv.URL()+"/webhooks", body, tt.headers)
			if tt.wantReason == "" {
				if r.status != 200 {
					t.Fatalf("got %d %s, want 200", r.status, r.body)
				}
			} else {
				if r.status != 401 {
					t.Fatalf("got %d %s, want 401", r.status, r.body)
				}
				var got map[string]string
				r.json(t, &got)
				want := map[string]string{"error": "invalid_token", "reason": tt.wantScheme + ": " + tt.wantReason}
				if !maps.Equal(got, want) {
					t.Errorf("401 body: got %v, want %v", got, want)
				}
			}
			c := only(t, srv)
			if c.Verdict.Status != tt.wantStatus || c.Verdict.Scheme != tt.wantScheme || c.Verdict.Reason != tt.wantReason {
				t.Errorf("verdict: got %+v, want status %q scheme %q reason %q", c.Verdict, tt.wantStatus, tt.wantScheme, tt.wantReason)
			}
			if !bytes.Equal(c.Body, body) {
				t.Errorf("body: got %q, want %q", c.Body, body)
			}
			wantCode := 200
			if tt.wantReason != "" {
				wantCode = 401
			}
			if c.Response.Status != wantCode {
				t.Errorf("response status: got %d, want %d", c.Response.Status, wantCode)
			}
		})
	}
}

func TestVerificationReplayedJTI(t *testing.T) {
	srv := start(t, receiver.Config{Verify: auth.VerifyConfig{JWTSecret: []byte(testSecret)}})
	body := []byte(`{"type":"payment"}`)
	hdr := map[string]string{"authorization": "Bearer " + jwtToken(t, testSecret, body, time.Now())}
	if r := send(t, "POST", srv.URL()+"/w", body, hdr); r.status != 200 {
		t.Fatalf("first: got %d %s, want 200", r.status, r.body)
	}
	r := send(t, "POST", srv.URL()+"/w", body, hdr)
	if r.status != 401 || !strings.Contains(string(r.body), `"jwt: jti \"`) || !strings.Contains(string(r.body), `\" already used"`) {
		t.Fatalf("replay: got %d %s, want 401 jti already used", r.status, r.body)
	}
	caps, _ := list(t, srv, "verdict=invalid")
	if len(caps) != 1 {
		t.Errorf("invalid captures: got %d, want 1", len(caps))
	}
	// A reset starts afresh (SPEC §5): a suite that reuses a fixed token
	// in each test, resetting between them, must not be told it replays.
	if err := srv.Reset(context.Background()); err != nil {
		t.Fatal(err)
	}
	if r := send(t, "POST", srv.URL()+"/w", body, hdr); r.status != 200 {
		t.Fatalf("after a reset: got %d %s, want 200", r.status, r.body)
	}
}

func TestCaptureShape(t *testing.T) {
	srv := start(t, receiver.Config{})
	body := []byte(`{"type":"payment","amount":"50.00"}`)
	r := send(t, "POST", srv.URL()+"/webhooks?a=1&b=two", body, map[string]string{
		"Content-Type": "application/json",
		"Webhook-Id":   "evt_01JDEMO",
		"X-Team":       "billing",
	})
	if r.status != 200 {
		t.Fatalf("got %d %s, want 200", r.status, r.body)
	}
	var ans map[string]string
	r.json(t, &ans)
	if _, err := event.ParseID(event.PrefixCapture, ans["id"]); err != nil {
		t.Fatalf("default answer: got %s, want {\"id\":\"cap_…\"}", r.body)
	}

	// The raw JSON of the API, field by field.
	g := send(t, "GET", srv.URL()+"/_sidehook/requests/"+ans["id"], nil, nil)
	var raw map[string]any
	g.json(t, &raw)
	for _, k := range []string{"id", "received_at", "method", "path", "query", "remote_addr", "headers", "body",
		"body_encoding", "event", "webhook_id", "duplicate_of", "verdict", "response"} {
		if _, ok := raw[k]; !ok {
			t.Errorf("capture JSON lacks %q: %s", k, g.body)
		}
	}
	want := map[string]any{
		"id": ans["id"], "method": "POST", "path": "/webhooks", "query": "a=1&b=two",
		"body": string(body), "body_encoding": "utf8", "event": "payment",
		"webhook_id": "evt_01JDEMO", "duplicate_of": "",
	}
	for k, v := range want {
		if raw[k] != v {
			t.Errorf("%s: got %v, want %v", k, raw[k], v)
		}
	}
	at, _ := raw["received_at"].(string)
	if _, err := time.Parse("2006-01-02T15:04:05.000000Z", at); err != nil {
		t.Errorf("received_at %q: want RFC 3339 UTC with microseconds: %v", at, err)
	}
	headers, _ := raw["headers"].(map[string]any)
	if v, _ := headers["x-team"].([]any); len(v) != 1 || v[0] != "billing" {
		t.Errorf("headers[x-team]: got %v, want [billing] under a lower-case key", headers["x-team"])
	}
	if !strings.HasPrefix(raw["remote_addr"].(string), "127.0.0.1:") {
		t.Errorf("remote_addr: got %v, want 127.0.0.1:port", raw["remote_addr"])
	}
	verdict, _ := raw["verdict"].(map[string]any)
	resp, _ := raw["response"].(map[string]any)
	if verdict["status"] != "unverified" || resp["status"] != float64(200) || resp["rule"] != "" {
		t.Errorf("verdict/response: got %v %v, want unverified, status 200, no rule", verdict, resp)
	}
}

func TestCaptureBinaryBody(t *testing.T) {
	srv := start(t, receiver.Config{})
	body := []byte{0xff, 0xfe, 0x00, 0x01, 'h', 'i'}
	send(t, "PUT", srv.URL()+"/bin", body, map[string]string{"Content-Type": "application/octet-stream"})
	r := send(t, "GET", srv.URL()+"/_sidehook/requests", nil, nil)
	var raw struct {
		Requests []map[string]any `json:"requests"`
	}
	r.json(t, &raw)
	got := raw.Requests[0]
	if got["body_encoding"] != "base64" || got["body"] != base64.StdEncoding.EncodeToString(body) {
		t.Errorf("got body %v (%v), want base64 of the bytes", got["body"], got["body_encoding"])
	}
	if c := only(t, srv); !bytes.Equal(c.Body, body) {
		t.Errorf("decoded body: got %x, want %x", c.Body, body)
	}
}

func TestCaptureBodyTooLarge(t *testing.T) {
	srv := start(t, receiver.Config{MaxBody: 64})
	t.Run("ContentLength", func(t *testing.T) {
		r := send(t, "POST", srv.URL()+"/big", bytes.Repeat([]byte("a"), 65), nil)
		if r.status != 413 || !strings.Contains(string(r.body), `"error":"too_large"`) {
			t.Fatalf("got %d %s, want 413 too_large, the code of every 413", r.status, r.body)
		}
	})
	t.Run("Chunked", func(t *testing.T) {
		req, _ := http.NewRequest("POST", srv.URL()+"/big", struct{ *bytes.Reader }{bytes.NewReader(bytes.Repeat([]byte("a"), 100))})
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 413 {
			t.Fatalf("got %d, want 413", resp.StatusCode)
		}
	})
	send(t, "POST", srv.URL()+"/small", bytes.Repeat([]byte("a"), 64), nil)
	caps, _ := list(t, srv, "path=/big")
	if len(caps) != 2 {
		t.Fatalf("got %d captures of /big, want 2", len(caps))
	}
	for _, c := range caps {
		if !c.BodyTruncated || len(c.Body) != 0 || c.Response.Status != 413 || c.BodySize <= 64 {
			t.Errorf("got truncated=%v body=%d bytes status=%d size=%d, want truncated, no body, 413, size > 64",
				c.BodyTruncated, len(c.Body), c.Response.Status, c.BodySize)
		}
	}
	if caps, _ := list(t, srv, "path=/small"); len(caps) != 1 || len(caps[0].Body) != 64 || caps[0].BodyTruncated {
		t.Errorf("a body at the limit must be kept whole")
	}
}

// overstated is a store whose BodyLimit says more than Append takes, as
// a store's estimate may.
type overstated struct {
	receiver.Store
	maxBody int64
}

func (s overstated) BodyLimit() receiver.StoreLimit {
	return receiver.StoreLimit{Store: "an overstated store", MaxBody: s.maxBody}
}

// TestCaptureTooLargeForTheStore: a body within MaxBody that the store
// cannot hold after all (a capture over a Badger value log file, where
// BodyLimit said more: New refuses a MaxBody above what it says) is a
// 413, captured without its body as one over MaxBody is; it was a 503
// "capture not stored", which no retry could get past. The captures
// around it stay.
func TestCaptureTooLargeForTheStore(t *testing.T) {
	if testing.Short() {
		t.Skip("writes a body of 64 MiB")
	}
	st := overstated{Store: openStore(t, t.TempDir()), maxBody: 80 << 20}
	srv := start(t, receiver.Config{Store: st, MaxBody: 80 << 20})
	if r := send(t, "POST", srv.URL()+"/before", []byte(`{}`), nil); r.status != 200 {
		t.Fatalf("before: got %d %s, want 200", r.status, r.body)
	}
	huge := bytes.Repeat([]byte("a"), 64<<20)
	r := send(t, "POST", srv.URL()+"/huge", huge, nil)
	var e struct{ Error, Reason string }
	r.json(t, &e)
	if r.status != 413 || e.Error != "too_large" || !strings.Contains(e.Reason, "store") || r.header.Get("Retry-After") != "" {
		t.Errorf("got %d %s (Retry-After %q), want 413 too_large naming the store, without Retry-After", r.status, r.body, r.header.Get("Retry-After"))
	}
	caps, _ := list(t, srv, "path=/huge")
	if len(caps) != 1 {
		t.Fatalf("got %d captures of /huge, want 1", len(caps))
	}
	if c := caps[0]; !c.BodyTruncated || len(c.Body) != 0 || c.Response.Status != 413 || c.BodySize != int64(len(huge)) {
		t.Errorf("got truncated=%v body=%d bytes status=%d size=%d, want truncated, no body, 413, size %d",
			c.BodyTruncated, len(c.Body), c.Response.Status, c.BodySize, len(huge))
	}
	if r := send(t, "POST", srv.URL()+"/after", []byte(`{}`), nil); r.status != 200 {
		t.Fatalf("after: got %d %s, want 200", r.status, r.body)
	}
	if caps, _ := list(t, srv, ""); len(caps) != 3 {
		t.Errorf("got %d captures, want 3", len(caps))
	}
}

func TestCaptureDurable(t *testing.T) {
	dir := t.TempDir()
	st := openStore(t, dir)
	cfg := receiver.Config{Store: st, Listen: "127.0.0.1:0"}
	srv, err := receiver.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	// Closed below, twice, the point of the test; this stops it should
	// the test end before.
	t.Cleanup(func() { srv.Close(context.Background()) })
	r := send(t, "POST", srv.URL()+"/durable", []byte(`{"type":"payment"}`), map[string]string{"webhook-id": "evt_keep"})
	if r.status != 200 {
		t.Fatalf("got %d, want 200", r.status)
	}
	if err := srv.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := srv.Close(context.Background()); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}

	cfg.Store = openStore(t, dir)
	again := start(t, cfg)
	c := only(t, again)
	if c.Path != "/durable" || c.Event != "payment" {
		t.Errorf("after restart: got %s %s, want /durable payment", c.Path, c.Event)
	}
	// The webhook-id index survives too: a redelivery after the restart
	// is still a duplicate of the first capture.
	send(t, "POST", again.URL()+"/durable", []byte(`{}`), map[string]string{"webhook-id": "evt_keep"})
	caps, _ := list(t, again, "webhook_id=evt_keep")
	if len(caps) != 2 || caps[0].DuplicateOf != c.ID {
		t.Errorf("duplicate after restart: got %+v, want duplicate_of %s", caps, c.ID)
	}
}

func TestDuplicateOf(t *testing.T) {
	srv := start(t, receiver.Config{})
	// Concurrent first deliveries of one webhook-id: exactly one is first.
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			send(t, "POST", srv.URL()+"/w", []byte(`{}`), map[string]string{"webhook-id": "evt_same"})
		}()
	}
	wg.Wait()
	send(t, "POST", srv.URL()+"/w", []byte(`{}`), map[string]string{"webhook-id": "evt_other"})
	send(t, "POST", srv.URL()+"/w", []byte(`{}`), nil)

	caps, _ := list(t, srv, "webhook_id=evt_same")
	if len(caps) != 8 {
		t.Fatalf("got %d captures, want 8", len(caps))
	}
	var first []string
	for _, c := range caps {
		if c.DuplicateOf == "" {
			first = append(first, c.ID)
		}
	}
	if len(first) != 1 {
		t.Fatalf("got %d first captures, want 1", len(first))
	}
	for _, c := range caps {
		if c.ID != first[0] && c.DuplicateOf != first[0] {
			t.Errorf("%s: duplicate_of %q, want %q", c.ID, c.DuplicateOf, first[0])
		}
	}
	others, _ := list(t, srv, "webhook_id=evt_other")
	for _, c := range others {
		if c.DuplicateOf != "" {
			t.Errorf("another webhook-id marked duplicate of %s", c.DuplicateOf)
		}
	}
}

func TestEventDerivation(t *testing.T) {
	srv := start(t, receiver.Config{})
	tests := []struct {
		name   string
		method string
		target string
		body   string
		header map[string]string
		want   string
	}{
		{"Header", "POST", "/e", `{"type":"payment"}`, map[string]string{"sidehook-event": "order.created"}, "order.created"},
		{"PayloadInbound", "POST", "/e", `{"type":"inboundMessage"}`, nil, "inbound_message"},
		{"PayloadSend", "POST", "/e", `{"type":"messageSend"}`, nil, "message_send"},
		{"PayloadReport", "POST", "/e", `{"type":"messageStatusUpdate"}`, nil, "delivery_report"},
		{"PayloadPayment", "POST", "/e", `{"type":"payment"}`, nil, "payment"},
		{"CustomValues", "GET", "/e?customerUID=1&fields=a,b", ``, nil, "custom_value_request"},
		{"GetWithoutFields", "GET", "/e?customerUID=1", ``, nil, ""},
		{"PostWithFields", "POST", "/e?fields=a", `{}`, nil, ""},
		{"NoType", "POST", "/e", `{"a":"b"}`, nil, ""},
		{"NotJSON", "POST", "/e", `type=payment`, nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var body []byte
			if tt.body != "" {
				body = []byte(tt.body)
			}
			r := send(t, tt.method, srv.URL()+tt.target, body, tt.header)
			if r.status != 200 {
				t.Fatalf("got %d, want 200", r.status)
			}
			caps, _ := list(t, srv, "limit=1")
			if caps[0].Event != tt.want {
				t.Errorf("event: got %q, want %q", caps[0].Event, tt.want)
			}
		})
	}
}

func TestCustomValues(t *testing.T) {
	vals, err := fixtures.ParseValues([]byte(`{"default":{"fullname":"there"},
		"channels":{"447700900123":{"fullname":"Jane Doe","arrangementamount":"50.00","currency":"GBP"}},
		"customers":{"ACC-10023":{"fullname":"Jane Customer","duedate":"2026-12-01"}}}`))
	if err != nil {
		t.Fatal(err)
	}
	srv := start(t, receiver.Config{Values: vals})
	tests := []struct {
		name  string
		query string
		want  map[string]*string
	}{
		{"Customer", "customerUID=ACC-10023&channelId=447700900123&fields=fullname,duedate,currency",
			map[string]*string{"fullname": ptr("Jane Customer"), "duedate": ptr("2026-12-01"), "currency": ptr("GBP")}},
		{"Channel", "customerUID=&channelId=447700900123&fields=arrangementamount,fullname",
			map[string]*string{"arrangementamount": ptr("50.00"), "fullname": ptr("Jane Doe")}},
		{"Default", "channelId=999&fields=fullname", map[string]*string{"fullname": ptr("there")}},
		{"Unknown", "customerUID=ACC-10023&fields=nope,fullname", map[string]*string{"nope": nil, "fullname": ptr("Jane Customer")}},
		// A client or proxy may repeat fields: every one is asked for, not
		// only the first.
		{"RepeatedFields", "customerUID=ACC-10023&fields=fullname&fields=duedate",
			map[string]*string{"fullname": ptr("Jane Customer"), "duedate": ptr("2026-12-01")}},
		{"RepeatedLists", "customerUID=ACC-10023&fields=fullname,duedate&fields=nope&fields=fullname",
			map[string]*string{"fullname": ptr("Jane Customer"), "duedate": ptr("2026-12-01"), "nope": nil}},
		// The parameter's name read as any query reader reads it.
		{"EscapedName", "customerUID=ACC-10023&fiel%64s=fullname", map[string]*string{"fullname": ptr("Jane Customer")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := send(t, "GET", srv.URL()+"/custom-values?conversationId=97847&"+tt.query, nil, nil)
			if r.status != 200 || !strings.HasPrefix(r.header.Get("Content-Type"), "application/json") {
				t.Fatalf("got %d %s %s, want 200 application/json", r.status, r.header.Get("Content-Type"), r.body)
			}
			var got map[string]*string
			r.json(t, &got)
			if len(got) != len(tt.want) {
				t.Errorf("got %d fields %s, want %d", len(got), r.body, len(tt.want))
			}
			for k, w := range tt.want {
				g, ok := got[k]
				if !ok || (g == nil) != (w == nil) || (g != nil && *g != *w) {
					t.Errorf("%s: got %s, want %v", k, r.body, deref(w))
				}
			}
		})
	}
	t.Run("DemoValuesByDefault", func(t *testing.T) {
		demo := start(t, receiver.Config{})
		r := send(t, "GET", demo.URL()+"/cv?customerUID=ACC-10023&fields=fullname", nil, nil)
		if string(bytes.TrimSpace(r.body)) != `{"fullname":"Jane Doe"}` {
			t.Errorf("got %s, want the demo values", r.body)
		}
	})
}

func ptr(s string) *string { return &s }

func deref(p *string) any {
	if p == nil {
		return nil
	}
	return *p
}

func TestSubscribe(t *testing.T) {
	srv := start(t, receiver.Config{})
	ctx, cancel := context.WithCancel(context.Background())
	sub := srv.Subscribe(ctx, 4)
	send(t, "POST", srv.URL()+"/live", []byte(`{"type":"payment"}`), nil)
	select {
	case c := <-sub.C():
		if c.Path != "/live" {
			t.Errorf("got %s, want /live", c.Path)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no capture published")
	}
	// A full subscriber drops instead of blocking the capture path.
	for i := 0; i < 6; i++ {
		send(t, "POST", srv.URL()+"/fill", nil, nil)
	}
	if sub.Dropped() != 2 {
		t.Errorf("dropped: got %d, want 2", sub.Dropped())
	}
	cancel()
	deadline := time.After(5 * time.Second)
	for {
		select {
		case _, ok := <-sub.C():
			if !ok {
				return
			}
		case <-deadline:
			t.Fatal("channel not closed after the context ended")
		}
	}
}

// TestHandlerWithoutStart: the handler mounted elsewhere captures into
// the store without the receiver listening itself.
func TestHandlerWithoutStart(t *testing.T) {
	st := memstore.New()
	srv, err := receiver.New(receiver.Config{Store: st})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close(context.Background())
	rec := &recorder{header: http.Header{}}
	req, _ := http.NewRequest("POST", "/x", strings.NewReader(`{"type":"payment"}`))
	srv.Handler().ServeHTTP(rec, req)
	if rec.status != 200 {
		t.Errorf("got %d %s, want 200", rec.status, rec.body.String())
	}
	if n, err := st.Count(t.Context(), receiver.Filter{Path: "/x", Event: "payment"}); n != 1 || err != nil {
		t.Errorf("captured: %d, %v; want 1", n, err)
	}
}

type recorder struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (r *recorder) Header() http.Header         { return r.header }
func (r *recorder) Write(b []byte) (int, error) { return r.body.Write(b) }
func (r *recorder) WriteHeader(code int)        { r.status = code }

// TestCaptureLogLine: each capture is one info line with its method, path,
// event, verdict and answer, and the time; nothing else is logged at info
// for it.
func TestCaptureLogLine(t *testing.T) {
	var buf syncBuffer
	log := zerolog.New(&buf).Level(zerolog.InfoLevel).With().Timestamp().Logger()
	srv := start(t, receiver.Config{Logger: log, Verify: auth.VerifyConfig{WebioSecret: []byte(testSecret)}})
	send(t, "POST", srv.URL()+"/hooks", []byte(`{"type":"payment"}`), nil)
	send(t, "GET", srv.URL()+"/values?fields=fullname", nil, map[string]string{"x-webio-token": webioToken(t, testSecret, testOrg)})
	caps, _ := list(t, srv, "")

	var lines []map[string]any
	for line := range strings.Lines(buf.String()) {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		if m["message"] == "captured" {
			lines = append(lines, m)
		}
	}
	if len(lines) != 2 {
		t.Fatalf("%d capture lines, want 2:\n%s", len(lines), buf.String())
	}
	want := []map[string]any{
		{"level": "info", "method": "POST", "path": "/hooks", "event": "payment", "verdict": "invalid", "status": float64(401), "id": caps[1].ID},
		{"level": "info", "method": "GET", "path": "/values", "event": "custom_value_request", "verdict": "valid", "status": float64(200), "id": caps[0].ID},
	}
	for i, w := range want {
		for k, v := range w {
			if lines[i][k] != v {
				t.Errorf("line %d: %s = %v, want %v", i, k, lines[i][k], v)
			}
		}
		if _, err := time.Parse(time.RFC3339, fmt.Sprint(lines[i]["time"])); err != nil {
			t.Errorf("line %d: time %v: %v", i, lines[i]["time"], err)
		}
	}
}

// syncBuffer is a bytes.Buffer safe for the server's goroutines to write
// while the test reads.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestCaptureRawQuery: the query is kept as sent, byte for byte. Go's
// server takes a request line whose query holds bytes that are not UTF-8;
// the capture's JSON carries such a query as base64 with
// "query_encoding":"base64" (as a body is carried), through the store and
// the API, and a replay sends the bytes that came in.
func TestCaptureRawQuery(t *testing.T) {
	srv := start(t, receiver.Config{})
	sent := make(chan string, 1)
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// RequestURI is the request line's target, unmodified.
		sent <- r.RequestURI
	}))
	t.Cleanup(target.Close)
	tests := []struct {
		name     string
		query    string
		wantJSON string // the query member, and query_encoding when any
	}{
		{"RawByte", "name=\xff&x=1", `"query":"bmFtZT3/Jng9MQ==","query_encoding":"base64"`},
		{"RawLatin1", "fields=fullname&n=Ren\xe9e", `"query":"ZmllbGRzPWZ1bGxuYW1lJm49UmVu6WU=","query_encoding":"base64"`},
		{"Escaped", "name=%FF", `"query":"name=%FF","remote_addr"`},
		{"RawUTF8", "name=Ren\xc3\xa9e", `"query":"name=Renée","remote_addr"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := "/raw/" + tt.name
			if s := rawGet(t, srv.Addr(), path+"?"+tt.query); s != 200 {
				t.Fatalf("got %d, want 200", s)
			}
			caps, _ := list(t, srv, "path="+path)
			if len(caps) != 1 {
				t.Fatalf("got %d captures, want 1", len(caps))
			}
			c := caps[0]
			if c.Query != tt.query {
				t.Errorf("query: got %q, want %q", c.Query, tt.query)
			}
			raw := send(t, "GET", srv.URL()+"/_sidehook/requests/"+c.ID, nil, nil)
			if !bytes.Contains(raw.body, []byte(tt.wantJSON)) {
				t.Errorf("capture JSON: got %s, want it to hold %s", raw.body, tt.wantJSON)
			}
			r, ans := replayOf(t, srv, c.ID, `{"to":"`+target.URL+`"}`)
			if r.status != 200 || ans.Status != 200 {
				t.Fatalf("replay: got %d %s, want 200 with a 200", r.status, r.body)
			}
			if got, want := <-sent, path+"?"+tt.query; got != want {
				t.Errorf("replay sent %q, want %q", got, want)
			}
		})
	}
}

// TestCaptureHeader: Header finds a header whatever case the test spells
// it in; the map's keys are lower-case, so c.Headers["Webhook-Id"] and
// http.Header(c.Headers).Get("webhook-id") (which canonicalises the name)
// both find nothing.
func TestCaptureHeader(t *testing.T) {
	c := receiver.Capture{Headers: map[string][]string{
		"x-team":     {"billing", "ops"},
		"webhook-id": {"evt_1"},
		"empty":      {},
	}}
	tests := []struct{ name, want string }{
		{"x-team", "billing"},
		{"X-Team", "billing"},
		{"WEBHOOK-ID", "evt_1"},
		{"Webhook-Id", "evt_1"},
		{"empty", ""},
		{"absent", ""},
	}
	for _, tt := range tests {
		if got := c.Header(tt.name); got != tt.want {
			t.Errorf("Header(%q): got %q, want %q", tt.name, got, tt.want)
		}
	}
	var none receiver.Capture
	if got := none.Header("x-team"); got != "" {
		t.Errorf("Header of a capture without headers: got %q, want \"\"", got)
	}
}

// TestCaptureHostHeader: a capture holds the Host the request named, under
// "host" among its headers, as a WireMock user expects to assert on it
// (net/http moves it out of the header map into r.Host); a request with
// none (HTTP/1.0) has none. The exports and a replay send the host they
// aim at, never the captured one beside it: no curl -H host, no HAR
// request header host, and a replay lands with the target's Host alone.
func TestCaptureHostHeader(t *testing.T) {
	srv := start(t, receiver.Config{})
	addr := srv.Addr()
	tests := []struct {
		name string
		// sendReq sends one request to /host-<name> and returns its status.
		sendReq func(t *testing.T, path string) int
		want    []string // the capture's host header; nil for none
	}{
		{"Named", func(t *testing.T, path string) int {
			req, err := http.NewRequest("POST", srv.URL()+path, strings.NewReader(`{}`))
			if err != nil {
				t.Fatal(err)
			}
			req.Host = "hooks.example:9000"
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			return resp.StatusCode
		}, []string{"hooks.example:9000"}},
		{"Listened", func(t *testing.T, path string) int {
			return send(t, "POST", srv.URL()+path, []byte(`{}`), nil).status
		}, []string{addr}},
		{"HTTP10WithoutHost", func(t *testing.T, path string) int {
			conn, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			if _, err := io.WriteString(conn, "POST "+path+" HTTP/1.0\r\nContent-Length: 2\r\n\r\n{}"); err != nil {
				t.Fatal(err)
			}
			resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			return resp.StatusCode
		}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := "/host-" + tt.name
			if status := tt.sendReq(t, path); status != 200 {
				t.Fatalf("got %d, want 200", status)
			}
			caps, _ := list(t, srv, "path="+path)
			if len(caps) != 1 {
				t.Fatalf("got %d captures of %s, want 1", len(caps), path)
			}
			c := caps[0]
			if got := c.Headers["host"]; !slices.Equal(got, tt.want) {
				t.Errorf("headers[host]: got %q, want %q", got, tt.want)
			}

			ex := send(t, "GET", srv.URL()+"/_sidehook/requests/export?format=curl&path="+path, nil, nil)
			if strings.Contains(strings.ToLower(string(ex.body)), "-h 'host") {
				t.Errorf("curl export sets a host header:\n%s", ex.body)
			}
			ex = send(t, "GET", srv.URL()+"/_sidehook/requests/export?format=har&path="+path, nil, nil)
			var har struct {
				Log struct {
					Entries []struct {
						Request struct {
							URL     string
							Headers []struct{ Name, Value string }
						}
					}
				}
			}
			ex.json(t, &har)
			if len(har.Log.Entries) != 1 {
				t.Fatalf("har: got %d entries, want 1", len(har.Log.Entries))
			}
			for _, h := range har.Log.Entries[0].Request.Headers {
				if strings.EqualFold(h.Name, "host") {
					t.Errorf("har request header %s: %s, want none beside the url %s", h.Name, h.Value, har.Log.Entries[0].Request.URL)
				}
			}

			// Replayed to this receiver: one Host, the one it was sent to.
			if r, ans := replayOf(t, srv, c.ID, `{}`); r.status != 200 || ans.Status != 200 {
				t.Fatalf("replay: got %d %s, want the receiver's 200", r.status, r.body)
			}
			caps, _ = list(t, srv, "path="+path)
			if len(caps) != 2 {
				t.Fatalf("got %d captures of %s after the replay, want 2", len(caps), path)
			}
			if got := caps[0].Headers["host"]; !slices.Equal(got, []string{addr}) {
				t.Errorf("replay's host: got %q, want [%s]", got, addr)
			}
		})
	}
}
