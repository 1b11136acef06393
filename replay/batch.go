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
	// OnResult, when set, is called after each item with the number done
	// so far and the total, on the goroutine running Run.
	OnResult func(done, total int, r Result)
}

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
		return errors.New(strings.TrimPrefix(err.Error(), "replay: "))
	}
	if it.BodyMissing && opts.Body == nil {
		return errors.New(strings.TrimPrefix(errBodyMissing.Error(), "replay: "))
	}
	for _, s := range opts.Schemes {
		switch s {
		case auth.SchemeWebioToken:
			if opts.Keys.WebioToken == "" {
				return errors.New("sign webio-token: no webio token")
			}
		case auth.SchemeJWT:
			if opts.Keys.JWT == nil {
				return errors.New("sign jwt: no signing key")
			}
		case auth.SchemeStandard:
			if len(opts.Keys.Standard) == 0 {
				return errors.New("sign standard: no standard secret")
			}
			if it.WebhookID == "" && headerValue(it.Header, HeaderWebhookID) == "" {
				return errors.New("sign standard: the original has no webhook-id for the signature to cover")
			}
		default:
			return fmt.Errorf("sign: unknown scheme %q", s)
		}
	}
	return nil
}

// Run checks every item (a *CheckError, and nothing sent, when one cannot
// be replayed), then replays them in order. A failed replay is in its
// Result and the rest go on. When ctx ends, Run returns the results so far
// with ctx's error.
func (b *Batch) Run(ctx context.Context, items []Item) ([]Result, error) {
	if err := b.Check(items); err != nil {
		return nil, err
	}
	results := make([]Result, 0, len(items))
	for i, it := range items {
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
	}
	return results, nil
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
