package receiver_test

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/sidehook/sidehook/receiver"
	"github.com/sidehook/sidehook/web"
	"github.com/sidehook/sidehook/web/webtest"
)

// TestDashboardBrowserReplay is the dashboard end to end, in headless
// chromium: a request to receiver A appears on A's dashboard without a
// reload; replayed from the page to receiver B (typed into "Target URL"),
// it reaches B with the same body bytes, marked as a replay of A's capture.
// Without chromium it is skipped, except under CI=true where it fails.
func TestDashboardBrowserReplay(t *testing.T) {
	ctx := webtest.NewTab(t)
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
		t.Fatalf("capture on A: got %d %s", sent.status, sent.body)
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
	if res := webtest.Get(t, ctx, "read the result", chromedp.Text(chromedp.CSS(`.result`))); !strings.Contains(res, "Replay sent: HTTP 200") {
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
