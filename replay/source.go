package replay

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// DefaultMax is how many items a selection may hold unless Selection.Max
// says otherwise: a filter that matches more is more likely a mistake
// than a wish to send them all.
const DefaultMax = 10_000

// Selection says which requests to replay. Every field set must match;
// IDs, when given, are looked up one by one and then filtered like the
// rest.
type Selection struct {
	IDs   []string
	Event string
	// Since and Until bound the original's time, both inclusive.
	Since, Until time.Time
	// Status is a relay delivery status (pending, delivering, delivered,
	// failed, dead); only relay deliveries have it, and the relay applies
	// it itself (POST /v1/replay).
	Status string
	// Verdict is a capture's verdict status (valid, invalid, unverified);
	// only captures have it.
	Verdict string
	// Max bounds the items selected (DefaultMax when 0); more is an
	// error, never a silent cut.
	Max int
}

// Limit is the most items the selection may hold.
func (s Selection) Limit() int {
	if s.Max > 0 {
		return s.Max
	}
	return DefaultMax
}

// inRange reports whether t is within Since and Until.
func (s Selection) inRange(t time.Time) bool {
	if !s.Since.IsZero() && t.Before(s.Since) {
		return false
	}
	return s.Until.IsZero() || !t.After(s.Until)
}

// MatchCapture applies the selection's filters (not its ids) to c.
func (s Selection) MatchCapture(c *Capture) bool {
	if s.Event != "" && c.Event != s.Event {
		return false
	}
	if s.Verdict != "" && c.Verdict != s.Verdict {
		return false
	}
	return s.inRange(c.ReceivedAt)
}

// Source finds the requests a selection names, oldest first (or in the
// order of Selection.IDs), ready to replay. It sends nothing.
type Source interface {
	Select(ctx context.Context, sel Selection) ([]Item, error)
}

// UnknownIDsError lists the ids a source does not have.
type UnknownIDsError struct{ IDs []string }

func (e *UnknownIDsError) Error() string {
	if len(e.IDs) == 1 {
		return "unknown id: " + e.IDs[0]
	}
	return fmt.Sprintf("%d unknown ids: %s", len(e.IDs), strings.Join(e.IDs, ", "))
}

// TooManyError is a selection over its Max.
type TooManyError struct{ Max int }

func (e *TooManyError) Error() string {
	return fmt.Sprintf("the selection matches more than %d requests: narrow it or raise the maximum", e.Max)
}

// ErrUnsupportedFilter is returned for a filter the source does not have
// (a delivery status on captures, a verdict on relay deliveries).
var ErrUnsupportedFilter = errors.New("replay: filter not supported by this source")

// UniqueIDs drops repeats, keeping the first of each: naming an id twice
// does not send it twice.
func UniqueIDs(ids []string) []string {
	seen := make(map[string]bool, len(ids))
	out := make([]string, 0, len(ids))
	for _, id := range ids {
		if !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	return out
}
