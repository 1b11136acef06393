package receiver_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sidehook/sidehook/internal/auth"
	"github.com/sidehook/sidehook/internal/event"
	"github.com/sidehook/sidehook/receiver"
	"github.com/sidehook/sidehook/receiver/memstore"
)

// seed captures a mix of requests: 3 payments (valid-looking), 2 inbound
// messages, 1 custom-value GET.
func seed(t *testing.T, srv *receiver.Server) {
	t.Helper()
	for i := 0; i < 3; i++ {
		send(t, "POST", srv.URL()+"/hooks/pay", []byte(`{"type":"payment"}`), map[string]string{"webhook-id": fmt.Sprintf("evt_p%d", i)})
	}
	for i := 0; i < 2; i++ {
		send(t, "POST", srv.URL()+"/hooks/in", []byte(`{"type":"inboundMessage"}`), map[string]string{"webhook-id": "evt_in"})
	}
	send(t, "GET", srv.URL()+"/values?fields=fullname", nil, nil)
}

func TestListFilters(t *testing.T) {
	srv := start(t, receiver.Config{})
	seed(t, srv)
	tests := []struct {
		query string
		want  int
	}{
		{"", 6},
		{"event=payment", 3},
		{"event=inbound_message", 2},
		{"path=/hooks/*", 5},
		{"path=/hooks*", 5},
		{"path=/values", 1},
		{"method=get", 1},
		{"method=POST", 5},
		{"verdict=unverified", 6},
		{"verdict=valid", 0},
		{"webhook_id=evt_in", 2},
		{"event=payment&webhook_id=evt_p1", 1},
		{"since=5m", 6},
		{"since=" + time.Now().Add(time.Hour).UTC().Format(time.RFC3339), 0},
		{"since=" + time.Now().Add(-time.Hour).UTC().Format(time.RFC3339), 6},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			caps, next := list(t, srv, tt.query)
			if len(caps) != tt.want || next != "" {
				t.Errorf("got %d (next %q), want %d", len(caps), next, tt.want)
			}
			var n map[string]int
			send(t, "GET", srv.URL()+"/_sidehook/requests/count?"+tt.query, nil, nil).json(t, &n)
			if n["count"] != tt.want {
				t.Errorf("count: got %d, want %d", n["count"], tt.want)
			}
		})
	}
	caps, _ := list(t, srv, "")
	for i := 1; i < len(caps); i++ {
		if caps[i-1].ID <= caps[i].ID {
			t.Fatalf("not newest first: %s before %s", caps[i-1].ID, caps[i].ID)
		}
	}
	for _, bad := range []string{"verdict=maybe", "since=yesterday", "limit=0", "limit=x", "path=[", "path=hooks/*", "cursor=nope"} {
		if r := send(t, "GET", srv.URL()+"/_sidehook/requests?"+bad, nil, nil); r.status != 400 || !strings.Contains(string(r.body), `"error":"bad_request"`) {
			t.Errorf("%s: got %d %s, want 400", bad, r.status, r.body)
		}
	}
}

func TestListPaging(t *testing.T) {
	srv := start(t, receiver.Config{})
	for i := 0; i < 7; i++ {
		send(t, "POST", srv.URL()+fmt.Sprintf("/p/%d", i), nil, nil)
	}
	var paths []string
	cursor, pages := "", 0
	for {
		caps, next := list(t, srv, "limit=3&cursor="+cursor)
		pages++
		for _, c := range caps {
			paths = append(paths, c.Path)
		}
		if next == "" {
			break
		}
		cursor = next
		if pages > 5 {
			t.Fatal("paging does not end")
		}
	}
	want := "/p/6 /p/5 /p/4 /p/3 /p/2 /p/1 /p/0"
	if got := strings.Join(paths, " "); got != want || pages != 3 {
		t.Errorf("got %q in %d pages, want %q in 3", got, pages, want)
	}
	// A page that ends exactly at the last capture says there is no more.
	if _, next := list(t, srv, "limit=7"); next != "" {
		t.Errorf("full page: next %q, want none", next)
	}
	// The last page, and an empty one, carry next as null (SPEC §5:
	// {"requests":[…],"next":…}), not without it.
	for _, query := range []string{"limit=7", "event=none"} {
		var page map[string]json.RawMessage
		send(t, "GET", srv.URL()+"/_sidehook/requests?"+query, nil, nil).json(t, &page)
		if got := string(page["next"]); got != "null" {
			t.Errorf("%s: next %q, want null", query, got)
		}
	}
	// limit is capped, not refused.
	if caps, _ := list(t, srv, "limit=5000"); len(caps) != 7 {
		t.Errorf("limit=5000: got %d, want 7", len(caps))
	}
}

func TestGetCapture(t *testing.T) {
	srv := start(t, receiver.Config{})
	if r := send(t, "GET", srv.URL()+"/_sidehook/requests/"+event.NewCaptureID(), nil, nil); r.status != 404 || !strings.Contains(string(r.body), `"error":"not_found"`) {
		t.Errorf("unknown id: got %d %s, want 404", r.status, r.body)
	}
	if r := send(t, "GET", srv.URL()+"/_sidehook/requests/evt_nope", nil, nil); r.status != 400 {
		t.Errorf("malformed id: got %d %s, want 400", r.status, r.body)
	}
	if r := send(t, "GET", srv.URL()+"/_sidehook/nothing", nil, nil); r.status != 404 {
		t.Errorf("unknown admin route: got %d, want 404", r.status)
	}
	if caps, _ := list(t, srv, ""); len(caps) != 0 {
		t.Errorf("admin requests were captured: %d", len(caps))
	}
}

