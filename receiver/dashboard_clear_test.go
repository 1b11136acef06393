package receiver_test

import (
	"testing"

	"github.com/sidehook/sidehook/receiver"
	"github.com/sidehook/sidehook/web"
	"github.com/sidehook/sidehook/web/webtest"
)

// TestDashboardClearedInOrder: a reset and a delete of every capture each
// send a dashboard one cleared message, saying which it was, after the
// captures committed before it (so none is listed again) and before those
// committed after it. A subscriber to the captures (the wait API's,
// receivertest's) is sent captures only.
func TestDashboardClearedInOrder(t *testing.T) {
	srv := start(t, receiver.Config{})
	sub := srv.Subscribe(t.Context(), 16)
	c := dialDashboard(t, srv, nil)
	if m := webtest.ReadWS(t, c); m.Type != web.MsgSnapshot {
		t.Fatalf("got %+v, want the snapshot first", m)
	}
	waitMetric(t, srv, "sidehook_websocket_clients", "1", nil)

	var sent []string
	for _, tt := range []struct {
		name, method, path, by string
	}{
		{"Reset", "POST", "/_sidehook/reset", web.ClearedByReset},
		{"Delete", "DELETE", "/_sidehook/requests", web.ClearedByDelete},
	} {
		before := sendCapture(t, srv, "/before/"+tt.name)
		if r := send(t, tt.method, srv.URL()+tt.path, nil, nil); r.status/100 != 2 {
			t.Fatalf("%s %s: got %d %s", tt.method, tt.path, r.status, r.body)
		}
		after := sendCapture(t, srv, "/after/"+tt.name)
		sent = append(sent, before, after)

		if m := webtest.ReadWS(t, c); m.Type != web.MsgItem || m.Item == nil || m.Item.ID != before {
			t.Fatalf("%s: got %+v, want the item %s committed before it first", tt.name, m, before)
		}
		if m := webtest.ReadWS(t, c); m.Type != web.MsgCleared || m.By != tt.by || m.Time.IsZero() {
			t.Fatalf("%s: got %+v, want cleared by %q, with its time", tt.name, m, tt.by)
		}
		if m := webtest.ReadWS(t, c); m.Type != web.MsgItem || m.Item == nil || m.Item.ID != after {
			t.Fatalf("%s: got %+v, want the item %s committed after it", tt.name, m, after)
		}
	}

	// Each capture is published before it is answered: all are queued.
	for i, want := range sent {
		if got := <-sub.C(); got.ID != want {
			t.Errorf("subscriber's value %d: got %q, want capture %s", i, got.ID, want)
		}
	}
	if n := len(sub.C()); n != 0 {
		t.Errorf("subscriber holds %d more values, want only the %d captures", n, len(sent))
	}
}
