package tunnel_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/sidehook/sidehook/web"
	"github.com/sidehook/sidehook/web/webtest"
)

// TestInspectorBrowserOlder: the inspector's page shows every record it
// keeps, not only its snapshot: scrolled to the end, it pages back through
// GET /_sidehook/requests by cursor (two pages of the default limit here)
// until the list says there is no more.
func TestInspectorBrowserOlder(t *testing.T) {
	total := web.SnapshotSize + 150
	_, rc := inspectorWith(t, total)
	ctx := webtest.NewTab(t)
	webtest.Do(t, ctx, "open the inspector",
		chromedp.Navigate(rc.InspectorURL()),
		chromedp.WaitVisible(chromedp.CSS(`#conn[data-state="live"]`)),
		chromedp.Poll[chromedp.Void](fmt.Sprintf(`window.sidehook.store.size === %d`, web.SnapshotSize), chromedp.WithPollingTimeout(10*time.Second)),
	)
	// Each page loaded lets the list grow; scroll again until all came.
	webtest.Do(t, ctx, "scroll to the end until every record is shown",
		chromedp.Poll[chromedp.Void](fmt.Sprintf(`(document.getElementById('list').scrollTop = 1e9, true) &&
			window.sidehook.store.size === %d && document.getElementById('list-more').textContent.includes('All requests loaded')`, total),
			chromedp.WithPollingTimeout(10*time.Second)),
	)
	if oldest := webtest.JS[string](t, ctx, `window.sidehook.store.oldest().path`); oldest != "/n/0" {
		t.Errorf("oldest record shown is %q, want /n/0", oldest)
	}
}
