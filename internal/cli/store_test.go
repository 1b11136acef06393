package cli

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/sidehook/sidehook/relay/natsstore/natstest"
)

// startNATS runs an embedded NATS server (with JetStream unless noJS) on a
// free loopback port until the test ends and returns its URL.
func startNATS(t *testing.T, noJS bool) string {
	t.Helper()
	s, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, JetStream: !noJS,
		StoreDir: t.TempDir(), NoLog: true, NoSigs: true})
	if err != nil {
		t.Fatalf("nats server: %v", err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		s.Shutdown()
		t.Fatal("nats server not ready")
	}
	t.Cleanup(func() {
		s.Shutdown()
		s.WaitForShutdown()
	})
	return s.ClientURL()
}

// closedPort is a loopback address nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

func TestRelayStoreErrors(t *testing.T) {
	noJS := startNATS(t, true)
	lone := natstest.Run(t, natstest.Options(-1, t.TempDir())).ClientURL()
	down := "nats://" + closedPort(t)
	dir := t.TempDir()
	withStore := filepath.Join(dir, "store.yaml")
	os.WriteFile(withStore, []byte("store: {servers: ["+down+"]}\norganisations:\n  - id: acme\n    api_keys: [k]\n"), 0o600)
	// The other store settings in the file, the servers given by --store
	// (which replaces store.servers).
	noServers := filepath.Join(dir, "noservers.yaml")
	os.WriteFile(noServers, []byte("store: {replicas: 3}\norganisations:\n  - id: acme\n    api_keys: [k]\n"), 0o600)
	tests := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"Unreachable", []string{"--store", down}, 1, "relay: open nats store: connect to " + down},
		{"UnreachableFromFile", []string{"--config", withStore}, 1, "open nats store: connect to " + down},
		{"ServersByFlag", []string{"--config", noServers, "--store", down}, 1, "open nats store: connect to " + down},
		{"NoServers", []string{"--config", noServers}, 2, "noservers.yaml: store.servers: at least one NATS URL is required (nats://host:4222): name them there or give --store"},
		{"NoJetStream", []string{"--store", noJS}, 1, "does not have JetStream enabled (start nats-server with -js)"},
		// Settings the servers can never hold: starting again fails again.
		{"ReplicasOnLoneServer", []string{"--config", noServers, "--store", lone}, 2, "store.replicas is 3 and the NATS server is not in a cluster: set store.replicas to 1"},
		{"NotAURL", []string{"--store", "http://x:4222"}, 2, `relay: --store: server 1: "http://x:4222" is not a NATS URL like nats://host:4222`},
		{"SecondNotAURL", []string{"--store", down + ",nats://"}, 2, `relay: --store: server 2:`},
		{"WithInMemory", []string{"--store", down, "--in-memory"}, 2, "--in-memory and a NATS store (--store or store: in the file) exclude each other"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := []string{"relay", "--listen", "127.0.0.1:0"}
			if !strings.Contains(strings.Join(tt.args, " "), "--config") {
				args = append(args, "--api-key", "k")
			}
			code, _, stderr := runCLI(t, nil, append(args, tt.args...)...)
			if code != tt.code || !strings.Contains(stderr, tt.want) {
				t.Fatalf("exit %d, stderr %q; want exit %d and %q", code, stderr, tt.code, tt.want)
			}
			if lines := strings.Count(strings.TrimSpace(stderr), "\n") + 1; lines != 1 {
				t.Errorf("stderr has %d lines, want one: %q", lines, stderr)
			}
		})
	}
}

// TestRelayMaxBodyOverNATS: a NATS store's limit is known once connected
// (the servers' max_payload sets it): a relay whose limits.max_body is
// above it does not start, in one line that names the key, the limit and
// what sets it.
func TestRelayMaxBodyOverNATS(t *testing.T) {
	o := natstest.Options(-1, t.TempDir())
	o.MaxPayload = 32 << 10
	url := natstest.Run(t, o).ClientURL()
	path := filepath.Join(t.TempDir(), "big.yaml")
	os.WriteFile(path, []byte("limits: {max_body: 32MiB}\norganisations:\n  - id: acme\n    api_keys: [k]\n"), 0o600)
	code, _, stderr := runCLI(t, nil, "--log-level", "error", "relay", "--listen", "127.0.0.1:0", "--config", path, "--store", url)
	want := "relay: limits.max_body: 32 MiB is more than the NATS store holds of one event: at most 16 MiB (698 records of the servers' max_payload of 32 KiB"
	if code != 2 || !strings.Contains(stderr, want) || strings.Count(strings.TrimSpace(stderr), "\n") != 0 {
		t.Errorf("got %d %q, want 2 and one line with %q", code, stderr, want)
	}
}

