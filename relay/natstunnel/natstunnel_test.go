package natstunnel_test

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/sidehook/sidehook/relay"
	"github.com/sidehook/sidehook/relay/natstunnel"
	"github.com/sidehook/sidehook/relay/tunnel"
)

func TestDeliveryReachesTheRelayHoldingTheTunnel(t *testing.T) {
	ns := startNATS(t)
	a, b := newNode(t, ns, natstunnel.Options{}), newNode(t, ns, natstunnel.Options{})
	local := newApp(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-App", "yes")
		w.WriteHeader(http.StatusAccepted)
		w.Write([]byte(`{"took":"it"}`))
	})
	connect(t, a, local.URL)

	res, err := send(b, post([]byte(`{"amount":42}`)), 5*time.Second)
	if err != nil {
		t.Fatalf("send through relay B: %v", err)
	}
	if res.Status != http.StatusAccepted || string(res.Body) != `{"took":"it"}` || res.Header.Get("X-App") != "yes" {
		t.Errorf("answer: got %d %q %v, want 202 {\"took\":\"it\"} with X-App", res.Status, res.Body, res.Header)
	}
	if res.Latency <= 0 {
		t.Errorf("latency: got %v, want > 0", res.Latency)
	}
	got := local.requests()
	if len(got) != 1 {
		t.Fatalf("the app got %d requests, want 1", len(got))
	}
	r := got[0]
	if r.Method != http.MethodPost || r.Path != "/hooks" || string(r.Body) != `{"amount":42}` ||
		r.Header.Get("Webhook-Id") != "evt_1" || r.Header.Get("Content-Type") != "application/json" {
		t.Errorf("the app got %s %s %q %v, want POST /hooks `{\"amount\":42}` with webhook-id evt_1 and a JSON content type", r.Method, r.Path, r.Body, r.Header)
	}
}

func TestCustomValueGetAcrossRelays(t *testing.T) {
	ns := startNATS(t)
	a, b := newNode(t, ns, natstunnel.Options{}), newNode(t, ns, natstunnel.Options{})
	local := newApp(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"customValues":{"name":"Ada"}}`))
	})
	connect(t, a, local.URL)

	req := &relay.OutboundRequest{Method: http.MethodGet, URL: "tunnel://" + testName + "/custom-values?conversationId=c1&fields=name",
		Header: http.Header{"Authorization": {"Bearer token"}}, Org: testOrg}
	res, err := send(b, req, 5*time.Second)
	if err != nil {
		t.Fatalf("custom-value GET through relay B: %v", err)
	}
	if res.Status != http.StatusOK || string(res.Body) != `{"customValues":{"name":"Ada"}}` {
		t.Errorf("answer: got %d %q, want 200 `{\"customValues\":{\"name\":\"Ada\"}}`", res.Status, res.Body)
	}
	got := local.requests()
	if len(got) != 1 || got[0].Method != http.MethodGet || got[0].Path != "/custom-values" ||
		got[0].Query != "conversationId=c1&fields=name" || len(got[0].Body) != 0 || got[0].Header.Get("Authorization") != "Bearer token" {
		t.Fatalf("the app got %+v, want one GET /custom-values?conversationId=c1&fields=name with the token", got)
	}
}

