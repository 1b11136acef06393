package web_test

import (
	"testing"

	"github.com/gorilla/websocket"

	"github.com/sidehook/sidehook/internal/pubsub"
	"github.com/sidehook/sidehook/web"
)

// TestFeedThatLostTellsEveryViewer: when the server's own feed falls behind
// its source and loses values, every browser is told how many and gets a
// fresh snapshot, as a browser that fell behind itself is. The loss is
// made, not waited for: the feed's subscription of one slot is filled
// before the feed starts.
func TestFeedThatLostTellsEveryViewer(t *testing.T) {
	d := startDashboard(t, dashOptions{})
	viewers := []*websocket.Conn{dial(t, d, nil), dial(t, d, nil)}
	for _, c := range viewers {
		readMsg(t, c) // the first snapshot: subscribed from here on
	}

	src := pubsub.New[int](nil)
	sub := src.Subscribe(t.Context(), pubsub.Options{Buffer: 1})
	for i := range 3 {
		d.Log.add(item(i)) // committed, so the snapshot has it
		src.Publish(i)     // the first is queued, the next two lost
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		web.Feed(d.Hub, sub, func(i int) (web.Item, bool) { return item(i), true })
	}()

	for n, c := range viewers {
		if m := readMsg(t, c); m.Type != web.MsgItem || m.Item.ID != item(0).ID {
			t.Fatalf("viewer %d: got %+v, want item %s", n, m, item(0).ID)
		}
		if m := readMsg(t, c); m.Type != web.MsgDropped || m.Count != 2 {
			t.Fatalf("viewer %d: got %+v, want dropped with count 2", n, m)
		}
		m := readMsg(t, c)
		if m.Type != web.MsgSnapshot || len(m.Items) != 3 || m.Items[0].ID != item(2).ID {
			t.Fatalf("viewer %d: got %+v, want a snapshot of the 3 items, newest first", n, m)
		}
	}
	sub.Close()
	<-done
	// The hub lost nothing itself: its metric is for browsers that fall
	// behind, the server counts its feed's losses.
	if v := metricValue(t, d.Reg, "sidehook_dashboard_dropped_messages_total"); v != 0 {
		t.Errorf("got %v dashboard messages dropped, want 0", v)
	}
}

// TestFeedSkips: a value item refuses is not published, and the feed ends
// with its subscription.
func TestFeedSkips(t *testing.T) {
	d := startDashboard(t, dashOptions{})
	c := dial(t, d, nil)
	readMsg(t, c)
	src := pubsub.New[int](nil)
	sub := src.Subscribe(t.Context(), pubsub.Options{Buffer: 4})
	src.Publish(1, 2, 3)
	src.Close()
	web.Feed(d.Hub, sub, func(i int) (web.Item, bool) { return item(i), i != 2 })
	for _, want := range []int{1, 3} {
		if m := readMsg(t, c); m.Type != web.MsgItem || m.Item.ID != item(want).ID {
			t.Fatalf("got %+v, want item %s", m, item(want).ID)
		}
	}
}
