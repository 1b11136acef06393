package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/dustin/go-humanize/english"
	"golang.org/x/time/rate"

	"github.com/sidehook/sidehook/internal/event"
	"github.com/sidehook/sidehook/relay"
	"github.com/sidehook/sidehook/relay/relayapi"
	"github.com/sidehook/sidehook/replay"
)

// relayReplay is a replay through the relay's own POST /v1/replay: the
// relay signs as each endpoint signs, so an API key is the only secret
// the command needs (and `dev --in-memory` keys, which no one can see,
// are enough).
type relayReplay struct {
	base string // --relay
	api  *relayapi.Client
	// bulk makes the one call that replays a whole selection: it has no
	// timeout of its own, as the relay sends every delivery before it
	// answers; run bounds it by timeout for each delivery.
	bulk    *relayapi.Client
	timeout time.Duration
	// filter is the selection as the relay reads it; all says an empty
	// one was meant (--all).
	filter relayapi.Filter
	all    bool
	to     string
	max    int
	// endpointURLs are the endpoints' URLs by id (readEndpointURLs): a
	// replay without --to goes to its endpoint's, and the relay keeps an
	// endpoint's path when --to has none.
	endpointURLs map[string]string
	// endpointOff says, by endpoint id, why a replay cannot go to a
	// disabled endpoint (readEndpointURLs): a dry run notes it.
	endpointOff map[string]string
}

// selected is one delivery a relay replay would touch.
type selected struct {
	relay.DeliveryView
	// skip, when set, is why the delivery is not replayed.
	skip string
}

const skipCustomValue = "custom-value requests are synchronous: not replayed"

// selectDeliveries lists what the relay would replay, oldest first: the
// named deliveries (an event id names all of its own), else the listing
// under the filter, up to max.
func (r *relayReplay) selectDeliveries(ctx context.Context) ([]selected, error) {
	var ds []relay.DeliveryView
	if len(r.filter.IDs) > 0 {
		var unknown []string
		for _, id := range r.filter.IDs {
			got, err := r.byID(ctx, id)
			if relayapi.IsNotFound(err) {
				unknown = append(unknown, id)
				continue
			}
			if err != nil {
				return nil, err
			}
			ds = append(ds, got...)
		}
		if len(unknown) > 0 {
			return nil, &replay.UnknownIDsError{IDs: unknown}
		}
		if len(ds) > r.max {
			return nil, &replay.TooManyError{Max: r.max}
		}
	} else {
		cursor := ""
		for {
			page, err := r.api.Deliveries(ctx, r.filter, relayapi.Page{Limit: 1000, Cursor: cursor})
			if err != nil {
				return nil, err
			}
			ds = append(ds, page.Deliveries...)
			if len(ds) > r.max {
				return nil, &replay.TooManyError{Max: r.max}
			}
			if page.Next == "" {
				break
			}
			cursor = page.Next
		}
		// The listing is newest first; replays go in the order things
		// first happened.
		for i, j := 0, len(ds)-1; i < j; i, j = i+1, j-1 {
			ds[i], ds[j] = ds[j], ds[i]
		}
	}
	out := make([]selected, len(ds))
	for i, d := range ds {
		out[i] = selected{DeliveryView: d}
		if d.Type == string(event.CustomValueRequest) {
			out[i].skip = skipCustomValue
		}
	}
	return out, nil
}

// byID is the deliveries an id names that pass the rest of the filter
// (the relay applies the same filter to ids it is given).
func (r *relayReplay) byID(ctx context.Context, id string) ([]relay.DeliveryView, error) {
	if strings.HasPrefix(id, event.PrefixDelivery) {
		d, err := r.api.Delivery(ctx, id)
		if err != nil {
			return nil, err
		}
		if !r.matches(d) {
			return nil, nil
		}
		if !r.filter.Since.IsZero() || !r.filter.Until.IsZero() {
			ev, err := r.api.Event(ctx, d.EventID)
			if err != nil {
				return nil, err
			}
			if !r.inRange(ev) {
				return nil, nil
			}
		}
		return []relay.DeliveryView{d}, nil
	}
	ev, err := r.api.Event(ctx, id)
	if err != nil {
		return nil, err
	}
	if !r.inRange(ev) {
		return nil, nil
	}
	var out []relay.DeliveryView
	for _, d := range ev.Deliveries {
		if r.matches(d) {
			out = append(out, d)
		}
	}
	return out, nil
}

