package receiver

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/sidehook/sidehook/internal/auth"
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
	// Path is a glob with the rules' semantics (a final '*' crosses '/').
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
	return matchGlob(f.Path, c.Path)
}

// empty reports whether the filter selects everything.
func (f Filter) empty() bool { return f == Filter{} }

// parseFilter reads a filter from an admin API query. since is RFC 3339
// or a duration meaning "that long ago" (5m).
func parseFilter(q url.Values, now time.Time) (Filter, error) {
	f := Filter{
		Event:     q.Get("event"),
		Path:      q.Get("path"),
		Method:    q.Get("method"),
		Verdict:   q.Get("verdict"),
		WebhookID: q.Get("webhook_id"),
	}
	if err := checkGlob(f.Path); err != nil {
		return Filter{}, fmt.Errorf("path: %w", err)
	}
	switch f.Verdict {
	case "", auth.StatusValid, auth.StatusInvalid, auth.StatusUnverified:
	default:
		return Filter{}, fmt.Errorf("verdict: %q: want valid, invalid or unverified", f.Verdict)
	}
	if s := q.Get("since"); s != "" {
		t, err := parseSince(s, now)
		if err != nil {
			return Filter{}, err
		}
		f.Since = t
	}
	return f, nil
}

func parseSince(s string, now time.Time) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return time.Time{}, fmt.Errorf("since: %q: want an RFC 3339 time or a duration such as 5m", s)
	}
	return now.Add(-d), nil
}

// parseLimit reads limit: DefaultLimit when absent, at most MaxLimit.
func parseLimit(s string) (int, error) {
	if s == "" {
		return DefaultLimit, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 {
		return 0, fmt.Errorf("limit: %q: want a number from 1 to %d", s, MaxLimit)
	}
	return min(n, MaxLimit), nil
}
