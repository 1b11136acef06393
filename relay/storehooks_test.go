package relay_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sidehook/sidehook/relay"
	"github.com/sidehook/sidehook/relay/config"
	"github.com/sidehook/sidehook/relay/memstore"
	"github.com/sidehook/sidehook/web"
	"github.com/sidehook/sidehook/web/webtest"
)

// hookStore is a memstore whose Accept and Record can be replaced, and
// which counts reads of single records.
type hookStore struct {
	relay.Store
	accept func(ctx context.Context, ev *relay.Event, ds []*relay.Delivery) (*relay.Event, error)
	record func(ctx context.Context, d *relay.Delivery, disable string) error
	// requeue runs after the store's Requeue, before the relay goes on.
	requeue func(d *relay.Delivery)
	reads   atomic.Int64 // of events and deliveries
	events  atomic.Int64 // of events
	// down makes reads of events fail as a lost NATS connection does.
	down atomic.Bool
	// limit, when set, is what BodyLimit says.
	limit *config.StoreLimit
}

func (h *hookStore) BodyLimit() config.StoreLimit {
	if h.limit != nil {
		return *h.limit
	}
	return h.Store.BodyLimit()
}

var _ relay.Store = (*hookStore)(nil)

func newHookStore(tb testing.TB) *hookStore {
	st := memstore.New()
	tb.Cleanup(func() { st.Close() })
	return &hookStore{Store: st}
}

func (h *hookStore) Accept(ctx context.Context, ev *relay.Event, ds []*relay.Delivery) (*relay.Event, error) {
	if h.accept != nil {
		return h.accept(ctx, ev, ds)
	}
	return h.Store.Accept(ctx, ev, ds)
}

func (h *hookStore) Record(ctx context.Context, d *relay.Delivery, disable string) error {
	if h.record != nil {
		return h.record(ctx, d, disable)
	}
	return h.Store.Record(ctx, d, disable)
}

func (h *hookStore) Requeue(ctx context.Context, org, id string, now time.Time) (*relay.Delivery, error) {
	d, err := h.Store.Requeue(ctx, org, id, now)
	if err == nil && h.requeue != nil {
		h.requeue(d)
	}
	return d, err
}

func (h *hookStore) Event(ctx context.Context, org, id string) (*relay.Event, error) {
	if h.down.Load() {
		return nil, fmt.Errorf("get event: %w: NATS connection reconnecting", relay.ErrUnavailable)
	}
	h.reads.Add(1)
	h.events.Add(1)
	return h.Store.Event(ctx, org, id)
}

func (h *hookStore) Events(ctx context.Context, org string, f relay.EventFilter) (relay.Page[*relay.Event], error) {
	if h.down.Load() {
		return relay.Page[*relay.Event]{}, fmt.Errorf("list events: %w: NATS connection reconnecting", relay.ErrUnavailable)
	}
	return h.Store.Events(ctx, org, f)
}

func (h *hookStore) Delivery(ctx context.Context, org, id string) (*relay.Delivery, error) {
	h.reads.Add(1)
	return h.Store.Delivery(ctx, org, id)
}

// TestAcceptErrorButStored: an Accept that reports an error after the
// event landed (a lost acknowledgement) is found by id: the producer gets
// 202 and the event is delivered.
func TestAcceptErrorButStored(t *testing.T) {
	rcv := newSink(t, nil, nil)
	st := newHookStore(t)
	st.accept = func(ctx context.Context, ev *relay.Event, ds []*relay.Delivery) (*relay.Event, error) {
		if _, err := st.Store.Accept(ctx, ev, ds); err != nil {
			return nil, err
		}
		return nil, fmt.Errorf("the acknowledgement was lost: %w", relay.ErrUnavailable)
	}
	r := startRelay(t, orgConfig(t, config.RawEndpoint{ID: "crm", URL: rcv.URL()}), relay.Options{Store: st})
	ans := ingest(t, r, `{"type":"payment"}`, nil)
	waitDelivery(t, r, ans.Deliveries[0].ID, "delivered", 5*time.Second)
}

