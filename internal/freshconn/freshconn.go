// Package freshconn closes, at shutdown, the connections of an
// http.Server that have not begun a request. http.Server.Shutdown counts
// such a connection as busy for its first five seconds (a client's spare
// keep-alive dial, never used), so a stop would wait for it, or fail a
// shorter grace; having received nothing, it can be closed at once.
package freshconn

import (
	"net"
	"net/http"
	"sync"
)

// Tracker follows a server's connections through its ConnState hook. The
// zero value is ready to use.
type Tracker struct {
	mu    sync.Mutex
	conns map[net.Conn]struct{}
}

// Track is the http.Server ConnState hook.
func (t *Tracker) Track(c net.Conn, st http.ConnState) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if st != http.StateNew {
		delete(t.conns, c)
		return
	}
	if t.conns == nil {
		t.conns = make(map[net.Conn]struct{})
	}
	t.conns[c] = struct{}{}
}

// CloseAll closes the connections that have still sent nothing; call it
// just before http.Server.Shutdown. One whose first request is arriving
// meanwhile is cut before any answer, so its client knows the request was
// not taken.
func (t *Tracker) CloseAll() {
	t.mu.Lock()
	defer t.mu.Unlock()
	for c := range t.conns {
		c.Close()
		delete(t.conns, c)
	}
}
