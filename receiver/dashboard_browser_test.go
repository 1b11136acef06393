package receiver_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/sidehook/sidehook/internal/auth"
	"github.com/sidehook/sidehook/receiver"
	"github.com/sidehook/sidehook/web"
	"github.com/sidehook/sidehook/web/webtest"
)

// browser is one chromium for this package's browser tests; TestMain
// stops it.
var browser webtest.Shared

// TestMain also fails the run if a test leaves a goroutine behind.
func TestMain(m *testing.M) { browser.VerifyTestMain(m) }

// TestDashboardBrowserReplay is the dashboard end to end, in headless
// chromium: a request to receiver A appears on A's dashboard without a
// reload; replayed from the page to receiver B (typed into "Target URL"),
// it reaches B with the same body bytes, marked as a replay of A's capture.
// Without chromium it is skipped, except under CI=true where it fails.
func TestDashboardBrowserReplay(t *testing.T) {
	ctx := browser.NewTab(t)
	a := start(t, receiver.Config{})
	b := start(t, receiver.Config{})

	webtest.Do(t, ctx, "open A's dashboard",
		chromedp.Navigate(a.URL()+web.UIPath),
		chromedp.WaitVisible(chromedp.CSS(`#conn[data-state="live"]`)),
	)
	// Bytes a re-serialising replay would change: key order, spacing,
	// escapes, non-ASCII.
	body := []byte("{\"type\":\"payment\",  \"amount\":\"50.00\",\"note\":\"it's \\\"quoted\\\" \\u00e9 ✓\"}\n")
	sent := send(t, "POST", a.URL()+"/webhooks?src=e2e", body, map[string]string{
		"content-type": "application/json", "webhook-id": "evt_e2e_1",
	})
	var ans struct{ ID string }
	sent.json(t, &ans)
	if sent.status != 200 || !strings.HasPrefix(ans.ID, "cap_") {
		t.Fatalf("capture on A: got %d %s, want 200 with a cap_ id", sent.status, sent.body)
	}
	row := `[data-id="` + ans.ID + `"]`
	webtest.Do(t, ctx, "see the request appear without reload and open it",
		chromedp.WaitVisible(chromedp.CSS(row)),
		chromedp.Click(chromedp.CSS(row)),
		chromedp.WaitVisible(chromedp.ID(`replay-to`)),
	)
	if label := webtest.JS[string](t, ctx, `document.querySelector('label[for="replay-to"]').textContent`); label != "Target URL" {
		t.Fatalf("the target field is labelled %q, want %q", label, "Target URL")
	}
	webtest.Screenshot(t, ctx, "receiver-e2e-detail")
	webtest.Do(t, ctx, "replay to B",
		chromedp.SendKeys(chromedp.ID(`replay-to`), b.URL()),
		chromedp.Click(webtest.Button("Replay")),
		// "Replaying…" until the server answers.
		chromedp.Poll[chromedp.Void](`document.querySelector('.result').textContent.includes('HTTP')`, chromedp.WithPollingTimeout(10*time.Second)),
	)
	if res := webtest.Get(t, ctx, "read the result", chromedp.Text(chromedp.CSS(`.result`))); !strings.Contains(res, "Target answered HTTP 200") {
		t.Errorf("the page says %q, want the replay's HTTP 200", res)
	}

	caps, _ := list(t, b, "")
	if len(caps) != 1 {
		t.Fatalf("B holds %d captures, want the 1 replay", len(caps))
	}
	got := caps[0]
	if !bytes.Equal(got.Body, body) {
		t.Errorf("B got body %q, want the bytes A captured %q", got.Body, body)
	}
	if of := got.Headers["sidehook-replay-of"]; len(of) != 1 || of[0] != ans.ID {
		t.Errorf("B got sidehook-replay-of %q, want %q", of, ans.ID)
	}
	if got.WebhookID != "evt_e2e_1" || got.Path != "/webhooks" || got.Query != "src=e2e" || got.Method != "POST" {
		t.Errorf("B got %s %s?%s webhook-id %q, want POST /webhooks?src=e2e webhook-id evt_e2e_1", got.Method, got.Path, got.Query, got.WebhookID)
	}
	webtest.Screenshot(t, ctx, "receiver-e2e-replayed")
}