// TestGoneMarkSurvivesReload: a reload between an endpoint's 410 and
// the record of that attempt (a relay sharing the store changed
// something) keeps the endpoint disabled: the mark is durable before the
// relay acts on it, where it was set in memory first and the reload,
// reading the store, dropped it.
func TestGoneMarkSurvivesReload(t *testing.T) {
	rcv := newSink(t, nil, func(*http.Request, int) int { return http.StatusGone })
	st := newHookStore(t)
	var r atomic.Pointer[relay.Relay]
	st.record = func(ctx context.Context, d *relay.Delivery, disable string) error {
		if d.Status == relay.StatusDead {
			relay.Reload(ctx, r.Load(), "demo")
		}
		return st.Store.Record(ctx, d, disable)
	}
	r.Store(startRelay(t, orgConfig(t, config.RawEndpoint{ID: "crm", URL: rcv.URL()}), relay.Options{Store: st}))
	ans := ingest(t, r.Load(), `{"type":"payment"}`, nil)
	waitDelivery(t, r.Load(), ans.Deliveries[0].ID, relay.StatusDead, 5*time.Second)
	var ep struct {
		Enabled        bool   `json:"enabled"`
		DisabledReason string `json:"disabled_reason"`
	}
	call(t, "GET", r.Load().URL()+"/v1/endpoints/crm", apiKey, nil, nil).decode(t, &ep)
	if ep.Enabled || !strings.Contains(ep.DisabledReason, "410") {
		t.Errorf("endpoint after a 410 and a reload: got %+v, want disabled for the 410", ep)
	}
	if ans := ingest(t, r.Load(), `{"type":"payment"}`, nil); len(ans.Deliveries) != 0 {
		t.Errorf("deliveries to the disabled endpoint: got %+v, want none", ans.Deliveries)
	}
}

// TestAcceptFailsIs503: an Accept that stored nothing is a 503 with the
// reason, and nothing is sent.
func TestAcceptFailsIs503(t *testing.T) {
	rcv := newSink(t, nil, nil)
	st := newHookStore(t)
	st.accept = func(context.Context, *relay.Event, []*relay.Delivery) (*relay.Event, error) {
		return nil, fmt.Errorf("write: %w", relay.ErrDiskFull)
	}
	r := startRelay(t, orgConfig(t, config.RawEndpoint{ID: "crm", URL: rcv.URL()}), relay.Options{Store: st})
	a := call(t, "POST", r.URL()+"/v1/events", apiKey, []byte(`{"type":"payment"}`), nil)
	var e struct{ Error, Reason string }
	a.decode(t, &e)
	if a.Status != http.StatusServiceUnavailable || e.Error != "store_unavailable" || !strings.Contains(e.Reason, "disk") || a.Header.Get("Retry-After") == "" {
		t.Errorf("got %d %s, want 503 store_unavailable naming the disk, with Retry-After", a.Status, a.Body)
	}
	if got := queueDepth(t, r, "crm"); got != 0 {
		t.Errorf("queue depth: got %d, want 0", got)
	}
}

