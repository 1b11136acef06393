package cli

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sidehook/sidehook/internal/auth"
	"github.com/sidehook/sidehook/relay/config"
)

// startRelayCLI runs `sidehook relay …` in-process until the test ends and
// returns its URL.
func startRelayCLI(t *testing.T, getenv func(string) string, args ...string) string {
	t.Helper()
	url, _ := startCommand(t, getenv, append([]string{"relay"}, args...)...)
	return url
}

// hookSink records the webhook-ids it receives.
func hookSink(t *testing.T) (*httptest.Server, func() []http.Header) {
	t.Helper()
	var mu sync.Mutex
	var got []http.Header
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		mu.Lock()
		got = append(got, r.Header.Clone())
		mu.Unlock()
		if r.URL.Query().Has("fields") {
			io.WriteString(w, `{"fullname":"Jane Doe","arrangementamount":"50.00"}`)
			return
		}
		io.WriteString(w, `{"ok":true}`)
	}))
	t.Cleanup(srv.Close)
	return srv, func() []http.Header {
		mu.Lock()
		defer mu.Unlock()
		return append([]http.Header(nil), got...)
	}
}

func waitHeaders(t *testing.T, get func() []http.Header, n int) []http.Header {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if h := get(); len(h) >= n {
			return h
		}
		if time.Now().After(deadline) {
			t.Fatalf("got %d requests, want %d", len(get()), n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestRelayCommandOneOrg(t *testing.T) {
	srv, got := hookSink(t)
	secret := "0123456789abcdef0123456789abcdef"
	env := map[string]string{"SIDEHOOK_API_KEY": "k1", "SIDEHOOK_SECRET_KEY": secret}
	url := startRelayCLI(t, func(k string) string { return env[k] },
		"--listen", "127.0.0.1:0", "--data", t.TempDir(), "--endpoint", srv.URL+"/hook", "--custom-values", srv.URL+"/values")
	code, out, stderr := runCLI(t, nil, "send", "--relay", url, "--api-key", "k1", "--event", "payment", "--id", "evt_cli_1")
	if code != 0 || !strings.Contains(out, `"id":"evt_cli_1"`) || !strings.Contains(out, `"type":"payment"`) {
		t.Fatalf("send: exit %d, out %q, err %q; want 0 and event evt_cli_1 of type payment", code, out, stderr)
	}
	h := waitHeaders(t, got, 1)
	if h[0].Get("webhook-id") != "evt_cli_1" || h[0].Get("x-webio-token") == "" {
		t.Errorf("delivery headers: got %v, want webhook-id evt_cli_1 and an x-webio-token", h[0])
	}
}

// TestRelayCommandInboundAuth: a one-organisation relay can check the
// platform's token on /in/{org}: --inbound-auth webio-token takes the
// platform's secret from --inbound-secret (and its issuer from
// --inbound-issuer).
func TestRelayCommandInboundAuth(t *testing.T) {
	srv, _ := hookSink(t)
	const platform = "platform-secret-0123456789abcdef"
	url := startRelayCLI(t, nil, "--listen", "127.0.0.1:0", "--in-memory", "--api-key", "k1",
		"--endpoint", srv.URL, "--inbound-auth", "webio-token", "--inbound-secret", platform, "--inbound-issuer", "webio")
	mint := func(t *testing.T, iss string) string {
		t.Helper()
		tok, err := auth.MintWebioToken([]byte(platform), auth.WebioClaims{Issuer: iss, Org: "demo"})
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	tests := []struct {
		name  string
		token string
		want  int
	}{
		{"ErrNoToken", "", http.StatusUnauthorized},
		{"ErrOtherIssuer", mint(t, "other"), http.StatusUnauthorized},
		{"OK", mint(t, "webio"), http.StatusAccepted},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequest(http.MethodPost, url+"/in/demo", strings.NewReader(`{"type":"payment"}`))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Content-Type", "application/json")
			if tt.token != "" {
				req.Header.Set("x-webio-token", tt.token)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tt.want {
				t.Errorf("got %d %s, want %d", resp.StatusCode, body, tt.want)
			}
		})
	}
}

func TestRelayCommandConfigFile(t *testing.T) {
	srv, got := hookSink(t)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "sidehook.yaml")
	os.WriteFile(cfg, []byte("listen: 127.0.0.1:0\ndata: "+filepath.Join(dir, "data")+"\norganisations:\n  - id: acme\n    api_keys: [env:ACME_KEY]\n    endpoints:\n      - {id: crm, url: "+srv.URL+"/hook}\n"), 0o600)
	url := startRelayCLI(t, func(k string) string {
		if k == "ACME_KEY" {
			return "acme-key"
		}
		return ""
	}, "--config", cfg)
	code, _, stderr := runCLI(t, nil, "send", "--relay", url, "--api-key", "acme-key", "--event", "inbound_message")
	if code != 0 {
		t.Fatalf("send: exit %d, want 0: %s", code, stderr)
	}
	waitHeaders(t, got, 1)
}

func TestRelayCommandUsageErrors(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("organisations:\n  - id: demo\n    endpoints:\n      - {id: a, url: http://x}\n      - {id: b, url: nope}\n"), 0o600)
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"NoConfigNoKey", []string{"relay"}, "give --config FILE"},
		{"MissingFile", []string{"relay", "--config", filepath.Join(dir, "none.yaml")}, "no such file"},
		{"InvalidConfig", []string{"relay", "--config", bad}, "organisations[0].endpoints[1].url"},
		// The flags' mistakes name the flags, not the YAML keys of the
		// organisation they make (organisations[0].endpoints[0].url).
		{"BadEndpointFlag", []string{"relay", "--api-key", "k", "--endpoint", "ftp://x"}, `relay: --endpoint: "ftp://x" is not an absolute http(s) URL`},
		{"ShortSecretFlag", []string{"relay", "--api-key", "k", "--secret-key", "short"}, `relay: --secret-key: 5 bytes, need at least 32`},
		// env:NAME is read as in the file: MY_SECRET holds "short".
		{"ShortSecretFromEnvRef", []string{"relay", "--api-key", "k", "--secret-key", "env:MY_SECRET"}, `relay: --secret-key: 5 bytes, need at least 32`},
		{"TLSKeyWithoutCert", []string{"relay", "--api-key", "k", "--tls-key", filepath.Join(dir, "key.pem")}, "relay: --tls-cert: --tls-key is given without it; give both or neither"},
		{"TLSCertMissing", []string{"relay", "--api-key", "k", "--tls-cert", filepath.Join(dir, "tls_cert.pem"), "--tls-key", filepath.Join(dir, "key.pem")}, "relay: --tls-cert: " + filepath.Join(dir, "tls_cert.pem") + ": no such file"},
		{"BadTunnelName", []string{"relay", "--api-key", "k", "--endpoint", "tunnel://-laptop"}, "tunnel name \"-laptop\""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, stderr := runCLI(t, envOf(map[string]string{"MY_SECRET": "short"}), tt.args...)
			if code != 2 || !strings.Contains(stderr, tt.want) {
				t.Errorf("got exit %d %q, want 2 and %q", code, stderr, tt.want)
			}
		})
	}
}

