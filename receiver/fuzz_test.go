package receiver

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// FuzzCaptureJSON: a capture's JSON comes back from files a user hands
// to replay (an NDJSON export) and from a receiver's admin API. Reading
// it never panics, and what reads writes back as JSON that reads to the
// same capture, byte for byte the second time.
func FuzzCaptureJSON(f *testing.F) {
	c := Capture{
		ID: "cap_01J0000000000000000000000", ReceivedAt: time.Unix(1_800_000_000, 123456000).UTC(), Method: "POST", Path: "/a%2Fb",
		Query: "a=1&b=%ff", Headers: map[string][]string{"webhook-id": {"evt_1"}, "x": nil}, Body: []byte{0xff, 'a'},
		Event: "payment", WebhookID: "evt_1", Verdict: Verdict{Status: "invalid", Scheme: "jwt", Reason: "r", Claims: map[string]any{"exp": 1.0}},
		Response: CaptureResponse{Status: 0, Rule: "rule_1", Error: "cut", Headers: map[string][]string{"a": {"b"}}, Body: "x", DurationMS: 3},
	}
	b, err := json.Marshal(c)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	for _, s := range []string{`{}`, `null`, `[]`, `{"received_at":"2026-11-25T10:00:00.123456Z"}`,
		`{"received_at":"2026-11-25T10:00:00Z","body":"AAE=","body_encoding":"base64"}`,
		`{"received_at":"2026-11-25T10:00:00Z","body":"x","body_encoding":"rot13"}`,
		`{"received_at":"2026-11-25T10:00:00Z","query":"//8=","query_encoding":"base64"}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var got Capture
		if err := json.Unmarshal(data, &got); err != nil {
			return
		}
		once, err := json.Marshal(got)
		if err != nil {
			t.Fatalf("a capture read from %q does not write: %v", data, err)
		}
		var again Capture
		if err := json.Unmarshal(once, &again); err != nil {
			t.Fatalf("a capture written as %s does not read back: %v", once, err)
		}
		twice, err := json.Marshal(again)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(once, twice) {
			t.Fatalf("round trip changed the capture:\n%s\n%s", once, twice)
		}
	})
}

// FuzzReplayRequest: POST /_sidehook/requests/{id}/replay's body is
// whatever the caller sends. Reading it never panics, a refusal of a field
// of the wrong type names the field, and what reads writes back to the
// same request.
func FuzzReplayRequest(f *testing.F) {
	for _, s := range []string{`{}`, `{"to":"http://127.0.0.1:1/x","body":"b","sign":["jwt"]}`, `{"sign":[]}`, `{"body":null}`,
		`{"sign":true}`, `{"to":1}`, `{"extra":1}`, `{"sign":[1]}`, `[]`, `null`, `{"to":"a"} {}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var q ReplayRequest
		err := json.Unmarshal(data, &q)
		if err != nil {
			var te *json.UnmarshalTypeError
			if errors.As(err, &te) && strings.Contains(te.Field, ".") {
				t.Fatalf("a wrong type in %q refused without naming its field: %v", data, err)
			}
			return
		}
		b, err := json.Marshal(q)
		if err != nil {
			t.Fatalf("a request read from %q does not write: %v", data, err)
		}
		var back ReplayRequest
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatalf("a request written as %s does not read back: %v", b, err)
		}
		if !reflect.DeepEqual(q, back) {
			t.Fatalf("round trip: got %+v, want %+v", back, q)
		}
	})
}

// FuzzCurlCommand: the curl export turns what any sender sent (method,
// path, query, headers, body) into a shell command a user runs. Read as
// the shell reads it, the command is the one curl invocation with every
// byte as captured: nothing a sender sent escapes its quotes.
func FuzzCurlCommand(f *testing.F) {
	f.Add("POST", "/hooks", "a=1", "x-team", "billing", []byte(`{"a":1}`))
	f.Add("GET", "/a[1]{2}", "q='; rm -rf /'", "x", "", []byte(nil))
	f.Add("PUT", "/$(id)", "`id`", "evil", `a'\''b`+"\n|&;", []byte("@/etc/passwd"))
	f.Add("HEAD", "/", "", "e", "\"$HOME\"", []byte{0, 0xff, '\'', '\n'})
	f.Fuzz(func(t *testing.T, method, path, query, name, value string, body []byte) {
		if method == "" || name == "" {
			return
		}
		c := &Capture{Method: method, Path: path, Query: query, Body: body,
			Headers: map[string][]string{strings.ToLower(name): {value}}}
		cmd := CurlCommand("http://127.0.0.1:1", c)
		words, pipe, err := shellWords(cmd)
		if err != nil {
			t.Fatalf("command %q: %v", cmd, err)
		}
		// An optional "printf … |" feeding the body, then curl.
		var fed string // what printf writes to curl
		if pipe >= 0 {
			if words[0] != "printf" || pipe < 2 || pipe > 3 {
				t.Fatalf("command %q: %q before the pipe, want printf and its arguments", cmd, words[:pipe])
			}
			if pipe == 3 && words[1] == "%s" {
				fed = words[2]
			} else {
				fed = unoctal(t, words[1])
			}
			words = words[pipe:]
		}
		switch {
		case len(body) == 0:
		case pipe >= 0:
			if fed != string(body) || !containsPair(words, "--data-binary", "@-") {
				t.Fatalf("command %q: feeds %q on stdin, want %q and --data-binary @-", cmd, fed, body)
			}
		case !containsPair(words, "--data-binary", string(body)):
			t.Fatalf("command %q: no --data-binary %q in %q", cmd, body, words)
		}
		if len(words) < 4 || words[0] != "curl" {
			t.Fatalf("command %q: want one curl command, got %q", cmd, words)
		}
		if method != "HEAD" && !containsPair(words, "-X", method) {
			t.Fatalf("command %q: no -X %q in %q", cmd, method, words)
		}
		if u := requestURL("http://127.0.0.1:1", c); !slices.Contains(words, u) {
			t.Fatalf("command %q: no URL %q in %q", cmd, u, words)
		}
		lname := strings.ToLower(name)
		if !skippedCurlHeaders[lname] {
			want := lname + ": " + value
			if value == "" {
				want = lname + ";"
			}
			if !containsPair(words, "-H", want) {
				t.Fatalf("command %q: no -H %q in %q", cmd, want, words)
			}
		}
	})
}

