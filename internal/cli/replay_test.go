package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/sidehook/sidehook/internal/auth"
	"github.com/sidehook/sidehook/receiver"
	"github.com/sidehook/sidehook/receiver/receiverapi"
	"github.com/sidehook/sidehook/receiver/receivertest"
	"github.com/sidehook/sidehook/relay"
	"github.com/sidehook/sidehook/relay/config"
	"github.com/sidehook/sidehook/relay/memstore"
	"github.com/sidehook/sidehook/relay/relayapi"
	"github.com/sidehook/sidehook/relay/tunnel"
	"github.com/sidehook/sidehook/replay"
)

const (
	replaySecret = "0123456789abcdef0123456789abcdef"
	replayWhsec  = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	replayAPIKey = "replay-cli-key"
)

// replaySigning are the flags that sign with all three schemes, as
// verifyingReceiver checks them.
func replaySigning() []string {
	return []string{"--secret-key", replaySecret, "--org", "demo", "--jwt-secret", replaySecret, "--standard-secret", replayWhsec}
}

func verifyingReceiver(t *testing.T) *receivertest.Server {
	t.Helper()
	return receivertest.NewServer(t,
		receivertest.WithWebioSecret(replaySecret, "demo"),
		receivertest.WithJWTSecret(replaySecret),
		receivertest.WithStandardSecret(replayWhsec))
}

func postTo(t *testing.T, url, body string, header map[string]string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
}

func waitFor(t *testing.T, rcv *receivertest.Server, f receivertest.Filter, n int) []receiver.Capture {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	caps, err := rcv.Wait(ctx, f, n)
	if err != nil {
		t.Fatal(err)
	}
	return caps
}

// startReplayRelay starts a relay delivering every event to endpoints.
func startReplayRelay(t *testing.T, endpoints ...string) *relay.Relay {
	t.Helper()
	return startReplayRelayTunnels(t, nil, endpoints...)
}

// startReplayRelayTunnels is startReplayRelay serving tunnels with
// tunnels (nil: none).
func startReplayRelayTunnels(t *testing.T, tunnels relay.TunnelServer, endpoints ...string) *relay.Relay {
	t.Helper()
	cfg, err := config.FromOneOrg(config.OneOrg{
		Listen: "127.0.0.1:0", Data: t.TempDir(), APIKeys: []string{replayAPIKey},
		SecretKey: replaySecret, Endpoints: endpoints, Schedule: []string{"10ms"},
	})
	if err != nil {
		t.Fatal(err)
	}
	st := memstore.New()
	t.Cleanup(func() { st.Close() })
	r, err := relay.New(cfg, relay.Options{Store: st, Tunnels: tunnels, Grace: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := r.Close(context.Background()); err != nil {
			t.Errorf("close relay: %v", err)
		}
	})
	return r
}

func relayIngest(t *testing.T, r *relay.Relay, typ, body string) (eventID string, deliveries []string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, r.URL()+"/v1/events", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+replayAPIKey)
	req.Header.Set("sidehook-event", typ)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var ans struct {
		ID         string `json:"id"`
		Deliveries []struct {
			ID string `json:"id"`
		} `json:"deliveries"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&ans); err != nil || resp.StatusCode != http.StatusAccepted {
		t.Fatalf("ingest: %d %v", resp.StatusCode, err)
	}
	for _, d := range ans.Deliveries {
		deliveries = append(deliveries, d.ID)
	}
	return ans.ID, deliveries
}

// checkReplayed checks a replay arrived as the original, re-signed.
func checkReplayed(t *testing.T, got, orig receiver.Capture) {
	t.Helper()
	if !bytes.Equal(got.Body, orig.Body) {
		t.Errorf("body: got %q, want %q", got.Body, orig.Body)
	}
	if got.Verdict.Status != auth.StatusValid {
		t.Errorf("verdict: got %+v, want valid", got.Verdict)
	}
	if r := got.Headers["sidehook-replay-of"]; len(r) != 1 || r[0] != orig.ID {
		t.Errorf("sidehook-replay-of: got %v, want %s", r, orig.ID)
	}
	if got.WebhookID != orig.WebhookID || got.Path != orig.Path || got.Method != orig.Method {
		t.Errorf("got %s %s webhook-id %q, want %s %s %q", got.Method, got.Path, got.WebhookID, orig.Method, orig.Path, orig.WebhookID)
	}
}

func TestReplayCommandReceiver(t *testing.T) {
	src := receivertest.NewServer(t)
	dst := verifyingReceiver(t)
	postTo(t, src.URL+"/webhooks", `{"type":"payment","amount":"50.00"}`, map[string]string{"webhook-id": "evt_P", "x-webio-token": "stale"})
	postTo(t, src.URL+"/webhooks", `{"type":"inboundMessage","body":"hi"}`, map[string]string{"webhook-id": "evt_I"})
	orig := waitFor(t, src, receivertest.Filter{Event: "payment"}, 1)[0]

	code, stdout, stderr := runCLI(t, nil, append([]string{"replay", "--receiver", src.URL, "--event", "payment", "--to", dst.URL}, replaySigning()...)...)
	if code != 0 {
		t.Fatalf("exit %d, want 0: %s", code, stderr)
	}
	header := replayRow(stdout, "ID")
	row := replayRow(stdout, orig.ID)
	for _, col := range []string{"METHOD", "TARGET", "STATUS", "LATENCY", "ERROR"} {
		if !strings.Contains(header, col) {
			t.Errorf("table header %q lacks %s", header, col)
		}
	}
	if !strings.Contains(row, "POST") || !strings.Contains(row, dst.URL+"/webhooks") || !strings.Contains(row, " 200 ") {
		t.Errorf("row: got %q, want POST to /webhooks answered 200", row)
	}
	if !strings.Contains(stdout, "1 replayed: 1 ok, 0 failed") {
		t.Errorf("summary: got %q, want \"1 replayed: 1 ok, 0 failed\"", stdout)
	}
	got := waitFor(t, dst, receivertest.Filter{}, 1)
	checkReplayed(t, got[0], orig)
	if n := len(dst.Requests(receivertest.Filter{})); n != 1 {
		t.Errorf("dst has %d requests, want only the payment", n)
	}

	// Again by id, as JSON, with a body from a file.
	bodyFile := filepath.Join(t.TempDir(), "body.json")
	os.WriteFile(bodyFile, []byte(`{"type":"payment","amount":"99.00"}`), 0o600)
	code, stdout, stderr = runCLI(t, nil, append([]string{"replay", "--receiver", src.URL, "--id", orig.ID, "--to", dst.URL, "--json", "--body", bodyFile}, replaySigning()...)...)
	if code != 0 {
		t.Fatalf("exit %d, want 0: %s", code, stderr)
	}
	var report struct {
		Results []replay.Result `json:"results"`
		Total   int             `json:"total"`
		OK      int             `json:"ok"`
		Failed  int             `json:"failed"`
	}
	if err := json.Unmarshal([]byte(stdout), &report); err != nil {
		t.Fatalf("--json: %v: %s", err, stdout)
	}
	if report.Total != 1 || report.OK != 1 || len(report.Results) != 1 || report.Results[0].ID != orig.ID || report.Results[0].Status != 200 {
		t.Errorf("--json: got %+v, want one result, ok, for the original, status 200", report)
	}
	edited := waitFor(t, dst, receivertest.Filter{}, 2)[0]
	if string(edited.Body) != `{"type":"payment","amount":"99.00"}` || edited.Verdict.Status != auth.StatusValid || edited.WebhookID != "evt_P" {
		t.Errorf("--body: got %q %+v %q, want the edited body, validly signed, webhook-id evt_P", edited.Body, edited.Verdict, edited.WebhookID)
	}
}

// Without --to, a capture goes back to the receiver it came from; the
// environment can stand in for flags.
func TestReplayCommandDefaultTarget(t *testing.T) {
	src := receivertest.NewServer(t)
	postTo(t, src.URL+"/hooks?x=1", `{"a":1}`, map[string]string{"webhook-id": "evt_D"})
	orig := waitFor(t, src, receivertest.Filter{}, 1)[0]
	env := map[string]string{"SIDEHOOK_REPLAY_RECEIVER": src.URL, "SIDEHOOK_REPLAY_ID": orig.ID}
	code, stdout, stderr := runCLI(t, func(k string) string { return env[k] }, "replay")
	if code != 0 {
		t.Fatalf("exit %d, want 0: %s %s", code, stdout, stderr)
	}
	if !strings.Contains(stderr, "no keys given") {
		t.Errorf("stderr: got %q, want the unsigned note", stderr)
	}
	again := waitFor(t, src, receivertest.Filter{WebhookID: "evt_D"}, 2)[0]
	if again.Path != "/hooks" || again.Query != "x=1" || string(again.Body) != `{"a":1}` || again.Headers["sidehook-replay-of"][0] != orig.ID {
		t.Errorf("got %s?%s %q %v, want /hooks?x=1 `{\"a\":1}` with sidehook-replay-of the original", again.Path, again.Query, again.Body, again.Headers)
	}
}

