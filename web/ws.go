package web

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/gorilla/websocket"
	"github.com/rs/zerolog"

	"github.com/sidehook/sidehook/internal/httpjson"
)

// Connection timing, as in gorilla's chat example.
const (
	// writeWait bounds every write, so a stalled browser costs one blocked
	// writer goroutine for at most this long, never the publisher.
	writeWait = 10 * time.Second
	// pongWait is how long a silent browser is trusted.
	pongWait   = 60 * time.Second
	pingPeriod = pongWait * 9 / 10
	// readLimit: the page sends nothing but control frames.
	readLimit = 4 << 10
)

// Message types of the wire protocol (see the package doc).
const (
	MsgSnapshot = "snapshot"
	MsgItem     = "item"
	MsgDropped  = "dropped"
	MsgError    = "error"
	MsgCleared  = "cleared"
)

type droppedMsg struct {
	Type  string `json:"type"`
	Count int    `json:"count"`
}

// clearedMsg says the server deleted every item (Hub.Cleared).
type clearedMsg struct {
	Type string    `json:"type"`
	Time time.Time `json:"time"`
	By   string    `json:"by"`
}

type errorMsg struct {
	Type  string `json:"type"`
	Error string `json:"error"`
}

func (s *server) handleWS() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hub := s.cfg.Hub
		if hub == nil {
			s.writeError(w, r, httpjson.Errorf(http.StatusServiceUnavailable, "unavailable", "the dashboard's live feed is not configured on this server"))
			return
		}
		if !websocket.IsWebSocketUpgrade(r) {
			// The page probes this URL with fetch to tell "needs a token"
			// (401, above) from "server down" after a failed handshake,
			// which browsers do not explain.
			w.Header().Set("Upgrade", "websocket")
			s.writeError(w, r, httpjson.Errorf(http.StatusUpgradeRequired, "not_websocket",
				"GET %s is the dashboard's websocket: connect with a websocket client", WSPath))
			return
		}
		scope := s.scope(r)
		release, ok := hub.viewers.Acquire(scope)
		if !ok {
			s.writeError(w, r, httpjson.Errorf(http.StatusTooManyRequests, "too_many_viewers",
				"too many dashboard viewers: at most %d at once", hub.viewers.Max()))
			return
		}
		defer release()
		conn, err := s.upgrader.Upgrade(w, r, nil)
		if err != nil {
			// Upgrade has answered the client already.
			s.log.Debug().Err(err).Msg("websocket upgrade")
			return
		}
		// Deferred first of what follows the upgrade, so it runs last:
		// Hub.Shutdown waits for this.
		defer hub.track(conn)()
		ctx, cancel := context.WithCancel(WithScope(r.Context(), scope))
		defer cancel()
		// Subscribe before reading the snapshot so nothing published in
		// between is missed (it may come twice; the page upserts by ID).
		sub := hub.Subscribe(ctx)
		defer sub.Close()
		hub.clients.Inc()
		defer hub.clients.Dec()

		c := &wsConn{conn: conn, sub: sub, scope: scope, recent: s.cfg.Recent, log: s.log.With().Str("remote", r.RemoteAddr).Logger()}
		done := make(chan struct{})
		go func() {
			defer close(done)
			c.writePump(ctx)
			// Unblock the reader if the writer ended first (hub closed,
			// write failed).
			conn.Close()
		}()
		c.readPump()
		cancel()
		conn.Close()
		<-done
	})
}

// upgradeError answers a failed websocket handshake (another site's
// Origin, a bad key or version) in the {"error","reason"} shape rather than
// gorilla's plain text.
func (s *server) upgradeError(w http.ResponseWriter, r *http.Request, status int, reason error) {
	// RFC 6455 §4.4: say which version the server speaks.
	w.Header().Set("Sec-WebSocket-Version", "13")
	e := httpjson.Errorf(status, "not_websocket", "GET %s refused the websocket handshake: %s", WSPath, strings.TrimPrefix(reason.Error(), "websocket: "))
	if status >= 500 {
		// A server problem (no hijack), not the client's: logged, not sent.
		e = &httpjson.Error{Status: status, Code: "internal", Reason: "internal error", Err: reason}
	}
	s.writeError(w, r, e)
}

// wsConn is one browser: readPump on the handler's goroutine, writePump on
// its own; only writePump writes data frames.
type wsConn struct {
	conn   *websocket.Conn
	sub    *Subscription
	scope  string // "" or the one organisation this viewer may see
	recent func(context.Context, int) ([]Item, error)
	log    zerolog.Logger
}

func (c *wsConn) readPump() {
	c.conn.SetReadLimit(readLimit)
	_ = c.conn.SetReadDeadline(time.Now().Add(pongWait))
	c.conn.SetPongHandler(func(string) error {
		return c.conn.SetReadDeadline(time.Now().Add(pongWait))
	})
	for {
		if _, _, err := c.conn.ReadMessage(); err != nil {
			if websocket.IsUnexpectedCloseError(err, websocket.CloseGoingAway, websocket.CloseNormalClosure, websocket.CloseNoStatusReceived) &&
				!errors.Is(err, websocket.ErrCloseSent) {
				c.log.Debug().Err(err).Msg("websocket read")
			}
			return
		}
	}
}