// listSignal is a store that says when a List has answered, so a test
// knows that a waiter has looked at the store.
type listSignal struct {
	receiver.Store
	listed chan struct{}
}

func (s *listSignal) List(ctx context.Context, q receiver.Query) ([]receiver.Capture, string, error) {
	caps, next, err := s.Store.List(ctx, q)
	select {
	case s.listed <- struct{}{}:
	default:
	}
	return caps, next, err
}

func TestWait(t *testing.T) {
	st := &listSignal{Store: memstore.New(), listed: make(chan struct{}, 1)}
	srv := start(t, receiver.Config{Store: st})
	first := send(t, "POST", srv.URL()+"/w", []byte(`{"type":"payment"}`), nil)
	var firstID struct {
		ID string `json:"id"`
	}
	first.json(t, &firstID)

	type result struct {
		status int
		body   struct {
			Error    string             `json:"error"`
			Count    int                `json:"count"`
			Requests []receiver.Capture `json:"requests"`
		}
	}
	wait := func(query string) chan result {
		ch := make(chan result, 1)
		go func() {
			resp, err := http.Get(srv.URL() + "/_sidehook/requests/wait?" + query)
			var res result
			if err == nil {
				defer resp.Body.Close()
				res.status = resp.StatusCode
				jsonDecode(resp, &res.body)
			}
			ch <- res
		}()
		return ch
	}

	t.Run("OK", func(t *testing.T) {
		select {
		case <-st.listed: // nothing has listed yet; drop any stale signal
		default:
		}
		ch := wait("event=payment&count=3&timeout=5s")
		// The waiter looks at the store first and finds the one payment
		// there; the other two are captured only after that, so they can
		// reach it only through the feed.
		select {
		case <-st.listed:
		case res := <-ch:
			t.Fatalf("the waiter answered %d before looking at the store", res.status)
		}
		send(t, "POST", srv.URL()+"/w", []byte(`{"type":"inboundMessage"}`), nil)
		send(t, "POST", srv.URL()+"/w", []byte(`{"type":"payment"}`), nil)
		send(t, "POST", srv.URL()+"/w", []byte(`{"type":"payment"}`), nil)
		select {
		case res := <-ch:
			if res.status != 200 || res.body.Count != 3 || len(res.body.Requests) != 3 {
				t.Fatalf("got %d count %d (%d requests), want 200 and 3", res.status, res.body.Count, len(res.body.Requests))
			}
			for _, c := range res.body.Requests {
				if c.Event != "payment" {
					t.Errorf("got a %s capture, want payment", c.Event)
				}
			}
			if oldest := res.body.Requests[2].ID; oldest != firstID.ID {
				t.Errorf("oldest of the three: %s, want %s, found in the store", oldest, firstID.ID)
			}
		case <-time.After(8 * time.Second):
			t.Fatal("wait did not return")
		}
	})
	t.Run("AlreadyThere", func(t *testing.T) {
		res := <-wait("event=payment&count=2")
		if res.status != 200 || res.body.Count != 2 {
			t.Errorf("got %d count %d, want 200 and 2", res.status, res.body.Count)
		}
	})
	t.Run("Timeout", func(t *testing.T) {
		begin := time.Now()
		res := <-wait("event=payment&count=10&timeout=300ms")
		if res.status != 408 || res.body.Error != "timeout" || res.body.Count != 3 {
			t.Errorf("got %d %q count %d, want 408 timeout 3", res.status, res.body.Error, res.body.Count)
		}
		if d := time.Since(begin); d < 300*time.Millisecond || d > 5*time.Second {
			t.Errorf("answered after %v, want about 300ms", d)
		}
	})
	t.Run("BadParams", func(t *testing.T) {
		for _, q := range []string{"count=0", "count=x", "timeout=2m", "timeout=soon"} {
			if res := <-wait(q); res.status != 400 {
				t.Errorf("%s: got %d, want 400", q, res.status)
			}
		}
	})
}