// exampleEnv is what sidehook.example.yaml reads with env:.
func exampleEnv() func(string) string {
	return envOf(map[string]string{"SIDEHOOK_API_KEY": "sk_example", "SIDEHOOK_SECRET_KEY": "0123456789abcdef0123456789abcdef"})
}

// TestExampleConfig: the copyable example at the root is valid as it
// stands, every key of it is read, and --check-config says so and exits.
func TestExampleConfig(t *testing.T) {
	const example = "../../sidehook.example.yaml"
	code, out, stderr := runCLI(t, exampleEnv(), "relay", "--config", example, "--check-config")
	if want := ": valid: 1 organisation, 2 endpoints, listen 127.0.0.1:8080, store Badger in ./.sidehook/relay\n"; code != 0 || out != example+want {
		t.Fatalf("--check-config: got %d %q %q, want 0 and %q", code, out, stderr, want)
	}
	cfg, err := config.Load(example, exampleEnv())
	if err != nil {
		t.Fatal(err)
	}
	crm := cfg.Organisations[0].Endpoints[0]
	if cfg.Retention != 72*time.Hour || crm.Rate.PerSecond != 50 || crm.MaxInFlight != 16 || crm.Headers["x-team"] != "billing" ||
		len(crm.Auth) != 2 || crm.Retry == nil || len(crm.Retry.Schedule) != 3 || cfg.Organisations[0].APIKeys[0] != "sk_example" {
		t.Errorf("the example's keys were not all read: %+v", cfg)
	}
	// Without the variables it names, it is not valid: the check says why.
	code, _, stderr = runCLI(t, nil, "relay", "--config", example, "--check-config")
	if code != 2 || !strings.Contains(stderr, "SIDEHOOK_API_KEY is not set") {
		t.Errorf("--check-config without the variables: got %d %q, want 2 with \"SIDEHOOK_API_KEY is not set\"", code, stderr)
	}
}

