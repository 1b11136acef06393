package tunnel

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"golang.org/x/net/http/httpguts"

	"github.com/sidehook/sidehook/internal/event"
)

// Message types of the wire protocol (see the package doc).
const (
	TypeHello    = "hello"
	TypeReady    = "ready"
	TypeDelivery = "delivery"
	TypeResult   = "result"
	TypeError    = "error"
)

// MaxResultBody is how much of the local app's answer a result carries
// (SPEC §8: the first 64 KiB).
const MaxResultBody = 64 << 10

// ProtocolVersion is sent in hello and ready; a peer that speaks another
// version is told so in an error message rather than misread.
const ProtocolVersion = 1

// Message is one websocket text frame: a JSON object whose "type" says which
// of the fields below it uses. One struct for every kind keeps the decoder
// in one place, where every field is checked.
type Message struct {
	Type string `json:"type"`

	// hello (client → relay) and ready (relay → client).
	Version int `json:"version,omitempty"`
	// Events is the client's --events filter (hello) or what the relay
	// will send it (ready); empty means every event type.
	Events []string `json:"events,omitempty"`
	// Probe (hello) asks only for the ready message: the relay closes the
	// connection after it and sends no delivery (--print-secret).
	Probe bool `json:"probe,omitempty"`
	// MaxMessage (hello) is the largest frame the client reads; absent,
	// the client reads up to the ready's. MaxMessage (ready) is the
	// largest delivery the relay sends, one with a body of its
	// limits.max_body; absent (a relay before it said so),
	// DefaultMaxMessage. The relay fails an attempt whose delivery would
	// not fit, rather than send a frame that cuts the connection.
	MaxMessage int64 `json:"max_message,omitempty"`
	// ready: the organisation and tunnel name the client serves, and the
	// URL a platform posts that organisation's events to.
	Org       string `json:"org,omitempty"`
	Name      string `json:"name,omitempty"`
	PublicURL string `json:"public_url,omitempty"`
	JWKSURL   string `json:"jwks_url,omitempty"`
	ClientID  string `json:"client_id,omitempty"`

	// delivery and result: ID matches a result to its delivery. It is
	// unique per connection, unlike delivery_id: an endpoint test, a
	// replay and a custom-value GET may reuse one or have none.
	ID         uint64 `json:"id,omitempty"`
	DeliveryID string `json:"delivery_id,omitempty"`
	Attempt    int    `json:"attempt,omitempty"`
	Method     string `json:"method,omitempty"`
	Path       string `json:"path,omitempty"`
	Query      string `json:"query,omitempty"`
	// TimeoutMS is how long the relay waits for the result (the endpoint's
	// timeout); the client gives the local app a tenth less (see
	// forwardBudget), so the result can reach the relay in time.
	TimeoutMS int64 `json:"timeout_ms,omitempty"`

	Headers http.Header `json:"headers,omitempty"`
	// Body is base64 (standard encoding) on the wire; Message holds the
	// bytes.
	Body []byte `json:"body,omitempty"`

	// result.
	Status     int     `json:"status,omitempty"`
	DurationMS float64 `json:"duration_ms,omitempty"`
	// Truncated says the local app answered more than MaxResultBody
	// bytes and Body holds only the first of them.
	Truncated bool `json:"truncated,omitempty"`
	// Error (result): why the local app gave no answer. Error (error): what
	// was wrong with the peer's message.
	Error string `json:"error,omitempty"`
}

// errNoBody marks a delivery or result body that is not base64.
var errNoBody = errors.New("body is not valid base64")

// Decode reads one message and checks it is well formed for its type. The
// error says what is wrong in words fit to send back to the peer.
func Decode(data []byte) (*Message, error) {
	var m Message
	if err := json.Unmarshal(data, &m); err != nil {
		var be base64.CorruptInputError
		if errors.As(err, &be) {
			return nil, errNoBody
		}
		return nil, fmt.Errorf("not a JSON message: %w", err)
	}
	if err := m.validate(); err != nil {
		return nil, err
	}
	return &m, nil
}

