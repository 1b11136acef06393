package receivertest_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/sidehook/sidehook/fixtures"
	"github.com/sidehook/sidehook/receiver"
	"github.com/sidehook/sidehook/receiver/memstore"
	"github.com/sidehook/sidehook/receiver/receivertest"
)

const (
	secret = "0123456789abcdef0123456789abcdef"
	other  = "fedcba9876543210fedcba9876543210"
)

var body = []byte(`{"type":"payment"}`)

// do sends req with the server's client and returns the status.
func do(t *testing.T, rcv *receivertest.Server, req *http.Request) int {
	t.Helper()
	resp, err := rcv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

func post(t *testing.T, rcv *receivertest.Server, path string, signers ...receivertest.Signer) int {
	t.Helper()
	return do(t, rcv, receivertest.NewRequest(t, "POST", rcv.URL+path, body, signers...))
}

func newKey(t *testing.T, alg string) receivertest.Key {
	t.Helper()
	k, err := receivertest.GenerateKey(alg)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func publicPEM(t *testing.T, k receivertest.Key) []byte {
	t.Helper()
	pem, err := k.PublicKeyPEM()
	if err != nil {
		t.Fatal(err)
	}
	return pem
}

// unsignedSHA256 signs a JWT without a sha256 claim, which the helpers
// never make: only WithRequireSHA256 refuses it.
func unsignedSHA256(req *http.Request, _ []byte) error {
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
		"iss": "webio", "exp": time.Now().Add(time.Minute).Unix(), "jti": time.Now().String(),
	}).SignedString([]byte(secret))
	req.Header.Set("Authorization", "Bearer "+tok)
	return err
}

