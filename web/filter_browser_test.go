package web_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/sidehook/sidehook/web"
)

// TestBrowserFilterSearchesOlderInSteps: a filter matching nothing loaded
// searches older pages, a bounded number at a time, then asks before going
// further back (a relay holds millions); Search older goes on.
func TestBrowserFilterSearchesOlderInSteps(t *testing.T) {
	ctx := newBrowser(t)
	var pages atomic.Int32
	d := startDashboard(t, dashOptions{
		Role: web.RoleRelay,
		Routes: func(mux *http.ServeMux) {
			// Endless history, none of it matching the filter.
			mux.HandleFunc("GET /_sidehook/deliveries", func(w http.ResponseWriter, r *http.Request) {
				before, err := time.Parse(time.RFC3339Nano, r.URL.Query().Get("before"))
				limit, _ := strconv.Atoi(r.URL.Query().Get("limit"))
				if err != nil || limit < 1 {
					http.Error(w, `{"error":"invalid_query"}`, http.StatusBadRequest)
					return
				}
				n := pages.Add(1)
				items := make([]web.Item, limit)
				for i := range items {
					items[i] = deliveryRow(fmt.Sprintf("dlv_p%d_%d", n, i), before.Add(-time.Duration(i+1)*time.Millisecond))
				}
				w.Header().Set("Content-Type", "application/json")
				_ = json.NewEncoder(w).Encode(map[string]any{"items": items, "more": true})
			})
		},
	})
	now := time.Now().UTC()
	for i := range web.SnapshotSize {
		d.Log.add(deliveryRow(fmt.Sprintf("dlv_s%d", i), now.Add(-time.Duration(web.SnapshotSize-i)*time.Second)))
	}

	do(t, ctx, "open the dashboard",
		chromedp.Navigate(d.URL+web.UIPath),
		chromedp.Poll[chromedp.Void](fmt.Sprintf(`window.sidehook.store.size === %d`, web.SnapshotSize), chromedp.WithPollingTimeout(10*time.Second)),
	)
	if got := pages.Load(); got != 0 {
		t.Fatalf("the page loaded %d older pages unfiltered and unscrolled, want 0", got)
	}
	do(t, ctx, "filter on what nothing matches",
		chromedp.SendKeys(chromedp.ID(`f-text`), "no-such-thing"),
		chromedp.WaitVisible(chromedp.ID(`search-older`)),
	)
	if got := pages.Load(); got != 10 {
		t.Errorf("the page searched %d older pages before asking, want 10", got)
	}
	if empty := js[string](t, ctx, `document.getElementById('list-empty').textContent`); empty != "Nothing matches these filters in the newest 1,200 deliveries." {
		t.Errorf("the empty list says %q, want how far back it searched", empty)
	}
	do(t, ctx, "search further back",
		chromedp.Click(chromedp.ID(`search-older`)),
		chromedp.Poll[chromedp.Void](`window.sidehook.store.size === 2200 && document.getElementById('search-older') !== null`, chromedp.WithPollingTimeout(15*time.Second)),
	)
	if got := pages.Load(); got != 20 {
		t.Errorf("after Search older the page has searched %d pages, want 20", got)
	}
}

// deliveryRow is a delivered delivery's row.
func deliveryRow(id string, at time.Time) web.Item {
	data, _ := json.Marshal(map[string]any{"id": id, "endpoint": "crm", "status": "delivered", "attempts": []any{}})
	return web.Item{Kind: web.KindDelivery, ID: id, Time: at, Event: "payment", Method: "POST", Path: "/webhooks", Status: "delivered", Data: data}
}

// TestBrowserEventFilterOffersBuiltins: the event filter offers the five
// built-in types before any item of theirs is loaded (a filter searches
// older items too), and the custom ones the items carry.
func TestBrowserEventFilterOffersBuiltins(t *testing.T) {
	ctx := newBrowser(t)
	d := startDashboard(t, dashOptions{})
	d.Log.add(captureItem("cap_1", time.Now().UTC(), "valid", map[string]any{"event": "order.created", "method": "POST", "path": "/orders"}))
	do(t, ctx, "open the dashboard",
		chromedp.Navigate(d.URL+web.UIPath),
		chromedp.WaitVisible(chromedp.CSS(`[data-id="cap_1"]`)),
	)
	got := js[[]string](t, ctx, `[...document.getElementById('f-event').options].map((o) => o.value)`)
	want := []string{"", "custom_value_request", "delivery_report", "inbound_message", "message_send", "order.created", "payment"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("event filter offers %q, want %q", got, want)
	}
}

