package relay

import (
	"bytes"
	"context"
	"encoding/json"
	"time"

	"github.com/rs/zerolog"
)

// changeSharer is a store shared with other relays (natsstore) that
// carries each relay's changes to the others. A relay's hub publishes the
// changes it made itself, and SPEC §9 has the dashboard the same from
// every relay: so each relay shares what its hub publishes and publishes
// what it hears, and its dashboard and Subscribe tell of every relay's
// ingests and attempts live. Best effort, as the hub is: nothing waits
// for the other relays, and what is lost on the way is told as lost.
type changeSharer interface {
	// ShareChanges sends msg to the other relays sharing the store,
	// without waiting for them.
	ShareChanges(msg []byte) error
	// HearChanges calls heard with each message another relay shared
	// (never this relay's own), with that relay's id, in the order it
	// shared them and from one goroutine, until ctx ends or the store is
	// closed. It returns once it is listening; heard must not block.
	HearChanges(ctx context.Context, heard func(from string, msg []byte)) error
}

// isSharer reports whether st carries changes between relays.
func isSharer(st Store) bool {
	_, ok := st.(changeSharer)
	return ok
}

// Bounds of one shared message. A change made after a quiet spell goes
// at once, with whatever queued up beside it; the changes made within
// shareWindow of that message go together in the next one. One NATS
// message per change cost the relays about a quarter more CPU per event
// on the e2e cluster (the writes, reads and wake-ups of each message, on
// every relay); under load this sends at most a message per window, and
// a relay that is idle adds no delay, so a dashboard watching a lone
// event sees its changes in the order the relays made them. 256 KiB
// stays well under NATS's max payload (1 MB by default).
const (
	shareWindow     = 20 * time.Millisecond
	shareMaxChanges = 512
	shareMaxBytes   = 256 << 10
)

// A shared message is a line of sharedHeader, then a line of
// sharedChange for each change: JSON, which never holds a raw newline.
type sharedHeader struct {
	V int `json:"v"`
	// First is the number of the message's first change among all the
	// changes the relay numbered (each it shared or failed to): a
	// hearer that missed some tells its subscribers how many.
	First uint64 `json:"first"`
}

const sharedVersion = 1

// sharedChange is a Change with the delivery as written, which the other
// relays' dashboards show without reading it back. The event is left
// out, as its body may be large: a dashboard showing the delivery reads
// it from the store, and only while a browser watches.
type sharedChange struct {
	Change
	Delivery *Delivery `json:"delivery,omitempty"`
}

// share sends the relay's own changes (sub is of hub.subscribeOwn) to
// the other relays until sub ends, batched as shareWindow says. It runs
// beside ingest and dispatch, never in their way: the hub drops for it
// rather than wait (counted as for any subscriber), and the numbers of
// the changes it lost are skipped, so the hearers count them as lost.
func share(sub *Subscription, sh changeSharer, log zerolog.Logger) {
	var (
		number uint64    // of the next change
		quiet  time.Time // the end of the last message's window
		buf    bytes.Buffer
		enc    = json.NewEncoder(&buf)
	)
	for c := range sub.C() {
		number += uint64(sub.TakeDropped())
		buf.Reset()
		if err := enc.Encode(sharedHeader{V: sharedVersion, First: number}); err != nil {
			log.Debug().Err(err).Msg("share changes")
			continue
		}
		n := 0
		add := func(c Change) {
			if err := enc.Encode(sharedChange{Change: c, Delivery: c.delivery}); err != nil {
				log.Debug().Err(err).Str(logDelivery, c.DeliveryID).Msg("share a change")
				return
			}
			n++
		}
		add(c)
		// Within the window of the last message: gather until it ends.
		// After a quiet spell: only what is queued now.
		var (
			timer  *time.Timer
			window <-chan time.Time
		)
		if wait := time.Until(quiet); wait > 0 {
			timer = time.NewTimer(wait)
			window = timer.C
		}
	more:
		for n < shareMaxChanges && buf.Len() < shareMaxBytes {
			var (
				c  Change
				ok bool
			)
			if window == nil {
				select {
				case c, ok = <-sub.C():
				default:
					break more
				}
			} else {
				select {
				case c, ok = <-sub.C():
				case <-window:
					break more
				}
			}
			if !ok {
				break more // the relay is closing: send what is here
			}
			add(c)
		}
		if timer != nil {
			timer.Stop()
		}
		if n == 0 {
			continue
		}
		number += uint64(n)
		quiet = time.Now().Add(shareWindow)
		if err := sh.ShareChanges(buf.Bytes()); err != nil {
			// The store says when it lost its connection; the hearers
			// count what this one lost.
			log.Debug().Err(err).Int("changes", n).Msg("share changes")
		}
	}
}

// hearer publishes on the relay's hub the changes other relays shared,
// to its subscribers only, so that share does not send them back.
type hearer struct {
	hub *hub
	dir *directory
	log zerolog.Logger
	// next is, by relay, the number of the change expected next. heard
	// runs on one goroutine, so it needs no lock.
	next map[string]uint64
}

// maxHeardRelays bounds next: each start of a relay is a new id.
const maxHeardRelays = 1024

func newHearer(h *hub, dir *directory, log zerolog.Logger) *hearer {
	return &hearer{hub: h, dir: dir, log: log, next: map[string]uint64{}}
}

// heard publishes the changes of one message. Those of an organisation
// this relay does not serve are left out, as the relay's own
// subscribers and dashboards know only its organisations; a gap in the
// sharing relay's numbers (changes it could not send, or that NATS
// dropped for this relay) is told to the subscribers as lost, as their
// own losses are: a dashboard then sends its browsers a fresh snapshot.
func (h *hearer) heard(from string, msg []byte) {
	line, rest, _ := bytes.Cut(msg, []byte{'\n'})
	var hd sharedHeader
	if err := json.Unmarshal(line, &hd); err != nil || hd.V != sharedVersion {
		h.log.Debug().Err(err).Int("version", hd.V).Msg("a relay's changes not understood")
		return
	}
	if want, ok := h.next[from]; ok && hd.First > want {
		h.hub.ps.Lost(int(hd.First - want))
	}
	var (
		cs []Change
		n  uint64
	)
	for len(rest) > 0 {
		line, rest, _ = bytes.Cut(rest, []byte{'\n'})
		n++
		var sc sharedChange
		if err := json.Unmarshal(line, &sc); err != nil {
			h.log.Debug().Err(err).Msg("a relay's change not understood")
			h.hub.ps.Lost(1)
			continue
		}
		if h.dir.org(sc.Org) == nil {
			continue
		}
		c := sc.Change
		c.delivery = sc.Delivery
		cs = append(cs, c)
	}
	if _, ok := h.next[from]; !ok && len(h.next) >= maxHeardRelays {
		clear(h.next) // relays gone long since: a gap is missed once
	}
	h.next[from] = hd.First + n
	h.hub.publishHeard(cs...)
}
