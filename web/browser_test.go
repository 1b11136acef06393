package web_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/sidehook/sidehook/web"
	"github.com/sidehook/sidehook/web/webtest"
)

// shared is one chromium for this package's tests (see webtest.Shared);
// TestMain stops it.
var shared webtest.Shared

// TestMain also fails the run if a test leaves a goroutine behind.
func TestMain(m *testing.M) { shared.VerifyTestMain(m) }

// The helpers below are webtest's, under the short names these tests use.

func newBrowser(tb testing.TB) context.Context { tb.Helper(); return shared.NewTab(tb) }

func do(tb testing.TB, ctx context.Context, what string, steps ...chromedp.Action[chromedp.Void]) {
	tb.Helper()
	webtest.Do(tb, ctx, what, steps...)
}

func get[T any](tb testing.TB, ctx context.Context, what string, a chromedp.Action[T]) T {
	tb.Helper()
	return webtest.Get(tb, ctx, what, a)
}

func js[T any](tb testing.TB, ctx context.Context, expr string) T {
	tb.Helper()
	return webtest.JS[T](tb, ctx, expr)
}

func button(name string) chromedp.Search { return webtest.Button(name) }

func screenshot(tb testing.TB, ctx context.Context, name string) {
	tb.Helper()
	webtest.Screenshot(tb, ctx, name)
}

// recorder is a fake server endpoint that keeps what the page sent.
type recorder struct {
	mu   sync.Mutex
	reqs []recorded
	got  chan recorded
}

type recorded struct {
	Method, Path, Auth string
	Body               map[string]any
}

func newRecorder() *recorder { return &recorder{got: make(chan recorded, 16)} }

func (rc *recorder) handler(answer string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		rec := recorded{Method: r.Method, Path: r.URL.Path, Auth: r.Header.Get("Authorization")}
		if len(b) > 0 {
			_ = json.Unmarshal(b, &rec.Body)
		}
		rc.mu.Lock()
		rc.reqs = append(rc.reqs, rec)
		rc.mu.Unlock()
		rc.got <- rec
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, answer)
	}
}

func (rc *recorder) next(tb testing.TB) recorded {
	tb.Helper()
	select {
	case r := <-rc.got:
		return r
	case <-time.After(10 * time.Second):
		tb.Fatal("the page sent nothing within 10s")
		return recorded{}
	}
}

func jwtFor(claims string) string {
	enc := base64.RawURLEncoding.EncodeToString
	return enc([]byte(`{"alg":"HS256","typ":"JWT"}`)) + "." + enc([]byte(claims)) + ".c2lnbmF0dXJlLXNlY3JldC1wYXJ0"
}

// captureItem is a capture row as the receiver builds it: its headers
// redacted on the server (web.RedactHeaders) before it is encoded.
func captureItem(id string, at time.Time, status string, data map[string]any) web.Item {
	if h, ok := data["headers"].(map[string][]string); ok {
		data["headers"] = web.RedactHeaders(h)
	}
	raw, _ := json.Marshal(data)
	return web.Item{Kind: web.KindCapture, ID: id, Time: at, Event: fmt.Sprint(data["event"]), Method: fmt.Sprint(data["method"]),
		Path: fmt.Sprint(data["path"]), Status: status, Data: raw}
}

