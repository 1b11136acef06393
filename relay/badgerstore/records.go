package badgerstore

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/sidehook/sidehook/relay"
)

const (
	pfxEvent        = "e/"
	pfxEventTime    = "et/"
	pfxDelivery     = "d/"
	pfxDeliveryTime = "dt/"
	pfxQueue        = "q/"
	pfxEndpoint     = "ep/"
	pfxDisabled     = "epd/"
	pfxToken        = "tok/"
	pfxSigningKey   = "sk/"
)

func eventKey(org, id string) []byte    { return []byte(pfxEvent + org + "/" + id) }
func deliveryKey(org, id string) []byte { return []byte(pfxDelivery + org + "/" + id) }
func endpointKey(org, id string) []byte { return []byte(pfxEndpoint + org + "/" + id) }
func disabledKey(org, id string) []byte { return []byte(pfxDisabled + org + "/" + id) }
func tokenKey(org string) []byte        { return []byte(pfxToken + org) }
func signingKey(name string) []byte     { return []byte(pfxSigningKey + name) }

// timeKey is prefix, t as 8 big-endian bytes of unix nanoseconds, id.
func timeKey(prefix []byte, t time.Time, id string) []byte {
	k := make([]byte, 0, len(prefix)+8+len(id))
	k = append(k, prefix...)
	k = binary.BigEndian.AppendUint64(k, uint64(t.UnixNano()))
	return append(k, id...)
}

// splitTimeKey returns the time and id of a key made by timeKey.
func splitTimeKey(prefix, k []byte) (time.Time, string, bool) {
	if len(k) < len(prefix)+8 {
		return time.Time{}, "", false
	}
	rest := k[len(prefix):]
	return time.Unix(0, int64(binary.BigEndian.Uint64(rest))).UTC(), string(rest[8:]), true
}

// below is the smallest key above every key of prefix at times up to t
// (ids are printable ASCII, below 0xFF): a reverse scan from it starts
// with the newest entries at t.
func below(prefix []byte, t time.Time) []byte {
	k := binary.BigEndian.AppendUint64(append([]byte(nil), prefix...), uint64(t.UnixNano()))
	return append(k, 0xFF, 0xFF, 0xFF, 0xFF)
}

func eventTimePrefix(org string) []byte    { return []byte(pfxEventTime + org + "/") }
func deliveryTimePrefix(org string) []byte { return []byte(pfxDeliveryTime + org + "/") }
func queuePrefix(ref relay.EndpointRef) []byte {
	return []byte(pfxQueue + ref.Org + "/" + ref.Endpoint + "/")
}

// encodeEvent lays out an event as 4-byte meta length, meta JSON, body.
func encodeEvent(ev *relay.Event) ([]byte, error) {
	cp := *ev
	cp.ReceivedAt = cp.ReceivedAt.UTC()
	meta, err := json.Marshal(&cp)
	if err != nil {
		return nil, fmt.Errorf("encode event: %w", err)
	}
	b := make([]byte, 4, 4+len(meta)+len(ev.Body))
	binary.BigEndian.PutUint32(b, uint32(len(meta)))
	b = append(b, meta...)
	return append(b, ev.Body...), nil
}

func decodeEvent(b []byte) (*relay.Event, error) {
	if len(b) < 4 {
		return nil, errors.New("decode event: short record")
	}
	n := binary.BigEndian.Uint32(b)
	if uint64(n) > uint64(len(b)-4) {
		return nil, errors.New("decode event: bad meta length")
	}
	var ev relay.Event
	if err := json.Unmarshal(b[4:4+n], &ev); err != nil {
		return nil, fmt.Errorf("decode event: %w", err)
	}
	ev.ReceivedAt = ev.ReceivedAt.UTC()
	ev.Body = b[4+n:]
	return &ev, nil
}

// record is a stored delivery: the relay's fields and its due-index key.
type record struct {
	relay.Delivery
	// QKey is the delivery's due-index key, nil when it waits in no queue.
	QKey []byte `json:"qk,omitempty"`
}

// encodeDelivery returns the record of d at qk (its times in UTC) and its
// encoding.
func encodeDelivery(d *relay.Delivery, qk []byte) (*record, []byte, error) {
	r := &record{Delivery: inUTC(d), QKey: qk}
	b, err := json.Marshal(r)
	if err != nil {
		return nil, nil, fmt.Errorf("encode delivery %s: %w", d.ID, err)
	}
	return r, b, nil
}

// inUTC is a copy of d with its times in UTC, as the store returns them;
// its attempts are copied only when one needs it.
func inUTC(d *relay.Delivery) relay.Delivery {
	r := *d
	r.CreatedAt = r.CreatedAt.UTC()
	if r.NextAttemptAt != nil {
		t := r.NextAttemptAt.UTC()
		r.NextAttemptAt = &t
	}
	for i := range r.Attempts {
		if r.Attempts[i].At.Location() != time.UTC {
			r.Attempts = slices.Clone(r.Attempts)
			for j := i; j < len(r.Attempts); j++ {
				r.Attempts[j].At = r.Attempts[j].At.UTC()
			}
			break
		}
	}
	return r
}

func decodeDelivery(b []byte) (*record, error) {
	var r record
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("decode delivery: %w", err)
	}
	r.Delivery = inUTC(&r.Delivery)
	return &r, nil
}

// dueKey is a delivery's place in its queue: its creation when ordered
// (FIFO), else its due time.
func dueKey(d *relay.Delivery) time.Time {
	if d.Ordered {
		return d.CreatedAt
	}
	return *d.NextAttemptAt
}

// dueValue is a due-index value: the due time, then "o" when ordered.
func dueValue(d *relay.Delivery) []byte {
	b := binary.BigEndian.AppendUint64(nil, uint64(d.NextAttemptAt.UnixNano()))
	if d.Ordered {
		b = append(b, 'o')
	}
	return b
}

func decodeDueValue(b []byte) (due time.Time, ordered bool, ok bool) {
	if len(b) < 8 {
		return time.Time{}, false, false
	}
	return time.Unix(0, int64(binary.BigEndian.Uint64(b))).UTC(), len(b) > 8 && b[8] == 'o', true
}

// A cursor is the place of a page's last item, (time, id): 8 big-endian
// bytes of unix nanoseconds and the id, base64url encoded.
func encodeCursor(t time.Time, id string) string {
	return base64.RawURLEncoding.EncodeToString(timeKey(nil, t, id))
}

func decodeCursor(s string) (time.Time, string, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(b) < 9 {
		return time.Time{}, "", fmt.Errorf("badgerstore: cursor %q: %w", s, relay.ErrBadCursor)
	}
	t, id, _ := splitTimeKey(nil, b)
	return t, id, nil
}