// TestAcceptTooLargeIs413: an event the store refuses as too large (a
// Badger record over a value log file, a NATS batch over its records) is a
// 413 with the reason and no Retry-After, on both ingest routes: a retry of
// the same bytes can never be stored, so a 503 kept producers retrying it
// for ever. Events accepted before and after are delivered.
func TestAcceptTooLargeIs413(t *testing.T) {
	rcv := newSink(t, nil, nil)
	st := newHookStore(t)
	st.limit = &config.StoreLimit{Store: "the test store", MaxBody: 1 << 20}
	st.accept = func(ctx context.Context, ev *relay.Event, ds []*relay.Delivery) (*relay.Event, error) {
		if strings.Contains(string(ev.Body), "huge") {
			return nil, fmt.Errorf("badgerstore: accept: store: value too large: %w", relay.ErrTooLarge)
		}
		return st.Store.Accept(ctx, ev, ds)
	}
	r := startRelay(t, orgConfig(t, config.RawEndpoint{ID: "crm", URL: rcv.URL()}), relay.Options{Store: st})
	before := ingest(t, r, `{"type":"payment"}`, nil)
	for _, path := range []string{"/v1/events", "/in/demo"} {
		t.Run(path, func(t *testing.T) {
			a := call(t, "POST", r.URL()+path, apiKey, []byte(`{"type":"payment","x":"huge"}`), map[string]string{"webhook-id": "evt_huge"})
			var e struct{ Error, Reason string }
			a.decode(t, &e)
			if a.Status != http.StatusRequestEntityTooLarge || e.Error != "too_large" || !strings.Contains(e.Reason, "store can hold of one event: bodies up to 1048576 bytes, and each delivery takes room") ||
				a.Header.Get("Retry-After") != "" {
				t.Errorf("got %d %s (Retry-After %q), want 413 too_large naming the store's limit, without Retry-After",
					a.Status, a.Body, a.Header.Get("Retry-After"))
			}
			if strings.Contains(e.Reason, "badgerstore") {
				t.Errorf("reason %q: want the relay's words, not the store's error", e.Reason)
			}
		})
	}
	if a := call(t, "GET", r.URL()+"/v1/events/evt_huge", apiKey, nil, nil); a.Status != http.StatusNotFound {
		t.Errorf("the refused event: got %d %s, want 404", a.Status, a.Body)
	}
	after := ingest(t, r, `{"type":"payment"}`, nil)
	for _, ans := range []ingestAnswer{before, after} {
		waitDelivery(t, r, ans.Deliveries[0].ID, "delivered", 5*time.Second)
	}
	if got := queueDepth(t, r, "crm"); got != 0 {
		t.Errorf("queue depth: got %d, want 0", got)
	}
}

// TestReadsWhileStoreUnavailable: a management read the store cannot
// answer now (NATS lost) is a 503 with Retry-After, as ingest's is, not a
// 500.
func TestReadsWhileStoreUnavailable(t *testing.T) {
	rcv := newSink(t, nil, nil)
	st := newHookStore(t)
	r := startRelay(t, orgConfig(t, config.RawEndpoint{ID: "crm", URL: rcv.URL()}), relay.Options{Store: st})
	ev := ingest(t, r, `{"type":"payment"}`, nil)
	waitDelivery(t, r, ev.Deliveries[0].ID, "delivered", 5*time.Second)
	st.down.Store(true)
	for _, path := range []string{"/v1/events", "/v1/events/" + ev.ID} {
		a := call(t, "GET", r.URL()+path, apiKey, nil, nil)
		var e struct{ Error, Reason string }
		a.decode(t, &e)
		if a.Status != http.StatusServiceUnavailable || e.Error != "store_unavailable" || a.Header.Get("Retry-After") == "" {
			t.Errorf("GET %s: got %d %s, want 503 store_unavailable with Retry-After", path, a.Status, a.Body)
		}
	}
}

// TestReplayWhileStoreUnavailable: a replay whose event the store cannot
// read now is a result that says so, not sent, and without the store's own
// error (NATS's or Badger's words), which is logged instead.
func TestReplayWhileStoreUnavailable(t *testing.T) {
	rcv := newSink(t, nil, nil)
	st := newHookStore(t)
	r := startRelay(t, orgConfig(t, config.RawEndpoint{ID: "crm", URL: rcv.URL()}), relay.Options{Store: st})
	ev := ingest(t, r, `{"type":"payment"}`, nil)
	id := ev.Deliveries[0].ID
	waitDelivery(t, r, id, "delivered", 5*time.Second)
	st.down.Store(true)
	a := call(t, "POST", r.URL()+"/v1/replay", apiKey, []byte(`{"filter":{"ids":["`+id+`"]}}`), nil)
	var ans struct{ Results []relay.ReplayResult }
	a.decode(t, &ans)
	if a.Status != http.StatusOK || len(ans.Results) != 1 || ans.Results[0].OK {
		t.Fatalf("got %d %s, want 200 with one result not OK", a.Status, a.Body)
	}
	if e := ans.Results[0].Error; e == "" || strings.Contains(e, "NATS") {
		t.Errorf("got error %q, want one that says the store is unavailable without the store's own error", e)
	}
	if n := len(rcv.requests()); n != 1 {
		t.Errorf("requests to the endpoint: got %d, want 1 (the replay not sent)", n)
	}
}

