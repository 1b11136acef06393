package web

import "github.com/sidehook/sidehook/internal/pubsub"

// Feed publishes on h what item makes of each value sub delivers, until
// sub ends. It is how a server turns what it has committed (captures,
// delivery changes) into dashboard rows, beside its write path: the
// publisher of sub drops values for the feed rather than wait for it, so
// when sub lost some, every viewer is told how many
// ({"type":"dropped","count":n}) and sent a fresh snapshot, read from the
// server's store where the lost values are, exactly as a viewer that fell
// behind by itself is (see wsConn.catchUp). As there, that happens once the
// feed has caught up, so the snapshot is not already stale. item returns
// false for a value that is not shown.
func Feed[T any](h *Hub, sub *pubsub.Subscription[T], item func(T) (Item, bool)) {
	for {
		select {
		case v, ok := <-sub.C():
			if !ok {
				return
			}
			if it, ok := item(v); ok {
				h.Publish(it)
			}
		case <-sub.Lagged():
		}
		// While values are queued the feed is still behind, and it checks
		// again after the next one.
		if len(sub.C()) == 0 {
			if n := sub.TakeDropped(); n > 0 {
				h.ps.Lost(n)
			}
		}
	}
}