// TestReplayCommandSourceFromFlagBeatsVariable: SIDEHOOK_RELAY_URL, set
// for send and test, does not make --receiver two sources; two sources
// given as flags still are.
func TestReplayCommandSourceFromFlagBeatsVariable(t *testing.T) {
	src := receivertest.NewServer(t)
	postTo(t, src.URL+"/hooks", `{"a":1}`, map[string]string{"webhook-id": "evt_S"})
	orig := waitFor(t, src, receivertest.Filter{}, 1)[0]
	env := envOf(map[string]string{"SIDEHOOK_RELAY_URL": "http://127.0.0.1:1", "SIDEHOOK_API_KEY": "k"})
	code, stdout, stderr := runCLI(t, env, "replay", "--receiver", src.URL, "--id", orig.ID, "--dry-run", "--json")
	if code != 0 || !strings.Contains(stdout, `"dry_run": true`) || !strings.Contains(stdout, orig.ID) {
		t.Errorf("--receiver with SIDEHOOK_RELAY_URL set: got %d %q %q, want 0 and a dry run of the original", code, stdout, stderr)
	}
	code, _, stderr = runCLI(t, env, "replay", "--receiver", src.URL, "--relay", "http://127.0.0.1:1", "--all")
	if code != 2 || !strings.Contains(stderr, "give one source") {
		t.Errorf("two sources as flags: got %d %q, want 2", code, stderr)
	}
}

func TestReplayCommandFile(t *testing.T) {
	src := receivertest.NewServer(t)
	dst := verifyingReceiver(t)
	postTo(t, src.URL+"/a", `{"type":"payment"}`, map[string]string{"webhook-id": "evt_1"})
	postTo(t, src.URL+"/b", string([]byte{0xff, 0xfe, 0}), map[string]string{"webhook-id": "evt_2"})
	caps := waitFor(t, src, receivertest.Filter{}, 2)

	resp, err := http.Get(src.URL + "/_sidehook/requests/export?format=ndjson")
	if err != nil {
		t.Fatal(err)
	}
	export, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	file := filepath.Join(t.TempDir(), "captures.ndjson")
	if err := os.WriteFile(file, export, 0o600); err != nil {
		t.Fatal(err)
	}

	code, stdout, stderr := runCLI(t, nil, append([]string{"replay", "--file", file, "--to", dst.URL, "--rate", "1000/s"}, replaySigning()...)...)
	if code != 0 {
		t.Fatalf("exit %d, want 0: %s %s", code, stdout, stderr)
	}
	got := waitFor(t, dst, receivertest.Filter{}, 2)
	// Oldest first: the newest arrived last.
	checkReplayed(t, got[0], caps[0])
	checkReplayed(t, got[1], caps[1])

	t.Run("BadLine", func(t *testing.T) {
		bad := filepath.Join(t.TempDir(), "bad.ndjson")
		lines := strings.SplitN(string(export), "\n", 2)
		os.WriteFile(bad, []byte(lines[0]+"\n"+`{"id":"cap_x","method":`+"\n"+lines[1]), 0o600)
		code, stdout, stderr := runCLI(t, nil, "replay", "--file", bad, "--to", dst.URL)
		if code != 1 || !strings.Contains(stderr, "bad.ndjson: line 2:") || strings.Contains(stderr, "replay: replay:") {
			t.Errorf("got %d %q %q, want exit 1 naming line 2", code, stdout, stderr)
		}
		if n := len(dst.Requests(receivertest.Filter{})); n != 2 {
			t.Errorf("dst has %d requests, want the 2 from before: nothing sent", n)
		}
	})
	// The README shows the HAR export next to replay: given one, the error
	// said only "line 1: no id".
	t.Run("HAR", func(t *testing.T) {
		resp, err := http.Get(src.URL + "/_sidehook/requests/export?format=har")
		if err != nil {
			t.Fatal(err)
		}
		har, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		file := filepath.Join(t.TempDir(), "captures.har")
		os.WriteFile(file, har, 0o600)
		code, stdout, stderr := runCLI(t, nil, "replay", "--file", file, "--to", dst.URL, "--all")
		if want := "--file takes the receiver's NDJSON export (GET /_sidehook/requests/export?format=ndjson)"; code != 1 || !strings.Contains(stderr, want) {
			t.Errorf("got %d %q %q, want exit 1 and %q", code, stdout, stderr, want)
		}
	})
}

