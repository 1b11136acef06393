package relay

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/sidehook/sidehook/relay/config"
)

// Store is what the relay needs of its storage, in the relay's words. Three
// implementations exist: relay/badgerstore (the durable default),
// relay/memstore (--in-memory, tests) and relay/natsstore (several relays on
// one NATS JetStream). relay/storetest is the conformance suite each passes.
//
// Every write method is durable when it returns nil, and once begun it is not
// cut short by ctx: a caller whose context ends may get ctx's error, but the
// write either lands whole or not at all, and the caller must treat a
// non-nil error from Accept as "maybe stored" (the relay re-reads by id).
//
// Times are stored with nanosecond precision and returned in UTC.
type Store interface {
	// Accept stores ev with its deliveries in one atomic durable write:
	// each pending, due at its NextAttemptAt, or final already with none
	// (a recorded custom-value exchange), never queued (CheckAccepted). When ev.Org already has an
	// event with ev.ID, nothing is written and Accept returns the stored
	// event and ErrDuplicate (idempotency by webhook-id; the relay compares
	// hashes). Otherwise it returns ev.
	Accept(ctx context.Context, ev *Event, ds []*Delivery) (*Event, error)
	// BodyLimit says what the store holds of one event: Accept stores a
	// body of up to MaxBody bytes beside up to BodyLimitFanOut deliveries.
	// Beyond what it can hold Accept fails with ErrTooLarge. The relay
	// refuses a limits.max_body above MaxBody.
	BodyLimit() config.StoreLimit

	// Event and Delivery read one record, or return ErrNotFound.
	Event(ctx context.Context, org, id string) (*Event, error)
	Delivery(ctx context.Context, org, id string) (*Delivery, error)
	// Events lists an organisation's events, newest first.
	Events(ctx context.Context, org string, f EventFilter) (Page[*Event], error)
	// Deliveries lists an organisation's deliveries, newest first, with
	// Attempting set on those the store holds leased.
	Deliveries(ctx context.Context, org string, f DeliveryFilter) (Page[*Delivery], error)

	// Take leases up to n deliveries of one endpoint that are due at now
	// (NextAttemptAt <= now), in due order: by NextAttemptAt then id, or by
	// creation then id when the endpoint is ordered (see Endpoint). A leased
	// delivery is not returned by Take again until Record or Release ends
	// its lease (or, for a shared store, its lease times out). Leases of a
	// local store do not outlive the process: after a restart everything
	// waiting is due again. Nothing passes a waiting ordered delivery:
	// while it is leased or not due yet, Take returns nothing after it in
	// due order (the head of a FIFO in flight or waiting). Next is the
	// earliest NextAttemptAt among the endpoint's unleased waiting
	// deliveries that are not due yet (zero when there are none; a shared
	// store whose ordered head is leased, maybe by a relay that died, may
	// give when that lease lapses); the dispatcher sleeps until then
	// unless woken. When Take returns n
	// deliveries it may stop looking, and next may then be zero.
	Take(ctx context.Context, ref EndpointRef, now time.Time, n int) (deliveries []*Delivery, next time.Time, err error)
	// Record stores a leased delivery's new state (its Attempts with the
	// new one appended, Status, NextAttemptAt) and ends the lease. Status
	// failed keeps it waiting until NextAttemptAt (an ordered endpoint keeps
	// its place at the head); delivered and dead take it out of the
	// endpoint's queue. When disable is not empty the endpoint is marked
	// disabled with that reason in the same write (an answer 410). A
	// delivery ended during its attempt (EndWaiting) stays dead: an
	// outcome that would wait is stored dead with the end's reason. One
	// requeued during its attempt (Requeue) is stored pending, the attempt
	// kept. Either way Record sets d's Status, NextAttemptAt, Base and
	// Reason to the state stored, for the caller to report and count what
	// will happen rather than the attempt's outcome alone.
	Record(ctx context.Context, d *Delivery, disable string) error
	// Release ends a lease without an attempt (the relay is stopping, the
	// endpoint's tunnel has no client, the endpoint was disabled, the event
	// could not be read): the delivery is due again as it was. A lease
	// that lapsed and another relay retook is that relay's: releasing it
	// changes nothing.
	Release(ctx context.Context, d *Delivery) error
	// Requeue makes one delivery, whatever its state, pending and due at
	// now, with Base set to its number of attempts so the retry schedule
	// starts again (a manual retry). A leased delivery is requeued once its
	// lease ends: it is never attempted twice at once.
	Requeue(ctx context.Context, org, id string, now time.Time) (*Delivery, error)
	// Expedite makes every failed delivery of the endpoint that waits for a
	// later retry due at now (a tunnel client connected) and returns how
	// many it moved. Only deliveries of an event type that types takes
	// (event.Takes: every type when types is empty or holds "*") move:
	// a client that refuses the others (tunnel --events) would only burn
	// one of their retries each. Ordered endpoints keep their order.
	Expedite(ctx context.Context, ref EndpointRef, now time.Time, types []string) (int, error)
	// Waiting counts each endpoint's waiting deliveries (pending, failed or
	// leased, not final). The relay reads it once at start and keeps the
	// counts in memory after that; a shared store may answer approximately.
	Waiting(ctx context.Context) (map[EndpointRef]int64, error)

	// Endpoints returns the endpoints created through the API and the
	// run-time disabled marks of an organisation.
	Endpoints(ctx context.Context, org string) ([]StoredEndpoint, error)
	// PutEndpoint stores an API endpoint's document (config.RawEndpoint as
	// JSON) and clears its disabled mark.
	PutEndpoint(ctx context.Context, org, id string, doc []byte) error
	// SetDisabled marks an endpoint disabled with a reason, or clears the
	// mark when reason is empty. It applies to file endpoints too.
	SetDisabled(ctx context.Context, org, id, reason string) error
	// DeleteEndpoint removes an API endpoint and its disabled mark, then
	// ends its waiting deliveries as EndWaiting does, with reason, telling
	// ended of them. Cut short (an error), it may have done part: calling
	// it again finishes the work, and so does EndWaiting.
	DeleteEndpoint(ctx context.Context, org, id, reason string, ended func([]*Delivery)) error
	// EndWaiting ends every waiting delivery of an endpoint that no longer
	// exists (deleted, or gone from the configuration file): each becomes
	// dead, with no NextAttemptAt and Reason set to reason, its attempts
	// as they were, and leaves the endpoint's queue, so that an endpoint
	// made again with the same id takes none of them. A leased one is
	// ended too, at once; the Record of its attempt still appends the
	// attempt and keeps a final outcome (delivered, dead), but an outcome
	// that would wait (failed) stays dead with the reason, and its Release
	// leaves it dead. It returns how many deliveries it ended; calling it
	// again ends what arrived since. Cut short, it may have ended some:
	// the others still wait, and a later call ends them.
	//
	// ended, when not nil, is told of the deliveries as they end, so the
	// relay can publish them as it publishes any change of state: after
	// each durable write, with the deliveries that write ended, as stored,
	// each once, and before EndWaiting returns. The store keeps no
	// reference to them. It may be called with the store's locks held: it
	// must not block or call the store.
	EndWaiting(ctx context.Context, ref EndpointRef, reason string, ended func([]*Delivery)) (int, error)

	// Token returns an organisation's current Webio token ("" when none).
	Token(ctx context.Context, org string) (string, error)
	// PutToken stores an organisation's Webio token.
	PutToken(ctx context.Context, org, token string) error

	// SigningKeys returns every stored signing key document, by name.
	SigningKeys(ctx context.Context) (map[string][]byte, error)
	// CreateSigningKey stores doc under name unless a document already has
	// that name, and returns the one stored (so relays sharing a store that
	// start at once agree on one key).
	CreateSigningKey(ctx context.Context, name string, doc []byte) ([]byte, error)
	// PutSigningKey stores or replaces a key document; DeleteSigningKey
	// removes one (missing is not an error).
	PutSigningKey(ctx context.Context, name string, doc []byte) error
	DeleteSigningKey(ctx context.Context, name string) error

	// Purge deletes events received before cutoff whose deliveries are all
	// final (delivered or dead), with their deliveries, and returns how
	// many events it deleted. It works in bounded batches and stops early
	// when ctx ends.
	Purge(ctx context.Context, cutoff time.Time) (int, error)

	// Health is nil while the store accepts writes; otherwise why not
	// (ErrDiskFull wrapped, a lost connection, …).
	Health() error
	// Close releases the store. Writes that returned nil stay durable.
	Close() error
}