func TestExport(t *testing.T) {
	srv := start(t, receiver.Config{})
	send(t, "POST", srv.URL()+"/hooks?x=1", []byte(`{"type":"payment","note":"it's"}`), map[string]string{"Content-Type": "application/json", "webhook-id": "evt_x"})
	send(t, "PUT", srv.URL()+"/bin", []byte{0xff, 0x00, 'a', '\''}, nil)
	send(t, "GET", srv.URL()+"/values?fields=fullname", nil, nil)

	t.Run("NDJSON", func(t *testing.T) {
		r := send(t, "GET", srv.URL()+"/_sidehook/requests/export?format=ndjson", nil, nil)
		lines := strings.Split(strings.TrimSpace(string(r.body)), "\n")
		if r.status != 200 || len(lines) != 3 {
			t.Fatalf("got %d with %d lines, want 200 and 3", r.status, len(lines))
		}
		var first receiver.Capture
		if err := first.UnmarshalJSON([]byte(lines[0])); err != nil || first.Path != "/hooks" {
			t.Errorf("first line (oldest first): got %s, %v", first.Path, err)
		}
		if filtered := send(t, "GET", srv.URL()+"/_sidehook/requests/export?method=GET", nil, nil); strings.Count(string(filtered.body), "\n") != 1 {
			t.Errorf("filtered export: got %q, want one line", filtered.body)
		}
	})
	t.Run("HAR", func(t *testing.T) {
		r := send(t, "GET", srv.URL()+"/_sidehook/requests/export?format=har", nil, nil)
		var har struct {
			Log struct {
				Version string `json:"version"`
				Creator struct {
					Name string `json:"name"`
				} `json:"creator"`
				Entries []map[string]any `json:"entries"`
			} `json:"log"`
		}
		r.json(t, &har)
		if har.Log.Version != "1.2" || har.Log.Creator.Name != "sidehook" || len(har.Log.Entries) != 3 {
			t.Fatalf("got version %q creator %q %d entries, want 1.2 sidehook 3", har.Log.Version, har.Log.Creator.Name, len(har.Log.Entries))
		}
		for _, e := range har.Log.Entries {
			for _, k := range []string{"startedDateTime", "time", "request", "response", "cache", "timings"} {
				if _, ok := e[k]; !ok {
					t.Errorf("entry lacks %s", k)
				}
			}
			req := e["request"].(map[string]any)
			for _, k := range []string{"method", "url", "httpVersion", "cookies", "headers", "queryString", "headersSize", "bodySize"} {
				if _, ok := req[k]; !ok {
					t.Errorf("request lacks %s", k)
				}
			}
			resp := e["response"].(map[string]any)
			for _, k := range []string{"status", "statusText", "httpVersion", "cookies", "headers", "content", "redirectURL", "headersSize", "bodySize"} {
				if _, ok := resp[k]; !ok {
					t.Errorf("response lacks %s", k)
				}
			}
			if _, err := time.Parse(time.RFC3339Nano, e["startedDateTime"].(string)); err != nil {
				t.Errorf("startedDateTime: %v", err)
			}
		}
		first := har.Log.Entries[0]["request"].(map[string]any)
		post := first["postData"].(map[string]any)
		if first["url"] != srv.URL()+"/hooks?x=1" || post["text"] != `{"type":"payment","note":"it's"}` || post["mimeType"] != "application/json" {
			t.Errorf("first request: got %v, want /hooks?x=1 with its JSON body", first)
		}
	})
	t.Run("Curl", func(t *testing.T) {
		r := send(t, "GET", srv.URL()+"/_sidehook/requests/export?format=curl", nil, nil)
		text := string(r.body)
		if strings.Count(text, "curl -sS") != 3 {
			t.Fatalf("got %q, want 3 curl commands", text)
		}
		if !strings.Contains(text, `--data-binary '{"type":"payment","note":"it'\''s"}'`) {
			t.Errorf("text body not quoted for the shell: %s", text)
		}
		if !strings.Contains(text, `printf '\377\000\141\047' | curl`) {
			t.Errorf("binary body not fed through printf: %s", text)
		}
		if _, err := exec.LookPath("sh"); err == nil {
			// The script is valid shell.
			if out, err := exec.Command("sh", "-n", "-c", text).CombinedOutput(); err != nil {
				t.Errorf("sh -n: %v: %s", err, out)
			}
		}
	})
	t.Run("CurlRuns", func(t *testing.T) {
		needTools(t, "curl")
		target := start(t, receiver.Config{})
		r := send(t, "GET", srv.URL()+"/_sidehook/requests/export?format=curl&base="+target.URL(), nil, nil)
		if out, err := exec.Command("sh", "-c", string(r.body)).CombinedOutput(); err != nil {
			t.Fatalf("running the export: %v: %s", err, out)
		}
		caps, _ := list(t, target, "")
		if len(caps) != 3 {
			t.Fatalf("curl replays captured: got %d, want 3", len(caps))
		}
		for _, c := range caps {
			if c.Path == "/bin" && !bytes.Equal(c.Body, []byte{0xff, 0x00, 'a', '\''}) {
				t.Errorf("binary body through curl: got %x, want ff006127", c.Body)
			}
			if c.Path == "/hooks" && (string(c.Body) != `{"type":"payment","note":"it's"}` || c.WebhookID != "evt_x") {
				t.Errorf("text body through curl: got %q %q, want the JSON body and evt_x", c.Body, c.WebhookID)
			}
		}
	})
	if r := send(t, "GET", srv.URL()+"/_sidehook/requests/export?format=xml", nil, nil); r.status != 400 {
		t.Errorf("format=xml: got %d, want 400", r.status)
	}
}

func TestDeleteAndReset(t *testing.T) {
	srv := start(t, receiver.Config{})
	seed(t, srv)
	if r := send(t, "DELETE", srv.URL()+"/_sidehook/requests", nil, nil); r.status != 204 {
		t.Fatalf("DELETE: got %d, want 204", r.status)
	}
	if caps, _ := list(t, srv, ""); len(caps) != 0 {
		t.Errorf("after DELETE: %d captures, want 0", len(caps))
	}
	// The webhook-id index went too: the next delivery is a first again.
	send(t, "POST", srv.URL()+"/x", nil, map[string]string{"webhook-id": "evt_in"})
	if c := only(t, srv); c.DuplicateOf != "" {
		t.Errorf("after DELETE: duplicate_of %q, want a first capture", c.DuplicateOf)
	}
	send(t, "POST", srv.URL()+"/_sidehook/rules", []byte(`{"respond":{"status":500}}`), jsonHeader)
	if r := send(t, "POST", srv.URL()+"/_sidehook/reset", nil, nil); r.status != 204 {
		t.Fatalf("reset: got %d, want 204", r.status)
	}
	if caps, _ := list(t, srv, ""); len(caps) != 0 {
		t.Errorf("after reset: %d captures, want 0", len(caps))
	}
	if s := send(t, "POST", srv.URL()+"/x", nil, nil).status; s != 200 {
		t.Errorf("after reset the API rule still answers: %d", s)
	}
}