// Through a relay, the API key is the only secret: the relay signs as
// each endpoint signs.
func TestReplayCommandRelay(t *testing.T) {
	rcv := receivertest.NewServer(t, receivertest.WithWebioSecret(replaySecret, "demo"))
	other := receivertest.NewServer(t, receivertest.WithWebioSecret(replaySecret, "demo"))
	r := startReplayRelay(t, rcv.URL+"/hooks", other.URL+"/other")
	body := `{"type":"payment","paymentId":"pay_9","amount":"50.00"}`
	evt, dlvs := relayIngest(t, r, "payment", body)
	if len(dlvs) != 2 {
		t.Fatalf("deliveries: %v, want 2", dlvs)
	}
	// The receivers have the requests a moment before the relay records
	// the answers: once recorded, each delivery has its one attempt.
	waitDelivered(t, r.URL(), dlvs...)

	// Without --to: both deliveries of the event are sent once more to
	// their original targets, the endpoints' URLs, validly signed and
	// marked as replays; a replay is not an attempt.
	code, stdout, stderr := runCLI(t, nil, "replay", "--relay", r.URL(), "--api-key", replayAPIKey, "--id", evt)
	if code != 0 {
		t.Fatalf("exit %d, want 0: %s %s", code, stdout, stderr)
	}
	if row := replayRow(stdout, dlvs[0]); !strings.Contains(row, " "+rcv.URL+"/hooks ") || !strings.Contains(row, " 200 ") {
		t.Errorf("row of %s: got %q, want %s/hooks answering 200", dlvs[0], row, rcv.URL)
	}
	if !strings.Contains(stdout, "2 replayed: 2 ok, 0 failed") {
		t.Errorf("summary: got %q, want \"2 replayed: 2 ok, 0 failed\"", stdout)
	}
	for i, tt := range []struct {
		rcv  *receivertest.Server
		path string
	}{{rcv, "/hooks"}, {other, "/other"}} {
		caps := waitFor(t, tt.rcv, receivertest.Filter{WebhookID: evt}, 2)
		if len(caps) != 2 {
			t.Fatalf("endpoint %d got %d requests, want the delivery and its one replay", i+1, len(caps))
		}
		var replays []receiver.Capture
		for _, c := range caps {
			if len(c.Headers["sidehook-replay-of"]) > 0 {
				replays = append(replays, c)
			}
		}
		if len(replays) != 1 {
			t.Fatalf("endpoint %d got %d replays, want 1", i+1, len(replays))
		}
		c := replays[0]
		if of := c.Headers["sidehook-replay-of"]; of[0] != dlvs[i] || c.Path != tt.path || string(c.Body) != body ||
			c.Verdict.Status != auth.StatusValid || c.Headers["sidehook-event"][0] != "payment" {
			t.Errorf("endpoint %d got %s %q replay-of %v verdict %+v, want the original bytes at %s, signed, marked as a replay of %s",
				i+1, c.Path, c.Body, of, c.Verdict, tt.path, dlvs[i])
		}
	}
	api, err := relayapi.New(r.URL(), replayAPIKey, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range dlvs {
		if d, err := api.Delivery(context.Background(), id); err != nil || d.Status != relay.StatusDelivered || len(d.Attempts) != 1 {
			t.Errorf("delivery %s after the replay: got %+v %v, want delivered with its one attempt", id, d, err)
		}
	}

	// With --to: one delivery, by id, sent once elsewhere, signed by the
	// relay and naming the original.
	dst := receivertest.NewServer(t, receivertest.WithWebioSecret(replaySecret, "demo"))
	code, stdout, stderr = runCLI(t, nil, "replay", "--relay", r.URL(), "--api-key", replayAPIKey, "--id", dlvs[1], "--to", dst.URL+"/elsewhere", "--json")
	if code != 0 {
		t.Fatalf("exit %d, want 0: %s %s", code, stdout, stderr)
	}
	var rep struct {
		Results []struct {
			ID, Target, EventID string
			Status              int
			OK                  bool `json:"ok"`
		} `json:"results"`
		OK int `json:"ok"`
	}
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil || rep.OK != 1 || len(rep.Results) != 1 ||
		rep.Results[0].ID != dlvs[1] || rep.Results[0].Status != 200 || rep.Results[0].Target != dst.URL+"/elsewhere" {
		t.Errorf("--json: got %v %s, want one ok result for the second delivery, status 200, to /elsewhere", err, stdout)
	}
	c := waitFor(t, dst, receivertest.Filter{}, 1)[0]
	if c.Path != "/elsewhere" || string(c.Body) != body || c.WebhookID != evt || c.Verdict.Status != auth.StatusValid ||
		c.Headers["sidehook-replay-of"][0] != dlvs[1] {
		t.Errorf("got %s %q %s %+v %v, want /elsewhere, the body, the event id, validly signed, with sidehook-replay-of the second delivery", c.Path, c.Body, c.WebhookID, c.Verdict, c.Headers)
	}

	// A target that does not answer: each item is reported, the rest go
	// on; --fail-fast stops at the first.
	dead := httptest.NewServer(http.NotFoundHandler())
	deadURL := dead.URL
	dead.Close()
	code, stdout, stderr = runCLI(t, nil, "replay", "--relay", r.URL(), "--api-key", replayAPIKey, "--id", evt, "--to", deadURL)
	if code != 1 || !strings.Contains(stdout, "2 replayed: 0 ok, 2 failed") || !strings.Contains(stderr, "2 of 2 failed") {
		t.Errorf("dead target: got %d %q %q, want 1 with \"2 replayed: 0 ok, 2 failed\" and \"2 of 2 failed\"", code, stdout, stderr)
	}
	code, stdout, stderr = runCLI(t, nil, "replay", "--relay", r.URL(), "--api-key", replayAPIKey, "--id", evt, "--to", deadURL, "--fail-fast")
	if code != 1 || !strings.Contains(stdout, "1 replayed: 0 ok, 1 failed, 1 not sent") || !strings.Contains(stderr, "--fail-fast") {
		t.Errorf("--fail-fast: got %d %q %q, want 1 with \"1 replayed: 0 ok, 1 failed, 1 not sent\" and a hint of --fail-fast", code, stdout, stderr)
	}

	// A dry run lists and sends nothing.
	code, stdout, stderr = runCLI(t, nil, "replay", "--relay", r.URL(), "--api-key", replayAPIKey, "--endpoint", "ep2", "--to", dst.URL, "--dry-run")
	if code != 0 || !strings.Contains(stdout, dlvs[1]) || strings.Contains(stdout, dlvs[0]) || !strings.Contains(stdout, "dry run: 1 delivery, nothing sent") {
		t.Errorf("dry run: got %d %q %q, want 0 and a dry run of the second delivery only, nothing sent", code, stdout, stderr)
	}
	if n := len(dst.Requests(receivertest.Filter{})); n != 1 {
		t.Errorf("dst has %d requests, want the 1 from before", n)
	}

	// An unknown id is named; nothing is replayed.
	code, _, stderr = runCLI(t, nil, "replay", "--relay", r.URL(), "--api-key", replayAPIKey, "--id", "dlv_01JDQ0000000000000000000ZZ", "--to", dst.URL)
	if code != 1 || !strings.Contains(stderr, "unknown id: dlv_01JDQ0000000000000000000ZZ") {
		t.Errorf("unknown id: got %d %q, want 1 naming the unknown id", code, stderr)
	}
}

// TestReplayCommandRelayTarget: --to without a path of its own keeps the
// endpoint's, on the relay; the table, dry run or not, shows the URL the
// replay goes to, not --to as typed; without --to, the endpoint's URL (it
// said "endpoint ep1").
func TestReplayCommandRelayTarget(t *testing.T) {
	rcv := receivertest.NewServer(t)
	r := startReplayRelay(t, rcv.URL+"/hooks?team=a")
	_, dlvs := relayIngest(t, r, "payment", `{"type":"payment","paymentId":"pay_9"}`)
	waitDelivered(t, r.URL(), dlvs...)
	dst := receivertest.NewServer(t)
	tests := []struct {
		name, to, want string
	}{
		{"NoTo", "", rcv.URL + "/hooks?team=a"},
		{"NoPath", dst.URL, dst.URL + "/hooks?team=a"},
		{"Root", dst.URL + "/", dst.URL + "/hooks?team=a"},
		{"Query", dst.URL + "?b=2", dst.URL + "/hooks?b=2"},
		{"Path", dst.URL + "/elsewhere", dst.URL + "/elsewhere"},
	}
	for _, tt := range tests {
		for _, dry := range []bool{false, true} {
			name := tt.name
			args := []string{"replay", "--relay", r.URL(), "--api-key", replayAPIKey, "--id", dlvs[0]}
			if tt.to != "" {
				args = append(args, "--to", tt.to)
			}
			if dry {
				name += "/DryRun"
				args = append(args, "--dry-run")
			}
			t.Run(name, func(t *testing.T) {
				code, stdout, stderr := runCLI(t, nil, args...)
				if code != 0 {
					t.Fatalf("exit %d, want 0: %s %s", code, stdout, stderr)
				}
				if row := replayRow(stdout, dlvs[0]); !strings.Contains(row, " "+tt.want+" ") {
					t.Errorf("row: got %q, want target %s", row, tt.want)
				}
			})
		}
	}
	for _, tt := range []struct{ name, to, want string }{
		{"JSON", dst.URL, dst.URL + "/hooks?team=a"},
		{"JSONNoTo", "", rcv.URL + "/hooks?team=a"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			args := []string{"replay", "--relay", r.URL(), "--api-key", replayAPIKey, "--id", dlvs[0], "--json"}
			if tt.to != "" {
				args = append(args, "--to", tt.to)
			}
			code, stdout, stderr := runCLI(t, nil, args...)
			var rep struct {
				Results []struct{ Target string } `json:"results"`
			}
			if err := json.Unmarshal([]byte(stdout), &rep); code != 0 || err != nil || len(rep.Results) != 1 || rep.Results[0].Target != tt.want {
				t.Errorf("got %d %v %s %s, want one result with target %s", code, err, stdout, stderr, tt.want)
			}
		})
	}
}

