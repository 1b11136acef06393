package receiver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/sidehook/sidehook/internal/pubsub"
	"github.com/sidehook/sidehook/web"
)

// dashboardFeedBuffer is how many captures the dashboard feed may lag
// behind the capture path before it loses some (counted in
// sidehook_receiver_subscriber_dropped_total); the browsers are then told
// and sent a fresh snapshot (web.Feed).
const dashboardFeedBuffer = 4096

// dashboardShutdownWait is how long Close lets dashboard websockets say
// goodbye before cutting them: a browser that stopped reading would
// otherwise hold the drain for the hub's whole write timeout.
const dashboardShutdownWait = time.Second

// newDashboard builds the dashboard's handler on the server's hub.
func (s *Server) newDashboard() http.Handler {
	return web.NewHandler(web.Config{
		Role:      web.RoleReceiver,
		Hub:       s.hub,
		Recent:    s.recentItems,
		Authorize: s.dashboardAuth(),
		Logger:    s.cfg.Logger,
	})
}

// dashboardAuth is the admin API's check: none without an admin token
// (New refuses to listen beyond loopback without one).
func (s *Server) dashboardAuth() func(*http.Request) bool {
	if s.cfg.AdminToken == "" {
		return nil
	}
	return s.adminOK
}

// recentItems is the dashboard's snapshot: the newest n captures.
func (s *Server) recentItems(ctx context.Context, n int) ([]web.Item, error) {
	select {
	case <-s.stopping:
		return nil, errStopping
	default:
	}
	caps, _, err := s.List(ctx, Filter{}, n, "")
	if err != nil {
		return nil, err
	}
	items := make([]web.Item, 0, len(caps))
	for i := range caps {
		it, err := dashboardItem(&caps[i])
		if err != nil {
			return nil, err
		}
		items = append(items, it)
	}
	return items, nil
}

var errStopping = errors.New("receiver: stopping")

// dashboardWatched gates the dashboard feed: with no browser open, the
// capture path hands it nothing, so no goroutine is woken per capture for
// an empty page. Nothing is missed when a browser opens: its websocket
// subscribes to the hub before reading its snapshot, and a capture passed
// over here was committed before that subscription, so the snapshot has it.
func (s *Server) dashboardWatched() bool { return s.hub.Subscribers() > 0 }

// feedDashboard turns committed captures into dashboard items until the
// subscription ends (Close). It runs beside the capture path, never in it:
// the broadcaster drops for it rather than wait, and the hub drops for
// browsers rather than wait for them. Either way the browsers are told
// and sent a fresh snapshot (web.Feed); the feed's losses are counted in
// sidehook_receiver_subscriber_dropped_total.
//
// A clear (handOver) ends the subscription too, and hands over the next
// one: once the captures queued before the clear are published, the
// browsers are told of it, so none of those is listed again after it.
func (s *Server) feedDashboard(sub *Subscription) {
	for {
		web.Feed(s.hub, sub, s.feedItem)
		next := s.takeHandover()
		if next == nil {
			return
		}
		s.hub.Cleared(next.at, next.by)
		sub = next.sub
	}
}

// feedItem is the dashboard row of a capture the feed delivers, false
// when none is to be shown.
func (s *Server) feedItem(c Capture) (web.Item, bool) {
	if !s.dashboardWatched() {
		// The last browser left while this capture was queued.
		return web.Item{}, false
	}
	it, err := dashboardItem(&c)
	if err != nil {
		s.log.Warn().Err(err).Str("id", c.ID).Msg("capture not shown on the dashboard")
		return web.Item{}, false
	}
	return it, true
}

// subscribeFeed subscribes the dashboard feed to committed captures. It
// outlives the request that may make it (a clear): Close ends it.
func (s *Server) subscribeFeed() *Subscription {
	return s.bc.Subscribe(context.Background(), pubsub.Options{Buffer: dashboardFeedBuffer, Wanted: s.dashboardWatched})
}

// feedHandover is what a clear hands the dashboard feed: the subscription
// to read next and the clear to tell the browsers of.
type feedHandover struct {
	sub *Subscription
	at  time.Time
	by  string // web.ClearedByDelete or web.ClearedByReset
}

// clearSubscription is the subscription a clear hands the dashboard feed,
// made before the delete: a capture committed after the delete is then
// never missed, and one committed during it may be listed although it was
// deleted (a reload shows the truth). It is nil when no feed runs.
func (s *Server) clearSubscription() *Subscription {
	s.feedMu.Lock()
	defer s.feedMu.Unlock()
	if s.feedSub == nil {
		return nil
	}
	return s.subscribeFeed()
}

// handOver gives the dashboard feed h: it ends the subscription the feed
// reads, whose captures were committed before the clear, so the feed
// publishes those, then tells the browsers and goes on with h.sub. Of two
// clears not yet taken, the later one is told.
func (s *Server) handOver(h *feedHandover) {
	s.feedMu.Lock()
	superseded, cur := s.feedNext, s.feedSub
	s.feedNext = h
	s.feedMu.Unlock()
	if superseded != nil {
		superseded.sub.Close()
	}
	cur.Close()
}

// takeHandover returns the handover of the clear that ended the feed's
// subscription, nil when Close did.
func (s *Server) takeHandover() *feedHandover {
	s.feedMu.Lock()
	defer s.feedMu.Unlock()
	h := s.feedNext
	s.feedNext = nil
	if h != nil {
		s.feedSub = h.sub
	}
	return h
}

// dashboardCapture is a capture as the admin API returns it, with its body
// cut to web.MaxItemBody and body_preview set when it was.
type dashboardCapture struct {
	captureMeta
	BodyPreview bool `json:"body_preview,omitempty"`
}

// dashboardItem is one row of the dashboard: the capture's JSON as the
// admin API shows it (credentials redacted, see redacted), its body cut
// when large, so a snapshot of 200 stays small. Every row for a browser
// (the feed, the snapshot) is made here.
func dashboardItem(c *Capture) (web.Item, error) {
	rc := redacted(*c)
	d := dashboardCapture{captureMeta: rc.meta()}
	body, enc, cut := web.ItemBody(c.Body)
	d.Body, d.BodyEncoding, d.BodyPreview = &body, enc, cut
	data, err := json.Marshal(d)
	if err != nil {
		return web.Item{}, fmt.Errorf("encode capture %s for the dashboard: %w", c.ID, err)
	}
	return web.Item{
		Kind:   web.KindCapture,
		ID:     c.ID,
		Time:   c.ReceivedAt,
		Event:  c.Event,
		Method: c.Method,
		Path:   c.Path,
		Status: c.Verdict.Status,
		Data:   data,
	}, nil
}
