package receiver_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/sidehook/sidehook/receiver"
	"github.com/sidehook/sidehook/web"
	"github.com/sidehook/sidehook/web/webtest"
)

func wsURL(srv *receiver.Server) string { return webtest.WSURL(srv.URL()) }

func dialDashboard(tb testing.TB, srv *receiver.Server, header http.Header) *websocket.Conn {
	tb.Helper()
	return webtest.DialWS(tb, srv.URL(), header)
}

// metric returns the value of an unlabelled series at /_sidehook/metrics.
func metric(tb testing.TB, srv *receiver.Server, name string, hdr map[string]string) string {
	tb.Helper()
	r := send(tb, "GET", srv.URL()+"/_sidehook/metrics", nil, hdr)
	if r.status != 200 {
		tb.Fatalf("metrics: got %d %s, want 200", r.status, r.body)
	}
	for _, line := range strings.Split(string(r.body), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			return v
		}
	}
	tb.Fatalf("metrics lack %s:\n%s", name, r.body)
	return ""
}

// waitMetric polls a metric until it has the value want.
func waitMetric(tb testing.TB, srv *receiver.Server, name, want string, hdr map[string]string) {
	tb.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		got := metric(tb, srv, name, hdr)
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("%s: got %s, want %s", name, got, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestDashboardSnapshotThenLive(t *testing.T) {
	srv := start(t, receiver.Config{})
	first := send(t, "POST", srv.URL()+"/webhooks?a=1", []byte(`{"type":"payment","amount":"50.00"}`),
		map[string]string{"webhook-id": "evt_1", "x-webio-token": "tok"})
	if first.status != 200 {
		t.Fatalf("capture: got %d %s, want 200", first.status, first.body)
	}
	stored := only(t, srv)

	c := dialDashboard(t, srv, nil)
	snap := webtest.ReadWS(t, c)
	if snap.Type != web.MsgSnapshot || len(snap.Items) != 1 {
		t.Fatalf("got %+v, want a snapshot of 1 item", snap)
	}
	it := snap.Items[0]
	want := web.Item{Kind: web.KindCapture, ID: stored.ID, Event: "payment", Method: "POST", Path: "/webhooks", Status: "unverified"}
	if it.Kind != want.Kind || it.ID != want.ID || it.Event != want.Event || it.Method != want.Method || it.Path != want.Path ||
		it.Status != want.Status || !it.Time.Equal(stored.ReceivedAt) {
		t.Errorf("got item %+v, want %+v at %v", it, want, stored.ReceivedAt)
	}
	// Data is the capture as the admin API returns it.
	api := send(t, "GET", srv.URL()+"/_sidehook/requests/"+stored.ID, nil, nil)
	var fromAPI, fromWS map[string]any
	api.json(t, &fromAPI)
	if err := json.Unmarshal(it.Data, &fromWS); err != nil {
		t.Fatal(err)
	}
	for k, v := range fromAPI {
		if fmt.Sprint(fromWS[k]) != fmt.Sprint(v) {
			t.Errorf("data %s: got %v, want %v as the API has it", k, fromWS[k], v)
		}
	}
	if _, ok := fromWS["body_preview"]; ok {
		t.Errorf("a small body is marked body_preview: %s", it.Data)
	}

	// The browser is subscribed once it has its snapshot; the next capture
	// arrives live.
	waitMetric(t, srv, "sidehook_websocket_clients", "1", nil)
	send(t, "PUT", srv.URL()+"/other", []byte("\xff\xfe"), map[string]string{"sidehook-event": "order.created"})
	live := webtest.ReadWS(t, c)
	if live.Type != web.MsgItem || live.Item == nil {
		t.Fatalf("got %+v, want a live item", live)
	}
	if live.Item.Method != "PUT" || live.Item.Path != "/other" || live.Item.Event != "order.created" || live.Item.ID == stored.ID {
		t.Errorf("got live item %+v, want the PUT to /other", live.Item)
	}
	var data struct {
		Body         string `json:"body"`
		BodyEncoding string `json:"body_encoding"`
	}
	if err := json.Unmarshal(live.Item.Data, &data); err != nil {
		t.Fatal(err)
	}
	if data.Body != "//4=" || data.BodyEncoding != "base64" {
		t.Errorf("binary body: got %q (%s), want base64 //4=", data.Body, data.BodyEncoding)
	}
}

func TestDashboardLargeBodyIsCut(t *testing.T) {
	srv := start(t, receiver.Config{})
	big := bytes.Repeat([]byte("é"), 100_000) // 200,000 bytes of UTF-8
	send(t, "POST", srv.URL()+"/big", big, nil)
	c := dialDashboard(t, srv, nil)
	snap := webtest.ReadWS(t, c)
	if len(snap.Items) != 1 {
		t.Fatalf("got %d items, want 1", len(snap.Items))
	}
	var data struct {
		Body         string `json:"body"`
		BodyEncoding string `json:"body_encoding"`
		BodySize     int    `json:"body_size"`
		BodyPreview  bool   `json:"body_preview"`
	}
	if err := json.Unmarshal(snap.Items[0].Data, &data); err != nil {
		t.Fatal(err)
	}
	if !data.BodyPreview || data.BodySize != len(big) || data.BodyEncoding != "utf8" ||
		len(data.Body) > web.MaxItemBody || !bytes.HasPrefix(big, []byte(data.Body)) || len(data.Body) < web.MaxItemBody-4 {
		t.Errorf("got preview=%v size=%d encoding=%s body of %d bytes, want the first %d bytes of %d",
			data.BodyPreview, data.BodySize, data.BodyEncoding, len(data.Body), web.MaxItemBody, len(big))
	}
	// The API and the store keep it whole.
	if got := only(t, srv); !bytes.Equal(got.Body, big) {
		t.Errorf("stored body has %d bytes, want %d", len(got.Body), len(big))
	}
}

func TestDashboardAccess(t *testing.T) {
	const token = "s3cret-admin-token"
	srv := start(t, receiver.Config{AdminToken: token})
	bearer := map[string]string{"Authorization": "Bearer " + token}
	tests := []struct {
		name string
		path string
		hdr  map[string]string
		want int
	}{
		{"PageNoToken", web.UIPath, nil, http.StatusUnauthorized},
		{"PageWrongToken", web.UIPath, map[string]string{"Authorization": "Bearer nope"}, http.StatusUnauthorized},
		{"PageToken", web.UIPath, bearer, http.StatusOK},
		{"WebsocketNoToken", web.WSPath, nil, http.StatusUnauthorized},
		{"WebsocketWrongQueryToken", web.WSPath + "?token=nope", nil, http.StatusUnauthorized},
		// Authorized, but not a websocket handshake.
		{"WebsocketToken", web.WSPath, bearer, http.StatusUpgradeRequired},
		{"WebsocketQueryToken", web.WSPath + "?token=" + token, nil, http.StatusUpgradeRequired},
		{"AssetsAreOpen", web.UIPath + "app.css", nil, http.StatusOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if r := send(t, "GET", srv.URL()+tt.path, nil, tt.hdr); r.status != tt.want {
				t.Errorf("GET %s: got %d, want %d", tt.path, r.status, tt.want)
			}
		})
	}
	t.Run("WebsocketHandshake", func(t *testing.T) {
		_, resp, err := websocket.DefaultDialer.Dial(wsURL(srv), nil)
		if err == nil || resp == nil || resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("dial without token: got %v (%v), want 401", err, resp)
		}
		c := dialDashboard(t, srv, http.Header{"Authorization": {"Bearer " + token}})
		if m := webtest.ReadWS(t, c); m.Type != web.MsgSnapshot {
			t.Fatalf("got %+v, want a snapshot", m)
		}
		waitMetric(t, srv, "sidehook_websocket_clients", "1", bearer)
		metric(t, srv, "sidehook_dashboard_dropped_messages_total", bearer)
	})
}