// TestReplayCommandRelayTunnelTarget: without --to, a tunnel endpoint's
// delivery is shown going to its tunnel:// URL, dry run or not (here no
// client is connected, so the replay fails, saying so).
func TestReplayCommandRelayTunnelTarget(t *testing.T) {
	ts := tunnel.NewServer(tunnel.ServerOptions{Logger: zerolog.Nop()})
	t.Cleanup(func() { ts.Close(context.Background()) })
	const target = "tunnel://laptop/hooks"
	r := startReplayRelayTunnels(t, ts, target)
	_, dlvs := relayIngest(t, r, "payment", `{"type":"payment","paymentId":"pay_9"}`)
	for _, dry := range []bool{false, true} {
		args := []string{"replay", "--relay", r.URL(), "--api-key", replayAPIKey, "--id", dlvs[0]}
		wantCode := 1
		if dry {
			args, wantCode = append(args, "--dry-run"), 0
		}
		code, stdout, stderr := runCLI(t, nil, args...)
		if row := replayRow(stdout, dlvs[0]); code != wantCode || !strings.Contains(row, " "+target+" ") {
			t.Errorf("%v: got %d, row %q (%s %s), want %d and target %s", args, code, row, stdout, stderr, wantCode, target)
		}
	}
}

// fakeRelay answers the listing with deliveries and records each
// POST /v1/replay body, answering each id it names as replayed. It lists
// no endpoint, as for deliveries whose endpoint is gone: the table shows
// "endpoint ID".
func fakeRelay(t *testing.T, deliveries []relay.DeliveryView) (url string, bodies func() []map[string]any) {
	t.Helper()
	var mu sync.Mutex
	var got []map[string]any
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer k" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		switch r.Method + " " + r.URL.Path {
		case "GET /v1/deliveries":
			json.NewEncoder(w).Encode(map[string]any{"deliveries": deliveries, "next": nil})
		case "GET /v1/endpoints":
			json.NewEncoder(w).Encode(map[string]any{"endpoints": []any{}})
		case "POST /v1/replay":
			var body map[string]any
			if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
				t.Errorf("replay body: %v", err)
			}
			mu.Lock()
			got = append(got, body)
			mu.Unlock()
			results := []relay.ReplayResult{}
			f, _ := body["filter"].(map[string]any)
			ids, _ := f["ids"].([]any)
			for _, d := range deliveries {
				named := len(ids) == 0
				for _, id := range ids {
					named = named || id == d.ID
				}
				if named && d.Type != "custom_value_request" {
					results = append(results, relay.ReplayResult{DeliveryID: d.ID, EventID: d.EventID, OK: true, Status: 200})
				}
			}
			json.NewEncoder(w).Encode(map[string]any{"replayed": len(results), "results": results})
		default:
			w.WriteHeader(http.StatusNotFound)
			w.Write([]byte(`{"error":"not_found","reason":"no route"}`))
		}
	}))
	t.Cleanup(srv.Close)
	return srv.URL, func() []map[string]any {
		mu.Lock()
		defer mu.Unlock()
		return append([]map[string]any(nil), got...)
	}
}

// What the command asks of POST /v1/replay: the selection as a filter,
// "all" only with --all, and custom-value deliveries left out, each with
// a note.
func TestReplayCommandRelayRequests(t *testing.T) {
	payment := relay.DeliveryView{ID: "dlv_2", EventID: "evt_2", Endpoint: "ep1", Type: "payment", Status: "dead"}
	older := relay.DeliveryView{ID: "dlv_1", EventID: "evt_1", Endpoint: "ep1", Type: "payment", Status: "dead"}

	t.Run("All", func(t *testing.T) {
		url, bodies := fakeRelay(t, []relay.DeliveryView{payment, older})
		// Keys in the shared variables, set for other commands, do not
		// stand in the way: the relay signs.
		env := envOf(map[string]string{"SIDEHOOK_SECRET_KEY": replaySecret, "SIDEHOOK_ORG": "demo", "SIDEHOOK_STANDARD_SECRET": replayWhsec})
		code, stdout, stderr := runCLI(t, env, "replay", "--relay", url, "--api-key", "k", "--all", "--to", "http://127.0.0.1:9/x")
		got := bodies()
		if code != 0 || len(got) != 1 || got[0]["all"] != true || got[0]["to"] != "http://127.0.0.1:9/x" {
			t.Fatalf("got %d %q %q, bodies %v; want 0 and one body with all and to", code, stdout, stderr, got)
		}
		if f := got[0]["filter"].(map[string]any); len(f) != 0 {
			t.Errorf("--all filter: got %v, want empty", f)
		}
	})
	t.Run("SecretKeyWithoutOrg", func(t *testing.T) {
		// The README's tunnel section exports the secret key for the
		// relay it starts, and no org: a replay through that relay
		// must not ask for --org, a flag it would then refuse.
		url, bodies := fakeRelay(t, []relay.DeliveryView{payment})
		env := envOf(map[string]string{"SIDEHOOK_SECRET_KEY": replaySecret})
		code, stdout, stderr := runCLI(t, env, "replay", "--relay", url, "--api-key", "k", "--all")
		if got := bodies(); code != 0 || len(got) != 1 {
			t.Fatalf("got %d %q %q, bodies %v; want 0 and one body", code, stdout, stderr, got)
		}
	})
	t.Run("Filter", func(t *testing.T) {
		url, bodies := fakeRelay(t, []relay.DeliveryView{payment, older})
		code, stdout, stderr := runCLI(t, nil, "replay", "--relay", url, "--api-key", "k", "--status", "dead", "--endpoint", "ep1",
			"--event", "payment", "--since", "2026-01-02T03:04:05Z", "--until", "2026-02-02T03:04:05Z")
		got := bodies()
		if code != 0 || len(got) != 1 {
			t.Fatalf("got %d %q %q, bodies %v; want 0 and one body", code, stdout, stderr, got)
		}
		want := map[string]any{"status": "dead", "endpoint": "ep1", "type": "payment", "since": "2026-01-02T03:04:05Z", "until": "2026-02-02T03:04:05Z"}
		f := got[0]["filter"].(map[string]any)
		for k, v := range want {
			if f[k] != v {
				t.Errorf("filter %s: got %v, want %v", k, f[k], v)
			}
		}
		if _, ok := got[0]["all"]; ok {
			t.Errorf("all sent without --all: %v", got[0])
		}
		if _, ok := got[0]["to"]; ok {
			t.Errorf("to sent without --to: %v", got[0])
		}
	})
	t.Run("CustomValueSkipped", func(t *testing.T) {
		custom := relay.DeliveryView{ID: "dlv_3", EventID: "evt_3", Endpoint: "values", Type: "custom_value_request", Status: "delivered"}
		url, bodies := fakeRelay(t, []relay.DeliveryView{custom, payment, older})
		code, stdout, stderr := runCLI(t, nil, "replay", "--relay", url, "--api-key", "k", "--all", "--to", "http://127.0.0.1:9/")
		got := bodies()
		if code != 0 || len(got) != 2 {
			t.Fatalf("got %d %q %q, bodies %v; want 0 and two bodies", code, stdout, stderr, got)
		}
		// Oldest first, one id at a time, never the custom-value one.
		for i, id := range []string{"dlv_1", "dlv_2"} {
			ids := got[i]["filter"].(map[string]any)["ids"].([]any)
			if len(ids) != 1 || ids[0] != id {
				t.Errorf("call %d: ids %v, want [%s]", i, ids, id)
			}
		}
		if row := replayRow(stdout, "dlv_3"); !strings.Contains(row, "skipped") || !strings.Contains(row, "custom-value") {
			t.Errorf("custom-value row: got %q, want skipped for custom-value", row)
		}
		if !strings.Contains(stdout, "2 replayed: 2 ok, 0 failed, 1 skipped") {
			t.Errorf("summary: got %q, want \"2 replayed: 2 ok, 0 failed, 1 skipped\"", stdout)
		}
	})
	t.Run("DryRunJSON", func(t *testing.T) {
		url, bodies := fakeRelay(t, []relay.DeliveryView{payment, older})
		code, stdout, _ := runCLI(t, nil, "replay", "--relay", url, "--api-key", "k", "--status", "dead", "--dry-run", "--json")
		var out struct {
			DryRun     bool `json:"dry_run"`
			Deliveries []struct{ ID, Target string }
		}
		if err := json.Unmarshal([]byte(stdout), &out); code != 0 || err != nil || !out.DryRun || len(out.Deliveries) != 2 ||
			out.Deliveries[0].ID != "dlv_1" || out.Deliveries[0].Target != "endpoint ep1" {
			t.Errorf("got %d %v %s, want 0 and a dry run of 2 deliveries, dlv_1 to endpoint ep1 first", code, err, stdout)
		}
		if n := len(bodies()); n != 0 {
			t.Errorf("a dry run posted %d replays", n)
		}
	})
}