// TestRelayStoreFlagAndEnv runs a relay on JetStream named by the flag's
// variable and by the file, and delivers through each.
func TestRelayStoreFlagAndEnv(t *testing.T) {
	natsURL := startNATS(t, false)
	srv, got := hookSink(t)
	t.Run("Env", func(t *testing.T) {
		env := map[string]string{"SIDEHOOK_API_KEY": "k1", "SIDEHOOK_RELAY_STORE": natsURL}
		url := startRelayCLI(t, func(k string) string { return env[k] },
			"--listen", "127.0.0.1:0", "--endpoint", srv.URL+"/hook")
		if code, _, stderr := runCLI(t, nil, "send", "--relay", url, "--api-key", "k1", "--event", "payment", "--id", "evt_nats_env"); code != 0 {
			t.Fatalf("send: exit %d, want 0: %s", code, stderr)
		}
		if h := waitHeaders(t, got, 1); h[0].Get("webhook-id") != "evt_nats_env" {
			t.Errorf("delivered %q, want evt_nats_env", h[0].Get("webhook-id"))
		}
	})
	t.Run("File", func(t *testing.T) {
		cfg := filepath.Join(t.TempDir(), "sidehook.yaml")
		os.WriteFile(cfg, []byte("listen: 127.0.0.1:0\nstore:\n  servers: ["+natsURL+"]\n  prefix: filed\norganisations:\n  - id: acme\n    api_keys: [acme-key]\n    endpoints:\n      - {id: crm, url: "+srv.URL+"/hook}\n"), 0o600)
		url := startRelayCLI(t, nil, "--config", cfg)
		if code, _, stderr := runCLI(t, nil, "send", "--relay", url, "--api-key", "acme-key", "--event", "payment", "--id", "evt_nats_file"); code != 0 {
			t.Fatalf("send: exit %d, want 0: %s", code, stderr)
		}
		if h := waitHeaders(t, got, 2); h[1].Get("webhook-id") != "evt_nats_file" {
			t.Errorf("delivered %q, want evt_nats_file", h[1].Get("webhook-id"))
		}
	})
}