func TestRelayCommandCheckConfig(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("listen: nope\norganisations:\n  - id: demo\n"), 0o600)
	// A reserve below what Badger needs to flush passed the check, then
	// the relay refused to start with the store's words, not the key's.
	lowReserve := filepath.Join(dir, "low.yaml")
	os.WriteFile(lowReserve, []byte("data: "+dir+"\nlimits: {min_free_disk: 1KiB}\norganisations:\n  - id: demo\n"), 0o600)
	// A body Badger cannot hold passed the check, then every event of it
	// was a 503 "retry later" that no retry got past.
	bigBody := filepath.Join(dir, "big.yaml")
	os.WriteFile(bigBody, []byte("data: "+dir+"\nlimits: {max_body: 100MiB}\norganisations:\n  - id: demo\n"), 0o600)
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"NoConfig", []string{"--check-config", "--api-key", "k"}, "--check-config checks a --config FILE"},
		{"BadListenInFile", []string{"--check-config", "--config", bad}, `relay: listen in ` + bad + ` "nope": want HOST:PORT`},
		{"BadListenFlag", []string{"--check-config", "--config", "../../sidehook.example.yaml", "--listen", "127.0.0.1:99999"}, `relay: --listen "127.0.0.1:99999": the port must be a number`},
		{"ReserveBelowFloor", []string{"--check-config", "--config", lowReserve}, `relay: limits.min_free_disk in ` + lowReserve + `: 1.0 KiB is below the store's floor of 72 MiB`},
		{"MaxBodyOverBadger", []string{"--check-config", "--config", bigBody},
			`relay: limits.max_body in ` + bigBody + `: 100 MiB is more than the Badger store holds of one event: at most 63 MiB (a value log file of 64 MiB, less 1.0 MiB kept for the event's metadata); lower it`},
		{"MaxBodyOverBadgerAtStart", []string{"--listen", "127.0.0.1:0", "--config", bigBody}, `relay: limits.max_body in ` + bigBody + `: 100 MiB is more than the Badger store holds`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, stderr := runCLI(t, exampleEnv(), append([]string{"relay"}, tt.args...)...)
			if code != 2 || out != "" || !strings.Contains(stderr, tt.want) || strings.Count(strings.TrimSpace(stderr), "\n") != 0 {
				t.Errorf("got %d %q %q, want 2 and one line with %q", code, out, stderr, tt.want)
			}
		})
	}
}

