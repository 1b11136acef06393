package web_test

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/sidehook/sidehook/web"
)

// TestBrowserReconnectForgetsWhatIsGone: after a restart of a server that
// kept its captures in memory (or a Clear), the page reconnects and lists
// what the server has, not also what it lost, and the request shown says
// it is gone; a server that could not read its items loses nothing on the
// page.
func TestBrowserReconnectForgetsWhatIsGone(t *testing.T) {
	ctx := newBrowser(t)
	now := time.Now().UTC()
	row := func(id string, age time.Duration) web.Item {
		return captureItem(id, now.Add(-age), "valid", map[string]any{"event": "payment", "method": "POST", "path": "/" + id})
	}
	first := startDashboard(t, dashOptions{})
	for _, id := range []string{"cap_old1", "cap_old2", "cap_kept"} {
		first.Log.add(row(id, time.Minute))
	}
	var current atomic.Pointer[dashboard]
	current.Store(first)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { current.Load().Inner.ServeHTTP(w, r) }))
	t.Cleanup(srv.Close)
	held := func() []string {
		ids := js[[]string](t, ctx, `window.sidehook.store.items.map((it) => it.id)`)
		slices.Sort(ids)
		return ids
	}

	do(t, ctx, "open the dashboard",
		chromedp.Navigate(srv.URL+web.UIPath),
		chromedp.Poll[chromedp.Void](`window.sidehook.store.size === 3`, chromedp.WithPollingTimeout(10*time.Second)),
		chromedp.Click(chromedp.CSS(`[data-id="cap_old1"]`)),
		chromedp.WaitVisible(chromedp.ID(`replay-to`)),
	)
	restart := func(d *dashboard) {
		t.Helper()
		old := current.Swap(d)
		_ = old.Hub.Close()
		do(t, ctx, "see the page reconnect",
			chromedp.WaitVisible(chromedp.CSS(`#conn[data-state="reconnecting"]`)),
			chromedp.WaitVisible(chromedp.CSS(`#conn[data-state="live"]`)),
		)
		waitFor(t, "the page to subscribe again", func() bool { return d.Hub.Subscribers() == 1 })
	}

	// It could not read its items: what the page holds stays.
	failing := startDashboard(t, dashOptions{})
	failing.Log.err = errors.New("store unavailable")
	restart(failing)
	do(t, ctx, "be told the snapshot failed", chromedp.WaitVisible(chromedp.Search(`//div[@id="notice"]//span[contains(., "could not load")]`)))
	if got := held(); fmt.Sprint(got) != "[cap_kept cap_old1 cap_old2]" {
		t.Errorf("after a failed snapshot the page holds %v, want all three it had", got)
	}

	// It restarted with one of them and a new one.
	second := startDashboard(t, dashOptions{})
	second.Log.add(row("cap_kept", time.Minute))
	second.Log.add(row("cap_new", 0))
	restart(second)
	do(t, ctx, "hold what the server has",
		chromedp.Poll[chromedp.Void](`window.sidehook.store.size === 2 && document.querySelectorAll('#list .row').length === 2`, chromedp.WithPollingTimeout(10*time.Second)))
	if got := held(); fmt.Sprint(got) != "[cap_kept cap_new]" {
		t.Errorf("after the restart the page holds %v, want [cap_kept cap_new]", got)
	}
	// The request still shown in the detail pane is gone: it says so.
	if res := js[string](t, ctx, `document.querySelector('.result').textContent`); !strings.Contains(res, "no longer on the server") {
		t.Errorf("the detail of a request the server lost says %q, want that it is no longer there", res)
	}
}