func (c *wsConn) writePump(ctx context.Context) {
	ticker := time.NewTicker(pingPeriod)
	defer ticker.Stop()
	if err := c.sendSnapshot(ctx); err != nil {
		c.log.Debug().Err(err).Msg("websocket snapshot")
		return
	}
	for {
		select {
		case it, ok := <-c.sub.C():
			if !ok {
				// Hub closed: the server is stopping.
				_ = c.conn.SetWriteDeadline(time.Now().Add(writeWait))
				_ = c.conn.WriteMessage(websocket.CloseMessage,
					websocket.FormatCloseMessage(websocket.CloseGoingAway, "server stopping"))
				return
			}
			if c.scope != "" && it.Org != c.scope && !it.toAll {
				continue
			}
			if err := c.sendItem(it); err != nil {
				c.log.Debug().Err(err).Msg("websocket write")
				return
			}
			if err := c.catchUp(ctx); err != nil {
				c.log.Debug().Err(err).Msg("websocket write")
				return
			}
		case <-c.sub.Lagged():
			if err := c.catchUp(ctx); err != nil {
				c.log.Debug().Err(err).Msg("websocket write")
				return
			}
		case <-ticker.C:
			if err := c.conn.WriteControl(websocket.PingMessage, nil, time.Now().Add(writeWait)); err != nil {
				return
			}
		case <-ctx.Done():
			return
		}
	}
}

// catchUp tells a browser that has drained its queue how many items it
// missed, then resends the newest items so it holds their latest state.
// While its queue is not empty it is still behind, and the next write
// checks again.
func (c *wsConn) catchUp(ctx context.Context) error {
	if len(c.sub.C()) > 0 {
		return nil
	}
	n := c.sub.TakeDropped()
	if n == 0 {
		return nil
	}
	if err := c.send(droppedMsg{Type: MsgDropped, Count: n}); err != nil {
		return err
	}
	return c.sendSnapshot(ctx)
}

func (c *wsConn) sendSnapshot(ctx context.Context) error {
	var items []Item
	if c.recent != nil {
		got, err := c.recent(ctx, SnapshotSize)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			c.log.Error().Err(err).Msg("read recent items for the dashboard")
			if err := c.send(errorMsg{Type: MsgError, Error: "could not load recent items; showing live items only"}); err != nil {
				return err
			}
		}
		if len(got) > SnapshotSize {
			got = got[:SnapshotSize]
		}
		for _, it := range got {
			if c.scope != "" && it.Org != c.scope {
				continue
			}
			items = append(items, it)
		}
	}
	b := append(make([]byte, 0, 64<<10), `{"type":"`+MsgSnapshot+`","items":[`...)
	first := true
	for _, it := range items {
		next := b
		if !first {
			next = append(next, ',')
		}
		next, err := appendItem(next, it)
		if err != nil {
			c.log.Warn().Err(err).Msg("dashboard item not shown")
			continue
		}
		b, first = next, false
	}
	b = append(b, "]}"...)
	_ = c.conn.SetWriteDeadline(time.Now().Add(writeWait))
	return c.conn.WriteMessage(websocket.TextMessage, b)
}

// sendItem writes the frame Publish (or Cleared) prepared for it: every
// item a subscription carries comes from one of them.
func (c *wsConn) sendItem(it Item) error {
	_ = c.conn.SetWriteDeadline(time.Now().Add(writeWait))
	return c.conn.WritePreparedMessage(it.frame)
}

// send writes a small message (dropped, error).
func (c *wsConn) send(msg any) error {
	b, err := json.Marshal(msg)
	if err != nil {
		return fmt.Errorf("encode %T: %w", msg, err)
	}
	_ = c.conn.SetWriteDeadline(time.Now().Add(writeWait))
	return c.conn.WriteMessage(websocket.TextMessage, b)
}

// appendItemMsg appends it as an item message: {"type":"item","item":…}.
func appendItemMsg(b []byte, it Item) ([]byte, error) {
	b = append(b, `{"type":"`+MsgItem+`","item":`...)
	b, err := appendItem(b, it)
	if err != nil {
		return nil, err
	}
	return append(b, '}'), nil
}

// dataNull ends an Item encoded without its Data, Data being its last
// field.
const dataNull = `"data":null}`

// appendItem appends it as JSON, as json.Marshal writes it but for Data,
// which is copied as it is: neither compacted again nor checked. Servers
// make Data with json.Marshal, so it is JSON; scanning a body of up to
// MaxItemBody again, per item, would cost more than encoding it did. (A
// frame that is not JSON would cost the page that row alone: it skips a
// message it cannot parse.)
func appendItem(b []byte, it Item) ([]byte, error) {
	data := it.Data
	it.Data, it.frame = nil, nil
	head, err := json.Marshal(it)
	if err != nil {
		return nil, fmt.Errorf("encode item %s: %w", it.ID, err)
	}
	if len(data) == 0 {
		return append(b, head...), nil
	}
	if !bytes.HasSuffix(head, []byte(dataNull)) {
		// Data is no longer Item's last field: encode it the slow way.
		it.Data = data
		whole, err := json.Marshal(it)
		if err != nil {
			return nil, fmt.Errorf("encode item %s: %w", it.ID, err)
		}
		return append(b, whole...), nil
	}
	b = append(b, head[:len(head)-len("null}")]...)
	b = append(b, data...)
	return append(b, '}'), nil
}
