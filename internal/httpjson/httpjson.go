// Package httpjson is the HTTP JSON plumbing every sidehook server shares:
// the client-facing error and its {"error","reason"} shape, JSON in and
// out, the loopback check, the methods a route allows. One place, so the
// relay, the receiver and the tunnel cannot disagree on an empty body.
package httpjson

import (
	"bytes"
	"encoding"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"strings"

	"github.com/rs/zerolog"
)

// Error is an answer that is an error: Code and Reason go to the client,
// Err (the internal cause) is logged and never sent (tailscale's
// tsweb.HTTPError shape).
type Error struct {
	Status int
	Code   string
	Reason string
	Err    error
	// RetryAfter, when > 0, is sent as the Retry-After header (seconds).
	RetryAfter int
}

func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: %s: %v", e.Code, e.Reason, e.Err)
	}
	return e.Code + ": " + e.Reason
}

func (e *Error) Unwrap() error { return e.Err }

// Errorf makes an Error with a formatted reason.
func Errorf(status int, code, format string, args ...any) *Error {
	return &Error{Status: status, Code: code, Reason: fmt.Sprintf(format, args...)}
}

// Body is the shape of every error answer.
type Body struct {
	Error  string `json:"error"`
	Reason string `json:"reason"`
}

// Write answers v as JSON with status.
func Write(w http.ResponseWriter, status int, v any) {
	// Not HTML-escaped: an API client or curl reads "<key>" as sent, and
	// nothing puts this body in a page.
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		status = http.StatusInternalServerError
		b.Reset()
		b.WriteString(`{"error":"internal","reason":"encode answer"}` + "\n")
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(b.Bytes())
}

// WriteError answers err in the {"error","reason"} shape. Anything that is
// not an *Error is a 500 whose cause is logged, not sent; 5xx causes are
// logged at error, except a client that went away (debug).
func WriteError(w http.ResponseWriter, r *http.Request, log zerolog.Logger, err error) {
	var e *Error
	if !errors.As(err, &e) {
		e = &Error{Status: http.StatusInternalServerError, Code: "internal", Reason: "internal error", Err: err}
	}
	if e.Status >= 500 {
		ev := log.Error()
		if r.Context().Err() != nil {
			ev = log.Debug()
		}
		ev.Err(err).Str("method", r.Method).Str("path", r.URL.Path).Msg("request failed")
	}
	if e.RetryAfter > 0 {
		w.Header().Set("Retry-After", fmt.Sprint(e.RetryAfter))
	}
	Write(w, e.Status, Body{Error: e.Code, Reason: e.Reason})
}

// Handler is a handler that returns its error; ServeHTTP writes it with
// WriteError.
type Handler struct {
	Log zerolog.Logger
	Fn  func(w http.ResponseWriter, r *http.Request) error
}

func (h Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if err := h.Fn(w, r); err != nil {
		WriteError(w, r, h.Log, err)
	}
}

// MaxRequest bounds JSON request bodies.
const MaxRequest = 1 << 20

// CodeTooLarge is the error of every 413, a JSON request's, an ingested
// event's and a captured request's alike.
const CodeTooLarge = "too_large"