func TestBrowserReceiver(t *testing.T) {
	ctx := newBrowser(t)
	replays := newRecorder()
	d := startDashboard(t, dashOptions{
		Role:         web.RoleReceiver,
		ClientBuffer: 16384,
		Routes: func(mux *http.ServeMux) {
			mux.Handle("POST /_sidehook/requests/{id}/replay", replays.handler(`{"id":"cap_replayed","status":200}`))
		},
	})
	base := time.Now().Add(-time.Minute).UTC()
	for i, ev := range []string{"inbound_message", "message_send", "delivery_report"} {
		d.Log.add(captureItem(fmt.Sprintf("cap_seed%d", i), base.Add(time.Duration(i)*time.Second), "valid", map[string]any{
			"event": ev, "method": "POST", "path": "/webhooks", "headers": map[string][]string{"content-type": {"application/json"}},
			"body": `{"type":"x"}`, "body_encoding": "utf8", "verdict": map[string]any{"status": "valid", "scheme": "webio-token"},
		}))
	}

	do(t, ctx, "open the dashboard",
		chromedp.Navigate(d.URL+web.UIPath),
		chromedp.WaitVisible(chromedp.CSS(`#conn[data-state="live"]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-id="cap_seed2"]`)),
	)

	webio := jwtFor(`{"iss":"sidehook","org":"demo","iat":1764064800,"jti":"j-1"}`)
	bearer := jwtFor(`{"iss":"sidehook","sub":"demo","aud":"crm","exp":1764065100,"evt":"payment"}`)
	body := `{"type":"payment","amount":"50.00","currency":"GBP","reference":"it's 100%"}`
	d.publish(captureItem("cap_live1", time.Now().UTC(), "invalid", map[string]any{
		"id": "cap_live1", "event": "payment", "method": "POST", "path": "/webhooks", "query": "a=1",
		"headers": map[string][]string{
			"content-type": {"application/json"}, "authorization": {"Bearer " + bearer}, "x-webio-token": {webio},
			"webhook-signature": {"v1,c2VjcmV0"}, "cookie": {"session=hunter2"}, "webhook-id": {"evt_01TEST"},
		},
		"body": body, "body_encoding": "utf8", "webhook_id": "evt_01TEST",
		"verdict":  map[string]any{"status": "invalid", "scheme": "jwt", "reason": "token expired at 2025-11-25T10:05:00Z"},
		"response": map[string]any{"status": 401},
	}))

	do(t, ctx, "see the published item without reload and open it",
		chromedp.WaitVisible(chromedp.CSS(`[data-id="cap_live1"]`)),
		chromedp.Click(chromedp.CSS(`[data-id="cap_live1"]`)),
		chromedp.WaitVisible(chromedp.ID(`replay-to`)),
	)
	headers := js[map[string]string](t, ctx, `Object.fromEntries([...document.querySelectorAll('table.headers tbody tr')].map(r => [r.querySelector('th').textContent, r.querySelector('td').textContent]))`)
	pretty := get(t, ctx, "read the body", chromedp.Text(chromedp.CSS(`pre.body`)))
	reason := get(t, ctx, "read the reason", chromedp.Text(chromedp.CSS(`dd.reason`)))
	claims := js[string](t, ctx, `[...document.querySelectorAll('table.claims')].map(e => e.innerText).join('\n')`)
	pageText := js[string](t, ctx, `document.body.innerText + [...document.querySelectorAll('input,textarea')].map(e => e.value).join(' ')`)

	for name, want := range map[string]string{
		"authorization": "Bearer [redacted]", "x-webio-token": "[redacted]", "webhook-signature": "[redacted]",
		"cookie": "[redacted]", "webhook-id": "evt_01TEST",
	} {
		if headers[name] != want {
			t.Errorf("header %s shows %q, want %q", name, headers[name], want)
		}
	}
	for _, secret := range []string{webio, bearer, "hunter2", "c2lnbmF0dXJlLXNlY3JldC1wYXJ0"} {
		if strings.Contains(pageText, secret) {
			t.Errorf("page shows the secret %q", secret)
		}
	}
	// Pretty-printed, in the sender's key order.
	wantPretty := "{\n  \"type\": \"payment\",\n  \"amount\": \"50.00\",\n  \"currency\": \"GBP\",\n  \"reference\": \"it's 100%\"\n}"
	if strings.TrimSpace(pretty) != wantPretty {
		t.Errorf("body shows %q, want pretty JSON %q", pretty, wantPretty)
	}
	if reason != "token expired at 2025-11-25T10:05:00Z" {
		t.Errorf("reason shows %q, want \"token expired at 2025-11-25T10:05:00Z\"", reason)
	}
	for _, c := range []string{"org", "demo", "aud", "crm", "jti", "2025-11-25T10:00:00.000Z"} {
		if !strings.Contains(claims, c) {
			t.Errorf("decoded claims %q lack %q", claims, c)
		}
	}
	screenshot(t, ctx, "receiver-detail")

	if label := js[string](t, ctx, `document.querySelector('label[for="replay-to"]').textContent`); label != "Target URL" {
		t.Errorf("the target field is labelled %q, want %q", label, "Target URL")
	}
	do(t, ctx, "replay to a typed Target URL",
		chromedp.SendKeys(chromedp.ID(`replay-to`), "http://127.0.0.1:9/elsewhere"),
		chromedp.Click(button("Replay")),
	)
	got := replays.next(t)
	if got.Path != "/_sidehook/requests/cap_live1/replay" || got.Body["to"] != "http://127.0.0.1:9/elsewhere" {
		t.Fatalf("page sent %+v, want a replay of cap_live1 to the typed URL", got)
	}
	if _, edited := got.Body["body"]; edited {
		t.Errorf("page sent a body %v although none was edited", got.Body["body"])
	}
	// Signed as the original came, unless the user unticks a scheme.
	if sign := fmt.Sprint(got.Body["sign"]); sign != "[webio-token jwt standard]" {
		t.Errorf("page sent sign %s, want the three schemes the original carried", sign)
	}
	do(t, ctx, "see the replay result", chromedp.WaitVisible(chromedp.CSS(`.result.ok`)))
	if result := get(t, ctx, "read the result", chromedp.Text(chromedp.CSS(`.result`))); !strings.Contains(result, "HTTP 200") {
		t.Errorf("result shows %q, want the status", result)
	}

	do(t, ctx, "replay with an edited body to the original target, without the jwt",
		chromedp.Evaluate[chromedp.Void](`document.getElementById('replay-to').value = ''`),
		chromedp.Click(chromedp.CSS(`details.edit-body summary`)),
		chromedp.SetValue(chromedp.ID(`replay-body`), `{"type":"payment","amount":"99.00"}`),
		chromedp.Click(chromedp.ID(`sign-jwt`)),
		chromedp.Click(button("Replay")),
	)
	got = replays.next(t)
	if _, has := got.Body["to"]; has || got.Body["body"] != `{"type":"payment","amount":"99.00"}` {
		t.Fatalf("page sent %+v, want the edited body and no target", got.Body)
	}
	if sign := fmt.Sprint(got.Body["sign"]); sign != "[webio-token standard]" {
		t.Errorf("page sent sign %s, want the schemes left ticked", sign)
	}
	// The page showed "Replaying…" (no ok) before it sent the request: its
	// result, once shown, no longer lands on top of copy-as-curl's below.
	do(t, ctx, "see the second replay's result", chromedp.WaitVisible(chromedp.CSS(`.result.ok`)))

	// Copy as curl copies the request itself: its method, URL, headers as
	// shown (credentials still redacted, and said so) and the body as
	// edited; a typed Target URL without a path keeps the original's.
	do(t, ctx, "copy as curl", webtest.CopyCurl()...)
	curl := get(t, ctx, "read the curl command", chromedp.Value(chromedp.CSS(`textarea.curl`)))
	for _, part := range []string{"curl \\\n  --globoff \\\n  -X 'POST' \\\n  '" + d.URL + "/webhooks?a=1'",
		"-H 'authorization: Bearer [redacted]'", "-H 'x-webio-token: [redacted]'", "-H 'webhook-signature: [redacted]'",
		"-H 'content-type: application/json'", "-H 'webhook-id: evt_01TEST'",
		`--data-binary '{"type":"payment","amount":"99.00"}'`} {
		if !strings.Contains(curl, part) {
			t.Errorf("curl command %q lacks %q", curl, part)
		}
	}
	for _, secret := range []string{webio, bearer, "hunter2", "c2lnbmF0dXJlLXNlY3JldC1wYXJ0", "/_sidehook/"} {
		if strings.Contains(curl, secret) {
			t.Errorf("curl command %q carries %q", curl, secret)
		}
	}
	if result := get(t, ctx, "read the result", chromedp.Text(chromedp.CSS(`.result`))); !strings.Contains(result, "credentials are redacted") || !strings.Contains(result, "x-webio-token") {
		t.Errorf("result shows %q, want it to say which credentials are redacted", result)
	}
	do(t, ctx, "copy as curl to a typed target",
		append([]chromedp.Action[chromedp.Void]{chromedp.SendKeys(chromedp.ID(`replay-to`), "http://127.0.0.1:9")}, webtest.CopyCurl()...)...)
	if curl := get(t, ctx, "read the curl command", chromedp.Value(chromedp.CSS(`textarea.curl`))); !strings.Contains(curl, "'http://127.0.0.1:9/webhooks?a=1'") {
		t.Errorf("curl command %q does not go to the typed target with the original path and query", curl)
	}
	do(t, ctx, "clear the target", chromedp.Evaluate[chromedp.Void](`document.getElementById('replay-to').value = ''`))

	do(t, ctx, "filter by verdict",
		chromedp.SetValue(chromedp.ID(`f-status`), "invalid"),
		chromedp.Evaluate[chromedp.Void](`document.getElementById('f-status').dispatchEvent(new Event('change'))`),
		chromedp.Poll[chromedp.Void](`document.querySelectorAll('#list .row').length === 1`, chromedp.WithPollingTimeout(5*time.Second)),
		chromedp.Click(button("Clear filters")),
		chromedp.Poll[chromedp.Void](`document.querySelectorAll('#list .row').length === 4`, chromedp.WithPollingTimeout(5*time.Second)),
	)

	// 10,500 more items: the page keeps its cap of 10,000, renders only
	// what is in view, and still answers.
	for i := range 10500 {
		d.Hub.Publish(captureItem(fmt.Sprintf("cap_bulk%05d", i), time.Now().UTC(), "valid", map[string]any{
			"event": "payment", "method": "POST", "path": fmt.Sprintf("/bulk/%d", i), "body": `{"n":1}`,
		}))
	}
	// A bound, not a pace: a browser on a loaded machine takes a while
	// to read 10,500 messages, and the poll ends as soon as they are in.
	webtest.DoWithin(t, ctx, "hold 10,000 items", 90*time.Second,
		chromedp.Poll[chromedp.Void](`window.sidehook.store.size === 10000 && window.sidehook.store.get('cap_bulk10499') !== undefined`, chromedp.WithPollingTimeout(90*time.Second)))
	stored := js[int](t, ctx, `window.sidehook.store.size`)
	rows := js[int](t, ctx, `document.querySelectorAll('#list .row').length`)
	filterMs := js[float64](t, ctx, `(() => {
		const t0 = performance.now();
		const el = document.getElementById('f-text');
		el.value = 'bulk/104';
		el.dispatchEvent(new Event('input'));
		window.sidehook.list.setItems(window.sidehook.store.filter(it => it.haystack.includes('bulk/104')));
		return performance.now() - t0;
	})()`)
	scrollMs := js[float64](t, ctx, `(() => {
		const l = document.getElementById('list');
		window.sidehook.list.setItems(window.sidehook.store.filter(() => true));
		const t0 = performance.now();
		for (let y = 0; y < 30000; y += 3000) { l.scrollTop = y; window.sidehook.list.render(); }
		return performance.now() - t0;
	})()`)
	if stored != web.MaxItems {
		t.Errorf("page holds %d items, want the cap %d", stored, web.MaxItems)
	}
	if rows == 0 || rows > 80 {
		t.Errorf("page renders %d rows, want only those in view", rows)
	}
	t.Logf("10,000 items: %d rows in the DOM; filtering all took %.1f ms; 10 scroll jumps took %.1f ms", rows, filterMs, scrollMs)
	screenshot(t, ctx, "receiver-10k")
}

