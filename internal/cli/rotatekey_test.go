package cli

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/sidehook/sidehook/internal/auth"
)

// jwksOf is a relay's /.well-known/jwks.json.
func jwksOf(t *testing.T, relayURL string) auth.JWKS {
	t.Helper()
	resp, err := http.Get(relayURL + "/.well-known/jwks.json")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var set auth.JWKS
	if err := json.NewDecoder(resp.Body).Decode(&set); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("jwks: %d %v", resp.StatusCode, err)
	}
	return set
}

func kidsOf(set auth.JWKS) []string {
	var kids []string
	for _, k := range set.Keys {
		kids = append(kids, k.Kid)
	}
	return kids
}

// bearerKID verifies a delivery's Bearer JWT with set and returns its kid.
func bearerKID(t *testing.T, h http.Header, set auth.JWKS) string {
	t.Helper()
	tok, err := jwt.Parse(strings.TrimPrefix(h.Get("Authorization"), "Bearer "), func(tok *jwt.Token) (any, error) {
		kid, _ := tok.Header["kid"].(string)
		i := slices.IndexFunc(set.Keys, func(k auth.JWK) bool { return k.Kid == kid })
		if i < 0 {
			return nil, fmt.Errorf("kid %q is not in the JWKS", kid)
		}
		pub, _, err := set.Keys[i].PublicKey()
		return pub, err
	}, jwt.WithValidMethods([]string{"ES256"}))
	if err != nil {
		t.Fatalf("the delivery's JWT does not verify with the relay's JWKS: %v", err)
	}
	kid, _ := tok.Header["kid"].(string)
	return kid
}