// openCapture opens srv's dashboard in a tab of width x 800 and the
// capture id in its detail pane.
func openCapture(t *testing.T, width int64, srv *receiver.Server, id string) context.Context {
	t.Helper()
	ctx := browser.NewTab(t)
	row := `[data-id="` + id + `"]`
	webtest.Do(t, ctx, "open the dashboard and the capture",
		chromedp.EmulateViewport(width, 800),
		chromedp.Navigate(srv.URL()+web.UIPath),
		chromedp.WaitVisible(chromedp.CSS(`#conn[data-state="live"]`)),
		chromedp.WaitVisible(chromedp.CSS(row)),
		chromedp.Click(chromedp.CSS(row)),
		chromedp.WaitVisible(chromedp.ID(`replay-to`)),
	)
	return ctx
}

// replayFromPage presses Replay (to the typed target, if any) and returns
// the result box's class and text once the server answered.
func replayFromPage(t *testing.T, ctx context.Context, to string) (class, text string) {
	t.Helper()
	steps := []chromedp.Action[chromedp.Void]{chromedp.Evaluate[chromedp.Void](`document.getElementById('replay-to').value = ''`)}
	if to != "" {
		steps = append(steps, chromedp.SendKeys(chromedp.ID(`replay-to`), to))
	}
	steps = append(steps, chromedp.Click(webtest.Button("Replay")),
		chromedp.Poll[chromedp.Void](`/HTTP \d+/.test(document.querySelector('.result').textContent)`, chromedp.WithPollingTimeout(10*time.Second)))
	webtest.Do(t, ctx, "replay from the page", steps...)
	return webtest.JS[string](t, ctx, `document.querySelector('.result').className`),
		webtest.JS[string](t, ctx, `document.querySelector('.result').textContent`)
}

// TestDashboardBrowserSignedReplay: the Replay button re-signs the
// request with the receiver's keys, so a replay to the receiver itself
// verifies (a fresh jti, a valid verdict), and the page shows the
// target's real answer: green for its 200, red for another receiver's
// 401, never "sent" for a refusal.
func TestDashboardBrowserSignedReplay(t *testing.T) {
	srv := start(t, receiver.Config{Verify: auth.VerifyConfig{JWTSecret: []byte(testSecret)}})
	other := start(t, receiver.Config{Verify: auth.VerifyConfig{JWTSecret: []byte(strings.Repeat("x", 32))}})
	body := []byte(`{"type":"payment","amount":"50.00"}`)
	send(t, "POST", srv.URL()+"/hooks", body, map[string]string{
		"authorization": "Bearer " + jwtToken(t, testSecret, body, time.Now()), "webhook-id": "evt_b1", "content-type": "application/json",
	})
	orig := only(t, srv)
	ctx := openCapture(t, 1280, srv, orig.ID)

	class, text := replayFromPage(t, ctx, "")
	if !strings.Contains(class, "ok") || !strings.Contains(text, "Target answered HTTP 200") || !strings.Contains(text, "signed: jwt") {
		t.Errorf("replay to itself shows %q (%s), want a green HTTP 200, signed: jwt", text, class)
	}
	caps, _ := list(t, srv, "limit=1")
	if c := caps[0]; c.ID == orig.ID || c.Verdict.Status != auth.StatusValid || c.Verdict.Claims["jti"] == orig.Verdict.Claims["jti"] {
		t.Errorf("the replay was captured as %s %+v, want a new valid capture with a fresh jti", c.ID, c.Verdict)
	}
	webtest.Do(t, ctx, "see the replay marked in the list",
		chromedp.WaitVisible(chromedp.CSS(`[data-id="`+caps[0].ID+`"] .mark.replayed`)))
	if title := webtest.JS[string](t, ctx, `document.querySelector('[data-id="`+caps[0].ID+`"] .mark.replayed').title`); title != "replay of "+orig.ID {
		t.Errorf("replay mark says %q, want replay of %s", title, orig.ID)
	}
	webtest.Screenshot(t, ctx, "receiver-replay-signed")

	class, text = replayFromPage(t, ctx, other.URL())
	if !strings.Contains(class, "bad") || !strings.Contains(text, "Target answered HTTP 401") || !strings.Contains(text, "invalid_token") {
		t.Errorf("replay to a receiver with another secret shows %q (%s), want a red HTTP 401 with its answer", text, class)
	}
	webtest.Screenshot(t, ctx, "receiver-replay-401")

	webtest.Do(t, ctx, "select another row and back",
		chromedp.Click(chromedp.CSS(`[data-id="`+caps[0].ID+`"]`)),
		chromedp.Click(chromedp.CSS(`[data-id="`+orig.ID+`"]`)),
	)
	if got := webtest.JS[string](t, ctx, `document.querySelector('.result').textContent`); got != "" {
		t.Errorf("the result box still shows %q after a new selection", got)
	}
}

