package tunnel

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strings"
	"sync"
	"time"

	"github.com/sidehook/sidehook/internal/event"
	"github.com/sidehook/sidehook/relay"
)

// printer writes the client's lines to Stdout, as text or JSON lines, one
// whole line per write so concurrent deliveries never interleave.
type printer struct {
	mu   sync.Mutex
	w    io.Writer
	json bool
	// loc is the clock of the text lines; nil means the local time zone,
	// the console log's (JSON lines are UTC).
	loc *time.Location
	// readied is the last ready line printed: a reconnect to the same
	// tunnel, as before, is one text line.
	readied *ReadyLine
}

func (p *printer) line(v any, text string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.json {
		b, err := json.Marshal(v)
		if err != nil {
			return
		}
		p.w.Write(append(b, '\n'))
		return
	}
	io.WriteString(p.w, text+"\n")
}

// ReadyLine is the ready line, as --json prints it.
type ReadyLine struct {
	Type  string `json:"type"` // "ready"
	Name  string `json:"name"`
	Org   string `json:"org"`
	Relay string `json:"relay"`
	// Forward is empty when the client only prints this line
	// (PrintSecret).
	Forward string `json:"forward,omitempty"`
	// SkipVerify says the Forward app's certificate is not checked
	// (--skip-verify).
	SkipVerify bool   `json:"skip_verify,omitempty"`
	PublicURL  string `json:"public_url"`
	// Events is the --events filter; empty means all.
	Events    []string       `json:"events,omitempty"`
	Endpoints []EndpointAuth `json:"endpoints"`
	JWKSURL   string         `json:"jwks_url"`
	Inspector string         `json:"inspector,omitempty"`
	// Warning says why deliveries may not come (no endpoint uses the
	// tunnel, or the endpoints could not be read).
	Warning string `json:"warning,omitempty"`
}

// EndpointAuth is an endpoint of the tunnel and how the local app checks
// its deliveries.
type EndpointAuth struct {
	ID     string   `json:"id"`
	URL    string   `json:"url"`
	Events []string `json:"events"`
	Auth   []string `json:"auth"`
	// Verify says, per scheme, what the app verifies with.
	Verify []string `json:"verify"`
	// Enabled is false for an endpoint the relay delivers nothing to
	// (one answered 410 Gone), with the relay's DisabledReason.
	Enabled        *bool  `json:"enabled,omitempty"`
	DisabledReason string `json:"disabled_reason,omitempty"`
}

// deliveryLine is one forwarded delivery, or a replay of one from the
// inspector, as --json prints it.
type deliveryLine struct {
	// Type is "delivery", "replay" when ReplayOf is set, or "test" for
	// an endpoint test.
	Type string `json:"type"`
	// ID is the inspector's record of the forward (fwd_…), the id a
	// later line's replay_of and the inspector's replay API name; none
	// with --inspect=false.
	ID         string    `json:"id,omitempty"`
	Time       time.Time `json:"time"`
	Event      string    `json:"event"`
	DeliveryID string    `json:"delivery_id"`
	// Attempt is the relay's attempt a delivery is; a replay's and a
	// test's is left out: the relay sends the number of the delivery's
	// next attempt, which they are not.
	Attempt int `json:"attempt,omitempty"`
	// ReplayOf is what a replay repeats: the inspector's record (the
	// terminal shows what the developer resent, not only what the relay
	// sent), or the relay's sidehook-replay-of.
	ReplayOf string `json:"replay_of,omitempty"`
	// Test is set for an endpoint test (sidehook-test: true).
	Test   bool   `json:"-"`
	Method string `json:"method"`
	Path   string `json:"path"`
	// To is the URL a replay from the inspector was sent to with "to",
	// other than the --forward app: the text line shows it in place of
	// the path, which is the recorded request's.
	To         string  `json:"to,omitempty"`
	Status     int     `json:"status"`
	DurationMS float64 `json:"duration_ms"`
	Truncated  bool    `json:"truncated,omitempty"`
	// HeadersDropped counts the answer's header values dropped to fit
	// MaxResultHeaders.
	HeadersDropped int `json:"headers_dropped,omitempty"`
	// Location is where a 3xx answer points: the tunnel, as the relay,
	// follows no redirect, so the line says where it led.
	Location string `json:"location,omitempty"`
	Error    string `json:"error,omitempty"`
	// ResultLost says the app's answer never reached the relay (the
	// connection was lost first): the relay records no answer and sends
	// the delivery again.
	ResultLost bool `json:"result_lost,omitempty"`
}

