package receiver_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/sidehook/sidehook/receiver"
	"github.com/sidehook/sidehook/web/webtest"
)

// TestDashboardBrowserClearReachesEveryTab: a reset or a delete of every
// capture, called by a test suite between its tests and not from the page,
// empties the list and the detail pane of every open tab, which says so;
// the captures that follow are listed live. Before, each tab kept showing
// the deleted captures until it reconnected.
func TestDashboardBrowserClearReachesEveryTab(t *testing.T) {
	srv := start(t, receiver.Config{})
	first := sendCapture(t, srv, "/before")
	tabs := []context.Context{openCapture(t, 1280, srv, first), openCapture(t, 1280, srv, first)}

	for _, tt := range []struct {
		name, method, path, notice string
	}{
		{"Reset", "POST", "/_sidehook/reset", "Cleared by a reset at "},
		{"Delete", "DELETE", "/_sidehook/requests", "Cleared at "},
	} {
		if r := send(t, tt.method, srv.URL()+tt.path, nil, nil); r.status/100 != 2 {
			t.Fatalf("%s: %s %s: got %d %s", tt.name, tt.method, tt.path, r.status, r.body)
		}
		for i, ctx := range tabs {
			webtest.Do(t, ctx, tt.name+": see the tab emptied without a reconnect",
				chromedp.Poll[chromedp.Void](`window.sidehook.store.size === 0
					&& document.querySelectorAll('#list .row').length === 0
					&& !document.getElementById('replay-to')
					&& !document.getElementById('notice').hidden`,
					chromedp.WithPollingTimeout(10*time.Second)))
			notice := webtest.JS[string](t, ctx, `document.getElementById('notice-text').textContent`)
			if !strings.HasPrefix(notice, tt.notice) {
				t.Errorf("%s: tab %d says %q, want %q…", tt.name, i, notice, tt.notice)
			}
			if state := webtest.JS[string](t, ctx, `document.getElementById('conn').dataset.state`); state != "live" {
				t.Errorf("%s: tab %d is %q, want live on the same connection", tt.name, i, state)
			}
		}
		next := sendCapture(t, srv, "/after/"+tt.name)
		for _, ctx := range tabs {
			webtest.Do(t, ctx, tt.name+": see the next capture live",
				chromedp.WaitVisible(chromedp.CSS(`[data-id="`+next+`"]`)),
				chromedp.Poll[chromedp.Void](`window.sidehook.store.size === 1`, chromedp.WithPollingTimeout(10*time.Second)))
		}
	}
}

// sendCapture posts a capture to path and returns its id.
func sendCapture(t *testing.T, srv *receiver.Server, path string) string {
	t.Helper()
	r := send(t, "POST", srv.URL()+path, []byte(`{}`), nil)
	var ans struct{ ID string }
	r.json(t, &ans)
	if r.status != 200 || !strings.HasPrefix(ans.ID, "cap_") {
		t.Fatalf("capture %s: got %d %s, want 200 with a cap_ id", path, r.status, r.body)
	}
	return ans.ID
}