// inspectorPage opens a page set up as the tunnel's inspector serves it
// (RoleInspector) with one forwarded request, fwd_1, whose
// local app answered 500, selected; replay answers a replay as the
// inspector does: with the record of the replay (tunnel.InspectedView).
func inspectorPage(t *testing.T, replay string) (context.Context, *recorder, *dashboard) {
	t.Helper()
	ctx := newBrowser(t)
	replays := newRecorder()
	d := startDashboard(t, dashOptions{
		Role: web.RoleInspector,
		Routes: func(mux *http.ServeMux) {
			mux.Handle("POST /_sidehook/requests/{id}/replay", replays.handler(replay))
		},
	})
	d.publish(captureItem("fwd_1", time.Now().UTC(), "500", map[string]any{
		"id": "fwd_1", "event": "payment", "method": "POST", "path": "/webhooks", "query": "a=1",
		"delivery_id": "dlv_1", "attempt": 2,
		"url":     "http://127.0.0.1:3000/app/webhooks?a=1",
		"headers": map[string][]string{"content-type": {"application/json"}, "webhook-id": {"evt_1"}},
		"body":    `{"type":"payment"}`, "body_encoding": "utf8",
		"verdict":  map[string]any{"status": "unverified"},
		"response": map[string]any{"status": 500, "body": "boom", "body_encoding": "utf8", "duration_ms": 3},
	}))
	do(t, ctx, "open the forwarded request",
		chromedp.Navigate(d.URL+web.UIPath),
		chromedp.WaitVisible(chromedp.CSS(`[data-id="fwd_1"]`)),
		chromedp.Click(chromedp.CSS(`[data-id="fwd_1"]`)),
		chromedp.WaitVisible(chromedp.ID(`replay-to`)),
	)
	return ctx, replays, d
}

// TestBrowserInspectorSignsNothing: the inspector's replays send the
// recorded headers: the page offers no schemes to sign with and sends
// none, as the inspector refuses a replay request with a field it does not
// take.
func TestBrowserInspectorSignsNothing(t *testing.T) {
	ctx, replays, _ := inspectorPage(t, `{"id":"fwd_2","replay_of":"fwd_1","response":{"status":200,"duration_ms":1}}`)
	if n := js[int](t, ctx, `document.querySelectorAll('input[name="sign"]').length`); n != 0 {
		t.Errorf("the page offers %d schemes to sign with, want none", n)
	}
	do(t, ctx, "replay", chromedp.Click(button("Replay")))
	got := replays.next(t)
	if _, sent := got.Body["sign"]; sent || got.Path != "/_sidehook/requests/fwd_1/replay" {
		t.Errorf("replay sent %+v, want a replay of fwd_1 without sign", got)
	}
}

