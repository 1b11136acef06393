package auth

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// maxClaimsHint caps the initial size of a decoded claims map; a token
// sidehook signs has ten claims.
const maxClaimsHint = 16

// decodeClaims decodes a token's claims exactly as json.Unmarshal into a
// map[string]any does: the same map, or an error when it fails. Decoding
// claims is most of the cost of verifying a token, and those sidehook signs
// are a flat object of plain strings and numbers, which decodeFlatObject
// handles in a fraction of the time and allocations; anything else goes to
// encoding/json.
func decodeClaims(b []byte) (map[string]any, error) {
	if m, ok := decodeFlatObject(b); ok {
		return m, nil
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("decode claims: %w", err)
	}
	return m, nil
}

// decodeFlatObject decodes a JSON object whose member values are strings,
// numbers, booleans, null or arrays of those, and whose keys and strings are
// valid UTF-8 with no escapes. It reports false for anything else, valid
// JSON or not; when it reports true the map equals what json.Unmarshal would
// make. Keys and string values share one copy of b.
func decodeFlatObject(b []byte) (map[string]any, bool) {
	s := string(b)
	i := skipSpace(s, 0)
	if i == len(s) || s[i] != '{' {
		return nil, false
	}
	// Sizing the map up front saves growing it: at most a claim per comma,
	// capped, as the claims are not yet authenticated.
	m := make(map[string]any, min(strings.Count(s, ",")+1, maxClaimsHint))
	i = skipSpace(s, i+1)
	if i < len(s) && s[i] == '}' {
		return m, skipSpace(s, i+1) == len(s)
	}
	for {
		key, j, ok := scanString(s, i)
		if !ok {
			return nil, false
		}
		i = skipSpace(s, j)
		if i == len(s) || s[i] != ':' {
			return nil, false
		}
		val, j, ok := scanValue(s, skipSpace(s, i+1))
		if !ok {
			return nil, false
		}
		m[key] = val // the last of duplicate keys wins, as in encoding/json
		i = skipSpace(s, j)
		if i == len(s) {
			return nil, false
		}
		switch s[i] {
		case ',':
			i = skipSpace(s, i+1)
		case '}':
			return m, skipSpace(s, i+1) == len(s)
		default:
			return nil, false
		}
	}
}

// skipSpace returns the index of the first non-whitespace byte at or after
// i, whitespace being what JSON allows between tokens.
func skipSpace(s string, i int) int {
	for i < len(s) && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r') {
		i++
	}
	return i
}

// scanString reads a string starting at s[i] and returns it and the index
// after its closing quote. It refuses escapes, which would need
// unquoting, and invalid UTF-8, which encoding/json would replace.
func scanString(s string, i int) (string, int, bool) {
	if i == len(s) || s[i] != '"' {
		return "", 0, false
	}
	ascii := true
	for j := i + 1; j < len(s); j++ {
		switch c := s[j]; {
		case c == '"':
			str := s[i+1 : j]
			if !ascii && !utf8.ValidString(str) {
				return "", 0, false
			}
			return str, j + 1, true
		case c == '\\' || c < ' ':
			return "", 0, false
		case c >= utf8.RuneSelf:
			ascii = false
		}
	}
	return "", 0, false
}

// scanValue reads a scalar (see scanScalar) or an array of scalars, such
// as a jwt's aud in its array form (golang-jwt and most signers write a
// single audience as ["endpoint"]), and returns it as encoding/json would
// decode it into an any: an array as []any.
func scanValue(s string, i int) (any, int, bool) {
	if i == len(s) || s[i] != '[' {
		return scanScalar(s, i)
	}
	arr := []any{}
	i = skipSpace(s, i+1)
	if i < len(s) && s[i] == ']' {
		return arr, i + 1, true
	}
	for {
		v, j, ok := scanScalar(s, i)
		if !ok {
			return nil, 0, false
		}
		arr = append(arr, v)
		i = skipSpace(s, j)
		if i == len(s) {
			return nil, 0, false
		}
		switch s[i] {
		case ',':
			i = skipSpace(s, i+1)
		case ']':
			return arr, i + 1, true
		default:
			return nil, 0, false
		}
	}
}

// scanScalar reads a string, number, boolean or null starting at s[i] and
// returns its value as encoding/json would decode it into an any, and the
// index after it.
func scanScalar(s string, i int) (any, int, bool) {
	if i == len(s) {
		return nil, 0, false
	}
	switch c := s[i]; {
	case c == '"':
		return scanString(s, i)
	case c == '-' || isDigit(c):
		j, ok := scanNumber(s, i)
		if !ok {
			return nil, 0, false
		}
		// encoding/json converts with ParseFloat too, and refuses what it
		// cannot represent (1e400) with an error: leave that to it.
		f, err := strconv.ParseFloat(s[i:j], 64)
		if err != nil {
			return nil, 0, false
		}
		return f, j, true
	}
	switch rest := s[i:]; {
	case strings.HasPrefix(rest, "true"):
		return true, i + len("true"), true
	case strings.HasPrefix(rest, "false"):
		return false, i + len("false"), true
	case strings.HasPrefix(rest, "null"):
		return nil, i + len("null"), true
	}
	return nil, 0, false
}

// scanNumber returns the index after the JSON number starting at s[i]:
// -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func scanNumber(s string, i int) (int, bool) {
	if s[i] == '-' {
		i++
	}
	switch {
	case i < len(s) && s[i] == '0':
		i++
	case i < len(s) && isDigit(s[i]):
		i = skipDigits(s, i)
	default:
		return 0, false
	}
	if i < len(s) && s[i] == '.' {
		if i+1 == len(s) || !isDigit(s[i+1]) {
			return 0, false
		}
		i = skipDigits(s, i+1)
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		if i == len(s) || !isDigit(s[i]) {
			return 0, false
		}
		i = skipDigits(s, i)
	}
	return i, true
}

func skipDigits(s string, i int) int {
	for i < len(s) && isDigit(s[i]) {
		i++
	}
	return i
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }
