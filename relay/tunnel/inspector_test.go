package tunnel_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/oklog/ulid/v2"

	"github.com/sidehook/sidehook/relay/tunnel"
	"github.com/sidehook/sidehook/web"
)

type inspectedList struct {
	Requests []tunnel.InspectedView `json:"requests"`
}

func getJSON(tb testing.TB, url string, v any) {
	tb.Helper()
	resp, err := http.Get(url)
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		tb.Fatalf("GET %s: %d, want 200: %s", url, resp.StatusCode, b)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		tb.Fatal(err)
	}
}

func inspectorBase(tb testing.TB, rc *runningClient) string {
	tb.Helper()
	u := rc.InspectorURL()
	if u == "" {
		tb.Fatal("no inspector URL")
	}
	return strings.TrimSuffix(u, web.UIPath)
}

func TestInspector(t *testing.T) {
	fr := newFakeRelay(t, fastServer())
	a := newApp(t)
	a.answerWith(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-App", "yes")
		w.Header().Set("Set-Cookie", "session=app-secret")
		w.WriteHeader(http.StatusCreated)
		io.WriteString(w, "made it")
	})
	cfg := clientConfig(fr.URL, a.URL)
	cfg.Inspect = "127.0.0.1:0"
	rc := startClient(t, cfg)
	base := inspectorBase(t, rc)

	if ready := rc.out.jsonLines(t, "ready")[0]; ready["inspector"] != rc.InspectorURL() {
		t.Errorf("ready inspector: got %v, want %s", ready["inspector"], rc.InspectorURL())
	}

	page, err := http.Get(rc.InspectorURL())
	if err != nil {
		t.Fatal(err)
	}
	html, _ := io.ReadAll(page.Body)
	page.Body.Close()
	if page.StatusCode != http.StatusOK || !strings.HasPrefix(page.Header.Get("Content-Type"), "text/html") {
		t.Errorf("inspector page: got %d %s, want the dashboard", page.StatusCode, page.Header.Get("Content-Type"))
	}
	// A replay sends the recorded headers: the page offers no schemes to
	// sign with (web.RoleInspector), whose "sign" the replay call
	// would refuse.
	if !strings.Contains(string(html), `"role":"inspector"`) {
		t.Errorf("inspector page config: want role inspector")
	}
	posted := postJSON(t, rc.InspectorURL(), `{}`, nil)
	posted.Body.Close()
	if posted.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST to the inspector page: got %d, want 405", posted.StatusCode)
	}
	// The inspector has no exports, rules or delete-all (they answer 404
	// and 405): the page shows no buttons for them.
	for _, id := range []string{`id="export-ndjson"`, `id="export-har"`, `id="show-rules"`, `id="clear-all"`} {
		if strings.Contains(string(html), id) {
			t.Errorf("inspector page shows %s, which the inspector does not serve", id)
		}
	}

	// A browser opens the dashboard before the delivery comes.
	ws, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(base, "http")+web.WSPath, nil)
	if err != nil {
		t.Fatalf("dashboard websocket: %v", err)
	}
	t.Cleanup(func() { ws.Close() })
	var snap struct {
		Type string `json:"type"`
	}
	if err := ws.ReadJSON(&snap); err != nil || snap.Type != "snapshot" {
		t.Fatalf("first frame: got %v %v, want a snapshot", snap, err)
	}

	body := []byte("{\"type\":\"payment\", \"bin\":\"\xff\"}")
	h := http.Header{"Sidehook-Event": {"payment"}, "Webhook-Id": {"evt_7"}, "X-Webio-Token": {"secret.token"}, "Content-Type": {"application/json"}}
	_, err = fr.tunnels().Send(context.Background(), relayRequest{path: "/hooks?q=1", header: h, body: body}.req(), 4096)
	if err != nil {
		t.Fatal(err)
	}

	var live struct {
		Type string   `json:"type"`
		Item web.Item `json:"item"`
	}
	ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	if err := ws.ReadJSON(&live); err != nil || live.Type != "item" || live.Item.Status != "201" || live.Item.Event != "payment" {
		t.Fatalf("live item: got %+v %v, want the delivery answered 201", live, err)
	}
	if bytes.Contains(live.Item.Data, []byte("secret.token")) {
		t.Errorf("the dashboard item carries the token unredacted: %s", live.Item.Data)
	}

	var list inspectedList
	getJSON(t, base+"/_sidehook/requests", &list)
	if len(list.Requests) != 1 {
		t.Fatalf("requests: got %d, want 1", len(list.Requests))
	}
	v := list.Requests[0]
	if v.Method != "POST" || v.Path != "/hooks" || v.Query != "q=1" || v.Event != "payment" || v.WebhookID != "evt_7" || v.BodyEncoding != "base64" {
		t.Errorf("request: got %+v, want POST /hooks?q=1, payment, evt_7, base64", v)
	}
	if r := v.Response; r.Status != 201 || r.Body != "made it" || r.Headers["x-app"][0] != "yes" || r.DurationMS <= 0 {
		t.Errorf("answer: got %+v, want 201 made it with x-app and a duration", r)
	}
	if got := v.Headers["x-webio-token"]; len(got) != 1 || got[0] != web.RedactedValue {
		t.Errorf("x-webio-token in the API: got %v, want redacted", got)
	}
	if got := v.Response.Headers["set-cookie"]; len(got) != 1 || got[0] != web.RedactedValue {
		t.Errorf("the answer's set-cookie in the API: got %v, want redacted", got)
	}

	// One click: the same bytes and headers to the app again.
	a.answerWith(func(w http.ResponseWriter, r *http.Request) { http.Error(w, "now broken", 500) })
	resp := postJSON(t, base+"/_sidehook/requests/"+v.ID+"/replay", `{}`, nil)
	var replayed tunnel.InspectedView
	if err := json.NewDecoder(resp.Body).Decode(&replayed); err != nil || resp.StatusCode != 200 {
		t.Fatalf("replay: %d %v", resp.StatusCode, err)
	}
	resp.Body.Close()
	if replayed.ReplayOf != v.ID || replayed.Response.Status != 500 || replayed.ID == v.ID {
		t.Errorf("replay record: got %+v, want a new record of %s answered 500", replayed, v.ID)
	}
	// The terminal shows the replay beside the deliveries.
	if lines := rc.out.jsonLines(t, "replay"); len(lines) != 1 || lines[0]["replay_of"] != v.ID || lines[0]["status"] != 500.0 || lines[0]["event"] != "payment" {
		t.Errorf("replay lines: got %v, want one of %s answered 500", lines, v.ID)
	}
	// Each line names its inspector record: the one a replay_of names,
	// and the one POST /_sidehook/requests/{id}/replay takes.
	if lines := rc.out.jsonLines(t, "delivery"); len(lines) != 1 || lines[0]["id"] != v.ID {
		t.Errorf("delivery lines: got %v, want one with id %s", lines, v.ID)
	}
	if lines := rc.out.jsonLines(t, "replay"); len(lines) != 1 || lines[0]["id"] != replayed.ID {
		t.Errorf("replay lines: got %v, want one with id %s", lines, replayed.ID)
	}
	got := a.requests()
	if len(got) != 2 {
		t.Fatalf("app got %d requests, want 2", len(got))
	}
	if !bytes.Equal(got[1].Body, body) || got[1].Path != "/hooks" || got[1].Query != "q=1" {
		t.Errorf("replayed request: got %s %s?%s %q, want the original bytes", got[1].Method, got[1].Path, got[1].Query, got[1].Body)
	}
	for k := range h {
		if got[1].Header.Get(k) != h.Get(k) {
			t.Errorf("replayed header %s: got %q, want %q (the token unredacted)", k, got[1].Header.Get(k), h.Get(k))
		}
	}
	if got := got[1].Header.Get("Sidehook-Replay-Of"); got != v.ID {
		t.Errorf("replayed sidehook-replay-of: got %q, want %q", got, v.ID)
	}
	if got := replayed.Headers["sidehook-replay-of"]; len(got) != 1 || got[0] != v.ID {
		t.Errorf("replay record's sidehook-replay-of: got %v, want [%s]", got, v.ID)
	}

	// An edited body.
	resp = postJSON(t, base+"/_sidehook/requests/"+v.ID+"/replay", `{"body":"edited"}`, nil)
	resp.Body.Close()
	if got := a.requests(); len(got) != 3 || string(got[2].Body) != "edited" {
		t.Errorf("edited replay: got %d requests, last %q; want 3, last \"edited\"", len(got), got[len(got)-1].Body)
	}
}

