package relay

import (
	"context"
	"net/http"
	"slices"

	"github.com/rs/zerolog"

	"github.com/sidehook/sidehook/internal/event"
)

// maxTunnelName bounds a tunnel's name.
const maxTunnelName = 63

// tunnelRoute is GET /v1/tunnel: a tunnel client of an organisation
// connects, and that organisation's tunnel://NAME endpoints get their
// waiting retries made due at once.
type tunnelRoute struct {
	responder
	tunnels TunnelServer // nil: the relay serves no tunnels
	store   Store
	disp    *dispatcher
	clock   Clock
}

func (t *tunnelRoute) handleTunnel() http.Handler {
	return t.handle(func(w http.ResponseWriter, req *http.Request) error {
		if t.tunnels == nil {
			return apiErrorf(http.StatusNotFound, "tunnels_disabled", "this relay serves no tunnels")
		}
		o := orgFrom(req.Context())
		name := req.URL.Query().Get("name")
		if !validTunnelName(name) {
			return apiErrorf(http.StatusBadRequest, "invalid_query", "name %q: want 1 to %d of a-z, 0-9, '_', '.' and '-', starting with a letter or digit", name, maxTunnelName)
		}
		t.tunnels.Serve(w, req, o.id, name, func(events []string) { t.connected(o, name, events) })
		return nil
	})
}

// handleList is GET /v1/tunnels (an organisation's connected clients) and,
// behind the dashboard's guard, GET /_sidehook/tunnels (the caller's
// organisation, or every one for the admin and a loopback developer).
func (t *tunnelRoute) handleList() http.Handler {
	return t.handle(func(w http.ResponseWriter, req *http.Request) error {
		org := ""
		if o := orgFrom(req.Context()); o != nil {
			org = o.id
		}
		list := []TunnelInfo{}
		if t.tunnels != nil {
			list = append(list, t.tunnels.Tunnels(org)...)
		}
		writeJSON(w, http.StatusOK, map[string]any{"tunnels": list})
		return nil
	})
}

// connected makes the waiting deliveries of o's endpoints behind tunnel
// name due now and wakes their queues, but only those of the event types
// the client takes by its --events filter (events), and none of an
// endpoint it takes no type of: every other attempt would fail for want
// of a client that takes it, and count, so a few reconnects would make
// those deliveries dead before a client that takes them came.
func (t *tunnelRoute) connected(o *orgState, name string, events []string) {
	for _, e := range o.endpoints() {
		n, _, ok := parseTunnelURL(e.cfg.URL)
		if !ok || n != name || !TakesAny(events, e.cfg.Events) {
			continue
		}
		moved, err := t.store.Expedite(context.Background(), EndpointRef{Org: o.id, Endpoint: e.cfg.ID}, t.clock.Now(), events)
		var ev *zerolog.Event
		if err != nil {
			ev = t.log.Error().Err(err)
		} else {
			ev = t.log.Debug().Int("deliveries", moved)
		}
		ev.Str(logOrg, o.id).Str(logEndpoint, e.cfg.ID).Str("tunnel", name).Msg("tunnel connected: retries due now")
		t.disp.expedited(o, e.cfg.ID)
	}
}

// TakesAny reports whether a tunnel client with the --events filter
// takes any of the event types an endpoint subscribes to; the client's
// ready line warns of an endpoint it does not.
func TakesAny(filter, subscribed []string) bool {
	if len(filter) == 0 || slices.Contains(filter, event.Wildcard) || slices.Contains(subscribed, event.Wildcard) {
		return true
	}
	for _, s := range subscribed {
		if event.Matches(filter, event.Type(s)) {
			return true
		}
	}
	return false
}

// validTunnelName is the rule of relay/config for the NAME of
// tunnel://NAME: 1 to 63 of a-z, 0-9, '_', '.' and '-', starting with a
// letter or digit.
func validTunnelName(s string) bool {
	if s == "" || len(s) > maxTunnelName {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		alnum := c >= 'a' && c <= 'z' || c >= '0' && c <= '9'
		if !alnum && (i == 0 || c != '.' && c != '_' && c != '-') {
			return false
		}
	}
	return true
}