// TestBrowserInspectorReplayAnswer: the inspector answers a replay 200
// with the record of it; the page shows the local app's answer in it, not
// "Replay sent" over an app that answered 500.
func TestBrowserInspectorReplayAnswer(t *testing.T) {
	ctx, replays, _ := inspectorPage(t, `{"id":"fwd_2","method":"POST","path":"/webhooks","url":"http://127.0.0.1:3000/app/webhooks?a=1",`+
		`"replay_of":"fwd_1","verdict":{"status":"unverified"},`+
		`"response":{"status":500,"headers":{"x-app":["yes"]},"body":"still broken","body_encoding":"utf8","duration_ms":4}}`)
	do(t, ctx, "replay", chromedp.Click(button("Replay")))
	replays.next(t)
	do(t, ctx, "see the replay's answer", chromedp.WaitVisible(chromedp.CSS(`.result.bad`)))
	result := get(t, ctx, "read the result", chromedp.Text(chromedp.CSS(`.result`)))
	for _, part := range []string{"Target answered HTTP 500 in 4 ms", "POST http://127.0.0.1:3000/app/webhooks?a=1", "sidehook-replay-of fwd_1", "still broken"} {
		if !strings.Contains(result, part) {
			t.Errorf("result %q lacks %q", result, part)
		}
	}

	// An app that is down: no status, the error says why.
	ctx, replays, _ = inspectorPage(t, `{"id":"fwd_3","method":"POST","path":"/webhooks","url":"http://127.0.0.1:3000/app/webhooks?a=1",`+
		`"replay_of":"fwd_1","response":{"status":0,"body":"","body_encoding":"utf8","duration_ms":1,"error":"connection refused"}}`)
	do(t, ctx, "replay to an app that is down", chromedp.Click(button("Replay")))
	replays.next(t)
	do(t, ctx, "see the replay's failure", chromedp.WaitVisible(chromedp.CSS(`.result.bad`)))
	if result := get(t, ctx, "read the result", chromedp.Text(chromedp.CSS(`.result`))); !strings.Contains(result, "Target did not answer") || !strings.Contains(result, "connection refused") {
		t.Errorf("result %q, want that the app did not answer and why", result)
	}
}

// TestBrowserInspectorShowsWhereItWent: a forwarded request's detail
// says the URL it was sent to (the app's, or a replay's typed one, which
// its path, the endpoint's, does not tell) and its delivery, the id
// `sidehook replay --relay` takes, as the replay hint says.
func TestBrowserInspectorShowsWhereItWent(t *testing.T) {
	ctx, _, _ := inspectorPage(t, `{}`)
	meta := get(t, ctx, "read the detail's facts", chromedp.Text(chromedp.CSS(`.detail-head dl.meta`)))
	for _, want := range []string{"http://127.0.0.1:3000/app/webhooks?a=1", "dlv_1"} {
		if !strings.Contains(meta, want) {
			t.Errorf("detail says %q, want it to show %s", meta, want)
		}
	}
}

// TestBrowserInspectorCopyCurl: Copy as curl on the inspector's page
// sends the request where it was forwarded (the local app), or where a
// replay to the typed URL goes, not to the inspector serving the page.
func TestBrowserInspectorCopyCurl(t *testing.T) {
	ctx, _, _ := inspectorPage(t, `{}`)
	curl := func(what string) string {
		t.Helper()
		do(t, ctx, what, webtest.CopyCurl()...)
		return get(t, ctx, "read the command", chromedp.Value(chromedp.CSS(`textarea.curl`)))
	}
	if cmd := curl("copy as curl"); !strings.Contains(cmd, "'http://127.0.0.1:3000/app/webhooks?a=1'") {
		t.Errorf("command %q, want it sent to the local app it was forwarded to", cmd)
	}
	// A typed URL with a path is the target as typed (the forwarded URL,
	// its port changed); one without a path gets the endpoint's path.
	for _, tc := range []struct{ typed, want string }{
		{"http://127.0.0.1:4000/app/webhooks", "'http://127.0.0.1:4000/app/webhooks?a=1'"},
		{"http://127.0.0.1:4000", "'http://127.0.0.1:4000/webhooks?a=1'"},
	} {
		do(t, ctx, "type "+tc.typed,
			chromedp.Evaluate[chromedp.Void](`document.getElementById('replay-to').value = ''`),
			chromedp.SendKeys(chromedp.ID(`replay-to`), tc.typed))
		if cmd := curl("copy as curl to " + tc.typed); !strings.Contains(cmd, tc.want) {
			t.Errorf("typed %s: command %q, want it sent to %s, where the inspector replays to that URL", tc.typed, cmd, tc.want)
		}
	}
}

// TestBrowserInspectorStatusFilter: the inspector's rows carry the local
// app's answer ("200", "500", "error"), not a verdict; the filter offers
// those, and picking one shows its rows.
func TestBrowserInspectorStatusFilter(t *testing.T) {
	ctx, _, d := inspectorPage(t, `{}`)
	d.publish(captureItem("fwd_ok", time.Now().UTC(), "200", map[string]any{
		"id": "fwd_ok", "event": "payment", "method": "POST", "path": "/webhooks", "url": "http://127.0.0.1:3000/app/webhooks",
		"body": `{}`, "body_encoding": "utf8", "response": map[string]any{"status": 200},
	}))
	do(t, ctx, "see the new row", chromedp.WaitVisible(chromedp.CSS(`[data-id="fwd_ok"]`)))
	opts := js[[]string](t, ctx, `[...document.querySelectorAll('#f-status option')].map((o) => o.value)`)
	if strings.Join(opts, ",") != ",200,500" {
		t.Errorf("status filter offers %q, want any, 200 and 500", opts)
	}
	do(t, ctx, "filter on 500", chromedp.SetValue(chromedp.ID(`f-status`), "500"),
		chromedp.Evaluate[chromedp.Void](`document.getElementById('f-status').dispatchEvent(new Event('change'))`),
		chromedp.Poll[chromedp.Void](`document.querySelectorAll('#list .row').length === 1`, chromedp.WithPollingTimeout(5*time.Second)))
	if id := js[string](t, ctx, `document.querySelector('#list .row').dataset.id`); id != "fwd_1" {
		t.Errorf("filtered on 500, the list shows %s, want fwd_1", id)
	}
	if label := get(t, ctx, "read the filter's label", chromedp.Text(chromedp.CSS(`label[for="f-status"]`))); label != "Answer" {
		t.Errorf("the status filter is labelled %q, want Answer", label)
	}
}

