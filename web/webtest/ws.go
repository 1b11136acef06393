package webtest

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/sidehook/sidehook/web"
)

// Message is any server message of the dashboard's websocket protocol
// (snapshot, item, dropped, error, cleared).
type Message struct {
	Type  string     `json:"type"`
	Items []web.Item `json:"items"`
	Item  *web.Item  `json:"item"`
	Count int        `json:"count"`
	Error string     `json:"error"`
	Time  time.Time  `json:"time"` // cleared
	By    string     `json:"by"`   // cleared
}

// WSURL is the dashboard websocket's URL on a server at base (http://…).
func WSURL(base string) string {
	return "ws" + strings.TrimPrefix(base, "http") + web.WSPath
}

// DialWS opens the dashboard websocket of the server at base, closed at
// cleanup; a failed dial fails the test with the HTTP status.
func DialWS(tb testing.TB, base string, header http.Header) *websocket.Conn {
	tb.Helper()
	u := WSURL(base)
	c, resp, err := websocket.DefaultDialer.DialContext(tb.Context(), u, header)
	if err != nil {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		tb.Fatalf("dial %s: %v (HTTP %d)", u, err, status)
	}
	tb.Cleanup(func() { _ = c.Close() })
	return c
}

// ReadWS reads one message, failing the test after 10 s.
func ReadWS(tb testing.TB, c *websocket.Conn) Message {
	tb.Helper()
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, b, err := c.ReadMessage()
	if err != nil {
		tb.Fatalf("read websocket: %v", err)
	}
	var m Message
	if err := json.Unmarshal(b, &m); err != nil {
		tb.Fatalf("decode %q: %v", b, err)
	}
	return m
}
