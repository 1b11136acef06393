package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestDevCommand(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	stdout, stderr := &syncBuffer{}, &syncBuffer{}
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, []string{"sidehook", "--log-format", "json", "dev",
			"--relay-listen", "127.0.0.1:0", "--receiver-listen", "127.0.0.1:0",
			"--data", t.TempDir()}, func(string) string { return "" }, strings.NewReader(""), stdout, stderr)
	}()
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			if err != nil && !errors.Is(err, context.Canceled) {
				t.Errorf("dev: %v", err)
			}
		case <-time.After(20 * time.Second):
			t.Error("dev did not stop within 20s")
		}
	}
	t.Cleanup(stop)

	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(stdout.String(), "Press Ctrl-C") {
		if time.Now().After(deadline) {
			t.Fatalf("dev did not finish sending within 30s:\n%s\n%s", stdout, stderr)
		}
		select {
		case err := <-done:
			t.Fatalf("dev exited early: %v\n%s", err, stderr)
		case <-time.After(20 * time.Millisecond):
		}
	}
	out := stdout.String()
	for _, typ := range []string{"inbound_message", "message_send", "delivery_report", "payment", "custom_value_request"} {
		line := lineWith(out, "  "+typ+" ")
		if !strings.Contains(line, "-> 200  valid (webio-token,jwt,standard)") {
			t.Errorf("%s: got %q, want it delivered and verified by every scheme", typ, line)
		}
	}
	for _, want := range []string{"/_sidehook/ui/", "sk_dev_sidehook_demo_key", devSecretKey, devStandardSecret} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q", want)
		}
	}

	// The receiver's API, at the URL dev printed, holds the five captures.
	recvURL := strings.Fields(lineWith(out, "Receiver "))[1]
	resp, err := http.Get(recvURL + "/_sidehook/requests/count?verdict=valid")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var count struct{ Count int }
	if err := json.NewDecoder(resp.Body).Decode(&count); err != nil {
		t.Fatal(err)
	}
	if count.Count != 5 {
		t.Errorf("valid captures: got %d, want 5", count.Count)
	}
	checkDevReplay(t, recvURL)

	// The send command dev prints works as printed: without it, the
	// README's 'sidehook send --event payment' after dev answered
	// "--api-key is required".
	send := strings.Fields(lineWith(out, "  sidehook send "))
	if len(send) < 2 {
		t.Fatalf("dev printed no sidehook send line:\n%s", out)
	}
	if code, got, stderr := runCLI(t, nil, send[1:]...); code != 0 || !strings.Contains(got, `"type":"payment"`) {
		t.Errorf("%s: got %d %q %q, want 0 and the relay's answer", strings.Join(send, " "), code, got, stderr)
	}
	stop()
}

// checkDevReplay replays a payment dev sent, as the receiver's dashboard
// does (no "sign": every scheme the original carried), back to the
// receiver: it is re-signed with every scheme, the ES256 JWT with the
// relay's key, and verifies.
func checkDevReplay(t *testing.T, recvURL string) {
	t.Helper()
	var list struct {
		Requests []struct{ ID string }
	}
	getJSON(t, recvURL+"/_sidehook/requests?event=payment&limit=1", &list)
	if len(list.Requests) != 1 {
		t.Fatalf("got %d payment captures, want 1", len(list.Requests))
	}
	orig := list.Requests[0].ID
	resp, err := http.Post(recvURL+"/_sidehook/requests/"+orig+"/replay", "application/json", strings.NewReader(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var ans struct {
		Status int
		Signed []string
		Reason string
	}
	if err := json.NewDecoder(resp.Body).Decode(&ans); err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || ans.Status != http.StatusOK || strings.Join(ans.Signed, ",") != "webio-token,jwt,standard" {
		t.Fatalf("replay of %s: got %d %+v, want 200, the receiver answering 200, signed with all three schemes", orig, resp.StatusCode, ans)
	}
	var again struct {
		Requests []struct {
			Headers map[string][]string
			Verdict struct{ Status, Scheme, Reason string }
		}
	}
	getJSON(t, recvURL+"/_sidehook/requests?event=payment&limit=1", &again)
	if len(again.Requests) != 1 {
		t.Fatal("the replay was not captured")
	}
	c := again.Requests[0]
	if of := c.Headers["sidehook-replay-of"]; len(of) != 1 || of[0] != orig || c.Verdict.Status != "valid" || c.Verdict.Scheme != "webio-token,jwt,standard" {
		t.Errorf("replay captured with replay-of %v, verdict %+v; want a replay of %s, valid by every scheme", of, c.Verdict, orig)
	}
}

func getJSON(t *testing.T, url string, v any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d, want 200", url, resp.StatusCode)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatal(err)
	}
}

func lineWith(s, sub string) string {
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			return l
		}
	}
	return ""
}