// BodyLimitFanOut is how many deliveries a store's BodyLimit keeps room
// for beside a body of its MaxBody: an event to more endpoints may need
// a smaller body.
const BodyLimitFanOut = 100

// Errors of a Store. Implementations wrap them; callers use errors.Is.
var (
	ErrNotFound  = errors.New("not found")
	ErrDuplicate = errors.New("an event with this id already exists")
	ErrDiskFull  = errors.New("disk full")
	// ErrUnavailable: the store cannot be reached or written now (a lost
	// NATS connection, a closed store); the relay answers 503.
	ErrUnavailable = errors.New("store unavailable")
	// ErrTooLarge: the store cannot hold this record however often it is
	// written (an event over a Badger value log file, or over the records
	// of one NATS batch); the relay answers 413, not a 503 to retry.
	ErrTooLarge = errors.New("too large for the store")
)

// EndpointRef names one endpoint of one organisation.
type EndpointRef struct {
	Org      string
	Endpoint string
}

func (r EndpointRef) String() string { return r.Org + "/" + r.Endpoint }

// Delivery states of SPEC §4.
const (
	StatusPending    = "pending"
	StatusDelivering = "delivering"
	StatusDelivered  = "delivered"
	StatusFailed     = "failed"
	StatusDead       = "dead"
)

