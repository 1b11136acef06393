package web_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/sidehook/sidehook/web"
)

func TestWebsocketSnapshotThenLive(t *testing.T) {
	d := startDashboard(t, dashOptions{})
	for i := range 250 {
		d.publish(item(i))
	}
	c := dial(t, d, nil)
	snap := readMsg(t, c)
	if snap.Type != web.MsgSnapshot || len(snap.Items) != web.SnapshotSize {
		t.Fatalf("got %s with %d items, want snapshot with %d", snap.Type, len(snap.Items), web.SnapshotSize)
	}
	if snap.Items[0].ID != item(249).ID {
		t.Fatalf("snapshot starts with %s, want the newest %s", snap.Items[0].ID, item(249).ID)
	}
	waitFor(t, "the subscription", func() bool { return d.Hub.Subscribers() == 1 })

	up := item(300)
	d.publish(up)
	up.Status = "invalid"
	up.Data = json.RawMessage(`{"verdict":{"status":"invalid","reason":"token expired"}}`)
	d.publish(up)
	for _, want := range []string{"valid", "invalid"} {
		m := readMsg(t, c)
		if m.Type != web.MsgItem || m.Item == nil || m.Item.ID != up.ID || m.Item.Status != want {
			t.Fatalf("got %+v, want item %s with status %s", m, up.ID, want)
		}
	}
	if m := metricValue(t, d.Reg, "sidehook_websocket_clients"); m != 1 {
		t.Fatalf("got %v websocket clients, want 1", m)
	}
	c.Close()
	waitFor(t, "the client gauge to drop", func() bool { return metricValue(t, d.Reg, "sidehook_websocket_clients") == 0 })
	waitFor(t, "the subscription to end", func() bool { return d.Hub.Subscribers() == 0 })
}

