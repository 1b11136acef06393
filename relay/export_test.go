package relay

import "github.com/sidehook/sidehook/relay/config"

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
