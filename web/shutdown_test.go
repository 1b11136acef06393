package web_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/sidehook/sidehook/web"
)

func TestHubShutdown(t *testing.T) {
	t.Run("OK", func(t *testing.T) {
		d := startDashboard(t, dashOptions{})
		c := dial(t, d, nil)
		readMsg(t, c)
		waitFor(t, "the subscription", func() bool { return d.Hub.Subscribers() == 1 })
		// The client reads: it gets its goodbye and Shutdown has nothing
		// to cut.
		errc := make(chan error, 1)
		go func() {
			_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
			_, _, err := c.ReadMessage()
			errc <- err
		}()
		if err := d.Hub.Shutdown(t.Context()); err != nil {
			t.Fatalf("Shutdown: %v", err)
		}
		if err := <-errc; !websocket.IsCloseError(err, websocket.CloseGoingAway) {
			t.Errorf("client got %v, want a going-away close", err)
		}
		if err := d.Hub.Shutdown(t.Context()); err != nil {
			t.Errorf("second Shutdown: %v", err)
		}
	})
	t.Run("CutsStalledClient", func(t *testing.T) {
		d := startDashboard(t, dashOptions{ClientBuffer: 4})
		dialStalled(t, d) // never read
		waitFor(t, "the subscription", func() bool { return d.Hub.Subscribers() == 1 })
		// Published until the writer is stuck in a write (the socket
		// buffers full; it waits there for the hub's write timeout, 10s):
		// from then on its queue of 4 stays full and every item published
		// is dropped, though each is given a moment to be taken.
		pad := strings.Repeat("x", 64<<10)
		dropped := func() float64 { return metricValue(t, d.Reg, "sidehook_dashboard_dropped_messages_total") }
		for i, run := 0, 0; run < 50; i++ {
			if i == 5000 {
				t.Fatal("the writer never blocked: it took some of every 50 items published")
			}
			before := dropped()
			d.publish(web.Item{Kind: web.KindCapture, ID: fmt.Sprintf("cap_%d", i), Data: []byte(`"` + pad + `"`)})
			time.Sleep(time.Millisecond)
			if dropped() == before+1 {
				run++
			} else {
				run = 0
			}
		}
		ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
		defer cancel()
		start := time.Now()
		err := d.Hub.Shutdown(ctx)
		took := time.Since(start)
		if err == nil || !strings.Contains(err.Error(), "1 websocket connections cut") {
			t.Errorf("Shutdown: got %v, want one connection cut", err)
		}
		if took > 5*time.Second {
			t.Errorf("Shutdown took %s, want about the 200ms given", took)
		}
		// A connection arriving afterwards is not served.
		c2, _, err := websocket.DefaultDialer.DialContext(t.Context(), d.wsURL(), nil)
		if err == nil {
			defer c2.Close()
			_ = c2.SetReadDeadline(time.Now().Add(5 * time.Second))
			for {
				if _, _, err := c2.ReadMessage(); err != nil {
					break
				}
			}
		}
	})
}