func (r *relayReplay) matches(d relay.DeliveryView) bool {
	f := r.filter
	return (f.Status == "" || d.Status == f.Status) && (f.Endpoint == "" || d.Endpoint == f.Endpoint) && (f.Type == "" || d.Type == f.Type)
}

func (r *relayReplay) inRange(ev relay.EventView) bool {
	f := r.filter
	return (f.Since.IsZero() || !ev.ReceivedAt.Before(f.Since)) && (f.Until.IsZero() || !ev.ReceivedAt.After(f.Until))
}

// target is where a delivery's replay goes, as the table shows it before
// the relay says (a dry run, a delivery not sent): without --to, its
// endpoint's URL (tunnel://NAME/PATH for a tunnel's), or "endpoint ID"
// for an endpoint no longer there; with it, --to with the endpoint's
// path when it has none of its own (as the relay sends it).
func (r *relayReplay) target(d relay.DeliveryView) string {
	if r.to != "" {
		return relay.ReplayURL(r.to, r.endpointURLs[d.Endpoint])
	}
	if u := r.endpointURLs[d.Endpoint]; u != "" {
		return u
	}
	return "endpoint " + d.Endpoint
}

// readEndpointURLs reads the endpoints' URLs, for target.
func (r *relayReplay) readEndpointURLs(ctx context.Context) error {
	eps, err := r.api.Endpoints(ctx)
	if err != nil {
		return err
	}
	r.endpointURLs = make(map[string]string, len(eps))
	r.endpointOff = make(map[string]string)
	for _, e := range eps {
		r.endpointURLs[e.ID] = e.URL
		if e.Enabled != nil && !*e.Enabled {
			why := e.DisabledReason
			if why == "" {
				why = "-"
			}
			r.endpointOff[e.ID] = fmt.Sprintf("endpoint %s is disabled (%s): enable it, or give --to URL", e.ID, why)
		}
	}
	return nil
}

// unsendable says why the relay would not replay d to its endpoint
// (disabled, or gone), as it says when asked; "" when it would, or when
// --to is given.
func (r *relayReplay) unsendable(d relay.DeliveryView) string {
	if r.to != "" {
		return ""
	}
	if why, ok := r.endpointOff[d.Endpoint]; ok {
		return why
	}
	if _, ok := r.endpointURLs[d.Endpoint]; !ok {
		return fmt.Sprintf("endpoint %s no longer exists: give --to URL", d.Endpoint)
	}
	return ""
}

// outcome is a replay.Result of d from the relay's answer, to the target
// the relay says it sent to when it says so, --to or not.
func (r *relayReplay) outcome(d relay.DeliveryView, res relay.ReplayResult) replayOutcome {
	target := r.target(d)
	if res.Target != "" {
		target = res.Target
	}
	return replayOutcome{Result: replay.Result{ID: d.ID, Target: target, Method: event.Type(d.Type).Method(),
		Status: res.Status, LatencyMS: res.LatencyMS, Error: strings.ReplaceAll(res.Error, relay.ReplayToHint, "give --to URL")}, EventID: d.EventID, Ok: res.OK}
}

