package receiverapi_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/sidehook/sidehook/receiver/receiverapi"
	"github.com/sidehook/sidehook/receiver/receivertest"
	"github.com/sidehook/sidehook/replay"
)

func ids(items []replay.Item) string {
	var s []string
	for _, it := range items {
		s = append(s, it.ID)
	}
	return strings.Join(s, " ")
}

// source is a replay source of the receiver at base.
func source(t *testing.T, base, token string, pageSize int) *receiverapi.Source {
	t.Helper()
	c, err := receiverapi.New(base, token, nil)
	if err != nil {
		t.Fatal(err)
	}
	return &receiverapi.Source{Client: c, PageSize: pageSize}
}

func TestSource(t *testing.T) {
	rcv := receivertest.NewServer(t)
	post(t, rcv.URL+"/webhooks?x=1", `{"type":"payment","amount":"50.00"}`, map[string]string{"webhook-id": "evt_A", "Content-Type": "application/json"})
	post(t, rcv.URL+"/webhooks", `{"type":"inboundMessage","body":"hi"}`, map[string]string{"webhook-id": "evt_B"})
	post(t, rcv.URL+"/other", `{"type":"payment","amount":"1.00"}`, map[string]string{"webhook-id": "evt_C"})
	caps := rcv.Expect(receivertest.Filter{}, 3, 10*time.Second) // newest first
	first, second, third := caps[2], caps[1], caps[0]

	// A page of one makes every listing walk the cursor.
	src := source(t, rcv.URL+"/", "", 1)
	tests := []struct {
		name string
		sel  replay.Selection
		want []string
	}{
		{"AllOldestFirst", replay.Selection{}, []string{first.ID, second.ID, third.ID}},
		{"Event", replay.Selection{Event: "payment"}, []string{first.ID, third.ID}},
		{"Verdict", replay.Selection{Verdict: "unverified", Event: "inbound_message"}, []string{second.ID}},
		{"NoVerdictMatch", replay.Selection{Verdict: "invalid"}, nil},
		{"Since", replay.Selection{Since: second.ReceivedAt}, []string{second.ID, third.ID}},
		{"Until", replay.Selection{Until: second.ReceivedAt}, []string{first.ID, second.ID}},
		{"IDs", replay.Selection{IDs: []string{third.ID, first.ID}}, []string{third.ID, first.ID}},
		{"IDsFiltered", replay.Selection{IDs: []string{third.ID, second.ID}, Event: "payment"}, []string{third.ID}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			items, err := src.Select(context.Background(), tt.sel)
			if err != nil {
				t.Fatal(err)
			}
			if got := ids(items); got != strings.Join(tt.want, " ") {
				t.Errorf("got %q, want %q", got, strings.Join(tt.want, " "))
			}
		})
	}

	items, err := src.Select(context.Background(), replay.Selection{IDs: []string{first.ID}})
	if err != nil || len(items) != 1 {
		t.Fatalf("got %v %v", items, err)
	}
	it := items[0]
	if it.Target != rcv.URL+"/webhooks?x=1" || it.Method != "POST" || it.WebhookID != "evt_A" || it.Event != "payment" ||
		string(it.Body) != `{"type":"payment","amount":"50.00"}` || it.Header.Get("Content-Type") != "application/json" {
		t.Errorf("item: got %+v, want the capture's POST to /webhooks?x=1, evt_A, payment, with its body and JSON content type", it)
	}
}

