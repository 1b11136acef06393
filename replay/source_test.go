package replay_test

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"testing"
	"time"

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

func TestReceiverSource(t *testing.T) {
	rcv := receivertest.NewServer(t)
	post(t, rcv.URL+"/webhooks?x=1", `{"type":"payment","amount":"50.00"}`, map[string]string{"webhook-id": "evt_A", "Content-Type": "application/json"})
	post(t, rcv.URL+"/webhooks", `{"type":"inboundMessage","body":"hi"}`, map[string]string{"webhook-id": "evt_B"})
	post(t, rcv.URL+"/other", `{"type":"payment","amount":"1.00"}`, map[string]string{"webhook-id": "evt_C"})
	caps := waitCaptures(t, rcv, receivertest.Filter{}, 3) // newest first
	first, second, third := caps[2], caps[1], caps[0]

	// A page of one makes every listing walk the cursor.
	src := &replay.ReceiverSource{URL: rcv.URL + "/", PageSize: 1}
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
		t.Errorf("item: got %+v", it)
	}
}

func TestReceiverSourceErrors(t *testing.T) {
	rcv := receivertest.NewServer(t)
	post(t, rcv.URL+"/webhooks", `{}`, nil)
	c := waitCaptures(t, rcv, receivertest.Filter{}, 1)[0]

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
		src  replay.ReceiverSource
		sel  replay.Selection
		want string
	}{
		{"UnknownIDs", replay.ReceiverSource{URL: rcv.URL}, replay.Selection{IDs: []string{"cap_nope", c.ID, "cap_gone"}}, "2 unknown ids: cap_nope, cap_gone"},
		{"Status", replay.ReceiverSource{URL: rcv.URL}, replay.Selection{Status: "dead"}, "not supported"},
		{"NoToken", replay.ReceiverSource{URL: guarded.URL}, replay.Selection{}, "401 to GET /_sidehook/requests?limit=1000: admin token required"},
		{"BadURL", replay.ReceiverSource{URL: "ftp://x"}, replay.Selection{}, "want an http:// or https:// URL"},
		{"TooMany", replay.ReceiverSource{URL: rcv.URL}, replay.Selection{Max: 1, IDs: []string{c.ID, c.ID}}, ""},
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

	items, err := (&replay.ReceiverSource{URL: guarded.URL, Token: "s3cret"}).Select(context.Background(), replay.Selection{IDs: []string{c.ID}})
	if err != nil || len(items) != 1 || items[0].Target != guarded.URL+"/webhooks" {
		t.Errorf("with the token: got %+v, %v", items, err)
	}
	if !errors.Is(func() error {
		_, err := (&replay.ReceiverSource{URL: rcv.URL}).Select(context.Background(), replay.Selection{Status: "dead"})
		return err
	}(), replay.ErrUnsupportedFilter) {
		t.Error("a status filter on captures is not ErrUnsupportedFilter")
	}
}

func TestRelaySource(t *testing.T) {
	rcv := receivertest.NewServer(t)
	r := startRelay(t, rcv.URL+"/hooks")
	body := `{"type":"payment","amount":"50.00","currency":"GBP"}`
	ev1 := ingest(t, r, "payment", body)
	waitCaptures(t, rcv, receivertest.Filter{WebhookID: ev1.ID}, 1)
	ev2 := ingest(t, r, "inbound_message", `{"type":"inboundMessage","body":"hello"}`)
	waitCaptures(t, rcv, receivertest.Filter{WebhookID: ev2.ID}, 1)
	if len(ev1.Deliveries) != 1 || len(ev2.Deliveries) != 1 {
		t.Fatalf("deliveries: got %+v %+v", ev1, ev2)
	}
	d1, d2 := ev1.Deliveries[0].ID, ev2.Deliveries[0].ID
	waitDelivered(t, r, d1)
	waitDelivered(t, r, d2)

	src := &replay.RelaySource{URL: r.URL(), APIKey: apiKey, PageSize: 1}
	tests := []struct {
		name string
		sel  replay.Selection
		want string
	}{
		{"DeliveredOldestFirst", replay.Selection{Status: "delivered"}, d1 + " " + d2},
		{"Type", replay.Selection{Event: "payment"}, d1},
		{"Dead", replay.Selection{Status: "dead"}, ""},
		{"DeliveryID", replay.Selection{IDs: []string{d2}}, d2},
		{"EventID", replay.Selection{IDs: []string{ev1.ID}}, d1},
		{"IDsFiltered", replay.Selection{IDs: []string{ev1.ID, d2}, Event: "inbound_message"}, d2},
		{"Future", replay.Selection{Since: time.Now().Add(time.Hour)}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			items, err := src.Select(context.Background(), tt.sel)
			if err != nil {
				t.Fatal(err)
			}
			if got := ids(items); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}

	items, err := src.Select(context.Background(), replay.Selection{IDs: []string{d1}})
	if err != nil || len(items) != 1 {
		t.Fatalf("got %v, %v", items, err)
	}
	it := items[0]
	if it.Target != rcv.URL+"/hooks" || it.Path != "/hooks" || it.Method != "POST" || it.WebhookID != ev1.ID || it.Event != "payment" ||
		!bytes.Equal(it.Body, []byte(body)) || it.Header.Get("sidehook-event") != "payment" || it.Header.Get("sidehook-delivery") != d1 ||
		it.Header.Get("Content-Type") != "application/json" {
		t.Errorf("item: got %+v", it)
	}

	for name, tt := range map[string]struct {
		src  replay.RelaySource
		sel  replay.Selection
		want string
	}{
		"UnknownIDs": {*src, replay.Selection{IDs: []string{"dlv_nope", d1, "evt_nope"}}, "2 unknown ids: dlv_nope, evt_nope"},
		"Verdict":    {*src, replay.Selection{Verdict: "valid"}, "not supported"},
		"BadKey":     {replay.RelaySource{URL: r.URL(), APIKey: "wrong"}, replay.Selection{}, "401"},
		"NoKey":      {replay.RelaySource{URL: r.URL()}, replay.Selection{}, "API key is required"},
		"BadStatus":  {*src, replay.Selection{Status: "lost"}, "relay answered 400"},
	} {
		t.Run(name, func(t *testing.T) {
			items, err := tt.src.Select(context.Background(), tt.sel)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %v (%d items), want an error containing %q", err, len(items), tt.want)
			}
		})
	}
}

// An event no endpoint subscribed to has no delivery: its id still
// selects it, with no default target.
func TestRelaySourceEventWithoutDeliveries(t *testing.T) {
	r := startRelay(t)
	ev := ingest(t, r, "payment", `{"type":"payment"}`)
	items, err := (&replay.RelaySource{URL: r.URL(), APIKey: apiKey}).Select(context.Background(), replay.Selection{IDs: []string{ev.ID}})
	if err != nil || len(items) != 1 {
		t.Fatalf("got %v, %v", items, err)
	}
	if it := items[0]; it.ID != ev.ID || it.Target != "" || string(it.Body) != `{"type":"payment"}` || it.WebhookID != ev.ID {
		t.Errorf("got %+v", it)
	}
}