// Decode reads one JSON object from r's body into v. Unknown fields are
// errors, so a typo does not silently do nothing. An empty body is an
// error unless emptyOK, when v is left as is. Errors are *Error (400 or
// 413) with a reason that says what was expected.
func Decode(w http.ResponseWriter, r *http.Request, v any, emptyOK bool) error {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxRequest))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return Errorf(http.StatusRequestEntityTooLarge, CodeTooLarge, "request body above %d bytes", mbe.Limit)
		}
		return Errorf(http.StatusBadRequest, "invalid_body", "read body: %v", err)
	}
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 {
		if emptyOK {
			return nil
		}
		return Errorf(http.StatusBadRequest, "invalid_json", "empty body: want a JSON object")
	}
	// Every body is an object. encoding/json reads null into a struct as
	// nothing at all, so null passed for an empty body; other kinds fail
	// below, with less to say.
	if trimmed[0] != '{' {
		// Its first byte names only what a valid value is: "notjson"
		// begins as null does.
		var raw json.RawMessage
		if err := json.Unmarshal(trimmed, &raw); err != nil {
			return Errorf(http.StatusBadRequest, "invalid_json", "not valid JSON: %s", strings.TrimPrefix(err.Error(), "json: "))
		}
		return Errorf(http.StatusBadRequest, "invalid_json", "want a JSON object, not %s", jsonKind(trimmed[0]))
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			if reason, ok := wrongType(reflect.TypeOf(v), te); ok {
				return Errorf(http.StatusBadRequest, "invalid_json", "%s", reason)
			}
		}
		// An object with a field the call does not take is still an
		// object: say which field, in the client's words.
		msg := strings.TrimPrefix(err.Error(), "json: ")
		switch {
		case strings.HasPrefix(msg, "unknown field "):
			return Errorf(http.StatusBadRequest, "invalid_json", "%s", msg)
		case errors.Is(err, io.ErrUnexpectedEOF):
			msg = "the object is cut short"
		}
		return Errorf(http.StatusBadRequest, "invalid_json", "not valid JSON: %s", msg)
	}
	if dec.More() {
		return Errorf(http.StatusBadRequest, "invalid_json", "more than one JSON value")
	}
	return nil
}

// wrongType says which field of the JSON sent into t had the wrong type,
// what it takes and what came ("events: want a list of strings, got a
// string"), in the client's terms: encoding/json names Go structs, the
// embedded ones too, and Go types. ok is false for a path it cannot follow.
func wrongType(t reflect.Type, te *json.UnmarshalTypeError) (reason string, ok bool) {
	var path []string
	for _, name := range strings.Split(te.Field, ".") {
		t = containedStruct(t)
		if t == nil {
			return "", false
		}
		f, found := t.FieldByName(name)
		if found && f.Anonymous && jsonName(f) == "" {
			t = f.Type // an embedded struct: its fields are the outer one's
			continue
		}
		if f, found = fieldByJSONName(t, name); !found {
			return "", false
		}
		path = append(path, name)
		t = f.Type
	}
	if len(path) == 0 {
		return "", false
	}
	got := jsonValue(te.Value)
	if deref(t) != te.Type && t != te.Type {
		got += " in it" // an element of a list or an object
	}
	return fmt.Sprintf("%s: want %s, got %s", strings.Join(path, "."), describe(t), got), true
}

// containedStruct is the struct t holds, through pointers, lists and
// maps, or nil.
func containedStruct(t reflect.Type) reflect.Type {
	for {
		switch t.Kind() {
		case reflect.Pointer, reflect.Slice, reflect.Array, reflect.Map:
			t = t.Elem()
		case reflect.Struct:
			return t
		default:
			return nil
		}
	}
}

// fieldByJSONName finds the field decoded from the JSON key name, promoted
// fields of embedded structs included, as encoding/json matches them.
func fieldByJSONName(t reflect.Type, name string) (reflect.StructField, bool) {
	f, ok := t.FieldByNameFunc(func(goName string) bool {
		f, _ := t.FieldByName(goName)
		if !f.IsExported() {
			return false // encoding/json never fills it, whatever its name
		}
		if n := jsonName(f); n != "" {
			return n == name
		}
		return strings.EqualFold(goName, name)
	})
	return f, ok
}

// jsonName is the name in a field's json tag, "" when it has none.
func jsonName(f reflect.StructField) string {
	name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
	return name
}

func deref(t reflect.Type) reflect.Type {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t
}

var textUnmarshaler = reflect.TypeFor[encoding.TextUnmarshaler]()

// describe says what JSON a value of type t is decoded from.
func describe(t reflect.Type) string {
	t = deref(t)
	if reflect.PointerTo(t).Implements(textUnmarshaler) {
		return "a string"
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a whole number"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Slice, reflect.Array:
		return "a list of " + plural(t.Elem())
	case reflect.Map:
		return "an object of " + plural(t.Elem())
	case reflect.Struct:
		return "an object"
	}
	return "a JSON value"
}