// Final reports whether a delivery in this state is never attempted again
// (unless requeued by hand).
func Final(status string) bool { return status == StatusDelivered || status == StatusDead }

// CheckAccepted says what Store.Accept refuses of d: no id, a due time
// for a final delivery, none for a waiting one.
func CheckAccepted(d *Delivery) error {
	switch {
	case d.ID == "":
		return errors.New("delivery without an id")
	case Final(d.Status) && d.NextAttemptAt != nil:
		return fmt.Errorf("delivery %s is %s, with a next_attempt_at", d.ID, d.Status)
	case !Final(d.Status) && d.NextAttemptAt == nil:
		return fmt.Errorf("delivery %s is %s, without a next_attempt_at", d.ID, d.Status)
	}
	return nil
}

// ListedAs reports whether a delivery in state stored, held leased or not,
// is listed under status ("": any), as the API shows it: a lease makes a
// delivery that is not final delivering, and then not pending or failed,
// so that a page of those holds none the API would show otherwise.
func ListedAs(status, stored string, leased bool) bool {
	attempting := leased && !Final(stored)
	switch status {
	case "":
		return true
	case StatusDelivering:
		return attempting
	}
	return stored == status && !attempting
}

// Event is an accepted event. Body is stored once, as received, and never
// re-encoded (bytes in, bytes out).
type Event struct {
	ID          string        `json:"id"`
	Type        string        `json:"type"`
	Org         string        `json:"org"`
	ReceivedAt  time.Time     `json:"received_at"`
	ContentType string        `json:"content_type,omitempty"`
	Hash        string        `json:"hash"`            // hex SHA-256 of Body, for idempotency
	Query       string        `json:"query,omitempty"` // custom-value requests: the query instead of a body
	Deliveries  []DeliveryRef `json:"deliveries"`
	Body        []byte        `json:"-"`
	// Fresh: the relay assigned ID just now, so no earlier event can have
	// it and Accept may skip looking for one. Never stored.
	Fresh bool `json:"-"`
}

