package receiver_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/sidehook/sidehook/receiver"
	"github.com/sidehook/sidehook/web"
	"github.com/sidehook/sidehook/web/webtest"
)

// TestDashboardBrowserFilterFindsOlder: a filter searches older captures
// too, not only the snapshot's newest 200: typing the path of a request
// sent before a few hundred others finds it.
func TestDashboardBrowserFilterFindsOlder(t *testing.T) {
	srv := start(t, receiver.Config{})
	send(t, "POST", srv.URL()+"/needle", []byte(`{}`), nil)
	total := 2*web.SnapshotSize + 50
	for i := range total {
		send(t, "POST", fmt.Sprintf("%s/n/%d", srv.URL(), i), []byte(`{}`), nil)
	}
	ctx := browser.NewTab(t)
	webtest.Do(t, ctx, "open the dashboard",
		chromedp.Navigate(srv.URL()+web.UIPath),
		chromedp.WaitVisible(chromedp.CSS(`#conn[data-state="live"]`)),
		chromedp.Poll[chromedp.Void](fmt.Sprintf(`window.sidehook.store.size === %d`, web.SnapshotSize), chromedp.WithPollingTimeout(10*time.Second)),
	)
	webtest.DoWithin(t, ctx, "search for the oldest request", 30*time.Second,
		chromedp.SendKeys(chromedp.ID(`f-text`), "needle"),
		chromedp.Poll[chromedp.Void](`[...document.querySelectorAll('#list .row')].some((r) => r.textContent.includes('/needle'))`,
			chromedp.WithPollingTimeout(25*time.Second)),
	)
	if counts := webtest.JS[string](t, ctx, `document.getElementById('counts').textContent`); counts != fmt.Sprintf("1 of %d shown", total+1) {
		t.Errorf("counts say %q, want 1 of %d shown", counts, total+1)
	}
}
