package receiver

import (
	"context"
	"errors"

	"github.com/sidehook/sidehook/internal/units"
)

// Store is what the receiver needs of its storage, in the receiver's words.
// Two implementations exist: receiver/badgerstore (durable, the default)
// and receiver/memstore (--in-memory, receivertest); receiver/storetest is
// the conformance suite both pass. The receiver does not open or close its
// store: whoever made it does, after the receiver has closed.
//
// Captures are ordered by id. A capture id is "cap_" and a ULID made when
// the request arrived, so id order is arrival order and newest first is
// descending id; an id is also its own cursor.
//
// A Store is safe for concurrent use.
type Store interface {
	// Append stores c. When it returns nil, c is durable (for a durable
	// store) and every later read sees it. Once begun, the write is not cut
	// short by ctx: the request's client going away does not lose its
	// capture.
	//
	// Append decides c.DuplicateOf, overwriting what the caller set: ""
	// when c.WebhookID is empty or c is the first capture of its webhook-id
	// the store holds, else the id of that first capture. Of concurrent
	// appends of one new webhook-id, exactly one is the first. Webhook-ids
	// of any length are indexed.
	Append(ctx context.Context, c *Capture) error

	// SetResponse replaces what the capture with that id records of the
	// answer: the receiver stores a capture before answering, and learns
	// only afterwards when the answer did not reach its client (Close cut
	// the connection). It returns an error wrapping ErrNotFound when the
	// capture is not held (deleted meanwhile: it stays deleted). Once
	// begun, the write is not cut short by ctx.
	SetResponse(ctx context.Context, id string, r CaptureResponse) error

	// BodyLimit says what the store holds of one capture: a request body
	// of up to MaxBody bytes beside the rest of the capture. Beyond what
	// it can hold Append fails with ErrTooLarge. New refuses a
	// Config.MaxBody above MaxBody.
	BodyLimit() StoreLimit

	// Get returns one capture, or an error wrapping ErrNotFound.
	Get(ctx context.Context, id string) (Capture, error)

	// List returns up to q.Limit captures matching q.Filter (all of them
	// when q.Limit <= 0), newest first or, with q.Oldest, oldest first,
	// starting strictly after q.After when it is set (a capture id, which
	// need not be stored any more). next is the id of the last capture
	// returned when at least one more matching capture follows it, else "".
	List(ctx context.Context, q Query) (caps []Capture, next string, err error)

	// Count returns how many captures match f.
	Count(ctx context.Context, f Filter) (int, error)

	// DeleteAll deletes every capture and forgets every webhook-id: the
	// next capture of any webhook-id is a first one.
	DeleteAll(ctx context.Context) error

	// Err reports what keeps the store from taking captures right now, or
	// nil: an error wrapping ErrDiskFull, or one wrapping ErrStoreFailed
	// (only a restart helps).
	Err() error
}

// StoreLimit is what a Store holds of one capture (Store.BodyLimit);
// its Check(maxBody, "capture") refuses a larger Config.MaxBody, which
// New does, and a caller that names the setting (a flag) before it
// opens the store.
type StoreLimit = units.StoreLimit

// Query selects a page of captures for Store.List.
type Query struct {
	Filter Filter
	// After is a cursor: a capture id, "" for the start.
	After string
	// Limit bounds the page; <= 0 means no bound.
	Limit int
	// Oldest lists oldest first instead of newest first.
	Oldest bool
}

// Errors a Store's methods wrap.
var (
	// ErrNotFound is returned for a capture id the store does not hold.
	ErrNotFound = errors.New("capture not found")
	// ErrDiskFull is returned while the store's disk is too full to take
	// captures; it clears when space is freed.
	ErrDiskFull = errors.New("disk full")
	// ErrStoreFailed is returned once the store can take no more captures
	// until it is reopened.
	ErrStoreFailed = errors.New("store failed")
	// ErrTooLarge is returned by Append for a capture the store cannot
	// hold however often it is tried (over a Badger value log file): the
	// receiver keeps the request without its body and answers 413.
	ErrTooLarge = errors.New("too large for the store")
)
