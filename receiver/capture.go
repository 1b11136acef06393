package receiver

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/sidehook/sidehook/internal/event"
	"github.com/sidehook/sidehook/replay"
)

// Body encodings of a capture's body in its JSON form.
const (
	EncodingUTF8   = event.BodyUTF8
	EncodingBase64 = event.BodyBase64
)

// timeLayout is received_at's format: RFC 3339 in UTC with exactly six
// fractional digits, so captures sort as text and every one has the same
// width (time.RFC3339Nano drops trailing zeros).
const timeLayout = "2006-01-02T15:04:05.000000Z07:00"

// Capture is one request the receiver saw, as the admin API returns it
// (SPEC §5). Body holds the exact bytes received; its JSON form is text when
// they are valid UTF-8 and base64 otherwise.
type Capture struct {
	ID         string
	ReceivedAt time.Time
	Method     string
	Path       string
	// Query is the raw query as sent, byte for byte; its JSON form is
	// text when it is valid UTF-8 and base64 otherwise (query_encoding).
	Query      string
	RemoteAddr string
	// Headers has lower-case keys and the values as received; Header
	// reads one whatever the case of its name.
	Headers map[string][]string
	Body    []byte
	// BodyTruncated is set when the body was not kept: it was over the
	// limit (the request was answered 413; BodySize is then its declared
	// length, or limit+1), or the receiver was reading too many bodies at
	// once (answered 503; BodySize is its declared length or the bytes
	// read before giving up).
	BodyTruncated bool
	BodySize      int64
	Event         string
	// WebhookID is the webhook-id header, else a Svix sender's svix-id;
	// DuplicateOf is the first capture of the same one.
	WebhookID   string
	DuplicateOf string
	Verdict     Verdict
	Response    CaptureResponse
}

// CaptureResponse is what the receiver answered.
type CaptureResponse struct {
	// Status is the HTTP status answered; 0 when a fault answered nothing,
	// or when Close cut the connection before the answer (Error says so).
	// It is recorded before a rule's Delay: a sender that gave up during
	// the delay never got it.
	Status int `json:"status"`
	// Rule is the id of the rule that answered, "" for the default answer.
	Rule string `json:"rule"`
	// Fault names the fault injected (reset, timeout, close), if any.
	Fault string `json:"fault,omitempty"`
	// Error says why the answer did not reach the client, or only part
	// of it did: the receiver cut the connection as it stopped, its
	// shutdown grace over. Status is then 0 when nothing of the answer
	// was sent.
	Error string `json:"error,omitempty"`
	// Headers are those the receiver set, lower-case (net/http adds Date).
	Headers map[string][]string `json:"headers,omitempty"`
	// Body is the first MaxResponseBody bytes of the answer's body, as
	// text, or base64 when BodyEncoding says so; BodyTruncated marks a cut.
	Body          string `json:"body,omitempty"`
	BodyEncoding  string `json:"body_encoding,omitempty"`
	BodyTruncated bool   `json:"body_truncated,omitempty"`
	// DurationMS is how long the request took from its arrival to its
	// answer: the handling until the capture was stored plus any scripted
	// delay (the capture is stored before the answer goes out). A delay
	// that Close cut short is counted whole.
	DurationMS int64 `json:"duration_ms"`
}

// MaxResponseBody is how much of the answer's body a capture keeps.
const MaxResponseBody = 4 << 10

// captureMeta is a capture's JSON without the body: it is both the stored
// metadata (the body follows it as raw bytes) and, with the body fields
// filled, the API's JSON.
type captureMeta struct {
	ID            string              `json:"id"`
	ReceivedAt    string              `json:"received_at"`
	Method        string              `json:"method"`
	Path          string              `json:"path"`
	Query         string              `json:"query"`
	QueryEncoding string              `json:"query_encoding,omitempty"`
	RemoteAddr    string              `json:"remote_addr"`
	Headers       map[string][]string `json:"headers"`
	Body          *string             `json:"body,omitempty"`
	BodyEncoding  string              `json:"body_encoding,omitempty"`
	BodyTruncated bool                `json:"body_truncated,omitempty"`
	BodySize      int64               `json:"body_size"`
	Event         string              `json:"event"`
	WebhookID     string              `json:"webhook_id"`
	DuplicateOf   string              `json:"duplicate_of"`
	Verdict       Verdict             `json:"verdict"`
	Response      CaptureResponse     `json:"response"`
}

func (c *Capture) meta() captureMeta {
	h := c.Headers
	if h == nil {
		h = map[string][]string{}
	}
	q, qenc := replay.EncodeQuery(c.Query)
	return captureMeta{
		ID:            c.ID,
		ReceivedAt:    c.ReceivedAt.UTC().Format(timeLayout),
		Method:        c.Method,
		Path:          c.Path,
		Query:         q,
		QueryEncoding: qenc,
		RemoteAddr:    c.RemoteAddr,
		Headers:       h,
		BodyTruncated: c.BodyTruncated,
		BodySize:      c.BodySize,
		Event:         c.Event,
		WebhookID:     c.WebhookID,
		DuplicateOf:   c.DuplicateOf,
		Verdict:       c.Verdict,
		Response:      c.Response,
	}
}

