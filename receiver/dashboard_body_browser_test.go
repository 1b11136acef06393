package receiver_test

import (
	"bytes"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/sidehook/sidehook/receiver"
	"github.com/sidehook/sidehook/web"
	"github.com/sidehook/sidehook/web/webtest"
)

// TestDashboardBrowserBodyNotKept: a request whose body the receiver did
// not keep (over --max-body, answered 413) says so and how long it was,
// rather than "no body"; the replay form and Copy as curl say a replay
// sends no body unless one is typed.
func TestDashboardBrowserBodyNotKept(t *testing.T) {
	srv := start(t, receiver.Config{MaxBody: 1024})
	if r := send(t, "POST", srv.URL()+"/huge", bytes.Repeat([]byte("a"), 5000), nil); r.status != 413 {
		t.Fatalf("a body over the limit was answered %d, want 413", r.status)
	}
	caps, _ := list(t, srv, "")
	if len(caps) != 1 {
		t.Fatalf("%d captures, want 1", len(caps))
	}
	row := `[data-id="` + caps[0].ID + `"]`
	ctx := browser.NewTab(t)
	webtest.Do(t, ctx, "open the capture",
		chromedp.Navigate(srv.URL()+web.UIPath),
		chromedp.WaitVisible(chromedp.CSS(row)),
		chromedp.Click(chromedp.CSS(row)),
		chromedp.WaitVisible(chromedp.ID(`replay-to`)),
	)
	body := webtest.JS[string](t, ctx, `[...document.querySelectorAll('#detail .block')].find((b) => b.querySelector('h3').textContent === 'Body').textContent`)
	if !strings.Contains(body, "not kept") || !strings.Contains(body, "5,000 bytes") || !strings.Contains(body, "HTTP 413") || strings.Contains(body, "no body") {
		t.Errorf("the body section says %q, want that the 5,000 bytes were not kept and the 413", body)
	}
	if hint := webtest.JS[string](t, ctx, `document.querySelector('.edit-body .hint').textContent`); !strings.Contains(hint, "not kept") {
		t.Errorf("the replay form says %q, want that the body was not kept", hint)
	}
	webtest.Do(t, ctx, "copy it as curl", webtest.CopyCurl()...)
	if res := webtest.Get(t, ctx, "read the result", chromedp.Text(chromedp.CSS(`.result`))); !strings.Contains(res, "not kept by the receiver: the command sends none") {
		t.Errorf("Copy as curl says %q, want that the body was not kept", res)
	}
	// The receiver refuses to replay a body it did not keep as if there
	// were none; the form sends what is typed, here nothing, as it says.
	webtest.Do(t, ctx, "replay it, the body left empty",
		chromedp.Click(webtest.Button("Replay")),
		chromedp.WaitVisible(chromedp.CSS(`.result.ok`)))
	caps, _ = list(t, srv, "")
	if len(caps) != 2 || caps[0].BodySize != 0 || caps[0].BodyTruncated {
		t.Errorf("after the replay: %d captures, the newest %+v, want a second one with an empty body", len(caps), caps[0])
	}
}