// TestDashboardFeedThatLostTellsBrowsers: when the dashboard's feed falls
// behind the capture path and loses captures, the browser is told how many
// and sent a fresh snapshot holding them, and the loss is counted. The loss
// is made, not waited for: a feed whose subscription has one slot starts
// after three captures.
func TestDashboardFeedThatLostTellsBrowsers(t *testing.T) {
	srv := start(t, receiver.Config{})
	c := dialDashboard(t, srv, nil)
	if m := webtest.ReadWS(t, c); m.Type != web.MsgSnapshot {
		t.Fatalf("got %+v, want a snapshot", m)
	}
	sub := srv.Subscribe(t.Context(), 1)
	for i := range 3 {
		if r := send(t, "POST", fmt.Sprintf("%s/lag/%d", srv.URL(), i), []byte(`{"type":"payment"}`), nil); r.status != 200 {
			t.Fatalf("capture %d: got %d %s, want 200", i, r.status, r.body)
		}
	}
	done := receiver.FeedDashboard(srv, sub)
	// The server's own feed shows the captures too, in any order with
	// what this one does; "dropped" and its snapshot come together.
	for {
		m := webtest.ReadWS(t, c)
		if m.Type == web.MsgItem {
			continue
		}
		if m.Type != web.MsgDropped || m.Count != 2 {
			t.Fatalf("got %+v, want dropped with count 2", m)
		}
		break
	}
	if m := webtest.ReadWS(t, c); m.Type != web.MsgSnapshot || len(m.Items) != 3 || m.Items[0].Path != "/lag/2" {
		t.Fatalf("got %+v, want a snapshot of the 3 captures, newest first", m)
	}
	sub.Close()
	<-done
	if got := metric(t, srv, "sidehook_receiver_subscriber_dropped_total", nil); got != "2" {
		t.Errorf("sidehook_receiver_subscriber_dropped_total: got %s, want 2", got)
	}
}