func TestReplayCommandDryRun(t *testing.T) {
	src := receivertest.NewServer(t)
	dst := receivertest.NewServer(t)
	postTo(t, src.URL+"/webhooks", `{"type":"payment"}`, map[string]string{"webhook-id": "evt_X"})
	orig := waitFor(t, src, receivertest.Filter{}, 1)[0]

	code, stdout, stderr := runCLI(t, nil, append([]string{"replay", "--receiver", src.URL, "--all", "--to", dst.URL, "--dry-run"}, replaySigning()...)...)
	if code != 0 {
		t.Fatalf("exit %d, want 0: %s", code, stderr)
	}
	for _, want := range []string{"POST " + dst.URL + "/webhooks  (replay of " + orig.ID + ")", "Sidehook-Replay-Of: " + orig.ID,
		"Webhook-Id: evt_X", "X-Webio-Token: <redacted>", "Authorization: Bearer <redacted>", "Webhook-Signature: v1,",
		`{"type":"payment"}`, "dry run: 1 request, nothing sent"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("stdout lacks %q:\n%s", want, stdout)
		}
	}
	if strings.Contains(stdout, "eyJ") {
		t.Errorf("a token was printed:\n%s", stdout)
	}

	code, stdout, _ = runCLI(t, nil, "replay", "--receiver", src.URL, "--all", "--to", dst.URL, "--dry-run", "--json")
	var out struct {
		DryRun   bool `json:"dry_run"`
		Requests []struct {
			ID, Method, URL, Body string
		} `json:"requests"`
	}
	if err := json.Unmarshal([]byte(stdout), &out); code != 0 || err != nil || !out.DryRun || len(out.Requests) != 1 ||
		out.Requests[0].URL != dst.URL+"/webhooks" || out.Requests[0].Body != `{"type":"payment"}` {
		t.Errorf("--dry-run --json: got %d %v %s, want 0 and a dry run of one request to /webhooks with the body", code, err, stdout)
	}
	time.Sleep(50 * time.Millisecond)
	if n := len(dst.Requests(receivertest.Filter{})); n != 0 {
		t.Errorf("a dry run sent %d requests", n)
	}
}