func (m *captureMeta) capture() (Capture, error) {
	at, err := time.Parse(time.RFC3339Nano, m.ReceivedAt)
	if err != nil {
		return Capture{}, fmt.Errorf("received_at: %w", err)
	}
	q, err := replay.DecodeQuery(m.Query, m.QueryEncoding)
	if err != nil {
		return Capture{}, err
	}
	return Capture{
		ID:            m.ID,
		ReceivedAt:    at.UTC(),
		Method:        m.Method,
		Path:          m.Path,
		Query:         q,
		RemoteAddr:    m.RemoteAddr,
		Headers:       m.Headers,
		BodyTruncated: m.BodyTruncated,
		BodySize:      m.BodySize,
		Event:         m.Event,
		WebhookID:     m.WebhookID,
		DuplicateOf:   m.DuplicateOf,
		Verdict:       Verdict{Status: m.Verdict.Status, Scheme: m.Verdict.Scheme, Reason: m.Verdict.Reason, Claims: intClaims(m.Verdict.Claims)},
		Response:      m.Response,
	}, nil
}

// Header returns the first value of the named header, "" when there is
// none; the name is matched in any case. Headers' keys are lower-case, so
// c.Headers["Webhook-Id"] finds nothing, nor does
// http.Header(c.Headers).Get, which looks up the canonical "Webhook-Id".
func (c *Capture) Header(name string) string {
	if v := c.Headers[strings.ToLower(name)]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// BodyText returns the body as the JSON form carries it and its encoding.
func (c *Capture) BodyText() (body, encoding string) {
	return event.EncodeBody(c.Body)
}

// MarshalJSON writes the capture in the shape of SPEC §5.
func (c Capture) MarshalJSON() ([]byte, error) {
	return appendMeta(make([]byte, 0, captureMetaSizeHint(&c)+len(c.Body)+len(c.Body)/4), &c, true)
}

// UnmarshalJSON reads the shape MarshalJSON writes (an NDJSON export, an
// admin API answer).
func (c *Capture) UnmarshalJSON(b []byte) error {
	var m captureMeta
	if err := json.Unmarshal(b, &m); err != nil {
		return err
	}
	got, err := m.capture()
	if err != nil {
		return err
	}
	if m.Body != nil {
		if got.Body, err = event.DecodeBody(*m.Body, m.BodyEncoding); err != nil {
			return err
		}
	}
	*c = got
	return nil
}

// The stored form of a capture is
//
//	version (1 byte) | uvarint len(meta) | meta JSON | body bytes
//
// so the body is written as received, never escaped into a JSON string on
// the capture path, and read back without decoding.
const encodingV1 = 1

// maxMetaLen bounds the metadata length a stored value may claim, so a
// corrupt length cannot make the decoder allocate gigabytes.
const maxMetaLen = 64 << 20

// ErrBadCapture is returned when stored bytes are not a capture.
var ErrBadCapture = errors.New("receiver: malformed stored capture")

// encodeCapture returns the stored form of c.
func encodeCapture(c *Capture) ([]byte, error) {
	// The metadata is written after room for its length, then moved up
	// behind the length's actual size: one buffer, one copy.
	const room = 1 + binary.MaxVarintLen64
	out := make([]byte, room, room+captureMetaSizeHint(c)+len(c.Body))
	out, err := appendMeta(out, c, false)
	if err != nil {
		return nil, fmt.Errorf("encode capture: %w", err)
	}
	n := len(out) - room
	var hdr [room]byte
	hdr[0] = encodingV1
	k := 1 + binary.PutUvarint(hdr[1:], uint64(n))
	copy(out[k:], out[room:])
	copy(out, hdr[:k])
	out = out[:k+n]
	return append(out, c.Body...), nil
}

// captureMetaSizeHint estimates the metadata's JSON length, so that
// encodeCapture allocates once.
func captureMetaSizeHint(c *Capture) int {
	n := 512 + len(c.Path) + len(c.Query)
	for k, vs := range c.Headers {
		n += len(k) + 8
		for _, v := range vs {
			n += len(v) + 4
		}
	}
	return n + 48*len(c.Verdict.Claims)
}

// MarshalBinary returns the compact form a Store keeps: the metadata as
// JSON and the body as raw bytes, never escaped.
func (c *Capture) MarshalBinary() ([]byte, error) { return encodeCapture(c) }

// UnmarshalBinary reads what MarshalBinary wrote. It copies what it keeps
// and never panics on arbitrary input.
func (c *Capture) UnmarshalBinary(b []byte) error {
	got, err := decodeCapture(b)
	if err != nil {
		return err
	}
	*c = got
	return nil
}

// decodeCapture parses the stored form. It copies what it keeps, so b may
// be reused by the caller (a store scan's value is valid only in its
// callback), and it never panics on arbitrary input.
func decodeCapture(b []byte) (Capture, error) {
	if len(b) < 2 || b[0] != encodingV1 {
		return Capture{}, fmt.Errorf("%w: unknown version", ErrBadCapture)
	}
	n, k := binary.Uvarint(b[1:])
	if k <= 0 || n > maxMetaLen || n > uint64(len(b)-1-k) {
		return Capture{}, fmt.Errorf("%w: bad metadata length", ErrBadCapture)
	}
	meta := b[1+k : 1+k+int(n)]
	var m captureMeta
	if err := json.Unmarshal(meta, &m); err != nil {
		return Capture{}, fmt.Errorf("%w: %v", ErrBadCapture, err)
	}
	c, err := m.capture()
	if err != nil {
		return Capture{}, fmt.Errorf("%w: %v", ErrBadCapture, err)
	}
	if body := b[1+k+int(n):]; len(body) > 0 {
		c.Body = append([]byte(nil), body...)
	}
	return c, nil
}
