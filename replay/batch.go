package replay

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"golang.org/x/time/rate"

	"github.com/sidehook/sidehook/internal/auth"
)

// Batch replays a selection one request at a time, in order, with the
// same Options for each.
type Batch struct {
	Options
	// Limiter paces the sends; nil sends each as soon as the previous one
	// is answered. A dry run is never paced.
	Limiter *rate.Limiter
	// FailFast stops at the first failure: every item is checked before
	// anything is sent (a *CheckError, and nothing sent, when one cannot
	// be replayed) and Run returns ErrStopped after the first failed
	// replay. Without it, an item that cannot be replayed is reported in
	// its Result, unsent, and the rest go on.
	FailFast bool
	// OnResult, when set, is called after each item with the number done
	// so far and the total, on the goroutine running Run.
	OnResult func(done, total int, r Result)
}

// ErrStopped is Run's error when FailFast stopped it at a failure.
var ErrStopped = errors.New("replay: stopped at the first failure (fail-fast)")

// Need names what an item that cannot be replayed lacks, so a caller can
// name the option that supplies it.
type Need string

// What a NotReplayableError may need.
const (
	NeedTarget    Need = "target"     // a destination (Options.To)
	NeedBody      Need = "body"       // a body to send instead (Options.Body)
	NeedKey       Need = "key"        // the signing key of Scheme (Options.Keys)
	NeedWebhookID Need = "webhook-id" // an original webhook-id, or not signing Scheme
	NeedScheme    Need = "scheme"     // a known scheme name
)

// NotReplayableError is why one item cannot be replayed as asked.
type NotReplayableError struct {
	Need   Need
	Scheme string // for NeedKey, NeedWebhookID and NeedScheme
	Reason string
}

func (e *NotReplayableError) Error() string { return e.Reason }

// ItemError is one item that cannot be replayed as asked.
type ItemError struct {
	ID  string
	Err error
}

// CheckError lists every item that cannot be replayed; Run returns it
// before sending anything.
type CheckError struct{ Items []ItemError }

func (e *CheckError) Error() string {
	const shown = 5
	var b strings.Builder
	fmt.Fprintf(&b, "%d of the selected requests cannot be replayed:", len(e.Items))
	for i, it := range e.Items {
		if i == shown {
			fmt.Fprintf(&b, "; and %d more", len(e.Items)-shown)
			break
		}
		if i > 0 {
			b.WriteString(";")
		}
		fmt.Fprintf(&b, " %s: %v", it.ID, it.Err)
	}
	return b.String()
}

// Check finds, without signing or sending anything, every item that
// would fail before reaching the wire: no usable target, a body that was
// not kept, a scheme without its key, a standard signature without a
// webhook-id. It returns a *CheckError listing them, or nil.
func (b *Batch) Check(items []Item) error {
	var bad []ItemError
	for _, it := range items {
		if err := check(it, b.Options); err != nil {
			bad = append(bad, ItemError{ID: it.ID, Err: err})
		}
	}
	if len(bad) > 0 {
		return &CheckError{Items: bad}
	}
	return nil
}

func check(it Item, opts Options) error {
	if _, err := resolveTarget(it, opts.To); err != nil {
		return &NotReplayableError{Need: NeedTarget, Reason: strings.TrimPrefix(err.Error(), "replay: ")}
	}
	if it.BodyMissing && opts.Body == nil {
		return &NotReplayableError{Need: NeedBody, Reason: strings.TrimPrefix(errBodyMissing.Error(), "replay: ")}
	}
	for _, s := range opts.Schemes {
		noKey := &NotReplayableError{Need: NeedKey, Scheme: s}
		switch s {
		case auth.SchemeWebioToken:
			if opts.Keys.WebioToken == "" {
				noKey.Reason = "sign webio-token: no webio token"
				return noKey
			}
		case auth.SchemeJWT:
			if opts.Keys.JWT == nil {
				noKey.Reason = "sign jwt: no signing key"
				return noKey
			}
		case auth.SchemeStandard:
			if len(opts.Keys.Standard) == 0 {
				noKey.Reason = "sign standard: no standard secret"
				return noKey
			}
			if it.WebhookID == "" && headerValue(it.Header, HeaderWebhookID) == "" {
				return &NotReplayableError{Need: NeedWebhookID, Scheme: s,
					Reason: "sign standard: the original has no webhook-id for the signature to cover"}
			}
		default:
			return &NotReplayableError{Need: NeedScheme, Scheme: s, Reason: fmt.Sprintf("sign: unknown scheme %q", s)}
		}
	}
	return nil
}

// Run replays the items in order. An item that cannot be replayed gets a
// Result with its reason, unsent, and a failed replay is in its Result:
// the rest go on, unless FailFast (see there). When ctx ends, Run returns
// the results so far with ctx's error.
func (b *Batch) Run(ctx context.Context, items []Item) ([]Result, error) {
	if b.FailFast {
		if err := b.Check(items); err != nil {
			return nil, err
		}
	}
	results := make([]Result, 0, len(items))
	for i, it := range items {
		if err := check(it, b.Options); err != nil {
			res := unsent(it, b.Options, err)
			results = append(results, res)
			if b.OnResult != nil {
				b.OnResult(i+1, len(items), res)
			}
			continue
		}
		if b.Limiter != nil && !b.DryRun {
			if err := b.Limiter.Wait(ctx); err != nil {
				if ctx.Err() != nil {
					return results, context.Cause(ctx)
				}
				return results, fmt.Errorf("replay: rate: %w", err)
			}
		}
		if err := ctx.Err(); err != nil {
			return results, context.Cause(ctx)
		}
		res := Send(ctx, it, b.Options)
		results = append(results, res)
		if b.OnResult != nil {
			b.OnResult(i+1, len(items), res)
		}
		if b.FailFast && !res.OK() && !b.DryRun {
			return results, ErrStopped
		}
	}
	return results, nil
}

// unsent is the Result of an item that was not sent because of err.
func unsent(it Item, opts Options, err error) Result {
	res := Result{ID: it.ID, Method: it.Method, Error: err.Error()}
	if res.Method == "" {
		res.Method = http.MethodPost
	}
	if u, rerr := resolveTarget(it, opts.To); rerr == nil {
		res.Target = u.String()
	}
	return res
}

// headerValue is h.Get that also finds a lower-case key, as an item made
// straight from a capture's stored headers has.
func headerValue(h http.Header, name string) string {
	if v := h.Get(name); v != "" {
		return v
	}
	if vs := h[strings.ToLower(name)]; len(vs) > 0 {
		return vs[0]
	}
	return ""
}
