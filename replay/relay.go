package replay

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/sidehook/sidehook/internal/event"
)

// RelaySource selects stored deliveries through a relay's management API
// (SPEC §4). Each delivery is one item: its event's bytes, aimed by default
// at its endpoint's URL. An event id stands for every delivery of that
// event (or the event alone when no endpoint was subscribed to it).
type RelaySource struct {
	// URL is the relay's base URL.
	URL string
	// APIKey is an API key of the organisation.
	APIKey string
	// Client calls the API (one with DefaultTimeout when nil).
	Client *http.Client
	// PageSize is how many deliveries to ask for at a time (default and
	// most: the relay's maximum, 1000).
	PageSize int
}

// Header names a relay delivery carries that a replay keeps.
const (
	headerEvent    = "sidehook-event"
	headerDelivery = "sidehook-delivery"
)

// relayPage is the largest page the relay serves.
const relayPage = 1000

// relayDelivery, relayEvent and relayEndpoint are the parts of the
// management API's answers a replay uses.
type relayDelivery struct {
	ID       string `json:"id"`
	EventID  string `json:"event_id"`
	Endpoint string `json:"endpoint"`
	Type     string `json:"type"`
	Status   string `json:"status"`
}

type relayEvent struct {
	ID           string          `json:"id"`
	Type         string          `json:"type"`
	ReceivedAt   time.Time       `json:"received_at"`
	Body         string          `json:"body"`
	BodyEncoding string          `json:"body_encoding"`
	Query        string          `json:"query"`
	ContentType  string          `json:"content_type"`
	Deliveries   []relayDelivery `json:"deliveries"`

	body []byte
}

type relayEndpoint struct {
	ID      string            `json:"id"`
	URL     string            `json:"url"`
	Headers map[string]string `json:"headers"`
}

// relayLookup fetches events and endpoints once each.
type relayLookup struct {
	api       *apiClient
	page      int
	events    map[string]*relayEvent
	endpoints map[string]*relayEndpoint // nil value: the endpoint is gone
}

// Select implements Source.
func (s *RelaySource) Select(ctx context.Context, sel Selection) ([]Item, error) {
	if sel.Verdict != "" {
		return nil, fmt.Errorf("%w: relay deliveries have a status, not a verdict", ErrUnsupportedFilter)
	}
	if s.APIKey == "" {
		return nil, errors.New("replay: relay: an API key is required")
	}
	api, err := newAPIClient("relay", s.URL, s.APIKey, s.Client)
	if err != nil {
		return nil, err
	}
	lk := &relayLookup{api: api, page: pageSize(s.PageSize, relayPage), events: map[string]*relayEvent{}, endpoints: map[string]*relayEndpoint{}}
	if len(sel.IDs) > 0 {
		return lk.byID(ctx, sel)
	}
	return lk.list(ctx, sel)
}

func (lk *relayLookup) byID(ctx context.Context, sel Selection) ([]Item, error) {
	var items []Item
	var unknown []string
	add := func(it Item) error {
		if len(items) == sel.max() {
			return &TooManyError{Max: sel.max()}
		}
		items = append(items, it)
		return nil
	}
	for _, id := range uniqueIDs(sel.IDs) {
		if strings.HasPrefix(id, event.PrefixDelivery) {
			var d relayDelivery
			err := lk.api.get(ctx, "/v1/deliveries/"+url.PathEscape(id), &d)
			if unknownID(err) {
				unknown = append(unknown, id)
				continue
			}
			if err != nil {
				return nil, err
			}
			ev, err := lk.event(ctx, d.EventID)
			if err != nil {
				return nil, fmt.Errorf("relay: delivery %s: %w", id, err)
			}
			if !sel.matchDelivery(&d, ev) {
				continue
			}
			it, err := lk.item(ctx, &d, ev)
			if err != nil {
				return nil, err
			}
			if err := add(it); err != nil {
				return nil, err
			}
			continue
		}
		ev, err := lk.event(ctx, id)
		if unknownID(err) {
			unknown = append(unknown, id)
			continue
		}
		if err != nil {
			return nil, err
		}
		if len(ev.Deliveries) == 0 {
			// No endpoint was subscribed: the event itself can still go
			// wherever Options.To says.
			if sel.Status == "" && (sel.Event == "" || sel.Event == ev.Type) && sel.inRange(ev.ReceivedAt) {
				if err := add(eventItem(ev, ev.ID, nil)); err != nil {
					return nil, err
				}
			}
			continue
		}
		for i := range ev.Deliveries {
			d := &ev.Deliveries[i]
			if !sel.matchDelivery(d, ev) {
				continue
			}
			it, err := lk.item(ctx, d, ev)
			if err != nil {
				return nil, err
			}
			if err := add(it); err != nil {
				return nil, err
			}
		}
	}
	if len(unknown) > 0 {
		return nil, &UnknownIDsError{IDs: unknown}
	}
	return items, nil
}

