package replay_test

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/time/rate"

	"github.com/sidehook/sidehook/internal/auth"
	"github.com/sidehook/sidehook/receiver/receiverapi"
	"github.com/sidehook/sidehook/receiver/receivertest"
	"github.com/sidehook/sidehook/replay"
)

// allKeys signs with every scheme, keyed as the verifying receiver is.
func allKeys(tb testing.TB) ([]string, auth.OutboundKeys) {
	tb.Helper()
	tok, err := auth.MintWebioToken([]byte(secret), auth.WebioClaims{Org: "demo"})
	if err != nil {
		tb.Fatal(err)
	}
	jwtKey, err := auth.HMACKey([]byte(secret))
	if err != nil {
		tb.Fatal(err)
	}
	std, err := auth.ParseStandardSecret(whsec)
	if err != nil {
		tb.Fatal(err)
	}
	return auth.Schemes(), auth.OutboundKeys{WebioToken: tok, JWT: &jwtKey, Org: "demo", Standard: [][]byte{std}}
}

func verifyingReceiver(tb testing.TB) *receivertest.Server {
	tb.Helper()
	return receivertest.NewServer(tb,
		receivertest.WithWebioSecret(secret, "demo"),
		receivertest.WithJWTSecret(secret),
		receivertest.WithStandardSecret(whsec))
}

// A capture replayed from one receiver to another arrives with the same
// bytes, a fresh signature the second verifies, and its origin named.
func TestReplayReceiverToReceiver(t *testing.T) {
	src := receivertest.NewServer(t)
	dst := verifyingReceiver(t)
	binary := string([]byte{0xff, 0x00, '{', 0xfe, '\n'})
	post(t, src.URL+"/webhooks?team=billing", `{"type":"payment","amount":"50.00"}`,
		map[string]string{"webhook-id": "evt_A", "x-webio-token": "stale", "Content-Type": "application/json", "X-Team": "billing"})
	post(t, src.URL+"/raw", binary, map[string]string{"webhook-id": "evt_B"})
	caps := src.Expect(receivertest.Filter{}, 2, 10*time.Second)

	items, err := (&receiverapi.Source{Client: receiverClient(t, src.URL)}).Select(context.Background(), replay.Selection{})
	if err != nil {
		t.Fatal(err)
	}
	schemes, keys := allKeys(t)
	var progress []int
	b := replay.Batch{
		Options:  replay.Options{To: dst.URL, Schemes: schemes, Keys: keys, UserAgent: "sidehook/test"},
		OnResult: func(done, total int, _ replay.Result) { progress = append(progress, done, total) },
	}
	results, err := b.Run(context.Background(), items)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range results {
		if !r.OK() {
			t.Errorf("result: got %+v, want a 2xx", r)
		}
	}
	if len(progress) != 4 || progress[0] != 1 || progress[2] != 2 || progress[3] != 2 {
		t.Errorf("progress: got %v, want [1 2 2 2]", progress)
	}

	got := dst.Expect(receivertest.Filter{}, 2, 10*time.Second)
	byReplayOf := map[string]int{}
	for i, c := range got {
		byReplayOf[c.Headers["sidehook-replay-of"][0]] = i
	}
	for _, orig := range caps {
		i, ok := byReplayOf[orig.ID]
		if !ok {
			t.Fatalf("no replay of %s arrived", orig.ID)
		}
		c := got[i]
		if !bytes.Equal(c.Body, orig.Body) {
			t.Errorf("%s: body %q, want %q", orig.ID, c.Body, orig.Body)
		}
		if c.Verdict.Status != auth.StatusValid {
			t.Errorf("%s: verdict %+v, want valid", orig.ID, c.Verdict)
		}
		if c.WebhookID != orig.WebhookID || c.Path != orig.Path || c.Query != orig.Query || c.Method != orig.Method {
			t.Errorf("%s: got %s %s?%s webhook-id %s, want the original's method, path, query and webhook-id", orig.ID, c.Method, c.Path, c.Query, c.WebhookID)
		}
		if tok := c.Headers["x-webio-token"]; len(tok) != 1 || tok[0] == "stale" {
			t.Errorf("%s: x-webio-token %v, want a fresh one", orig.ID, tok)
		}
	}
	if c := got[byReplayOf[caps[1].ID]]; c.Headers["x-team"][0] != "billing" {
		t.Errorf("headers not kept: %v", c.Headers)
	}
}