// TestDataDirIsAFile: a data directory that names a file, or lies under
// one, is a mistake in how sidehook was called, said in one line that
// names where the path came from, before any store is opened or port
// bound; it read "open store: badgerstore: open afile/db: store: open:
// stat afile/db: not a directory", exit 1.
func TestDataDirIsAFile(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "afile")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	cfgPath := filepath.Join(dir, "sidehook.yaml")
	if err := os.WriteFile(cfgPath, []byte("listen: 127.0.0.1:0\ndata: "+file+"\norganisations: [{id: demo, api_keys: [k], jwt: {algorithm: ES256}}]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	listen := "127.0.0.1:0"
	tests := []struct {
		name string
		env  map[string]string
		args []string
		want string
	}{
		{"RelayFlag", nil, []string{"relay", "--api-key", "k", "--listen", listen, "--data", file},
			`relay: data directory "` + file + `" (--data): ` + file + ` is a file, not a directory`},
		{"RelayUnderAFile", nil, []string{"relay", "--api-key", "k", "--listen", listen, "--data", file + "/sub"},
			`(--data): ` + file + ` is a file, not a directory`},
		{"RelayVariable", map[string]string{"SIDEHOOK_DATA": file}, []string{"relay", "--api-key", "k", "--listen", listen},
			`(SIDEHOOK_DATA): ` + file + ` is a file`},
		{"RelayConfigCheck", nil, []string{"relay", "--config", cfgPath, "--check-config"},
			`(data: in ` + cfgPath + `): ` + file + ` is a file`},
		{"RotateKey", nil, []string{"relay", "rotate-key", "--alg", "ES256", "--data", file},
			`relay rotate-key: data directory "` + file + `" (--data)`},
		{"Receive", nil, []string{"receive", "--listen", listen, "--data", file},
			`receive: data directory "` + file + `" (--data)`},
		{"Dev", nil, []string{"dev", "--relay-listen", listen, "--receiver-listen", listen, "--data", file},
			`dev: data directory "` + file + `" (--data)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, stderr := runCLI(t, func(k string) string { return tt.env[k] }, tt.args...)
			if code != 2 || !strings.Contains(stderr, tt.want) || strings.Count(stderr, "\n") != 1 {
				t.Errorf("got exit %d, %q, want 2 and one line containing %q", code, stderr, tt.want)
			}
		})
	}
}

// TestInMemoryWithData: --in-memory with --data on the command line would
// ignore one of them without a word; it is a usage error. SIDEHOOK_DATA,
// often set for other commands, is not counted against --in-memory.
func TestInMemoryWithData(t *testing.T) {
	dir := t.TempDir()
	listen := "127.0.0.1:0"
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"Relay", []string{"relay", "--api-key", "k", "--listen", listen, "--in-memory", "--data", dir}, "relay: --in-memory keeps nothing on disk"},
		{"Receive", []string{"receive", "--listen", listen, "--in-memory", "--data", dir}, "receive: --in-memory keeps nothing on disk"},
		{"Dev", []string{"dev", "--relay-listen", listen, "--receiver-listen", listen, "--in-memory", "--data", dir}, "dev: --in-memory keeps nothing on disk"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, stderr := runCLI(t, nil, tt.args...)
			if code != 2 || !strings.Contains(stderr, tt.want) || strings.Count(stderr, "\n") != 1 {
				t.Errorf("got exit %d, %q, want 2 and one line containing %q", code, stderr, tt.want)
			}
		})
	}
	t.Run("Variable", func(t *testing.T) {
		cfgPath := filepath.Join(dir, "sidehook.yaml")
		if err := os.WriteFile(cfgPath, []byte("listen: 127.0.0.1:0\norganisations: [{id: demo, api_keys: [k], jwt: {algorithm: ES256}}]\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		env := map[string]string{"SIDEHOOK_DATA": dir}
		code, _, stderr := runCLI(t, func(k string) string { return env[k] }, "relay", "--config", cfgPath, "--in-memory", "--check-config")
		if code != 0 {
			t.Errorf("SIDEHOOK_DATA with --in-memory: got exit %d, %q, want 0", code, stderr)
		}
	})
}

// TestDataDirEmpty: an empty data directory, almost always an unset
// variable (--data "$DIR"), is refused in one line; the relay kept its
// store in ./db and dev in ./relay and ./receiver of whatever directory
// it ran in.
func TestDataDirEmpty(t *testing.T) {
	t.Chdir(t.TempDir())
	// A port taken, so that a command that goes on past the check stops
	// at the listen instead of serving.
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { busy.Close() })
	addr := busy.Addr().String()
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"Relay", []string{"relay", "--api-key", "k", "--listen", addr, "--data", ""},
			`relay: data directory "" (--data) is empty (an unset variable?): give a directory, or leave it out for the default`},
		{"Dev", []string{"dev", "--no-send", "--relay-listen", addr, "--receiver-listen", "127.0.0.1:0", "--data", ""},
			`dev: data directory "" (--data) is empty`},
		{"RotateKey", []string{"relay", "rotate-key", "--alg", "ES256", "--data", ""},
			`relay rotate-key: data directory "" (--data) is empty`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, stderr := runCLI(t, nil, tt.args...)
			if code != 2 || !strings.Contains(stderr, tt.want) {
				t.Errorf("got exit %d %q, want 2 and %q", code, stderr, tt.want)
			}
		})
	}
	if entries, _ := os.ReadDir("."); len(entries) != 0 {
		t.Errorf("the working directory holds %d entries, want none: %v", len(entries), entries)
	}
}