func TestNoClientOnAnyRelay(t *testing.T) {
	ns := startNATS(t)
	_, b := newNode(t, ns, natstunnel.Options{}), newNode(t, ns, natstunnel.Options{})
	start := time.Now()
	_, err := send(b, post([]byte(`{}`)), 5*time.Second)
	if !errors.Is(err, tunnel.ErrNoClient) || !strings.Contains(err.Error(), testName) {
		t.Fatalf("send with no client anywhere: got %v, want ErrNoClient naming the tunnel", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("send with no client took %v: want an answer at once, not the timeout", d)
	}
}

func TestTheLastClientGoingUnsubscribes(t *testing.T) {
	ns := startNATS(t)
	a, b := newNode(t, ns, natstunnel.Options{}), newNode(t, ns, natstunnel.Options{})
	local := newApp(t, nil)
	first := connect(t, a, local.URL)
	second := connect(t, a, local.URL)
	if !a.Offered(testOrg, testName, "payment") {
		t.Fatal("relay A holds two clients and does not answer the other relays")
	}
	first.stop(t)
	waitFor(t, "relay A to lose its first client", func() bool { return len(a.Tunnels(testOrg)) == 1 })
	if !a.Offered(testOrg, testName, "payment") {
		t.Fatal("relay A stopped answering while a client is still connected")
	}
	if _, err := send(b, post(nil), 5*time.Second); err != nil {
		t.Fatalf("send through the remaining client: %v", err)
	}
	waitFor(t, "relay B to list A's remaining client", func() bool { return len(b.Tunnels(testOrg)) == 1 })
	second.stop(t)
	waitFor(t, "relay A to unsubscribe", func() bool { return !a.Offered(testOrg, testName, "payment") })
	// A says it has no client after it unsubscribed, on one connection:
	// once B hears it, the server has the unsubscription too. Sent before
	// that, a request could still reach A's subscription and wait its
	// whole timeout.
	waitFor(t, "relay B to hear that A has no client", func() bool { return len(b.Tunnels(testOrg)) == 0 })
	// No relay answers the subject any more: NATS says so at once.
	if _, err := send(b, post(nil), 5*time.Second); !errors.Is(err, tunnel.ErrNoClient) || !strings.Contains(err.Error(), "on any relay") {
		t.Fatalf("send after the last client left: got %v, want ErrNoClient from NATS (no responders)", err)
	}
	if n := len(local.requests()); n != 1 {
		t.Errorf("the app got %d requests, want 1", n)
	}
}

func TestOversizeRequestFailsClearly(t *testing.T) {
	const maxPayload = 64 << 10
	ns := startNATS(t, func(o *server.Options) { o.MaxPayload = maxPayload })
	a, b := newNode(t, ns, natstunnel.Options{}), newNode(t, ns, natstunnel.Options{})
	local := newApp(t, nil)
	connect(t, a, local.URL)

	start := time.Now()
	_, err := send(b, post(bytes.Repeat([]byte("x"), maxPayload)), 5*time.Second)
	if !errors.Is(err, natstunnel.ErrTooLarge) || !strings.Contains(err.Error(), "max_payload") {
		t.Fatalf("oversize send: got %v, want ErrTooLarge saying to raise max_payload", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("oversize send took %v: want an answer at once", d)
	}
	// The relay holding the client sends the same body itself.
	if res, err := send(a, post(bytes.Repeat([]byte("x"), maxPayload)), 5*time.Second); err != nil || res.Status != http.StatusOK {
		t.Fatalf("the same send through relay A: %v, %v", res, err)
	}
	if got := local.requests(); len(got) != 1 || len(got[0].Body) != maxPayload {
		t.Fatalf("the app got %d requests, want the one relay A sent", len(got))
	}
}

func TestHolderErrorsComeBack(t *testing.T) {
	ns := startNATS(t)
	a, b := newNode(t, ns, natstunnel.Options{}), newNode(t, ns, natstunnel.Options{})
	stuck := make(chan struct{})
	t.Cleanup(func() { close(stuck) })
	local := newApp(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			select {
			case <-stuck:
			case <-r.Context().Done():
			}
		}
	})
	connect(t, a, local.URL)

	t.Run("LocalAppDown", func(t *testing.T) {
		gone := newApp(t, nil)
		gone.Close()
		down, err := tunnel.NewClient(tunnel.ClientConfig{RelayURL: a.url, APIKey: testKey, Name: "down", Forward: gone.URL})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- down.Run(ctx) }()
		t.Cleanup(func() { cancel(); <-done })
		a.waitConnected(t)
		req := post(nil)
		req.URL = "tunnel://down/hooks"
		res, err := send(b, req, 5*time.Second)
		if err == nil || errors.Is(err, tunnel.ErrNoClient) || !strings.Contains(err.Error(), "local app") {
			t.Fatalf("send to a client whose app is down: got %v, want the holder's local app error", err)
		}
		if res == nil || res.Latency <= 0 {
			t.Errorf("failed attempt: got %+v, want its latency, as a local tunnel's", res)
		}
	})
	t.Run("Timeout", func(t *testing.T) {
		req := post(nil)
		req.URL = "tunnel://" + testName + "/slow"
		start := time.Now()
		res, err := send(b, req, 300*time.Millisecond)
		// The client gives up at the timeout it was told (its error says
		// so), or a deadline runs out, here or at the holder: the relay
		// calls it a timeout, as for a client of its own.
		if !errors.Is(err, context.DeadlineExceeded) && (err == nil || !strings.Contains(err.Error(), "did not answer")) {
			t.Fatalf("send to an app that does not answer: got %v, want the timeout", err)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("send with a 300ms timeout took %v, want at most 2s", d)
		}
		if res == nil || res.Latency < 200*time.Millisecond {
			t.Errorf("timed-out attempt: got %+v, want about the 300ms it took", res)
		}
	})
}