// TestRecordFailureBacksOff: while an attempt's outcome cannot be
// recorded, the delivery is not sent again (issue 14: it was re-sent about
// once a second with a frozen attempt number); the outcome is recorded
// once the store takes it, the tries spaced as the retry schedule says.
func TestRecordFailureBacksOff(t *testing.T) {
	rcv := newSink(t, nil, nil)
	st := newHookStore(t)
	var (
		mu    sync.Mutex
		tries []time.Time
	)
	st.record = func(ctx context.Context, d *relay.Delivery, disable string) error {
		mu.Lock()
		tries = append(tries, time.Now())
		n := len(tries)
		mu.Unlock()
		if n <= 3 {
			return fmt.Errorf("write: %w", relay.ErrUnavailable)
		}
		return st.Store.Record(ctx, d, disable)
	}
	sched := []string{"100ms", "200ms", "300ms", "400ms"}
	zero := 0.0
	cfg := orgConfig(t, config.RawEndpoint{ID: "crm", URL: rcv.URL(), Retry: &config.RawRetry{Schedule: sched, Jitter: &zero}})
	r := startRelay(t, cfg, relay.Options{Store: st})
	ans := ingest(t, r, `{"type":"payment"}`, nil)
	d := waitDelivery(t, r, ans.Deliveries[0].ID, "delivered", 5*time.Second)
	if len(d.Attempts) != 1 {
		t.Errorf("attempts: got %d, want 1", len(d.Attempts))
	}
	if n := len(rcv.requests()); n != 1 {
		t.Errorf("requests to the endpoint: got %d, want 1 (not re-sent while the outcome waited to be recorded)", n)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(tries) != 4 {
		t.Fatalf("record tries: got %d, want 4", len(tries))
	}
	for i, want := range []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 300 * time.Millisecond} {
		if gap := tries[i+1].Sub(tries[i]); gap < want {
			t.Errorf("wait before record try %d: got %s, want at least %s (the schedule)", i+2, gap, want)
		}
	}
}

// TestDashboardReadsNothingPerUpdate: with a browser watching, deliveries
// reach the dashboard as their records were written: neither the attempts
// (the event is cached) nor the feed read a record back.
func TestDashboardReadsNothingPerUpdate(t *testing.T) {
	rcv := newSink(t, nil, nil)
	st := newHookStore(t)
	r := startRelay(t, orgConfig(t, config.RawEndpoint{ID: "crm", URL: rcv.URL()}), relay.Options{Store: st})
	c := webtest.DialWS(t, r.URL(), nil)
	if m := webtest.ReadWS(t, c); m.Type != web.MsgSnapshot {
		t.Fatalf("got %+v, want a snapshot", m)
	}
	before := st.reads.Load()
	const n = 20
	want := map[string]bool{}
	for i := 0; i < n; i++ {
		ans := ingest(t, r, fmt.Sprintf(`{"type":"payment","n":"%d"}`, i), nil)
		want[ans.Deliveries[0].ID] = true
	}
	deadline := time.Now().Add(10 * time.Second)
	for len(want) > 0 {
		m := webtest.ReadWS(t, c)
		if m.Type == web.MsgItem && m.Item.Status == "delivered" {
			delete(want, m.Item.ID)
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d deliveries not shown delivered", len(want))
		}
	}
	if got := st.reads.Load() - before; got != 0 {
		t.Errorf("records read back for %d deliveries: got %d, want 0", n, got)
	}
}

