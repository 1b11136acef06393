package receiver_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/sidehook/sidehook/internal/auth"
	"github.com/sidehook/sidehook/receiver"
	"github.com/sidehook/sidehook/receiver/memstore"
)

// TestReplayResignsEveryScheme: a replay asked for with no body carries a
// valid signature for every scheme the original had, made with the keys
// the receiver verifies with, so replaying to the receiver itself is
// valid, each time with a fresh jti.
func TestReplayResignsEveryScheme(t *testing.T) {
	srv := start(t, receiver.Config{Verify: auth.VerifyConfig{
		WebioSecret: []byte(testSecret), Org: testOrg, JWTSecret: []byte(testSecret),
		Audience: "crm", StandardSecrets: [][]byte{standardKey},
	}})
	body := []byte(`{"type":"payment","amount":"50.00"}`)
	now := time.Now()
	r := send(t, "POST", srv.URL()+"/hooks", body, map[string]string{
		"x-webio-token":     webioToken(t, testSecret, testOrg),
		"authorization":     "Bearer " + jwtToken(t, testSecret, body, now),
		"webhook-id":        "evt_all",
		"webhook-timestamp": fmt.Sprint(now.Unix()),
		"webhook-signature": auth.SignStandard(standardKey, "evt_all", now, body),
	})
	orig := only(t, srv)
	if r.status != 200 || orig.Verdict.Status != auth.StatusValid {
		t.Fatalf("original: %d %+v, want 200 and a valid verdict", r.status, orig.Verdict)
	}
	jtis := []any{orig.Verdict.Claims["jti"]}
	for i := range 2 {
		r, ans := replayOf(t, srv, orig.ID, "")
		want := []string{auth.SchemeWebioToken, auth.SchemeJWT, auth.SchemeStandard}
		if r.status != 200 || ans.Status != 200 || !slices.Equal(ans.Signed, want) {
			t.Fatalf("replay %d: got %d %s, want 200 signed %v answered 200", i, r.status, r.body, want)
		}
		caps, _ := list(t, srv, "limit=1")
		c := caps[0]
		if c.Verdict.Status != auth.StatusValid || c.Verdict.Scheme != "webio-token,jwt,standard" {
			t.Fatalf("replay %d verdict: %+v, want valid on every scheme", i, c.Verdict)
		}
		jti := c.Verdict.Claims["jti"]
		if jti == nil || slices.Contains(jtis, jti) {
			t.Errorf("replay %d jti %v, want a fresh one (seen %v)", i, jti, jtis)
		}
		jtis = append(jtis, jti)
	}
}

