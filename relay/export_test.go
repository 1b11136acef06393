package relay

import (
	"context"
	"time"

	"github.com/sidehook/sidehook/internal/pubsub"
	"github.com/sidehook/sidehook/relay/config"
)

// AddEndpoint installs e in org as if the configuration file had it, so
// tests can reach tunnel:// endpoints whatever relay/config accepts.
func AddEndpoint(r *Relay, org string, e config.Endpoint) {
	o := r.dir.org(org)
	o.mu.Lock()
	o.replace(e.ID, &endpointState{cfg: e, source: sourceConfig})
	o.mu.Unlock()
	r.disp.endpointChanged(o, e.ID)
}

// Cached reports whether the relay's cache of just-accepted events holds
// an event.
func Cached(r *Relay, org, id string) bool { return r.dash.cache.get(org, id) != nil }

// SetMaxSyncWork bounds how long one call may wait on endpoints (10 min
// otherwise), so tests reach the bound in milliseconds. Call it before
// the relay serves a request.
func SetMaxSyncWork(r *Relay, d time.Duration) { r.caller.sync.max = d }

// SetMaxReplay bounds the deliveries one replay call touches (10000
// otherwise), so tests pass the bound with a few. Call it before the
// relay serves a request.
func SetMaxReplay(r *Relay, n int) { r.dash.mgr.maxReplay = n }

// SubscribeBuffer subscribes to r's changes with a buffer of n.
func SubscribeBuffer(ctx context.Context, r *Relay, n int) *Subscription {
	return r.hub.ps.Subscribe(ctx, pubsub.Options{Buffer: n})
}

// PublishChanges publishes cs on r's change hub, as its writes do.
func PublishChanges(r *Relay, cs ...Change) { r.hub.publish(cs...) }

// FeedDashboard runs the dashboard's feed on sub, as Start runs it on a
// subscription of its own, until sub ends; the channel is closed then.
func FeedDashboard(r *Relay, sub *Subscription) <-chan struct{} {
	done := make(chan struct{})
	go r.dash.feed(sub, done)
	return done
}

// Reload reads org's endpoints, marks and token from the store again, as
// a relay sharing the store does when another one changed them.
func Reload(ctx context.Context, r *Relay, org string) { r.reload(ctx, r.dir.org(org)) }

// Deferred is how many changes of an event the hub holds back until its
// ingest publishes.
func Deferred(r *Relay, org, id string) int {
	r.hub.mu.Lock()
	defer r.hub.mu.Unlock()
	if e := r.hub.held[heldKey{org, id}]; e != nil {
		n := 0
		for _, p := range e.places {
			n += len(p)
		}
		return n
	}
	return 0
}