// TestAttemptBeforeIngestReturns: the dispatcher may take a delivery as
// soon as the store has it, before the ingest that wrote it has run on
// (under load, or woken by something else, as here by a retry). Its first
// attempt still finds the event without reading it back, and the ingest,
// running on, does not cache it again.
func TestAttemptBeforeIngestReturns(t *testing.T) {
	arrived := make(chan struct{}, 1)
	rcv := newSink(t, nil, func(*http.Request, int) int {
		select {
		case arrived <- struct{}{}:
		default:
		}
		return http.StatusOK
	})
	st := newHookStore(t)
	var (
		r      *relay.Relay
		hookMu sync.Mutex
		hook   error // what went wrong in the hook, which runs in the relay
	)
	st.accept = func(ctx context.Context, ev *relay.Event, ds []*relay.Delivery) (*relay.Event, error) {
		stored, err := st.Store.Accept(ctx, ev, ds)
		if err != nil {
			return stored, err
		}
		// Wake the endpoint's queue through another request while this
		// ingest is held here, and hold it until the delivery arrived.
		req, _ := http.NewRequest(http.MethodPost, r.URL()+"/v1/deliveries/"+ds[0].ID+"/retry", nil)
		req.Header.Set("Authorization", "Bearer "+apiKey)
		resp, rerr := http.DefaultClient.Do(req)
		if rerr == nil {
			resp.Body.Close()
			if resp.StatusCode != http.StatusAccepted {
				rerr = fmt.Errorf("retry: %d", resp.StatusCode)
			}
		}
		if rerr == nil {
			select {
			case <-arrived:
			case <-time.After(10 * time.Second):
				rerr = errors.New("the delivery was not attempted while its ingest was held")
			}
		}
		// And until the attempt's outcome is published: held back, with
		// the retry's pending, until this ingest publishes the event.
		for deadline := time.Now().Add(10 * time.Second); rerr == nil && relay.Deferred(r, ev.Org, ev.ID) < 2; {
			if time.Now().After(deadline) {
				rerr = fmt.Errorf("the hub holds %d changes of the event, want the retry's and the attempt's", relay.Deferred(r, ev.Org, ev.ID))
			}
			time.Sleep(time.Millisecond)
		}
		if rerr == nil && relay.Cached(r, ev.Org, ev.ID) {
			rerr = errors.New("the event stayed cached after its delivery's first attempt")
		}
		hookMu.Lock()
		hook = rerr
		hookMu.Unlock()
		return stored, nil
	}
	r = startRelay(t, orgConfig(t, config.RawEndpoint{ID: "crm", URL: rcv.URL()}), relay.Options{Store: st})
	sub := r.Subscribe(t.Context())
	defer sub.Close()
	ans := ingest(t, r, `{"type":"payment"}`, nil)
	hookMu.Lock()
	if hook != nil {
		t.Fatal(hook)
	}
	hookMu.Unlock()
	waitDelivery(t, r, ans.Deliveries[0].ID, "delivered", 5*time.Second)
	if got := st.events.Load(); got != 0 {
		t.Errorf("events read back: got %d, want 0 (the first attempt finds it cached)", got)
	}
	// Its one delivery has had its first attempt: the ingest that ran on
	// after it must not have cached the event again.
	if relay.Cached(r, "demo", ans.ID) {
		t.Error("the event is cached after every delivery's first attempt")
	}
	// A subscriber sees the event before anything that happened to it.
	var got []string
	for len(got) < 4 {
		select {
		case c := <-sub.C():
			got = append(got, c.Kind+":"+c.Status)
		case <-time.After(5 * time.Second):
			t.Fatalf("changes: got %v, want 4", got)
		}
	}
	if want := "[event: delivery:pending delivery:pending delivery:delivered]"; fmt.Sprint(got) != want {
		t.Errorf("changes: got %v, want %s (the ingest's, the retry's, the attempt's)", got, want)
	}
}