// plural is describe for the elements of a list or an object.
func plural(t reflect.Type) string {
	switch d := describe(t); {
	case d == "true or false":
		return "booleans"
	case strings.HasPrefix(d, "a list"):
		return "lists"
	case strings.HasPrefix(d, "an object"):
		return "objects"
	default:
		_, noun, _ := strings.Cut(d, " ")
		return noun + "s"
	}
}

// jsonValue names the JSON value encoding/json found ("string", "number
// 1.5"), for an error.
func jsonValue(v string) string {
	switch v {
	case "string":
		return "a string"
	case "number":
		return "a number"
	case "bool":
		return "a boolean"
	case "array":
		return "a list"
	case "object":
		return "an object"
	}
	if n, ok := strings.CutPrefix(v, "number "); ok {
		return n
	}
	return v
}

// jsonKind names the JSON value that starts with c, for an error.
func jsonKind(c byte) string {
	switch {
	case c == 'n':
		return "null"
	case c == '[':
		return "an array"
	case c == '"':
		return "a string"
	case c == 't' || c == 'f':
		return "a boolean"
	case c == '-' || c >= '0' && c <= '9':
		return "a number"
	}
	return "something that is not JSON"
}

// IsLoopback reports whether a listen address ("127.0.0.1:8080",
// "localhost:0", "[::1]:80") only accepts connections from this machine.
// An empty host ("":8080) listens everywhere.
func IsLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		host = addr
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Callable is a listening address as this machine can call it: an
// unspecified host (0.0.0.0, ::, or none) becomes 127.0.0.1, so a URL made
// of it works; any other address is itself.
func Callable(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		return net.JoinHostPort("127.0.0.1", port)
	}
	return addr
}

// StdLogger routes net/http's own error log (TLS noise, broken
// connections) to zerolog at debug level: it is about clients, not us.
func StdLogger(l zerolog.Logger) *log.Logger {
	return log.New(stdWriter{l}, "", 0)
}

type stdWriter struct{ l zerolog.Logger }

func (w stdWriter) Write(p []byte) (int, error) {
	w.l.Debug().Msg(strings.TrimSpace(string(p)))
	return len(p), nil
}

// BaseURL checks the base URL of an API client (an http:// or https:// URL
// with a host) and returns it without a final slash; what names the server
// in the error ("relay URL …").
func BaseURL(raw, what string) (string, error) {
	base := strings.TrimRight(raw, "/")
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("%s URL %q: want an http:// or https:// URL", what, base)
	}
	if i := routeInPath(u.Path); i >= 0 {
		want := &url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path[:i]}
		return "", fmt.Errorf("%s URL %q is a page or route of the %s: give its base URL, %s", what, base, what, want)
	}
	return base, nil
}

// routeInPath is where, in a base URL's path, one of the URLs sidehook
// prints for another use begins, or -1: a dashboard or admin API
// (/_sidehook/…), the ingest route (/v1/events), a platform's public URL
// (/in/{org}). Pasted as a base, each got an answer about a route under
// it (a 405, an "unknown id") that named neither. Any other path is a
// prefix a proxy may serve the server under.
func routeInPath(path string) int {
	if i := strings.Index(path+"/", "/_sidehook/"); i >= 0 {
		return i
	}
	if prefix, ok := strings.CutSuffix(path, "/v1/events"); ok {
		return len(prefix)
	}
	if i := strings.LastIndex(path, "/in/"); i >= 0 {
		if org := path[i+len("/in/"):]; org != "" && !strings.Contains(org, "/") {
			return i
		}
	}
	return -1
}

// AnswerError is an API client's view of an answer that is not a 2xx:
// the request, the status, and the server's {"error","reason"} when it
// sent them (else the answer's text as the reason).
type AnswerError struct {
	Server       string // "relay", "receiver": who answered, for the message
	Method, Path string
	Status       int
	Code         string
	Reason       string
}

