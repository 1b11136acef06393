package relay

import "sync"

// Bounds of the event cache.
const (
	// maxCachedBody: larger events are read back from the store when
	// their delivery is attempted.
	maxCachedBody = 16 << 10
	// maxCachedEvents bounds the cache at about 64 MiB of bodies.
	maxCachedEvents = 4096
)

// eventCache keeps just-accepted events so that their first attempts do
// not read them back from the store while it is busiest. An entry leaves
// when every delivery of its event is final, or, oldest first, when the
// cache is full; a miss costs one Store.Event.
type eventCache struct {
	mu      sync.Mutex
	entries map[cacheKey]*cacheEntry
	order   []cacheKey // insertion order; may hold keys already gone
}

type cacheKey struct{ org, id string }

type cacheEntry struct {
	ev      *Event
	waiting int // deliveries not final yet
}

func newEventCache() *eventCache {
	return &eventCache{entries: make(map[cacheKey]*cacheEntry)}
}

// add keeps ev (when small enough) until its deliveries are final.
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
	for len(c.entries) >= maxCachedEvents && len(c.order) > 0 {
		delete(c.entries, c.order[0])
		c.order = c.order[1:]
	}
	c.entries[k] = &cacheEntry{ev: ev, waiting: len(ev.Deliveries)}
	c.order = append(c.order, k)
	if len(c.order) > 2*maxCachedEvents {
		// Compact the keys of entries that left early.
		live := c.order[:0]
		for _, k := range c.order {
			if _, ok := c.entries[k]; ok {
				live = append(live, k)
			}
		}
		c.order = append([]cacheKey(nil), live...)
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

// final notes that one delivery of the event will not be attempted again.
func (c *eventCache) final(org, id string) {
	k := cacheKey{org, id}
	c.mu.Lock()
	defer c.mu.Unlock()
	if e := c.entries[k]; e != nil {
		if e.waiting--; e.waiting <= 0 {
			delete(c.entries, k)
		}
	}
}