// TestInspectorReplayTo: a replay's "to" is the target URL, as on the
// receiver's dashboard: one with a path is sent there, the path the
// detail pane shows (the URL forwarded to, its port edited, say) not
// doubled; one with no path gets the endpoint's path, as --forward does.
func TestInspectorReplayTo(t *testing.T) {
	fr := newFakeRelay(t, fastServer())
	a := newApp(t)
	other := newApp(t)
	cfg := clientConfig(fr.URL, a.URL+"/base")
	cfg.Inspect = "127.0.0.1:0"
	rc := startClient(t, cfg)
	base := inspectorBase(t, rc)
	if _, err := fr.send(context.Background(), "/hooks", "payment", []byte("{}")); err != nil {
		t.Fatal(err)
	}
	var list inspectedList
	getJSON(t, base+"/_sidehook/requests", &list)
	if len(list.Requests) != 1 || list.Requests[0].URL != a.URL+"/base/hooks" {
		t.Fatalf("requests: got %+v, want one forwarded to %s/base/hooks", list.Requests, a.URL)
	}
	id := list.Requests[0].ID
	tests := []struct {
		name, to, wantPath string
	}{
		{"NoPath", other.URL, "/hooks"},
		{"Root", other.URL + "/", "/hooks"},
		{"ShownURL", other.URL + "/base/hooks", "/base/hooks"},
		{"OtherPath", other.URL + "/v2/in", "/v2/in"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := postJSON(t, base+"/_sidehook/requests/"+id+"/replay", `{"to":"`+tt.to+`"}`, nil)
			var v tunnel.InspectedView
			err := json.NewDecoder(resp.Body).Decode(&v)
			resp.Body.Close()
			if err != nil || resp.StatusCode != http.StatusOK {
				t.Fatalf("replay: got %d %v, want 200", resp.StatusCode, err)
			}
			got := other.requests()
			if len(got) != i+1 || got[i].Path != tt.wantPath || v.URL != other.URL+tt.wantPath {
				t.Errorf("replay to %s: got %d requests, last %+v, record URL %s; want it at %s", tt.to, len(got), got[len(got)-1], v.URL, tt.wantPath)
			}
			// The terminal says where the replay went, not the path the
			// relay's delivery had.
			rc.out.wait(t, "the replay's line", func() bool { return len(rc.out.jsonLines(t, "replay")) == i+1 })
			if line := rc.out.jsonLines(t, "replay")[i]; line["to"] != other.URL+tt.wantPath {
				t.Errorf("replay line: got %v, want \"to\": %s", line, other.URL+tt.wantPath)
			}
		})
	}
}

