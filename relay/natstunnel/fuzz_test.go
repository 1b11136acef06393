package natstunnel

import (
	"bytes"
	"net/http"
	"reflect"
	"strings"
	"testing"

	"golang.org/x/net/http/httpguts"
)

// FuzzDecodeReply feeds the reply parser anything a NATS client of the
// account might publish as an answer: it must never panic, what it accepts
// is a status or an error (never both), and it survives an encode and a
// second decode unchanged.
func FuzzDecodeReply(f *testing.F) {
	for _, r := range []*reply{
		{Status: 200, Header: http.Header{"X-App": {"yes"}}, LatencyUS: 1500, Body: []byte(`{"ok":true}`)},
		{Status: 204},
		{Error: "tunnel laptop: local app: connection refused"},
		{Error: "no tunnel client connected for laptop", NoClient: true},
		{Error: "no result in time", Timeout: true},
		{Status: 200, Body: []byte("line\nbreaks\nin the body")},
	} {
		b, err := encodeReply(r)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"v":1,"status":200}`))
	f.Add([]byte("{\"v\":1,\"status\":200,\"header\":{\"a b\":[\"x\"]}}\n"))
	f.Add([]byte("{\"v\":2,\"status\":200}\n"))
	f.Add([]byte("{\"v\":1,\"status\":200,\"header\":{}}\n"))
	f.Add([]byte("{\"v\":1,\"error\":\"x\",\"header\":{}}\n"))
	f.Add([]byte("{\"v\":1,\"status\":200}{}\nbody"))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := decodeReply(data)
		if err != nil {
			if r != nil {
				t.Fatalf("decodeReply returned a reply with error %v", err)
			}
			return
		}
		if (r.Status == 0) == (r.Error == "") {
			t.Fatalf("accepted a reply with status %d and error %q", r.Status, r.Error)
		}
		if r.Status != 0 && (r.Status < 100 || r.Status > 999) {
			t.Fatalf("accepted status %d", r.Status)
		}
		for k, vs := range r.Header {
			for _, v := range vs {
				if !httpguts.ValidHeaderFieldName(k) || strings.ContainsAny(v, "\r\n\x00") {
					t.Fatalf("accepted header %q: %q", k, v)
				}
			}
		}
		b, err := encodeReply(r)
		if err != nil {
			t.Fatalf("encode an accepted reply: %v", err)
		}
		again, err := decodeReply(b)
		if err != nil {
			t.Fatalf("decode of %q (encoded from an accepted reply): %v", b, err)
		}
		if !reflect.DeepEqual(r, again) {
			t.Fatalf("round trip changed the reply:\n%+v\n%+v", r, again)
		}
	})
}

// FuzzDecodeRequest does the same for the requests a holder answers.
func FuzzDecodeRequest(f *testing.F) {
	for _, r := range []*request{
		{Method: "POST", URL: "tunnel://laptop/hooks", Header: http.Header{"Webhook-Id": {"evt_1"}}, Org: "acme",
			DeliveryID: "dlv_1", Attempt: 3, TimeoutMS: 5000, Keep: 65536, Body: []byte(`{"a":1}`)},
		{Method: "GET", URL: "tunnel://laptop/custom-values?x=1", Org: "acme", Keep: -1},
	} {
		b, err := encodeRequest(r)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte("{\"v\":1,\"method\":\"POST\",\"url\":\"http://x\",\"org\":\"a\"}\n"))
	f.Add([]byte("{\"v\":1,\"method\":\"POST\",\"url\":\"tunnel://a\",\"org\":\"a\",\"header\":{}}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := decodeRequest(data)
		if err != nil {
			if r != nil {
				t.Fatalf("decodeRequest returned a request with error %v", err)
			}
			return
		}
		b, err := encodeRequest(r)
		if err != nil {
			t.Fatalf("encode an accepted request: %v", err)
		}
		again, err := decodeRequest(b)
		if err != nil {
			t.Fatalf("decode of %q (encoded from an accepted request): %v", b, err)
		}
		if !reflect.DeepEqual(r, again) {
			t.Fatalf("round trip changed the request:\n%+v\n%+v", r, again)
		}
	})
}

func TestDecodeReply(t *testing.T) {
	tests := []struct {
		name, in, wantErr string
		want              *reply
	}{
		{"Status", "{\"v\":1,\"status\":201,\"header\":{\"X-A\":[\"b\"]},\"latency_us\":7}\nbody\nmore",
			"", &reply{V: 1, Status: 201, Header: http.Header{"X-A": {"b"}}, LatencyUS: 7, Body: []byte("body\nmore")}},
		{"Error", "{\"v\":1,\"error\":\"refused\"}\n", "", &reply{V: 1, Error: "refused"}},
		{"NoNewline", `{"v":1,"status":200}`, "no newline", nil},
		{"OtherVersion", "{\"v\":2,\"status\":200}\n", "version 2", nil},
		{"Neither", "{\"v\":1}\n", "a status or an error", nil},
		{"Both", "{\"v\":1,\"status\":200,\"error\":\"x\"}\n", "carries no status", nil},
		{"ErrorWithBody", "{\"v\":1,\"error\":\"x\"}\nbody", "carries no status", nil},
		{"FlagWithoutError", "{\"v\":1,\"status\":200,\"no_client\":true}\n", "come with an error", nil},
		{"BadStatus", "{\"v\":1,\"status\":42}\n", "not an HTTP status", nil},
		{"NegativeLatency", "{\"v\":1,\"status\":200,\"latency_us\":-1}\n", "negative", nil},
		{"BadHeaderName", "{\"v\":1,\"status\":200,\"header\":{\"a b\":[\"x\"]}}\n", "header name", nil},
		{"HeaderLineBreak", "{\"v\":1,\"status\":200,\"header\":{\"A\":[\"x\\r\\ny\"]}}\n", "line break", nil},
		{"UnknownField", "{\"v\":1,\"status\":200,\"extra\":1}\n", "unknown field", nil},
		{"TwoValues", "{\"v\":1,\"status\":200}{}\n", "more than one", nil},
		{"NotJSON", "nope\n", "metadata", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := decodeReply([]byte(tt.in))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("got %+v, %v; want an error saying %q", got, err, tt.wantErr)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got %+v, %v; want %+v", got, err, tt.want)
			}
		})
	}
}

func TestFramesKeepBodiesExact(t *testing.T) {
	body := []byte("\x00\n{\"v\":1}\n\xff")
	b, err := encodeRequest(&request{Method: "PUT", URL: "tunnel://x.y/p", Org: "o", Body: body})
	if err != nil {
		t.Fatal(err)
	}
	r, err := decodeRequest(b)
	if err != nil || !bytes.Equal(r.Body, body) {
		t.Fatalf("got %+v, %v; want the body byte for byte", r, err)
	}
}