// TestRelayCheckConfigStore: --check-config says where the relay keeps
// its data, a NATS store as fully as Badger (servers, prefix, replicas,
// ack wait, how it authenticates, never a token), without connecting: the
// servers here do not exist. It said nothing of the store at all.
func TestRelayCheckConfigStore(t *testing.T) {
	dir := t.TempDir()
	creds, ca := filepath.Join(dir, "nats.creds"), filepath.Join(dir, "ca.pem")
	for _, f := range []string{creds, ca} {
		if err := os.WriteFile(f, []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	const token = "s3cret-nats-token"
	write := func(name, store string) string {
		path := filepath.Join(dir, name+".yaml")
		if err := os.WriteFile(path, []byte("data: "+filepath.Join(dir, "data")+"\n"+store+"organisations: [{id: demo, api_keys: [k]}]\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	full := write("full", "store:\n  servers: [nats://n1.invalid:4222, tls://n2.invalid:4222]\n  credentials: "+creds+
		"\n  tls_ca: "+ca+"\n  replicas: 3\n  prefix: acme\n  ack_wait: 45s\n")
	defaults := write("defaults", "store:\n  servers: [nats://n1.invalid:4222]\n  token: env:NATS_TOKEN\n")
	badger := write("badger", "")
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"NATS", []string{"--config", full},
			"store NATS nats://n1.invalid:4222,tls://n2.invalid:4222 (prefix acme, 3 replicas, ack wait 45s, credentials " + creds + ", TLS CA " + ca + ")"},
		{"NATSDefaults", []string{"--config", defaults}, "store NATS nats://n1.invalid:4222 (prefix sidehook, 1 replica, ack wait 30s, authenticated by a token)"},
		{"NATSFlag", []string{"--config", badger, "--store", "nats://n3.invalid:4222"}, "store NATS nats://n3.invalid:4222 (prefix sidehook, 1 replica, ack wait 30s)"},
		{"Badger", []string{"--config", badger}, "store Badger in " + filepath.Join(dir, "data")},
		{"InMemory", []string{"--config", badger, "--in-memory"}, "store in memory"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := envOf(map[string]string{"NATS_TOKEN": token})
			code, out, stderr := runCLI(t, env, append([]string{"relay", "--check-config"}, tt.args...)...)
			if want := ", listen 127.0.0.1:8080, " + tt.want + "\n"; code != 0 || !strings.HasSuffix(out, want) || strings.Count(out, "\n") != 1 {
				t.Errorf("got %d %q %q, want 0 and one line ending %q", code, out, stderr, want)
			}
			if strings.Contains(out+stderr, token) {
				t.Errorf("the token is shown: %q %q", out, stderr)
			}
		})
	}
}

// TestRelayCommandMaxBodyInMemory: in memory a body is not bounded by a
// store, so a max_body Badger could not hold is valid there.
func TestRelayCommandMaxBodyInMemory(t *testing.T) {
	path := filepath.Join(t.TempDir(), "big.yaml")
	os.WriteFile(path, []byte("limits: {max_body: 100MiB}\norganisations:\n  - id: demo\n"), 0o600)
	if code, _, stderr := runCLI(t, nil, "relay", "--check-config", "--in-memory", "--config", path); code != 0 {
		t.Errorf("got %d %q, want 0", code, stderr)
	}
}

func TestRelayCommandOneOrgFlagsWithConfig(t *testing.T) {
	const example = "../../sidehook.example.yaml"
	code, _, stderr := runCLI(t, exampleEnv(), "relay", "--config", example, "--api-key", "k", "--org", "acme", "--check-config")
	if code != 2 || !strings.Contains(stderr, "relay: --org, --api-key would be ignored with --config: set the organisation in "+example) {
		t.Errorf("flags: got %d %q, want 2 saying --org, --api-key would be ignored with --config", code, stderr)
	}
	// The same values from the variables a file names with env: are not a
	// mistake: the file decides.
	env := map[string]string{"SIDEHOOK_API_KEY": "sk_example", "SIDEHOOK_SECRET_KEY": "0123456789abcdef0123456789abcdef", "SIDEHOOK_ORG": "acme"}
	if code, _, stderr := runCLI(t, envOf(env), "relay", "--config", example, "--check-config"); code != 0 {
		t.Errorf("variables: got %d %q, want 0", code, stderr)
	}
}

// TestServerListenErrors: a malformed address is a usage error naming the
// flag; a busy one names the flag to change; no message repeats its
// prefix.
func TestServerListenErrors(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { busy.Close() })
	addr := busy.Addr().String()
	tunnelArgs := []string{"tunnel", "--relay", "http://127.0.0.1:1", "--api-key", "k", "--name", "laptop", "--forward", "http://127.0.0.1:3000"}
	tests := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"RelayBad", []string{"relay", "--api-key", "k", "--in-memory", "--listen", "nope"}, 2, `relay: --listen "nope": want HOST:PORT`},
		{"ReceiveBad", []string{"receive", "--in-memory", "--listen", "localhost"}, 2, `receive: --listen "localhost": want HOST:PORT`},
		{"DevBad", []string{"dev", "--in-memory", "--receiver-listen", ":http"}, 2, `dev: --receiver-listen ":http": the port must be a number`},
		{"RelayBusy", []string{"relay", "--api-key", "k", "--in-memory", "--listen", addr}, 1, "relay: " + addr + " is already in use: choose another address with --listen (or SIDEHOOK_RELAY_LISTEN)"},
		{"ReceiveBusy", []string{"receive", "--in-memory", "--listen", addr}, 1, "receive: " + addr + " is already in use: choose another address with --listen (or SIDEHOOK_RECEIVE_LISTEN)"},
		{"DevRelayBusy", []string{"dev", "--in-memory", "--no-send", "--relay-listen", addr, "--receiver-listen", "127.0.0.1:0"}, 1, "dev: " + addr + " is already in use: choose another address with --relay-listen (or SIDEHOOK_DEV_RELAY_LISTEN)"},
		{"DevReceiverBusy", []string{"dev", "--in-memory", "--no-send", "--relay-listen", "127.0.0.1:0", "--receiver-listen", addr}, 1, "dev: " + addr + " is already in use: choose another address with --receiver-listen (or SIDEHOOK_DEV_RECEIVER_LISTEN)"},
		// An address from a variable is named by the variable: there is
		// no --listen on the command line to look for.
		{"RelayBadFromEnv", []string{"relay", "--api-key", "k", "--in-memory"}, 2, `relay: SIDEHOOK_LISTEN "nope": want HOST:PORT`},
		{"ReceiveBadFromEnv", []string{"receive", "--in-memory"}, 2, `receive: SIDEHOOK_LISTEN "nope": want HOST:PORT`},
		{"DevBadFromEnv", []string{"dev", "--in-memory"}, 2, `dev: SIDEHOOK_DEV_RELAY_LISTEN "nope": want HOST:PORT`},
		// The tunnel's inspector is a listener too; the relay it would
		// dial is never reached.
		{"TunnelInspectBad", append(tunnelArgs, "--inspect", "127.0.0.1:99999"), 2, `tunnel: inspector address "127.0.0.1:99999": the port must be a number from 0 to 65535`},
		{"TunnelInspectBusy", append(tunnelArgs, "--inspect", addr), 1, "tunnel: " + addr + " is already in use: choose another address with --inspect (or SIDEHOOK_TUNNEL_INSPECT)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var getenv func(string) string
			if strings.HasSuffix(tt.name, "FromEnv") {
				getenv = envOf(map[string]string{"SIDEHOOK_LISTEN": "nope", "SIDEHOOK_DEV_RELAY_LISTEN": "nope"})
			}
			code, _, stderr := runCLI(t, getenv, append([]string{"--log-format", "json", "--log-level", "error"}, tt.args...)...)
			if code != tt.code || !strings.Contains(stderr, tt.want) {
				t.Errorf("got %d %q, want %d and %q", code, stderr, tt.code, tt.want)
			}
			last := strings.TrimSpace(stderr[strings.LastIndex(strings.TrimSpace(stderr), "\n")+1:])
			words := strings.Fields(last)
			for i := 1; i < len(words); i++ {
				if strings.HasSuffix(words[i], ":") && strings.TrimSuffix(words[i-1], ":") == strings.TrimSuffix(words[i], ":") {
					t.Errorf("repeated prefix %q in %q", words[i], last)
				}
			}
		})
	}
}