func TestInspectorRefuses(t *testing.T) {
	fr := newFakeRelay(t, fastServer())
	a := newApp(t)
	cfg := clientConfig(fr.URL, a.URL)
	cfg.Inspect = "127.0.0.1:0"
	rc := startClient(t, cfg)
	base := inspectorBase(t, rc)
	if _, err := fr.send(context.Background(), "/", "payment", []byte("{}")); err != nil {
		t.Fatal(err)
	}
	var list inspectedList
	getJSON(t, base+"/_sidehook/requests", &list)
	id := list.Requests[0].ID
	tests := []struct {
		name   string
		body   string
		header http.Header
		want   int
	}{
		{"CrossSite", `{}`, http.Header{"Sec-Fetch-Site": {"cross-site"}}, http.StatusForbidden},
		{"OtherOrigin", `{}`, http.Header{"Origin": {"http://evil.example"}}, http.StatusForbidden},
		{"RebindHost", `{}`, http.Header{"Host": {"evil.example"}}, http.StatusForbidden},
		{"FormBody", `a=b`, http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}, http.StatusUnsupportedMediaType},
		{"BadJSON", `{"to":`, nil, http.StatusBadRequest},
		{"BadTarget", `{"to":"ftp://x"}`, nil, http.StatusBadRequest},
		{"TargetPortOutOfRange", `{"to":"http://127.0.0.1:99999/hooks"}`, nil, http.StatusBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := postJSON(t, base+"/_sidehook/requests/"+id+"/replay", tt.body, tt.header)
			defer resp.Body.Close()
			if resp.StatusCode != tt.want {
				b, _ := io.ReadAll(resp.Body)
				t.Errorf("got %d %s, want %d", resp.StatusCode, b, tt.want)
			}
		})
	}
	if n := len(a.requests()); n != 1 {
		t.Errorf("app got %d requests, want only the delivery", n)
	}
	// An id from an older line may be gone: the answer says the
	// inspector keeps only the newest, as GET of it does.
	for _, method := range []string{http.MethodGet, http.MethodPost} {
		url := base + "/_sidehook/requests/fwd_nope"
		var resp *http.Response
		if method == http.MethodPost {
			resp = postJSON(t, url+"/replay", `{}`, nil)
		} else {
			var err error
			if resp, err = http.Get(url); err != nil {
				t.Fatal(err)
			}
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound || !strings.Contains(string(b), `no forwarded request \"fwd_nope\" (the inspector keeps the last 500)`) {
			t.Errorf("%s of an unknown id: got %d %s, want 404 saying the inspector keeps the last 500", method, resp.StatusCode, b)
		}
	}
}

