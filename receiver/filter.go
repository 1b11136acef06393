package receiver

import (
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strings"
	"time"

	"golang.org/x/net/http/httpguts"

	"github.com/sidehook/sidehook/internal/auth"
	"github.com/sidehook/sidehook/internal/event"
	"github.com/sidehook/sidehook/internal/httpjson"
	"github.com/sidehook/sidehook/internal/units"
)

// List limits of the requests API.
const (
	DefaultLimit = 100
	MaxLimit     = 1000
)

// Filter selects captures; every field set must match. It is the query of
// GET /_sidehook/requests (event, path, method, verdict, webhook_id, since).
type Filter struct {
	Event string
	// Path is a glob with the rules' semantics (a final '*' crosses '/'),
	// matched against the path as sent, then decoded (see matchPath).
	Path string
	// Method is compared case-insensitively.
	Method string
	// Verdict is the verdict status: valid, invalid or unverified.
	Verdict   string
	WebhookID string
	// Since keeps captures received at or after it.
	Since time.Time
}

// Match reports whether c passes the filter.
func (f Filter) Match(c *Capture) bool {
	if f.Event != "" && c.Event != f.Event {
		return false
	}
	if f.Method != "" && !strings.EqualFold(c.Method, f.Method) {
		return false
	}
	if f.Verdict != "" && c.Verdict.Status != f.Verdict {
		return false
	}
	if f.WebhookID != "" && c.WebhookID != f.WebhookID {
		return false
	}
	if !f.Since.IsZero() && c.ReceivedAt.Before(f.Since) {
		return false
	}
	return matchPath(f.Path, c.Path)
}

// Validate reports a filter that could match no capture, saying what to
// write instead: a path glob that is malformed or lacks its leading
// slash, a verdict other than valid, invalid or unverified, a method that
// is not a method, an event that is not an event type name (a built-in
// payload's type, such as inboundMessage, names its event type). Wait,
// List, Count and the admin API refuse such a filter rather than find
// nothing.
func (f Filter) Validate() error {
	if err := checkGlob(f.Path); err != nil {
		return fmt.Errorf("path: %w", err)
	}
	if strings.HasPrefix(f.Path, AdminPrefix) {
		return fmt.Errorf("path: %q is under %s, the receiver's own API, whose requests are never captured", f.Path, AdminPrefix)
	}
	switch f.Verdict {
	case "", auth.StatusValid, auth.StatusInvalid, auth.StatusUnverified:
	default:
		return fmt.Errorf("verdict: %q: want valid, invalid or unverified", f.Verdict)
	}
	if err := checkMethod(f.Method); err != nil {
		return fmt.Errorf("method: %w", err)
	}
	if err := checkEvent(f.Event); err != nil {
		return fmt.Errorf("event: %w", err)
	}
	return nil
}

// checkMethod refuses a method no request is sent with, a filter's or a
// rule's alike; "" is no condition. "*" is a token, so a method in HTTP's
// grammar, but one written as a wildcard, which it is not.
func checkMethod(m string) error {
	switch {
	case m == "":
		return nil
	case m == "*":
		return fmt.Errorf("%q is no wildcard (it matches only a method named *): leave method out to match any", m)
	case !httpguts.ValidHeaderFieldName(m):
		return fmt.Errorf("%q is not an HTTP method", m)
	}
	return nil
}

// checkEvent refuses what no capture's event can be, a filter's or a
// rule's alike, naming the event type of a built-in payload's type
// (inboundMessage for inbound_message); "" is no condition.
func checkEvent(name string) error {
	if name == "" || event.ValidName(name) {
		return nil
	}
	if t, ok := event.FromPayloadType(name); ok {
		return fmt.Errorf("%q is a payload's type: its event type is %s", name, t)
	}
	return fmt.Errorf("%q is not an event type name (such as payment or order.created)", name)
}

// filterParams are the query parameters of a Filter.
var filterParams = []string{"event", "path", "method", "verdict", "webhook_id", "since"}

// parseFilter reads a filter from an admin API query whose other
// parameters may be only those named in extra: a misspelt parameter is an
// error naming it, not a filter silently ignored. since is an RFC 3339
// time, unix seconds or a duration meaning "that long ago" (5m).
func parseFilter(q url.Values, now time.Time, extra ...string) (Filter, error) {
	if err := checkParams(q, append(slices.Clone(filterParams), extra...)...); err != nil {
		return Filter{}, err
	}
	f := Filter{
		Event:     q.Get("event"),
		Path:      q.Get("path"),
		Method:    q.Get("method"),
		Verdict:   q.Get("verdict"),
		WebhookID: q.Get("webhook_id"),
	}
	if err := f.Validate(); err != nil {
		return Filter{}, err
	}
	if s := q.Get("since"); s != "" {
		t, err := units.ParseSince(s, now)
		if err != nil {
			return Filter{}, fmt.Errorf("since: %w", err)
		}
		f.Since = t
	}
	return f, nil
}

// checkParams refuses a query parameter not named in known: a misspelt
// one is an error naming it, never silently ignored. So is one given more
// than once: only the first would be read (event=a&event=b is not "a or
// b", and id=a&id=b would delete only a).
func checkParams(q url.Values, known ...string) error {
	for _, name := range slices.Sorted(maps.Keys(q)) {
		if slices.Contains(known, name) {
			if n := len(q[name]); n > 1 {
				return fmt.Errorf("query parameter %q given %d times: give it once", name, n)
			}
			continue
		}
		if len(known) == 0 {
			return fmt.Errorf("unknown query parameter %q: this call takes none", name)
		}
		return fmt.Errorf("unknown query parameter %q: want one of %s", name, strings.Join(known, ", "))
	}
	return nil
}

// ParseLimit reads a list's limit parameter: DefaultLimit when absent, at
// most MaxLimit. The tunnel inspector's list, which the same page reads,
// takes it too.
func ParseLimit(s string) (int, error) {
	return httpjson.ParseLimit(s, DefaultLimit, MaxLimit)
}
