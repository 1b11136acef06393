package web_test

import (
	"encoding/json"
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
