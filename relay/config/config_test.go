package config_test

import (
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/sidehook/sidehook/internal/auth"
	"github.com/sidehook/sidehook/relay/config"
)

func env(m map[string]string) config.Getenv { return func(k string) string { return m[k] } }

func TestLoadSpecExample(t *testing.T) {
	c, err := config.Load("testdata/sidehook.yaml", env(map[string]string{
		"SIDEHOOK_API_KEY": "key-1", "SIDEHOOK_SECRET_KEY": strings.Repeat("s", 32),
	}))
	if err != nil {
		t.Fatal(err)
	}
	o := c.Organisations[0]
	if o.APIKeys[0] != "key-1" || string(o.SecretKey) != strings.Repeat("s", 32) || o.JWTAlgorithm != auth.ES256 || len(o.StandardSecrets) != 1 {
		t.Errorf("organisation: got %+v, want key-1, a 32-byte secret, ES256 and one standard secret", o)
	}
	crm := o.Endpoints[0]
	if crm.Rate.PerSecond != 50 || crm.Timeout != 15*time.Second || crm.Retry.Schedule[1] != 200*time.Millisecond || crm.Headers["x-team"] != "billing" || !crm.Enabled {
		t.Errorf("crm: got %+v, want 50/s, a 15s timeout, 200ms as the second retry, x-team billing, enabled", crm)
	}
	if c.Limits.MaxBody != 1<<20 || c.Retention != 72*time.Hour || len(c.Retry.Schedule) != 7 {
		t.Errorf("relay-wide: got %+v, want 1 MiB bodies, 72h retention, 7 retries", c)
	}
	if v := o.Endpoints[1]; !v.CustomValues() || len(v.Auth) != 1 || v.Auth[0] != "webio-token" {
		t.Errorf("values endpoint: got %+v, want default auth webio-token", v)
	}
}