func postJSON(tb testing.TB, url, body string, h http.Header) *http.Response {
	tb.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		tb.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for k, v := range h {
		req.Header[k] = v
	}
	if host := h.Get("Host"); host != "" {
		req.Host = host
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	return resp
}

// inspectedPage is GET /_sidehook/requests's answer: a page, newest first,
// and the cursor of the next (null on the last), as the receiver's.
type inspectedPage struct {
	Requests []tunnel.InspectedView `json:"requests"`
	Next     *string                `json:"next"`
}

// inspectorWith starts a client with an inspector and forwards n
// deliveries through it, to /n/0 … /n/(n-1) in that order.
func inspectorWith(tb testing.TB, n int) (base string, rc *runningClient) {
	tb.Helper()
	fr := newFakeRelay(tb, fastServer())
	a := newApp(tb)
	cfg := clientConfig(fr.URL, a.URL)
	cfg.Inspect = "127.0.0.1:0"
	rc = startClient(tb, cfg)
	for i := range n {
		// The record is kept before the result goes back: when Send
		// returns, the inspector lists it.
		if _, err := fr.send(context.Background(), fmt.Sprintf("/n/%d", i), "payment", []byte("{}")); err != nil {
			tb.Fatal(err)
		}
	}
	return inspectorBase(tb, rc), rc
}

// TestInspectorListPages: the inspector's list takes limit and cursor and
// answers next as the receiver's GET /_sidehook/requests does (the page's
// "load older" calls it so), rather than every record at once.
func TestInspectorListPages(t *testing.T) {
	const total = 120 // over the default limit
	base, _ := inspectorWith(t, total)
	list := base + "/_sidehook/requests"
	ulidAt := func(at time.Time) string {
		return tunnel.PrefixForward + ulid.MustNew(ulid.Timestamp(at), rand.Reader).String()
	}

	tests := []struct {
		name     string
		query    string
		want     int
		wantNext bool
	}{
		{"Default", "", 100, true},
		{"Limit", "?limit=7", 7, true},
		{"All", "?limit=1000", total, false},
		{"OverMax", "?limit=100000", total, false}, // taken as the maximum, as the receiver does
		// A cursor names a place, whether or not its record is kept.
		{"CursorAfterAll", "?cursor=" + ulidAt(time.Now().Add(time.Hour)), 100, true},
		{"CursorBeforeAll", "?cursor=" + ulidAt(time.Now().Add(-time.Hour)), 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var p inspectedPage
			getJSON(t, list+tt.query, &p)
			if len(p.Requests) != tt.want || (p.Next != nil) != tt.wantNext {
				t.Errorf("got %d requests, next %v; want %d, a next: %v", len(p.Requests), p.Next, tt.want, tt.wantNext)
			}
			if tt.wantNext && p.Next != nil && *p.Next != p.Requests[len(p.Requests)-1].ID {
				t.Errorf("next: got %q, want the page's last id %q", *p.Next, p.Requests[len(p.Requests)-1].ID)
			}
		})
	}

	t.Run("PagedThrough", func(t *testing.T) {
		// Page by 7: every record once, newest first, and no next after
		// the last page.
		var paths []string
		cursor := ""
		for pages := 0; ; pages++ {
			if pages > total {
				t.Fatalf("still paging after %d pages", pages)
			}
			q := "?limit=7"
			if cursor != "" {
				q += "&cursor=" + cursor
			}
			var p inspectedPage
			getJSON(t, list+q, &p)
			for _, r := range p.Requests {
				paths = append(paths, r.Path)
			}
			if p.Next == nil {
				break
			}
			cursor = *p.Next
		}
		if len(paths) != total {
			t.Fatalf("paged through %d records, want %d", len(paths), total)
		}
		for i, p := range paths {
			if want := fmt.Sprintf("/n/%d", total-1-i); p != want {
				t.Fatalf("record %d: got %s, want %s (newest first)", i, p, want)
			}
		}
	})
}