// TestReplayAsymmetricJWT: an ES256 original is re-signed with the key
// given as ReplayKey (--jwt-private-key); without one, the answer says
// which scheme cannot be re-signed and which flag gives the key, and
// nothing is sent.
func TestReplayAsymmetricJWT(t *testing.T) {
	key, err := auth.GenerateKey(auth.ES256)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := key.Public()
	if err != nil {
		t.Fatal(err)
	}
	body := []byte(`{"type":"payment"}`)
	tok, err := auth.SignAttempt(key, auth.AttemptClaims{Subject: testOrg, SHA256: auth.BodyHash(body), IssuedAt: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	verify := auth.VerifyConfig{JWTPublicKey: pub, JWTPublicAlg: auth.ES256}
	for _, tt := range []struct {
		name string
		key  *auth.SigningKey
	}{{"WithKey", &key}, {"WithoutKey", nil}} {
		t.Run(tt.name, func(t *testing.T) {
			srv := start(t, receiver.Config{Verify: verify, ReplayKey: tt.key})
			send(t, "POST", srv.URL()+"/es", body, map[string]string{"authorization": "Bearer " + tok})
			orig := only(t, srv)
			r, ans := replayOf(t, srv, orig.ID, "")
			if tt.key == nil {
				var e struct{ Error, Reason string }
				r.json(t, &e)
				if r.status != 400 || e.Error != "cannot_sign" || !strings.Contains(e.Reason, "jwt") || !strings.Contains(e.Reason, "--jwt-private-key") {
					t.Fatalf("got %d %s, want 400 cannot_sign naming jwt and --jwt-private-key", r.status, r.body)
				}
				if caps, _ := list(t, srv, ""); len(caps) != 1 {
					t.Errorf("%d captures, want only the original: nothing is sent unsigned", len(caps))
				}
				return
			}
			if r.status != 200 || ans.Status != 200 {
				t.Fatalf("got %d %s, want 200 with a 200", r.status, r.body)
			}
			caps, _ := list(t, srv, "limit=1")
			if v := caps[0].Verdict; v.Status != auth.StatusValid || v.Claims["sub"] != testOrg {
				t.Errorf("replay verdict %+v, want valid with the original's sub", v)
			}
		})
	}
}

// TestReplayAnswerIsTheTargets: the answer carries the target's status,
// headers (credentials redacted), body and duration, whatever the status.
func TestReplayAnswerIsTheTargets(t *testing.T) {
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Why", "no token")
		w.Header().Set("Set-Cookie", "session=secret")
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		fmt.Fprint(w, `{"error":"invalid_token"}`)
	}))
	t.Cleanup(target.Close)
	srv := start(t, receiver.Config{})
	send(t, "POST", srv.URL()+"/x", []byte(`{}`), nil)
	orig := only(t, srv)
	r, ans := replayOf(t, srv, orig.ID, `{"to":"`+target.URL+`"}`)
	if r.status != 200 || ans.Status != 401 || ans.Body != `{"error":"invalid_token"}` || ans.DurationMS == nil {
		t.Fatalf("got %d %s, want the target's 401, its body and a duration", r.status, r.body)
	}
	if got := ans.Headers["x-why"]; len(got) != 1 || got[0] != "no token" {
		t.Errorf("x-why: got %v, want [no token]", got)
	}
	if got := ans.Headers["set-cookie"]; len(got) != 1 || strings.Contains(got[0], "secret") {
		t.Errorf("set-cookie: got %v, want it redacted", got)
	}

	// A target that cannot be reached is a 502 that says so.
	target.Close()
	r, _ = replayOf(t, srv, orig.ID, `{"to":"`+target.URL+`"}`)
	if r.status != 502 || !strings.Contains(string(r.body), "replay_failed") {
		t.Errorf("unreachable target: got %d %s, want 502 replay_failed", r.status, r.body)
	}
}

// TestReplayMountedHandler: a Handler mounted on another server replays
// to the URL its request came in on by default; it has no listen address
// of its own, and a replay without "to" was refused as having no target.
func TestReplayMountedHandler(t *testing.T) {
	hs := mount(t)
	var orig struct{ ID string }
	send(t, "POST", hs.URL+"/x?a=1", []byte(`{}`), nil).json(t, &orig)
	r := send(t, "POST", hs.URL+"/_sidehook/requests/"+orig.ID+"/replay", []byte(`{}`), jsonHeader)
	var ans replayAnswer
	if r.status == 200 {
		r.json(t, &ans)
	}
	if r.status != 200 || ans.Target != hs.URL+"/x?a=1" || ans.Status != 200 {
		t.Fatalf("got %d %s, want 200 and the target's 200 from %s/x?a=1", r.status, r.body, hs.URL)
	}
}

// TestReplayLeavesNoConnection: a replay's connection to its target is
// closed once the answer is read. Each replay has a client of its own, so
// an idle connection would never be used again, yet would hold two
// goroutines here (and one at the target) until the idle timeout.
func TestReplayLeavesNoConnection(t *testing.T) {
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "ok")
	}))
	t.Cleanup(target.Close)
	// In memory: Badger's store starts goroutines of its own as it works,
	// which this count would take for the replay's.
	srv := start(t, receiver.Config{Store: memstore.New()})
	send(t, "POST", srv.URL()+"/x", []byte(`{}`), nil)
	orig := only(t, srv)
	before := goleak.IgnoreCurrent()
	r, ans := replayOf(t, srv, orig.ID, `{"to":"`+target.URL+`"}`)
	if r.status != 200 || ans.Status != 200 {
		t.Fatalf("replay: got %d %s, want 200 answered 200", r.status, r.body)
	}
	if err := goleak.Find(before); err != nil {
		t.Errorf("after the replay: got goroutines left, want none:\n%v", err)
	}
}

