package relay

import "sync"

// Bounds of the event cache.
const (
	// maxCachedBody: larger events are read back from the store when
	// their delivery is attempted.
	maxCachedBody = 16 << 10
	// maxCachedBytes bounds the bodies (and a per-event overhead) the
	// cache holds: a second or two of ingest at full load, as first
	// attempts trail it. Every miss is a store read and a decode on the
	// attempt's path, worth saving on JetStream (a round trip; 1.09× and
	// 1.14× delivered/s with the cache than without), not on Badger
	// (1.03×). 16 MiB filled up whenever attempts fell behind (an
	// endpoint down) and, under the relay's memory limit, cost more in
	// GC than it saved: with 4 MiB the relay ingested 1.27× as fast for
	// a down endpoint, and delivered as much when it was up
	// (docs/BENCHMARKS.md).
	maxCachedBytes = 4 << 20
	// cachedOverhead is what an entry costs beside its body: the event's
	// fields, the map entry and the order slot.
	cachedOverhead = 256
)

// eventCache keeps just-accepted events so that their first attempts do
// not read them back from the store while it is busiest. An entry leaves
// once each delivery of its event has been attempted once (retries are
// rarer and read the store, so a down endpoint's backlog is not kept in
// memory), or, oldest first, when the cache is full; a miss costs one
// Store.Event.
type eventCache struct {
	mu      sync.Mutex
	entries map[cacheKey]*cacheEntry
	order   []cacheKey // insertion order; may hold keys already gone
	bytes   int
}

type cacheKey struct{ org, id string }

type cacheEntry struct {
	ev      *Event
	waiting int // deliveries not attempted yet
}

func newEventCache() *eventCache {
	return &eventCache{entries: make(map[cacheKey]*cacheEntry)}
}

func cachedSize(ev *Event) int { return len(ev.Body) + cachedOverhead }

// add keeps ev (when small enough) until each of its deliveries has been
// attempted.
func (c *eventCache) add(ev *Event) {
	if len(ev.Body) > maxCachedBody || len(ev.Deliveries) == 0 {
		return
	}
	k := cacheKey{ev.Org, ev.ID}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.entries[k]; ok {
		return
	}
	for c.bytes+cachedSize(ev) > maxCachedBytes && len(c.order) > 0 {
		c.remove(c.order[0])
		c.order = c.order[1:]
	}
	c.entries[k] = &cacheEntry{ev: ev, waiting: len(ev.Deliveries)}
	c.bytes += cachedSize(ev)
	c.order = append(c.order, k)
	if len(c.order) > 2*len(c.entries)+1024 {
		// Compact the keys of entries that left early.
		live := make([]cacheKey, 0, len(c.entries))
		for _, k := range c.order {
			if _, ok := c.entries[k]; ok {
				live = append(live, k)
			}
		}
		c.order = live
	}
}

// forget drops an event that was not stored after all.
func (c *eventCache) forget(org, id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.remove(cacheKey{org, id})
}

// remove drops an entry; c.mu is held.
func (c *eventCache) remove(k cacheKey) {
	if e := c.entries[k]; e != nil {
		c.bytes -= cachedSize(e.ev)
		delete(c.entries, k)
	}
}

func (c *eventCache) get(org, id string) *Event {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e := c.entries[cacheKey{org, id}]; e != nil {
		return e.ev
	}
	return nil
}

// attempted notes that one delivery of the event has had its first
// attempt (or will never have one).
func (c *eventCache) attempted(org, id string) {
	k := cacheKey{org, id}
	c.mu.Lock()
	defer c.mu.Unlock()
	if e := c.entries[k]; e != nil {
		if e.waiting--; e.waiting <= 0 {
			c.remove(k)
		}
	}
}