func TestAdminToken(t *testing.T) {
	for addr, needs := range map[string]bool{
		"127.0.0.1:0": false, "127.0.0.2:0": false, "[::1]:0": false, "localhost:0": false, "LOCALHOST:1": false,
		":8081": true, "0.0.0.0:0": true, "[::]:0": true, "192.168.1.10:0": true, "example.com:80": true,
	} {
		_, err := receiver.New(receiver.Config{Listen: addr, Store: memstore.New()})
		if got := errors.Is(err, receiver.ErrAdminTokenRequired); got != needs {
			t.Errorf("listen %s without a token: got %v, want a token required: %v", addr, err, needs)
		}
	}
	if _, err := receiver.New(receiver.Config{Listen: "0.0.0.0:0", Store: memstore.New(), AdminToken: "s3cret"}); err == nil || !strings.Contains(err.Error(), "need at least 16") {
		t.Errorf("a 6-byte admin token: got %v, want refused", err)
	}
	srv := start(t, receiver.Config{AdminToken: "s3cret-admin-token"})
	send(t, "POST", srv.URL()+"/x", nil, nil) // capturing needs no token
	tests := []struct {
		name   string
		path   string
		auth   string
		status int
		reason string
	}{
		{"Missing", "/_sidehook/requests", "", 401, "admin token required: send Authorization: Bearer <token>"},
		{"Wrong", "/_sidehook/requests", "Bearer nope", 401, "invalid admin token"},
		{"NotBearer", "/_sidehook/requests", "s3cret-admin-token", 401, "admin token required"},
		{"OK", "/_sidehook/requests", "Bearer s3cret-admin-token", 200, ""},
		{"Rules", "/_sidehook/rules", "", 401, "admin token required"},
		{"Metrics", "/_sidehook/metrics", "", 401, "admin token required"},
		{"Unknown", "/_sidehook/nope", "", 401, "admin token required"},
		{"HealthzOpen", "/_sidehook/healthz", "", 200, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hdr := map[string]string{}
			if tt.auth != "" {
				hdr["Authorization"] = tt.auth
			}
			r := send(t, "GET", srv.URL()+tt.path, nil, hdr)
			if r.status != tt.status {
				t.Errorf("got %d %s, want %d", r.status, r.body, tt.status)
			}
			if r.status == 401 && !strings.Contains(string(r.body), `"error":"unauthorized"`) {
				t.Errorf("401 body: %s, want `\"error\":\"unauthorized\"`", r.body)
			}
			if tt.reason != "" && !strings.Contains(string(r.body), `"reason":"`+tt.reason) {
				t.Errorf("401 body: %s, want the reason %q", r.body, tt.reason)
			}
		})
	}
}

func TestCloseDrains(t *testing.T) {
	rules, _ := receiver.ParseRules([]byte(`[{"respond":{"status":202,"delay":"400ms"}}]`))
	srv, err := receiver.New(receiver.Config{Store: memstore.New(), Listen: "127.0.0.1:0", Rules: rules})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close(context.Background()) }) // should the test end before its Close
	url := srv.URL()
	var wg sync.WaitGroup
	status := make(chan int, 1)
	wg.Add(1)
	go func() {
		defer wg.Done()
		resp, err := http.Post(url+"/slow", "text/plain", strings.NewReader("x"))
		if err != nil {
			status <- -1
			return
		}
		resp.Body.Close()
		status <- resp.StatusCode
	}()
	waitCount(t, srv, 1)
	if err := srv.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := <-status; got != 202 {
		t.Errorf("in-flight request: got %d, want its 202 before the stop", got)
	}
	wg.Wait()
	if _, err := http.Get(url + "/after"); err == nil {
		t.Error("still serving after Close")
	}
}

// replayAnswer is the replay endpoint's answer as a client reads it.
type replayAnswer struct {
	ID, Target, Method string
	Signed             []string
	Status             int
	Headers            map[string][]string
	Body               string
	DurationMS         *int64 `json:"duration_ms"`
}

// replayOf asks srv to replay capture id with the JSON request body given.
func replayOf(t *testing.T, srv *receiver.Server, id, req string) (response, replayAnswer) {
	t.Helper()
	var b []byte
	if req != "" {
		b = []byte(req)
	}
	r := send(t, "POST", srv.URL()+"/_sidehook/requests/"+id+"/replay", b, jsonHeader)
	var ans replayAnswer
	if r.status == 200 {
		r.json(t, &ans)
	}
	return r, ans
}

var jsonHeader = map[string]string{"content-type": "application/json"}