func TestWebsocketEmptySnapshotIsAList(t *testing.T) {
	d := startDashboard(t, dashOptions{})
	c := dial(t, d, nil)
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, b, err := c.ReadMessage()
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"type":"snapshot","items":[]}`; string(b) != want {
		t.Fatalf("got %s, want %s", b, want)
	}
}

func TestWebsocketRecentFails(t *testing.T) {
	d := startDashboard(t, dashOptions{})
	d.Log.err = errors.New("store: closed")
	c := dial(t, d, nil)
	if m := readMsg(t, c); m.Type != web.MsgError || m.Error == "" || strings.Contains(m.Error, "store") {
		t.Fatalf("got %+v, want an error message that hides the internal cause", m)
	}
	if m := readMsg(t, c); m.Type != web.MsgSnapshot || len(m.Items) != 0 {
		t.Fatalf("got %+v, want an empty snapshot", m)
	}
	waitFor(t, "the subscription", func() bool { return d.Hub.Subscribers() == 1 })
	d.Hub.Publish(item(1))
	if m := readMsg(t, c); m.Type != web.MsgItem {
		t.Fatalf("got %+v, want live items to flow", m)
	}
}

// TestWebsocketInvalidDataCostsOnlyItsRow: Data is sent as the server
// made it, unchecked; were it not JSON (a server's bug), that frame alone
// would be lost to the page, which skips what it cannot parse: the
// connection and the items after it are not.
func TestWebsocketInvalidDataCostsOnlyItsRow(t *testing.T) {
	d := startDashboard(t, dashOptions{})
	c := dial(t, d, nil)
	readMsg(t, c)
	bad := item(1)
	bad.Data = json.RawMessage(`{not json`)
	d.Hub.Publish(bad)
	d.Hub.Publish(item(2))
	if b := readRaw(t, c); json.Valid(b) {
		t.Fatalf("got %s, want the frame as the server made it", b)
	}
	if m := readMsg(t, c); m.Item == nil || m.Item.ID != item(2).ID {
		t.Fatalf("got %+v, want the next item", m)
	}
}

// TestWebsocketUnencodableItemIsLeftOut: an item json.Marshal refuses (a
// time past year 9999) is left out of the snapshot and not published; the
// others are shown.
func TestWebsocketUnencodableItemIsLeftOut(t *testing.T) {
	d := startDashboard(t, dashOptions{})
	bad := item(1)
	bad.Time = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)
	d.Log.add(item(0))
	d.Log.add(bad)
	c := dial(t, d, nil)
	if m := readMsg(t, c); m.Type != web.MsgSnapshot || len(m.Items) != 1 || m.Items[0].ID != item(0).ID {
		t.Fatalf("got %+v, want a snapshot of the one good item", m)
	}
	d.Hub.Publish(bad)
	d.Hub.Publish(item(2))
	if m := readMsg(t, c); m.Item == nil || m.Item.ID != item(2).ID {
		t.Fatalf("got %+v, want the next good item", m)
	}
}

func TestWebsocketHubCloseEndsConnections(t *testing.T) {
	d := startDashboard(t, dashOptions{})
	c := dial(t, d, nil)
	readMsg(t, c)
	waitFor(t, "the subscription", func() bool { return d.Hub.Subscribers() == 1 })
	_ = d.Hub.Close()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, _, err := c.ReadMessage()
	if !websocket.IsCloseError(err, websocket.CloseGoingAway) {
		t.Fatalf("got %v, want a going-away close", err)
	}
	// A new connection to a closed hub is closed right after its snapshot.
	c2 := dial(t, d, nil)
	readMsg(t, c2)
	_ = c2.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, _, err := c2.ReadMessage(); !websocket.IsCloseError(err, websocket.CloseGoingAway) {
		t.Fatalf("got %v, want a going-away close", err)
	}
}

func TestWebsocketRefusals(t *testing.T) {
	d := startDashboard(t, dashOptions{Authorize: bearerAuth("s3cret")})
	noHub := startDashboard(t, dashOptions{NoHub: true})
	tests := []struct {
		name   string
		d      *dashboard
		query  string
		header http.Header
		want   int
		code   string
	}{
		{"NoToken", d, "", nil, http.StatusUnauthorized, "unauthorized"},
		{"WrongToken", d, "?token=nope", nil, http.StatusUnauthorized, "unauthorized"},
		{"WrongHeader", d, "", http.Header{"Authorization": {"Bearer nope"}}, http.StatusUnauthorized, "unauthorized"},
		{"OtherOrigin", d, "?token=s3cret", http.Header{"Origin": {"http://evil.example"}}, http.StatusForbidden, "not_websocket"},
		{"NoHub", noHub, "", nil, http.StatusServiceUnavailable, "unavailable"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, resp, err := websocket.DefaultDialer.Dial(tt.d.wsURL()+tt.query, tt.header)
			if err == nil {
				t.Fatal("got a connection, want a refusal")
			}
			if resp == nil {
				t.Fatalf("got %v, want HTTP %d", err, tt.want)
			}
			b, _ := io.ReadAll(resp.Body) // the dialer keeps the first KiB
			wantJSONError(t, resp, string(b), tt.want, tt.code)
		})
	}
}

func TestWebsocketTokens(t *testing.T) {
	d := startDashboard(t, dashOptions{Authorize: bearerAuth("s3cret")})
	tests := []struct {
		name   string
		query  string
		header http.Header
	}{
		{"Header", "", http.Header{"Authorization": {"Bearer s3cret"}}},
		{"Query", "?token=s3cret", nil},
		{"Cookie", "", http.Header{"Cookie": {"sidehook_receiver_token=s3cret"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, _, err := websocket.DefaultDialer.Dial(d.wsURL()+tt.query, tt.header)
			if err != nil {
				t.Fatalf("dial: %v", err)
			}
			defer c.Close()
			if m := readMsg(t, c); m.Type != web.MsgSnapshot {
				t.Fatalf("got %+v, want a snapshot", m)
			}
		})
	}
}

func TestWebsocketPlainGET(t *testing.T) {
	d := startDashboard(t, dashOptions{Authorize: bearerAuth("s3cret")})
	for _, tc := range []struct {
		token string
		want  int
		code  string
	}{{"", http.StatusUnauthorized, "unauthorized"}, {"s3cret", http.StatusUpgradeRequired, "not_websocket"}} {
		h := http.Header{}
		if tc.token != "" {
			h.Set("Authorization", "Bearer "+tc.token)
		}
		resp, body := httpGet(t, d.URL+web.WSPath, h)
		wantJSONError(t, resp, body, tc.want, tc.code)
		if tc.want == http.StatusUnauthorized && resp.Header.Get("WWW-Authenticate") == "" {
			t.Fatal("401 without WWW-Authenticate")
		}
		if tc.want == http.StatusUpgradeRequired && resp.Header.Get("Upgrade") != "websocket" {
			t.Fatalf("got Upgrade %q, want websocket", resp.Header.Get("Upgrade"))
		}
	}
}

// TestStalledClient: a browser that connects and never reads while thousands
// of items are published must not slow publishing or the other browsers; it
// loses items, and is told so when it reads again.
func TestStalledClient(t *testing.T) {
	const n = 1000
	d := startDashboard(t, dashOptions{ClientBuffer: 64})

	// 1,000 items of 8 KiB are well over what the server's send buffer
	// (4 MiB at most) and this client's hold, so its writer blocks
	// without tens of MiB to push through the race detector.
	stalled := dialStalled(t, d)

	normal := dial(t, d, nil)
	last := fmt.Sprintf("cap_%06d", n-1)
	sawLast := make(chan struct{})
	var normalDropped int
	var mu sync.Mutex
	go func() {
		for {
			_, b, err := normal.ReadMessage()
			if err != nil {
				return
			}
			var m wireMsg
			if json.Unmarshal(b, &m) != nil {
				continue
			}
			mu.Lock()
			normalDropped += m.Count
			mu.Unlock()
			if (m.Item != nil && m.Item.ID == last) || (len(m.Items) > 0 && m.Items[0].ID == last) {
				close(sawLast)
				return
			}
		}
	}()
	waitFor(t, "both subscriptions", func() bool { return d.Hub.Subscribers() == 2 })

	pad := bytes.Repeat([]byte("x"), 8<<10)
	items := make([]web.Item, n)
	for i := range items {
		it := item(i)
		it.Data, _ = json.Marshal(map[string]string{"body": string(pad)})
		items[i] = it
	}
	published := make(chan time.Duration, 1)
	go func() {
		start := time.Now()
		for _, it := range items {
			d.publish(it)
		}
		published <- time.Since(start)
	}()
	// Were Publish to wait on the stalled client it could go on only once
	// that client's write deadline (10 s after its writer blocked, early
	// in the loop) had ended the connection; the stalled client's reads
	// below would then fail. The bound here is only against a hang.
	select {
	case took := <-published:
		t.Logf("published %d items of %d KiB in %v with one stalled client", n, len(pad)>>10, took)
	case <-time.After(time.Minute):
		t.Fatal("publishing blocked behind a client that does not read")
	}

	select {
	case <-sawLast:
	case <-time.After(10 * time.Second):
		t.Fatal("the reading client never saw the newest item")
	}
	dropped := metricValue(t, d.Reg, "sidehook_dashboard_dropped_messages_total")
	if dropped == 0 {
		t.Fatal("nothing dropped although a client never read")
	}
	mu.Lock()
	t.Logf("dropped %v messages in all; the reading client was told of %d", dropped, normalDropped)
	mu.Unlock()

	// The stalled client reads at last: it gets what was queued, then
	// "dropped" and a fresh snapshot; reading on, it reaches the newest
	// item (kernel buffers may have let it catch up once mid-way, so the
	// first resync need not hold it).
	var told int
	for {
		m := readMsg(t, stalled)
		switch {
		case m.Type == web.MsgDropped:
			told += m.Count
		case told > 0 && m.Type == web.MsgSnapshot && len(m.Items) > 0 && m.Items[0].ID == last,
			told > 0 && m.Type == web.MsgItem && m.Item.ID == last:
			t.Logf("stalled client was told %d items were dropped", told)
			return
		}
	}
}

// Each scope holds at most MaxViewers websockets: one more is a 429, a
// viewer leaving makes room, and another scope is not counted against it.
func TestMaxViewersPerScope(t *testing.T) {
	d := startDashboard(t, dashOptions{MaxViewers: 2, Scope: func(r *http.Request) string { return r.Header.Get("X-Org") }})
	org := func(o string) http.Header { return http.Header{"X-Org": {o}} }
	first := dial(t, d, org("acme"))
	dial(t, d, org("acme"))
	waitFor(t, "two viewers", func() bool { return d.Hub.Subscribers() == 2 })

	_, resp, err := websocket.DefaultDialer.DialContext(t.Context(), d.wsURL(), org("acme"))
	if err == nil || resp == nil || resp.StatusCode != http.StatusTooManyRequests {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		t.Fatalf("a third viewer of one scope: %v (HTTP %d), want 429", err, status)
	}
	b, _ := io.ReadAll(resp.Body)
	wantJSONError(t, resp, string(b), http.StatusTooManyRequests, "too_many_viewers")
	dial(t, d, org("other")) // another scope has its own room

	// The room is given back as the first viewer's handler returns, a
	// moment after its connection closes.
	first.Close()
	waitFor(t, "room for a viewer again", func() bool {
		c, _, err := websocket.DefaultDialer.DialContext(t.Context(), d.wsURL(), org("acme"))
		if err != nil {
			return false
		}
		t.Cleanup(func() { _ = c.Close() })
		return true
	})
}