func TestErrorsNameTheKey(t *testing.T) {
	base := "organisations:\n  - id: demo\n    api_keys: [k]\n    secret_key: " + strings.Repeat("s", 32) + "\n"
	tests := []struct{ name, yaml, want string }{
		{"Empty", "", "organisations is required"},
		{"NoOrgs", "listen: x\n", "organisations: at least one"},
		{"UnknownKey", base + "    colour: red\n", `line 5: unknown key "colour" in organisations[0]; valid keys are api_keys, endpoints, id,`},
		{"BadURL", base + "    endpoints:\n      - {id: a, url: http://x}\n      - {id: b, url: /relative}\n", "organisations[0].endpoints[1].url: \"/relative\" is not an absolute http(s) URL"},
		{"BadTunnelName", base + "    endpoints:\n      - {id: a, url: tunnel://Laptop}\n", "organisations[0].endpoints[0].url: tunnel name \"Laptop\""},
		// The README exports SIDEHOOK_API_KEY="$KEY": with KEY unset, the
		// variable is set, and empty, which "is not set" denied.
		{"MissingEnv", "organisations:\n  - id: demo\n    secret_key: env:NOPE\n", "organisations[0].secret_key: environment variable NOPE is not set (or is empty)"},
		{"ShortSecret", "organisations:\n  - id: demo\n    secret_key: short\n", "organisations[0].secret_key: 5 bytes, need at least 32"},
		{"BadDuration", base + "retention: forever\n", "retention: \"forever\" is not a positive duration"},
		{"BadSize", base + "limits: {max_body: lots}\n", "limits.max_body"},
		{"BadRate", base + "    endpoints:\n      - {id: a, url: http://x, rate: fast}\n", "organisations[0].endpoints[0].rate"},
		{"BadScheme", base + "    endpoints:\n      - {id: a, url: http://x, auth: [magic]}\n", "organisations[0].endpoints[0].auth[0]"},
		{"SchemeWithoutKey", "organisations:\n  - id: demo\n    endpoints:\n      - {id: a, url: http://x, auth: [standard]}\n", "standard needs the organisation's standard_secret"},
		{"TwoCustomValueEndpoints", base + "    endpoints:\n      - {id: a, url: http://x, events: [custom_value_request]}\n      - {id: b, url: http://y, events: [custom_value_request]}\n", "organisations[0].endpoints[1].events: endpoint \"a\" already answers custom_value_request"},
		{"DuplicateEndpoint", base + "    endpoints:\n      - {id: a, url: http://x}\n      - {id: a, url: http://y}\n", "organisations[0].endpoints[1].id: \"a\" is used"},
		{"DuplicateOrg", base + "  - id: demo\n", "organisations[1].id: \"demo\" is used"},
		{"APIKeyOfTwoOrgs", base + "  - id: other\n    api_keys: [k2, k]\n", "organisations[1].api_keys[1]: also an API key of organisation \"demo\""},
		{"BadID", "organisations:\n  - id: a/b\n", "organisations[0].id"},
		{"BadEvent", base + "    endpoints:\n      - {id: a, url: http://x, events: [Payment]}\n", "organisations[0].endpoints[0].events[0]"},
		// Authorization: Bearer is read without the white space around
		// the key, so a key or token with some (a newline left by a
		// secret file) never matched: every call was a 401.
		{"APIKeyTrailingNewline", "organisations:\n  - id: demo\n    api_keys: [env:KEY]\n", `organisations[0].api_keys[0]: ends in white space`},
		{"APIKeyLeadingSpace", "organisations:\n  - id: demo\n    api_keys: [' k']\n", `organisations[0].api_keys[0]: starts with white space`},
		{"AdminTokenTrailingNewline", base + "admin_token: env:TOKEN\n", `admin_token: ends in white space`},
		// A secret key read with the newline of its file signed every
		// token with it: a receiver given the key without it (as a shell's
		// "$(cat file)" gives it) rejected every delivery, 401, dead.
		{"SecretKeyTrailingNewline", "organisations:\n  - id: demo\n    secret_key: env:SECRET\n", `organisations[0].secret_key: ends in white space (a newline from a file?)`},
		{"SecretKeyLeadingSpace", "organisations:\n  - id: demo\n    secret_key: ' " + strings.Repeat("s", 32) + "'\n", `organisations[0].secret_key: starts with white space`},
		{"InboundSecretTrailingNewline", base + "    inbound_auth: webio-token\n    inbound_secret: env:SECRET\n", `organisations[0].inbound_secret: ends in white space (a newline from a file?)`},
		{"EmptyEvents", base + "    endpoints:\n      - {id: a, url: http://x, events: []}\n", "organisations[0].endpoints[0].events: an empty list subscribes to nothing"},
		{"BadJitter", base + "retry: {jitter: 2}\n", "retry.jitter"},
		{"BadInFlight", base + "    endpoints:\n      - {id: a, url: http://x, max_in_flight: -1}\n", "organisations[0].endpoints[0].max_in_flight: -1 is not between 1 and 1024"},
		// Written out, 0 was taken as the default 16 without a word, where
		// -1 was refused.
		{"ZeroInFlight", base + "    endpoints:\n      - {id: a, url: http://x, max_in_flight: 0}\n", "organisations[0].endpoints[0].max_in_flight: 0 is not between 1 and 1024 (leave it out for the default, 16)"},
		{"TooManyInFlight", base + "    endpoints:\n      - {id: a, url: http://x, max_in_flight: 1025}\n", "organisations[0].endpoints[0].max_in_flight: 1025 is not between 1 and 1024"},
		{"OrderedInFlight", base + "    endpoints:\n      - {id: a, url: http://x, ordered: true, max_in_flight: 8}\n", "organisations[0].endpoints[0].max_in_flight: 8 with ordered: true, which sends one delivery at a time: set it to 1 or leave it out"},
		// 0 was the store's default reserve, not none.
		{"ZeroMinFreeDisk", base + "limits: {min_free_disk: 0}\n", `limits.min_free_disk: "0" is not a positive size`},
		{"ReservedHeader", base + "    endpoints:\n      - {id: a, url: http://x, headers: {webhook-id: x}}\n", "headers"},
		{"InboundAuthNoSecret", "organisations:\n  - id: demo\n    inbound_auth: webio-token\n", "organisations[0].inbound_secret: inbound_auth webio-token needs inbound_secret"},
		{"BadAlgorithm", base + "    jwt: {algorithm: none}\n", "organisations[0].jwt.algorithm"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := config.Parse([]byte(tt.yaml), env(map[string]string{"KEY": "sk_live\n", "TOKEN": "0123456789abcdef\n", "SECRET": strings.Repeat("i", 32) + "\n"}))
			if err == nil {
				t.Fatalf("got no error, want one containing %q", tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) || strings.Contains(err.Error(), "\n") {
				t.Errorf("got %q, want one line containing %q", err, tt.want)
			}
		})
	}
}

