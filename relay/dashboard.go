package relay

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/sidehook/sidehook/internal/auth"
	"github.com/sidehook/sidehook/internal/event"
	"github.com/sidehook/sidehook/internal/httpguard"
	"github.com/sidehook/sidehook/internal/httpjson"
	"github.com/sidehook/sidehook/web"
)

// dashboardShutdownWait is how long Close lets dashboard websockets say
// goodbye before cutting them: a browser that stopped reading would
// otherwise hold the drain for the hub's whole write timeout.
const dashboardShutdownWait = time.Second

// maxDashboardReplay bounds the ids of one dashboard replay.
const maxDashboardReplay = 100

// dashboard is the relay's dashboard (SPEC §6): the page, its websocket
// fed from the change hub, and its two actions.
type dashboard struct {
	responder
	store  Store
	dir    *directory
	mgr    *manager
	cache  *eventCache
	web    *web.Hub
	access *access
	// serving is false before Start and from Close on: the snapshot then
	// does not read the store.
	serving func() bool
}

// handler is the page and its websocket.
func (db *dashboard) handler() http.Handler {
	return web.NewHandler(web.Config{
		Role:      web.RoleRelay,
		Hub:       db.web,
		Recent:    db.recentItems,
		Authorize: db.authorized,
		Scope:     db.scope,
		Logger:    db.log,
	})
}

// access decides who sees the dashboard and /metrics: on a loopback
// listener anyone (the developer's own machine), beyond it the admin token
// (the whole relay) or an organisation's API key (that organisation only).
type access struct {
	dir *directory
	// open: a loopback listener needs no credential.
	open bool
	// adminSum is the SHA-256 of the admin token; nil when none is set.
	adminSum []byte
}

func newAccess(dir *directory, listen, adminToken string) *access {
	a := &access{dir: dir, open: httpguard.LoopbackAddr(listen)}
	if adminToken != "" {
		sum := sha256.Sum256([]byte(adminToken))
		a.adminSum = sum[:]
	}
	return a
}

// who returns the organisation req is limited to (nil: every one) and
// whether it may look at all. A key names its organisation even on
// loopback, so a tenant's view is the same everywhere.
func (a *access) who(req *http.Request) (o *orgState, ok bool) {
	// The one Bearer parser of /v1 (the scheme in any case): the same
	// header must not be a key there and no credential here.
	tok, sent := auth.Bearer(req.Header.Get("Authorization"))
	if !sent {
		return nil, a.open
	}
	if a.adminSum != nil {
		sum := sha256.Sum256([]byte(tok))
		if subtle.ConstantTimeCompare(sum[:], a.adminSum) == 1 {
			return nil, true
		}
	}
	if o, _ := a.dir.keyOrg(req); o != nil {
		return o, true
	}
	// A stale token on loopback still sees what no token would.
	return nil, a.open
}

// refuse answers a request who turned away.
func (a *access) refuse() error {
	return unauthorized("beyond loopback this needs the admin token or an organisation's API key: send Authorization: Bearer <token>")
}

func (db *dashboard) authorized(req *http.Request) bool {
	_, ok := db.access.who(req)
	return ok
}

// scope is the organisation an authorized viewer sees ("" for all).
func (db *dashboard) scope(req *http.Request) string {
	if o, _ := db.access.who(req); o != nil {
		return o.id
	}
	return ""
}

// guard lets the dashboard's actions through for whoever may see the
// dashboard, limited to the organisation of their key.
func (db *dashboard) guard(next http.Handler) http.Handler {
	return db.handle(func(w http.ResponseWriter, req *http.Request) error {
		o, ok := db.access.who(req)
		if !ok {
			return db.access.refuse()
		}
		if o != nil {
			req = req.WithContext(context.WithValue(req.Context(), orgKey, o))
		}
		next.ServeHTTP(w, req)
		return nil
	})
}

// findDelivery looks id up in the caller's organisation, or in every one
// when the caller sees the whole relay (admin token, loopback without a
// key). Another organisation's delivery is not found, not forbidden.
func (db *dashboard) findDelivery(ctx context.Context, id string) (*orgState, *Delivery, error) {
	if _, err := event.ParseID(event.PrefixDelivery, id); err != nil {
		return nil, nil, apiErrorf(http.StatusBadRequest, "invalid_id", "%q is not a delivery id (dlv_ followed by a ULID)", id)
	}
	orgs := db.dir.list
	if o := orgFrom(ctx); o != nil {
		orgs = []*orgState{o}
	}
	for _, o := range orgs {
		d, err := db.store.Delivery(ctx, o.id, id)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, nil, err
		}
		return o, d, nil
	}
	return nil, nil, apiErrorf(http.StatusNotFound, "not_found", "no delivery %q", id)
}

// handleRetry is POST /_sidehook/deliveries/{id}/retry: the same as POST
// /v1/deliveries/{id}/retry.
func (db *dashboard) handleRetry() http.Handler {
	return db.handle(func(w http.ResponseWriter, req *http.Request) error {
		o, d, err := db.findDelivery(req.Context(), req.PathValue("id"))
		if err != nil {
			return err
		}
		if d, err = db.mgr.requeue(req.Context(), o, d.ID); err != nil {
			return err
		}
		writeJSON(w, http.StatusAccepted, db.mgr.retried(req.Context(), o, d))
		return nil
	})
}

// dashboardReplayRequest is the body of POST /_sidehook/replay.
type dashboardReplayRequest struct {
	IDs []string `json:"ids"`
	// To is where to send; empty means the delivery's endpoint's URL.
	To string `json:"to"`
	// Body, when present, replaces the event's bytes for this replay.
	Body *string `json:"body"`
}

// handleReplay is POST /_sidehook/replay, the dashboard's Replay button:
// each delivery is sent once, now, to the target or else its endpoint's
// URL, re-signed as its endpoint signs, with sidehook-replay-of naming it
// (SPEC §3, §6), its body bytes unchanged unless edited. A replay is never
// a retry: the delivery keeps its state and attempts (Retry, POST
// /_sidehook/deliveries/{id}/retry, sends it again as an attempt). The
// answer is 2xx only when every target answered 2xx, so the page can say
// so.
func (db *dashboard) handleReplay() http.Handler {
	return db.handle(func(w http.ResponseWriter, req *http.Request) error {
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
		target, err := db.mgr.replayTarget(rr.To, dashboardReplayHints)
		if err != nil {
			return err
		}
		var sel []replaySel
		seen := make(map[string]bool, len(rr.IDs))
		for _, id := range rr.IDs {
			if seen[id] {
				continue // named twice, replayed once
			}
			seen[id] = true
			o, d, err := db.findDelivery(req.Context(), id)
			if err != nil {
				return err
			}
			sel = append(sel, replaySel{o, d})
		}

		var body []byte
		if rr.Body != nil {
			body = []byte(*rr.Body)
		}
		// The page's count is of the replays that went well, and the
		// answer a 502 unless every one did.
		results := db.mgr.replayEach(req.Context(), w, sel, target, body)
		replayed := countOK(results)
		status := http.StatusOK
		if replayed < len(results) {
			status = http.StatusBadGateway
		}
		writeJSON(w, status, map[string]any{"replayed": replayed, "results": results})
		return nil
	})
}

// countOK is the replayed count of a replay's answer, the API's and the
// dashboard's: the replays whose target answered 2xx (ok).
func countOK(rs []ReplayResult) int {
	n := 0
	for _, r := range rs {
		if r.OK {
			n++
		}
	}
	return n
}

// recentItems is the dashboard's snapshot: the newest n deliveries of the
// viewer's organisation, or of every one.
func (db *dashboard) recentItems(ctx context.Context, n int) ([]web.Item, error) {
	return db.items(ctx, time.Time{}, n)
}

// items is the newest n deliveries created at or before until (zero: now)
// of the organisation in ctx's scope, or of every one.
func (db *dashboard) items(ctx context.Context, until time.Time, n int) ([]web.Item, error) {
	if !db.serving() {
		return nil, errors.New("relay: not serving")
	}
	orgs := db.dir.list
	if scope := web.ScopeFrom(ctx); scope != "" {
		o := db.dir.org(scope)
		if o == nil {
			return nil, nil
		}
		orgs = []*orgState{o}
	}
	var all []*Delivery
	for _, o := range orgs {
		page, err := db.store.Deliveries(ctx, o.id, DeliveryFilter{Until: until, Limit: n})
		if err != nil {
			return nil, fmt.Errorf("list deliveries for the dashboard: %w", err)
		}
		all = append(all, page.Items...)
	}
	sortNewestFirst(all)
	if len(all) > n {
		all = all[:n]
	}
	items := make([]web.Item, 0, len(all))
	for _, d := range all {
		o := db.dir.org(d.Org)
		if o == nil {
			continue
		}
		it, err := db.item(ctx, o, d, nil)
		if err != nil {
			db.log.Debug().Err(err).Str(logDelivery, d.ID).Msg("delivery not shown on the dashboard")
			continue
		}
		items = append(items, it)
	}
	return items, nil
}