// TestReplaySvixOriginal: an original signed under Svix's header names is
// re-signed as Standard Webhooks (webhook-*), its id kept, and carries no
// stale svix-* credential.
func TestReplaySvixOriginal(t *testing.T) {
	srv := start(t, receiver.Config{Verify: auth.VerifyConfig{StandardSecrets: [][]byte{standardKey}}})
	body := []byte(`{"type":"payment"}`)
	now := time.Now()
	send(t, "POST", srv.URL()+"/svix", body, map[string]string{
		"svix-id": "msg_1", "svix-timestamp": fmt.Sprint(now.Unix()), "svix-signature": auth.SignStandard(standardKey, "msg_1", now, body),
	})
	orig := only(t, srv)
	r, ans := replayOf(t, srv, orig.ID, "")
	if r.status != 200 || ans.Status != 200 || !slices.Equal(ans.Signed, []string{auth.SchemeStandard}) {
		t.Fatalf("got %d %s, want a 200 signed standard", r.status, r.body)
	}
	caps, _ := list(t, srv, "limit=1")
	c := caps[0]
	if c.Verdict.Status != auth.StatusValid || c.WebhookID != "msg_1" {
		t.Errorf("replay: verdict %+v webhook-id %q, want valid with msg_1", c.Verdict, c.WebhookID)
	}
	for _, h := range []string{"svix-id", "svix-timestamp", "svix-signature"} {
		if v, ok := c.Headers[h]; ok {
			t.Errorf("replay carries %s: %v", h, v)
		}
	}
}

// TestReplayEscapedPath: a path captured with an escaped "?", "#" or space
// in it is replayed, and exported, to that same path: escaped as sent, not
// decoded, where it would start a query or a fragment.
func TestReplayEscapedPath(t *testing.T) {
	seen := make(chan string, 1) // escaped path ? query, as the target saw them
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen <- r.URL.EscapedPath() + "?" + r.URL.RawQuery
	}))
	t.Cleanup(target.Close)
	srv := start(t, receiver.Config{})
	send(t, "POST", srv.URL()+"/hooks%3Fx=1%23frag%20a?k=v", []byte(`{}`), nil)
	orig := only(t, srv)
	if orig.Path != "/hooks%3Fx=1%23frag%20a" || orig.Query != "k=v" {
		t.Fatalf("captured path %q query %q, want %q %q", orig.Path, orig.Query, "/hooks%3Fx=1%23frag%20a", "k=v")
	}
	if r, _ := replayOf(t, srv, orig.ID, `{"to":"`+target.URL+`"}`); r.status != 200 {
		t.Fatalf("replay: got %d %s, want 200", r.status, r.body)
	}
	if got, want := <-seen, "/hooks%3Fx=1%23frag%20a?k=v"; got != want {
		t.Errorf("the target saw %q, want %q", got, want)
	}
	curl := send(t, "GET", srv.URL()+"/_sidehook/requests/export?format=curl", nil, nil)
	if !strings.Contains(string(curl.body), "/hooks%3Fx=1%23frag%20a?k=v") {
		t.Errorf("curl export without the escaped path: %s", curl.body)
	}
}