// TestRetryPublishedBeforeItsAttempt: a retried delivery is due from the
// store's write on, and a queue already running (woken here by another
// ingest) may attempt it before the retry publishes. Subscribers still see
// the retry's pending before the attempt's outcome: the other way round,
// a dashboard ended on "pending" for a delivered delivery.
func TestRetryPublishedBeforeItsAttempt(t *testing.T) {
	var arrivals atomic.Int64
	rcv := newSink(t, nil, func(*http.Request, int) int {
		arrivals.Add(1)
		return http.StatusOK
	})
	st := newHookStore(t)
	r := startRelay(t, orgConfig(t, config.RawEndpoint{ID: "crm", URL: rcv.URL()}), relay.Options{Store: st})
	first := ingest(t, r, `{"type":"payment"}`, nil)
	id := first.Deliveries[0].ID
	waitDelivery(t, r, id, "delivered", 5*time.Second)

	sub := r.Subscribe(t.Context())
	defer sub.Close()
	var (
		hookMu sync.Mutex
		hook   error // what went wrong in the hook, which runs in the relay
	)
	st.requeue = func(*relay.Delivery) {
		err := func() error {
			req, _ := http.NewRequest(http.MethodPost, r.URL()+"/v1/events", strings.NewReader(`{"type":"payment"}`))
			req.Header.Set("Authorization", "Bearer "+apiKey)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				return err
			}
			resp.Body.Close()
			// The first delivery, the other event's and the retry.
			for deadline := time.Now().Add(10 * time.Second); arrivals.Load() < 3; time.Sleep(time.Millisecond) {
				if time.Now().After(deadline) {
					return fmt.Errorf("the retried delivery was not attempted before its retry returned: %d arrivals", arrivals.Load())
				}
			}
			// Until its outcome is recorded, and held back or published.
			for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
				d, err := st.Store.Delivery(context.Background(), "demo", id)
				if err == nil && d.Status == "delivered" && len(d.Attempts) == 2 &&
					(relay.Deferred(r, "demo", first.ID) > 0 || len(sub.C()) > 0) {
					return nil
				}
				if time.Now().After(deadline) {
					return errors.New("the retried delivery's outcome was neither held back nor published")
				}
			}
		}()
		hookMu.Lock()
		hook = err
		hookMu.Unlock()
	}
	req, _ := http.NewRequest(http.MethodPost, r.URL()+"/v1/deliveries/"+id+"/retry", nil)
	req.Header.Set("Authorization", "Bearer "+apiKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("retry: %d", resp.StatusCode)
	}
	hookMu.Lock()
	if hook != nil {
		t.Fatal(hook)
	}
	hookMu.Unlock()

	var got []string
	for len(got) < 2 {
		select {
		case c := <-sub.C():
			if c.DeliveryID == id {
				got = append(got, c.Status)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("changes of the retried delivery: got %v, want 2", got)
		}
	}
	if want := "[pending delivered]"; fmt.Sprint(got) != want {
		t.Errorf("changes of the retried delivery: got %v, want %s", got, want)
	}
}