// TestDashboardRedactsOnTheServer: every row a browser gets, live and in
// the snapshot, carries the credentials of the request and of the answer
// redacted as the admin API does, before it leaves the server.
func TestDashboardRedactsOnTheServer(t *testing.T) {
	srv := start(t, receiver.Config{})
	if _, err := srv.SetRules(receiver.Rule{Respond: receiver.Respond{Status: 200, Headers: map[string]string{"set-cookie": "session=hunter2", "x-app": "yes"}}}); err != nil {
		t.Fatal(err)
	}
	live := dialDashboard(t, srv, nil)
	webtest.ReadWS(t, live) // the empty snapshot: subscribed from here on
	tok := webioToken(t, testSecret, testOrg)
	sig := tok[strings.LastIndex(tok, ".")+1:]
	send(t, "POST", srv.URL()+"/x", []byte(`{}`), map[string]string{"x-webio-token": tok, "cookie": "s=1", "webhook-id": "evt_red"})
	m := webtest.ReadWS(t, live)
	if m.Type != web.MsgItem {
		t.Fatalf("got %+v, want the live item", m)
	}
	snap := webtest.ReadWS(t, dialDashboard(t, srv, nil))
	if len(snap.Items) != 1 {
		t.Fatalf("snapshot: got %d items, want 1", len(snap.Items))
	}
	for name, it := range map[string]web.Item{"live": *m.Item, "snapshot": snap.Items[0]} {
		var d struct {
			Headers  map[string][]string `json:"headers"`
			Response struct {
				Headers map[string][]string `json:"headers"`
			} `json:"response"`
		}
		if err := json.Unmarshal(it.Data, &d); err != nil {
			t.Fatal(err)
		}
		if s := string(it.Data); strings.Contains(s, sig) || strings.Contains(s, "s=1") || strings.Contains(s, "hunter2") {
			t.Errorf("%s: a credential reaches the browser: %s", name, s)
		}
		if got := d.Headers["webhook-id"]; len(got) != 1 || got[0] != "evt_red" {
			t.Errorf("%s: webhook-id: got %v, want evt_red", name, got)
		}
		if got := d.Response.Headers["x-app"]; len(got) != 1 || got[0] != "yes" {
			t.Errorf("%s: answer's x-app: got %v, want yes", name, got)
		}
	}
}

