package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/sidehook/sidehook/receiver/receivertest"
)

func TestSendCommand(t *testing.T) {
	srv, got := hookSink(t)
	url := startRelayCLI(t, nil, "--listen", "127.0.0.1:0", "--data", t.TempDir(), "--api-key", "k", "--endpoint", srv.URL)
	file := filepath.Join(t.TempDir(), "order.json")
	os.WriteFile(file, []byte(`{"order":"A-1"}`), 0o600)
	huge := filepath.Join(t.TempDir(), "huge.json")
	if err := os.WriteFile(huge, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	// Sparse: no disk is written.
	if err := os.Truncate(huge, maxSendBody+1); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"Fixture", []string{"--event", "delivery_report"}, 0, `"type":"delivery_report"`},
		{"File", []string{"--event", "order.created", "--file", file}, 0, `"type":"order.created"`},
		{"WrongKey", []string{"--event", "payment", "--api-key", "nope"}, 1, "401 unauthorized"},
		{"NoEvent", []string{}, 2, "give --event"},
		{"UnknownFixture", []string{"--event", "order.created"}, 2, "no fixture"},
		{"CustomValueRequest", []string{"--event", "custom_value_request"}, 2, "synchronous GET"},
		// Read whole, a file named by mistake (a log, a disk image) could
		// take all the memory; standard input was bounded, a file not.
		{"HugeFile", []string{"--event", "payment", "--file", huge}, 2, "is over 67108864 bytes"},
		{"FileIsDirectory", []string{"--event", "payment", "--file", t.TempDir()}, 2, "is a directory"},
		// The dashboard URL a relay prints, pasted as --relay: it was a 405
		// for POST /v1/events, exit 1.
		{"DashboardURL", []string{"--event", "payment", "--relay", url + "/_sidehook/ui/"}, 2, "is a page or route of the relay: give its base URL, " + url},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"send", "--relay", url, "--api-key", "k"}, tt.args...)
			code, out, stderr := runCLI(t, nil, args...)
			if code != tt.code || !strings.Contains(out+stderr, tt.want) {
				t.Errorf("got exit %d, out %q, err %q; want %d and %q", code, out, stderr, tt.code, tt.want)
			}
		})
	}
	h := waitHeaders(t, got, 2)
	if h[0].Get("sidehook-event") == "" {
		t.Errorf("delivery headers: %v, want a sidehook-event header", h[0])
	}
}

// TestSendStdinAndSet: --file - reads standard input; --set changes the
// payload's fields before it is posted, and the endpoint gets those bytes.
func TestSendStdinAndSet(t *testing.T) {
	bodies := make(chan []byte, 4)
	sink := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		bodies <- b
	}))
	t.Cleanup(sink.Close)
	url := startRelayCLI(t, nil, "--listen", "127.0.0.1:0", "--in-memory", "--api-key", "k", "--endpoint", sink.URL)
	send := []string{"send", "--relay", url, "--api-key", "k"}
	tests := []struct {
		name  string
		stdin string
		args  []string
		want  map[string]any
	}{
		{"Stdin", `{"order":"A-2","id":9007199254740993}`, []string{"--event", "order.created", "--file", "-"},
			map[string]any{"order": "A-2", "id": json.Number("9007199254740993")}},
		{"StdinSet", `{"order":"A-3"}`, []string{"--event", "order.created", "--file", "-", "--set", "order=B-3", "--set", "lines:=[1,2]"},
			map[string]any{"order": "B-3", "lines": []any{json.Number("1"), json.Number("2")}}},
		{"FixtureSet", "", []string{"--event", "payment", "--set", "amount=12.50", "--set", "meta.source:=\"cli\""},
			map[string]any{"amount": "12.50", "meta": map[string]any{"source": "cli"}, "type": "payment"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, stderr := runCLIInput(t, nil, tt.stdin, append(send, tt.args...)...)
			if code != 0 {
				t.Fatalf("exit %d, want 0: %s %s", code, out, stderr)
			}
			var got map[string]any
			select {
			case b := <-bodies:
				if err := decodeJSON(b, &got); err != nil {
					t.Fatalf("delivered %q: %v", b, err)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("nothing delivered within 10s")
			}
			for k, v := range tt.want {
				if !reflect.DeepEqual(got[k], v) {
					t.Errorf("%s: got %#v, want %#v", k, got[k], v)
				}
			}
		})
	}
}