func TestOneHolderAnswersEachRequest(t *testing.T) {
	ns := startNATS(t)
	a, b, c := newNode(t, ns, natstunnel.Options{}), newNode(t, ns, natstunnel.Options{}), newNode(t, ns, natstunnel.Options{})
	onA, onB := newApp(t, nil), newApp(t, nil)
	connect(t, a, onA.URL)
	connect(t, b, onB.URL)
	const sends = 20
	for i := range sends {
		if _, err := send(c, post(nil), 5*time.Second); err != nil {
			t.Fatalf("send %d through relay C: %v", i, err)
		}
	}
	if n := len(onA.requests()) + len(onB.requests()); n != sends {
		t.Fatalf("the apps got %d requests in all, want %d (one holder answers each)", n, sends)
	}
}

func TestALocalClientNeedsNoNATS(t *testing.T) {
	ns := startNATS(t)
	a := newNode(t, ns, natstunnel.Options{})
	local := newApp(t, nil)
	connect(t, a, local.URL)
	a.nc.Close()
	if res, err := send(a, post(nil), 5*time.Second); err != nil || res.Status != http.StatusOK {
		t.Fatalf("send through a local client with NATS closed: %v, %v", res, err)
	}
}

func TestTunnelsOfEveryRelay(t *testing.T) {
	const every = 100 * time.Millisecond
	ns := startNATS(t)
	a, b := newNode(t, ns, natstunnel.Options{PresenceEvery: every}), newNode(t, ns, natstunnel.Options{PresenceEvery: every})
	connect(t, a, newApp(t, nil).URL)
	has := func(s *natstunnel.Server, org string) bool {
		for _, ti := range s.Tunnels(org) {
			if ti.Name == testName && ti.Org == testOrg && ti.RemoteAddr != "" && !ti.Since.IsZero() {
				return true
			}
		}
		return false
	}
	waitFor(t, "relay B to list relay A's client", func() bool { return has(b.Server, testOrg) })
	if !has(b.Server, "") {
		t.Error("relay B's list of every org lacks relay A's client")
	}
	if l := b.Tunnels("other"); len(l) != 0 {
		t.Errorf("relay B lists %v for another org", l)
	}
	if l := a.Tunnels(testOrg); len(l) != 1 {
		t.Errorf("relay A lists %d tunnels, want its one client once", len(l))
	}
	// Each list says which relay holds the client: relay A, by the id it
	// tells the others in its presence.
	for _, tt := range []struct {
		name string
		list []relay.TunnelInfo
	}{{"RelayA", a.Tunnels(testOrg)}, {"RelayB", b.Tunnels(testOrg)}} {
		if len(tt.list) != 1 || a.ID() == "" || tt.list[0].Relay != a.ID() || a.ID() == b.ID() {
			t.Errorf("%s lists %+v, want the client held by relay A (%q; relay B is %q)", tt.name, tt.list, a.ID(), b.ID())
		}
	}

	// A relay started later asks and hears at once, not after a period.
	late := newNode(t, ns, natstunnel.Options{PresenceEvery: time.Hour})
	waitFor(t, "a relay started later to list relay A's client", func() bool { return has(late.Server, testOrg) })

	t.Run("RelayDies", func(t *testing.T) {
		a.nc.Close() // no last word: B forgets A after 3 periods
		start := time.Now()
		waitFor(t, "relay B to forget the dead relay's client", func() bool { return !has(b.Server, testOrg) })
		if d := time.Since(start); d < 2*every {
			t.Errorf("relay B forgot relay A after %v, before its word ran out", d)
		}
	})
}