// handleOlder is GET /_sidehook/deliveries?before=T&limit=N: the page's
// older rows, when its list is scrolled past what the snapshot gave. The
// bound is inclusive (deliveries of one event share their creation time),
// so a page may repeat rows the browser holds; it upserts them by id. more
// is false once a page comes back short.
func (db *dashboard) handleOlder() http.Handler {
	return db.handle(func(w http.ResponseWriter, req *http.Request) error {
		q := req.URL.Query()
		for k := range q {
			if k != "before" && k != "limit" {
				return apiErrorf(http.StatusBadRequest, "invalid_query", "unknown query parameter %q: want before and limit", k)
			}
		}
		before, err := time.Parse(time.RFC3339Nano, q.Get("before"))
		if err != nil {
			return apiErrorf(http.StatusBadRequest, "invalid_query", "before %q: want an RFC 3339 time (the oldest row's)", q.Get("before"))
		}
		// As the /v1 listings.
		limit, err := httpjson.ParseLimit(q.Get("limit"), web.SnapshotSize, maxLimit)
		if err != nil {
			return apiErrorf(http.StatusBadRequest, "invalid_query", "%v", err)
		}
		ctx := req.Context()
		if o := orgFrom(ctx); o != nil {
			ctx = web.WithScope(ctx, o.id)
		}
		items, err := db.items(ctx, before, limit)
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, map[string]any{"items": items, "more": len(items) == limit})
		return nil
	})
}

// feed turns delivery changes into dashboard items until the subscription
// ends (Close). A change carries the records as written, so the feed reads
// nothing back but, rarely, an event no longer in the cache. It runs beside
// ingest and dispatch, never in their way: the change hub drops for it
// rather than wait, and the web hub drops for browsers rather than wait
// for them. Either way the browsers are told and sent a fresh snapshot
// (web.Feed); the feed's losses are counted in
// sidehook_relay_subscriber_dropped_total.
func (db *dashboard) feed(sub *Subscription, done chan<- struct{}) {
	defer close(done)
	web.Feed(db.web, sub, func(ch Change) (web.Item, bool) {
		if ch.Kind != ChangeDelivery || ch.delivery == nil || db.web.Subscribers() == 0 {
			return web.Item{}, false
		}
		o := db.dir.org(ch.Org)
		if o == nil {
			return web.Item{}, false
		}
		it, err := db.item(context.Background(), o, ch.delivery, ch.event)
		if err != nil {
			db.log.Debug().Err(err).Str(logDelivery, ch.DeliveryID).Msg("delivery not shown on the dashboard")
			return web.Item{}, false
		}
		return it, true
	})
}

// dashboardDelivery is a delivery as the management API returns it plus
// the request its latest attempt made, which the page shows and copies as
// curl.
type dashboardDelivery struct {
	DeliveryView
	URL          string              `json:"url"`
	Headers      map[string][]string `json:"headers"`
	Body         string              `json:"body"`
	BodyEncoding string              `json:"body_encoding"`
	BodySize     int                 `json:"body_size"`
	BodyPreview  bool                `json:"body_preview,omitempty"`
}

// item is one row of the relay's dashboard; ev, when nil, is looked up.
func (db *dashboard) item(ctx context.Context, o *orgState, d *Delivery, ev *Event) (web.Item, error) {
	if ev == nil {
		if ev = db.cache.get(o.id, d.EventID); ev == nil {
			var err error
			if ev, err = db.store.Event(ctx, o.id, d.EventID); err != nil {
				return web.Item{}, fmt.Errorf("event %s of delivery %s: %w", d.EventID, d.ID, err)
			}
		}
	}
	view := db.mgr.view(d)
	cfg := o.endpointConfig(d.Endpoint)
	method := event.Type(ev.Type).Method()
	target := cfg.URL
	if method == http.MethodGet {
		target = appendQuery(target, ev.Query)
	}
	// The headers the latest attempt carried, as recorded, redacted as
	// the API redacts them: every row for a browser (the feed, the
	// snapshot, older pages) is made here. A delivery not attempted yet
	// has sent none.
	headers := map[string][]string{}
	if n := len(d.Attempts); n > 0 && len(d.Attempts[n-1].Request) > 0 {
		headers = viewHeaders(d.Attempts[n-1].Request, configuredHeaders(cfg))
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
		Org:    o.id,
		ID:     d.ID,
		Time:   d.CreatedAt,
		Event:  d.Type,
		Method: method,
		Path:   path,
		Status: view.Status,
		Data:   b,
	}, nil
}