func (p *printer) ready(r ReadyLine) {
	r.Type = "ready"
	p.mu.Lock()
	again := p.readied != nil && reflect.DeepEqual(*p.readied, r)
	p.readied = &r
	p.mu.Unlock()
	if again {
		// Still a ready line with the public URL (SPEC §8); how to
		// verify is as printed above.
		p.line(r, fmt.Sprintf("ready  reconnected to %s, as before: platforms post to POST %s", r.Relay, r.PublicURL))
		return
	}
	var b strings.Builder
	fmt.Fprintf(&b, "ready  tunnel %q of %s connected to %s", r.Name, r.Org, r.Relay)
	if r.Forward != "" {
		fmt.Fprintf(&b, ", forwarding to %s", r.Forward)
		if r.SkipVerify {
			b.WriteString(" (its certificate not checked: --skip-verify)")
		}
	}
	if len(r.Events) > 0 {
		fmt.Fprintf(&b, " (events: %s)", strings.Join(r.Events, ","))
	}
	fmt.Fprintf(&b, "\n       platforms post to: POST %s", r.PublicURL)
	for _, e := range r.Endpoints {
		fmt.Fprintf(&b, "\n       endpoint %s (%s): %s", e.ID, e.URL, strings.Join(e.Verify, "; "))
	}
	if r.Inspector != "" {
		fmt.Fprintf(&b, "\n       inspector: %s", r.Inspector)
	}
	if r.Warning != "" {
		fmt.Fprintf(&b, "\n       warning: %s", r.Warning)
	}
	p.line(r, b.String())
}

func (p *printer) delivery(d deliveryLine) {
	d.Type = "delivery"
	status := fmt.Sprint(d.Status)
	if d.Status == 0 {
		status = "ERR"
	}
	what := fmt.Sprintf("attempt %d", d.Attempt)
	if d.ReplayOf != "" {
		d.Type, what = "replay", "replay of "+d.ReplayOf
	} else if d.Test {
		d.Type, what = "test", "test"
	}
	loc := p.loc
	if loc == nil {
		loc = time.Local
	}
	where := orDash(d.Path)
	if d.To != "" {
		where = d.To
	}
	// The user's clock, as on the log lines beside it.
	text := fmt.Sprintf("%s  %-20s %s  %7.1fms  %s  %s %s  %s", d.Time.In(loc).Format("15:04:05.000"), orDash(d.Event), status,
		d.DurationMS, what, d.Method, where, d.DeliveryID)
	if d.Truncated {
		text += "  (answer cut at 64 KiB)"
	}
	if d.Location != "" {
		text += fmt.Sprintf("  (redirect to %s, not followed: the relay follows none either)", d.Location)
	}
	if d.HeadersDropped > 0 {
		text += fmt.Sprintf("  (%d answer headers dropped: over %d KiB)", d.HeadersDropped, MaxResultHeaders>>10)
	}
	if d.Error != "" {
		text += "  " + d.Error
	}
	if d.ResultLost {
		text += "  (answer not sent back: the connection to the relay was lost, so it sends the delivery again)"
	}
	// An attempt answered 410 disables the endpoint (SPEC §4): without
	// this, the deliveries after it just stop coming. A replay, a test
	// and a custom-value GET are no attempt and disable nothing.
	if d.Status == http.StatusGone && d.Type == "delivery" && d.Event != string(event.CustomValueRequest) && !d.ResultLost {
		text += "  (410 Gone: the relay disables this endpoint; nothing more comes until it is enabled again)"
	}
	p.line(d, text)
}

// retryLine says why the client is not connected and when it dials
// again, as --json prints it. Type tells the two cases apart:
// "connect_failed" when the dial never got the relay's ready (the relay
// down or refusing for now), "disconnected" when a connection that was
// ready is lost.
type retryLine struct {
	Type    string  `json:"type"`
	Error   string  `json:"error"`
	RetryIn float64 `json:"retry_in_s"`
}