// TestDashboardBrowserSignChoice: a receiver without the key for a scheme
// the original carried refuses to re-sign it, and the page says what to do;
// unticking the scheme under "Sign with" replays without it.
func TestDashboardBrowserSignChoice(t *testing.T) {
	srv := start(t, receiver.Config{})
	body := []byte(`{"type":"payment","amount":"50.00"}`)
	send(t, "POST", srv.URL()+"/hooks", body, map[string]string{
		"x-webio-token": jwtToken(t, testSecret, body, time.Now()), "webhook-id": "evt_s1", "content-type": "application/json",
	})
	orig := only(t, srv)
	ctx := openCapture(t, 1280, srv, orig.ID)
	ticked := webtest.JS[[]string](t, ctx, `[...document.querySelectorAll('input[name="sign"]:checked')].map(b => b.value)`)
	if len(ticked) != 1 || ticked[0] != "webio-token" {
		t.Fatalf("ticked %v, want webio-token, the scheme the original carried", ticked)
	}

	class, text := replayFromPage(t, ctx, "")
	if !strings.Contains(class, "bad") || !strings.Contains(text, "cannot_sign") || !strings.Contains(text, "--webio-secret") || !strings.Contains(text, "Untick it") {
		t.Errorf("replay without the webio secret shows %q (%s), want a red refusal naming the flag and saying to untick the scheme", text, class)
	}
	if caps, _ := list(t, srv, ""); len(caps) != 1 {
		t.Fatalf("the receiver holds %d captures after a refused replay, want 1", len(caps))
	}
	webtest.Screenshot(t, ctx, "receiver-replay-cannot-sign")

	webtest.Do(t, ctx, "untick webio-token", chromedp.Click(chromedp.ID(`sign-webio-token`)))
	class, text = replayFromPage(t, ctx, "")
	if !strings.Contains(class, "ok") || !strings.Contains(text, "Target answered HTTP 200") || !strings.Contains(text, "sent unsigned") {
		t.Errorf("unsigned replay shows %q (%s), want a green HTTP 200, sent unsigned", text, class)
	}
	caps, _ := list(t, srv, "limit=1")
	if c := caps[0]; c.ID == orig.ID || len(c.Headers["x-webio-token"]) != 0 || fmt.Sprint(c.Headers["sidehook-replay-of"]) != "["+orig.ID+"]" {
		t.Errorf("the replay was captured as %s with headers %v, want a replay of %s without a token", c.ID, c.Headers, orig.ID)
	}
}