func TestSetFields(t *testing.T) {
	tests := []struct {
		name, body string
		sets       []string
		want       string
		wantErr    string
	}{
		{"String", `{"a":1}`, []string{"a=2"}, `{"a":"2"}`, ""},
		{"JSON", `{"a":"x"}`, []string{"a:=2.50"}, `{"a":2.50}`, ""},
		{"Nested", `{"a":{"b":1}}`, []string{"a.c=d"}, `{"a":{"b":1,"c":"d"}}`, ""},
		{"Creates", `{}`, []string{"a.b.c:=true"}, `{"a":{"b":{"c":true}}}`, ""},
		{"ValueWithEquals", `{}`, []string{"q=a=b"}, `{"q":"a=b"}`, ""},
		{"HTMLAsTyped", `{"n":"<i>"}`, []string{"note=<b> & more"}, `{"n":"<i>","note":"<b> & more"}`, ""},
		{"BigInt", `{"id":12345678901234567890}`, []string{"x=y"}, `{"id":12345678901234567890,"x":"y"}`, ""},
		{"NotObject", `[1]`, []string{"a=b"}, "", "JSON object"},
		{"ThroughScalar", `{"a":1}`, []string{"a.b=c"}, "", "a is not an object"},
		{"NoEquals", `{}`, []string{"a"}, "", "want PATH=TEXT"},
		{"EmptyKey", `{}`, []string{"a..b=c"}, "", "empty field name"},
		{"BadJSON", `{}`, []string{"a:=nope"}, "", "is not JSON"},
		{"TwoJSONValues", `{}`, []string{"a:=1 2"}, "", "is not JSON"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := setFields([]byte(tt.body), tt.sets, "--set")
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("got %s, %v; want an error with %q", got, err, tt.wantErr)
				}
				return
			}
			if err != nil || string(got) != tt.want {
				t.Errorf("got %s, %v; want %s", got, err, tt.want)
			}
		})
	}
}

// FuzzSetFields: any payload and assignment either fails with an error or
// gives a JSON object that carries the assignment.
func FuzzSetFields(f *testing.F) {
	f.Add(`{"a":1}`, "a=2")
	f.Add(`{"a":{"b":[1,2]}}`, "a.b:=[3]")
	f.Add(`{"id":12345678901234567890}`, "x.y.z:=null")
	f.Add(`[]`, "a=b")
	f.Add(`{"a":"x"}`, "a.b=c")
	f.Fuzz(func(t *testing.T, body, set string) {
		got, err := setFields([]byte(body), []string{set}, "--set")
		if err != nil {
			return
		}
		var doc map[string]any
		if err := decodeJSON(got, &doc); err != nil {
			t.Fatalf("setFields(%q, %q) = %q: not a JSON object: %v", body, set, got, err)
		}
		path, _, _ := parseSet("--set", set)
		obj := doc
		keys := strings.Split(path, ".")
		for _, k := range keys[:len(keys)-1] {
			next, ok := obj[k].(map[string]any)
			if !ok {
				t.Fatalf("setFields(%q, %q) = %q: %s is not an object", body, set, got, k)
			}
			obj = next
		}
		if _, ok := obj[keys[len(keys)-1]]; !ok {
			t.Fatalf("setFields(%q, %q) = %q: %s not set", body, set, got, path)
		}
	})
}

// TestClientsInterrupted: send, test, render, replay and tunnel
// --print-secret stopped (Ctrl-C, SIGTERM) while the server has not
// answered fail with exit code 1 and say so; they exited 0, silently, as a
// server stopping does.
func TestClientsInterrupted(t *testing.T) {
	arrived := make(chan struct{}, 1)
	release := make(chan struct{})
	server := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	t.Cleanup(server.Close)
	t.Cleanup(func() { close(release) })
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"Send", []string{"send", "--event", "payment", "--relay", server.URL, "--api-key", "k"}, "send: interrupted before the relay answered"},
		{"Test", []string{"test", "--endpoint", "crm", "--relay", server.URL, "--api-key", "k"}, "test: interrupted before the relay answered"},
		{"Render", []string{"render", "--template", "Hi <<fullname>>", "--relay", server.URL, "--api-key", "k"}, "render: interrupted before the relay answered"},
		{"ReplayRelay", []string{"replay", "--all", "--relay", server.URL, "--api-key", "k"}, "replay: interrupted while selecting what to replay; nothing sent"},
		{"ReplayReceiver", []string{"replay", "--all", "--receiver", server.URL}, "replay: interrupted while selecting what to replay; nothing sent"},
		{"TunnelPrintSecret", []string{"tunnel", "--print-secret", "--name", "laptop", "--relay", server.URL, "--api-key", "k"}, "tunnel: interrupted before the relay answered"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			go func() {
				select {
				case <-arrived:
					cancel()
				case <-ctx.Done():
				}
			}()
			var out, errOut bytes.Buffer
			args := append([]string{"sidehook"}, tt.args...)
			err := Run(ctx, args, func(string) string { return "" }, strings.NewReader(""), &out, &errOut)
			code := ExitCode(err, &errOut)
			if code != 1 || !strings.Contains(errOut.String(), tt.want) {
				t.Errorf("got exit %d %q, want 1 and %q", code, errOut.String(), tt.want)
			}
		})
	}
}

