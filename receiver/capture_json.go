package receiver

import (
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"
	"unicode/utf8"

	"github.com/sidehook/sidehook/replay"
)

// appendMeta appends the JSON of c.meta(), with the body fields when
// withBody, byte for byte as json.Marshal writes it (field order, sorted map
// keys, encoding/json's string escaping and number format). Every capture
// is encoded once on its way to the store, and reflection over the headers
// and claims maps was the largest cost of that write.
func appendMeta(b []byte, c *Capture, withBody bool) ([]byte, error) {
	b = appendField(b, `{"id":`, c.ID)
	b = append(b, `,"received_at":`...)
	b = append(b, '"')
	b = c.ReceivedAt.UTC().AppendFormat(b, timeLayout)
	b = append(b, '"')
	b = appendField(b, `,"method":`, c.Method)
	b = appendField(b, `,"path":`, c.Path)
	q, qenc := replay.EncodeQuery(c.Query)
	b = appendField(b, `,"query":`, q)
	if qenc != "" {
		b = appendField(b, `,"query_encoding":`, qenc)
	}
	b = appendField(b, `,"remote_addr":`, c.RemoteAddr)
	b = append(b, `,"headers":`...)
	b = appendHeaders(b, c.Headers)
	if withBody {
		body, enc := c.BodyText()
		b = appendField(b, `,"body":`, body)
		if enc != "" {
			b = appendField(b, `,"body_encoding":`, enc)
		}
	}
	if c.BodyTruncated {
		b = append(b, `,"body_truncated":true`...)
	}
	b = append(b, `,"body_size":`...)
	b = strconv.AppendInt(b, c.BodySize, 10)
	b = appendField(b, `,"event":`, c.Event)
	b = appendField(b, `,"webhook_id":`, c.WebhookID)
	b = appendField(b, `,"duplicate_of":`, c.DuplicateOf)
	b = append(b, `,"verdict":`...)
	b, err := appendVerdict(b, &c.Verdict)
	if err != nil {
		return nil, err
	}
	b = append(b, `,"response":{"status":`...)
	b = strconv.AppendInt(b, int64(c.Response.Status), 10)
	b = appendField(b, `,"rule":`, c.Response.Rule)
	if c.Response.Fault != "" {
		b = appendField(b, `,"fault":`, c.Response.Fault)
	}
	if c.Response.Error != "" {
		b = appendField(b, `,"error":`, c.Response.Error)
	}
	if len(c.Response.Headers) > 0 {
		b = append(b, `,"headers":`...)
		b = appendHeaders(b, c.Response.Headers)
	}
	if c.Response.Body != "" {
		b = appendField(b, `,"body":`, c.Response.Body)
	}
	if c.Response.BodyEncoding != "" {
		b = appendField(b, `,"body_encoding":`, c.Response.BodyEncoding)
	}
	if c.Response.BodyTruncated {
		b = append(b, `,"body_truncated":true`...)
	}
	b = append(b, `,"duration_ms":`...)
	b = strconv.AppendInt(b, c.Response.DurationMS, 10)
	return append(b, "}}"...), nil
}

// appendField appends key (the member's name with its colon and any comma
// or brace before it) and v as a JSON string.
func appendField(b []byte, key, v string) []byte {
	return appendString(append(b, key...), v)
}

// appendHeaders writes a nil map as {} (meta's convention) and a nil value
// as null (json.Marshal's).
func appendHeaders(b []byte, h map[string][]string) []byte {
	b = append(b, '{')
	for i, k := range sortedKeys(h) {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, k)
		b = append(b, ':')
		vs := h[k]
		if vs == nil {
			b = append(b, "null"...)
			continue
		}
		b = append(b, '[')
		for j, v := range vs {
			if j > 0 {
				b = append(b, ',')
			}
			b = appendString(b, v)
		}
		b = append(b, ']')
	}
	return append(b, '}')
}

func appendVerdict(b []byte, v *Verdict) ([]byte, error) {
	b = appendField(b, `{"status":`, v.Status)
	b = appendField(b, `,"scheme":`, v.Scheme)
	b = appendField(b, `,"reason":`, v.Reason)
	if len(v.Claims) > 0 {
		b = append(b, `,"claims":{`...)
		for i, k := range sortedKeys(v.Claims) {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, k)
			b = append(b, ':')
			var err error
			if b, err = appendValue(b, v.Claims[k]); err != nil {
				return nil, fmt.Errorf("claim %q: %w", k, err)
			}
		}
		b = append(b, '}')
	}
	return append(b, '}'), nil
}

// appendValue writes the claim values a token's JSON decodes to without
// reflection, arrays included, and leaves the rest (objects, numbers
// json.Marshal writes with an exponent) to json.Marshal.
func appendValue(b []byte, v any) ([]byte, error) {
	switch x := v.(type) {
	case string:
		return appendString(b, x), nil
	case bool:
		return strconv.AppendBool(b, x), nil
	case int64:
		return strconv.AppendInt(b, x, 10), nil
	case nil:
		return append(b, "null"...), nil
	case []any:
		// A jwt's aud often comes as an array: left to json.Marshal, that
		// would be one reflective encode per capture.
		if x == nil {
			return append(b, "null"...), nil
		}
		b = append(b, '[')
		for i, e := range x {
			if i > 0 {
				b = append(b, ',')
			}
			var err error
			if b, err = appendValue(b, e); err != nil {
				return nil, err
			}
		}
		return append(b, ']'), nil
	case float64:
		if abs := math.Abs(x); abs == 0 || abs >= 1e-6 && abs < 1e21 {
			return strconv.AppendFloat(b, x, 'f', -1, 64), nil
		}
	}
	enc, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return append(b, enc...), nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// appendString is encoding/json's string encoding with its defaults: HTML
// characters, U+2028 and U+2029 escaped, invalid UTF-8 replaced by U+FFFD.
func appendString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '\\', '"':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xF])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