func TestReplayEndpoint(t *testing.T) {
	srv := start(t, receiver.Config{Verify: auth.VerifyConfig{JWTSecret: []byte(testSecret)}})
	body := []byte(`{"type":"payment","amount":"50.00"}`)
	send(t, "POST", srv.URL()+"/hooks?src=1", body, map[string]string{
		"authorization": "Bearer " + jwtToken(t, testSecret, body, time.Now()),
		"webhook-id":    "evt_r",
	})
	orig := only(t, srv)

	t.Run("ToSelfSigned", func(t *testing.T) {
		r, res := replayOf(t, srv, orig.ID, `{"sign":["jwt"]}`)
		if r.status != 200 || res.Status != 200 || res.Target != srv.URL()+"/hooks?src=1" {
			t.Fatalf("got %d %s, want 200 with a 200 from /hooks?src=1", r.status, r.body)
		}
		caps, _ := list(t, srv, "limit=1")
		c := caps[0]
		if c.Verdict.Status != auth.StatusValid || !bytes.Equal(c.Body, body) || c.DuplicateOf != orig.ID {
			t.Errorf("replayed capture: verdict %+v body %q duplicate_of %q; want valid, the original body, a duplicate of the original", c.Verdict, c.Body, c.DuplicateOf)
		}
		if got := c.Headers["sidehook-replay-of"]; len(got) != 1 || got[0] != orig.ID {
			t.Errorf("sidehook-replay-of: got %v, want %s", got, orig.ID)
		}
	})
	t.Run("UnsignedOnRequest", func(t *testing.T) {
		r, res := replayOf(t, srv, orig.ID, `{"sign":[]}`)
		if r.status != 200 || res.Status != 401 || len(res.Signed) != 0 {
			t.Errorf("sign [] sends no credentials: got %d %s, want the target's 401", r.status, r.body)
		}
	})
	t.Run("ElsewhereEdited", func(t *testing.T) {
		got := make(chan *http.Request, 1)
		gotBody := make(chan string, 1)
		other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			b := new(bytes.Buffer)
			b.ReadFrom(r.Body)
			got <- r
			gotBody <- b.String()
			w.WriteHeader(204)
		}))
		t.Cleanup(other.Close)
		_, res := replayOf(t, srv, orig.ID, `{"to":"`+other.URL+`","body":"{\"edited\":true}"}`)
		if res.Status != 204 {
			t.Fatalf("got %+v, want status 204", res)
		}
		r := <-got
		if r.URL.Path != "/hooks" || r.URL.RawQuery != "src=1" || <-gotBody != `{"edited":true}` || r.Header.Get("webhook-id") != "evt_r" {
			t.Errorf("got %s %s, want /hooks?src=1 with the edited body and webhook-id evt_r", r.URL, r.Header)
		}
	})
	t.Run("Errors", func(t *testing.T) {
		for _, tt := range []struct{ id, body string }{
			{orig.ID, `{"sign":["standard"]}`}, // no standard secret here
			{orig.ID, `{"sign":["magic"]}`},
			{orig.ID, `{"to":"ftp://x"}`},
			{orig.ID, `{"nope":1}`},
			{"cap_bad", `{}`},
		} {
			if r, _ := replayOf(t, srv, tt.id, tt.body); r.status != 400 {
				t.Errorf("%s: got %d %s, want 400", tt.body, r.status, r.body)
			}
		}
	})
	// A field of the wrong type says what the field takes, not the Go
	// type it is decoded into.
	t.Run("WrongType", func(t *testing.T) {
		for _, tt := range []struct{ body, want string }{
			{`{"sign":true}`, `sign: want a list of schemes, such as ["jwt"], or [] to send unsigned`},
			{`{"sign":"jwt"}`, `sign: want a list of schemes, such as ["jwt"], or [] to send unsigned`},
			{`{"body":{"a":1}}`, `body: want the replayed body as a string`},
			{`{"to":8080}`, `to: want a URL as a string`},
		} {
			r, _ := replayOf(t, srv, orig.ID, tt.body)
			var e struct{ Error, Reason string }
			r.json(t, &e)
			if r.status != 400 || !strings.HasSuffix(e.Reason, tt.want) || strings.Contains(e.Reason, "Go struct") {
				t.Errorf("%s: got %d %s, want 400 ending %q", tt.body, r.status, r.body, tt.want)
			}
		}
	})
}

func TestMetrics(t *testing.T) {
	srv := start(t, receiver.Config{Verify: auth.VerifyConfig{JWTSecret: []byte(testSecret)}})
	send(t, "POST", srv.URL()+"/x", nil, nil)
	r := send(t, "GET", srv.URL()+"/_sidehook/metrics", nil, nil)
	text := string(r.body)
	for _, want := range []string{
		`sidehook_receiver_captures_total{verdict="invalid"} 1`,
		`sidehook_receiver_responses_total{status="401"} 1`,
		`sidehook_receiver_capture_duration_seconds_count 1`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	// Two receivers in one process have separate registries.
	other := start(t, receiver.Config{})
	if strings.Contains(string(send(t, "GET", other.URL()+"/_sidehook/metrics", nil, nil).body), `verdict="invalid"} 1`) {
		t.Error("metrics shared between receivers")
	}
}

func jsonDecode(resp *http.Response, v any) {
	json.NewDecoder(resp.Body).Decode(v)
}

// slowList is a store whose List lasts until its context ends, as a long
// scan of a large store outlasting a short wait does.
type slowList struct{ receiver.Store }

func (s slowList) List(ctx context.Context, _ receiver.Query) ([]receiver.Capture, string, error) {
	<-ctx.Done()
	return nil, "", fmt.Errorf("scan captures: %w", ctx.Err())
}

// TestWaitDeadlineDuringRead: a wait whose timeout passes while it reads
// the store answers 408 timeout, as any wait that runs out does, not 500.
func TestWaitDeadlineDuringRead(t *testing.T) {
	srv := start(t, receiver.Config{Store: slowList{memstore.New()}})
	resp, err := http.Get(srv.URL() + "/_sidehook/requests/wait?event=payment&timeout=50ms")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		Error string `json:"error"`
		Count int    `json:"count"`
	}
	jsonDecode(resp, &body)
	if resp.StatusCode != http.StatusRequestTimeout || body.Error != "timeout" || body.Count != 0 {
		t.Fatalf("got %d %+v, want 408 timeout with count 0", resp.StatusCode, body)
	}
}

