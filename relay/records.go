package relay

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/sidehook/sidehook/internal/event"
)

// Store layout. Organisation and endpoint ids never contain '/', so every
// key splits unambiguously; times are 8-byte big-endian unix nanoseconds so
// byte order is time order.
//
//	e/{org}/{event id}                 event record (meta + the body bytes)
//	et/{org}/{received ns}{event id}   listing index, newest first by reverse scan
//	d/{org}/{delivery id}              delivery record (JSON)
//	q/{org}/{endpoint}/{ns}{delivery}  due index: value = due time; the key's
//	                                   time is the due time, or the creation
//	                                   time for ordered endpoints (FIFO)
//	ep/{org}/{endpoint}                endpoint created through the API
//	epd/{org}/{endpoint}               endpoint disabled at run time (410)
//	tok/{org}                          the organisation's current Webio token
const (
	pfxEvent     = "e/"
	pfxEventTime = "et/"
	pfxDelivery  = "d/"
	pfxQueue     = "q/"
	pfxEndpoint  = "ep/"
	pfxDisabled  = "epd/"
	pfxToken     = "tok/"
)

func finalStatus(s string) bool { return s == StatusDelivered || s == StatusDead }

func eventKey(org, id string) []byte    { return []byte(pfxEvent + org + "/" + id) }
func deliveryKey(org, id string) []byte { return []byte(pfxDelivery + org + "/" + id) }
func endpointKey(org, id string) []byte { return []byte(pfxEndpoint + org + "/" + id) }
func disabledKey(org, id string) []byte { return []byte(pfxDisabled + org + "/" + id) }
func tokenKey(org string) []byte        { return []byte(pfxToken + org) }

func eventTimeKey(org string, t time.Time, id string) []byte {
	k := make([]byte, 0, len(pfxEventTime)+len(org)+1+8+len(id))
	k = append(k, pfxEventTime...)
	k = append(k, org...)
	k = append(k, '/')
	k = binary.BigEndian.AppendUint64(k, uint64(t.UnixNano()))
	return append(k, id...)
}

func queuePrefix(org, ep string) []byte { return []byte(pfxQueue + org + "/" + ep + "/") }

func queueKey(prefix []byte, t time.Time, id string) []byte {
	k := make([]byte, 0, len(prefix)+8+len(id))
	k = append(k, prefix...)
	k = binary.BigEndian.AppendUint64(k, uint64(t.UnixNano()))
	return append(k, id...)
}

func encodeTime(t time.Time) []byte { return binary.BigEndian.AppendUint64(nil, uint64(t.UnixNano())) }

func decodeTime(b []byte) (time.Time, bool) {
	if len(b) != 8 {
		return time.Time{}, false
	}
	return time.Unix(0, int64(binary.BigEndian.Uint64(b))), true
}

// eventRecord is an accepted event. Body is stored once, as received.
type eventRecord struct {
	ID          string        `json:"id"`
	Type        string        `json:"type"`
	Org         string        `json:"org"`
	ReceivedAt  time.Time     `json:"received_at"`
	ContentType string        `json:"content_type,omitempty"`
	Hash        string        `json:"hash"`
	Query       string        `json:"query,omitempty"` // custom-value requests: the query instead of a body
	Deliveries  []deliveryRef `json:"deliveries"`
	Body        []byte        `json:"-"`
}

type deliveryRef struct {
	ID       string `json:"id"`
	Endpoint string `json:"endpoint"`
}

// encodeEvent lays out a record as 4-byte meta length, meta JSON, body:
// the body is never re-encoded (bytes in, bytes out).
func encodeEvent(r *eventRecord) ([]byte, error) {
	meta, err := json.Marshal(r)
	if err != nil {
		return nil, fmt.Errorf("encode event: %w", err)
	}
	b := make([]byte, 4, 4+len(meta)+len(r.Body))
	binary.BigEndian.PutUint32(b, uint32(len(meta)))
	b = append(b, meta...)
	return append(b, r.Body...), nil
}

func decodeEvent(b []byte) (*eventRecord, error) {
	if len(b) < 4 {
		return nil, errors.New("decode event: short record")
	}
	n := binary.BigEndian.Uint32(b)
	if uint64(n) > uint64(len(b)-4) {
		return nil, errors.New("decode event: bad meta length")
	}
	var r eventRecord
	if err := json.Unmarshal(b[4:4+n], &r); err != nil {
		return nil, fmt.Errorf("decode event: %w", err)
	}
	r.Body = b[4+n:]
	return &r, nil
}

// deliveryRecord is one event × one endpoint.
type deliveryRecord struct {
	ID            string     `json:"id"`
	EventID       string     `json:"event_id"`
	Org           string     `json:"org"`
	Endpoint      string     `json:"endpoint"`
	Type          string     `json:"type"`
	Status        string     `json:"status"`
	CreatedAt     time.Time  `json:"created_at"`
	NextAttemptAt *time.Time `json:"next_attempt_at,omitempty"`
	Attempts      []attempt  `json:"attempts"`
	// Base is the number of attempts before the last manual retry: the
	// schedule starts again from there.
	Base int `json:"base,omitempty"`
	// QKey is the delivery's current due-index key, nil once final.
	QKey []byte `json:"qk,omitempty"`
}

// attempt is one try, as SPEC §4 lists it.
type attempt struct {
	N         int       `json:"n"`
	At        time.Time `json:"at"`
	Status    int       `json:"status"`
	LatencyMS float64   `json:"latency_ms"`
	Error     string    `json:"error"`
	Response  string    `json:"response"`
}

// maxResponse is how much of an endpoint's answer an attempt keeps.
const maxResponse = 4 << 10

// truncateResponse keeps the first 4 KiB, cut at a rune boundary so the
// text stays valid UTF-8 when it was.
func truncateResponse(b []byte) string {
	return string(event.CutText(b, maxResponse))
}

func newULID(t time.Time) string {
	return strings.TrimPrefix(event.NewID("x_", t), "x_")
}