// Encode returns m as one frame.
func Encode(m *Message) ([]byte, error) {
	b, err := json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("encode %s message: %w", m.Type, err)
	}
	return b, nil
}

func (m *Message) validate() error {
	switch m.Type {
	case TypeHello:
		if m.Version != ProtocolVersion {
			return fmt.Errorf("hello: protocol version %d not supported (want %d)", m.Version, ProtocolVersion)
		}
		if m.MaxMessage < 0 {
			return errors.New("hello: max_message must not be negative")
		}
		return validEvents(m.Events)
	case TypeReady:
		if m.Version != ProtocolVersion {
			return fmt.Errorf("ready: protocol version %d not supported (want %d)", m.Version, ProtocolVersion)
		}
		if m.Org == "" || m.Name == "" {
			return errors.New("ready: org and name are required")
		}
		if m.MaxMessage < 0 {
			return errors.New("ready: max_message must not be negative")
		}
		return validEvents(m.Events)
	case TypeDelivery:
		if m.ID == 0 {
			return errors.New("delivery: id is required")
		}
		if !ValidMethod(m.Method) {
			return fmt.Errorf("delivery: method %q is not an HTTP method", m.Method)
		}
		if m.Path != "" && !strings.HasPrefix(m.Path, "/") {
			return fmt.Errorf("delivery: path %q does not start with /", m.Path)
		}
		if strings.ContainsAny(m.Path, "?#") || strings.ContainsAny(m.Query, "#") {
			return errors.New("delivery: path or query holds a ? or #")
		}
		if m.Attempt < 0 || m.TimeoutMS < 0 {
			return errors.New("delivery: attempt and timeout_ms must not be negative")
		}
		return ValidHeader(m.Headers)
	case TypeResult:
		if m.ID == 0 && m.DeliveryID == "" {
			return errors.New("result: id (or, as SPEC §8 has it, delivery_id) is required")
		}
		if m.Status == 0 && m.Error == "" {
			return errors.New("result: a status or an error is required")
		}
		if m.Status != 0 && (m.Status < 100 || m.Status > 999) {
			return fmt.Errorf("result: status %d is not an HTTP status", m.Status)
		}
		if len(m.Body) > MaxResultBody {
			return fmt.Errorf("result: body of %d bytes is over the %d a result may carry", len(m.Body), MaxResultBody)
		}
		if m.DurationMS < 0 {
			return errors.New("result: duration_ms must not be negative")
		}
		return ValidHeader(m.Headers)
	case TypeError:
		if m.Error == "" {
			return errors.New("error: the error text is required")
		}
		return nil
	case "":
		return errors.New("message has no type")
	default:
		return fmt.Errorf("unknown message type %q (want hello, ready, delivery, result or error)", m.Type)
	}
}

func validEvents(evs []string) error {
	for _, e := range evs {
		if e != event.Wildcard && !event.ValidName(e) {
			return fmt.Errorf("event filter %q is not an event type name", e)
		}
	}
	return nil
}

// ValidMethod accepts an RFC 9110 token of at most 32 bytes, as an HTTP
// method: net/http accepts any token, and no method is longer.
func ValidMethod(s string) bool {
	return len(s) <= 32 && httpguts.ValidHeaderFieldName(s)
}

// ValidHeader refuses names and values net/http would refuse to send, so
// a bad header is reported by a decoder rather than as an odd transport
// failure (or misshown on a dashboard, which shows them as an answer's).
func ValidHeader(h http.Header) error {
	for k, vs := range h {
		if !httpguts.ValidHeaderFieldName(k) {
			return fmt.Errorf("header name %q is not valid", k)
		}
		for _, v := range vs {
			if strings.ContainsAny(v, "\r\n\x00") {
				return fmt.Errorf("header %q holds a line break or NUL", k)
			}
		}
	}
	return nil
}
