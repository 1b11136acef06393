package tunnel

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	"github.com/rs/zerolog"

	"github.com/sidehook/sidehook/internal/units"
	"github.com/sidehook/sidehook/replay"
)

// serverConn is one tunnel client as the relay sees it. Its reader runs in
// Serve's goroutine, its peer's writer in one of its own.
type serverConn struct {
	*peer
	srv    *Server
	log    zerolog.Logger
	org    string
	name   string
	remote string
	// since and events are set once before the connection is registered
	// and only read after.
	since  time.Time
	events []string
	// maxFrame is the largest frame the client reads: its hello's
	// max_message, or, when it states none, what the ready announced.
	maxFrame int64
	// statedMax says the hello stated max_message.
	statedMax bool

	inFlight atomic.Int64

	mu      sync.Mutex
	pending map[uint64]pendingResult // by Message.ID
}

// pendingResult is a Send waiting for its result.
type pendingResult struct {
	ch         chan *Message
	deliveryID string
}

// serve runs the connection: hello, ready, then results until it ends.
func (c *serverConn) serve(base string, onConnect func(events []string)) {
	c.ws.SetReadLimit(maxResultFrame)
	greeted, ok := c.srv.greet(c.ws)
	if !ok {
		c.ws.Close()
		return
	}
	hello, err := c.readHello()
	greeted()
	if err != nil {
		c.log.Info().Err(err).Msg("tunnel client refused")
		_ = c.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.ClosePolicyViolation, closeReason(err)),
			time.Now().Add(c.writeWait))
		c.ws.Close()
		return
	}
	c.events = hello.Events
	// A client that states no limit reads what ready announces: a frame
	// that holds a body of the relay's limits.max_body, however large.
	announced := maxDeliveryFrame(c.srv.opts.MaxBody)
	c.maxFrame, c.statedMax = cmp.Or(hello.MaxMessage, announced), hello.MaxMessage > 0
	c.since = time.Now()
	ready := &Message{Type: TypeReady, Version: ProtocolVersion, Org: c.org, Name: c.name, Events: c.events, MaxMessage: announced,
		PublicURL: base + "/in/" + c.org, JWKSURL: base + "/.well-known/jwks.json", ClientID: formatID(c.srv.nextID.Add(1))}
	frame, err := Encode(ready)
	if err != nil {
		c.log.Error().Err(err).Msg("tunnel ready message")
		c.ws.Close()
		return
	}
	if hello.Probe {
		// Only the facts of ready: the client is never registered, so no
		// delivery can be sent to a connection about to close.
		c.ws.SetWriteDeadline(time.Now().Add(c.writeWait))
		if err := c.ws.WriteMessage(websocket.TextMessage, frame); err == nil {
			_ = c.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, "probe answered"),
				time.Now().Add(c.writeWait))
		}
		c.ws.Close()
		return
	}
	// The ready frame is queued before the connection is registered, so it
	// is the first frame the client reads; and registered before the
	// writer sends it, so a client that has read ready can be sent to.
	c.out <- outFrame{data: frame}
	added := c.srv.add(c)
	writerDone := make(chan struct{})
	go func() { defer close(writerDone); c.writer() }()
	defer func() { <-writerDone }()
	if !added {
		c.kill(errors.New("relay is shutting down"), websocket.CloseGoingAway)
		return
	}
	c.log.Info().Strs("events", c.events).Msg("tunnel client connected")
	if onConnect != nil {
		// The relay may scan its store here; the reader must keep reading
		// meanwhile so pongs are seen. Close waits for it as for this
		// handler (counted in serving, so the Add cannot race its Wait):
		// the store is closed after the tunnel server.
		c.srv.serving.Add(1)
		go func() {
			defer c.srv.serving.Done()
			onConnect(slices.Clone(c.events))
		}()
	}
	err = c.read()
	c.kill(err, websocket.CloseNormalClosure)
	c.log.Info().AnErr("reason", c.err).Msg("tunnel client gone")
}

func (c *serverConn) readHello() (*Message, error) {
	c.ws.SetReadDeadline(time.Now().Add(c.srv.opts.HelloWait))
	kind, data, err := c.ws.ReadMessage()
	if err != nil {
		return nil, fmt.Errorf("read hello: %w", err)
	}
	if kind != websocket.TextMessage {
		return nil, errors.New("the first message must be a hello text frame")
	}
	m, err := Decode(data)
	if err != nil {
		return nil, err
	}
	if m.Type != TypeHello {
		return nil, fmt.Errorf("the first message must be a hello, not a %s", m.Type)
	}
	return m, nil
}

// read handles the client's frames until the connection fails. A bad frame
// is answered with an error message and the connection carries on.
func (c *serverConn) read() error {
	c.watch()
	var buf bytes.Buffer
	for {
		kind, err := c.readFrame(&buf)
		if err != nil {
			return err
		}
		data := buf.Bytes()
		c.extend()
		if kind != websocket.TextMessage {
			c.tell("binary frames are not part of the tunnel protocol: send JSON text frames")
			continue
		}
		m, err := Decode(data)
		if err != nil {
			c.tell(err.Error())
			continue
		}
		switch m.Type {
		case TypeResult:
			c.deliver(m)
		case TypeError:
			c.log.Warn().Str("error", m.Error).Msg("tunnel client reports an error")
		default:
			c.tell(fmt.Sprintf("unexpected %s message from a tunnel client (send results)", m.Type))
		}
	}
}

