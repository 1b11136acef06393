package replay

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"golang.org/x/net/http/httpguts"

	"github.com/sidehook/sidehook/internal/event"
)

// Capture is what replay reads of a mock receiver's capture JSON (SPEC §5):
// the admin API's answer and each line of its NDJSON export. It is its own
// type, not the receiver's, because the receiver imports this package.
type Capture struct {
	ID         string
	ReceivedAt time.Time
	Method     string
	Path       string
	// Query is the raw query as sent, byte for byte.
	Query string
	// Header is keyed canonically (the receiver stores lower case).
	Header http.Header
	Body   []byte
	// BodyTruncated is set when the receiver did not keep the body.
	BodyTruncated bool
	Event         string
	WebhookID     string
	// Verdict is verdict.status: valid, invalid or unverified.
	Verdict string
}

// captureJSON is the wire shape; fields replay does not use are ignored.
type captureJSON struct {
	ID            string              `json:"id"`
	ReceivedAt    string              `json:"received_at"`
	Method        string              `json:"method"`
	Path          string              `json:"path"`
	Query         string              `json:"query"`
	QueryEncoding string              `json:"query_encoding"`
	Headers       map[string][]string `json:"headers"`
	Body          *string             `json:"body"`
	BodyEncoding  string              `json:"body_encoding"`
	BodyTruncated bool                `json:"body_truncated"`
	Event         string              `json:"event"`
	WebhookID     string              `json:"webhook_id"`
	Verdict       struct {
		Status string `json:"status"`
	} `json:"verdict"`
}

// ParseCapture reads one capture JSON object and checks that it can be
// replayed: an id, a method, a path, a time, headers that can go on the
// wire and a body that decodes. A file that passes is never half-sent for
// a reason visible in the file itself.
func ParseCapture(b []byte) (Capture, error) {
	b = bytes.TrimSpace(b)
	if len(b) == 0 || b[0] != '{' {
		return Capture{}, errors.New("not a JSON object")
	}
	var m captureJSON
	if err := json.Unmarshal(b, &m); err != nil {
		return Capture{}, fmt.Errorf("not a capture: %w", err)
	}
	c := Capture{
		ID: m.ID, Method: m.Method, Path: m.Path,
		BodyTruncated: m.BodyTruncated, Event: m.Event, WebhookID: m.WebhookID,
		Verdict: m.Verdict.Status,
	}
	if c.ID == "" {
		return Capture{}, errors.New("no id")
	}
	q, err := DecodeQuery(m.Query, m.QueryEncoding)
	if err != nil {
		return Capture{}, fmt.Errorf("capture %s: %w", c.ID, err)
	}
	c.Query = q
	if !httpguts.ValidHeaderFieldName(c.Method) {
		return Capture{}, fmt.Errorf("capture %s: method %q is not an HTTP method", c.ID, c.Method)
	}
	if !strings.HasPrefix(c.Path, "/") || strings.ContainsAny(c.Path, "\x00\r\n") {
		return Capture{}, fmt.Errorf("capture %s: path %q does not start with /", c.ID, c.Path)
	}
	if !validRawQuery(c.Query) {
		return Capture{}, fmt.Errorf("capture %s: query %q is not a raw query string", c.ID, c.Query)
	}
	if m.ReceivedAt == "" {
		return Capture{}, fmt.Errorf("capture %s: no received_at", c.ID)
	}
	at, err := time.Parse(time.RFC3339Nano, m.ReceivedAt)
	if err != nil {
		return Capture{}, fmt.Errorf("capture %s: received_at %q is not an RFC 3339 time", c.ID, m.ReceivedAt)
	}
	c.ReceivedAt = at.UTC()
	c.Header = make(http.Header, len(m.Headers))
	for name, vals := range m.Headers {
		if !httpguts.ValidHeaderFieldName(name) {
			return Capture{}, fmt.Errorf("capture %s: header name %q is not valid on the wire", c.ID, name)
		}
		for _, v := range vals {
			if !validHeaderValue(v) {
				return Capture{}, fmt.Errorf("capture %s: header %s has a value with a control character", c.ID, name)
			}
		}
		for _, v := range vals {
			c.Header.Add(name, v)
		}
	}
	if m.Body != nil {
		if c.Body, err = event.DecodeBody(*m.Body, m.BodyEncoding); err != nil {
			return Capture{}, fmt.Errorf("capture %s: %w", c.ID, err)
		}
	}
	return c, nil
}

