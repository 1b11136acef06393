package receiver_test

import (
	"context"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/sidehook/sidehook/receiver"
	"github.com/sidehook/sidehook/receiver/memstore"
	"github.com/sidehook/sidehook/web/webtest"
)

// TestDashboardBrowserCutAnswerReplacesRow: a capture listed with the
// answer the receiver began to send is listed, and shown in the detail
// pane, with the error Close recorded once the grace ran out and the
// connection was cut, before the dashboard's websocket closes. Before,
// the page kept the first answer: the rewrite was not published, and the
// dashboards were closed before the connections were cut.
func TestDashboardBrowserCutAnswerReplacesRow(t *testing.T) {
	// An answer far larger than what the sockets buffer: its write waits
	// on a client that reads nothing until the grace is over.
	const size = 32 << 20
	rules := []receiver.Rule{{Respond: receiver.Respond{Status: 200, Body: strings.Repeat("x", size)}}}
	st := memstore.New()
	srv := start(t, receiver.Config{Store: st, Rules: rules, ShutdownGrace: 300 * time.Millisecond})
	ctx := browser.NewTab(t)
	webtest.Do(t, ctx, "open the dashboard",
		chromedp.Navigate(srv.URL()+"/_sidehook/ui/"),
		chromedp.WaitVisible(chromedp.CSS(`#conn[data-state="live"]`)))

	conn, err := net.Dial("tcp", srv.Addr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	if _, err := io.WriteString(conn, "POST /big HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 2\r\n\r\n{}"); err != nil {
		t.Fatal(err)
	}
	waitCount(t, srv, 1)
	id := only(t, srv).ID
	row := `[data-id="` + id + `"]`
	webtest.Do(t, ctx, "see the capture with its answer and open it",
		chromedp.WaitVisible(chromedp.CSS(row)),
		chromedp.Click(chromedp.CSS(row)),
		chromedp.WaitVisible(chromedp.CSS(`section.response`)))

	if err := srv.Close(context.Background()); err != nil {
		t.Fatalf("Close: %v", err)
	}
	stored := onlyIn(t, st)
	if stored.Response.Error == "" {
		t.Fatalf("stored response has no error, want the cut recorded (the test's premise)")
	}
	item := `window.sidehook.store.get('` + id + `')`
	webtest.Do(t, ctx, "see the row and the detail pane say the answer was cut",
		chromedp.Poll[chromedp.Void](item+`.data.response.error
			&& document.querySelector('section.response .resp-bits').textContent.includes('connection cut at shutdown')`,
			chromedp.WithPollingTimeout(10*time.Second)))
	if got := webtest.JS[string](t, ctx, item+`.data.response.error`); got != stored.Response.Error {
		t.Errorf("the page holds the error %q, want the stored %q", got, stored.Response.Error)
	}
}
