package tunnel

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// peer is one end of a tunnel websocket, on either side: a writer goroutine
// that alone writes to and closes the socket (gorilla allows one writer),
// pings on a timer, and a read deadline pushed on by every frame and pong,
// so a peer that stops reading is cut after pongWait.
type peer struct {
	ws           *websocket.Conn
	pingInterval time.Duration
	pongWait     time.Duration
	writeWait    time.Duration

	out  chan outFrame // frames for the writer
	done chan struct{} // closed by kill

	killOnce sync.Once
	err      error // why the connection ended; set before done is closed
	code     int   // the close code the writer sends
	onKill   func()
}

func newPeer(ws *websocket.Conn, ping, pong, write time.Duration) *peer {
	return &peer{ws: ws, pingInterval: ping, pongWait: pong, writeWait: write,
		out: make(chan outFrame, sendQueue), done: make(chan struct{})}
}

// outFrame is one frame for the writer: data, or, when body is set, the
// JSON of a message whose body was left out, the body written after its
// fields as base64 straight into the socket. A delivery's frame is never
// held whole: for a 10 MiB body it was 13 MiB, plus the encoder's buffers,
// for each delivery in flight.
type outFrame struct {
	data []byte
	body []byte
}

// bodyFrame is the frame of m with its body streamed.
func bodyFrame(m *Message) (outFrame, error) {
	body := m.Body
	head := *m
	head.Body = nil
	data, err := Encode(&head)
	if err != nil || len(body) == 0 {
		return outFrame{data: data}, err
	}
	return outFrame{data: data, body: body}, nil
}

// bodyKey goes between a message's other fields and its base64 body.
const bodyKey = `,"body":"`

// size is the frame's length on the wire.
func (f outFrame) size() int {
	if f.body == nil {
		return len(f.data)
	}
	return len(f.data) - 1 + len(bodyKey) + base64.StdEncoding.EncodedLen(len(f.body)) + len(`"}`)
}

// write sends f as one text message.
func (f outFrame) write(ws *websocket.Conn) error {
	if f.body == nil {
		return ws.WriteMessage(websocket.TextMessage, f.data)
	}
	w, err := ws.NextWriter(websocket.TextMessage)
	if err != nil {
		return err
	}
	return errors.Join(f.stream(w), w.Close())
}

// stream writes a frame with a body to w.
func (f outFrame) stream(w io.Writer) error {
	// data is a JSON object: the body goes before its closing brace.
	_, err := w.Write(f.data[:len(f.data)-1])
	if err == nil {
		_, err = io.WriteString(w, bodyKey)
	}
	if err == nil {
		enc := base64.NewEncoder(base64.StdEncoding, w)
		if _, err = enc.Write(f.body); err == nil {
			err = enc.Close()
		}
	}
	if err == nil {
		_, err = io.WriteString(w, `"}`)
	}
	return err
}

// extend pushes the read deadline on; the pong handler and every frame
// read call it.
func (p *peer) extend() { p.ws.SetReadDeadline(time.Now().Add(p.pongWait)) }

// watch arms the read deadline and the pong handler; call it before the
// first read of the main loop.
func (p *peer) watch() {
	p.extend()
	p.ws.SetPongHandler(func(string) error { p.extend(); return nil })
	p.ws.SetPingHandler(func(data string) error {
		p.extend()
		err := p.ws.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(p.writeWait))
		if err != nil && !errors.Is(err, websocket.ErrCloseSent) {
			return err
		}
		return nil
	})
}

// readFrame reads the next data frame into buf, which the caller reuses
// from frame to frame: gorilla's ReadMessage would grow a fresh slice for
// each (Decode copies what it keeps).
func (p *peer) readFrame(buf *bytes.Buffer) (kind int, err error) {
	kind, r, err := p.ws.NextReader()
	if err != nil {
		return 0, err
	}
	buf.Reset()
	_, err = buf.ReadFrom(r)
	return kind, err
}

// send queues frame for the writer, waiting at most for ctx.
func (p *peer) send(ctx context.Context, frame outFrame) error {
	// A dead peer's queue may have room: a frame put there is never
	// written, and its sender must hear so.
	select {
	case <-p.done:
		return p.gone()
	default:
	}
	select {
	case p.out <- frame:
		return nil
	case <-p.done:
		return p.gone()
	case <-ctx.Done():
		return fmt.Errorf("websocket too busy: %w", ctx.Err())
	}
}

// trySend queues frame unless the writer is backed up: for advice (error
// messages) that is never worth blocking the reader.
func (p *peer) trySend(frame []byte) {
	select {
	case p.out <- outFrame{data: frame}:
	default:
	}
}

func (p *peer) gone() error { return fmt.Errorf("connection lost: %w", p.err) }

// writer sends queued frames and pings, each under a write deadline, until
// the connection is killed; then it says goodbye and closes the socket.
func (p *peer) writer() {
	ping := time.NewTicker(p.pingInterval)
	defer ping.Stop()
	for {
		select {
		case frame := <-p.out:
			p.ws.SetWriteDeadline(time.Now().Add(p.writeWait))
			if err := frame.write(p.ws); err != nil {
				p.kill(fmt.Errorf("write: %w", err), websocket.CloseAbnormalClosure)
			}
		case <-ping.C:
			if err := p.ws.WriteControl(websocket.PingMessage, nil, time.Now().Add(p.writeWait)); err != nil {
				p.kill(fmt.Errorf("ping: %w", err), websocket.CloseAbnormalClosure)
			}
		case <-p.done:
			if p.code != websocket.CloseAbnormalClosure {
				// A short deadline: a peer that stopped reading must not
				// hold the close.
				_ = p.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(p.code, closeReason(p.err)),
					time.Now().Add(time.Second))
			}
			p.ws.Close()
			return
		}
	}
}

// kill ends the connection once: onKill runs, then everything waiting on
// done is released and the writer closes the socket.
func (p *peer) kill(err error, code int) {
	p.killOnce.Do(func() {
		if err == nil {
			err = errors.New("connection closed")
		}
		p.err, p.code = err, code
		if p.onKill != nil {
			p.onKill()
		}
		close(p.done)
	})
}

// closeReason fits err into a close frame (at most 123 bytes of reason).
func closeReason(err error) string {
	s := err.Error()
	if len(s) > 120 {
		s = s[:120]
	}
	return s
}