func (e *AnswerError) Error() string {
	if e.Code != "" {
		return fmt.Sprintf("%s answered %d %s to %s %s: %s", e.Server, e.Status, e.Code, e.Method, e.Path, e.Reason)
	}
	return fmt.Sprintf("%s answered %d to %s %s: %s", e.Server, e.Status, e.Method, e.Path, e.Reason)
}

// ErrWrongServer is a 2xx answer without the field that every answer of
// its route holds: it came from another server than the API client's,
// such as a mock receiver, which captures any path it does not serve and
// answers 200 {"id":"cap_…"}. Decoded as it is, that would pass for an
// accepted event or an empty page.
var ErrWrongServer = errors.New("not the answer of the server asked")

// CheckAnswer returns nil when b, a 2xx answer to method path, is a JSON
// object holding key, the field every answer of the route from a server
// (a "relay", a "receiver") holds; else an error wrapping ErrWrongServer
// that quotes the answer's start. An empty key asks for nothing.
func CheckAnswer(server, method, path string, status int, b []byte, key string) error {
	if key == "" {
		return nil
	}
	var fields map[string]json.RawMessage
	if json.Unmarshal(b, &fields) == nil && fields[key] != nil {
		return nil
	}
	const limit = 200
	s := strings.TrimSpace(string(b))
	if len(s) > limit {
		s = strings.ToValidUTF8(s[:limit], "") + "…"
	}
	return fmt.Errorf("%s %s: %w (HTTP %d without %q): is it a sidehook %s? %s", method, path, wrongServer(server), status, key, server, s)
}

// wrongServer is ErrWrongServer in a message that names the server asked.
type wrongServer string

func (w wrongServer) Error() string        { return "not a " + string(w) + "'s answer" }
func (w wrongServer) Is(target error) bool { return target == ErrWrongServer }

// NewAnswerError decodes a non-2xx answer body b from server.
func NewAnswerError(server, method, path string, status int, b []byte) *AnswerError {
	e := &AnswerError{Server: server, Method: method, Path: path, Status: status, Reason: strings.TrimSpace(string(b))}
	var eb Body
	if json.Unmarshal(b, &eb) == nil && eb.Error != "" {
		e.Code, e.Reason = eb.Error, eb.Reason
	}
	return e
}

// HeadRefuser is a route that serves GET but refuses HEAD, which net/http's
// mux would otherwise hand to it: a GET that does something.
type HeadRefuser interface{ RefusesHead() bool }

// NoRoute answers a request no route of mux serves, for a server's
// catch-all (its pattern one of catchAll): where the path is served with
// other methods it sets Allow and returns a 405 (RFC 9110 §15.5.6), or
// answers OPTIONS 204 itself and returns nil; elsewhere it returns a 404
// with reason notFound.
func NoRoute(w http.ResponseWriter, req *http.Request, mux *http.ServeMux, notFound string, catchAll ...string) *Error {
	allow := allowed(mux, req, catchAll)
	if len(allow) == 0 {
		return &Error{Status: http.StatusNotFound, Code: "not_found", Reason: notFound}
	}
	w.Header().Set("Allow", strings.Join(allow, ", "))
	if req.Method == http.MethodOptions {
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
	return Errorf(http.StatusMethodNotAllowed, "method_not_allowed", "%s is not allowed on %s: allowed are %s",
		req.Method, req.URL.Path, strings.Join(allow, ", "))
}

// allowed lists the methods mux serves at req's path, OPTIONS last; none
// when it serves none there. A route whose pattern is one of catchAll does
// not count. HEAD is served wherever GET is, unless the route is a
// HeadRefuser.
func allowed(mux *http.ServeMux, req *http.Request, catchAll []string) []string {
	var allow []string
	for _, m := range []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodDelete} {
		probe := req.Clone(req.Context())
		probe.Method = m
		h, pattern := mux.Handler(probe)
		if pattern == "" || slices.Contains(catchAll, pattern) {
			continue
		}
		if hr, ok := h.(HeadRefuser); ok && m == http.MethodHead && hr.RefusesHead() {
			continue
		}
		allow = append(allow, m)
	}
	if len(allow) > 0 {
		allow = append(allow, http.MethodOptions)
	}
	return allow
}