// TestBrowserSearchHeaders: the search finds a request by a header's
// value (the relay's sidehook-delivery id, to go from a delivery to what
// the receiver got) or name.
func TestBrowserSearchHeaders(t *testing.T) {
	ctx := newBrowser(t)
	d := startDashboard(t, dashOptions{})
	d.Log.add(captureItem("cap_hit", time.Now().UTC(), "valid", map[string]any{"event": "payment", "method": "POST", "path": "/hook",
		"headers": map[string][]string{"sidehook-delivery": {"dlv_01KAXQ3G0W"}, "x-team": {"billing"}}}))
	d.Log.add(captureItem("cap_miss", time.Now().UTC(), "valid", map[string]any{"event": "payment", "method": "POST", "path": "/hook",
		"headers": map[string][]string{"sidehook-delivery": {"dlv_01OTHER"}}}))
	do(t, ctx, "open the dashboard",
		chromedp.Navigate(d.URL+web.UIPath),
		chromedp.Poll[chromedp.Void](`document.querySelectorAll('#list .row').length === 2`, chromedp.WithPollingTimeout(10*time.Second)),
	)
	for _, q := range []string{"dlv_01KAXQ3G0W", "x-team"} {
		do(t, ctx, "search for "+q,
			chromedp.Evaluate[chromedp.Void](`document.getElementById('f-text').value = ''`),
			chromedp.SendKeys(chromedp.ID(`f-text`), q),
			chromedp.Poll[chromedp.Void](`document.querySelectorAll('#list .row').length === 1`, chromedp.WithPollingTimeout(10*time.Second)),
		)
		if id := js[string](t, ctx, `document.querySelector('#list .row').dataset.id`); id != "cap_hit" {
			t.Errorf("searching %q shows %s, want cap_hit", q, id)
		}
	}
}

// TestBrowserOlderRetry: a page of older items that failed to load (the
// server restarting) can be asked for again, without reloading the page.
func TestBrowserOlderRetry(t *testing.T) {
	ctx := newBrowser(t)
	var calls atomic.Int32
	d := startDashboard(t, dashOptions{
		Role: web.RoleRelay,
		Routes: func(mux *http.ServeMux) {
			mux.HandleFunc("GET /_sidehook/deliveries", func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				if calls.Add(1) == 1 {
					w.WriteHeader(http.StatusServiceUnavailable)
					fmt.Fprint(w, `{"error":"unavailable","reason":"relay: not serving"}`)
					return
				}
				_ = json.NewEncoder(w).Encode(map[string]any{"items": []web.Item{deliveryRow("dlv_older", time.Now().Add(-time.Hour))}, "more": false})
			})
		},
	})
	now := time.Now().UTC()
	for i := range web.SnapshotSize {
		d.Log.add(deliveryRow(fmt.Sprintf("dlv_s%d", i), now.Add(-time.Duration(web.SnapshotSize-i)*time.Second)))
	}
	do(t, ctx, "scroll to the end and fail to load older deliveries",
		chromedp.Navigate(d.URL+web.UIPath),
		chromedp.Poll[chromedp.Void](fmt.Sprintf(`window.sidehook.store.size === %d`, web.SnapshotSize), chromedp.WithPollingTimeout(10*time.Second)),
		chromedp.Evaluate[chromedp.Void](`document.getElementById('list').scrollTop = 1e9`),
		chromedp.WaitVisible(chromedp.ID(`load-older-again`)),
	)
	if msg := js[string](t, ctx, `document.getElementById('list-more').textContent`); !strings.Contains(msg, "relay: not serving") {
		t.Errorf("the list says %q, want the server's reason", msg)
	}
	do(t, ctx, "try again",
		chromedp.Click(chromedp.ID(`load-older-again`)),
		chromedp.Poll[chromedp.Void](`window.sidehook.store.get('dlv_older') !== undefined && document.getElementById('list-more').textContent === 'All deliveries loaded.'`,
			chromedp.WithPollingTimeout(10*time.Second)),
	)
}