// unoctal reads printf's format of octal escapes, \ooo for each byte.
func unoctal(tb testing.TB, format string) string {
	tb.Helper()
	var b []byte
	for len(format) > 0 {
		if len(format) < 4 || format[0] != '\\' {
			tb.Fatalf("printf format %q: want only \\ooo escapes", format)
		}
		n, err := strconv.ParseUint(format[1:4], 8, 8)
		if err != nil {
			tb.Fatalf("printf format %q: %v", format, err)
		}
		b = append(b, byte(n))
		format = format[4:]
	}
	return string(b)
}

// containsPair reports whether flag is followed by value somewhere in words.
func containsPair(words []string, flag, value string) bool {
	for i := 0; i+1 < len(words); i++ {
		if words[i] == flag && words[i+1] == value {
			return true
		}
	}
	return false
}

// shellWords splits a command as a POSIX shell does for the subset
// CurlCommand may write: words of plain characters, single-quoted text
// and backslash-escaped characters, separated by spaces, and at most one
// lone "|" (pipe is the index of the first word after it, else -1).
// Anything else unquoted (a $, a backtick, a ;, a newline...) is an error:
// the shell would read it as more than text.
func shellWords(cmd string) (words []string, pipe int, err error) {
	var (
		cur strings.Builder
		in  bool // a word is open
	)
	pipe = -1
	for i := 0; i < len(cmd); i++ {
		ch := cmd[i]
		switch {
		case ch == ' ':
			if in {
				words = append(words, cur.String())
				cur.Reset()
				in = false
			}
		case ch == '\'':
			j := strings.IndexByte(cmd[i+1:], '\'')
			if j < 0 {
				return nil, 0, errors.New("unterminated quote")
			}
			cur.WriteString(cmd[i+1 : i+1+j])
			i += j + 1
			in = true
		case ch == '\\':
			if i+1 == len(cmd) || cmd[i+1] == '\n' {
				return nil, 0, errors.New("a backslash escapes nothing")
			}
			cur.WriteByte(cmd[i+1])
			i++
			in = true
		case ch == '|':
			if in || i+1 < len(cmd) && cmd[i+1] != ' ' {
				return nil, 0, errors.New("a pipe inside a word")
			}
			if pipe >= 0 {
				return nil, 0, errors.New("a second pipe")
			}
			pipe = len(words)
		case strings.IndexByte("$`\"&;<>()*?[]{}~#!=%\n\t\r", ch) >= 0 && !(ch == '%' || ch == '=' || ch == '#' && in || ch == '~' && in):
			return nil, 0, errors.New("unquoted " + strconv.QuoteRune(rune(ch)))
		default:
			cur.WriteByte(ch)
			in = true
		}
	}
	if in {
		words = append(words, cur.String())
	}
	return words, pipe, nil
}

// FuzzReadToken: a replay reads the alg, kid and claims of the token a
// capture carried, unverified: any sender's text. It never panics, and
// what it reads names an algorithm.
func FuzzReadToken(f *testing.F) {
	for _, s := range []string{"", "a.b.c", "eyJhbGciOiJIUzI1NiJ9.e30.", "eyJhbGciOiJFUzI1NiIsImtpZCI6N30.eyJhdWQiOlsxLCJ4Il0sImlzcyI6e319.c2ln",
		"eyJhbGciOiJub25lIn0.eyJhdWQiOltdfQ.", "eyJhbGciOm51bGx9.e30.x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		facts, ok := readToken(raw)
		if !ok {
			if facts != (tokenFacts{}) {
				t.Fatalf("readToken(%q) = %+v, false; want nothing read", raw, facts)
			}
			return
		}
		if facts.alg == "" {
			t.Fatalf("readToken(%q) = %+v: no alg", raw, facts)
		}
	})
}