// TestVerifyOptions: for each verification option of the CLI, a request
// signed with the helpers passes and a wrong one is refused with an
// invalid verdict.
func TestVerifyOptions(t *testing.T) {
	es, ed, rs := newKey(t, "ES256"), newKey(t, "EdDSA"), newKey(t, "RS256")
	whsec := receivertest.NewStandardSecret()
	expired := func(ago time.Duration) receivertest.JWTClaims {
		return receivertest.JWTClaims{IssuedAt: time.Now().Add(-time.Minute - ago), TTL: time.Minute}
	}
	tests := []struct {
		name      string
		opts      []receivertest.Option
		good, bad receivertest.Signer
		badReason string
	}{
		{"WebioSecret", []receivertest.Option{receivertest.WithWebioSecret(secret, "demo")},
			receivertest.WebioToken(secret, "demo"), receivertest.WebioToken(other, "demo"), "signature"},
		{"WebioOrg", []receivertest.Option{receivertest.WithWebioSecret(secret, "demo")},
			receivertest.WebioToken(secret, "demo"), receivertest.WebioToken(secret, "acme"), "org"},
		{"JWTSecret", []receivertest.Option{receivertest.WithJWTSecret(secret)},
			receivertest.JWT(receivertest.SecretKey(secret), receivertest.JWTClaims{}),
			receivertest.JWT(receivertest.SecretKey(other), receivertest.JWTClaims{}), "signature"},
		{"JWTPublicKey", []receivertest.Option{receivertest.WithJWTPublicKey(publicPEM(t, es))},
			receivertest.JWT(es, receivertest.JWTClaims{}), receivertest.JWT(newKey(t, "ES256"), receivertest.JWTClaims{}), "signature"},
		{"JWKS", []receivertest.Option{receivertest.WithJWKSURL(receivertest.ServeJWKS(t, ed, rs))},
			receivertest.JWT(rs, receivertest.JWTClaims{}), receivertest.JWT(newKey(t, "EdDSA"), receivertest.JWTClaims{}), "key id"},
		{"Issuer", []receivertest.Option{receivertest.WithJWTSecret(secret), receivertest.WithIssuer("acme")},
			receivertest.JWT(receivertest.SecretKey(secret), receivertest.JWTClaims{Issuer: "acme"}),
			receivertest.JWT(receivertest.SecretKey(secret), receivertest.JWTClaims{Issuer: "evil"}), "issuer"},
		{"Audience", []receivertest.Option{receivertest.WithJWTSecret(secret), receivertest.WithAudience("ep_1")},
			receivertest.JWT(receivertest.SecretKey(secret), receivertest.JWTClaims{Audience: "ep_1"}),
			receivertest.JWT(receivertest.SecretKey(secret), receivertest.JWTClaims{Audience: "ep_2"}), "audience"},
		{"Leeway", []receivertest.Option{receivertest.WithJWTSecret(secret), receivertest.WithLeeway(time.Minute)},
			receivertest.JWT(receivertest.SecretKey(secret), expired(30*time.Second)),
			receivertest.JWT(receivertest.SecretKey(secret), expired(2*time.Minute)), "expired"},
		{"RequireSHA256", []receivertest.Option{receivertest.WithJWTSecret(secret), receivertest.WithRequireSHA256()},
			receivertest.JWT(receivertest.SecretKey(secret), receivertest.JWTClaims{}), unsignedSHA256, "sha256"},
		{"StandardSecret", []receivertest.Option{receivertest.WithStandardSecret(whsec)},
			receivertest.StandardWebhooks(whsec, "msg_1"), receivertest.StandardWebhooks(receivertest.NewStandardSecret(), "msg_2"), "signature"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rcv := receivertest.NewServer(t, tt.opts...)
			if s := post(t, rcv, "/good", tt.good); s != 200 {
				t.Errorf("signed with the helpers: got %d, want 200", s)
			}
			if s := post(t, rcv, "/bad", tt.bad); s != 401 {
				t.Errorf("signed wrong: got %d, want 401", s)
			}
			good := rcv.Requests(receivertest.Filter{Path: "/good"})
			if len(good) != 1 || good[0].Verdict.Status != receivertest.VerdictValid {
				t.Fatalf("good: %+v, want one, valid", good)
			}
			bad := rcv.Requests(receivertest.Filter{Path: "/bad"})
			if len(bad) != 1 || bad[0].Verdict.Status != receivertest.VerdictInvalid || !strings.Contains(bad[0].Verdict.Reason, tt.badReason) {
				t.Errorf("bad: got %+v, want invalid with a reason naming %q", bad, tt.badReason)
			}
		})
	}
	// The option without its key material stays off: the same unsigned
	// token passes without WithRequireSHA256.
	rcv := receivertest.NewServer(t, receivertest.WithJWTSecret(secret))
	if s := post(t, rcv, "/x", unsignedSHA256); s != 200 {
		t.Errorf("a jwt without sha256 and no WithRequireSHA256: got %d, want 200", s)
	}
}

// TestClaims: a capture's claims carry integer times as int64.
func TestClaims(t *testing.T) {
	rcv := receivertest.NewServer(t, receivertest.WithJWTSecret(secret))
	at := time.Now().Truncate(time.Second)
	post(t, rcv, "/c", receivertest.JWT(receivertest.SecretKey(secret), receivertest.JWTClaims{Subject: "demo", IssuedAt: at, TTL: time.Minute}))
	c := rcv.Requests(receivertest.Filter{})[0]
	exp, ok := c.Verdict.Claims["exp"].(int64)
	if !ok || exp != at.Add(time.Minute).Unix() {
		t.Errorf("exp: got %T %v, want int64 %d", c.Verdict.Claims["exp"], c.Verdict.Claims["exp"], at.Add(time.Minute).Unix())
	}
	if sub, _ := c.Verdict.Claims["sub"].(string); sub != "demo" {
		t.Errorf("sub: got %v, want demo", c.Verdict.Claims["sub"])
	}
	// The signers' default iss is the relay's default issuer, as their
	// docs say: a test pairing them with WithIssuer needs that name.
	if iss, _ := c.Verdict.Claims["iss"].(string); iss != "sidehook" {
		t.Errorf("jwt iss: got %v, want sidehook", c.Verdict.Claims["iss"])
	}
	webio := receivertest.NewServer(t, receivertest.WithWebioSecret(secret, "demo"))
	post(t, webio, "/w", receivertest.WebioToken(secret, "demo"))
	if iss, _ := webio.Requests(receivertest.Filter{})[0].Verdict.Claims["iss"].(string); iss != "sidehook" {
		t.Errorf("webio-token iss: got %v, want sidehook", iss)
	}
}

func TestServer(t *testing.T) {
	rcv := receivertest.NewServer(t, receivertest.WithWebioSecret(secret, "demo"))
	if !strings.HasPrefix(rcv.URL, "http://127.0.0.1:") {
		t.Fatalf("URL: got %q, want http://127.0.0.1:port", rcv.URL)
	}
	tok := receivertest.WebioToken(secret, "demo")
	if s := post(t, rcv, "/ok", tok); s != 200 {
		t.Errorf("valid token: got %d, want 200", s)
	}
	if s := post(t, rcv, "/bad"); s != 401 {
		t.Errorf("no token: got %d", s)
	}
	if got := rcv.Requests(receivertest.Filter{Verdict: receivertest.VerdictValid}); len(got) != 1 || got[0].Path != "/ok" {
		t.Errorf("Requests(valid): got %d, want 1, to /ok", len(got))
	}
	if got := rcv.Requests(receivertest.Filter{}); len(got) != 2 {
		t.Errorf("Requests(all): got %d, want 2", len(got))
	}

	rcv.SetRules(receiver.Rule{Respond: receiver.Respond{Status: 500}})
	if s := post(t, rcv, "/x", tok); s != 500 {
		t.Errorf("after SetRules: got %d, want 500", s)
	}

	rcv.Reset()
	if got := rcv.Requests(receivertest.Filter{}); len(got) != 0 {
		t.Errorf("after Reset: %d captures, want 0", len(got))
	}
	if s := post(t, rcv, "/x", tok); s != 200 {
		t.Errorf("after Reset the rule is gone: got %d, want 200", s)
	}
}

func TestWaitTimeout(t *testing.T) {
	rcv := receivertest.NewServer(t)
	post(t, rcv, "/one")
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	caps, err := rcv.Wait(ctx, receivertest.Filter{}, 2)
	if !errors.Is(err, context.DeadlineExceeded) || len(caps) != 1 {
		t.Errorf("got %d, %v; want 1 and a deadline error", len(caps), err)
	}
}

func TestOptions(t *testing.T) {
	vals, err := fixtures.ParseValues([]byte(`{"default":{"greeting":"hi"}}`))
	if err != nil {
		t.Fatal(err)
	}
	rcv := receivertest.NewServer(t,
		receivertest.WithJWTSecret(secret),
		receivertest.WithStandardSecret(receivertest.NewStandardSecret()),
		receivertest.WithValues(vals),
	)
	if s := post(t, rcv, "/x"); s != 401 {
		t.Errorf("jwt and standard configured, none sent: got %d, want 401", s)
	}
	c := rcv.Requests(receivertest.Filter{})[0]
	if c.Verdict.Scheme != "jwt" {
		t.Errorf("first failing scheme: got %q, want \"jwt\"", c.Verdict.Scheme)
	}
}

// TestBadOption: an option that cannot apply fails the test at once.
func TestBadOption(t *testing.T) {
	for name, opt := range map[string]receivertest.Option{
		"PublicKey": receivertest.WithJWTPublicKey([]byte("not a pem")),
		"Standard":  receivertest.WithStandardSecret("whsec_!"),
		"Leeway":    receivertest.WithLeeway(-time.Second),
		"Values":    receivertest.WithValuesJSON(`{"defaults":{"fullname":"there"}}`),
	} {
		t.Run(name, func(t *testing.T) {
			ft := &fatalT{TB: t}
			func() {
				defer func() { recover() }()
				receivertest.NewServer(ft, opt)
			}()
			if !ft.failed {
				t.Error("NewServer did not fail the test")
			}
		})
	}
}