// TestDevCommandJSON: with --json, dev prints one JSON object, on one line,
// and nothing else on standard output.
func TestDevCommandJSON(t *testing.T) {
	out := runDev(t, nil, "--relay-listen", "127.0.0.1:0", "--receiver-listen", "127.0.0.1:0")
	if strings.Count(out, "\n") != 1 {
		t.Fatalf("got %q, want one line", out)
	}
	var got struct {
		Relay, Receiver struct{ URL, Dashboard string }
		Organisation    string
		APIKey          string `json:"api_key"`
		SecretKey       string `json:"secret_key"`
		StandardSecret  string `json:"standard_secret"`
		JWKSURL         string `json:"jwks_url"`
		Sent            []devSent
	}
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("got %q: %v", out, err)
	}
	if got.Organisation != devOrg || got.APIKey != devAPIKey || got.SecretKey != devSecretKey || got.StandardSecret != devStandardSecret ||
		got.Relay.Dashboard != got.Relay.URL+"/_sidehook/ui/" || got.Receiver.Dashboard != got.Receiver.URL+"/_sidehook/ui/" ||
		got.JWKSURL != got.Relay.URL+"/.well-known/jwks.json" {
		t.Errorf("got %+v, want the dev organisation and keys, and the dashboards and JWKS URL under the relay and receiver URLs", got)
	}
	if len(got.Sent) != 5 {
		t.Fatalf("sent: got %d, want the five events", len(got.Sent))
	}
	for _, s := range got.Sent {
		if !s.Arrived || s.Status != 200 || s.Verdict != "valid" || s.Scheme != "webio-token,jwt,standard" {
			t.Errorf("%s: got %+v, want delivered and verified by every scheme", s.Event, s)
		}
	}
	// The relay at the printed URL takes the printed API key.
	req, _ := http.NewRequest(http.MethodGet, got.Relay.URL+"/v1/events", nil)
	req.Header.Set("Authorization", "Bearer "+got.APIKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("GET /v1/events with the printed key: %d, want 200", resp.StatusCode)
	}
}

// TestDevRelayConfig: the embedded configuration takes any address, data
// path and URL as they are; unquoted, [::]:0 was read as a YAML list and a
// path with " #" or ": " in it broke the file.
func TestDevRelayConfig(t *testing.T) {
	for _, tt := range []struct{ listen, data string }{
		{"127.0.0.1:0", "/tmp/dev/relay"},
		{"[::]:0", "/tmp/dev/relay"},
		{"[::1]:8080", "/tmp/a #b: c/\"quoted\"/relay"},
	} {
		cfg, err := devRelayConfig(tt.listen, tt.data, "http://[::1]:9000")
		if err != nil {
			t.Errorf("listen %q, data %q: %v", tt.listen, tt.data, err)
			continue
		}
		if cfg.Listen != tt.listen || cfg.Data != tt.data || cfg.Organisations[0].Endpoints[0].URL != "http://[::1]:9000/webhooks" {
			t.Errorf("got listen %q, data %q, url %q; want %q, %q and the receiver's", cfg.Listen, cfg.Data, cfg.Organisations[0].Endpoints[0].URL, tt.listen, tt.data)
		}
	}
}

// devInfo is what `dev --json` prints that the tests read.
type devInfo struct {
	Relay, Receiver struct{ URL, Dashboard string }
}

// runDev runs `sidehook dev --json --in-memory args…` until the test
// ends and returns what it printed: one line of JSON.
func runDev(t *testing.T, getenv func(string) string, args ...string) string {
	t.Helper()
	if getenv == nil {
		getenv = func(string) string { return "" }
	}
	ctx, cancel := context.WithCancel(context.Background())
	stdout, stderr := newLineSignal(), &syncBuffer{}
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, append([]string{"sidehook", "dev", "--log-format", "json", "--json", "--in-memory"}, args...),
			getenv, strings.NewReader(""), stdout, stderr)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil && !errors.Is(err, context.Canceled) {
				t.Errorf("dev: %v", err)
			}
		case <-time.After(20 * time.Second):
			t.Error("dev did not stop within 20s")
		}
	})
	select {
	case <-stdout.line:
	case err := <-done:
		t.Fatalf("dev exited early: %v\n%s", err, stderr)
	case <-time.After(30 * time.Second):
		t.Fatalf("no JSON within 30s:\n%s", stderr)
	}
	return stdout.String()
}