// The same bytes replayed twice get two different jwt ids, so the
// receiver's replay protection accepts both.
func TestReplayFreshJTI(t *testing.T) {
	dst := receivertest.NewServer(t, receivertest.WithJWTSecret(secret))
	key, _ := auth.HMACKey([]byte(secret))
	it := replay.Item{ID: "cap_1", Method: "POST", Path: "/h", Body: []byte(`{}`), WebhookID: "evt_1"}
	b := replay.Batch{Options: replay.Options{To: dst.URL, Schemes: []string{auth.SchemeJWT}, Keys: auth.OutboundKeys{JWT: &key}}}
	results, err := b.Run(context.Background(), []replay.Item{it, it})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range results {
		if r.Status != 200 {
			t.Errorf("got %+v, want 200 for both", r)
		}
	}
	for _, c := range dst.Expect(receivertest.Filter{}, 2, 10*time.Second) {
		if c.Verdict.Status != auth.StatusValid {
			t.Errorf("verdict %+v, want valid", c.Verdict)
		}
	}
}

// Deliveries replayed from a relay go by default to their endpoint, with
// the event's bytes, the relay's headers and a valid fresh token.
func TestBatchCheck(t *testing.T) {
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1) }))
	t.Cleanup(srv.Close)
	ok := replay.Item{ID: "ok", Target: srv.URL, WebhookID: "evt_1"}
	standard := replay.Options{Schemes: []string{auth.SchemeStandard}, Keys: auth.OutboundKeys{Standard: [][]byte{[]byte("k")}}}
	tests := []struct {
		name string
		it   replay.Item
		opts replay.Options
		want string
		need replay.Need
	}{
		{"NoTarget", replay.Item{ID: "a", Path: "/x"}, replay.Options{}, "no target", replay.NeedTarget},
		{"Tunnel", replay.Item{ID: "a", Target: "tunnel://laptop/hooks"}, replay.Options{}, "want an http:// or https:// URL", replay.NeedTarget},
		{"BodyMissing", replay.Item{ID: "a", Target: srv.URL, BodyMissing: true}, replay.Options{}, "body was not kept", replay.NeedBody},
		{"StandardNoID", replay.Item{ID: "a", Target: srv.URL}, standard, "no webhook-id", replay.NeedWebhookID},
		{"NoKey", replay.Item{ID: "a", Target: srv.URL}, replay.Options{Schemes: []string{auth.SchemeWebioToken}}, "no webio token", replay.NeedKey},
		{"UnknownScheme", replay.Item{ID: "a", Target: srv.URL}, replay.Options{Schemes: []string{"magic"}}, "unknown scheme", replay.NeedScheme},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Fail-fast: checked first, nothing sent.
			before := hits.Load()
			b := replay.Batch{Options: tt.opts, FailFast: true}
			results, err := b.Run(context.Background(), []replay.Item{ok, tt.it})
			var ce *replay.CheckError
			if !errors.As(err, &ce) || !strings.Contains(err.Error(), tt.want) || len(results) != 0 {
				t.Errorf("fail-fast: got %v, %v; want a *CheckError containing %q", results, err, tt.want)
			}
			if ce != nil {
				last := ce.Items[len(ce.Items)-1]
				var nr *replay.NotReplayableError
				if last.ID != "a" || !errors.As(last.Err, &nr) || nr.Need != tt.need {
					t.Errorf("fail-fast: items %+v, want a needing %s", ce.Items, tt.need)
				}
			}
			if n := hits.Load() - before; n != 0 {
				t.Errorf("fail-fast: %d requests sent, want none", n)
			}

			// Without: the good item goes, the bad one is reported unsent.
			b.FailFast = false
			results, err = b.Run(context.Background(), []replay.Item{ok, tt.it})
			if err != nil || len(results) != 2 {
				t.Fatalf("got %+v, %v; want two results", results, err)
			}
			if tt.need != replay.NeedKey && tt.need != replay.NeedScheme && !results[0].OK() {
				t.Errorf("good item: got %+v, want OK", results[0])
			}
			if results[1].OK() || results[1].Status != 0 || !strings.Contains(results[1].Error, tt.want) {
				t.Errorf("bad item: got %+v, want unsent with %q", results[1], tt.want)
			}
		})
	}
	// With a body to send instead, a missing body is fine.
	b := replay.Batch{Options: replay.Options{Body: []byte("new")}}
	if err := b.Check([]replay.Item{{ID: "a", Target: srv.URL, BodyMissing: true}}); err != nil {
		t.Errorf("got %v", err)
	}
	// A lower-case webhook-id header, as in a capture's stored headers,
	// is enough for a standard signature.
	b = replay.Batch{Options: replay.Options{Schemes: []string{auth.SchemeStandard}, Keys: auth.OutboundKeys{Standard: [][]byte{[]byte("k")}}}}
	if err := b.Check([]replay.Item{{ID: "a", Target: srv.URL, Header: http.Header{"webhook-id": {"evt_1"}}}}); err != nil {
		t.Errorf("got %v", err)
	}
}