func TestBrowserRelay(t *testing.T) {
	ctx := newBrowser(t)
	actions := newRecorder()
	d := startDashboard(t, dashOptions{
		Role: web.RoleRelay,
		Routes: func(mux *http.ServeMux) {
			mux.Handle("POST /_sidehook/replay", actions.handler(`{"replayed":1,"results":[{"delivery_id":"dlv_dead1","event_id":"evt_01","ok":true,"status":200,"latency_ms":12}]}`))
			mux.Handle("POST /_sidehook/deliveries/{id}/retry", actions.handler(`{"id":"dlv_dead1","status":"pending","attempts":[{"n":1,"request_headers":{"authorization":["Bearer eyJ.secret"]}},{"n":2}],`+
				`"reason":"due now, but endpoint crm is ordered: it waits behind dlv_head1, the head of its queue, until that is delivered or dead"}`))
			mux.HandleFunc("GET /_sidehook/tunnels", func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				// The second is held by another relay on a NATS store.
				fmt.Fprint(w, `{"tunnels":[{"name":"laptop","org":"demo","remote_addr":"127.0.0.1:50123","since":"2026-12-04T10:00:00Z","in_flight":2},`+
					`{"name":"laptop","org":"demo","remote_addr":"10.0.0.7:40000","since":"2026-12-04T10:01:00Z","in_flight":0,"relay":"K7QX2M4PAB9Z"}]}`)
			})
		},
	})
	data, _ := json.Marshal(map[string]any{
		"id": "dlv_dead1", "event_id": "evt_01", "endpoint": "crm", "status": "dead", "url": "http://127.0.0.1:8081/webhooks",
		"headers": map[string][]string{"content-type": {"application/json"}, "webhook-id": {"evt_01"}},
		"body":    `{"type":"payment"}`, "body_encoding": "utf8",
		"attempts": []map[string]any{
			{"n": 1, "at": "2025-11-25T10:00:00Z", "status": 500, "latency_ms": 12, "error": "", "response": `{"error":"boom"}`},
			{"n": 2, "at": "2025-11-25T10:00:05Z", "status": 0, "latency_ms": 15000, "error": "context deadline exceeded"},
		},
	})
	d.Log.add(web.Item{Kind: web.KindDelivery, ID: "dlv_dead1", Time: time.Now().UTC(), Event: "payment", Method: "POST", Path: "/webhooks", Status: "dead", Data: data})

	do(t, ctx, "open a dead delivery with the keyboard",
		chromedp.Navigate(d.URL+web.UIPath),
		chromedp.WaitVisible(chromedp.CSS(`[data-id="dlv_dead1"]`)),
		chromedp.Focus(chromedp.ID(`list`)),
		chromedp.KeyEvent(kb.ArrowDown),
		chromedp.WaitVisible(chromedp.CSS(`ol.timeline`)),
	)
	timeline := get(t, ctx, "read the timeline", chromedp.Text(chromedp.CSS(`ol.timeline`)))
	for _, part := range []string{"#1", "HTTP 500", "12 ms", "+0 ms", "#2", "no response", "context deadline exceeded", "+5.00 s"} {
		if !strings.Contains(timeline, part) {
			t.Errorf("timeline %q lacks %q", timeline, part)
		}
	}
	// Asked again here: a background tab's timers may be throttled.
	do(t, ctx, "see the connected tunnels",
		chromedp.Evaluate[chromedp.Void](`window.sidehook.showTunnels()`),
		chromedp.WaitVisible(chromedp.CSS(`#tunnels .tunnel`)))
	if strip := get(t, ctx, "read the tunnels", chromedp.Text(chromedp.ID(`tunnels`))); !strings.Contains(strip, "laptop (127.0.0.1:50123, 2 in flight)") ||
		!strings.Contains(strip, "laptop (10.0.0.7:40000, 0 in flight, on relay K7QX2M4PAB9Z)") {
		t.Errorf("tunnels strip %q, want the connected clients with their address and in-flight count, and the relay holding one", strip)
	}
	if row := get(t, ctx, "read the row", chromedp.Text(chromedp.CSS(`[data-id="dlv_dead1"]`))); !strings.Contains(row, "crm · 2 attempts") || !strings.Contains(row, "15.0 s") {
		t.Errorf("row %q lacks the endpoint, attempt count and last attempt's duration", row)
	}
	screenshot(t, ctx, "relay-detail")

	do(t, ctx, "retry", chromedp.Click(button("Retry")))
	if got := actions.next(t); got.Path != "/_sidehook/deliveries/dlv_dead1/retry" {
		t.Fatalf("retry went to %s, want /_sidehook/deliveries/dlv_dead1/retry", got.Path)
	}
	do(t, ctx, "see the retry's result", chromedp.Poll[chromedp.Void](`document.querySelector('.result').textContent.startsWith('Retry scheduled')`, chromedp.WithPollingTimeout(5*time.Second)))
	if result := js[string](t, ctx, `document.querySelector('.result').firstChild.textContent`); result != "Retry scheduled, pending: attempt #3 is next" {
		t.Errorf("retry result %q, want what happens next and no JSON", result)
	}
	// A delivery due now that waits behind the head of an ordered queue:
	// the answer's reason says so, and so does the page.
	if why := js[string](t, ctx, `(document.querySelector('.result .hint') || {}).textContent || ''`); !strings.Contains(why, "waits behind dlv_head1") {
		t.Errorf("retry result's reason %q, want the answer's: waits behind dlv_head1", why)
	}
	do(t, ctx, "replay", chromedp.SendKeys(chromedp.ID(`replay-to`), "http://127.0.0.1:9/x"), chromedp.Click(button("Replay")))
	got := actions.next(t)
	ids, _ := got.Body["ids"].([]any)
	if got.Path != "/_sidehook/replay" || len(ids) != 1 || ids[0] != "dlv_dead1" || got.Body["to"] != "http://127.0.0.1:9/x" {
		t.Fatalf("replay sent %+v, want dlv_dead1 to http://127.0.0.1:9/x through /_sidehook/replay", got)
	}
	if _, has := got.Body["sign"]; has {
		t.Errorf("relay replay sent sign %v: the relay signs as the endpoint does", got.Body["sign"])
	}
	do(t, ctx, "see the replay's answer", chromedp.WaitVisible(chromedp.CSS(`.result.ok`)))
	if result := get(t, ctx, "read the result", chromedp.Text(chromedp.CSS(`.result`))); !strings.Contains(result, "Target answered HTTP 200 in 12 ms") ||
		!strings.Contains(result, "POST http://127.0.0.1:9/x") || !strings.Contains(result, "sidehook-replay-of dlv_dead1") {
		t.Errorf("result shows %q, want the target's answer, where it went and that it is a replay", result)
	}
	// Without a target, Replay asks the relay to replay to the endpoint's
	// URL (a replay, not a retry): ids only, and the page says where.
	do(t, ctx, "replay to the original target",
		chromedp.Evaluate[chromedp.Void](`document.getElementById('replay-to').value = ''`),
		chromedp.Click(button("Replay")))
	got = actions.next(t)
	if _, has := got.Body["to"]; has || got.Path != "/_sidehook/replay" {
		t.Fatalf("replay sent %+v, want ids and no target", got)
	}
	do(t, ctx, "see where it went", chromedp.Poll[chromedp.Void](`document.querySelector('.result').textContent.includes('http://127.0.0.1:8081/webhooks')`, chromedp.WithPollingTimeout(5*time.Second)))

	// Copy as curl copies the delivery's request, to its endpoint's URL;
	// never a call of the relay's replay.
	do(t, ctx, "copy the delivery as curl", webtest.CopyCurl()...)
	curl := get(t, ctx, "read the curl command", chromedp.Value(chromedp.CSS(`textarea.curl`)))
	if !strings.Contains(curl, "'http://127.0.0.1:8081/webhooks'") || !strings.Contains(curl, `--data-binary '{"type":"payment"}'`) || strings.Contains(curl, "/_sidehook/") {
		t.Errorf("curl command %q, want the delivery's request to its endpoint", curl)
	}

	// A delivery moving on is an update of the same row.
	data2 := strings.Replace(string(data), `"status":"dead"`, `"status":"delivered"`, 1)
	d.Hub.Publish(web.Item{Kind: web.KindDelivery, ID: "dlv_dead1", Time: time.Now().UTC(), Event: "payment", Method: "POST", Path: "/webhooks", Status: "delivered", Data: json.RawMessage(data2)})
	do(t, ctx, "see the update in place", chromedp.WaitVisible(chromedp.CSS(`[data-id="dlv_dead1"] .s-delivered`)))
	rows := js[int](t, ctx, `document.querySelectorAll('#list .row').length`)
	retryHidden := js[bool](t, ctx, `[...document.querySelectorAll('button')].find(b => b.textContent === 'Retry').hidden`)
	if rows != 1 || !retryHidden {
		t.Errorf("got %d rows and retry hidden=%v, want 1 row and no retry for a delivered delivery", rows, retryHidden)
	}

	// A body larger than the page holds: the command reads it from a
	// file, and the page says where to get it.
	big, _ := json.Marshal(map[string]any{"id": "dlv_big1", "event_id": "evt_big", "endpoint": "crm", "status": "delivered",
		"url": "http://127.0.0.1:8081/webhooks", "headers": map[string][]string{"content-type": {"application/json"}},
		"body": `{"type":"pay`, "body_encoding": "utf8", "body_preview": true, "body_size": 100000})
	d.Hub.Publish(web.Item{Kind: web.KindDelivery, ID: "dlv_big1", Time: time.Now().UTC(), Event: "payment", Method: "POST", Path: "/webhooks", Status: "delivered", Data: big})
	do(t, ctx, "open a large delivery",
		chromedp.Click(chromedp.CSS(`[data-id="dlv_big1"]`)),
		chromedp.WaitVisible(chromedp.ID(`replay-to`)))
	do(t, ctx, "copy a large delivery as curl", webtest.CopyCurl()...)
	curl = get(t, ctx, "read the curl command", chromedp.Value(chromedp.CSS(`textarea.curl`)))
	result := get(t, ctx, "read the result", chromedp.Text(chromedp.CSS(`.result`)))
	if !strings.Contains(curl, "--data-binary '@body'") || strings.Contains(curl, `{"type":"pay`) || !strings.Contains(result, "GET /v1/events/evt_big") {
		t.Errorf("curl command %q and result %q, want the body read from a file and where to get it", curl, result)
	}

	// A custom-value request is never replayed: the page offers no Replay.
	cv, _ := json.Marshal(map[string]any{"id": "dlv_cv1", "event_id": "evt_cv", "endpoint": "values", "status": "delivered",
		"url": "http://127.0.0.1:8081/values?fields=fullname", "headers": map[string][]string{}})
	d.Hub.Publish(web.Item{Kind: web.KindDelivery, ID: "dlv_cv1", Time: time.Now().UTC(), Event: "custom_value_request", Method: "GET", Path: "/values", Status: "delivered", Data: cv})
	do(t, ctx, "open a custom-value request",
		chromedp.Click(chromedp.CSS(`[data-id="dlv_cv1"]`)),
		chromedp.Poll[chromedp.Void](`document.querySelector('.detail-head .target').textContent.includes('/values')`, chromedp.WithPollingTimeout(5*time.Second)))
	if hidden := js[bool](t, ctx, `[...document.querySelectorAll('button')].find(b => b.textContent === 'Replay').hidden`); !hidden {
		t.Errorf("a custom-value request offers Replay, which the relay always refuses")
	}
}

