package tunnel_test

import (
	"bytes"
	"net/url"
	"reflect"
	"strings"
	"testing"

	"github.com/sidehook/sidehook/relay/config"
	"github.com/sidehook/sidehook/relay/tunnel"
)

// FuzzDecode feeds the one frame decoder both ends use with anything a
// peer might send: it must never panic, and what it accepts must survive
// an encode and a second decode unchanged.
func FuzzDecode(f *testing.F) {
	f.Add([]byte(`{"type":"hello","version":1}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := tunnel.Decode(data)
		if err != nil {
			if m != nil {
				t.Fatalf("Decode returned a message with error %v", err)
			}
			return
		}
		b, err := tunnel.Encode(m)
		if err != nil {
			t.Fatalf("Encode of a decoded message: %v", err)
		}
		again, err := tunnel.Decode(b)
		if err != nil {
			t.Fatalf("Decode of %s (encoded from an accepted message): %v", b, err)
		}
		if !reflect.DeepEqual(normal(m), normal(again)) {
			t.Fatalf("round trip changed the message:\n%+v\n%+v", m, again)
		}
	})
}

// normal makes empty and nil the same: omitempty drops both.
func normal(m *tunnel.Message) tunnel.Message {
	c := *m
	if len(c.Body) == 0 {
		c.Body = nil
	}
	if len(c.Events) == 0 {
		c.Events = nil
	}
	if len(c.Headers) == 0 {
		c.Headers = nil
	}
	for k, v := range c.Headers {
		if len(v) == 0 {
			c.Headers[k] = nil
		}
	}
	return c
}

func TestDecode(t *testing.T) {
	tests := []struct {
		name, in, wantErr string
	}{
		{"Delivery", `{"type":"delivery","id":1,"method":"POST","path":"/a","body":"AP8="}`, ""},
		{"NoMethod", `{"type":"delivery","id":1}`, "not an HTTP method"},
		{"BadPath", `{"type":"delivery","id":1,"method":"GET","path":"a"}`, "does not start with /"},
		{"PathWithQuery", `{"type":"delivery","id":1,"method":"GET","path":"/a?b"}`, "holds a ? or #"},
		{"LongHeaderName", `{"type":"delivery","id":1,"method":"POST","path":"/a","body":"AP8=","headers":{"X-Webio-A-Header-Name-Longer-Than-32":["x"]}}`, ""},
		{"LongMethod", `{"type":"delivery","id":1,"method":"ABCDEFGHIJKLMNOPQRSTUVWXYZABCDEFG"}`, "not an HTTP method"},
		{"BadHeaderName", `{"type":"delivery","id":1,"method":"GET","headers":{"a b":["x"]}}`, "header name"},
		{"HeaderNewline", `{"type":"delivery","id":1,"method":"GET","headers":{"a":["x\ny"]}}`, "line break"},
		{"ResultBadStatus", `{"type":"result","id":1,"status":42}`, "not an HTTP status"},
		{"ResultEmpty", `{"type":"result","id":1}`, "status or an error"},
		{"ResultNegative", `{"type":"result","id":1,"status":200,"duration_ms":-1}`, "negative"},
		{"ErrorEmpty", `{"type":"error"}`, "error text"},
		{"ReadyNoOrg", `{"type":"ready","version":1,"name":"x"}`, "org and name"},
		{"HelloNegativeMax", `{"type":"hello","version":1,"max_message":-1}`, "max_message"},
		{"Array", `[1,2]`, "not a JSON message"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := tunnel.Decode([]byte(tt.in))
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("got %v, want no error", err)
				}
				if !bytes.Equal(m.Body, []byte{0, 0xff}) {
					t.Errorf("body: got %v, want the base64-decoded bytes", m.Body)
				}
				return
			}
			if err == nil || !bytes.Contains([]byte(err.Error()), []byte(tt.wantErr)) {
				t.Errorf("got %v, want an error saying %q", err, tt.wantErr)
			}
		})
	}
}

// FuzzParseURL: a tunnel endpoint's URL comes from the relay's YAML, the
// API and other relays' NATS requests. What ParseURL reads names a valid
// tunnel and reads back the same when written out again; and every URL
// relay/config accepts for an endpoint is one ParseURL reads, to the same
// name and path, or each of its deliveries would fail at send time.
func FuzzParseURL(f *testing.F) {
	for _, s := range []string{"tunnel://laptop", "tunnel://laptop/", "tunnel://laptop/hooks/in?a=1", "tunnel://laptop/a%2Fb",
		"TUNNEL://laptop/x", "tunnel://a.b-c_d/%7E?", "http://laptop/", "tunnel://", "tunnel://lap:80/", "tunnel://u@lap/",
		"tunnel://lap/#frag", "tunnel://Lap", "tunnel:lap", "tunnel://lap/a{b}", "tunnel://lap/%zz", "tunnel://lap/a/%2e%2e/b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		name, path, query, err := tunnel.ParseURL(raw)
		cfgErr := config.ValidURL(raw)
		cfgName, cfgPath, isTunnel := config.Endpoint{URL: raw}.Tunnel()
		if err != nil {
			if name != "" || path != "" || query != "" {
				t.Fatalf("%q: got %q %q %q with %v", raw, name, path, query, err)
			}
			if cfgErr == nil && isTunnel {
				t.Fatalf("%q: relay/config accepts it (tunnel %q, path %q), ParseURL refuses it: %v", raw, cfgName, cfgPath, err)
			}
			return
		}
		if err := tunnel.ValidName(name); err != nil {
			t.Fatalf("%q: name %q: %v", raw, name, err)
		}
		if path != "" && path[0] != '/' || strings.ContainsAny(path, "?#") || strings.Contains(query, "#") {
			t.Fatalf("%q: path %q, query %q", raw, path, query)
		}
		again := "tunnel://" + name + path
		if query != "" {
			again += "?" + query
		}
		if n, p, q, err := tunnel.ParseURL(again); err != nil || n != name || p != path || q != query {
			t.Fatalf("%q read as %q %q %q, written out as %q, read back as %q %q %q, %v", raw, name, path, query, again, n, p, q, err)
		}
		if cfgErr != nil || !isTunnel {
			return
		}
		up, err1 := url.PathUnescape(path)
		ucp, err2 := url.PathUnescape(cfgPath)
		if cfgName != name || err1 != nil || err2 != nil || up != ucp {
			t.Fatalf("%q: relay/config reads tunnel %q path %q, ParseURL %q %q", raw, cfgName, cfgPath, name, path)
		}
	})
}
