package receiver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

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
func (s *Server) feedDashboard(sub *Subscription) {
	web.Feed(s.hub, sub, func(c Capture) (web.Item, bool) {
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
	})
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