// fatalT records a Fatalf instead of ending the test that runs it.
type fatalT struct {
	testing.TB
	failed bool
}

func (t *fatalT) Helper() {}
func (t *fatalT) Fatalf(string, ...any) {
	t.failed = true
	panic("fatal")
}

// fatalTB records a Fatalf and ends the calling goroutine, as testing.T
// does, so a helper's failure can be checked.
type fatalTB struct {
	testing.TB
	msg string
}

func (f *fatalTB) Helper() {}
func (f *fatalTB) Fatalf(format string, args ...any) {
	f.msg = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

func TestExpect(t *testing.T) {
	rcv := receivertest.NewServer(t)
	post(t, rcv, "/one")
	post(t, rcv, "/two")
	caps := rcv.Expect(receivertest.Filter{}, 2, 5*time.Second)
	if len(caps) != 2 || caps[0].Path != "/two" || caps[1].Path != "/one" {
		t.Errorf("got %d captures, want /two then /one", len(caps))
	}

	ftb := &fatalTB{TB: t}
	short := receivertest.NewServer(ftb)
	done := make(chan struct{})
	go func() {
		defer close(done)
		short.Expect(receivertest.Filter{}, 1, 50*time.Millisecond)
	}()
	<-done
	if !strings.Contains(ftb.msg, "for 1 request") {
		t.Errorf("Expect of what never came: got failure %q, want it to say what it waited for", ftb.msg)
	}
}

// TestIn: a server shared by subtests reports to the subtest that uses it
// through In, never to the test that made it.
func TestIn(t *testing.T) {
	parent := &fatalTB{TB: t}
	rcv := receivertest.NewServer(parent)
	post(t, rcv, "/shared")
	t.Run("Found", func(t *testing.T) {
		if caps := rcv.In(t).Expect(receivertest.Filter{Path: "/shared"}, 1, 5*time.Second); len(caps) != 1 {
			t.Errorf("got %d captures, want 1", len(caps))
		}
	})
	sub := &fatalTB{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		rcv.In(sub).Expect(receivertest.Filter{Path: "/never"}, 1, 50*time.Millisecond)
	}()
	<-done
	if !strings.Contains(sub.msg, "for 1 request matching path=/never") || parent.msg != "" {
		t.Errorf("Expect through In: subtest failure %q, parent failure %q; want the subtest's alone", sub.msg, parent.msg)
	}
}

// TestSetRulesInvalid: a rule the receiver refuses fails the test at once,
// as a bad option to NewServer does, and leaves the rules in force.
func TestSetRulesInvalid(t *testing.T) {
	ftb := &fatalTB{TB: t}
	rcv := receivertest.NewServer(ftb, receivertest.WithRules(receiver.Rule{Respond: receiver.Respond{Status: 202}}))
	done := make(chan struct{})
	go func() {
		defer close(done)
		rcv.SetRules(receiver.Rule{Respond: receiver.Respond{Status: 42}})
	}()
	<-done
	if !strings.Contains(ftb.msg, "set rules") || !strings.Contains(ftb.msg, "42") {
		t.Errorf("SetRules of status 42: got failure %q, want it to name the bad rule", ftb.msg)
	}
	if s := post(t, rcv, "/x"); s != 202 {
		t.Errorf("after a refused SetRules: got %d, want 202 from the rules in force", s)
	}
}

// TestStandardWebhooksFreshIDs: a Signer made with no webhook-id gives
// every request its own, so the receiver sees no duplicates.
func TestStandardWebhooksFreshIDs(t *testing.T) {
	whsec := receivertest.NewStandardSecret()
	rcv := receivertest.NewServer(t, receivertest.WithStandardSecret(whsec))
	sign := receivertest.StandardWebhooks(whsec, "")
	for range 3 {
		if got := post(t, rcv, "/hook", sign); got != http.StatusOK {
			t.Fatalf("post: got %d, want 200", got)
		}
	}
	ids := map[string]bool{}
	for _, c := range rcv.Requests(receivertest.Filter{}) {
		if c.DuplicateOf != "" {
			t.Errorf("capture %s: duplicate of %s, want none", c.ID, c.DuplicateOf)
		}
		ids[c.WebhookID] = true
	}
	if len(ids) != 3 {
		t.Errorf("got %d distinct webhook-ids over 3 requests, want 3", len(ids))
	}
}

// TestWaitTimeoutSaysWhatCame: a Wait that times out says what it waited
// for and what arrived instead, matching or not, so a failure shows at
// once whether the sender never called, called another path, or sent
// another event.
func TestWaitTimeoutSaysWhatCame(t *testing.T) {
	send := func(t *testing.T, rcv *receivertest.Server, path, payload string) {
		t.Helper()
		do(t, rcv, receivertest.NewRequest(t, "POST", rcv.URL+path, []byte(payload)))
	}
	tests := []struct {
		name   string
		sent   []string // paths, each posted a payment
		others int      // then this many message_send to /other
		f      receivertest.Filter
		n      int
		want   []string
		absent []string
	}{
		{name: "NothingCame", f: receivertest.Filter{Event: "payment"}, n: 1,
			want: []string{"waiting for 1 request matching event=payment:", "context deadline exceeded", "none came", "no other request did"}},
		{name: "OthersCame", others: 2, f: receivertest.Filter{Event: "payment", Path: "/hooks"}, n: 1,
			want: []string{"1 request matching event=payment path=/hooks", "none came",
				"2 others did: POST /other event=message_send verdict=unverified answered 200; POST /other"}},
		{name: "SomeMatched", sent: []string{"/hooks"}, others: 1, f: receivertest.Filter{Path: "/hooks"}, n: 2,
			want: []string{"2 requests matching path=/hooks", "1 came: POST /hooks event=payment", "1 other did: POST /other event=message_send"}},
		{name: "AnyRequest", sent: []string{"/a"}, f: receivertest.Filter{}, n: 2,
			want: []string{"waiting for 2 requests:", "1 came: POST /a", "no other request did"}, absent: []string{"matching"}},
		{name: "ManyOthers", others: 7, f: receivertest.Filter{Method: "GET"}, n: 1,
			want: []string{"7 others did, the newest 5: POST /other", "; and 2 more"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rcv := receivertest.NewServer(t)
			for _, p := range tt.sent {
				send(t, rcv, p, `{"type":"payment"}`)
			}
			for range tt.others {
				send(t, rcv, "/other", `{"type":"messageSend"}`)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
			defer cancel()
			_, err := rcv.Wait(ctx, tt.f, tt.n)
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("got %v, want a deadline error", err)
			}
			msg := err.Error()
			if strings.Contains(msg, "\n") {
				t.Errorf("got a message of several lines, want one:\n%s", msg)
			}
			for _, w := range tt.want {
				if !strings.Contains(msg, w) {
					t.Errorf("got %q, want it to say %q", msg, w)
				}
			}
			for _, a := range tt.absent {
				if strings.Contains(msg, a) {
					t.Errorf("got %q, want no %q", msg, a)
				}
			}
		})
	}
}

// TestExpectSaysWhatCame: Expect's failure is one line that says how long
// it waited, for what, and what came instead.
func TestExpectSaysWhatCame(t *testing.T) {
	ftb := &fatalTB{TB: t}
	rcv := receivertest.NewServer(ftb)
	post(t, rcv, "/hooks")
	done := make(chan struct{})
	go func() {
		defer close(done)
		rcv.Expect(receivertest.Filter{Event: "message_send"}, 1, 50*time.Millisecond)
	}()
	<-done
	want := "receivertest: waited 50ms for 1 request matching event=message_send: none came; 1 other did: POST /hooks event=payment verdict=unverified answered 200"
	if ftb.msg != want {
		t.Errorf("got failure\n%q\nwant\n%q", ftb.msg, want)
	}
}

// TestWaitEndedByClose: a Wait the server's Close ends says so, not
// "timed out".
func TestWaitEndedByClose(t *testing.T) {
	rcv := receivertest.NewServer(t)
	post(t, rcv, "/one")
	done := make(chan error)
	go func() {
		_, err := rcv.Wait(context.Background(), receivertest.Filter{Path: "/two"}, 1)
		done <- err
	}()
	rcv.Close()
	err := <-done
	want := "receivertest: waiting for 1 request matching path=/two: the receiver closed; none came; 1 other did: POST /one event=payment verdict=unverified answered 200"
	if err == nil || err.Error() != want || !errors.Is(err, receiver.ErrWaitTimeout) {
		t.Errorf("got %v\nwant %s, wrapping receiver.ErrWaitTimeout", err, want)
	}
}

// TestAddRules: rules a subtest adds answer besides those in force, and
// go when the subtest ends; a refused one fails the test at once.
func TestAddRules(t *testing.T) {
	rcv := receivertest.NewServer(t, receivertest.WithRules(receivertest.Rule{
		Match: receivertest.Match{Path: "/a"}, Respond: receivertest.Respond{Status: 202},
	}))
	t.Run("Sub", func(t *testing.T) {
		rcv.In(t).AddRules(receivertest.Rule{Match: receivertest.Match{Path: "/b"}, Respond: receivertest.Respond{Status: 503}})
		for path, want := range map[string]int{"/a": 202, "/b": 503} {
			if got := post(t, rcv, path); got != want {
				t.Errorf("%s during the subtest: got %d, want %d", path, got, want)
			}
		}
	})
	for path, want := range map[string]int{"/a": 202, "/b": 200} {
		if got := post(t, rcv, path); got != want {
			t.Errorf("%s after the subtest: got %d, want %d", path, got, want)
		}
	}

	ftb := &fatalTB{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		rcv.In(ftb).AddRules(receivertest.Rule{Respond: receivertest.Respond{Fault: "explode"}})
	}()
	<-done
	if !strings.Contains(ftb.msg, "receivertest: add rules") || !strings.Contains(ftb.msg, "explode") {
		t.Errorf("AddRules of a bad fault: got failure %q, want it to name the bad rule", ftb.msg)
	}
	if rules := rcv.Receiver.Rules(); len(rules) != 1 {
		t.Errorf("after a refused AddRules: got %d rules, want the 1 in force", len(rules))
	}
}

// TestValues: a custom-value GET is answered from the values given,
// looked up by customerUID, then channelId, then default, with null for
// a field none has.
func TestValues(t *testing.T) {
	const doc = `{"default":{"fullname":"there"},
		"channels":{"447700900123":{"currency":"GBP"}},
		"customers":{"ACC-1":{"fullname":"Jane Doe"}}}`
	parsed, err := fixtures.ParseValues([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	for name, opt := range map[string]receivertest.Option{
		"WithValues":     receivertest.WithValues(parsed),
		"WithValuesJSON": receivertest.WithValuesJSON(doc),
	} {
		t.Run(name, func(t *testing.T) {
			rcv := receivertest.NewServer(t, opt)
			tests := []struct{ query, want string }{
				{"customerUID=ACC-1&channelId=447700900123&fields=fullname,currency,duedate",
					`{"currency":"GBP","duedate":null,"fullname":"Jane Doe"}`},
				{"customerUID=ACC-2&fields=fullname", `{"fullname":"there"}`},
			}
			for _, tt := range tests {
				resp, err := rcv.Client().Get(rcv.URL + "/values?" + tt.query)
				if err != nil {
					t.Fatal(err)
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 || string(b) != tt.want {
					t.Errorf("GET ?%s: got %d %s, want 200 %s", tt.query, resp.StatusCode, b, tt.want)
				}
			}
		})
	}
}

// TestWaitForNone: waiting for 0 or fewer captures is an error that says
// how to check that none came; it waited for one.
func TestWaitForNone(t *testing.T) {
	rcv := receivertest.NewServer(t)
	for _, n := range []int{0, -1} {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		caps, err := rcv.Wait(ctx, receivertest.Filter{}, n)
		cancel()
		if err == nil || !strings.Contains(err.Error(), "at least 1") || !strings.Contains(err.Error(), "Requests") || caps != nil {
			t.Errorf("Wait for %d: got %v, %v; want an error saying n must be at least 1", n, caps, err)
		}
		ftb := &fatalTB{TB: t}
		done := make(chan struct{})
		go func() {
			defer close(done)
			rcv.In(ftb).Expect(receivertest.Filter{}, n, 5*time.Second)
		}()
		<-done
		if !strings.HasPrefix(ftb.msg, "receivertest: waiting for") || strings.Count(ftb.msg, "receivertest:") != 1 || !strings.Contains(ftb.msg, "at least 1") {
			t.Errorf("Expect %d: got failure %q, want it to say n must be at least 1", n, ftb.msg)
		}
	}
}

// TestFaultOnKeptAliveGET pins what Respond.Fault documents: Go's
// transport resends a GET once, by itself, when a kept-alive connection
// is closed or reset before any answer, so a Go sender faulted once never
// sees the fault; faulted on every attempt, it does.
func TestFaultOnKeptAliveGET(t *testing.T) {
	for _, fault := range []string{receivertest.FaultClose, receivertest.FaultReset} {
		t.Run(fault, func(t *testing.T) {
			rcv := receivertest.NewServer(t)
			get := func() error {
				resp, err := rcv.Client().Get(rcv.URL + "/values?fields=fullname")
				if err != nil {
					return err
				}
				io.Copy(io.Discard, resp.Body)
				return resp.Body.Close()
			}
			if err := get(); err != nil { // opens the connection kept alive
				t.Fatal(err)
			}
			rcv.SetRules(receivertest.Rule{Respond: receivertest.Respond{Fault: fault, Times: 1}})
			if err := get(); err != nil {
				t.Errorf("faulted once: got %v, want the transport's own resend to succeed", err)
			}
			if n := len(rcv.Requests(receivertest.Filter{})); n != 3 {
				t.Errorf("faulted once: %d captures, want 3 (the first GET, the faulted one, the resend)", n)
			}
			rcv.SetRules(receivertest.Rule{Respond: receivertest.Respond{Fault: fault}})
			if err := get(); err == nil {
				t.Error("faulted on every attempt: got an answer, want the fault")
			}
		})
	}
}

// listFailStore is a store whose reads fail with err.
type listFailStore struct {
	receiver.Store
	err error
}

func (s listFailStore) List(context.Context, receiver.Query) ([]receiver.Capture, string, error) {
	return nil, "", s.err
}

// TestWaitStoreError: a wait the store fails (not a timeout) says what it
// waited for, filter included, as a timeout does, and wraps the store's
// error.
func TestWaitStoreError(t *testing.T) {
	st := memstore.New()
	t.Cleanup(func() { st.Close() })
	failed := fmt.Errorf("%w: disk read", receiver.ErrStoreFailed)
	srv, err := receiver.New(receiver.Config{Listen: "127.0.0.1:0", Store: listFailStore{Store: st, err: failed}})
	if err != nil {
		t.Fatal(err)
	}
	rcv := &receivertest.Server{Receiver: srv}
	_, err = rcv.Wait(context.Background(), receivertest.Filter{Path: "/hooks", Event: "payment"}, 2)
	want := "receivertest: waiting for 2 requests matching event=payment path=/hooks: list captures: store failed: disk read"
	if err == nil || err.Error() != want || !errors.Is(err, receiver.ErrStoreFailed) {
		t.Errorf("got %v\nwant %s, wrapping receiver.ErrStoreFailed", err, want)
	}
}