// TestBrowserFormat checks the page's pure helpers where they run.
func TestBrowserFormat(t *testing.T) {
	ctx := newBrowser(t)
	d := startDashboard(t, dashOptions{})
	do(t, ctx, "open the dashboard",
		chromedp.Navigate(d.URL+web.UIPath),
		chromedp.WaitVisible(chromedp.CSS(`#conn[data-state="live"]`)),
	)
	res := js[map[string]string](t, ctx, `(async () => {
		const f = await import('/_sidehook/ui/js/format.js');
		return {
			quote: f.shellQuote("it's"),
			curlGet: f.buildCurl({method: 'GET', url: 'http://h/x?a=[1]', headers: {Host: ['h'], 'X-A': "b'c"}}),
			curlBin: f.buildCurl({method: 'POST', url: 'http://h/', body: 'AAEC', bodyEncoding: 'base64'}),
			curlAt: f.buildCurl({method: 'POST', url: 'http://h/', headers: {'content-type': ['text/plain'], 'x-empty': ['']}, body: "@/etc/passwd"}),
			curlBig: (() => { const c = f.buildCurl({method: 'POST', url: 'http://h/', headers: {'content-type': ['text/plain']}, body: 'x'.repeat(200000)}); return c.replace(/x{200000}/, 'X'); })(),
			curlCR: f.buildCurl({method: 'POST', url: 'http://h/', headers: {'content-type': ['text/plain']}, body: 'a\r\nb'}),
			file: f.buildCurl({method: 'PUT', url: 'http://h/', bodyFile: 'body'}),
			head: f.buildCurl({method: 'HEAD', url: 'http://h/'}),
			target: [f.replayTarget('http://b:9', '/p%2Fq', 'a=[1]'), f.replayTarget('http://b:9/z?k=1', '/p', 'a'), f.replayTarget('http://b:9/?', '/p', 'a'), f.appendQuery('http://b/x?y=1', 'q=2')].join(' '),
			bad: f.decodeJWT('abc').error || '',
			b64: f.bodyView('AAEC', 'base64').note,
			text: f.bodyView('a=1&b=2', 'utf8').kind,
			red: f.redactHeaders({Authorization: ['Basic x y']}, ['authorization'], '[redacted]')[0][1][0],
			isRed: [f.isRedacted('Authorization', 'Bearer x', ['authorization'], '[redacted]'), f.isRedacted('x-tenant', '[redacted]', ['authorization'], '[redacted]'),
				f.isRedacted('x-webio-token', 'eyJh.eyJi.[redacted]', [], '[redacted]'), f.isRedacted('content-type', 'text/plain', ['authorization'], '[redacted]')].join(' '),
			hl: JSON.stringify(f.highlightJSON('{\n  "k": "a\\"1",\n  "n": -1.5e3,\n  "t": [true, null]\n}')),
			hlJoin: f.highlightJSON('{"a":"{\\"b\\":1}"}').map(r => r[1]).join(''),
			dur: [f.formatDuration(12), f.formatDuration(1250), f.formatDuration(125000)].join('|'),
			rel: [f.relativeTime('2025-01-01T00:00:05Z', '2025-01-01T00:00:00Z'), f.relativeTime('x', 'y')].join('|'),
			cls: [200, 302, 401, 0].map(f.statusClass).join(' '),
			dated: String(/^2020-01-0[12] \d\d:\d\d:05\.000$/.test(f.formatTime('2020-01-02T00:00:05Z'))),
			today: String(/^\d\d:\d\d:\d\d\.\d{3}$/.test(f.formatTime(new Date().toISOString()))),
			item: JSON.stringify(f.captureItem({id: 'cap_1', received_at: 't', event: 'e', method: 'POST', path: '/p', verdict: {status: 'valid'}})),
		};
	})()`)
	want := map[string]string{
		"isRed":   "true true true false",
		"quote":   `'it'\''s'`,
		"curlGet": "curl \\\n  --globoff \\\n  'http://h/x?a=[1]' \\\n  -H 'X-A: b'\\''c'",
		"curlBin": "printf %s 'AAEC' | base64 -d | curl \\\n  --globoff \\\n  -X 'POST' \\\n  'http://h/' \\\n  -H 'content-type:' \\\n  --data-binary @-",
		"curlAt":  "printf %s '@/etc/passwd' | curl \\\n  --globoff \\\n  -X 'POST' \\\n  'http://h/' \\\n  -H 'content-type: text/plain' \\\n  -H 'x-empty;' \\\n  --data-binary @-",
		"curlBig": "printf %s 'X' | curl \\\n  --globoff \\\n  -X 'POST' \\\n  'http://h/' \\\n  -H 'content-type: text/plain' \\\n  -H 'expect:' \\\n  --data-binary @-",
		"curlCR":  "printf %s 'YQ0KYg==' | base64 -d | curl \\\n  --globoff \\\n  -X 'POST' \\\n  'http://h/' \\\n  -H 'content-type: text/plain' \\\n  --data-binary @-",
		"file":    "curl \\\n  --globoff \\\n  -X 'PUT' \\\n  'http://h/' \\\n  -H 'content-type:' \\\n  -H 'expect:' \\\n  --data-binary '@body'",
		"head":    "curl \\\n  --globoff \\\n  --head \\\n  'http://h/'",
		"target":  "http://b:9/p%2Fq?a=[1] http://b:9/z?k=1 http://b:9/p?a http://b/x?y=1&q=2",
		"bad":     "not a JWT (want 3 dot-separated parts, got 1)",
		"b64":     "binary, shown as base64 (3 bytes)",
		"text":    "text",
		"red":     "Basic [redacted]",
		"hl":      `[["","{\n  "],["j-key","\"k\""],["",":"],[""," "],["j-str","\"a\\\"1\""],["",",\n  "],["j-key","\"n\""],["",":"],[""," "],["j-num","-1.5e3"],["",",\n  "],["j-key","\"t\""],["",":"],[""," ["],["j-bool","true"],["",", "],["j-null","null"],["","]\n}"]]`,
		"hlJoin":  `{"a":"{\"b\":1}"}`,
		"dur":     "12 ms|1.25 s|2 min 5 s",
		"rel":     "+5.00 s|",
		"cls":     "ok warn bad bad",
		"dated":   "true",
		"today":   "true",
		"item":    `{"kind":"capture","id":"cap_1","time":"t","event":"e","method":"POST","path":"/p","status":"valid","data":{"id":"cap_1","received_at":"t","event":"e","method":"POST","path":"/p","verdict":{"status":"valid"}}}`,
	}
	for k, w := range want {
		if res[k] != w {
			t.Errorf("%s: got %q, want %q", k, res[k], w)
		}
	}
}

