package httpjson_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/sidehook/sidehook/internal/httpjson"
)

func TestIsLoopback(t *testing.T) {
	cases := map[string]bool{
		"127.0.0.1:8080": true, "localhost:0": true, "[::1]:80": true, "127.9.9.9:1": true,
		":8080": false, "0.0.0.0:80": false, "[::]:80": false, "example.com:80": false, "10.0.0.1:80": false,
	}
	for addr, want := range cases {
		if got := httpjson.IsLoopback(addr); got != want {
			t.Errorf("IsLoopback(%q) = %v, want %v", addr, got, want)
		}
	}
}

func TestDecode(t *testing.T) {
	type doc struct {
		A string `json:"a"`
	}
	cases := []struct {
		name    string
		body    string
		emptyOK bool
		status  int // 0: no error
	}{
		{"OK", `{"a":"x"}`, false, 0},
		{"EmptyRefused", ``, false, 400},
		{"EmptyAllowed", "  \n", true, 0},
		{"UnknownField", `{"b":1}`, false, 400},
		{"TwoValues", `{"a":"x"}{}`, false, 400},
		{"NotJSON", `a=1`, false, 400},
		{"Null", `null`, true, 400},
		{"Array", ` [{"a":"x"}]`, false, 400},
		{"TooLarge", `{"a":"` + strings.Repeat("x", httpjson.MaxRequest) + `"}`, false, 413},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("POST", "/", strings.NewReader(tc.body))
			var d doc
			err := httpjson.Decode(httptest.NewRecorder(), r, &d, tc.emptyOK)
			var he *httpjson.Error
			switch {
			case tc.status == 0 && err != nil:
				t.Fatalf("got %v, want no error", err)
			case tc.status != 0 && (!errors.As(err, &he) || he.Status != tc.status):
				t.Fatalf("got %v, want an *Error with status %d", err, tc.status)
			}
		})
	}
}

// TestDecodeWrongType: a field of the wrong type is named by its JSON
// path, with what it takes and what came, never encoding/json's Go struct
// and type names ("cannot unmarshal string into Go struct field
// endpointDoc.RawEndpoint.events of type []string").
func TestDecodeWrongType(t *testing.T) {
	type Inner struct {
		Events  []string          `json:"events"`
		Max     *int              `json:"max_in_flight"`
		Headers map[string]string `json:"headers"`
		Retry   *struct {
			Schedule []string `json:"schedule"`
		} `json:"retry"`
	}
	type doc struct {
		Inner
		Since string `json:"since"`
		//lint:ignore U1000 never set: an unexported namesake of Since, which Decode must not take for it
		since int
		On    bool    `json:"enabled"`
		Rate  float64 `json:"rate"`
		Items []struct {
			Name string `json:"name"`
		} `json:"items"`
	}
	cases := []struct{ body, want string }{
		{`{"events":"payment"}`, "events: want a list of strings, got a string"},
		{`{"events":["payment",1]}`, "events: want a list of strings, got a number in it"},
		{`{"max_in_flight":"3"}`, "max_in_flight: want a whole number, got a string"},
		{`{"max_in_flight":1.5}`, "max_in_flight: want a whole number, got 1.5"},
		{`{"headers":{"x-team":1}}`, "headers: want an object of strings, got a number in it"},
		{`{"headers":[]}`, "headers: want an object of strings, got a list"},
		{`{"retry":{"schedule":"1s"}}`, "retry.schedule: want a list of strings, got a string"},
		{`{"retry":"1s"}`, "retry: want an object, got a string"},
		{`{"since":5}`, "since: want a string, got a number"},
		{`{"enabled":"yes"}`, "enabled: want true or false, got a string"},
		{`{"rate":{}}`, "rate: want a number, got an object"},
		{`{"items":[{"name":true}]}`, "items.name: want a string, got a boolean"},
	}
	for _, tc := range cases {
		t.Run(tc.body, func(t *testing.T) {
			r := httptest.NewRequest("POST", "/", strings.NewReader(tc.body))
			var d doc
			err := httpjson.Decode(httptest.NewRecorder(), r, &d, false)
			var he *httpjson.Error
			if !errors.As(err, &he) || he.Status != 400 || he.Code != "invalid_json" {
				t.Fatalf("got %v, want a 400 invalid_json", err)
			}
			if he.Reason != tc.want {
				t.Errorf("got %q, want %q", he.Reason, tc.want)
			}
		})
	}
}

