package event

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/oklog/ulid/v2"
)

// Id prefixes: an id says what it names, so a user pasting one into the
// wrong API gets a clear error rather than a miss.
const (
	PrefixEvent    = "evt_"
	PrefixDelivery = "dlv_"
	PrefixCapture  = "cap_"
)

// ErrBadID is returned for an id that is not prefix + ULID.
var ErrBadID = errors.New("event: malformed id")

// NewEventID returns a new evt_ id. ULIDs sort by creation time, which the
// store relies on for newest-first listing.
func NewEventID() string { return PrefixEvent + ulid.Make().String() }

// NewDeliveryID returns a new dlv_ id.
func NewDeliveryID() string { return PrefixDelivery + ulid.Make().String() }

// NewCaptureID returns a new cap_ id.
func NewCaptureID() string { return PrefixCapture + ulid.Make().String() }

// NewID returns prefix + a ULID for time t; used where ids must sort by a
// given (possibly injected) clock.
func NewID(prefix string, t time.Time) string {
	u, err := ulid.New(ulid.Timestamp(t), ulid.DefaultEntropy())
	if err != nil {
		// Only a clock outside ULID's range (before 1970 or after year
		// 10889) gets here; the wall clock is a better answer than a panic.
		u = ulid.Make()
	}
	return prefix + u.String()
}

// ParseID checks that id is prefix followed by a valid ULID, in upper case
// as sidehook writes it, and returns the ULID.
func ParseID(prefix, id string) (ulid.ULID, error) {
	rest, ok := strings.CutPrefix(id, prefix)
	if !ok {
		return ulid.ULID{}, fmt.Errorf("%w: %q does not start with %q", ErrBadID, id, prefix)
	}
	u, err := ulid.ParseStrict(rest)
	if err != nil {
		return ulid.ULID{}, fmt.Errorf("%w: %q: %v", ErrBadID, id, err)
	}
	// ULIDs decode in either case, but ids are looked up and compared as
	// text: a lower-case one would find nothing, or page from the wrong
	// place as a cursor.
	if u.String() != rest {
		return ulid.ULID{}, fmt.Errorf("%w: %q: the ULID must be upper case", ErrBadID, id)
	}
	return u, nil
}

// IDTime returns the creation time embedded in a prefixed ULID id.
func IDTime(prefix, id string) (time.Time, error) {
	u, err := ParseID(prefix, id)
	if err != nil {
		return time.Time{}, err
	}
	return ulid.Time(u.Time()), nil
}
