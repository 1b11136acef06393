package relay

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/sidehook/sidehook/internal/event"
	"github.com/sidehook/sidehook/internal/store"
	"github.com/sidehook/sidehook/relay/config"
	"github.com/sidehook/sidehook/web"
)

// dashboardShutdownWait is how long Close lets dashboard websockets say
// goodbye before cutting them: a browser that stopped reading would
// otherwise hold the drain for the hub's whole write timeout.
const dashboardShutdownWait = time.Second

// maxDashboardReplay bounds the ids of one dashboard replay.
const maxDashboardReplay = 100

// newDashboard builds the dashboard on the relay's web hub (SPEC §6).
func (r *Relay) newDashboard() http.Handler {
	return web.NewHandler(web.Config{
		Role:      web.RoleRelay,
		Hub:       r.dash,
		Recent:    r.recentItems,
		Authorize: r.dashboardAuthorized,
		Logger:    r.opts.Logger,
	})
}

// loopbackOnly reports whether listening on addr keeps the relay on this
// machine: a loopback IP or "localhost", not an empty host (every
// interface) nor a name that could resolve anywhere.
func loopbackOnly(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(strings.Trim(host, "[]"))
	return ip != nil && ip.IsLoopback()
}

// dashboardAuthorized lets anyone in on a loopback listener, and beyond it
// whoever holds an API key of any organisation: the dashboard shows the
// whole relay, as /metrics does.
func (r *Relay) dashboardAuthorized(req *http.Request) bool {
	if r.dashOpen {
		return true
	}
	o, _ := r.keyOrg(req)
	return o != nil
}

// requireDashboard guards the dashboard's actions as the dashboard is
// guarded. A valid key limits them to its organisation's deliveries; on a
// loopback listener a request without one acts on every organisation's.
func (r *Relay) requireDashboard(next http.Handler) http.Handler {
	return r.handle(func(w http.ResponseWriter, req *http.Request) error {
		o, _ := r.keyOrg(req)
		if o == nil && !r.dashOpen {
			w.Header().Set("WWW-Authenticate", `Bearer realm="sidehook"`)
			return apiErrorf(http.StatusUnauthorized, "unauthorized", "the dashboard beyond loopback needs an API key: send Authorization: Bearer <key>")
		}
		if o != nil {
			req = req.WithContext(context.WithValue(req.Context(), orgKey, o))
		}
		next.ServeHTTP(w, req)
		return nil
	})
}

// findDelivery looks id up in the caller's organisation, or in every one
// when the caller has none (loopback without a key).
func (r *Relay) findDelivery(ctx context.Context, id string) (*orgState, *deliveryRecord, error) {
	if _, err := event.ParseID(event.PrefixDelivery, id); err != nil {
		return nil, nil, apiErrorf(http.StatusBadRequest, "invalid_id", "%q is not a delivery id (dlv_ followed by a ULID)", id)
	}
	orgs := r.orgList
	if o := orgFrom(ctx); o != nil {
		orgs = []*orgState{o}
	}
	for _, o := range orgs {
		d, err := r.getDelivery(o.id, id)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, nil, err
		}
		return o, d, nil
	}
	return nil, nil, apiErrorf(http.StatusNotFound, "not_found", "no delivery %q", id)
}

// handleDashboardRetry is POST /_sidehook/deliveries/{id}/retry: the same
// as POST /v1/deliveries/{id}/retry.
func (r *Relay) handleDashboardRetry() http.Handler {
	return r.handle(func(w http.ResponseWriter, req *http.Request) error {
		o, d, err := r.findDelivery(req.Context(), req.PathValue("id"))
		if err != nil {
			return err
		}
		if d, err = r.requeue(req.Context(), o, d.ID); err != nil {
			return err
		}
		writeJSON(w, http.StatusAccepted, r.viewDelivery(d))
		return nil
	})
}

// dashboardReplayRequest is the body of POST /_sidehook/replay.
type dashboardReplayRequest struct {
	IDs []string `json:"ids"`
	// To is where to send; empty means the delivery's endpoint.
	To string `json:"to"`
	// Body, when present, replaces the event's bytes for this replay.
	Body *string `json:"body"`
}