func TestSourceErrors(t *testing.T) {
	rcv := receivertest.NewServer(t)
	post(t, rcv.URL+"/webhooks", `{}`, nil)
	c := rcv.Expect(receivertest.Filter{}, 1, 10*time.Second)[0]

	// The receiver behind a proxy that wants an admin token, as one
	// listening beyond loopback does.
	target, _ := url.Parse(rcv.URL)
	proxy := httputil.NewSingleHostReverseProxy(target)
	guarded := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer s3cret" {
			w.WriteHeader(http.StatusUnauthorized)
			w.Write([]byte(`{"error":"unauthorized","reason":"admin token required"}`))
			return
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(guarded.Close)

	tests := []struct {
		name string
		src  *receiverapi.Source
		sel  replay.Selection
		want string
	}{
		{"UnknownIDs", source(t, rcv.URL, "", 0), replay.Selection{IDs: []string{"cap_nope", c.ID, "cap_gone"}}, "2 unknown ids: cap_nope, cap_gone"},
		{"Status", source(t, rcv.URL, "", 0), replay.Selection{Status: "dead"}, "not supported"},
		{"NoToken", source(t, guarded.URL, "", 0), replay.Selection{}, "401 unauthorized to GET /_sidehook/requests?limit=1000: admin token required"},
		{"TooMany", source(t, rcv.URL, "", 0), replay.Selection{Max: 1, IDs: []string{c.ID, c.ID}}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			items, err := tt.src.Select(context.Background(), tt.sel)
			if tt.want == "" {
				// A repeated id counts once.
				if err != nil || len(items) != 1 {
					t.Errorf("got %v, %v; want one item", items, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %v (%d items), want an error containing %q", err, len(items), tt.want)
			}
		})
	}

	items, err := source(t, guarded.URL, "s3cret", 0).Select(context.Background(), replay.Selection{IDs: []string{c.ID}})
	if err != nil || len(items) != 1 || items[0].Target != guarded.URL+"/webhooks" {
		t.Errorf("with the token: got %+v, %v", items, err)
	}
	if !errors.Is(func() error {
		_, err := source(t, rcv.URL, "", 0).Select(context.Background(), replay.Selection{Status: "dead"})
		return err
	}(), replay.ErrUnsupportedFilter) {
		t.Error("a status filter on captures is not ErrUnsupportedFilter")
	}
}

// TestSourceEscapedPath: an item goes back to the path as sent, whether
// to its receiver (Target) or to another URL without a path of its own,
// which replay fills in from the item's Path: escaped once, not twice.
func TestSourceEscapedPath(t *testing.T) {
	tests := []struct{ name, sent string }{
		{"EscapedQueryAndSpace", "/hooks%3Fx%20y"},
		{"UTF8", "/caf%C3%A9"},
		{"Plain", "/hooks/pay"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rcv := receivertest.NewServer(t)
			post(t, rcv.URL+tt.sent, `{}`, nil)
			c := rcv.Expect(receivertest.Filter{}, 1, 10*time.Second)[0]
			items, err := source(t, rcv.URL, "", 0).Select(context.Background(), replay.Selection{IDs: []string{c.ID}})
			if err != nil || len(items) != 1 {
				t.Fatalf("got %v, %v; want one item", items, err)
			}
			if got, want := items[0].Target, rcv.URL+tt.sent; got != want {
				t.Errorf("target: got %q, want %q", got, want)
			}
			req, err := replay.Build(context.Background(), items[0], replay.Options{To: "http://other.test"})
			if err != nil {
				t.Fatal(err)
			}
			if got := req.URL.EscapedPath(); got != tt.sent {
				t.Errorf("to another URL: got path %q, want %q", got, tt.sent)
			}
		})
	}
}

// TestSourceRawQuery: a query sent with bytes that are not UTF-8 (a
// request line written by hand; Go's server takes it) goes back as sent,
// as `sidehook replay --receiver` sends it: the capture's JSON carries it
// as base64, and the item's query is the bytes, not U+FFFD.
func TestSourceRawQuery(t *testing.T) {
	rcv := receivertest.NewServer(t)
	const query = "customerUID=ACC-10023&fields=fullname&n=Ren\xe9e"
	conn, err := net.Dial("tcp", strings.TrimPrefix(rcv.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	fmt.Fprintf(conn, "GET /cv?%s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", query)
	c := rcv.Expect(receivertest.Filter{}, 1, 10*time.Second)[0]

	sent := make(chan string, 1)
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// RequestURI is the request line's target, unmodified.
		sent <- r.RequestURI
	}))
	t.Cleanup(target.Close)
	items, err := source(t, rcv.URL, "", 0).Select(context.Background(), replay.Selection{IDs: []string{c.ID}})
	if err != nil || len(items) != 1 {
		t.Fatalf("got %v, %v; want one item", items, err)
	}
	if got := items[0].RawQuery; got != query {
		t.Errorf("item query: got %q, want %q", got, query)
	}
	res := replay.Send(context.Background(), items[0], replay.Options{To: target.URL, Client: target.Client()})
	if res.Error != "" || res.Status != 200 {
		t.Fatalf("send: got %+v, want status 200 and no error", res)
	}
	if got := <-sent; got != "/cv?"+query {
		t.Errorf("sent %q, want %q", got, "/cv?"+query)
	}
}