func TestReplayCommandErrors(t *testing.T) {
	src := receivertest.NewServer(t)
	dst := receivertest.NewServer(t)
	postTo(t, src.URL+"/webhooks", `{}`, nil)
	c := waitFor(t, src, receivertest.Filter{}, 1)[0]
	file := filepath.Join(t.TempDir(), "one.ndjson")
	line, _ := json.Marshal(c)
	os.WriteFile(file, append(line, '\n'), 0o600)
	shortKey := filepath.Join(t.TempDir(), "key.pem")
	os.WriteFile(shortKey, []byte("not a key"), 0o600)

	huge := filepath.Join(t.TempDir(), "huge.json")
	os.WriteFile(huge, nil, 0o600)
	if err := os.Truncate(huge, maxSendBody+1); err != nil { // sparse: no disk is written
		t.Fatal(err)
	}

	rcv := []string{"replay", "--receiver", src.URL}
	tests := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"NoSource", []string{"replay", "--all"}, 2, "give one source"},
		// Read whole, as send --file was: a file named by mistake could
		// take all the memory.
		{"HugeBody", append(rcv, "--all", "--body", huge), 2, "--body " + huge + " is over 67108864 bytes"},
		{"TwoSources", []string{"replay", "--receiver", src.URL, "--file", file, "--all"}, 2, "give one source"},
		{"BadReceiver", []string{"replay", "--receiver", "localhost:8081", "--all"}, 2, "not an absolute http"},
		// The dashboard URL a receiver prints: "unknown id", exit 1.
		{"DashboardReceiver", []string{"replay", "--receiver", src.URL + "/_sidehook/ui/", "--all"}, 2, "give its base URL, " + src.URL},
		{"RelayNoKey", []string{"replay", "--relay", "http://127.0.0.1:1", "--all"}, 2, "--api-key"},
		{"FileNoTo", []string{"replay", "--file", file}, 2, "give --to"},
		{"MissingFile", []string{"replay", "--file", "/nonexistent/captures.ndjson", "--all"}, 2, "--file: stat /nonexistent/captures.ndjson: no such file"},
		// Read, a directory failed at the selection: exit 1.
		{"FileIsDirectory", []string{"replay", "--file", t.TempDir(), "--to", dst.URL, "--all"}, 2, "is a directory"},
		{"NoSelection", rcv, 2, "say what to replay"},
		{"BadTo", append(rcv, "--all", "--to", "ftp://example.com"), 2, `--to "ftp://example.com": not an absolute http`},
		{"RelativeTo", append(rcv, "--all", "--to", "/webhooks"), 2, "not an absolute http"},
		{"NotURLTo", append(rcv, "--all", "--to", "http//x"), 2, "not an absolute http"},
		{"StatusOnCaptures", append(rcv, "--status", "dead"), 2, "--status filters relay deliveries"},
		{"KeyOnRelay", []string{"replay", "--relay", "http://127.0.0.1:1", "--api-key", "k", "--all", "--jwt-secret", replaySecret}, 2, "--jwt-secret does not apply to --relay"},
		{"BodyOnRelay", []string{"replay", "--relay", "http://127.0.0.1:1", "--api-key", "k", "--all", "--body", "/dev/null"}, 2, "--body does not apply to --relay"},
		{"EndpointOnCaptures", append(rcv, "--endpoint", "ep1"), 2, "--endpoint filters relay deliveries"},
		{"APIKeyOnCaptures", append(rcv, "--all", "--api-key", "k"), 2, "--api-key is for --relay"},
		{"APIKeyOnFile", []string{"replay", "--file", file, "--to", "http://127.0.0.1:1", "--all", "--api-key", "k"}, 2, "--api-key is for --relay"},
		{"AdminTokenOnRelay", []string{"replay", "--relay", "http://127.0.0.1:1", "--api-key", "k", "--all", "--admin-token", "t"}, 2, "--admin-token is for --receiver"},
		{"VerdictOnRelay", []string{"replay", "--relay", "http://127.0.0.1:1", "--api-key", "k", "--verdict", "valid"}, 2, "--verdict filters captures"},
		{"BadStatus", []string{"replay", "--relay", "http://127.0.0.1:1", "--api-key", "k", "--status", "lost"}, 2, "want pending"},
		{"BadVerdict", append(rcv, "--verdict", "ok"), 2, "want valid, invalid or unverified"},
		{"BadEvent", append(rcv, "--event", "Pay Ment"), 2, "not an event type name"},
		{"BadSince", append(rcv, "--since", "yesterday"), 2, "--since"},
		{"ZeroUntil", append(rcv, "--event", "payment", "--until", "0001-01-01T00:00:00Z"), 2, "--until 0001-01-01T00:00:00Z: nothing is that old"},
		{"UntilBeforeSince", append(rcv, "--since", "1m", "--until", "1h"), 2, "--until is before --since"},
		{"BadRate", append(rcv, "--all", "--rate", "fast"), 2, "--rate"},
		{"BadMax", append(rcv, "--all", "--max", "0"), 2, "--max"},
		{"WebioNoOrg", append(rcv, "--all", "--webio-secret", replaySecret), 2, "needs --org"},
		{"ShortSecret", append(rcv, "--all", "--jwt-secret", "short"), 2, "--jwt-secret"},
		{"EmptySecret", append(rcv, "--all", "--jwt-secret", ""), 2, "replay: --jwt-secret is empty"},
		{"BothJWT", append(rcv, "--all", "--jwt-secret", replaySecret, "--jwt-key", shortKey), 2, "not both"},
		{"BadKeyFile", append(rcv, "--all", "--jwt-key", shortKey), 2, "no private key PEM block"},
		{"BadStandard", append(rcv, "--all", "--standard-secret", "nope"), 2, "whsec_"},
		{"SignWithoutKey", append(rcv, "--all", "--sign", "jwt"), 2, "--sign jwt needs --jwt-secret or --jwt-key"},
		{"UnknownScheme", append(rcv, "--all", "--sign", "magic"), 2, "unknown scheme"},
		{"MissingBody", append(rcv, "--all", "--body", "/nonexistent/body"), 2, "--body"},
		{"MalformedID", append(rcv, "--id", "nope", "--to", dst.URL), 2, `--id "nope": not a capture id`},
		// An id the tunnel or the other source printed names where to
		// replay it, rather than "unknown id" from the wrong one.
		{"InspectorIDOnRelay", []string{"replay", "--relay", "http://127.0.0.1:1", "--api-key", "k", "--id", "fwd_01M94G2MR8AZDNCZ0ZXT63CKZQ"}, 2,
			`--id fwd_01M94G2MR8AZDNCZ0ZXT63CKZQ is a request in the tunnel's inspector: replay it there, or give its delivery id (dlv_…)`},
		{"InspectorIDOnReceiver", append(rcv, "--id", "fwd_01M94G2MR8AZDNCZ0ZXT63CKZQ"), 2, "is a request in the tunnel's inspector"},
		{"CaptureIDOnRelay", []string{"replay", "--relay", "http://127.0.0.1:1", "--api-key", "k", "--id", "cap_01JDQ0000000000000000000ZZ"}, 2,
			"--id cap_01JDQ0000000000000000000ZZ is a receiver's capture: replay it with --receiver URL"},
		{"DeliveryIDOnReceiver", append(rcv, "--id", "dlv_01M94FZ1CH4X6J1KYCM6PCDN8M"), 2,
			"--id dlv_01M94FZ1CH4X6J1KYCM6PCDN8M is a relay's delivery: replay it with --relay URL --api-key K"},
		{"MalformedDeliveryID", []string{"replay", "--relay", "http://127.0.0.1:1", "--api-key", "k", "--id", "dlv_nope"}, 2,
			`--id "dlv_nope": not a delivery id (dlv_ followed by 26 characters)`},
		{"UnknownID", append(rcv, "--id", c.ID, "--id", "cap_01JDQ0000000000000000000ZZ", "--to", dst.URL), 1, "unknown id: cap_01JDQ0000000000000000000ZZ"},
		{"Unreachable", append(rcv, "--all", "--to", "http://127.0.0.1:1"), 1, "1 of 1 failed"},
		{"TooMany", append(rcv, "--all", "--max", "1", "--to", dst.URL), 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.name == "TooMany" {
				// One capture fits a maximum of one; a second does not.
				postTo(t, src.URL+"/more", `{}`, nil)
				waitFor(t, src, receivertest.Filter{}, 2)
				tt.code, tt.want = 1, "more than 1 requests: narrow it or raise --max"
			}
			code, stdout, stderr := runCLI(t, nil, tt.args...)
			if code != tt.code || !strings.Contains(stderr, tt.want) {
				t.Errorf("got %d %q (stdout %q), want %d and %q", code, stderr, stdout, tt.code, tt.want)
			}
		})
	}
	if n := len(dst.Requests(receivertest.Filter{})); n != 0 {
		t.Errorf("%d requests sent by failed commands, want none", n)
	}
}

// --edit needs a terminal: with standard input anything else it is a usage error
// before anything is selected.
func TestReplayCommandEditNotTerminal(t *testing.T) {
	code, _, stderr := runCLI(t, nil, "replay", "--receiver", "http://127.0.0.1:1", "--all", "--edit")
	if code != 2 || !strings.Contains(stderr, "--edit needs a terminal") {
		t.Errorf("got %d %q, want 2 and an error containing %q", code, stderr, "--edit needs a terminal")
	}
}

func TestEditBody(t *testing.T) {
	dir := t.TempDir()
	script := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body+"\n"), 0o700); err != nil {
			t.Fatal(err)
		}
		return p
	}
	orig := []byte(`{"amount":"50.00"}`)
	tests := []struct {
		name   string
		editor string
		want   string
		err    string
	}{
		{"Edited", script("edit.sh", `printf '{"amount":"99.00"}' > "$1"`), `{"amount":"99.00"}`, ""},
		{"EditorNewlineIgnored", script("nl.sh", `printf '\n' >> "$1"`), string(orig), ""},
		{"Untouched", script("noop.sh", `exit 0`), string(orig), ""},
		{"Emptied", script("empty.sh", `: > "$1"`), "", "emptied"},
		{"EditorFails", script("fail.sh", `exit 3`), "", "exit status 3"},
		{"NoEditor", "  ", "", "no editor"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := editBody(context.Background(), tt.editor, orig, nil, io.Discard, io.Discard)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Errorf("got %q, %v; want an error containing %q", got, err, tt.err)
				}
				return
			}
			if err != nil || string(got) != tt.want {
				t.Errorf("got %q, %v; want %q", got, err, tt.want)
			}
		})
	}
	e := &env{getenv: func(k string) string { return map[string]string{"EDITOR": "nano"}[k] }}
	if got := editorOf(e); got != "nano" {
		t.Errorf("editorOf: got %q, want \"nano\"", got)
	}
}

// replayRow is the first line of out containing sub.
func replayRow(out, sub string) string {
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, sub) {
			return l
		}
	}
	return ""
}