// TestDashboardStalledClientNeverSlowsCapture: a browser that connects and
// then never reads while thousands of requests are captured costs the
// capture path nothing: every capture succeeds and is stored, the hub drops
// for that browser instead, and Close does not wait out its write timeout.
func TestDashboardStalledClientNeverSlowsCapture(t *testing.T) {
	const (
		n       = 3000
		workers = 32
	)
	srv := start(t, receiver.Config{})
	// A client that never reads, with a small receive buffer so the
	// server's writes to it block early (a stalled browser tab).
	dialer := websocket.Dialer{NetDialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		conn, err := (&net.Dialer{}).DialContext(ctx, network, addr)
		if tc, ok := conn.(*net.TCPConn); ok {
			_ = tc.SetReadBuffer(4 << 10)
		}
		return conn, err
	}}
	c, _, err := dialer.DialContext(t.Context(), wsURL(srv), nil)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer c.Close()
	waitMetric(t, srv, "sidehook_websocket_clients", "1", nil)

	body := []byte(`{"type":"payment","pad":"` + strings.Repeat("x", 1<<10) + `"}`)
	var failed atomic.Int64
	var wg sync.WaitGroup
	next := make(chan int)
	began := time.Now()
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range next {
				resp, err := http.Post(srv.URL()+"/stall", "application/json", bytes.NewReader(body))
				if err != nil {
					failed.Add(1)
					continue
				}
				resp.Body.Close()
				if resp.StatusCode != 200 {
					failed.Add(1)
				}
			}
		}()
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	took := time.Since(began)
	t.Logf("%d captures with a stalled dashboard client took %s (%.0f/s)", n, took, n/took.Seconds())

	if f := failed.Load(); f != 0 {
		t.Fatalf("%d of %d captures failed", f, n)
	}
	// Generous: only a capture path blocked on the browser misses it.
	if took > 90*time.Second {
		t.Fatalf("capturing %d requests took %s: the capture path waited on the stalled client", n, took)
	}
	count := send(t, "GET", srv.URL()+"/_sidehook/requests/count", nil, nil)
	var got struct{ Count int }
	count.json(t, &got)
	if got.Count != n {
		t.Fatalf("store holds %d captures, want %d", got.Count, n)
	}
	if d := metric(t, srv, "sidehook_dashboard_dropped_messages_total", nil); d == "0" {
		t.Errorf("no dashboard message was dropped: the client was not stalled (the test proves nothing)")
	} else {
		t.Logf("dropped for the stalled client: %s", d)
	}

	closing := time.Now()
	if err := srv.Close(t.Context()); err != nil {
		t.Fatalf("Close: %v", err)
	}
	// The hub's write timeout is 10s; Close cuts the stalled websocket
	// after a second instead of waiting it out.
	if d := time.Since(closing); d > 8*time.Second {
		t.Errorf("Close took %s with a stalled dashboard client, want at most 8s", d)
	}
}

// TestDashboardMountedIsLive: a Handler mounted on another server (no
// Start) feeds its dashboard live, as a started one does; it sent the
// snapshot and then nothing.
func TestDashboardMountedIsLive(t *testing.T) {
	hs := mount(t)

	c := webtest.DialWS(t, hs.URL, nil)
	if snap := webtest.ReadWS(t, c); snap.Type != web.MsgSnapshot || len(snap.Items) != 0 {
		t.Fatalf("got %+v, want an empty snapshot", snap)
	}
	// Subscribed before its snapshot was read: the capture comes live.
	send(t, "POST", hs.URL+"/live", []byte(`{}`), nil)
	if live := webtest.ReadWS(t, c); live.Type != web.MsgItem || live.Item == nil || live.Item.Path != "/live" {
		t.Fatalf("got %+v, want the POST to /live live", live)
	}
}
