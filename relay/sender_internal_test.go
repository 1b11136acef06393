package relay

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"testing"
)

func TestParseTunnelURL(t *testing.T) {
	tests := []struct {
		in, name, path string
		ok             bool
	}{
		{"tunnel://laptop", "laptop", "/", true},
		{"tunnel://laptop/", "laptop", "/", true},
		{"tunnel://laptop/hooks/crm", "laptop", "/hooks/crm", true},
		{"tunnel://laptop?x=1", "laptop", "/?x=1", true},
		{"TUNNEL://laptop/a?b=c", "laptop", "/a?b=c", true},
		{"tunnel://", "", "", false},
		{"tunnel:///path", "", "", false},
		{"http://laptop/hooks", "", "", false},
		{"tunnel:/laptop", "", "", false},
		{"", "", "", false},
	}
	for _, tt := range tests {
		name, path, ok := parseTunnelURL(tt.in)
		if name != tt.name || path != tt.path || ok != tt.ok {
			t.Errorf("parseTunnelURL(%q): got %q %q %v, want %q %q %v", tt.in, name, path, ok, tt.name, tt.path, tt.ok)
		}
	}
}

func FuzzParseTunnelURL(f *testing.F) {
	for _, s := range []string{"tunnel://laptop", "tunnel://a/b?c", "tunnel://?", "http://x", "tunnel:///"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		name, path, ok := parseTunnelURL(s)
		if !ok {
			return
		}
		if name == "" || strings.ContainsAny(name, "/?") || !strings.HasPrefix(path, "/") {
			t.Fatalf("%q: got name %q path %q, want a name without / or ? and a path from /", s, name, path)
		}
		if !strings.HasSuffix(s, strings.TrimPrefix(path, "/")) {
			t.Fatalf("%q: path %q is not the URL's", s, path)
		}
	})
}

// stubTransport answers every request with its name as the status text.
type stubTransport struct{ name string }

func (s stubTransport) Send(context.Context, *OutboundRequest, int64) (*Response, error) {
	return &Response{Status: 200, Body: []byte(s.name)}, nil
}

type stubTunnels struct{ stubTransport }

func (stubTunnels) Serve(w http.ResponseWriter, r *http.Request, org, name string, onConnect func([]string)) {
}
func (stubTunnels) Tunnels(string) []TunnelInfo { return nil }

func TestSenderChoosesTransport(t *testing.T) {
	httpT := stubTransport{"http"}
	tests := []struct {
		name    string
		tunnels TunnelServer
		url     string
		want    string
		err     error
	}{
		{"HTTP", nil, "http://x/hook", "http", nil},
		{"HTTPS", stubTunnels{stubTransport{"tunnel"}}, "https://x/hook", "http", nil},
		{"Tunnel", stubTunnels{stubTransport{"tunnel"}}, "tunnel://laptop/hook", "tunnel", nil},
		{"NoTunnelServer", nil, "tunnel://laptop/hook", "", errNoTunnelServer},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := &sender{http: httpT, tunnels: tt.tunnels}
			tr, err := s.transport(tt.url)
			if !errors.Is(err, tt.err) {
				t.Fatalf("err: got %v, want %v", err, tt.err)
			}
			if err != nil {
				return
			}
			resp, _ := tr.Send(context.Background(), &OutboundRequest{}, 0)
			if string(resp.Body) != tt.want {
				t.Errorf("transport: got %s, want %s", resp.Body, tt.want)
			}
		})
	}
}

func TestEventCache(t *testing.T) {
	c := newEventCache()
	ev := &Event{ID: "evt_1", Org: "demo", Body: []byte("{}"), Deliveries: []DeliveryRef{{ID: "d1"}, {ID: "d2"}}}
	c.add(ev)
	if c.get("demo", "evt_1") != ev {
		t.Fatal("a just-added event is not cached")
	}
	c.attempted("demo", "evt_1")
	if c.get("demo", "evt_1") == nil {
		t.Fatal("dropped while a delivery still waits for its first attempt")
	}
	c.attempted("demo", "evt_1")
	if c.get("demo", "evt_1") != nil {
		t.Error("kept after every delivery was attempted")
	}
	if c.bytes != 0 {
		t.Errorf("bytes of an empty cache: got %d, want 0", c.bytes)
	}
	big := &Event{ID: "evt_big", Org: "demo", Body: make([]byte, maxCachedBody+1), Deliveries: []DeliveryRef{{ID: "d"}}}
	c.add(big)
	if c.get("demo", "evt_big") != nil {
		t.Error("cached a body above the bound")
	}
	body := make([]byte, 1024)
	n := maxCachedBytes/(len(body)+cachedOverhead) + 10
	for i := range n {
		c.add(&Event{ID: "evt_" + strconv.Itoa(i), Org: "demo", Body: body, Deliveries: []DeliveryRef{{ID: "d"}}})
	}
	if c.bytes > maxCachedBytes {
		t.Errorf("bytes: got %d, want at most %d", c.bytes, maxCachedBytes)
	}
	if c.get("demo", "evt_0") != nil || c.get("demo", "evt_"+strconv.Itoa(n-1)) == nil {
		t.Error("a full cache does not drop the oldest first")
	}
	for i := range n {
		c.attempted("demo", "evt_"+strconv.Itoa(i))
	}
	if len(c.entries) != 0 || c.bytes != 0 {
		t.Errorf("after every first attempt: %d entries, %d bytes; want none", len(c.entries), c.bytes)
	}
}