// startDev is runDev with --no-send, and the URLs it printed.
func startDev(t *testing.T, getenv func(string) string, args ...string) devInfo {
	t.Helper()
	out := runDev(t, getenv, append([]string{"--no-send"}, args...)...)
	var info devInfo
	if err := json.Unmarshal([]byte(out), &info); err != nil {
		t.Fatalf("got %q: %v", out, err)
	}
	return info
}

// lineSignal is a syncBuffer that closes line at its first newline, so a
// test waits for the output itself rather than polling for it.
type lineSignal struct {
	syncBuffer
	once sync.Once
	line chan struct{}
}

func newLineSignal() *lineSignal { return &lineSignal{line: make(chan struct{})} }

func (l *lineSignal) Write(p []byte) (int, error) {
	n, err := l.syncBuffer.Write(p)
	if bytes.IndexByte(p, '\n') >= 0 {
		l.once.Do(func() { close(l.line) })
	}
	return n, err
}

// loopbackURL is u with its host replaced by 127.0.0.1: dev prints the
// address it listens on, which beyond loopback is 0.0.0.0 or [::].
func loopbackURL(t *testing.T, raw string) string {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return "http://" + net.JoinHostPort("127.0.0.1", u.Port())
}

// TestDevAdminToken: dev's --admin-token (or SIDEHOOK_ADMIN_TOKEN) reaches
// the relay and the receiver it starts, both beyond loopback: their
// management APIs refuse a request without it and answer one with it.
func TestDevAdminToken(t *testing.T) {
	const admin = "dev-admin-token-0123456789"
	listen := []string{"--relay-listen", "0.0.0.0:0", "--receiver-listen", "0.0.0.0:0"}
	for _, src := range []struct {
		name   string
		getenv func(string) string
		args   []string
	}{
		{"Flag", nil, append([]string{"--admin-token", admin}, listen...)},
		{"Env", func(k string) string {
			if k == "SIDEHOOK_ADMIN_TOKEN" {
				return admin
			}
			return ""
		}, listen},
	} {
		t.Run(src.name, func(t *testing.T) {
			info := startDev(t, src.getenv, src.args...)
			// What dev prints is a URL this machine can call, not 0.0.0.0 or [::].
			for _, u := range []string{info.Relay.URL, info.Relay.Dashboard, info.Receiver.URL, info.Receiver.Dashboard} {
				if !strings.HasPrefix(u, "http://127.0.0.1:") {
					t.Errorf("dev printed %q, want http://127.0.0.1:PORT…", u)
				}
			}
			relayURL, recvURL := loopbackURL(t, info.Relay.URL), loopbackURL(t, info.Receiver.URL)
			// The dashboard's page of older deliveries: its management API.
			deliveries := relayURL + "/_sidehook/deliveries?before=" + url.QueryEscape(time.Now().UTC().Format(time.RFC3339Nano))
			for _, tt := range []struct {
				name  string
				url   string
				token string
				want  int
			}{
				{"RelayNoToken", deliveries, "", http.StatusUnauthorized},
				{"RelayWrongToken", deliveries, "wrong-token-0123456789", http.StatusUnauthorized},
				{"RelayOK", deliveries, admin, http.StatusOK},
				{"RelayMetricsOK", relayURL + "/metrics", admin, http.StatusOK},
				{"ReceiverNoToken", recvURL + "/_sidehook/requests", "", http.StatusUnauthorized},
				{"ReceiverWrongToken", recvURL + "/_sidehook/requests", "wrong-token-0123456789", http.StatusUnauthorized},
				{"ReceiverOK", recvURL + "/_sidehook/requests", admin, http.StatusOK},
			} {
				t.Run(tt.name, func(t *testing.T) {
					req, err := http.NewRequest(http.MethodGet, tt.url, nil)
					if err != nil {
						t.Fatal(err)
					}
					if tt.token != "" {
						req.Header.Set("Authorization", "Bearer "+tt.token)
					}
					resp, err := http.DefaultClient.Do(req)
					if err != nil {
						t.Fatal(err)
					}
					resp.Body.Close()
					if resp.StatusCode != tt.want {
						t.Errorf("GET %s: got %d, want %d", tt.url, resp.StatusCode, tt.want)
					}
				})
			}
		})
	}
}