// brokenAfterFirstPage lists one capture at a time and fails every page
// after the first, as a store that breaks in the middle of an export does.
type brokenAfterFirstPage struct{ receiver.Store }

func (s brokenAfterFirstPage) List(ctx context.Context, q receiver.Query) ([]receiver.Capture, string, error) {
	if q.After != "" {
		return nil, "", errors.New("scan captures: input/output error")
	}
	q.Limit = 1
	return s.Store.List(ctx, q)
}

// TestExportStoreFails: an export the store breaks off is a failure the
// client sees, never a shorter export that reads as complete: a status
// when nothing was sent yet, else a stream that ends without its end.
func TestExportStoreFails(t *testing.T) {
	big := []byte(`{"type":"payment","pad":"` + strings.Repeat("a", 64<<10) + `"}`)
	broken := func(*testing.T) receiver.Store { return brokenAfterFirstPage{memstore.New()} }
	tests := []struct {
		name   string
		format string
		store  func(*testing.T) receiver.Store
		// body is sent twice, to be captured, when not nil.
		body []byte
		// wantStatus is the export's status; 200 means the stream began
		// and reading it must fail.
		wantStatus int
	}{
		{"NDJSONMidStream", receiver.FormatNDJSON, broken, big, http.StatusOK},
		{"HARMidStream", receiver.FormatHAR, broken, big, http.StatusOK},
		{"CurlMidStream", receiver.FormatCurl, broken, big, http.StatusOK},
		{"BeforeFirstByte", receiver.FormatNDJSON, broken, []byte(`{}`), http.StatusInternalServerError},
		{"UnexportableCapture", receiver.FormatHAR, func(t *testing.T) receiver.Store {
			st := memstore.New()
			c := receiver.Capture{
				ID: event.NewID(event.PrefixCapture, time.Now()), ReceivedAt: time.Now(), Method: "POST", Path: "/x",
				Response: receiver.CaptureResponse{Status: 200, Body: "not base64!", BodyEncoding: receiver.EncodingBase64},
			}
			if err := st.Append(context.Background(), &c); err != nil {
				t.Fatal(err)
			}
			return st
		}, nil, http.StatusInternalServerError},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := start(t, receiver.Config{Store: tt.store(t)})
			for range 2 {
				if tt.body == nil {
					break
				}
				if r := send(t, "POST", srv.URL()+"/hooks", tt.body, nil); r.status != 200 {
					t.Fatalf("capture: got %d, want 200", r.status)
				}
			}
			resp, err := http.Get(srv.URL() + "/_sidehook/requests/export?format=" + tt.format)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, err := io.ReadAll(resp.Body)
			if resp.StatusCode != tt.wantStatus {
				t.Fatalf("got %d, want %d", resp.StatusCode, tt.wantStatus)
			}
			if tt.wantStatus != http.StatusOK {
				if err != nil || !bytes.Contains(b, []byte(`"error":"internal"`)) {
					t.Errorf("got body %q, %v, want the error answer", b, err)
				}
				return
			}
			if !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Errorf("read after %d bytes: got %v, want unexpected EOF", len(b), err)
			}
		})
	}
}

// TestAdminAllow: an admin path asked with a method it does not serve is a
// 405 whose Allow lists the methods it does, OPTIONS a 204 with the same
// Allow; an unknown admin path is a 404 either way.
func TestAdminAllow(t *testing.T) {
	srv := start(t, receiver.Config{})
	tests := []struct {
		method, path string
		status       int
		allow        string
	}{
		{"POST", "/_sidehook/requests/count", 405, "GET, HEAD, OPTIONS"},
		{"PUT", "/_sidehook/requests", 405, "GET, HEAD, DELETE, OPTIONS"},
		{"GET", "/_sidehook/reset", 405, "POST, OPTIONS"},
		{"PATCH", "/_sidehook/rules", 405, "GET, HEAD, POST, DELETE, OPTIONS"},
		{"POST", "/_sidehook/ui", 405, "GET, HEAD, OPTIONS"},
		{"DELETE", "/_sidehook/ws", 405, "GET, HEAD, OPTIONS"},
		{"OPTIONS", "/_sidehook/requests", 204, "GET, HEAD, DELETE, OPTIONS"},
		{"GET", "/_sidehook/nothing", 404, ""},
		{"OPTIONS", "/_sidehook/nothing", 404, ""},
	}
	for _, tt := range tests {
		t.Run(tt.method+tt.path, func(t *testing.T) {
			r := send(t, tt.method, srv.URL()+tt.path, nil, nil)
			if r.status != tt.status || r.header.Get("Allow") != tt.allow {
				t.Fatalf("got %d Allow %q %s, want %d Allow %q", r.status, r.header.Get("Allow"), r.body, tt.status, tt.allow)
			}
			if tt.status >= 400 {
				var e struct{ Error, Reason string }
				if err := json.Unmarshal(r.body, &e); err != nil || e.Error == "" || e.Reason == "" {
					t.Errorf("got %s, want {error, reason}", r.body)
				}
			}
		})
	}
}