// handleDashboardReplay is POST /_sidehook/replay, the dashboard's Replay
// button. Without a target or an edited body the deliveries are enqueued
// again, as POST /v1/replay does; otherwise each is sent once, now, to the
// target (or its endpoint's URL), re-signed as its endpoint signs and
// marked sidehook-replay-of. The answer is 2xx only when every one went
// well, so the page can say so.
func (r *Relay) handleDashboardReplay() http.Handler {
	return r.handle(func(w http.ResponseWriter, req *http.Request) error {
		var rr dashboardReplayRequest
		if err := decodeJSON(w, req, &rr); err != nil {
			return err
		}
		if len(rr.IDs) == 0 {
			return apiErrorf(http.StatusBadRequest, "invalid_body", "ids: name at least one delivery")
		}
		if len(rr.IDs) > maxDashboardReplay {
			return apiErrorf(http.StatusBadRequest, "too_many", "at most %d ids", maxDashboardReplay)
		}
		if rr.To != "" {
			if err := validTarget(rr.To); err != nil {
				return apiErrorf(http.StatusBadRequest, "invalid_to", "to: %v", err)
			}
		}
		type found struct {
			o *orgState
			d *deliveryRecord
		}
		var sel []found
		for _, id := range rr.IDs {
			o, d, err := r.findDelivery(req.Context(), id)
			if err != nil {
				return err
			}
			sel = append(sel, found{o, d})
		}

		results := make([]ReplayResult, 0, len(sel))
		allOK := true
		if rr.To == "" && rr.Body == nil {
			for _, f := range sel {
				res := ReplayResult{DeliveryID: f.d.ID, EventID: f.d.EventID, OK: true}
				if _, err := r.requeue(req.Context(), f.o, f.d.ID); err != nil {
					res.OK, res.Error = false, clientText(err)
				}
				allOK = allOK && res.OK
				results = append(results, res)
			}
			status := http.StatusAccepted
			if !allOK {
				status = http.StatusConflict
			}
			writeJSON(w, status, map[string]any{"enqueued": countOK(results), "results": results})
			return nil
		}

		var body []byte
		if rr.Body != nil {
			body = []byte(*rr.Body)
		}
		for _, f := range sel {
			to := rr.To
			if to == "" {
				to = r.endpointConfig(f.o, f.d.Endpoint).URL
				if err := validTarget(to); err != nil {
					res := ReplayResult{DeliveryID: f.d.ID, EventID: f.d.EventID,
						Error: fmt.Sprintf("endpoint %s (%s) cannot be sent an edited body from here: give a Target URL", f.d.Endpoint, to)}
					allOK = false
					results = append(results, res)
					continue
				}
			}
			res := r.replayTo(req.Context(), f.o, f.d, to, body)
			allOK = allOK && res.OK
			results = append(results, res)
		}
		status := http.StatusOK
		if !allOK {
			status = http.StatusBadGateway
		}
		writeJSON(w, status, map[string]any{"replayed": countOK(results), "results": results})
		return nil
	})
}

func countOK(rs []ReplayResult) int {
	n := 0
	for _, r := range rs {
		if r.OK {
			n++
		}
	}
	return n
}

// clientText is what a client may read of err.
func clientText(err error) string {
	var ae *apiError
	if errors.As(err, &ae) {
		return ae.Reason
	}
	return "internal error"
}

// endpointConfig is a delivery's endpoint as configured now, or the
// defaults when it no longer exists.
func (r *Relay) endpointConfig(o *orgState, id string) (cfg config.Endpoint) {
	if e := o.endpoint(id); e != nil {
		return e.cfg
	}
	return defaultEndpoint(o, id)
}