// jwtRelayConfig writes a configuration with one organisation signing
// ES256 JWTs to an endpoint at hook, its data under dir.
func jwtRelayConfig(t *testing.T, dir, hook string) string {
	t.Helper()
	path := filepath.Join(dir, "sidehook.yaml")
	yaml := "listen: 127.0.0.1:0\ndata: " + filepath.Join(dir, "data") + "\norganisations:\n  - id: acme\n    api_keys: [acme-key]\n" +
		"    jwt: {algorithm: ES256}\n    endpoints:\n      - {id: crm, url: " + hook + "/hook, auth: [jwt]}\n"
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestRelayRotateKey: with the relay stopped, rotate-key replaces its
// ES256 key; started again, the relay publishes the new key and the old
// one and signs with the new one.
func TestRelayRotateKey(t *testing.T) {
	srv, got := hookSink(t)
	dir := t.TempDir()
	cfg := jwtRelayConfig(t, dir, srv.URL)
	url, stop := startCommand(t, nil, "relay", "--config", cfg)
	before := kidsOf(jwksOf(t, url))
	if len(before) != 1 {
		t.Fatalf("jwks before: got %v, want one key", before)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}

	code, out, stderr := runCLI(t, nil, "relay", "rotate-key", "--config", cfg, "--alg", "ES256", "--json")
	if code != 0 {
		t.Fatalf("rotate-key: exit %d, want 0: %s", code, stderr)
	}
	var rot struct {
		Alg, KID     string
		RetiredKID   string    `json:"retired_kid"`
		RetiredUntil time.Time `json:"retired_until"`
	}
	if err := json.Unmarshal([]byte(out), &rot); err != nil {
		t.Fatalf("rotate-key --json: got %q: %v", out, err)
	}
	if rot.Alg != "ES256" || rot.KID == "" || rot.KID == before[0] || rot.RetiredKID != before[0] ||
		rot.RetiredUntil.Before(time.Now().Add(auth.DefaultAttemptTTL)) {
		t.Fatalf("rotate-key --json: got %+v, want a new key retiring %s for longer than a token lives", rot, before[0])
	}

	url, stop = startCommand(t, nil, "relay", "--config", cfg)
	set := jwksOf(t, url)
	if want := []string{rot.KID, before[0]}; !slices.Equal(kidsOf(set), want) {
		t.Fatalf("jwks after: got %v, want the new key and the old %v", kidsOf(set), want)
	}
	if code, _, stderr := runCLI(t, nil, "send", "--relay", url, "--api-key", "acme-key", "--event", "payment"); code != 0 {
		t.Fatalf("send: exit %d, want 0: %s", code, stderr)
	}
	if kid := bearerKID(t, waitHeaders(t, got, 1)[0], set); kid != rot.KID {
		t.Errorf("delivery signed with kid %s, want the new key %s", kid, rot.KID)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}

	// Without --json: one line naming the new key and the one it retires.
	code, out, stderr = runCLI(t, nil, "relay", "rotate-key", "--data", filepath.Join(dir, "data"), "--alg", "es256")
	prefix := "ES256: signing with new key "
	suffix := "; the old key " + rot.KID + " stays in the JWKS until "
	if code != 0 || !strings.HasPrefix(out, prefix) || !strings.Contains(out, suffix) || strings.Count(out, "\n") != 1 || stderr != "" {
		t.Errorf("rotate-key: got %d %q %q, want 0 and one line %q…%q…", code, out, stderr, prefix, suffix)
	}
}

// TestRelayRotateKeyWhileRunning: a relay on Badger holds its data
// directory; rotate-key says to stop it, in one line, and changes nothing.
func TestRelayRotateKeyWhileRunning(t *testing.T) {
	srv, _ := hookSink(t)
	dir := t.TempDir()
	cfg := jwtRelayConfig(t, dir, srv.URL)
	url, _ := startCommand(t, nil, "relay", "--config", cfg)
	before := kidsOf(jwksOf(t, url))
	code, out, stderr := runCLI(t, nil, "relay", "rotate-key", "--config", cfg, "--alg", "ES256")
	want := "sidehook: relay rotate-key: " + filepath.Join(dir, "data") + " is in use by a running relay: stop the relay first"
	if code != 1 || out != "" || !strings.HasPrefix(stderr, want) || strings.Count(stderr, "\n") != 1 {
		t.Errorf("got %d %q %q, want 1 and one line %q…", code, out, stderr, want)
	}
	if after := kidsOf(jwksOf(t, url)); !slices.Equal(after, before) {
		t.Errorf("jwks: got %v, want %v unchanged", after, before)
	}
}

func TestRelayRotateKeyUsageErrors(t *testing.T) {
	srv, _ := hookSink(t)
	dir := t.TempDir()
	cfg := jwtRelayConfig(t, dir, srv.URL)
	data := filepath.Join(dir, "data")
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"NoAlg", []string{"--data", data}, "relay rotate-key: --alg is required: RS256, ES256 or EdDSA"},
		{"HS256", []string{"--data", data, "--alg", "HS256"}, "relay rotate-key: --alg HS256 has no relay key to rotate"},
		{"Unknown", []string{"--data", data, "--alg", "RS512"}, `relay rotate-key: --alg "RS512": want RS256, ES256 or EdDSA`},
		{"AlgNotInConfig", []string{"--config", cfg, "--alg", "EdDSA"}, "relay rotate-key: no organisation in " + cfg + " signs jwt with EdDSA"},
		{"Argument", []string{"--alg", "ES256", "now"}, `relay rotate-key: unexpected argument "now"`},
		{"BadStore", []string{"--alg", "ES256", "--store", "http://x:4222"}, "relay: --store: server 1:"},
		{"NoRelayData", []string{"--data", data, "--alg", "ES256"}, "relay rotate-key: no relay data in " + data + ": give the relay's --config FILE, --data DIR or --store URLS"},
		// The README's own command, before the relay first ran: it asked
		// for the --config it was given.
		{"NoRelayDataYet", []string{"--config", cfg, "--alg", "ES256"}, "relay rotate-key: no relay data in " + data + ", where " + cfg + " keeps it: start the relay once (it makes its keys then), or give its --data DIR"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, stderr := runCLI(t, nil, append([]string{"relay", "rotate-key"}, tt.args...)...)
			if code != 2 || out != "" || !strings.Contains(stderr, tt.want) || strings.Count(stderr, "\n") != 1 {
				t.Errorf("got %d %q %q, want 2 and one line with %q", code, out, stderr, tt.want)
			}
		})
	}
	// The relay's flags before the subcommand's name would be ignored.
	// One rotate-key lacks is not to be written after it either: the
	// advice to do so led to "unknown flag --listen".
	for _, tt := range []struct{ name, flag, value, want string }{
		{"SubcommandHasIt", "--data", data, `relay rotate-key: --data comes before "rotate-key", where it would be ignored: write it after`},
		{"SubcommandLacksIt", "--listen", "127.0.0.1:0", `relay rotate-key: --listen is the relay's, which "rotate-key" does not take: leave it out`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			code, _, stderr := runCLI(t, nil, "relay", tt.flag, tt.value, "rotate-key", "--alg", "ES256")
			if code != 2 || !strings.Contains(stderr, tt.want) {
				t.Errorf("flag before the subcommand: got %d %q, want 2 and %q", code, stderr, tt.want)
			}
		})
	}
	if _, err := os.Stat(data); !os.IsNotExist(err) {
		t.Errorf("a refused rotation made the data directory: %v", err)
	}
}