func TestClosedRelayLeavesTheListAtOnce(t *testing.T) {
	ns := startNATS(t)
	a, b := newNode(t, ns, natstunnel.Options{}), newNode(t, ns, natstunnel.Options{})
	connect(t, a, newApp(t, nil).URL)
	waitFor(t, "relay B to list relay A's client", func() bool { return len(b.Tunnels(testOrg)) == 1 })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := a.Close(ctx); err != nil {
		t.Fatalf("close relay A: %v", err)
	}
	// Far sooner than the 15 s relay A's word lasts.
	waitFor(t, "relay B to drop the closed relay's client", func() bool { return len(b.Tunnels(testOrg)) == 0 })
	if err := a.Close(ctx); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := send(b, post(nil), 5*time.Second); !errors.Is(err, tunnel.ErrNoClient) {
		t.Errorf("send after the holder closed: got %v, want ErrNoClient", err)
	}
}

// Anything on the account may publish on the subjects: a holder answers a
// bad request with an error, and a sender reports a bad reply as one.
func TestBadMessagesOnTheSubjects(t *testing.T) {
	ns := startNATS(t)
	a, b := newNode(t, ns, natstunnel.Options{}), newNode(t, ns, natstunnel.Options{})
	connect(t, a, newApp(t, nil).URL)
	// "=" is the token of no event type: these requests carry none.
	subject := "_sidehook." + testPrefix + ".tun." + testOrg + "." + testName + ".="

	t.Run("BadRequest", func(t *testing.T) {
		for _, tt := range []struct{ name, data, want string }{
			{"NotAFrame", "junk", "no newline"},
			{"OtherOrg", "{\"v\":1,\"method\":\"POST\",\"url\":\"tunnel://" + testName + "/x\",\"org\":\"evil\",\"timeout_ms\":1000,\"keep\":0}\n", "came on subject"},
			{"NotATunnelURL", "{\"v\":1,\"method\":\"POST\",\"url\":\"http://10.0.0.1/\",\"org\":\"" + testOrg + "\",\"timeout_ms\":1000,\"keep\":0}\n", "scheme is not tunnel"},
		} {
			t.Run(tt.name, func(t *testing.T) {
				m, err := b.nc.Request(subject, []byte(tt.data), 5*time.Second)
				if err != nil {
					t.Fatalf("request: %v", err)
				}
				if !strings.Contains(string(m.Data), `"error"`) || !strings.Contains(string(m.Data), tt.want) {
					t.Fatalf("holder answered %q, want an error saying %q", m.Data, tt.want)
				}
			})
		}
	})
	t.Run("BadReply", func(t *testing.T) {
		sub, err := a.nc.Subscribe("_sidehook."+testPrefix+".tun."+testOrg+".rogue.payment", func(m *nats.Msg) { m.Respond([]byte(`{"v":1,"status":7}` + "\n")) })
		if err != nil {
			t.Fatal(err)
		}
		defer sub.Unsubscribe()
		a.nc.Flush()
		req := post(nil)
		req.URL = "tunnel://rogue/hooks"
		_, err = send(b, req, 5*time.Second)
		if err == nil || !strings.Contains(err.Error(), "status 7 is not an HTTP status") {
			t.Fatalf("send answered by a rogue: got %v, want the reply's fault", err)
		}
	})
}
