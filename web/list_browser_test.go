package web_test

import (
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/sidehook/sidehook/web"
)

// TestBrowserReceiverRowShowsAnswer: a receiver's row shows what it
// answered beside the verdict, so a scripted 500 or a fault stands out
// without opening the request; the inspector's rows, whose status is the
// answer already, do not repeat it.
func TestBrowserReceiverRowShowsAnswer(t *testing.T) {
	answers := map[string]map[string]any{
		"cap_ok":    {"status": 200},
		"cap_500":   {"status": 500, "rule": "rule_1"},
		"cap_fault": {"status": 0, "fault": "reset"},
	}
	want := map[string]struct{ text, class, title string }{
		"cap_ok":    {"200", "mark answer ok", "answered HTTP 200"},
		"cap_500":   {"500", "mark answer bad", "answered HTTP 500"},
		"cap_fault": {"no answer", "mark answer bad", "no answer: reset"},
	}
	for _, role := range []string{web.RoleReceiver, web.RoleInspector} {
		t.Run(role, func(t *testing.T) {
			ctx := newBrowser(t)
			d := startDashboard(t, dashOptions{Role: role})
			for id, resp := range answers {
				d.Log.add(captureItem(id, time.Now().UTC(), "valid", map[string]any{"event": "payment", "method": "POST", "path": "/hook", "response": resp}))
			}
			do(t, ctx, "open the dashboard",
				chromedp.Navigate(d.URL+web.UIPath),
				chromedp.Poll[chromedp.Void](`document.querySelectorAll('#list .row').length === 3`, chromedp.WithPollingTimeout(10*time.Second)),
			)
			for id, w := range want {
				got := js[[]string](t, ctx, `(() => { const m = document.querySelector('[data-id="`+id+`"] .mark.answer'); return m ? [m.textContent, m.className, m.title] : []; })()`)
				if role == web.RoleInspector {
					if len(got) != 0 {
						t.Errorf("inspector row %s shows the answer %q again", id, got)
					}
					continue
				}
				if len(got) != 3 || got[0] != w.text || got[1] != w.class || got[2] != w.title {
					t.Errorf("row %s shows answer %q, want %q", id, got, []string{w.text, w.class, w.title})
				}
			}
		})
	}
}
