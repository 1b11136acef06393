package receivertest_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sidehook/sidehook/fixtures"
	"github.com/sidehook/sidehook/internal/auth"
	"github.com/sidehook/sidehook/receiver"
	"github.com/sidehook/sidehook/receiver/receivertest"
)

const secret = "0123456789abcdef0123456789abcdef"

func post(t *testing.T, url string, hdr map[string]string) int {
	t.Helper()
	req, _ := http.NewRequest("POST", url, strings.NewReader(`{"type":"payment"}`))
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func TestServer(t *testing.T) {
	rcv := receivertest.NewServer(t, receivertest.WithWebioSecret(secret, "demo"))
	if !strings.HasPrefix(rcv.URL, "http://127.0.0.1:") {
		t.Fatalf("URL: got %q", rcv.URL)
	}
	tok, _ := auth.MintWebioToken([]byte(secret), auth.WebioClaims{Org: "demo"})
	if s := post(t, rcv.URL+"/ok", map[string]string{"x-webio-token": tok}); s != 200 {
		t.Errorf("valid token: got %d", s)
	}
	if s := post(t, rcv.URL+"/bad", nil); s != 401 {
		t.Errorf("no token: got %d", s)
	}
	if got := rcv.Requests(receivertest.Filter{Verdict: auth.StatusValid}); len(got) != 1 || got[0].Path != "/ok" {
		t.Errorf("Requests(valid): got %d", len(got))
	}
	if got := rcv.Requests(receivertest.Filter{}); len(got) != 2 {
		t.Errorf("Requests(all): got %d, want 2", len(got))
	}

	if err := rcv.SetRules(receiver.Rule{Respond: receiver.Respond{Status: 500}}); err != nil {
		t.Fatal(err)
	}
	if s := post(t, rcv.URL+"/x", map[string]string{"x-webio-token": tok}); s != 500 {
		t.Errorf("after SetRules: got %d", s)
	}
	if err := rcv.SetRules(receiver.Rule{Respond: receiver.Respond{Status: 42}}); err == nil {
		t.Error("SetRules accepted status 42")
	}

	rcv.Reset()
	if got := rcv.Requests(receivertest.Filter{}); len(got) != 0 {
		t.Errorf("after Reset: %d captures", len(got))
	}
	if s := post(t, rcv.URL+"/x", map[string]string{"x-webio-token": tok}); s != 200 {
		t.Errorf("after Reset the rule is gone: got %d", s)
	}
}

func TestWaitTimeout(t *testing.T) {
	rcv := receivertest.NewServer(t)
	post(t, rcv.URL+"/one", nil)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	caps, err := rcv.Wait(ctx, receivertest.Filter{}, 2)
	if !errors.Is(err, context.DeadlineExceeded) || len(caps) != 1 {
		t.Errorf("got %d, %v; want 1 and a deadline error", len(caps), err)
	}
}

func TestOptions(t *testing.T) {
	vals, _ := fixtures.ParseValues([]byte(`{"default":{"greeting":"hi"}}`))
	rcv := receivertest.NewServer(t,
		receivertest.WithJWTSecret(secret),
		receivertest.WithStandardSecret(auth.FormatStandardSecret([]byte("a-standard-secret-of-32-bytes!!!"))),
		receivertest.WithValues(vals),
	)
	if s := post(t, rcv.URL+"/x", nil); s != 401 {
		t.Errorf("jwt and standard configured, none sent: got %d", s)
	}
	c := rcv.Requests(receivertest.Filter{})[0]
	if c.Verdict.Scheme != auth.SchemeJWT {
		t.Errorf("first failing scheme: got %q", c.Verdict.Scheme)
	}
}