// TestReadyLineDashboard: relay and receive name their dashboard in the
// ready line.
func TestReadyLineDashboard(t *testing.T) {
	for _, args := range [][]string{
		{"relay", "--api-key", "k", "--in-memory", "--listen", "127.0.0.1:0"},
		{"receive", "--in-memory", "--listen", "127.0.0.1:0"},
	} {
		url, dashboard, _ := startCommandReady(t, nil, args...)
		if dashboard != url+"/_sidehook/ui/" {
			t.Errorf("%s: ready line dashboard %q, want %q", args[0], dashboard, url+"/_sidehook/ui/")
		}
		resp, err := http.Get(dashboard)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("%s: GET %s: %d, want 200", args[0], dashboard, resp.StatusCode)
		}
	}
}

// TestReadyLineAtAnyLogLevel: the ready line (SPEC §9: the listen
// addresses once listening) is written whatever --log-level hides; with
// warn or error it was not, and nothing said where the server listened.
func TestReadyLineAtAnyLogLevel(t *testing.T) {
	for _, args := range [][]string{
		{"--log-level", "error", "relay", "--api-key", "k", "--in-memory", "--listen", "127.0.0.1:0"},
		{"--log-level", "warn", "receive", "--in-memory", "--listen", "127.0.0.1:0"},
	} {
		if url, _, _ := startCommandReady(t, nil, args...); !strings.HasPrefix(url, "http://127.0.0.1:") {
			t.Errorf("%s: ready line url %q", args[2], url)
		}
	}
}

