package web_test

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/sidehook/sidehook/web"
)

// TestWebsocketBrowserMessages: the websocket only speaks. What a client
// sends is ignored, whatever it is; a message over the read limit ends
// that connection (a close 1009, message too big, if the client reads it
// before the reset) and the dashboard goes on serving.
func TestWebsocketBrowserMessages(t *testing.T) {
	d := startDashboard(t, dashOptions{})
	tests := []struct {
		name    string
		kind    int
		msg     []byte
		wantEnd bool
	}{
		{"Oversized", websocket.TextMessage, bytes.Repeat([]byte("x"), 5<<10), true},
		{"Text", websocket.TextMessage, []byte(`{"type":"subscribe","filter":"<script>"}`), false},
		{"NotJSON", websocket.TextMessage, []byte("\x00\xffgarbage"), false},
		{"Binary", websocket.BinaryMessage, []byte{0, 1, 2}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := dial(t, d, nil)
			if m := readMsg(t, c); m.Type != web.MsgSnapshot {
				t.Fatalf("got %s first, want a snapshot", m.Type)
			}
			waitFor(t, "the subscription", func() bool { return d.Hub.Subscribers() == 1 })
			err := c.WriteMessage(tt.kind, tt.msg)
			if tt.wantEnd {
				if err == nil {
					_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
					_, _, err = c.ReadMessage()
				}
				var ce *websocket.CloseError
				if err == nil || (errors.As(err, &ce) && ce.Code != websocket.CloseMessageTooBig) {
					t.Fatalf("after the message got %v, want the connection ended (close %d)", err, websocket.CloseMessageTooBig)
				}
				waitFor(t, "the subscription to end", func() bool { return d.Hub.Subscribers() == 0 })
				return
			}
			if err != nil {
				t.Fatalf("write: %v", err)
			}
			d.publish(item(1))
			if m := readMsg(t, c); m.Type != web.MsgItem || m.Item == nil || m.Item.ID != item(1).ID {
				t.Fatalf("got %+v, want the item published after the message", m)
			}
			c.Close()
			waitFor(t, "the subscription to end", func() bool { return d.Hub.Subscribers() == 0 })
		})
	}
}