// TestInspectorListRefuses: a limit or cursor the list cannot use, or a
// parameter it does not take, is a 400 saying which, in the shape of every
// error of the inspector, never a list that ignored it.
func TestInspectorListRefuses(t *testing.T) {
	base, _ := inspectorWith(t, 1)
	tests := []struct {
		name  string
		query string
		want  string // in the reason
	}{
		{"LimitZero", "limit=0", "limit"},
		{"LimitNegative", "limit=-1", "limit"},
		{"LimitNotANumber", "limit=ten", "limit"},
		{"CursorNotAnID", "cursor=nope", "cursor"},
		{"CursorOfAnotherAPI", "cursor=cap_" + ulid.Make().String(), "cursor"},
		{"UnknownParameter", "event=payment", `"event"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := http.Get(base + "/_sidehook/requests?" + tt.query)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var e struct{ Error, Reason string }
			if err := json.NewDecoder(resp.Body).Decode(&e); err != nil {
				t.Fatalf("decode: %v", err)
			}
			if resp.StatusCode != http.StatusBadRequest || e.Error != "bad_request" || !strings.Contains(e.Reason, tt.want) {
				t.Errorf("got %d %+v, want 400 bad_request with a reason saying %s", resp.StatusCode, e, tt.want)
			}
		})
	}
}

// TestInspectorNoRoute: what the inspector does not serve is answered in
// the {"error","reason"} shape, as on the relay and the receiver, not
// net/http's text.
func TestInspectorNoRoute(t *testing.T) {
	base, _ := inspectorWith(t, 1)
	tests := []struct {
		name, method, path string
		want               int
		code, allow        string
	}{
		{"NotFound", http.MethodGet, "/_sidehook/nope", http.StatusNotFound, "not_found", ""},
		{"NotFoundRoot", http.MethodPost, "/nope", http.StatusNotFound, "not_found", ""},
		{"MethodNotAllowed", http.MethodDelete, "/_sidehook/requests", http.StatusMethodNotAllowed, "method_not_allowed", "GET, HEAD, OPTIONS"},
		{"ReplayIsPOST", http.MethodGet, "/_sidehook/requests/fwd_x/replay", http.StatusMethodNotAllowed, "method_not_allowed", "POST, OPTIONS"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequest(tt.method, base+tt.path, nil)
			if err != nil {
				t.Fatal(err)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var e struct{ Error, Reason string }
			if err := json.NewDecoder(resp.Body).Decode(&e); err != nil {
				t.Fatalf("got %d, not a JSON body: %v", resp.StatusCode, err)
			}
			if resp.StatusCode != tt.want || e.Error != tt.code || e.Reason == "" {
				t.Errorf("got %d %+v, want %d %s with a reason", resp.StatusCode, e, tt.want, tt.code)
			}
			if got := resp.Header.Get("Allow"); got != tt.allow {
				t.Errorf("Allow: got %q, want %q", got, tt.allow)
			}
		})
	}
}