// --jwt-key signs with a key pair; --issuer and --audience reach the
// claims the receiver checks.
func TestReplayCommandJWTKey(t *testing.T) {
	key, err := auth.GenerateKey(auth.ES256)
	if err != nil {
		t.Fatal(err)
	}
	pemBytes, err := auth.MarshalKey(key)
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(t.TempDir(), "key.pem")
	if err := os.WriteFile(keyFile, pemBytes, 0o600); err != nil {
		t.Fatal(err)
	}
	pub, err := key.Public()
	if err != nil {
		t.Fatal(err)
	}
	pubPEM, err := auth.MarshalPublicKeyPEM(pub)
	if err != nil {
		t.Fatal(err)
	}
	src := receivertest.NewServer(t)
	dst := receivertest.NewServer(t, receivertest.WithJWTPublicKey(pubPEM), receivertest.WithIssuer("replayer"),
		receivertest.WithAudience("crm"), receivertest.WithRequireSHA256())
	postTo(t, src.URL+"/hooks", `{"type":"payment"}`, map[string]string{"webhook-id": "evt_K"})
	orig := waitFor(t, src, receivertest.Filter{}, 1)[0]
	code, stdout, stderr := runCLI(t, nil, "replay", "--receiver", src.URL, "--id", orig.ID, "--to", dst.URL,
		"--jwt-key", keyFile, "--issuer", "replayer", "--audience", "crm", "--sign", "jwt")
	if code != 0 {
		t.Fatalf("exit %d, want 0: %s %s", code, stdout, stderr)
	}
	checkReplayed(t, waitFor(t, dst, receivertest.Filter{}, 1)[0], orig)
}

// One capture that cannot be signed does not stop the others; the hint
// names the flag that would fix it. --fail-fast refuses the batch.
func TestReplayCommandPerItem(t *testing.T) {
	src := receivertest.NewServer(t)
	dst := receivertest.NewServer(t, receivertest.WithStandardSecret(replayWhsec))
	postTo(t, src.URL+"/a", `{"n":1}`, map[string]string{"webhook-id": "evt_A"})
	waitFor(t, src, receivertest.Filter{}, 1)
	postTo(t, src.URL+"/b", `{"n":2}`, nil)
	caps := waitFor(t, src, receivertest.Filter{}, 2)
	noID := caps[0].ID
	if caps[0].WebhookID != "" {
		noID = caps[1].ID
	}
	args := []string{"replay", "--receiver", src.URL, "--all", "--to", dst.URL, "--standard-secret", replayWhsec}

	code, stdout, stderr := runCLI(t, nil, append(args, "--fail-fast")...)
	if code != 2 || !strings.Contains(stderr, "no webhook-id") || !strings.Contains(stderr, "leave standard out of --sign") ||
		!strings.Contains(stderr, "nothing sent") {
		t.Errorf("--fail-fast: got %d %q %q, want 2 with no webhook-id, leave standard out of --sign, nothing sent", code, stdout, stderr)
	}
	if n := len(dst.Requests(receivertest.Filter{})); n != 0 {
		t.Fatalf("--fail-fast sent %d requests", n)
	}

	code, stdout, stderr = runCLI(t, nil, args...)
	if code != 1 || !strings.Contains(stdout, "2 replayed: 1 ok, 1 failed") || !strings.Contains(stderr, "leave standard out of --sign") {
		t.Errorf("per item: got %d %q %q, want 1 with \"2 replayed: 1 ok, 1 failed\" and leave standard out of --sign", code, stdout, stderr)
	}
	if row := replayRow(stdout, noID); !strings.Contains(row, "no webhook-id") {
		t.Errorf("unsigned row: got %q, want \"no webhook-id\"", row)
	}
	got := waitFor(t, dst, receivertest.Filter{}, 1)
	if len(got) != 1 || got[0].WebhookID != "evt_A" || got[0].Verdict.Status != auth.StatusValid {
		t.Errorf("dst: got %+v, want one validly signed evt_A", got)
	}
}

// Under `dev --in-memory`, whose keys no one passes by hand, the printed
// API key is enough: the relay signs the replay, the receiver finds it
// valid.
func TestReplayCommandRelayUnderDev(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	stdout, stderr := &syncBuffer{}, &syncBuffer{}
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, []string{"sidehook", "dev", "--json", "--in-memory", "--relay-listen", "127.0.0.1:0", "--receiver-listen", "127.0.0.1:0"},
			func(string) string { return "" }, strings.NewReader(""), stdout, stderr)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			t.Error("dev did not stop within 20s")
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for !strings.HasSuffix(stdout.String(), "\n") {
		if time.Now().After(deadline) {
			t.Fatalf("no JSON within 30s:\n%s\n%s", stdout, stderr)
		}
		select {
		case err := <-done:
			t.Fatalf("dev exited early: %v\n%s", err, stderr)
		case <-time.After(20 * time.Millisecond):
		}
	}
	var dev struct {
		Relay, Receiver struct{ URL string }
		APIKey          string `json:"api_key"`
	}
	if err := json.Unmarshal([]byte(stdout.String()), &dev); err != nil {
		t.Fatal(err)
	}

	code, out, errOut := runCLI(t, nil, "replay", "--relay", dev.Relay.URL, "--api-key", dev.APIKey, "--event", "payment", "--to", dev.Receiver.URL+"/replayed")
	if code != 0 || !strings.Contains(out, "1 replayed: 1 ok, 0 failed") {
		t.Fatalf("got %d %q %q, want 0 with \"1 replayed: 1 ok, 0 failed\"", code, out, errOut)
	}
	rc, err := receiverapi.New(dev.Receiver.URL, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	wctx, wcancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer wcancel()
	caps, err := rc.Wait(wctx, receiver.Filter{Path: "/replayed"}, 1, 5*time.Second)
	if err != nil || len(caps) != 1 || caps[0].Verdict.Status != auth.StatusValid || caps[0].Event != "payment" {
		t.Errorf("replayed capture: got %+v, %v", caps, err)
	}
}

