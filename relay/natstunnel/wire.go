package natstunnel

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/sidehook/sidehook/relay/tunnel"
)

// wireVersion is in every request and reply, so a relay of another version
// is refused in words rather than misread during a rolling upgrade.
const wireVersion = 1

// A frame is one line of JSON metadata, a newline, then the body's bytes as
// they are: no base64, so a body uses as much of the NATS max payload as
// possible. encoding/json never writes a raw newline, so the first one ends
// the metadata.

// request is one delivery (or custom-value GET) sent to the relay holding
// a tunnel.
type request struct {
	V          int         `json:"v"`
	Method     string      `json:"method"`
	URL        string      `json:"url"`
	Header     http.Header `json:"header,omitempty"`
	Org        string      `json:"org"`
	DeliveryID string      `json:"delivery_id,omitempty"`
	Attempt    int         `json:"attempt,omitempty"`
	// TimeoutMS is what is left of the endpoint's timeout; the holder gives
	// its client no longer.
	TimeoutMS int64 `json:"timeout_ms"`
	// Keep is how much of the answer's body the sender keeps (negative:
	// all), so the holder sends back no more.
	Keep int64 `json:"keep"`

	Body []byte `json:"-"`
}

// reply is the holder's answer: a status, or an error when no answer came
// back (NoClient: the holder has no client that takes it any more;
// Timeout: the endpoint's timeout ran out there).
type reply struct {
	V         int         `json:"v"`
	Status    int         `json:"status,omitempty"`
	Header    http.Header `json:"header,omitempty"`
	LatencyUS int64       `json:"latency_us,omitempty"`
	Error     string      `json:"error,omitempty"`
	NoClient  bool        `json:"no_client,omitempty"`
	Timeout   bool        `json:"timeout,omitempty"`

	Body []byte `json:"-"`
}

func encodeFrame(meta any, body []byte) ([]byte, error) {
	b, err := json.Marshal(meta)
	if err != nil {
		return nil, err
	}
	out := make([]byte, 0, len(b)+1+len(body))
	out = append(out, b...)
	out = append(out, '\n')
	return append(out, body...), nil
}

// decodeFrame reads the metadata into meta and returns the body (nil when
// empty). Unknown fields are refused: both ends are sidehook relays.
func decodeFrame(data []byte, meta any) ([]byte, error) {
	head, body, ok := bytes.Cut(data, []byte{'\n'})
	if !ok {
		return nil, errors.New("no newline after the metadata")
	}
	dec := json.NewDecoder(bytes.NewReader(head))
	dec.DisallowUnknownFields()
	if err := dec.Decode(meta); err != nil {
		return nil, fmt.Errorf("metadata: %w", err)
	}
	if dec.More() {
		return nil, errors.New("metadata: more than one JSON value")
	}
	if len(body) == 0 {
		return nil, nil
	}
	return body, nil
}

func encodeRequest(r *request) ([]byte, error) {
	r.V = wireVersion
	return encodeFrame(r, r.Body)
}

func decodeRequest(data []byte) (*request, error) {
	var r request
	body, err := decodeFrame(data, &r)
	if err != nil {
		return nil, fmt.Errorf("tunnel request: %w", err)
	}
	r.Body = body
	if len(r.Header) == 0 {
		r.Header = nil
	}
	if err := r.validate(); err != nil {
		return nil, fmt.Errorf("tunnel request: %w", err)
	}
	return &r, nil
}

func (r *request) validate() error {
	if r.V != wireVersion {
		return fmt.Errorf("version %d, this relay speaks %d", r.V, wireVersion)
	}
	if !tunnel.ValidMethod(r.Method) {
		return fmt.Errorf("method %q is not an HTTP method", r.Method)
	}
	if _, _, _, err := tunnel.ParseURL(r.URL); err != nil {
		return err
	}
	if r.Org == "" {
		return errors.New("org is required")
	}
	if r.Attempt < 0 || r.TimeoutMS < 0 {
		return errors.New("attempt and timeout_ms must not be negative")
	}
	return tunnel.ValidHeader(r.Header)
}

func encodeReply(r *reply) ([]byte, error) {
	r.V = wireVersion
	return encodeFrame(r, r.Body)
}

// decodeReply reads a holder's answer. Whatever sent it, a reply it
// accepts is either an HTTP status with valid headers or an error text.
func decodeReply(data []byte) (*reply, error) {
	var r reply
	body, err := decodeFrame(data, &r)
	if err != nil {
		return nil, fmt.Errorf("tunnel reply: %w", err)
	}
	r.Body = body
	if len(r.Header) == 0 {
		r.Header = nil // as omitempty writes it
	}
	if err := r.validate(); err != nil {
		return nil, fmt.Errorf("tunnel reply: %w", err)
	}
	return &r, nil
}

func (r *reply) validate() error {
	if r.V != wireVersion {
		return fmt.Errorf("version %d, this relay speaks %d", r.V, wireVersion)
	}
	switch {
	case r.Error == "" && r.Status == 0:
		return errors.New("a status or an error is required")
	case r.Error != "" && (r.Status != 0 || r.Body != nil || r.Header != nil):
		return errors.New("an error reply carries no status, header or body")
	case r.Error == "" && (r.NoClient || r.Timeout):
		return errors.New("no_client and timeout come with an error")
	case r.Status != 0 && (r.Status < 100 || r.Status > 999):
		return fmt.Errorf("status %d is not an HTTP status", r.Status)
	case r.LatencyUS < 0:
		return errors.New("latency_us must not be negative")
	}
	return tunnel.ValidHeader(r.Header)
}