// TestDashboardShowsHeadersSent: the dashboard shows the headers the
// latest attempt carried, as the endpoint received them, with credentials
// and the endpoint's configured headers redacted on the server in every
// row a browser gets (live, snapshot, older page); the API shows each
// attempt's the same way.
func TestDashboardShowsHeadersSent(t *testing.T) {
	rcv := newSink(t, nil, nil)
	configured := map[string]string{"x-api-key": "SECRET-API-KEY-0123", "x-tenant": "SECRET-TENANT-4567"}
	r := startRelay(t, orgConfig(t, config.RawEndpoint{ID: "crm", URL: rcv.URL(), Auth: []string{"webio-token", "standard"}, Headers: configured}), relay.Options{})
	live := webtest.DialWS(t, r.URL(), nil)
	webtest.ReadWS(t, live) // the empty snapshot: subscribed from here on
	ans := ingest(t, r, `{"type":"payment"}`, nil)
	dlv := ans.Deliveries[0].ID
	waitDelivery(t, r, dlv, "delivered", 5*time.Second)
	got := rcv.requests()[0].Header

	rows := map[string]web.Item{}
	for rows["live"].Status != "delivered" {
		if m := webtest.ReadWS(t, live); m.Type == web.MsgItem && m.Item.ID == dlv {
			rows["live"] = *m.Item
		}
	}
	snap := webtest.ReadWS(t, webtest.DialWS(t, r.URL(), nil))
	if len(snap.Items) != 1 {
		t.Fatalf("snapshot: got %d items, want 1", len(snap.Items))
	}
	rows["snapshot"] = snap.Items[0]
	var older struct{ Items []web.Item }
	call(t, "GET", r.URL()+"/_sidehook/deliveries?before="+time.Now().Add(time.Minute).UTC().Format(time.RFC3339Nano), "", nil, nil).decode(t, &older)
	if len(older.Items) != 1 {
		t.Fatalf("older page: got %d items, want 1", len(older.Items))
	}
	rows["older"] = older.Items[0]

	for name, it := range rows {
		var d dashData
		if err := json.Unmarshal(it.Data, &d); err != nil {
			t.Fatal(err)
		}
		for _, k := range []string{"webhook-id", "webhook-timestamp", "sidehook-delivery", "sidehook-attempt", "user-agent", "content-type"} {
			if fmt.Sprint(d.Headers[k]) != fmt.Sprint(got.Values(k)) {
				t.Errorf("%s: header %s: dashboard shows %v, endpoint received %v", name, k, d.Headers[k], got.Values(k))
			}
		}
		for _, k := range []string{"x-webio-token", "webhook-signature"} {
			if len(got.Values(k)) == 0 {
				t.Fatalf("the endpoint received no %s", k)
			}
			// A token keeps its header and claims, never its signature.
			if v := d.Headers[k]; len(v) != 1 || !strings.HasSuffix(v[0], web.RedactedValue) || v[0] == got.Get(k) {
				t.Errorf("%s: header %s: dashboard shows %v, want it redacted", name, k, v)
			}
			sent := got.Get(k)
			if sig := sent[strings.LastIndexAny(sent, ".,")+1:]; strings.Contains(string(it.Data), sig) {
				t.Errorf("%s: the signature of %s reaches the browser: %s", name, k, it.Data)
			}
		}
		for k, v := range configured {
			if got.Get(k) != v {
				t.Fatalf("the endpoint received %s %q, want %q", k, got.Get(k), v)
			}
			if shown := d.Headers[k]; len(shown) != 1 || shown[0] != web.RedactedValue || strings.Contains(string(it.Data), v) {
				t.Errorf("%s: configured header %s: dashboard shows %v, want it redacted", name, k, shown)
			}
		}
	}
	a := call(t, "GET", r.URL()+"/v1/deliveries/"+ans.Deliveries[0].ID, apiKey, nil, nil)
	var v struct {
		Attempts []struct {
			RequestHeaders map[string][]string `json:"request_headers"`
		}
	}
	a.decode(t, &v)
	if len(v.Attempts) != 1 {
		t.Fatalf("API: got %d attempts, want 1: %s", len(v.Attempts), a.Body)
	}
	sent := v.Attempts[0].RequestHeaders
	for _, k := range []string{"webhook-id", "sidehook-delivery", "user-agent"} {
		if fmt.Sprint(sent[k]) != fmt.Sprint(got.Values(k)) {
			t.Errorf("API header %s: got %v, endpoint received %v", k, sent[k], got.Values(k))
		}
	}
	for _, k := range []string{"x-webio-token", "webhook-signature"} {
		if vs := sent[k]; len(vs) != 1 || !strings.HasSuffix(vs[0], web.RedactedValue) {
			t.Errorf("API header %s: got %v, want it redacted", k, vs)
		}
		if strings.Contains(string(a.Body), got.Get(k)) {
			t.Errorf("the API shows %s whole: %s", k, a.Body)
		}
	}
	for k, v := range configured {
		if vs := sent[k]; len(vs) != 1 || vs[0] != web.RedactedValue || strings.Contains(string(a.Body), v) {
			t.Errorf("API configured header %s: got %v, want it redacted", k, vs)
		}
	}
}

func TestTunnelRouteDisabled(t *testing.T) {
	r := startRelay(t, orgConfig(t), relay.Options{})
	for _, tt := range []struct {
		name, key string
		status    int
		code      string
	}{
		{"NoKey", "", http.StatusUnauthorized, "unauthorized"},
		{"NoTunnels", apiKey, http.StatusNotFound, "tunnels_disabled"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			a := call(t, "GET", r.URL()+"/v1/tunnel?name=laptop", tt.key, nil, nil)
			var e struct{ Error, Reason string }
			a.decode(t, &e)
			if a.Status != tt.status || e.Error != tt.code {
				t.Errorf("got %d %s, want %d %s", a.Status, a.Body, tt.status, tt.code)
			}
		})
	}
}

