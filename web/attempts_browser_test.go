package web_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/sidehook/sidehook/web"
)

// TestBrowserAttemptRequestHeaders: each attempt of a delivery shows the
// headers it sent (its own timestamp, attempt number and tokens, the
// credentials redacted), not only the latest attempt's.
func TestBrowserAttemptRequestHeaders(t *testing.T) {
	ctx := newBrowser(t)
	d := startDashboard(t, dashOptions{Role: web.RoleRelay})
	sent := func(n, ts string) map[string][]string {
		return map[string][]string{"sidehook-attempt": {n}, "webhook-timestamp": {ts}, "x-webio-token": {"eyJhbGciOiJIUzI1NiJ9.e30.sig" + n}}
	}
	data, _ := json.Marshal(map[string]any{
		"id": "dlv_att1", "event_id": "evt_att", "endpoint": "crm", "status": "delivered", "url": "http://127.0.0.1:8081/webhooks",
		"headers": sent("2", "1764064805"), "body": `{}`, "body_encoding": "utf8",
		"attempts": []map[string]any{
			{"n": 1, "at": "2025-11-25T10:00:00Z", "status": 500, "latency_ms": 3, "response": "boom", "request_headers": sent("1", "1764064800")},
			{"n": 2, "at": "2025-11-25T10:00:05Z", "status": 200, "latency_ms": 2, "request_headers": sent("2", "1764064805")},
		},
	})
	d.Log.add(web.Item{Kind: web.KindDelivery, ID: "dlv_att1", Time: time.Now().UTC(), Event: "payment", Method: "POST", Path: "/webhooks", Status: "delivered", Data: data})

	do(t, ctx, "open the delivery",
		chromedp.Navigate(d.URL+web.UIPath),
		chromedp.WaitVisible(chromedp.CSS(`[data-id="dlv_att1"]`)),
		chromedp.Click(chromedp.CSS(`[data-id="dlv_att1"]`)),
		chromedp.WaitVisible(chromedp.CSS(`ol.timeline`)),
	)
	got := js[[]string](t, ctx, `[...document.querySelectorAll('ol.timeline li')].map((li) => {
		const d = li.querySelector('details.att-request');
		if (!d) return '';
		d.open = true;
		return d.textContent;
	})`)
	if len(got) != 2 {
		t.Fatalf("timeline has %d attempts, want 2", len(got))
	}
	for i, want := range [][]string{{"Request headers (3)", "1764064800", "sidehook-attempt1"}, {"Request headers (3)", "1764064805", "sidehook-attempt2"}} {
		for _, w := range want {
			if !strings.Contains(got[i], w) {
				t.Errorf("attempt #%d shows %q, want it to contain %q", i+1, got[i], w)
			}
		}
		if strings.Contains(got[i], "sig") || !strings.Contains(got[i], web.RedactedValue) {
			t.Errorf("attempt #%d shows %q, want its token's signature redacted", i+1, got[i])
		}
	}
}

// TestBrowserAttemptStaysOpen: an attempt's response or request headers,
// opened to read, stay open when the delivery's next attempt arrives.
func TestBrowserAttemptStaysOpen(t *testing.T) {
	ctx := newBrowser(t)
	d := startDashboard(t, dashOptions{Role: web.RoleRelay})
	attempt := func(n int) map[string]any {
		return map[string]any{"n": n, "at": "2025-11-25T10:00:00Z", "status": 500, "latency_ms": 3, "response": "boom",
			"request_headers": map[string][]string{"sidehook-attempt": {fmt.Sprint(n)}}}
	}
	row := func(status string, attempts ...map[string]any) web.Item {
		data, _ := json.Marshal(map[string]any{"id": "dlv_open1", "endpoint": "crm", "status": status, "url": "http://127.0.0.1:8081/webhooks",
			"headers": map[string][]string{}, "body": `{}`, "body_encoding": "utf8", "attempts": attempts})
		return web.Item{Kind: web.KindDelivery, ID: "dlv_open1", Time: time.Now().UTC(), Event: "payment", Method: "POST", Path: "/webhooks", Status: status, Data: data}
	}
	d.Log.add(row("failed", attempt(1)))
	do(t, ctx, "open the first attempt's response and request",
		chromedp.Navigate(d.URL+web.UIPath),
		chromedp.WaitVisible(chromedp.CSS(`[data-id="dlv_open1"]`)),
		chromedp.Click(chromedp.CSS(`[data-id="dlv_open1"]`)),
		chromedp.WaitVisible(chromedp.CSS(`ol.timeline`)),
		chromedp.Click(chromedp.CSS(`ol.timeline li details:not(.att-request) summary`)),
		chromedp.Click(chromedp.CSS(`ol.timeline li details.att-request summary`)),
	)
	d.Hub.Publish(row("failed", attempt(1), attempt(2)))
	do(t, ctx, "see the second attempt arrive",
		chromedp.Poll[chromedp.Void](`document.querySelectorAll('ol.timeline li').length === 2`, chromedp.WithPollingTimeout(10*time.Second)))
	open := js[[]bool](t, ctx, `[...document.querySelectorAll('ol.timeline details')].map((d) => d.open)`)
	if fmt.Sprint(open) != "[true true false false]" {
		t.Errorf("attempts' details open: %v, want the first attempt's two still open and the new one's closed", open)
	}
}