// One unreachable target fails its item; the rest are still replayed.
func TestBatchPartialFailure(t *testing.T) {
	dead := httptest.NewServer(http.NotFoundHandler())
	deadURL := dead.URL
	dead.Close()
	dst := receivertest.NewServer(t)
	items := []replay.Item{
		{ID: "a", Target: dst.URL + "/one", Body: []byte("1")},
		{ID: "b", Target: deadURL + "/two", Body: []byte("2")},
		{ID: "c", Target: dst.URL + "/three", Body: []byte("3")},
	}
	results, err := (&replay.Batch{}).Run(context.Background(), items)
	if err != nil || len(results) != 3 {
		t.Fatalf("got %v, %v", results, err)
	}
	if !results[0].OK() || results[1].OK() || !strings.Contains(results[1].Error, "refused") || !results[2].OK() {
		t.Errorf("got %+v, want the first and third OK and the second refused", results)
	}
	dst.Expect(receivertest.Filter{}, 2, 10*time.Second)
}

func TestBatchCanceled(t *testing.T) {
	dst := receivertest.NewServer(t)
	items := []replay.Item{{ID: "a", Target: dst.URL}, {ID: "b", Target: dst.URL}, {ID: "c", Target: dst.URL}}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	b := replay.Batch{OnResult: func(done, _ int, _ replay.Result) {
		if done == 1 {
			cancel()
		}
	}}
	results, err := b.Run(ctx, items)
	if !errors.Is(err, context.Canceled) || len(results) != 1 || !results[0].OK() {
		t.Errorf("got %+v, %v; want one result and context.Canceled", results, err)
	}
}

func TestBatchRate(t *testing.T) {
	dst := receivertest.NewServer(t)
	items := []replay.Item{{ID: "a", Target: dst.URL}, {ID: "b", Target: dst.URL}}
	slow := rate.NewLimiter(rate.Every(time.Hour), 1)
	// A dry run is never paced.
	results, err := (&replay.Batch{Options: replay.Options{DryRun: true}, Limiter: slow}).Run(context.Background(), items)
	if err != nil || len(results) != 2 {
		t.Fatalf("dry run: got %v, %v", results, err)
	}
	// The second send would wait an hour: the deadline stops it, with
	// the first one's result kept.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	results, err = (&replay.Batch{Limiter: slow}).Run(ctx, items)
	if err == nil || len(results) != 1 || !results[0].OK() {
		t.Errorf("got %+v, %v; want one result and an error", results, err)
	}
	if n := len(dst.Requests(receivertest.Filter{})); n != 1 {
		t.Errorf("got %d requests, want 1", n)
	}
}

// With FailFast, the first failed replay stops the batch.
func TestBatchFailFastStops(t *testing.T) {
	dead := httptest.NewServer(http.NotFoundHandler())
	deadURL := dead.URL
	dead.Close()
	dst := receivertest.NewServer(t)
	items := []replay.Item{
		{ID: "a", Target: dst.URL + "/one"},
		{ID: "b", Target: deadURL + "/two"},
		{ID: "c", Target: dst.URL + "/three"},
	}
	results, err := (&replay.Batch{FailFast: true}).Run(context.Background(), items)
	if !errors.Is(err, replay.ErrStopped) || len(results) != 2 || !results[0].OK() || results[1].OK() {
		t.Fatalf("got %+v, %v; want two results and ErrStopped", results, err)
	}
	if n := len(dst.Requests(receivertest.Filter{})); n != 1 {
		t.Errorf("dst got %d requests, want 1", n)
	}
}

func receiverClient(t *testing.T, base string) *receiverapi.Client {
	t.Helper()
	c, err := receiverapi.New(base, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	return c
}
