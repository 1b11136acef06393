package relay

import (
	"sync/atomic"
	"time"
)

// tunnelStartGrace is how long after a start the deliveries that waited
// across it for a tunnel are held back until a client of it connects. A
// client redials a restarted relay within a second, later after a long
// outage (its backoff doubles from 0.5 s): ten seconds covers a restart
// without holding much back when no client comes.
const tunnelStartGrace = 10 * time.Second

// tunnelGrace keeps a restart from using up the retries of a tunnel's
// waiting deliveries: the dispatcher takes them at once, before the
// tunnel's client has had time to reconnect, and each attempt would fail
// for want of it, the last one dead. A delivery made since the start is
// never held: no client has left it waiting.
type tunnelGrace struct {
	tunnels TunnelServer // nil: no tunnels
	started atomic.Int64 // unix ns of the start, 0 before it
}

// start notes when the relay started.
func (g *tunnelGrace) start(now time.Time) { g.started.Store(now.UnixNano()) }

// hold is how long to hold d back, to endpoint url of org, at now: zero
// unless the grace still runs, d waited across the start, and url is a
// tunnel no client of which is connected.
func (g *tunnelGrace) hold(now time.Time, org, url string, d *Delivery) time.Duration {
	s := g.started.Load()
	if g.tunnels == nil || s == 0 {
		return 0
	}
	started := time.Unix(0, s)
	left := started.Add(tunnelStartGrace).Sub(now)
	if left <= 0 || !d.CreatedAt.Before(started) {
		return 0
	}
	name, _, ok := parseTunnelURL(url)
	if !ok {
		return 0
	}
	for _, t := range g.tunnels.Tunnels(org) {
		if t.Name == name {
			return 0
		}
	}
	return left
}