// TestDashboardBrowserCopyCurl: Copy as curl copies the request itself;
// run with bash, it sends the same method, path, query and body bytes
// (a large text body the page holds only the start of, and a binary one)
// to the original URL, once.
func TestDashboardBrowserCopyCurl(t *testing.T) {
	needTools(t, "bash", "curl", "base64")
	srv := start(t, receiver.Config{})
	big := []byte(strings.Repeat("it's \"q\" $(id) `id` %s \\ ✓\r\n", 5000))
	bin := []byte{0, 1, 0xff, '\'', '\n', 0x80}
	for _, c := range []struct {
		path string
		body []byte
	}{{"/brk?items[]=1&x={a,b}", big}, {"/bin", bin}} {
		send(t, "POST", srv.URL()+c.path, c.body, map[string]string{"content-type": "application/octet-stream", "x-webio-token": "a.b.c"})
		orig := only(t, srv)
		ctx := openCapture(t, 1280, srv, orig.ID)
		webtest.Do(t, ctx, "copy as curl", webtest.CopyCurl()...)
		cmd := webtest.Get(t, ctx, "read the command", chromedp.Value(chromedp.CSS(`textarea.curl`)))
		if !strings.Contains(cmd, "-H 'x-webio-token: [redacted]'") {
			t.Errorf("%s: the command lacks the redacted token header:\n%.300s", c.path, cmd)
		}
		script := filepath.Join(t.TempDir(), "curl.sh")
		if err := os.WriteFile(script, []byte(cmd+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		if out, err := exec.Command("bash", script).CombinedOutput(); err != nil {
			t.Fatalf("%s: bash: %v\n%.2000s", c.path, err, out)
		}
		caps, _ := list(t, srv, "limit=2")
		if len(caps) != 2 {
			t.Fatalf("%s: the receiver holds %d captures, want the original and the one curl sent", c.path, len(caps))
		}
		got := caps[0]
		if got.Method != "POST" || got.Path != orig.Path || got.Query != orig.Query || !bytes.Equal(got.Body, c.body) {
			t.Errorf("curl sent %s %s?%s with %d bytes, want POST %s?%s with the %d bytes captured", got.Method, got.Path, got.Query, len(got.Body), orig.Path, orig.Query, len(c.body))
		}
		send(t, "DELETE", srv.URL()+"/_sidehook/requests", nil, nil)
	}
}

// TestDashboardBrowserResponsePane: the detail pane shows what the
// receiver answered (status, rule, time, headers, body), and holds at
// 700 px wide without scrolling sideways.
func TestDashboardBrowserResponsePane(t *testing.T) {
	srv := rulesServer(t, `[{"id":"teapot","match":{"path":"/tea"},"respond":{"status":418,"headers":{"x-rule":"yes","content-type":"application/json"},"body":"{\"short\":true,\"n\":1}","delay":"20ms"}}]`)
	send(t, "POST", srv.URL()+"/tea/with/a/rather/long/path/that/could/push/the/layout/sideways/if/it/were/not/cut?and=a&long=query", []byte(`{"type":"x"}`), nil)
	send(t, "POST", srv.URL()+"/tea", []byte(`{"type":"x"}`), nil)
	caps, _ := list(t, srv, "path=/tea")
	ctx := openCapture(t, 700, srv, caps[0].ID)
	webtest.Do(t, ctx, "see the response", chromedp.WaitVisible(chromedp.CSS(`section.response`)))
	resp := webtest.Get(t, ctx, "read the response", chromedp.Text(chromedp.CSS(`section.response`)))
	for _, want := range []string{"HTTP 418", "rule teapot", " ms", "x-rule", "yes", `"short": true`} {
		if !strings.Contains(resp, want) {
			t.Errorf("response pane %q lacks %q", resp, want)
		}
	}
	if cls := webtest.JS[string](t, ctx, `document.querySelector('.resp-status').className`); !strings.Contains(cls, "bad") {
		t.Errorf("a 418 is coloured %q, want bad", cls)
	}
	if n := webtest.JS[int](t, ctx, `document.querySelectorAll('section.response .j-key').length`); n != 2 {
		t.Errorf("response body has %d coloured keys, want 2", n)
	}
	webtest.Do(t, ctx, "show the body raw", chromedp.Click(chromedp.CSS(`section.response button.toggle`)))
	if raw := webtest.JS[string](t, ctx, `document.querySelector('pre.resp-body').textContent`); raw != `{"short":true,"n":1}` {
		t.Errorf("raw response body %q, want the bytes sent", raw)
	}
	wide := webtest.JS[[]string](t, ctx, `(() => {
		const out = [];
		if (document.documentElement.scrollWidth > window.innerWidth) out.push('page ' + document.documentElement.scrollWidth);
		for (const el of document.querySelectorAll('.topbar, .filters, .list-pane, .list, .detail-pane, .actions, .block')) {
			if (el.scrollWidth > el.clientWidth + 1) out.push(el.className + ' ' + el.scrollWidth + '>' + el.clientWidth);
		}
		return out;
	})()`)
	if len(wide) > 0 {
		t.Errorf("at 700 px these scroll sideways: %v", wide)
	}
	webtest.Screenshot(t, ctx, "receiver-700px")
}

// TestDashboardBrowserCrossSite: a page on another loopback origin, open
// in the developer's browser, cannot wipe the captures, install a rule or
// open the dashboard's feed; its requests do reach the receiver (a capture
// path takes them), so the refusals are the guard's.
func TestDashboardBrowserCrossSite(t *testing.T) {
	srv := start(t, receiver.Config{})
	send(t, "POST", srv.URL()+"/keep", []byte(`{}`), nil)
	target := strings.Replace(srv.URL(), "127.0.0.1", "localhost", 1)
	page := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprintf(w, `<!doctype html><form id="f" method="POST" action="%[1]s/_sidehook/rules" enctype="text/plain" target="sink"><input name='{"respond":{"status":500},"match":{"path":"/zz' value='"}}'></form><iframe name="sink" onload="window.sinkLoads = (window.sinkLoads || 0) + 1"></iframe>
<script>
window.attack = (async () => {
  const out = {};
  const ws = new WebSocket('%[2]s/_sidehook/ws');
  out.ws = await new Promise((res) => { ws.onopen = () => res('open'); ws.onerror = () => res('refused'); });
  await fetch('%[1]s/_sidehook/reset', {method: 'POST', mode: 'no-cors', headers: {'Content-Type': 'text/plain'}, body: 'x'});
  await fetch('%[1]s/_sidehook/requests', {method: 'DELETE'}).catch(() => 'blocked by CORS');
  await fetch('%[1]s/after', {method: 'POST', mode: 'no-cors', headers: {'Content-Type': 'text/plain'}, body: 'sent'});
  return out;
})();
</script>`, target, strings.Replace(target, "http://", "ws://", 1))
	}))
	t.Cleanup(page.Close)
	ctx := browser.NewTab(t)
	webtest.Do(t, ctx, "open the other site's page", chromedp.Navigate(page.URL), chromedp.WaitReady(chromedp.CSS(`#f`)))
	if ws := webtest.JS[string](t, ctx, `window.attack.then(o => o.ws)`); ws != "refused" {
		t.Errorf("the other site's websocket to the dashboard: %s, want refused", ws)
	}
	loads := webtest.JS[int](t, ctx, `window.sinkLoads || 0`)
	webtest.Do(t, ctx, "submit the form and wait for its answer",
		chromedp.Evaluate[chromedp.Void](`document.getElementById('f').submit()`),
		chromedp.Poll[chromedp.Void](fmt.Sprintf(`(window.sinkLoads || 0) > %d`, loads), chromedp.WithPollingTimeout(10*time.Second)))
	waitCount(t, srv, 2)
	caps, _ := list(t, srv, "")
	paths := []string{}
	for _, c := range caps {
		paths = append(paths, c.Path)
	}
	if strings.Join(paths, " ") != "/after /keep" {
		t.Errorf("captures %v, want /keep kept and the page's /after", paths)
	}
	if rules := string(send(t, "GET", srv.URL()+"/_sidehook/rules", nil, nil).body); strings.Contains(rules, "500") {
		t.Errorf("the other site installed a rule: %s", rules)
	}
	if r := send(t, "POST", srv.URL()+"/zz=", nil, nil); r.status != 200 {
		t.Errorf("a capture is answered %d, want 200: no rule was installed", r.status)
	}
}