func TestDefaults(t *testing.T) {
	c, err := config.Parse([]byte("organisations:\n  - id: demo\n    endpoints:\n      - {id: a, url: http://x}\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	e := c.Organisations[0].Endpoints[0]
	if c.Listen != config.DefaultListen || c.Data != config.DefaultData || c.Retry.Jitter != 0.2 || c.Limits.MaxQueue != 1_000_000 ||
		e.MaxInFlight != 16 || len(e.Auth) != 0 || e.Events[0] != "*" || !e.Enabled {
		t.Errorf("got %+v / %+v, want the defaults", c, e)
	}
}

func TestOneOrg(t *testing.T) {
	c, err := config.FromOneOrg(config.OneOrg{APIKeys: []string{"k"}, SecretKey: strings.Repeat("s", 32), Endpoints: []string{"http://127.0.0.1:8081/hook"}, CustomValues: "http://127.0.0.1:8081/values"})
	if err != nil {
		t.Fatal(err)
	}
	o := c.Organisations[0]
	if o.ID != "demo" || len(o.Endpoints) != 2 || o.Endpoints[0].Events[0] != "*" || !o.Endpoints[1].CustomValues() {
		t.Errorf("got %+v, want demo with 2 endpoints, the first for every event, the second answering custom values", o)
	}
	if _, err := config.FromOneOrg(config.OneOrg{}); err == nil {
		t.Error("no API key: got no error")
	}
	if _, err := config.FromOneOrg(config.OneOrg{APIKeys: []string{"k"}, Endpoints: []string{"nope"}}); err == nil {
		t.Error("bad endpoint URL: got no error")
	}
}

func TestRawRoundTrip(t *testing.T) {
	c, err := config.Load("testdata/sidehook.yaml", env(map[string]string{"SIDEHOOK_API_KEY": "k", "SIDEHOOK_SECRET_KEY": strings.Repeat("s", 32)}))
	if err != nil {
		t.Fatal(err)
	}
	o := c.Organisations[0]
	for _, e := range o.Endpoints {
		back, err := e.Raw().Validate("", &o)
		if err != nil {
			t.Fatalf("%s: %v", e.ID, err)
		}
		if back.Rate != e.Rate || back.Timeout != e.Timeout || back.Enabled != e.Enabled || len(back.Auth) != len(e.Auth) {
			t.Errorf("%s: got %+v, want %+v", e.ID, back, e)
		}
	}
}

// TestEndpointRetryChangesWhatItNames: an endpoint's retry block keeps the
// relay-wide policy for what it leaves out (a block with only a jitter
// must not turn retries off), and takes what it names.
// TestOneOrgErrorsNameFlags: a one-organisation relay is made from flags,
// so its errors name the flags, not the YAML keys (organisations[0]…) the
// user never wrote.
// TestOneOrgEnvSecrets: a flag's secret may be written env:NAME, as in the
// file; it was looked up in an empty environment, so the relay said a set
// variable was not set.
func TestOneOrgEnvSecrets(t *testing.T) {
	secret := strings.Repeat("s", 32)
	getenv := env(map[string]string{"KEY": "k1", "SECRET": secret})
	c, err := config.FromOneOrg(config.OneOrg{APIKeys: []string{"env:KEY"}, SecretKey: "env:SECRET", Getenv: getenv})
	if err != nil {
		t.Fatal(err)
	}
	if o := c.Organisations[0]; o.APIKeys[0] != "k1" || string(o.SecretKey) != secret {
		t.Errorf("got %q and %q, want the variables' values", o.APIKeys, o.SecretKey)
	}
	if _, err := config.FromOneOrg(config.OneOrg{APIKeys: []string{"k"}, SecretKey: "env:NOPE", Getenv: getenv}); err == nil || err.Error() != "--secret-key: environment variable NOPE is not set (or is empty)" {
		t.Errorf("unset variable: got %v, want --secret-key: environment variable NOPE is not set (or is empty)", err)
	}
}

var yamlKey = regexp.MustCompile(`[a-z]+_[a-z]+`)

func TestOneOrgErrorsNameFlags(t *testing.T) {
	secret := strings.Repeat("s", 32)
	tests := []struct {
		name string
		o    config.OneOrg
		want string
	}{
		{"Endpoint", config.OneOrg{Endpoints: []string{"http://x", "ftp://y"}}, `--endpoint: "ftp://y" is not an absolute http(s) URL`},
		{"CustomValues", config.OneOrg{Endpoints: []string{"http://x"}, CustomValues: "nope"}, `--custom-values: "nope" is not an absolute`},
		{"SecretKey", config.OneOrg{SecretKey: "short"}, `--secret-key: 5 bytes, need at least 32`},
		{"StandardSecret", config.OneOrg{StandardSecret: "abc"}, `--standard-secret: standard secret must start with "whsec_"`},
		{"JWTAlgorithm", config.OneOrg{JWTAlgorithm: "HS512"}, `--jwt-algorithm: "HS512": want HS256, RS256, ES256 or EdDSA`},
		{"HS256WithoutSecret", config.OneOrg{JWTAlgorithm: "HS256"}, `--jwt-algorithm: HS256 signs with --secret-key, which is not set`},
		{"InboundAuth", config.OneOrg{InboundAuth: "jwt"}, `--inbound-auth: "jwt": want none or webio-token`},
		{"InboundWithoutSecret", config.OneOrg{InboundAuth: "webio-token"}, `--inbound-secret: --inbound-auth webio-token needs --inbound-secret, the secret the platform signs its tokens with (not --secret-key,`},
		{"InboundSecretWithoutAuth", config.OneOrg{InboundSecret: secret + "x"}, `--inbound-auth: --inbound-secret or --inbound-issuer is set but --inbound-auth is none; set --inbound-auth webio-token to check inbound tokens`},
		{"InboundSameSecret", config.OneOrg{SecretKey: secret, InboundAuth: "webio-token", InboundSecret: secret}, `--inbound-secret: must differ from --secret-key:`},
		{"Org", config.OneOrg{Org: "a b"}, `--org: "a b": use letters`},
		{"EmptyAPIKey", config.OneOrg{APIKeys: []string{"k", ""}}, `--api-key: empty`},
		{"AdminToken", config.OneOrg{AdminToken: "short"}, `--admin-token: 5 bytes, need at least 16`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.o.APIKeys == nil {
				tt.o.APIKeys = []string{"k"}
			}
			_, err := config.FromOneOrg(tt.o)
			if err == nil || err.Error() != tt.want && !strings.HasPrefix(err.Error(), tt.want) {
				t.Fatalf("got %v, want %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "organisations[") || yamlKey.MatchString(err.Error()) {
				t.Errorf("got %q, which names a YAML key", err)
			}
		})
	}
}

func TestEndpointRetryChangesWhatItNames(t *testing.T) {
	head := "retry: {schedule: [10ms, 20ms, 30ms], jitter: 0.1}\norganisations:\n  - id: demo\n    endpoints:\n"
	tests := []struct {
		name, endpoint string
		want           config.Retry
	}{
		{"JitterOnly", "      - {id: a, url: http://x, retry: {jitter: 0.5}}\n",
			config.Retry{Schedule: []time.Duration{10 * time.Millisecond, 20 * time.Millisecond, 30 * time.Millisecond}, Jitter: 0.5}},
		{"Empty", "      - {id: a, url: http://x, retry: {}}\n",
			config.Retry{Schedule: []time.Duration{10 * time.Millisecond, 20 * time.Millisecond, 30 * time.Millisecond}, Jitter: 0.1}},
		{"ScheduleOnly", "      - {id: a, url: http://x, retry: {schedule: [1s]}}\n",
			config.Retry{Schedule: []time.Duration{time.Second}, Jitter: 0.1}},
		{"NoRetries", "      - {id: a, url: http://x, retry: {schedule: []}}\n",
			config.Retry{Schedule: []time.Duration{}, Jitter: 0.1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := config.Parse([]byte(head+tt.endpoint), env(nil))
			if err != nil {
				t.Fatal(err)
			}
			got := c.Organisations[0].Endpoints[0].Retry
			if got == nil || !reflect.DeepEqual(*got, tt.want) {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

// TestCheckMaxBody: a limits.max_body above what the store holds of one
// event is refused, naming the key, the store and its limit in one line;
// up to the limit it passes.
func TestCheckMaxBody(t *testing.T) {
	tests := []struct {
		name    string
		maxBody int64
		store   int64
		why     string
		want    string // "" for no error
	}{
		{"Below", 1 << 20, 63 << 20, "what sets it", ""},
		{"AtTheLimit", 63 << 20, 63 << 20, "what sets it", ""},
		{"Above", 100 << 20, 63 << 20, "what sets it", "limits.max_body: 100 MiB is more than the Badger store holds of one event: at most 63 MiB (what sets it); lower it"},
		{"NoWhy", 100 << 20, 63 << 20, "", "limits.max_body: 100 MiB is more than the Badger store holds of one event: at most 63 MiB; lower it"},
		{"NoRoomAtAll", 1 << 20, 0, "what sets it", "limits.max_body: 1.0 MiB is more than the Badger store holds of one event: at most 0 B (what sets it); lower it"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &config.Config{Limits: config.Limits{MaxBody: tt.maxBody}}
			err := c.CheckMaxBody(config.StoreLimit{Store: "the Badger store", MaxBody: tt.store, Why: tt.why})
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("got %v, want no error", err)
			case tt.want != "" && (err == nil || err.Error() != tt.want):
				t.Fatalf("got %v, want %q", err, tt.want)
			}
		})
	}
}

// TestLoadRelativePaths: a relative path in a configuration file is taken
// from the file's directory, so `sidehook relay --config
// /etc/sidehook/relay.yaml` means the same from any working directory; an
// absolute one is kept, and an unset data is the default, in the working
// directory. Parse, which has no file, keeps them as written.
func TestLoadRelativePaths(t *testing.T) {
	cert, key := writeCert(t)
	dir := filepath.Join(t.TempDir(), "etc")
	if err := os.MkdirAll(filepath.Join(dir, "tls"), 0o700); err != nil {
		t.Fatal(err)
	}
	for from, to := range map[string]string{cert: "tls/cert.pem", key: "tls/key.pem"} {
		b, err := os.ReadFile(from)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, to), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "nats.creds"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	abs := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(abs, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	const orgs = "organisations:\n  - id: demo\n    api_keys: [k]\n"
	tests := []struct {
		name, yaml string
		got        func(*config.Config) string
		want       string
	}{
		{"Data", "data: ./relay-data\n", func(c *config.Config) string { return c.Data }, filepath.Join(dir, "relay-data")},
		{"DataUnset", "", func(c *config.Config) string { return c.Data }, config.DefaultData},
		{"DataAbsolute", "data: /var/lib/sidehook\n", func(c *config.Config) string { return c.Data }, "/var/lib/sidehook"},
		{"TLSCert", "tls_cert: tls/cert.pem\ntls_key: tls/key.pem\n", func(c *config.Config) string { return c.TLSCert }, filepath.Join(dir, "tls/cert.pem")},
		{"TLSKey", "tls_cert: tls/cert.pem\ntls_key: tls/key.pem\n", func(c *config.Config) string { return c.TLSKey }, filepath.Join(dir, "tls/key.pem")},
		{"StoreCredentials", "store: {credentials: nats.creds, tls_ca: " + abs + "}\n", func(c *config.Config) string { return c.Store.Credentials }, filepath.Join(dir, "nats.creds")},
		{"StoreTLSCAAbsolute", "store: {credentials: nats.creds, tls_ca: " + abs + "}\n", func(c *config.Config) string { return c.Store.TLSCA }, abs},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(dir, "relay.yaml")
			if err := os.WriteFile(path, []byte(tt.yaml+orgs), 0o600); err != nil {
				t.Fatal(err)
			}
			c, err := config.Load(path, nil)
			if err != nil {
				t.Fatal(err)
			}
			if got := tt.got(c); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
	t.Run("ParseKeepsData", func(t *testing.T) {
		c, err := config.Parse([]byte("data: ./relay-data\n"+orgs), nil)
		if err != nil || c.Data != "./relay-data" {
			t.Errorf("got %v %+v, want data ./relay-data as written", err, c)
		}
	})
}

// TestLoadRefusesMovedData: a relative data directory was taken from the
// working directory before it was taken from the file's. One that holds
// data there and does not exist beside the file is refused, naming both:
// started, the relay would make a new, empty store and strand the old.
func TestLoadRefusesMovedData(t *testing.T) {
	const orgs = "organisations:\n  - id: demo\n    api_keys: [k]\n"
	tests := []struct {
		name    string
		prepare func(t *testing.T, cwd, etc string)
		wantErr bool
	}{
		{"OldHoldsData", func(t *testing.T, cwd, _ string) { mkfile(t, filepath.Join(cwd, "relay-data", "db", "MANIFEST")) }, true},
		{"OldEmpty", func(t *testing.T, cwd, _ string) { mkdir(t, filepath.Join(cwd, "relay-data")) }, false},
		{"NoOld", func(*testing.T, string, string) {}, false},
		{"BothExist", func(t *testing.T, cwd, etc string) {
			mkfile(t, filepath.Join(cwd, "relay-data", "db", "MANIFEST"))
			mkdir(t, filepath.Join(etc, "relay-data"))
		}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cwd, etc := t.TempDir(), t.TempDir()
			t.Chdir(cwd)
			tt.prepare(t, cwd, etc)
			path := filepath.Join(etc, "relay.yaml")
			if err := os.WriteFile(path, []byte("data: relay-data\n"+orgs), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := config.Load(path, nil)
			if !tt.wantErr {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil {
				t.Fatal("loaded: want the moved data directory refused")
			}
			for _, want := range []string{filepath.Join(etc, "relay-data"), filepath.Join(cwd, "relay-data"), "set data to"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not name %q", err, want)
				}
			}
		})
	}
}

func mkdir(t *testing.T, dir string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
}

func mkfile(t *testing.T, path string) {
	t.Helper()
	mkdir(t, filepath.Dir(path))
	if err := os.WriteFile(path, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
}