// TestRelayClientsAtAReceiver: --relay given the mock receiver's URL (8081
// for 8080) fails, exit 1, asking whether it is a relay. The receiver's
// 200 {"id":"cap_…"} passed for an accepted event, no test results, an
// empty text and nothing to replay, all exit 0.
func TestRelayClientsAtAReceiver(t *testing.T) {
	rcv := receivertest.NewServer(t)
	tests := []struct {
		name string
		args []string
	}{
		{"Send", []string{"send", "--event", "payment"}},
		{"Test", []string{"test", "--endpoint", "crm"}},
		{"Render", []string{"render", "--template", "Hi <<fullname>>"}},
		{"Replay", []string{"replay", "--all"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := runCLI(t, nil, append(tt.args, "--relay", rcv.URL, "--api-key", "k")...)
			if code != 1 || !strings.Contains(stderr, "not a relay's answer") || !strings.Contains(stderr, "is it a sidehook relay?") {
				t.Errorf("got exit %d %q %q, want 1 and not a relay's answer", code, stdout, stderr)
			}
		})
	}
}

// TestClientValuesFromVariables: a bad value read from its variable names
// the variable, as every other flag's does; exported in a shell
// (SIDEHOOK_RELAY_URL=localhost:8080), it was named as a flag the command
// line did not have.
func TestClientValuesFromVariables(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		args []string
		want string
	}{
		{"SendRelay", map[string]string{"SIDEHOOK_RELAY_URL": "localhost:8080"}, []string{"send", "--event", "payment", "--api-key", "k"},
			`send: SIDEHOOK_RELAY_URL: relay URL "localhost:8080": want an http:// or https:// URL`},
		{"TestTimeout", map[string]string{"SIDEHOOK_TIMEOUT": "0s"}, []string{"test", "--endpoint", "crm", "--api-key", "k"},
			"test: SIDEHOOK_TIMEOUT must be positive"},
		{"ReplayRelay", map[string]string{"SIDEHOOK_RELAY_URL": "localhost:8080"}, []string{"replay", "--all", "--api-key", "k"},
			`replay: SIDEHOOK_RELAY_URL "localhost:8080": not an absolute http:// or https:// URL`},
		{"ReplayReceiver", map[string]string{"SIDEHOOK_REPLAY_RECEIVER": "localhost:8081"}, []string{"replay", "--all"},
			`replay: SIDEHOOK_REPLAY_RECEIVER "localhost:8081": not an absolute http:// or https:// URL`},
		{"ReplayTimeout", map[string]string{"SIDEHOOK_REPLAY_TIMEOUT": "0s"}, []string{"replay", "--all", "--receiver", "http://127.0.0.1:1"},
			"replay: SIDEHOOK_REPLAY_TIMEOUT must be positive"},
		{"SendEvent", map[string]string{"SIDEHOOK_EVENT": "Pay Ment"}, []string{"send", "--api-key", "k"},
			`send: SIDEHOOK_EVENT "Pay Ment" is not an event type name`},
		{"TestEvent", map[string]string{"SIDEHOOK_TEST_EVENT": "order.created"}, []string{"test", "--endpoint", "crm", "--api-key", "k"},
			`test: SIDEHOOK_TEST_EVENT "order.created": want one of inbound_message`},
		{"TokenTTL", map[string]string{"SIDEHOOK_TTL": "-1h"}, []string{"token", "--secret-key", "0123456789abcdef0123456789abcdef", "--org", "demo"},
			"token: SIDEHOOK_TTL must not be negative"},
		{"SendSet", map[string]string{"SIDEHOOK_SEND_SET": "amount"}, []string{"send", "--event", "payment", "--api-key", "k"},
			`send: SIDEHOOK_SEND_SET "amount": want PATH=TEXT or PATH:=JSON`},
		// Given on the command line, the flag is named.
		{"Flag", map[string]string{"SIDEHOOK_RELAY_URL": "http://127.0.0.1:1"}, []string{"send", "--event", "payment", "--api-key", "k", "--relay", "localhost:8080"},
			`send: --relay: relay URL "localhost:8080"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, stderr := runCLI(t, envOf(tt.env), tt.args...)
			if code != 2 || !strings.Contains(stderr, tt.want) {
				t.Errorf("got exit %d %q, want 2 and %q", code, stderr, tt.want)
			}
		})
	}
}

// TestClientsNothingListening: a client pointed where nothing listens
// (the README's send before any relay is started) asks whether the server
// is running, as tunnel does; it ended at "connect: connection refused".
func TestClientsNothingListening(t *testing.T) {
	url := "http://" + closedPort(t)
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"Send", []string{"send", "--event", "payment", "--relay", url, "--api-key", "k"}, "connection refused: is a relay running there? (sidehook dev or sidehook relay starts one)"},
		{"Test", []string{"test", "--endpoint", "crm", "--relay", url, "--api-key", "k"}, "connection refused: is a relay running there?"},
		{"Render", []string{"render", "--template", "Hi", "--relay", url, "--api-key", "k"}, "connection refused: is a relay running there?"},
		{"ReplayRelay", []string{"replay", "--all", "--relay", url, "--api-key", "k"}, "connection refused: is a relay running there?"},
		{"ReplayReceiver", []string{"replay", "--all", "--receiver", url}, "connection refused: is a receiver running there? (sidehook dev or sidehook receive starts one)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, stderr := runCLI(t, nil, tt.args...)
			if code != 1 || !strings.Contains(stderr, tt.want) {
				t.Errorf("got exit %d %q, want 1 and %q", code, stderr, tt.want)
			}
		})
	}
}