func TestWriteErrorHidesTheCause(t *testing.T) {
	cases := []struct {
		name       string
		err        error
		status     int
		code       string
		retryAfter string
	}{
		{"ClientError", httpjson.Errorf(400, "invalid_query", "limit %q", "x"), 400, "invalid_query", ""},
		{"Internal", errors.New("badger: secret path /var/x"), 500, "internal", ""},
		{"Unavailable", &httpjson.Error{Status: 503, Code: "store_unavailable", Reason: "disk full", Err: errors.New("x"), RetryAfter: 1}, 503, "store_unavailable", "1"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w := httptest.NewRecorder()
			r := httptest.NewRequest("GET", "/", nil).WithContext(context.Background())
			httpjson.Handler{Log: zerolog.Nop(), Fn: func(http.ResponseWriter, *http.Request) error { return tc.err }}.ServeHTTP(w, r)
			var b httpjson.Body
			if err := json.Unmarshal(w.Body.Bytes(), &b); err != nil {
				t.Fatal(err)
			}
			if w.Code != tc.status || b.Error != tc.code || strings.Contains(w.Body.String(), "badger") {
				t.Fatalf("got %d %s, want %d with code %s and no internal cause", w.Code, w.Body, tc.status, tc.code)
			}
			if got := w.Header().Get("Retry-After"); got != tc.retryAfter {
				t.Fatalf("got Retry-After %q, want %q", got, tc.retryAfter)
			}
		})
	}
}