// fakeTunnels is a TunnelServer that records who connected.
type fakeTunnels struct {
	mu    sync.Mutex
	serve []string // org/name
}

var _ relay.TunnelServer = (*fakeTunnels)(nil)

func (f *fakeTunnels) Send(context.Context, *relay.OutboundRequest, int64) (*relay.Response, error) {
	return nil, errors.New("fakeTunnels: no client")
}

func (f *fakeTunnels) Serve(w http.ResponseWriter, _ *http.Request, org, name string, onConnect func([]string)) {
	f.mu.Lock()
	f.serve = append(f.serve, org+"/"+name)
	f.mu.Unlock()
	onConnect(nil)
	w.WriteHeader(http.StatusNoContent)
}

func (f *fakeTunnels) Tunnels(string) []relay.TunnelInfo { return nil }

func TestTunnelRouteServes(t *testing.T) {
	tun := &fakeTunnels{}
	r := startRelay(t, orgConfig(t), relay.Options{Tunnels: tun})
	if a := call(t, "GET", r.URL()+"/v1/tunnel?name=laptop", apiKey, nil, nil); a.Status != http.StatusNoContent {
		t.Fatalf("connect: got %d %s, want the tunnel server's answer", a.Status, a.Body)
	}
	for _, bad := range []string{"", "a/b", "Laptop", "-x", strings.Repeat("x", 64)} {
		if a := call(t, "GET", r.URL()+"/v1/tunnel?name="+bad, apiKey, nil, nil); a.Status != http.StatusBadRequest {
			t.Errorf("name %q: got %d %s, want 400", bad, a.Status, a.Body)
		}
	}
	tun.mu.Lock()
	defer tun.mu.Unlock()
	if fmt.Sprint(tun.serve) != "[demo/laptop]" {
		t.Errorf("served: got %v, want [demo/laptop]", tun.serve)
	}
}

// TestRecordFailureBoundsSends: while no outcome can be recorded (a store
// that still reads but refuses writes), an endpoint gets at most
// max_in_flight requests in flight plus max_in_flight answered and waiting
// to be recorded, not every due delivery.
func TestRecordFailureBoundsSends(t *testing.T) {
	rcv := newSink(t, nil, nil)
	st := newHookStore(t)
	var refuse atomic.Bool
	refuse.Store(true)
	var refused atomic.Int64
	st.record = func(ctx context.Context, d *relay.Delivery, disable string) error {
		if refuse.Load() {
			refused.Add(1)
			return fmt.Errorf("write: %w", relay.ErrDiskFull)
		}
		return st.Store.Record(ctx, d, disable)
	}
	const maxInFlight, events = 2, 20
	sched := []string{"50ms"}
	zero := 0.0
	cfg := orgConfig(t, config.RawEndpoint{ID: "crm", URL: rcv.URL(), MaxInFlight: new(maxInFlight),
		Retry: &config.RawRetry{Schedule: sched, Jitter: &zero}})
	r := startRelay(t, cfg, relay.Options{Store: st})
	var ids []string
	for i := range events {
		ans := ingest(t, r, fmt.Sprintf(`{"type":"payment","n":%d}`, i), nil)
		ids = append(ids, ans.Deliveries[0].ID)
	}
	// Wait until the relay is stuck: every slot waits to record.
	deadline := time.Now().Add(5 * time.Second)
	for refused.Load() < 3*maxInFlight && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if n := len(rcv.requests()); n > 2*maxInFlight {
		t.Fatalf("requests while no outcome could be recorded: got %d, want at most %d", n, 2*maxInFlight)
	}
	refuse.Store(false)
	for _, id := range ids {
		waitDelivery(t, r, id, "delivered", 10*time.Second)
	}
}