// TestBrowserSignIn: beyond loopback the page asks for the token once, then
// the websocket and the page's API calls carry it.
func TestBrowserSignIn(t *testing.T) {
	ctx := newBrowser(t)
	replays := newRecorder()
	d := startDashboard(t, dashOptions{
		Authorize: bearerAuth("s3cret"),
		Routes: func(mux *http.ServeMux) {
			mux.Handle("POST /_sidehook/requests/{id}/replay", replays.handler(`{"id":"cap_2"}`))
		},
	})
	d.Log.add(captureItem("cap_1", time.Now().UTC(), "valid", map[string]any{"event": "payment", "method": "POST", "path": "/webhooks", "body": "{}"}))

	do(t, ctx, "open the page without a token",
		chromedp.Navigate(d.URL+web.UIPath),
		chromedp.WaitVisible(chromedp.ID(`token`)),
	)
	screenshot(t, ctx, "sign-in")
	do(t, ctx, "a wrong token is refused",
		chromedp.SendKeys(chromedp.ID(`token`), "nope"),
		chromedp.Click(button("Sign in")),
		chromedp.WaitVisible(chromedp.Search(`//p[contains(., "was refused")]`)),
	)
	do(t, ctx, "sign in and see live items",
		chromedp.SendKeys(chromedp.ID(`token`), "s3cret"),
		chromedp.Click(button("Sign in")),
		chromedp.WaitVisible(chromedp.CSS(`#conn[data-state="live"]`)),
		chromedp.Click(chromedp.CSS(`[data-id="cap_1"]`)),
		chromedp.Click(button("Replay")),
	)
	if loc := get(t, ctx, "read the address", chromedp.Location()); strings.Contains(loc, "s3cret") {
		t.Errorf("the token stayed in the address bar: %s", loc)
	}
	if got := replays.next(t); got.Auth != "Bearer s3cret" {
		t.Errorf("the replay call carried %q, want the token", got.Auth)
	}
}