// run replays sel. One call carries the whole selection when nothing
// needs the deliveries one at a time; pacing, fail-fast and skipped
// deliveries send them one by one, by id, each under the same filter.
func (r *relayReplay) run(ctx context.Context, sel []selected, limiter *rate.Limiter, failFast bool, onDone func()) ([]replayOutcome, error) {
	oneByOne := limiter != nil || failFast
	for _, s := range sel {
		oneByOne = oneByOne || s.skip != ""
	}
	if !oneByOne {
		bctx, cancel := context.WithTimeout(ctx, r.timeout*time.Duration(len(sel)))
		defer cancel()
		ans, err := r.bulk.Replay(bctx, relayapi.ReplayRequest{Filter: r.filter, To: r.to, All: r.all})
		if err != nil {
			return nil, err
		}
		byID := make(map[string]relay.DeliveryView, len(sel))
		for _, s := range sel {
			byID[s.ID] = s.DeliveryView
		}
		out := make([]replayOutcome, 0, len(ans.Results))
		for _, res := range ans.Results {
			d, ok := byID[res.DeliveryID]
			if !ok {
				// Selected by the relay after the listing: shown as it says.
				d = relay.DeliveryView{ID: res.DeliveryID, EventID: res.EventID}
			}
			out = append(out, r.outcome(d, res))
			onDone()
		}
		return out, nil
	}
	out := make([]replayOutcome, 0, len(sel))
	for _, s := range sel {
		if s.skip != "" {
			out = append(out, replayOutcome{Result: replay.Result{ID: s.ID, Target: r.target(s.DeliveryView), Method: event.Type(s.Type).Method()},
				EventID: s.EventID, Skipped: s.skip})
			onDone()
			continue
		}
		if limiter != nil {
			if err := limiter.Wait(ctx); err != nil {
				return out, context.Cause(ctx)
			}
		}
		if err := ctx.Err(); err != nil {
			return out, context.Cause(ctx)
		}
		f := r.filter
		f.IDs = []string{s.ID}
		ans, err := r.api.Replay(ctx, relayapi.ReplayRequest{Filter: f, To: r.to})
		var o replayOutcome
		switch {
		case err != nil:
			o = r.outcome(s.DeliveryView, relay.ReplayResult{Error: err.Error()})
		case len(ans.Results) == 0:
			o = r.outcome(s.DeliveryView, relay.ReplayResult{Error: "no longer matches the selection; not replayed"})
		default:
			o = r.outcome(s.DeliveryView, ans.Results[0])
		}
		out = append(out, o)
		onDone()
		if failFast && !o.Ok {
			return out, replay.ErrStopped
		}
	}
	return out, nil
}

// printRelayDryRun lists what a relay replay would touch.
func printRelayDryRun(w io.Writer, r *relayReplay, sel []selected, asJSON bool) error {
	type row struct {
		ID       string `json:"id"`
		EventID  string `json:"event_id"`
		Endpoint string `json:"endpoint"`
		Type     string `json:"type"`
		Status   string `json:"status"`
		Target   string `json:"target"`
		Skipped  string `json:"skipped,omitempty"`
	}
	rows := make([]row, len(sel))
	for i, s := range sel {
		skip := s.skip
		if skip == "" {
			skip = r.unsendable(s.DeliveryView)
		}
		rows[i] = row{ID: s.ID, EventID: s.EventID, Endpoint: s.Endpoint, Type: s.Type, Status: s.Status, Target: r.target(s.DeliveryView), Skipped: skip}
	}
	if asJSON {
		return writeReplayJSON(w, struct {
			DryRun     bool  `json:"dry_run"`
			Deliveries []row `json:"deliveries"`
		}{true, rows})
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "DELIVERY\tEVENT\tTYPE\tSTATUS\tTARGET\tNOTE")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", r.ID, r.EventID, r.Type, r.Status, r.Target, r.Skipped)
	}
	tw.Flush()
	_, err := fmt.Fprintf(w, "dry run: %s, nothing sent\n", english.Plural(len(rows), "delivery", "deliveries"))
	return err
}

// relayCodeUnauthorized is the code of a relay's 401 to a missing or
// wrong API key.
const relayCodeUnauthorized = "unauthorized"

// notRelay words the answer of a server that is not a relay, --relay
// given the app's URL or the tunnel's inspector's: its 401 refuses no API
// key (a mock receiver's is for its tokens) and its 404 is a route it
// lacks, not an id.
func (r *relayReplay) notRelay(err error) error {
	var ae *relayapi.Error
	switch {
	case errors.As(err, &ae) && (ae.Status == http.StatusNotFound || ae.Status == http.StatusUnauthorized && ae.Code != relayCodeUnauthorized):
		return fmt.Errorf("%s answered %s %s with HTTP %d, not as a relay does: is it a sidehook relay? %s", r.base, ae.Method, ae.Path, ae.Status, ae.Reason)
	case errors.Is(err, relayapi.ErrNotRelay):
		return fmt.Errorf("%s: %w", r.base, err)
	}
	return relayErr(err)
}

// relayErr explains an API error in one line.
func relayErr(err error) error {
	var ae *relayapi.Error
	if errors.As(err, &ae) && ae.Code != "" {
		return fmt.Errorf("the relay refused: %s (%s)", ae.Reason, ae.Code)
	}
	return err
}