// deliver hands a result to the Send waiting for it. A result nobody waits
// for any more (its Send timed out) is dropped, and the client told: it
// has printed the app's answer, while the relay records a timeout and
// retries.
func (c *serverConn) deliver(m *Message) {
	c.mu.Lock()
	id := m.ID
	if id == 0 {
		var ok bool
		if id, ok = c.byDeliveryID(m.DeliveryID); !ok {
			c.mu.Unlock()
			c.tell(fmt.Sprintf("result: delivery_id %q matches no single request in flight: send its id", m.DeliveryID))
			return
		}
	}
	p, ok := c.pending[id]
	delete(c.pending, id)
	c.mu.Unlock()
	if !ok {
		c.log.Debug().Uint64("id", m.ID).Str("delivery", m.DeliveryID).Msg("result for a request no longer waited for")
		c.tell(fmt.Sprintf("result for delivery %q came after the relay stopped waiting (the endpoint's timeout): recorded as no answer, it is retried", m.DeliveryID))
		return
	}
	p.ch <- m
}

// byDeliveryID finds the request of a result that has only SPEC §8's
// delivery_id: it must name exactly one request in flight, since a test
// or a replay may reuse a delivery's id. c.mu is held.
func (c *serverConn) byDeliveryID(deliveryID string) (uint64, bool) {
	var found uint64
	n := 0
	for id, p := range c.pending {
		if p.deliveryID == deliveryID {
			found, n = id, n+1
		}
	}
	return found, n == 1
}

func (c *serverConn) tell(text string) {
	c.log.Debug().Str("error", text).Msg("bad message from tunnel client")
	if frame, err := Encode(&Message{Type: TypeError, Error: text}); err == nil {
		c.trySend(frame)
	}
}

// roundTrip sends one delivery frame and waits for the result with its id
// (or, alone in flight, with its delivery id).
func (c *serverConn) roundTrip(ctx context.Context, id uint64, deliveryID string, frame outFrame) (*Message, error) {
	ch := make(chan *Message, 1)
	c.mu.Lock()
	c.pending[id] = pendingResult{ch: ch, deliveryID: deliveryID}
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		delete(c.pending, id)
		c.mu.Unlock()
	}()
	if err := c.send(ctx, frame); err != nil {
		return nil, fmt.Errorf("client %s: %w", c.remote, err)
	}
	select {
	case m := <-ch:
		return m, nil
	case <-c.done:
		return nil, fmt.Errorf("client %s disconnected before answering: %w", c.remote, c.err)
	case <-ctx.Done():
		c.mu.Lock()
		_, waiting := c.pending[id]
		delete(c.pending, id)
		c.mu.Unlock()
		if !waiting {
			// deliver took the entry as the time ran out: its result is on
			// the way, and the client has printed it as the answer.
			return <-ch, nil
		}
		return nil, fmt.Errorf("no result from client %s in time: %w", c.remote, ctx.Err())
	}
}

// tooBig says why a delivery of a body of body bytes, a frame of frame
// bytes, cannot go to this client, and what changes that.
func (c *serverConn) tooBig(body, frame int) string {
	// An older sidehook tunnel always stated 64 MiB; a current one states
	// none unless told to, and reads what ready announced.
	fix := fmt.Sprintf("its hello's max_message set that; update sidehook tunnel (older ones always state 64 MiB), which then reads what the relay's limits.max_body of %s needs",
		units.FormatSize(c.srv.opts.MaxBody))
	if !c.statedMax {
		fix = fmt.Sprintf("it reads what the relay's limits.max_body of %s allows, and the event came in under a higher one: raise limits.max_body to deliver it",
			units.FormatSize(c.srv.opts.MaxBody))
	}
	return fmt.Sprintf("delivery not sent: its body of %s makes a message of %s (base64 and headers), over the %s this tunnel client reads: %s",
		units.FormatSize(int64(body)), units.FormatSize(int64(frame)), units.FormatSize(c.maxFrame), fix)
}

// notSent tells the client of a delivery that was not sent to it, so its
// line says why the app never saw it. Only the headers its line shows go
// along: the message must fit where the delivery did not.
func (c *serverConn) notSent(m *Message, why string) {
	h := http.Header{}
	for _, k := range []string{hdrEvent, hdrTest, replay.HeaderReplayOf} {
		if v := m.Headers.Get(k); v != "" {
			h.Set(k, v)
		}
	}
	frame, err := Encode(&Message{Type: TypeError, DeliveryID: m.DeliveryID, Attempt: m.Attempt, Method: m.Method, Path: m.Path,
		Headers: h, Error: why})
	if err == nil && int64(len(frame)) <= c.maxFrame {
		c.trySend(frame)
	}
}

// takes reports whether the client's --events filter lets evt through.
func (c *serverConn) takes(evt string) bool { return takesEvent(c.events, evt) }