// TestBrowserReconnects: when the server goes away the page says so and
// retries; a client that fell behind is told items were skipped.
func TestBrowserReconnects(t *testing.T) {
	ctx := newBrowser(t)
	d := startDashboard(t, dashOptions{})
	var current atomic.Pointer[http.Handler]
	current.Store(&d.Inner)
	mux := http.NewServeMux()
	mux.Handle("/_sidehook/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { (*current.Load()).ServeHTTP(w, r) }))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)

	do(t, ctx, "open the dashboard",
		chromedp.Navigate(srv.URL+web.UIPath),
		chromedp.WaitVisible(chromedp.CSS(`#conn[data-state="live"]`)),
		chromedp.WaitVisible(chromedp.CSS(`.empty-list`)),
	)
	screenshot(t, ctx, "empty")

	// The server restarts: its hub closes (ending the connection) and a new
	// one, too small for a burst, takes over.
	next := startDashboard(t, dashOptions{ClientBuffer: 1})
	current.Store(&next.Inner)
	_ = d.Hub.Close()
	do(t, ctx, "see the page reconnect",
		chromedp.WaitVisible(chromedp.CSS(`#conn[data-state="reconnecting"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#conn[data-state="live"]`)),
	)
	waitFor(t, "the page to subscribe again", func() bool { return next.Hub.Subscribers() == 1 })
	for i := range 2000 {
		next.publish(captureItem(fmt.Sprintf("cap_burst%04d", i), time.Now().UTC(), "valid", map[string]any{
			"event": "payment", "method": "POST", "path": "/burst", "body": strings.Repeat("x", 512),
		}))
	}
	do(t, ctx, "be told about skipped items and hold the newest",
		chromedp.WaitVisible(chromedp.Search(`//div[@id="notice"]//span[contains(., "skipped")]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-id="cap_burst1999"]`)),
	)
	screenshot(t, ctx, "dropped")
}

// A query that was not UTF-8 comes base64 (query_encoding), as a body
// does; the page shows its bytes percent-escaped, not the base64 text.
func TestBrowserRawQuery(t *testing.T) {
	ctx := newBrowser(t)
	d := startDashboard(t, dashOptions{Role: web.RoleReceiver})
	d.Log.add(captureItem("cap_raw", time.Now().UTC(), "valid", map[string]any{
		"event": "unknown", "method": "GET", "path": "/raw", "headers": map[string][]string{},
		"query": base64.StdEncoding.EncodeToString([]byte("name=\xff&x=1")), "query_encoding": "base64",
	}))
	do(t, ctx, "open the dashboard",
		chromedp.Navigate(d.URL+web.UIPath),
		chromedp.WaitVisible(chromedp.CSS(`[data-id="cap_raw"]`)),
	)
	if got := js[string](t, ctx, `document.querySelector('[data-id="cap_raw"] .c-path').textContent`); got != "/raw?name=%FF&x=1" {
		t.Errorf("path cell %q, want /raw?name=%%FF&x=1", got)
	}
}