// TestRelayRotateKeyNATS: on a shared store the running relay follows the
// rotation at once.
func TestRelayRotateKeyNATS(t *testing.T) {
	natsURL := startNATS(t, false)
	url := startRelayCLI(t, nil, "--api-key", "k", "--jwt-algorithm", "EdDSA", "--store", natsURL, "--listen", "127.0.0.1:0")
	before := kidsOf(jwksOf(t, url))
	code, out, stderr := runCLI(t, envOf(map[string]string{"SIDEHOOK_STORE": natsURL}), "relay", "rotate-key", "--alg", "EdDSA", "--json")
	var rot struct{ KID string }
	if code != 0 || json.Unmarshal([]byte(out), &rot) != nil || rot.KID == "" {
		t.Fatalf("rotate-key: got %d %q %q, want 0 and JSON with a kid", code, out, stderr)
	}
	want := []string{rot.KID, before[0]}
	deadline := time.Now().Add(10 * time.Second)
	for !slices.Equal(kidsOf(jwksOf(t, url)), want) {
		if time.Now().After(deadline) {
			t.Fatalf("jwks: got %v, want %v", kidsOf(jwksOf(t, url)), want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestRelayRotateKeyNATSExisting: rotate-key opens the relays' store as
// they made it. With --store alone it asked for the default ack wait and
// was refused while relays with another ran; on servers without their
// store it made one.
func TestRelayRotateKeyNATSExisting(t *testing.T) {
	natsURL := startNATS(t, false)
	cfg := filepath.Join(t.TempDir(), "relay.yaml")
	yaml := "listen: 127.0.0.1:0\nstore: {servers: [" + natsURL + "], ack_wait: 5s}\n" +
		"organisations:\n  - id: demo\n    api_keys: [k]\n    jwt: {algorithm: EdDSA}\n"
	if err := os.WriteFile(cfg, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	url := startRelayCLI(t, nil, "--config", cfg)
	before := kidsOf(jwksOf(t, url))
	code, out, stderr := runCLI(t, nil, "relay", "rotate-key", "--store", natsURL, "--alg", "EdDSA", "--json")
	var rot struct {
		KID        string `json:"kid"`
		RetiredKID string `json:"retired_kid"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &rot) != nil || rot.KID == "" || rot.RetiredKID != before[0] {
		t.Fatalf("rotate-key --store: got %d %q %q, want 0 and a new kid retiring %s", code, out, stderr, before[0])
	}
	if stderr != "" {
		t.Errorf("rotate-key --store: stderr %q, want nothing (its answer is on stdout)", stderr)
	}

	other := startNATS(t, false)
	code, _, stderr = runCLI(t, nil, "relay", "rotate-key", "--store", other, "--alg", "EdDSA")
	if code != 1 || !strings.Contains(stderr, "no relay store") {
		t.Errorf("rotate-key on servers without the relays' store: got %d %q, want 1 saying there is no relay store", code, stderr)
	}
}