// TestCapturePathAsSent: a capture's path is the path as sent, escapes
// kept (SPEC §5: the capture shows what was sent; an escaped slash is not a
// segment break), and filters, rules, replay and export go by it. A
// pattern also matches the decoded path, so one written as a path reads
// ("/café") still works.
func TestCapturePathAsSent(t *testing.T) {
	tests := []struct {
		name string
		sent string
		// rule is a rule's path glob that must answer the request;
		// filters must each find its capture, misses must not.
		rule    string
		filters []string
		misses  []string
	}{
		{"EscapedSlash", "/a%2Fb", "/a%2Fb", []string{"/a%2Fb", "/a%2F*", "/a/b"}, []string{"/a", "/a%2Fc"}},
		{"LowerCaseEscape", "/a%2fb", "/a%2fb", []string{"/a%2fb", "/a/b"}, []string{"/a%2Fb"}},
		{"EscapedUnreserved", "/%7Euser", "/~user", []string{"/%7Euser", "/~user"}, []string{"/user"}},
		{"UTF8", "/caf%C3%A9/x", "/café/*", []string{"/caf%C3%A9/x", "/café/x", "/caf*"}, []string{"/cafe/x"}},
		{"Plain", "/hooks/pay", "/hooks/*", []string{"/hooks/pay", "/hooks*"}, []string{"/hooks"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			seen := make(chan string, 1) // the escaped path the target saw
			target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				seen <- r.URL.EscapedPath()
			}))
			t.Cleanup(target.Close)
			rules, err := receiver.ParseRules([]byte(`[{"match":{"path":"` + tt.rule + `"},"respond":{"status":202}}]`))
			if err != nil {
				t.Fatal(err)
			}
			srv := start(t, receiver.Config{Rules: rules})
			if r := send(t, "POST", srv.URL()+tt.sent, []byte(`{}`), nil); r.status != 202 {
				t.Errorf("rule path %q: got %d, want 202", tt.rule, r.status)
			}
			c := only(t, srv)
			if c.Path != tt.sent {
				t.Errorf("captured path: got %q, want %q", c.Path, tt.sent)
			}
			for _, f := range tt.filters {
				if caps, _ := list(t, srv, "path="+url.QueryEscape(f)); len(caps) != 1 {
					t.Errorf("filter %q: got %d captures, want 1", f, len(caps))
				}
			}
			for _, f := range tt.misses {
				if caps, _ := list(t, srv, "path="+url.QueryEscape(f)); len(caps) != 0 {
					t.Errorf("filter %q: got %d captures, want 0", f, len(caps))
				}
			}
			for _, to := range []string{target.URL, target.URL + "/"} {
				if r, _ := replayOf(t, srv, c.ID, `{"to":"`+to+`"}`); r.status != 200 {
					t.Fatalf("replay to %s: got %d %s, want 200", to, r.status, r.body)
				}
				if got := <-seen; got != tt.sent {
					t.Errorf("replay to %s: the target saw %q, want %q", to, got, tt.sent)
				}
			}
			curl := send(t, "GET", srv.URL()+"/_sidehook/requests/export?format=curl", nil, nil)
			if want := "'" + srv.URL() + tt.sent + "'"; !strings.Contains(string(curl.body), want) {
				t.Errorf("curl export without %s: %s", want, curl.body)
			}
		})
	}
}

// TestReplayBodyNotKept: a request whose body the receiver did not keep
// (over MaxBody) is not replayed as if it had none: without a body the
// replay is refused and says why; with one, that body is sent.
func TestReplayBodyNotKept(t *testing.T) {
	var got atomic.Pointer[string]
	target := httptest.NewServer(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		s := string(b)
		got.Store(&s)
	}))
	t.Cleanup(target.Close)
	srv := start(t, receiver.Config{MaxBody: 16})
	send(t, "POST", srv.URL()+"/x", []byte(strings.Repeat("x", 64)), nil)
	orig := only(t, srv)

	r, _ := replayOf(t, srv, orig.ID, `{"to":"`+target.URL+`"}`)
	if r.status != http.StatusBadRequest || !strings.Contains(string(r.body), "not kept") {
		t.Errorf("no body given: got %d %s, want 400 saying the body was not kept", r.status, r.body)
	}
	if got.Load() != nil {
		t.Errorf("no body given: the target got %q, want nothing sent", *got.Load())
	}
	r, ans := replayOf(t, srv, orig.ID, `{"to":"`+target.URL+`","body":"typed"}`)
	if r.status != http.StatusOK || ans.Status != http.StatusOK || got.Load() == nil || *got.Load() != "typed" {
		t.Errorf("a body given: got %d %s, want 200 and the target sent the body given", r.status, r.body)
	}
}