// TestDashboardBrowserTools: the list loads older captures when scrolled
// to its end (beyond the snapshot), the rules in force are viewable, the
// exports are links to the export API, and Clear (twice) deletes every
// capture on the server and the page.
func TestDashboardBrowserTools(t *testing.T) {
	srv := rulesServer(t, `[{"id":"slow-crm","match":{"path":"/crm"},"respond":{"status":503}}]`)
	total := web.SnapshotSize + 50
	for i := range total {
		send(t, "POST", fmt.Sprintf("%s/n/%d", srv.URL(), i), []byte(`{}`), nil)
	}
	ctx := browser.NewTab(t)
	webtest.Do(t, ctx, "open the dashboard",
		chromedp.Navigate(srv.URL()+web.UIPath),
		chromedp.WaitVisible(chromedp.CSS(`#conn[data-state="live"]`)),
		chromedp.Poll[chromedp.Void](fmt.Sprintf(`window.sidehook.store.size === %d`, web.SnapshotSize), chromedp.WithPollingTimeout(10*time.Second)),
	)
	webtest.Do(t, ctx, "scroll to the end and get the older captures",
		chromedp.Evaluate[chromedp.Void](`document.getElementById('list').scrollTop = 1e9`),
		chromedp.Poll[chromedp.Void](fmt.Sprintf(`window.sidehook.store.size === %d && document.getElementById('list-more').textContent.includes('All requests loaded')`, total),
			chromedp.WithPollingTimeout(10*time.Second)),
		chromedp.WaitVisible(chromedp.CSS(`.row[data-id]`)),
	)
	if oldest := webtest.JS[string](t, ctx, `window.sidehook.store.oldest().path`); oldest != "/n/0" {
		t.Errorf("oldest item held is %q, want /n/0", oldest)
	}

	webtest.Do(t, ctx, "view the rules", chromedp.Click(webtest.Button("Rules")),
		chromedp.Poll[chromedp.Void](`document.getElementById('rules-text').textContent.includes('slow-crm')`, chromedp.WithPollingTimeout(5*time.Second)))
	rules := webtest.JS[string](t, ctx, `document.getElementById('rules-text').textContent`)
	if !strings.Contains(rules, `"status": 503`) || !strings.Contains(rules, `"/crm"`) {
		t.Errorf("rules dialog shows %q, want status 503 for \"/crm\"", rules)
	}
	webtest.Do(t, ctx, "close the rules", chromedp.Click(webtest.Button("Close")))

	for id, format := range map[string]string{"export-ndjson": "ndjson", "export-har": "har"} {
		href := webtest.JS[string](t, ctx, `document.getElementById('`+id+`').href`)
		r := send(t, "GET", href, nil, nil)
		if r.status != 200 || !strings.Contains(href, "format="+format) || !strings.Contains(string(r.body), "/n/0") {
			t.Errorf("%s links to %s: %d, want the %s export", id, href, r.status, format)
		}
	}

	webtest.Do(t, ctx, "clear: once arms, twice deletes",
		chromedp.Click(webtest.Button("Clear")),
		chromedp.Click(webtest.Button("Click again to delete all")),
		chromedp.Poll[chromedp.Void](`window.sidehook.store.size === 0 && document.querySelectorAll('#list .row').length === 0`, chromedp.WithPollingTimeout(5*time.Second)),
	)
	if caps, _ := list(t, srv, ""); len(caps) != 0 {
		t.Errorf("%d captures on the server after Clear, want 0", len(caps))
	}
}