// TestTwoRelaysOneDataDir: a second relay given a data directory another
// holds says so in one line, what to do, and exits 1. It printed Badger's
// own words, the path three times: "open store: badgerstore: open …: store:
// the directory is in use by another process: open …: Cannot acquire
// directory lock on …".
func TestTwoRelaysOneDataDir(t *testing.T) {
	srv, _ := hookSink(t)
	dir := t.TempDir()
	cfg := jwtRelayConfig(t, dir, srv.URL)
	startCommand(t, nil, "relay", "--config", cfg)
	code, out, stderr := runCLI(t, nil, "relay", "--config", cfg)
	want := "sidehook: relay: " + filepath.Join(dir, "data") + " is in use by another relay: stop it, or give this one another data directory with data: in " + cfg + " or --data\n"
	if code != 1 || out != "" || stderr != want {
		t.Errorf("got %d %q %q, want 1 and %q", code, out, stderr, want)
	}
}

// TestConfigFromVariable: a configuration file named by SIDEHOOK_CONFIG,
// not --config, is named so in what goes wrong: a user who never typed
// --config was told that --api-key "would be ignored with --config", and
// of a missing file only "config: open …".
func TestConfigFromVariable(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "sidehook.yaml")
	if err := os.WriteFile(cfg, []byte("organisations:\n  - id: demo\n    api_keys: [k]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "none.yaml")
	tests := []struct {
		name, file string
		args       []string
		want       string
	}{
		{"IgnoredFlag", cfg, []string{"--api-key", "k2"}, "sidehook: relay: --api-key would be ignored with SIDEHOOK_CONFIG: set the organisation in " + cfg + "\n"},
		{"MissingFile", missing, nil, "sidehook: relay: SIDEHOOK_CONFIG: " + missing + ": no such file\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, stderr := runCLI(t, envOf(map[string]string{"SIDEHOOK_CONFIG": tt.file}), append([]string{"relay", "--in-memory"}, tt.args...)...)
			if code != 2 || stderr != tt.want {
				t.Errorf("got %d %q, want 2 and %q", code, stderr, tt.want)
			}
		})
	}
}