// TestDevUsageErrors: a bad dev flag is exit code 2 and one line, before
// anything is opened or bound.
func TestDevUsageErrors(t *testing.T) {
	envToken := func(v string) func(string) string {
		return func(k string) string {
			if k == "SIDEHOOK_ADMIN_TOKEN" {
				return v
			}
			return ""
		}
	}
	loopback := []string{"--relay-listen", "127.0.0.1:0", "--receiver-listen", "127.0.0.1:0"}
	tests := []struct {
		name   string
		getenv func(string) string
		args   []string
		want   string
	}{
		{"ShortAdminToken", nil, append([]string{"--admin-token", "short"}, loopback...), "dev: --admin-token: 5 bytes, need at least 16"},
		{"EmptyAdminToken", nil, append([]string{"--admin-token", ""}, loopback...), "dev: --admin-token: 0 bytes, need at least 16"},
		{"ShortAdminTokenFromEnv", envToken("short"), loopback, "dev: SIDEHOOK_ADMIN_TOKEN: 5 bytes, need at least 16"},
		{"ReceiverBeyondLoopbackWithoutToken", nil, []string{"--relay-listen", "127.0.0.1:0", "--receiver-listen", "0.0.0.0:0"},
			`dev: --receiver-listen "0.0.0.0:0" is beyond loopback, where the receiver's admin API needs a token: give --admin-token (or SIDEHOOK_ADMIN_TOKEN), at least 16 bytes`},
		{"BadAllowHost", nil, append([]string{"--allow-host", "http://x"}, loopback...), `dev: receiver: allowed host "http://x"`},
		// The receiver took the address, then the relay was told it was
		// "already in use", as if by another program.
		{"SameAddress", nil, []string{"--relay-listen", "127.0.0.1:18080", "--receiver-listen", "127.0.0.1:18080"},
			`dev: --relay-listen and --receiver-listen are both 127.0.0.1:18080: give them different ports`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := runCLI(t, tt.getenv, append([]string{"dev", "--in-memory", "--no-send"}, tt.args...)...)
			if code != 2 || !strings.Contains(stderr, tt.want) {
				t.Errorf("got exit %d %q, want 2 and %q", code, stderr, tt.want)
			}
			if n := strings.Count(stderr, "\n"); n != 1 || stdout != "" {
				t.Errorf("got %d lines %q and stdout %q, want one line and no output", n, stderr, stdout)
			}
		})
	}
}

// TestDevRelayPortBusy: a relay address another program holds is refused
// before the receiver starts, so dev does not log the receiver ready and
// then fail.
func TestDevRelayPortBusy(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	addr := ln.Addr().String()
	code, stdout, stderr := runCLI(t, nil, "dev", "--in-memory", "--no-send", "--log-format", "json",
		"--relay-listen", addr, "--receiver-listen", "127.0.0.1:0")
	want := "dev: " + addr + " is already in use: choose another address with --relay-listen"
	if code != 1 || !strings.Contains(stderr, want) || stdout != "" {
		t.Errorf("got exit %d %q, stdout %q; want 1 and %q", code, stderr, stdout, want)
	}
	if strings.Contains(stderr, `"ready"`) {
		t.Errorf("got %q, want no ready line: nothing started", stderr)
	}
}

// TestTwoDevsOneDataDir: a second dev in the same directory (go run . dev
// again, in another terminal) says its data is in use and what to do, in
// one line, exit 1. It printed Badger's own words with the path three
// times: "open store: badgerstore: open …: store: the directory is in use
// by another process: open …: Cannot acquire directory lock on …".
func TestTwoDevsOneDataDir(t *testing.T) {
	dir := t.TempDir()
	args := []string{"dev", "--data", dir, "--no-send", "--relay-listen", "127.0.0.1:0", "--receiver-listen", "127.0.0.1:0"}
	startCommand(t, nil, args...)
	code, out, stderr := runCLI(t, nil, args...)
	want := "sidehook: dev: " + dir + " is in use by another dev: stop it, or give this one another data directory with --data (or SIDEHOOK_DEV_DATA), or --in-memory\n"
	if code != 1 || out != "" || stderr != want {
		t.Errorf("got %d %q %q, want 1 and %q", code, out, stderr, want)
	}
}
