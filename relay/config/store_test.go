package config_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sidehook/sidehook/relay/config"
)

func TestStore(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	creds, ca := filepath.Join(dir, "relay.creds"), filepath.Join(dir, "ca.pem")
	for _, f := range []string{creds, ca} {
		if err := os.WriteFile(f, []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name, yaml, want string
		check            func(*config.Store) bool
	}{
		{name: "OKMinimal", yaml: "store: {servers: ['nats://127.0.0.1:4222']}\n",
			check: func(s *config.Store) bool { return len(s.Servers) == 1 && s.Replicas == 1 && s.Prefix == "" }},
		{name: "OKFull", yaml: "store:\n  servers: ['nats://a:4222', 'tls://b:4222']\n  credentials: " + creds + "\n  tls_ca: " + ca + "\n  replicas: 3\n  prefix: relay_eu-1\n",
			check: func(s *config.Store) bool {
				return len(s.Servers) == 2 && s.Credentials == creds && s.TLSCA == ca && s.Replicas == 3 && s.Prefix == "relay_eu-1"
			}},
		{name: "OKTokenFromEnv", yaml: "store: {servers: ['nats://a:4222'], token: 'env:NATS_TOKEN'}\n",
			check: func(s *config.Store) bool { return s.Token == "tok" }},
		// The servers may come from --store; the CLI asks for them when not.
		{name: "OKNoServers", yaml: "store: {replicas: 3}\n",
			check: func(s *config.Store) bool { return len(s.Servers) == 0 && s.Replicas == 3 }},
		{name: "ErrHTTPServer", yaml: "store: {servers: ['http://a:4222']}\n", want: `store.servers[0]: "http://a:4222" is not a NATS URL`},
		{name: "ErrNoHost", yaml: "store: {servers: ['nats://']}\n", want: "store.servers[0]"},
		{name: "ErrPortRange", yaml: "store: {servers: ['nats://a:99999']}\n", want: `store.servers[0]: "nats://a:99999": port 99999 is not between 1 and 65535`},
		{name: "ErrPortZero", yaml: "store: {servers: ['nats://a:0']}\n", want: "port 0 is not between 1 and 65535"},
		{name: "ErrUserInURL", yaml: "store: {servers: ['nats://u:p@a:4222']}\n", want: "store.servers[0]: "},
		{name: "ErrServersNotList", yaml: "store: {servers: 'nats://a:4222'}\n", want: "store.servers: want a list"},
		{name: "ErrTokenAndCreds", yaml: "store: {servers: ['nats://a'], token: t, credentials: " + creds + "}\n", want: "store: token and credentials are two ways to authenticate: give one"},
		{name: "ErrMissingCreds", yaml: "store: {servers: ['nats://a'], credentials: " + filepath.Join(dir, "nope.creds") + "}\n", want: "store.credentials: " + filepath.Join(dir, "nope.creds") + ": no such file"},
		{name: "ErrMissingCA", yaml: "store: {servers: ['nats://a'], tls_ca: " + dir + "}\n", want: "store.tls_ca: " + dir + ": is a directory"},
		{name: "ErrReplicas", yaml: "store: {servers: ['nats://a'], replicas: 2}\n", want: "store.replicas: 2: want 1 or 3"},
		{name: "ErrReplicasWord", yaml: "store: {servers: ['nats://a'], replicas: three}\n", want: `store.replicas: want a whole number, got "three"`},
		{name: "ErrPrefix", yaml: "store: {servers: ['nats://a'], prefix: 'a.b'}\n", want: `store.prefix: "a.b": use 1 to 64 of letters`},
		{name: "ErrPrefixReserved", yaml: "store: {servers: ['nats://a'], prefix: _sidehook}\n", want: `store.prefix: "_sidehook" is reserved`},
		{name: "OKPrefixLikeReserved", yaml: "store: {servers: ['nats://a'], prefix: _sidehook2}\n",
			check: func(s *config.Store) bool { return s.Prefix == "_sidehook2" }},
		{name: "OKAckWait", yaml: "store: {servers: ['nats://a'], ack_wait: 2m}\n",
			check: func(s *config.Store) bool { return s.AckWait == 2*time.Minute }},
		{name: "ErrAckWaitShort", yaml: "store: {servers: ['nats://a'], ack_wait: 10ms}\n", want: `store.ack_wait: "10ms" is not a duration between 1s and 1h0m0s`},
		{name: "ErrAckWaitWord", yaml: "store: {servers: ['nats://a'], ack_wait: soon}\n", want: `store.ack_wait: "soon" is not a duration`},
		{name: "ErrTokenEnvUnset", yaml: "store: {servers: ['nats://a'], token: 'env:NOPE'}\n", want: "store.token: environment variable NOPE is not set"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, err := parse(t, tt.yaml+org, map[string]string{"NATS_TOKEN": "tok"})
			if tt.want != "" {
				if err == nil || !strings.Contains(err.Error(), tt.want) {
					t.Fatalf("got %v, want %q", err, tt.want)
				}
				if strings.Contains(err.Error(), ":p@") {
					t.Fatalf("got %v, which repeats a password", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.Store == nil || !tt.check(c.Store) {
				t.Fatalf("got %+v, want a store that passes the case's check", c.Store)
			}
		})
	}
	c, err := parse(t, org, nil)
	if err != nil || c.Store != nil {
		t.Fatalf("no store section: got %+v, %v, want nil", c.Store, err)
	}
}

func TestParseStoreServers(t *testing.T) {
	t.Parallel()
	got, err := config.ParseStoreServers("nats://a:4222, nats://b:4222")
	if err != nil || len(got) != 2 || got[1] != "nats://b:4222" {
		t.Fatalf("got %v, %v", got, err)
	}
	for _, bad := range []string{"", "a:4222", "nats://a:4222,", "nats://a/x"} {
		if _, err := config.ParseStoreServers(bad); err == nil {
			t.Errorf("%q: got no error", bad)
		}
	}
}