// The hint names the flag that supplies what each item lacks, once each.
func TestFixHint(t *testing.T) {
	item := func(need replay.Need, scheme string) replay.ItemError {
		return replay.ItemError{ID: "x", Err: &replay.NotReplayableError{Need: need, Scheme: scheme, Reason: "r"}}
	}
	tests := []struct {
		name  string
		items []replay.ItemError
		want  string
	}{
		{"Target", []replay.ItemError{item(replay.NeedTarget, "")}, " (give --to URL)"},
		{"Body", []replay.ItemError{item(replay.NeedBody, "")}, " (give --body FILE)"},
		{"WebioKey", []replay.ItemError{item(replay.NeedKey, auth.SchemeWebioToken)}, " (give --secret-key and --org)"},
		{"JWTKey", []replay.ItemError{item(replay.NeedKey, auth.SchemeJWT)}, " (give --jwt-secret or --jwt-key)"},
		{"StandardKey", []replay.ItemError{item(replay.NeedKey, auth.SchemeStandard)}, " (give --standard-secret)"},
		{"NoWebhookID", []replay.ItemError{item(replay.NeedWebhookID, auth.SchemeStandard)}, " (leave standard out of --sign)"},
		{"Scheme", []replay.ItemError{item(replay.NeedScheme, "magic")}, " (fix --sign)"},
		{"OnceEach", []replay.ItemError{item(replay.NeedTarget, ""), item(replay.NeedBody, ""), item(replay.NeedTarget, "")}, " (give --to URL; give --body FILE)"},
		{"Unknown", []replay.ItemError{{ID: "x", Err: errors.New("other")}}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := fixHint(&replay.CheckError{Items: tt.items}); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
	if got := fixHint(errors.New("not a check error")); got != "" {
		t.Errorf("other error: got %q, want \"\"", got)
	}
}

// waitDelivered waits until the relay has recorded each delivery as
// delivered.
func waitDelivered(t *testing.T, relayURL string, ids ...string) {
	t.Helper()
	api, err := relayapi.New(relayURL, replayAPIKey, nil)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for _, id := range ids {
		for {
			d, err := api.Delivery(context.Background(), id)
			if err != nil {
				t.Fatal(err)
			}
			if d.Status == relay.StatusDelivered {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("delivery %s: status %q after 10s, want delivered", id, d.Status)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
}

// TestReplayCommandReceiverAdminToken: a receiver that wants its admin
// token, asked without it or with another, is answered with the flag to
// give; the receiver's own words told an HTTP client to send an
// Authorization header.
func TestReplayCommandReceiverAdminToken(t *testing.T) {
	const token = "replay-admin-token-0001"
	url, _ := startCommand(t, nil, "receive", "--in-memory", "--listen", "127.0.0.1:0", "--admin-token", token)
	tests := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"Missing", nil, 1, "replay: the receiver's admin API needs its admin token: give --admin-token (or SIDEHOOK_ADMIN_TOKEN)"},
		{"Wrong", []string{"--admin-token", "another-admin-token-01"}, 1, "replay: the receiver refused --admin-token: invalid admin token"},
		{"Given", []string{"--admin-token", token}, 0, "nothing matched"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, stderr := runCLI(t, nil, append([]string{"replay", "--receiver", url, "--all"}, tt.args...)...)
			if code != tt.code || !strings.Contains(stderr, tt.want) {
				t.Errorf("got exit %d %q, want %d and %q", code, stderr, tt.code, tt.want)
			}
		})
	}
}

// TestReplayValuesFromVariables: a bad selection or pacing value read
// from its variable names the variable, as every other flag's does; it
// was named as a flag the command line did not have.
func TestReplayValuesFromVariables(t *testing.T) {
	rcv := []string{"replay", "--receiver", "http://127.0.0.1:1"}
	tests := []struct {
		variable, value string
		args            []string
		want            string
	}{
		{"SIDEHOOK_EVENT", "Pay Ment", nil, `replay: SIDEHOOK_EVENT "Pay Ment" is not an event type name`},
		{"SIDEHOOK_REPLAY_VERDICT", "ok", nil, `replay: SIDEHOOK_REPLAY_VERDICT "ok": want valid, invalid or unverified`},
		{"SIDEHOOK_SINCE", "yesterday", nil, `replay: SIDEHOOK_SINCE "yesterday": want an RFC 3339 time`},
		{"SIDEHOOK_MAX", "0", []string{"--all"}, "replay: SIDEHOOK_MAX must be positive"},
		{"SIDEHOOK_TO", "ftp://x", []string{"--all"}, `replay: SIDEHOOK_TO "ftp://x": not an absolute http`},
		{"SIDEHOOK_RATE", "fast", []string{"--all"}, `replay: SIDEHOOK_RATE: "fast": want a rate`},
	}
	for _, tt := range tests {
		t.Run(tt.variable, func(t *testing.T) {
			env := envOf(map[string]string{tt.variable: tt.value})
			code, _, stderr := runCLI(t, env, append(rcv, tt.args...)...)
			if code != 2 || !strings.Contains(stderr, tt.want) {
				t.Errorf("got exit %d %q, want 2 and %q", code, stderr, tt.want)
			}
		})
	}
}

// --relay given another server's URL, the app's (a mock receiver checking
// its tokens) or the tunnel's inspector's, says it is no relay, rather
// than "the relay refused" its token or "unknown id" for a delivery it
// never had.
func TestReplayCommandRelayNotARelay(t *testing.T) {
	const id = "dlv_01M94FZ1CH4X6J1KYCM6PCDN8M"
	answer := func(status int, body string) string {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(status)
			io.WriteString(w, body)
		}))
		t.Cleanup(srv.Close)
		return srv.URL
	}
	app := answer(401, `{"error":"invalid_token","reason":"webio-token: missing x-webio-token header"}`)
	inspector := answer(404, `{"error":"not_found","reason":"no inspector route GET /v1/deliveries/`+id+`"}`)
	capturing := receivertest.NewServer(t)
	tests := []struct {
		name, url string
		args      []string
		want      string
	}{
		{"AppByID", app, []string{"--id", id}, "is it a sidehook relay? webio-token: missing x-webio-token header"},
		{"AppByFilter", app, []string{"--all"}, "is it a sidehook relay?"},
		{"InspectorByID", inspector, []string{"--id", id}, "is it a sidehook relay?"},
		{"InspectorByFilter", inspector, []string{"--status", "failed"}, "is it a sidehook relay?"},
		{"CapturingReceiver", capturing.URL, []string{"--id", id}, "is it a sidehook relay?"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"replay", "--relay", tt.url, "--api-key", "k"}, tt.args...)
			code, stdout, stderr := runCLI(t, nil, args...)
			if code != 1 || !strings.Contains(stderr, tt.url) || !strings.Contains(stderr, tt.want) || strings.Contains(stderr, "unknown id") {
				t.Errorf("got %d %q (stdout %q), want 1 and %q naming %s", code, stderr, stdout, tt.want, tt.url)
			}
		})
	}
	// The URL named keeps no password.
	withPassword := strings.Replace(app, "http://", "http://me:hunter2@", 1)
	if _, _, stderr := runCLI(t, nil, "replay", "--relay", withPassword, "--api-key", "k", "--all"); strings.Contains(stderr, "hunter2") || !strings.Contains(stderr, "is it a sidehook relay?") {
		t.Errorf("got %q, want the URL without its password", stderr)
	}
}

// A delivery the relay cannot replay to its endpoint (disabled by a 410)
// tells the command's user to give --to, the flag, not the API's "to".
func TestReplayCommandRelayDisabledEndpointHint(t *testing.T) {
	gone := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusGone) }))
	t.Cleanup(gone.Close)
	r := startReplayRelay(t, gone.URL+"/hooks")
	_, dlvs := relayIngest(t, r, "payment", `{"type":"payment"}`)
	deadline := time.Now().Add(10 * time.Second)
	var stdout, stderr string
	for {
		_, stdout, stderr = runCLI(t, nil, "replay", "--relay", r.URL(), "--api-key", replayAPIKey, "--id", dlvs[0])
		if strings.Contains(stdout, "is disabled") || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !strings.Contains(stdout, "is disabled") || !strings.Contains(stdout, "give --to URL") || strings.Contains(stdout, `"to"`) {
		t.Errorf("got %q %q, want the endpoint disabled and give --to URL", stdout, stderr)
	}
	_, stdout, _ = runCLI(t, nil, "replay", "--relay", r.URL(), "--api-key", replayAPIKey, "--id", dlvs[0], "--json")
	if !strings.Contains(stdout, "give --to URL") {
		t.Errorf("--json: got %s, want give --to URL", stdout)
	}

	// A dry run says so before anything is tried, and --to lifts it.
	dry := []string{"replay", "--relay", r.URL(), "--api-key", replayAPIKey, "--id", dlvs[0], "--dry-run"}
	code, stdout, stderr := runCLI(t, nil, dry...)
	if row := replayRow(stdout, dlvs[0]); code != 0 || !strings.Contains(row, "endpoint ") || !strings.Contains(row, "is disabled (answered 410 Gone") || !strings.Contains(row, "give --to URL") {
		t.Errorf("--dry-run: got %d %q %q, want a note that the endpoint is disabled", code, stdout, stderr)
	}
	_, stdout, _ = runCLI(t, nil, append(dry, "--json")...)
	if !strings.Contains(stdout, `"skipped": "endpoint `) {
		t.Errorf("--dry-run --json: got %s, want skipped saying the endpoint is disabled", stdout)
	}
	_, stdout, _ = runCLI(t, nil, append(dry, "--to", gone.URL)...)
	if row := replayRow(stdout, dlvs[0]); strings.Contains(row, "disabled") {
		t.Errorf("--dry-run --to: got %q, want no note: --to does not need the endpoint", row)
	}
}