// recentItems is the dashboard's snapshot: the newest n deliveries of
// every organisation.
func (r *Relay) recentItems(ctx context.Context, n int) ([]web.Item, error) {
	if r.closing.Load() || r.store == nil {
		return nil, errors.New("relay: not serving")
	}
	type found struct {
		o *orgState
		d *deliveryRecord
	}
	var all []found
	for _, o := range r.orgList {
		err := r.store.Scan(ctx, store.ScanOptions{Prefix: []byte(pfxDelivery + o.id + "/"), Reverse: true, Limit: n}, func(_, v []byte) error {
			var d deliveryRecord
			if err := json.Unmarshal(v, &d); err != nil {
				return nil
			}
			all = append(all, found{o, &d})
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("list deliveries for the dashboard: %w", err)
		}
	}
	// Delivery ids are ULIDs: by id is by creation time.
	slices.SortFunc(all, func(a, b found) int { return strings.Compare(b.d.ID, a.d.ID) })
	if len(all) > n {
		all = all[:n]
	}
	items := make([]web.Item, 0, len(all))
	for _, f := range all {
		it, err := r.deliveryItem(f.o, f.d)
		if err != nil {
			r.log.Debug().Err(err).Str(logDelivery, f.d.ID).Msg("delivery not shown on the dashboard")
			continue
		}
		items = append(items, it)
	}
	return items, nil
}

// feedDashboard turns delivery changes into dashboard items until the
// subscription ends (Close). It runs beside ingest and dispatch, never in
// their way: the change hub drops for it rather than wait, and the web hub
// drops for browsers rather than wait for them.
func (r *Relay) feedDashboard(sub *Subscription) {
	defer close(r.feedDone)
	for ch := range sub.C() {
		if ch.Kind != ChangeDelivery || r.dash.Subscribers() == 0 {
			continue
		}
		o := r.orgs[ch.Org]
		if o == nil {
			continue
		}
		d, err := r.getDelivery(o.id, ch.DeliveryID)
		if err != nil {
			r.log.Debug().Err(err).Str(logDelivery, ch.DeliveryID).Msg("delivery not shown on the dashboard")
			continue
		}
		it, err := r.deliveryItem(o, d)
		if err != nil {
			r.log.Debug().Err(err).Str(logDelivery, ch.DeliveryID).Msg("delivery not shown on the dashboard")
			continue
		}
		r.dash.Publish(it)
	}
}

// dashboardDelivery is a delivery as the management API returns it plus
// the request it makes, which the page shows and copies as curl.
type dashboardDelivery struct {
	DeliveryView
	URL          string              `json:"url"`
	Headers      map[string][]string `json:"headers"`
	Body         string              `json:"body"`
	BodyEncoding string              `json:"body_encoding"`
	BodySize     int                 `json:"body_size"`
	BodyPreview  bool                `json:"body_preview,omitempty"`
}

// deliveryItem is one row of the relay's dashboard.
func (r *Relay) deliveryItem(o *orgState, d *deliveryRecord) (web.Item, error) {
	ev, err := r.getEvent(o.id, d.EventID)
	if err != nil {
		return web.Item{}, fmt.Errorf("event %s of delivery %s: %w", d.EventID, d.ID, err)
	}
	view := r.viewDelivery(d)
	cfg := r.endpointConfig(o, d.Endpoint)
	method := event.Type(ev.Type).Method()
	ob := outbound{method: method, url: cfg.URL, body: ev.Body, contentType: ev.ContentType,
		eventID: ev.ID, eventType: ev.Type, deliveryID: d.ID, attempt: max(len(d.Attempts), 1)}
	target := cfg.URL
	if method == http.MethodGet && ev.Query != "" {
		ob.query = ev.Query
		target += "?" + ev.Query
	}
	// The headers its latest attempt carried, signed afresh: attempts do
	// not keep their headers, and fresh tokens make Copy as curl usable.
	h, err := r.requestHeaders(o, cfg, ob, r.clock.Now())
	if err != nil {
		// Show the request without its authentication rather than not
		// at all; the reason is in the attempts.
		cfg.Auth = nil
		if h, err = r.requestHeaders(o, cfg, ob, r.clock.Now()); err != nil {
			return web.Item{}, err
		}
	}
	headers := make(map[string][]string, len(h))
	for k, v := range h {
		headers[strings.ToLower(k)] = v
	}
	data := dashboardDelivery{DeliveryView: view, URL: target, Headers: headers, BodySize: len(ev.Body)}
	data.Body, data.BodyEncoding, data.BodyPreview = web.ItemBody(ev.Body)
	b, err := json.Marshal(data)
	if err != nil {
		return web.Item{}, fmt.Errorf("encode delivery %s for the dashboard: %w", d.ID, err)
	}
	path := ""
	if u, err := url.Parse(cfg.URL); err == nil {
		path = u.Path
	}
	return web.Item{
		Kind:   web.KindDelivery,
		ID:     d.ID,
		Time:   d.CreatedAt,
		Event:  d.Type,
		Method: method,
		Path:   path,
		Status: view.Status,
		Data:   b,
	}, nil
}