// failedStore reports err as the store's state, as a store that failed
// or whose disk is full does.
type failedStore struct {
	receiver.Store
	err error
}

func (s *failedStore) Err() error { return s.err }

// TestHealthzFailedStore: /_sidehook/healthz, open to anyone, says what
// kind of failure the store has and keeps its error (a path, Badger's
// words) to itself, in the {"error","reason"} shape of every error answer
// (with the status a probe reads).
func TestHealthzFailedStore(t *testing.T) {
	const internal = "/var/lib/sidehook/receiver/000042.vlog"
	tests := []struct {
		name   string
		err    error
		status string
	}{
		{"DiskFull", fmt.Errorf("badgerstore: %w: 3 MiB free in %s", receiver.ErrDiskFull, internal), "disk full"},
		{"Failed", fmt.Errorf("badgerstore: %w: sync %s: input/output error", receiver.ErrStoreFailed, internal), "failed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := start(t, receiver.Config{Store: &failedStore{Store: memstore.New(), err: tt.err}})
			r := send(t, "GET", srv.URL()+"/_sidehook/healthz", nil, nil)
			var got struct{ Status, Error, Reason string }
			if err := json.Unmarshal(r.body, &got); err != nil {
				t.Fatalf("got %s: %v", r.body, err)
			}
			if r.status != http.StatusServiceUnavailable || got.Status != tt.status || got.Error != "unavailable" || got.Reason == "" {
				t.Errorf("got %d %s, want 503 with status %q, error \"unavailable\" and a reason", r.status, r.body, tt.status)
			}
			if strings.Contains(got.Reason, internal) {
				t.Errorf("got reason %q, want the store's error kept out of it", got.Reason)
			}
		})
	}
}

// TestWaitTimeoutSaysWhatCame: a wait that runs out says, in its 408
// reason and in Wait's error, what it waited for and what came instead,
// matching or not.
func TestWaitTimeoutSaysWhatCame(t *testing.T) {
	srv := start(t, receiver.Config{Store: memstore.New()})
	send(t, "POST", srv.URL()+"/a", []byte(`{"type":"payment"}`), nil)
	send(t, "POST", srv.URL()+"/b", []byte(`{"type":"messageSend"}`), map[string]string{"webhook-id": "evt_b"})
	const came = "1 came: POST /a event=payment verdict=unverified answered 200; " +
		"1 other did: POST /b event=message_send webhook_id=evt_b verdict=unverified answered 200"

	resp, err := http.Get(srv.URL() + "/_sidehook/requests/wait?event=payment&count=2&timeout=50ms")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct{ Error, Reason string }
	jsonDecode(resp, &body)
	want := "waited 50ms for 2 requests matching event=payment: " + came
	if resp.StatusCode != http.StatusRequestTimeout || body.Reason != want {
		t.Errorf("admin API: got %d %q\nwant 408 %q", resp.StatusCode, body.Reason, want)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	caps, err := srv.Wait(ctx, receiver.Filter{Event: "payment"}, 2)
	var te *receiver.WaitTimeoutError
	if !errors.As(err, &te) || !errors.Is(err, receiver.ErrWaitTimeout) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Wait: got %v, want a *WaitTimeoutError, ErrWaitTimeout and the deadline", err)
	}
	if len(caps) != 1 || len(te.Matched) != 1 || len(te.Others) != 1 || te.OtherCount != 1 {
		t.Errorf("Wait: got %d captures, %d matched and %d of %d others; want 1, 1 and 1 of 1", len(caps), len(te.Matched), len(te.Others), te.OtherCount)
	}
	if got := te.Wanted() + ": " + te.Came(); got != "2 requests matching event=payment: "+came {
		t.Errorf("Wait: got %q, want %q", got, "2 requests matching event=payment: "+came)
	}
	if err.Error() != "receiver: waiting for 2 requests matching event=payment: context deadline exceeded; "+came {
		t.Errorf("Wait: got error %q", err)
	}
}

// slowFirstList is a store whose first List lasts until its context ends,
// as a wait's first read does on a loaded machine; later ones answer.
type slowFirstList struct {
	receiver.Store
	slowed atomic.Bool
}

func (s *slowFirstList) List(ctx context.Context, q receiver.Query) ([]receiver.Capture, string, error) {
	if s.slowed.CompareAndSwap(false, true) {
		<-ctx.Done()
		return nil, "", fmt.Errorf("scan captures: %w", ctx.Err())
	}
	return s.Store.List(ctx, q)
}

// TestWaitDeadlineDuringReadSaysWhatCame: a wait whose deadline passed
// during its read of the store still says what came, read again.
func TestWaitDeadlineDuringReadSaysWhatCame(t *testing.T) {
	st := &slowFirstList{Store: memstore.New()}
	st.slowed.Store(true) // the captures below list as usual
	srv := start(t, receiver.Config{Store: st})
	send(t, "POST", srv.URL()+"/a", []byte(`{"type":"payment"}`), nil)
	send(t, "POST", srv.URL()+"/b", []byte(`{"type":"messageSend"}`), nil)
	st.slowed.Store(false)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	caps, err := srv.Wait(ctx, receiver.Filter{Event: "payment"}, 2)
	want := "receiver: waiting for 2 requests matching event=payment: context deadline exceeded; " +
		"1 came: POST /a event=payment verdict=unverified answered 200; 1 other did: POST /b event=message_send verdict=unverified answered 200"
	if err == nil || err.Error() != want || len(caps) != 1 {
		t.Errorf("got %d captures, %v\nwant 1, %s", len(caps), err, want)
	}
}