func TestNewAnswerError(t *testing.T) {
	tests := []struct {
		name, body, code, reason, msg string
	}{
		{"JSON", `{"error":"queue_full","reason":"retry later"}`, "queue_full", "retry later",
			"relay answered 429 queue_full to POST /v1/events: retry later"},
		{"Text", " upstream down\n", "", "upstream down", "relay answered 429 to POST /v1/events: upstream down"},
		{"JSONWithoutError", `{"reason":"x"}`, "", `{"reason":"x"}`, `relay answered 429 to POST /v1/events: {"reason":"x"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := httpjson.NewAnswerError("relay", "POST", "/v1/events", 429, []byte(tt.body))
			if e.Code != tt.code || e.Reason != tt.reason || e.Error() != tt.msg {
				t.Errorf("got code %q reason %q message %q; want %q %q %q", e.Code, e.Reason, e.Error(), tt.code, tt.reason, tt.msg)
			}
		})
	}
}

// TestDecodeReasons: a refusal says what is wrong with the body in the
// client's words; an object with a field the call does not take is not
// told it is no JSON object.
func TestDecodeReasons(t *testing.T) {
	type doc struct {
		Name string `json:"name"`
	}
	tests := []struct{ name, body, reason string }{
		{"UnknownField", `{"name":"a","colour":"red"}`, `unknown field "colour"`},
		{"Syntax", `{"name":}`, "not valid JSON: invalid character '}' looking for beginning of value"},
		{"CutShort", `{"name":"a"`, "not valid JSON: the object is cut short"},
		{"Array", `[]`, "want a JSON object, not an array"},
		{"Null", `null`, "want a JSON object, not null"},
		{"NotJSONLikeNull", `notjson`, "not valid JSON: invalid character 'o' in literal null (expecting 'u')"},
		{"NotJSONAtAll", `<xml/>`, "not valid JSON: invalid character '<' looking for beginning of value"},
		{"WrongType", `{"name":1}`, "name: want a string, got a number"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var v doc
			r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(tt.body))
			err := httpjson.Decode(httptest.NewRecorder(), r, &v, false)
			var e *httpjson.Error
			if !errors.As(err, &e) || e.Status != http.StatusBadRequest || e.Code != "invalid_json" || e.Reason != tt.reason {
				t.Errorf("Decode(%s) = %v, want 400 invalid_json %q", tt.body, err, tt.reason)
			}
		})
	}
}

// FuzzDecode: request bodies are untrusted. Decode reads one JSON object
// into v, refusing unknown fields and trailing values, and every refusal
// is an *Error of 400 or 413 with a reason.
func FuzzDecode(f *testing.F) {
	for _, s := range []string{``, ` `, `{}`, `{"name":"a","n":1}`, `{"name":"a"} {}`, `{"name":"a"} x`, `{"colour":"red"}`, `[]`, `null`,
		`{"n":1e400}`, `{"name":1}`, `{"name":"a"`, "{\"name\":\"\xff\"}", `{"NAME":"a"}`, `{"name":"a"}` + "\n\n"} {
		f.Add([]byte(s), false)
	}
	f.Add([]byte(``), true)
	f.Fuzz(func(t *testing.T, body []byte, emptyOK bool) {
		type doc struct {
			Name string `json:"name"`
			N    int    `json:"n"`
		}
		var v doc
		r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(string(body)))
		err := httpjson.Decode(httptest.NewRecorder(), r, &v, emptyOK)
		if err != nil {
			var e *httpjson.Error
			if !errors.As(err, &e) || e.Status != http.StatusBadRequest && e.Status != http.StatusRequestEntityTooLarge || e.Code == "" || e.Reason == "" {
				t.Fatalf("Decode(%q) = %#v, want an *Error of 400 or 413", body, err)
			}
			return
		}
		if strings.TrimSpace(string(body)) == "" {
			if !emptyOK || v != (doc{}) {
				t.Fatalf("Decode(%q, %v) = %+v, nil; want an error unless empty bodies are allowed, and an empty doc", body, emptyOK, v)
			}
			return
		}
		if !bytes.HasPrefix(bytes.TrimSpace(body), []byte("{")) {
			t.Fatalf("Decode(%q) = %+v, nil: want a refusal of anything but an object", body, v)
		}
		// What was read is what a strict decoder reads of the body.
		var want doc
		dec := json.NewDecoder(strings.NewReader(string(body)))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&want); err != nil || v != want || dec.More() {
			t.Fatalf("Decode(%q) = %+v; a strict decoder reads %+v, %v", body, v, want, err)
		}
	})
}

func TestCallable(t *testing.T) {
	for in, want := range map[string]string{
		"0.0.0.0:8080":   "127.0.0.1:8080",
		"[::]:8080":      "127.0.0.1:8080",
		":8080":          "127.0.0.1:8080",
		"127.0.0.1:8080": "127.0.0.1:8080",
		"[::1]:80":       "[::1]:80",
		"10.0.0.2:443":   "10.0.0.2:443",
		"localhost:0":    "localhost:0",
		"no-port":        "no-port",
	} {
		if got := httpjson.Callable(in); got != want {
			t.Errorf("Callable(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestWriteReadsAsSent(t *testing.T) {
	w := httptest.NewRecorder()
	httpjson.Write(w, 401, httpjson.Body{Error: "unauthorized", Reason: "send Authorization: Bearer <key> & retry"})
	want := `{"error":"unauthorized","reason":"send Authorization: Bearer <key> & retry"}` + "\n"
	if w.Code != 401 || w.Body.String() != want || w.Header().Get("Content-Type") != "application/json" {
		t.Fatalf("got %d %q (%s), want 401 %q as application/json", w.Code, w.Body, w.Header().Get("Content-Type"), want)
	}
}

// TestBaseURL: a base URL may have a path (a relay behind a proxy, under
// a prefix), but not one of the URLs sidehook prints for other uses: a
// dashboard, the ingest route or a platform's public URL. Pasted as a
// base, each made a request to a route under it and an answer ("405",
// "unknown id") that named neither the URL nor the mistake.
func TestBaseURL(t *testing.T) {
	tests := []struct {
		name, raw, want, err string
	}{
		{"Host", "http://127.0.0.1:8080", "http://127.0.0.1:8080", ""},
		{"FinalSlash", "http://127.0.0.1:8080/", "http://127.0.0.1:8080", ""},
		{"Prefix", "https://example.com/sidehook/", "https://example.com/sidehook", ""},
		{"NoScheme", "127.0.0.1:8080", "", "want an http:// or https:// URL"},
		{"Dashboard", "http://127.0.0.1:8080/_sidehook/ui/", "", `relay URL "http://127.0.0.1:8080/_sidehook/ui" is a page or route of the relay: give its base URL, http://127.0.0.1:8080`},
		{"AdminAPI", "http://127.0.0.1:8081/_sidehook", "", "give its base URL, http://127.0.0.1:8081"},
		{"Ingest", "http://127.0.0.1:8080/v1/events", "", "give its base URL, http://127.0.0.1:8080"},
		{"PublicURL", "https://example.com/sidehook/in/demo", "", "give its base URL, https://example.com/sidehook"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := httpjson.BaseURL(tt.raw, "relay")
			if tt.err == "" {
				if err != nil || got != tt.want {
					t.Errorf("got %q %v, want %q", got, err, tt.want)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("got %q %v, want an error with %q", got, err, tt.err)
			}
		})
	}
}