// EncodeQuery is a raw query as a capture's JSON carries it: as text, with
// no encoding, when it is valid UTF-8; else base64 with the encoding
// "base64", as a body is (SPEC §5). Go's server takes a request line with
// bytes that are not UTF-8, and a JSON string would turn each into U+FFFD:
// the capture would not show what was sent, and a replay would send other
// bytes (which a JWT's sha256 of a bodiless request covers).
func EncodeQuery(raw string) (text, encoding string) {
	if utf8.ValidString(raw) {
		return raw, ""
	}
	return base64.StdEncoding.EncodeToString([]byte(raw)), event.BodyBase64
}

// DecodeQuery returns the raw query EncodeQuery was given; an empty
// encoding, or utf8, is text.
func DecodeQuery(text, encoding string) (string, error) {
	switch encoding {
	case "", event.BodyUTF8:
		return text, nil
	case event.BodyBase64:
		b, err := base64.StdEncoding.DecodeString(text)
		if err != nil {
			return "", fmt.Errorf("query is not valid base64: %w", err)
		}
		return string(b), nil
	default:
		return "", fmt.Errorf("unknown query_encoding %q (want utf8 or base64)", encoding)
	}
}

// Item turns the capture into a replay item. base is the URL of the
// receiver it came from, which with the captured path and query is the
// default target; "" leaves the target to Options.To.
func (c *Capture) Item(base string) Item {
	target := ""
	if base != "" {
		target = strings.TrimRight(base, "/") + c.Path
		if c.Query != "" {
			target += "?" + c.Query
		}
	}
	return Item{
		ID:          c.ID,
		Method:      c.Method,
		Target:      target,
		Path:        c.Path,
		RawQuery:    c.Query,
		Header:      c.Header.Clone(),
		Body:        c.Body,
		WebhookID:   c.WebhookID,
		Event:       c.Event,
		BodyMissing: c.BodyTruncated,
	}
}

// MaxExportLine bounds one line of an export file: a capture of the
// receiver's largest body, base64-encoded or JSON-escaped, fits easily.
const MaxExportLine = 64 << 20

// LineError is a malformed line of an export file.
type LineError struct {
	Line int // 1-based
	Err  error
}

func (e *LineError) Error() string { return fmt.Sprintf("line %d: %v", e.Line, e.Err) }
func (e *LineError) Unwrap() error { return e.Err }

// ReadExport reads a receiver's NDJSON export (GET
// /_sidehook/requests/export?format=ndjson): one capture JSON per line,
// blank lines ignored. It stops at the first malformed line with a
// *LineError naming it: a replay selects everything before it sends
// anything, so a bad file sends nothing.
func ReadExport(r io.Reader) ([]Capture, error) { return readExport(r, MaxExportLine) }

func readExport(r io.Reader, maxLine int) ([]Capture, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, min(64<<10, maxLine)), maxLine)
	var out []Capture
	line := 0
	for sc.Scan() {
		line++
		b := bytes.TrimSpace(sc.Bytes())
		if len(b) == 0 {
			continue
		}
		c, err := ParseCapture(b)
		if err != nil {
			return nil, &LineError{Line: line, Err: err}
		}
		out = append(out, c)
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return nil, &LineError{Line: line + 1, Err: fmt.Errorf("longer than %d bytes", maxLine)}
		}
		return nil, fmt.Errorf("read export: %w", err)
	}
	return out, nil
}

// validRawQuery rejects what cannot be a request line's query: a space or
// "#" would end it, and net/http refuses to send a control character (a
// base64 query may decode to any byte).
func validRawQuery(q string) bool {
	for i := 0; i < len(q); i++ {
		if c := q[i]; c <= ' ' || c == 0x7f || c == '#' {
			return false
		}
	}
	return true
}

// validHeaderValue rejects what net/http refuses to send: control
// characters other than tab.
func validHeaderValue(v string) bool {
	for i := 0; i < len(v); i++ {
		if c := v[i]; c < ' ' && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}