// TestWaitDeadlinePassedFindsWhatCame: a wait whose deadline has passed
// before it reads the store (Expect(f, n, 0) to check what came already;
// a loaded machine) returns the captures that are there when enough are;
// the store read failed on the deadline, and the wait said "none came".
func TestWaitDeadlinePassedFindsWhatCame(t *testing.T) {
	srv := start(t, receiver.Config{Store: memstore.New()})
	send(t, "POST", srv.URL()+"/a", []byte(`{"type":"payment"}`), nil)
	send(t, "POST", srv.URL()+"/b", []byte(`{"type":"payment"}`), nil)
	for _, tt := range []struct {
		n       int
		wantErr bool
	}{{1, false}, {2, false}, {3, true}} {
		t.Run(strconv.Itoa(tt.n), func(t *testing.T) {
			ctx, cancel := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
			defer cancel()
			caps, err := srv.Wait(ctx, receiver.Filter{Event: "payment"}, tt.n)
			if wantN := min(tt.n, 2); len(caps) != wantN || (err != nil) != tt.wantErr {
				t.Fatalf("got %d captures, %v; want %d and an error: %v", len(caps), err, wantN, tt.wantErr)
			}
			if tt.wantErr && !strings.Contains(err.Error(), "2 came") {
				t.Errorf("got %v, want it to say 2 came", err)
			}
			if caps[0].Path != "/b" {
				t.Errorf("first capture: got %s, want the newest, /b", caps[0].Path)
			}
		})
	}
}

// TestRuleByPathSaysQuery: a rule named in the path, as WireMock's
// /__admin/mappings/{id} is, is a 404 that says how the API names one
// (?id=), not only that no route is there.
func TestRuleByPathSaysQuery(t *testing.T) {
	srv := start(t, receiver.Config{})
	tests := []struct{ method, path, want string }{
		{"DELETE", "/_sidehook/rules/rule_1", `no admin route DELETE /_sidehook/rules/rule_1: delete one rule with DELETE /_sidehook/rules?id=rule_1`},
		{"GET", "/_sidehook/rules/rule_1", `no admin route GET /_sidehook/rules/rule_1: GET /_sidehook/rules lists every rule with its id`},
		{"PUT", "/_sidehook/rules/rule_1", `no admin route PUT /_sidehook/rules/rule_1: rules are added with POST /_sidehook/rules and deleted with DELETE /_sidehook/rules?id=rule_1`},
		{"GET", "/_sidehook/nothing", `no admin route GET /_sidehook/nothing`},
	}
	for _, tt := range tests {
		t.Run(tt.method+tt.path, func(t *testing.T) {
			r := send(t, tt.method, srv.URL()+tt.path, nil, nil)
			var e struct{ Error, Reason string }
			r.json(t, &e)
			if r.status != 404 || e.Error != "not_found" || e.Reason != tt.want {
				t.Errorf("got %d %s, want 404 not_found %q", r.status, r.body, tt.want)
			}
		})
	}
}

// TestWaitAcrossReset: a capture a wait found, then deleted by a reset,
// does not count towards it; the captures after the reset do.
func TestWaitAcrossReset(t *testing.T) {
	st := &listSignal{Store: memstore.New(), listed: make(chan struct{}, 1)}
	srv := start(t, receiver.Config{Store: st})
	idOf := func(a response) string {
		var c struct {
			ID string `json:"id"`
		}
		a.json(t, &c)
		return c.ID
	}
	before := idOf(send(t, "POST", srv.URL()+"/w", []byte(`{"type":"payment"}`), nil))
	select { // a listing before the wait's
	case <-st.listed:
	default:
	}
	type result struct {
		status int
		body   struct {
			Requests []receiver.Capture `json:"requests"`
		}
	}
	ch := make(chan result, 1)
	go func() {
		var res result
		resp, err := http.Get(srv.URL() + "/_sidehook/requests/wait?count=2&timeout=10s")
		if err == nil {
			defer resp.Body.Close()
			res.status = resp.StatusCode
			jsonDecode(resp, &res.body)
		}
		ch <- res
	}()
	<-st.listed // the wait has found the first capture in the store
	if a := send(t, "POST", srv.URL()+"/_sidehook/reset", nil, nil); a.status != http.StatusNoContent && a.status != http.StatusOK {
		t.Fatalf("reset: %d", a.status)
	}
	after := []string{
		idOf(send(t, "POST", srv.URL()+"/w", []byte(`{"type":"payment"}`), nil)),
		idOf(send(t, "POST", srv.URL()+"/w", []byte(`{"type":"payment"}`), nil)),
	}
	select {
	case res := <-ch:
		var got []string
		for _, c := range res.body.Requests {
			got = append(got, c.ID)
		}
		if res.status != http.StatusOK || len(got) != 2 || got[0] != after[1] || got[1] != after[0] {
			t.Errorf("wait: %d %v, want 200 and the two captures after the reset %v, newest first (not %s, deleted)",
				res.status, got, after, before)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("wait did not return")
	}
}