// DeliveryRef names one delivery of an event.
type DeliveryRef struct {
	ID       string `json:"id"`
	Endpoint string `json:"endpoint"`
}

// Delivery is one event × one endpoint.
type Delivery struct {
	ID        string    `json:"id"`
	EventID   string    `json:"event_id"`
	Org       string    `json:"org"`
	Endpoint  string    `json:"endpoint"`
	Type      string    `json:"type"`
	Status    string    `json:"status"`
	CreatedAt time.Time `json:"created_at"`
	// Ordered: the endpoint was FIFO when the delivery was made; its place
	// in the queue is its creation, not its due time.
	Ordered       bool       `json:"ordered,omitempty"`
	NextAttemptAt *time.Time `json:"next_attempt_at,omitempty"`
	Attempts      []Attempt  `json:"attempts"`
	// Base is the number of attempts before the last manual retry: the
	// schedule starts again from there.
	Base int `json:"base,omitempty"`
	// Reason says why a dead delivery ended when no attempt does: its
	// endpoint no longer exists (see Store.EndWaiting). A manual retry
	// clears it.
	Reason string `json:"reason,omitempty"`
	// Attempting: the store holds the delivery leased, so a relay is
	// attempting it now (on a store shared with other relays, maybe
	// another than the one reading it). Not stored: set by Deliveries,
	// and by a shared store whenever it reads.
	Attempting bool `json:"-"`
}

// SetState sets d's state (Status, NextAttemptAt, Base, Reason) to s's,
// sharing no memory with s: what a store's Record tells its caller of the
// state it wrote.
func (d *Delivery) SetState(s *Delivery) {
	d.Status, d.NextAttemptAt, d.Base, d.Reason = s.Status, nil, s.Base, s.Reason
	if s.NextAttemptAt != nil {
		t := *s.NextAttemptAt
		d.NextAttemptAt = &t
	}
}

// Attempt is one try, as SPEC §4 lists it, with the request as it was sent
// (auth values are redacted when shown, not when stored).
type Attempt struct {
	N         int         `json:"n"`
	At        time.Time   `json:"at"`
	Status    int         `json:"status"`
	LatencyMS float64     `json:"latency_ms"`
	Error     string      `json:"error"`
	Response  string      `json:"response"`
	Request   http.Header `json:"request_headers,omitempty"`
}

// StoredEndpoint is what the store keeps of one endpoint: the API document
// (nil for a file endpoint that only has a disabled mark) and the mark.
type StoredEndpoint struct {
	ID       string
	Doc      []byte
	Disabled string
}

// Page is one page of a list, newest first. Next is the opaque cursor of
// the following page ("" at the end).
type Page[T any] struct {
	Items []T
	Next  string
}

// EventFilter selects events. Zero fields select everything. Cursor is a
// Next from an earlier page of the same filter. Since and Until bound
// ReceivedAt (inclusive).
type EventFilter struct {
	Type   string
	Since  time.Time
	Until  time.Time
	Limit  int
	Cursor string
}

// DeliveryFilter selects deliveries by their fields. Since and Until bound
// CreatedAt (inclusive); IDs, when set, selects those deliveries only.
// Status is as the API shows it (ListedAs): delivering selects those the
// store holds leased, and pending and failed leave them out.
type DeliveryFilter struct {
	Status   string
	Endpoint string
	Type     string
	Since    time.Time
	Until    time.Time
	IDs      []string
	Limit    int
	Cursor   string
}

// ErrBadCursor is returned (wrapped) for a cursor the store did not make.
var ErrBadCursor = errors.New("not a cursor from a previous answer")
