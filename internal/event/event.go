// Package event is sidehook's event model: the five Webio event types, the
// mapping between event type names and the payload "type" field, and the ids
// (evt_, dlv_, cap_ + ULID) that name events, deliveries and captures.
package event

import (
	"bytes"
	"encoding/json"
	"net/http"
)

// Type is an event type name as used in subscriptions, flags, APIs and
// metrics: one of the five built-in names or any name matching
// [a-z][a-z0-9_.]{0,63}.
type Type string

// The built-in event types of SPEC §2.
const (
	InboundMessage     Type = "inbound_message"
	MessageSend        Type = "message_send"
	DeliveryReport     Type = "delivery_report"
	Payment            Type = "payment"
	CustomValueRequest Type = "custom_value_request"
)

// Wildcard subscribes an endpoint to every event type.
const Wildcard = "*"

// builtin is indexed by type; a fixed array, not a map, so the table is a
// constant that nobody can mutate.
var builtin = [...]struct {
	t           Type
	method      string
	payloadType string
}{
	{InboundMessage, http.MethodPost, "inboundMessage"},
	{MessageSend, http.MethodPost, "messageSend"},
	{DeliveryReport, http.MethodPost, "messageStatusUpdate"},
	{Payment, http.MethodPost, "payment"},
	{CustomValueRequest, http.MethodGet, ""},
}

// Builtin returns the five built-in event types in SPEC order.
func Builtin() []Type {
	out := make([]Type, len(builtin))
	for i, b := range builtin {
		out[i] = b.t
	}
	return out
}

// IsBuiltin reports whether t is one of the five built-in types.
func (t Type) IsBuiltin() bool {
	for _, b := range builtin {
		if b.t == t {
			return true
		}
	}
	return false
}

// Method is the HTTP method a delivery of this type uses: GET for
// custom_value_request, POST for everything else (custom types included).
func (t Type) Method() string {
	if t == CustomValueRequest {
		return http.MethodGet
	}
	return http.MethodPost
}

// PayloadType is the value of the payload's "type" field for a built-in
// type, or "" when the type has none.
func (t Type) PayloadType() string {
	for _, b := range builtin {
		if b.t == t {
			return b.payloadType
		}
	}
	return ""
}

// Valid reports whether t is an acceptable event type name.
func (t Type) Valid() bool { return ValidName(string(t)) }

// ValidName reports whether s matches [a-z][a-z0-9_.]{0,63}. Hand-written
// rather than a regexp: it runs on every ingest and capture.
func ValidName(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	if s[0] < 'a' || s[0] > 'z' {
		return false
	}
	for i := 1; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

// FromPayloadType maps a payload "type" value (inboundMessage, messageSend,
// messageStatusUpdate, payment) to its event type.
func FromPayloadType(s string) (Type, bool) {
	if s == "" {
		return "", false
	}
	for _, b := range builtin {
		if b.payloadType == s {
			return b.t, true
		}
	}
	return "", false
}

// FromPayload reads the top-level "type" field of a JSON object payload and
// maps it to an event type. A payload that is not a JSON object, has no
// string "type", or names an unknown payload type yields false. When the
// value is itself a valid event type name (a producer that already uses
// sidehook's names, or a custom type), it is returned as is. The whole
// payload is validated, so true also means the body is valid JSON.
//
// The field is picked as json.Unmarshal into a struct field tagged "type"
// would pick it (the last member named "type" in any letter case), but
// with one validating pass and one light walk over the top level instead
// of a full decode: it runs on every webhook without a sidehook-event
// header.
func FromPayload(body []byte) (Type, bool) {
	body = bytes.TrimSpace(body)
	if len(body) == 0 || body[0] != '{' || !json.Valid(body) {
		return "", false
	}
	raw, ok := typeMember(body)
	if !ok || len(raw) < 2 || raw[0] != '"' {
		return "", false
	}
	var s string
	if bytes.IndexByte(raw, '\\') < 0 {
		s = string(raw[1 : len(raw)-1])
	} else if err := json.Unmarshal(raw, &s); err != nil {
		return "", false
	}
	if t, ok := FromPayloadType(s); ok {
		return t, true
	}
	if ValidName(s) {
		return Type(s), true
	}
	return "", false
}

// typeMember returns the value of the last member of obj, a valid JSON
// object, whose name is "type" in any case (encoding/json's matching; no
// other rune folds to t, y, p or e).
func typeMember(obj []byte) (val []byte, found bool) {
	i := skipSpace(obj, 1)
	for i < len(obj) && obj[i] == '"' {
		kEnd := endOfString(obj, i)
		key := obj[i:kEnd]
		i = skipSpace(obj, skipSpace(obj, kEnd)+1) // past ':'
		vEnd := endOfValue(obj, i)
		if isTypeName(key) {
			val, found = obj[i:vEnd], true
		}
		i = skipSpace(obj, vEnd)
		if i >= len(obj) || obj[i] != ',' {
			break
		}
		i = skipSpace(obj, i+1)
	}
	return val, found
}

// isTypeName reports whether key, a quoted JSON string, names "type".
func isTypeName(key []byte) bool {
	name := key[1 : len(key)-1]
	if bytes.IndexByte(name, '\\') >= 0 {
		var s string
		if json.Unmarshal(key, &s) != nil {
			return false
		}
		name = []byte(s)
	}
	return bytes.EqualFold(name, []byte("type"))
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// endOfString returns the index just past the string starting at b[i].
func endOfString(b []byte, i int) int {
	for i++; i < len(b); i++ {
		switch b[i] {
		case '\\':
			i++
		case '"':
			return i + 1
		}
	}
	return len(b)
}

// endOfValue returns the index just past the valid JSON value at b[i].
func endOfValue(b []byte, i int) int {
	if i >= len(b) {
		return i
	}
	switch b[i] {
	case '"':
		return endOfString(b, i)
	case '{', '[':
		depth := 0
		for i < len(b) {
			switch b[i] {
			case '"':
				i = endOfString(b, i)
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1
				}
			}
			i++
		}
		return i
	}
	for i < len(b) && b[i] != ',' && b[i] != '}' && b[i] != ']' && b[i] != ' ' && b[i] != '\t' && b[i] != '\n' && b[i] != '\r' {
		i++
	}
	return i
}

// Takes reports whether a filter of event types (a tunnel client's
// --events) takes events of type t: an empty filter takes every type, as
// one holding the wildcard does.
func Takes(filter []string, t Type) bool { return len(filter) == 0 || Matches(filter, t) }

// Matches reports whether an endpoint subscribed to subs receives events of
// type t.
func Matches(subs []string, t Type) bool {
	for _, s := range subs {
		if s == Wildcard || Type(s) == t {
			return true
		}
	}
	return false
}