// retrying prints the retryLine of a session that ended with err, ready
// saying whether the relay had said ready.
func (p *printer) retrying(err error, wait time.Duration, ready bool) {
	reason := "connection lost"
	if err != nil {
		reason = err.Error()
	}
	v := retryLine{Type: "disconnected", Error: reason, RetryIn: wait.Round(time.Millisecond).Seconds()}
	what := "disconnected"
	if !ready {
		v.Type, what = "connect_failed", "cannot connect"
	}
	p.line(v, fmt.Sprintf("%s: %s; retrying in %s", what, reason, wait.Round(time.Millisecond)))
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// readyInfo gathers what the ready line says: the facts of the relay's
// ready message and, from GET /v1/endpoints, the tunnel's endpoints and
// their auth schemes.
func (c *Client) readyInfo(ctx context.Context, rm *Message) ReadyLine {
	r := ReadyLine{Name: rm.Name, Org: rm.Org, Relay: c.relay.Redacted(), PublicURL: rm.PublicURL,
		Events: c.cfg.Events, JWKSURL: rm.JWKSURL, Inspector: c.InspectorURL(), Endpoints: []EndpointAuth{}}
	if c.forward != nil {
		r.Forward = c.forward.String()
		// An http:// app has no certificate to skip (the variable may be
		// set for every tunnel).
		r.SkipVerify = c.cfg.SkipVerify && c.forward.Scheme == "https"
	}
	eps, err := c.endpoints(ctx)
	switch {
	case err != nil:
		r.Warning = "could not list the tunnel's endpoints: " + err.Error()
	case len(eps) == 0:
		r.Warning = fmt.Sprintf("no endpoint of %s has url tunnel://%s yet: nothing is delivered here until one does", rm.Org, c.cfg.Name)
	default:
		var warnings []string
		for _, e := range eps {
			e.Verify = verifyHints(e.Auth, rm.JWKSURL)
			r.Endpoints = append(r.Endpoints, e)
			if e.Enabled != nil && !*e.Enabled {
				warnings = append(warnings, fmt.Sprintf("endpoint %s is disabled (%s): nothing is delivered to it until it is enabled again (PUT /v1/endpoints/%s with \"enabled\": true)",
					e.ID, orDash(e.DisabledReason), e.ID))
			}
			// A filter that leaves out every type of an endpoint (a typo,
			// "payments") would otherwise look like no events at all.
			if !relay.TakesAny(c.cfg.Events, e.Events) {
				warnings = append(warnings, fmt.Sprintf("--events %s takes none of the events of endpoint %s (%s): its deliveries wait for a client that takes them",
					strings.Join(c.cfg.Events, ","), e.ID, strings.Join(e.Events, ", ")))
			}
		}
		r.Warning = strings.Join(warnings, "; ")
	}
	return r
}

// verifyHints says, for each auth scheme of SPEC §3, what a receiver
// checks and with which key. Secrets are never printed: the relay's API
// does not hand them out, and they are the organisation's own.
func verifyHints(schemes []string, jwks string) []string {
	if len(schemes) == 0 {
		return []string{"unsigned (no auth scheme)"}
	}
	out := make([]string, 0, len(schemes))
	for _, s := range schemes {
		switch s {
		case "webio-token":
			out = append(out, "webio-token: x-webio-token, HS256 with the organisation's secret_key")
		case "jwt":
			out = append(out, "jwt: Authorization Bearer, keys at "+jwks+" (or the secret_key for HS256)")
		case "standard":
			out = append(out, "standard: webhook-signature, the organisation's standard_secret (whsec_…)")
		default:
			out = append(out, s)
		}
	}
	return out
}

// endpoints lists the organisation's endpoints whose url is this tunnel.
func (c *Client) endpoints(ctx context.Context) ([]EndpointAuth, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	u := *c.relay
	u.Path = strings.TrimSuffix(u.Path, "/") + "/v1/endpoints"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+c.cfg.APIKey)
	req.Header.Set("Accept", "application/json")
	resp, err := c.api.Do(req)
	if err != nil {
		return nil, fmt.Errorf("GET /v1/endpoints: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusUnauthorized {
		return nil, fmt.Errorf("GET /v1/endpoints: %w", ErrUnauthorized)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET /v1/endpoints: HTTP %d", resp.StatusCode)
	}
	var list struct {
		Endpoints []EndpointAuth `json:"endpoints"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 8<<20)).Decode(&list); err != nil {
		return nil, fmt.Errorf("GET /v1/endpoints: %w", err)
	}
	var out []EndpointAuth
	for _, e := range list.Endpoints {
		if name, _, _, err := ParseURL(e.URL); err == nil && name == c.cfg.Name {
			out = append(out, e)
		}
	}
	return out, nil
}

// PrintSecret prints what the local app needs to verify the tunnel's
// deliveries (its endpoints' auth schemes, the JWKS URL, the public URL)
// and returns. It asks the relay without becoming a tunnel client, so no
// delivery is sent its way.
func (c *Client) PrintSecret(ctx context.Context) error {
	ws, rm, err := c.dial(ctx, true)
	if err != nil {
		var perm *permanentError
		if errors.As(err, &perm) {
			return perm.err
		}
		return err
	}
	ws.Close()
	r := c.readyInfo(ctx, rm)
	r.Inspector = ""
	c.out.ready(r)
	return nil
}