// list pages through GET /v1/deliveries, newest first; the relay applies
// every filter.
func (lk *relayLookup) list(ctx context.Context, sel Selection) ([]Item, error) {
	q := url.Values{}
	q.Set("limit", strconv.Itoa(lk.page))
	if sel.Status != "" {
		q.Set("status", sel.Status)
	}
	if sel.Event != "" {
		q.Set("type", sel.Event)
	}
	if !sel.Since.IsZero() {
		q.Set("since", sel.Since.UTC().Format(time.RFC3339Nano))
	}
	if !sel.Until.IsZero() {
		q.Set("until", sel.Until.UTC().Format(time.RFC3339Nano))
	}
	var ds []relayDelivery
	for {
		var page struct {
			Deliveries []relayDelivery `json:"deliveries"`
			Next       *string         `json:"next"`
		}
		if err := lk.api.get(ctx, "/v1/deliveries?"+q.Encode(), &page); err != nil {
			return nil, err
		}
		if len(ds)+len(page.Deliveries) > sel.max() {
			return nil, &TooManyError{Max: sel.max()}
		}
		ds = append(ds, page.Deliveries...)
		// A cursor with an empty page is the relay's scan bound: go on.
		if page.Next == nil || *page.Next == "" {
			break
		}
		if *page.Next == q.Get("cursor") {
			return nil, errors.New("relay: the deliveries listing returned the same cursor twice")
		}
		q.Set("cursor", *page.Next)
	}
	reverse(ds)
	items := make([]Item, 0, len(ds))
	for i := range ds {
		ev, err := lk.event(ctx, ds[i].EventID)
		if err != nil {
			return nil, fmt.Errorf("relay: delivery %s: %w", ds[i].ID, err)
		}
		it, err := lk.item(ctx, &ds[i], ev)
		if err != nil {
			return nil, err
		}
		items = append(items, it)
	}
	return items, nil
}

// matchDelivery applies the selection's filters to a delivery looked up
// by id. Its time is its id's (a ULID), as the relay's own filter uses.
func (s Selection) matchDelivery(d *relayDelivery, ev *relayEvent) bool {
	if s.Status != "" && d.Status != s.Status {
		return false
	}
	if s.Event != "" && ev.Type != s.Event {
		return false
	}
	at, err := event.IDTime(event.PrefixDelivery, d.ID)
	if err != nil {
		at = ev.ReceivedAt
	}
	return s.inRange(at)
}

func (lk *relayLookup) event(ctx context.Context, id string) (*relayEvent, error) {
	if ev, ok := lk.events[id]; ok {
		return ev, nil
	}
	var ev relayEvent
	if err := lk.api.get(ctx, "/v1/events/"+url.PathEscape(id), &ev); err != nil {
		if errors.Is(err, errNotFound) {
			return nil, fmt.Errorf("event %s: %w", id, err)
		}
		return nil, err
	}
	switch ev.BodyEncoding {
	case "", "utf8":
		ev.body = []byte(ev.Body)
	case "base64":
		b, err := base64.StdEncoding.DecodeString(ev.Body)
		if err != nil {
			return nil, fmt.Errorf("event %s: body is not valid base64", id)
		}
		ev.body = b
	default:
		return nil, fmt.Errorf("event %s: unknown body_encoding %q", id, ev.BodyEncoding)
	}
	lk.events[id] = &ev
	return &ev, nil
}

// endpoint returns the endpoint, or nil when it no longer exists.
func (lk *relayLookup) endpoint(ctx context.Context, id string) (*relayEndpoint, error) {
	if ep, ok := lk.endpoints[id]; ok {
		return ep, nil
	}
	var ep relayEndpoint
	err := lk.api.get(ctx, "/v1/endpoints/"+url.PathEscape(id), &ep)
	if errors.Is(err, errNotFound) {
		lk.endpoints[id] = nil
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	lk.endpoints[id] = &ep
	return &ep, nil
}

func (lk *relayLookup) item(ctx context.Context, d *relayDelivery, ev *relayEvent) (Item, error) {
	ep, err := lk.endpoint(ctx, d.Endpoint)
	if err != nil {
		return Item{}, fmt.Errorf("relay: delivery %s: %w", d.ID, err)
	}
	return eventItem(ev, d.ID, ep), nil
}

// eventItem is what the relay would send for ev to ep (nil: no endpoint,
// so no default target), as a replay of id.
func eventItem(ev *relayEvent, id string, ep *relayEndpoint) Item {
	method := event.Type(ev.Type).Method()
	h := http.Header{}
	it := Item{ID: id, Method: method, WebhookID: ev.ID, Event: ev.Type, Header: h}
	if ep != nil {
		for k, v := range ep.Headers {
			h.Set(k, v)
		}
		it.Target = ep.URL
		if u, err := url.Parse(ep.URL); err == nil {
			it.Path = u.Path
		}
	}
	h.Set(headerEvent, ev.Type)
	if strings.HasPrefix(id, event.PrefixDelivery) {
		h.Set(headerDelivery, id)
	}
	if method == http.MethodGet {
		// A custom-value request: the query is the request.
		it.RawQuery = ev.Query
		if it.Target != "" && ev.Query != "" {
			sep := "?"
			if strings.Contains(it.Target, "?") {
				sep = "&"
			}
			it.Target += sep + ev.Query
		}
		return it
	}
	ct := ev.ContentType
	if ct == "" {
		ct = "application/json"
	}
	h.Set("Content-Type", ct)
	it.Body = ev.body
	return it
}
