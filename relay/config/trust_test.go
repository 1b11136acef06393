package config_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sidehook/sidehook/internal/auth"
	"github.com/sidehook/sidehook/internal/target"
	"github.com/sidehook/sidehook/relay/config"
)

var (
	secret32 = strings.Repeat("s", 32)
	inbound  = strings.Repeat("p", 32)
)

func parse(tb testing.TB, yml string, vars map[string]string) (*config.Config, error) {
	tb.Helper()
	return config.Parse([]byte(yml), env(vars))
}

// TestInbound separates the token the relay sends from the token it
// accepts: with inbound_auth webio-token, the organisation's own outbound
// token (signed with secret_key) no longer opens /in/{org}.
func TestInbound(t *testing.T) {
	t.Parallel()
	head := "organisations:\n  - id: demo\n    secret_key: " + secret32 + "\n"
	tests := []struct{ name, yaml, want string }{
		{name: "ErrNoInboundSecret", yaml: head + "    inbound_auth: webio-token\n", want: "organisations[0].inbound_secret: inbound_auth webio-token needs inbound_secret"},
		{name: "ErrSameAsSecretKey", yaml: head + "    inbound_auth: webio-token\n    inbound_secret: " + secret32 + "\n", want: "organisations[0].inbound_secret: must differ from secret_key"},
		{name: "ErrShort", yaml: head + "    inbound_auth: webio-token\n    inbound_secret: short\n", want: "organisations[0].inbound_secret: 5 bytes, need at least 32"},
		{name: "ErrEnvUnset", yaml: head + "    inbound_auth: webio-token\n    inbound_secret: env:PLATFORM\n", want: "environment variable PLATFORM is not set"},
		{name: "ErrSecretWithoutAuth", yaml: head + "    inbound_secret: " + inbound + "\n", want: "organisations[0].inbound_auth: inbound_secret or inbound_issuer is set but inbound_auth is none"},
		{name: "ErrBadAuth", yaml: head + "    inbound_auth: jwt\n", want: `organisations[0].inbound_auth: "jwt": want none or webio-token`},
		{name: "OKWithoutSecretKey", yaml: "organisations:\n  - id: demo\n    inbound_auth: webio-token\n    inbound_secret: " + inbound + "\n"},
		{name: "OK", yaml: head + "    inbound_auth: webio-token\n    inbound_secret: " + inbound + "\n    inbound_issuer: webio\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, err := parse(t, tt.yaml, nil)
			if tt.want != "" {
				if err == nil || !strings.Contains(err.Error(), tt.want) {
					t.Fatalf("got %v, want an error containing %q", err, tt.want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if _, ok := c.Organisations[0].InboundVerify(); !ok {
				t.Fatal("InboundVerify: got false, want the inbound check")
			}
		})
	}

	t.Run("OutboundTokenRefusedInbound", func(t *testing.T) {
		t.Parallel()
		c, err := parse(t, head+"    inbound_auth: webio-token\n    inbound_secret: "+inbound+"\n    inbound_issuer: webio\n", nil)
		if err != nil {
			t.Fatal(err)
		}
		o := c.Organisations[0]
		vc, _ := o.InboundVerify()
		v, err := auth.NewVerifier(vc)
		if err != nil {
			t.Fatal(err)
		}
		// The token the relay mints for its endpoints, as relay/orgs.go does.
		outbound, err := auth.MintWebioToken(o.SecretKey, auth.WebioClaims{Issuer: c.Issuer, Org: o.ID})
		if err != nil {
			t.Fatal(err)
		}
		platform, err := auth.MintWebioToken([]byte(inbound), auth.WebioClaims{Issuer: "webio", Org: o.ID})
		if err != nil {
			t.Fatal(err)
		}
		wrongIssuer, _ := auth.MintWebioToken([]byte(inbound), auth.WebioClaims{Issuer: "sidehook", Org: o.ID})
		for name, tc := range map[string]struct {
			token, want string
		}{
			"ErrOutboundToken": {outbound, "signature mismatch"},
			"ErrWrongIssuer":   {wrongIssuer, `wrong issuer "sidehook", want "webio"`},
			"OKPlatformToken":  {platform, ""},
		} {
			r := httptestRequest(tc.token)
			got := v.Verify(r.Context(), r, nil)
			if (tc.want == "") != (got.Status == auth.StatusValid) || got.Reason != tc.want {
				t.Errorf("%s: got %+v, want reason %q", name, got, tc.want)
			}
		}
	})

	t.Run("OKNoneByDefault", func(t *testing.T) {
		t.Parallel()
		c, err := parse(t, head, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := c.Organisations[0].InboundVerify(); ok || c.Organisations[0].InboundAuth != config.InboundAuthNone {
			t.Fatalf("got %+v, want no inbound check", c.Organisations[0])
		}
	})
}

func TestAdminToken(t *testing.T) {
	t.Parallel()
	tests := []struct{ name, value, want string }{
		{name: "ErrOneByte", value: "x", want: "admin_token: 1 bytes, need at least 16"},
		{name: "ErrFifteen", value: strings.Repeat("a", 15), want: "admin_token: 15 bytes, need at least 16"},
		{name: "ErrEnvUnset", value: "env:ADMIN", want: "admin_token: environment variable ADMIN is not set"},
		{name: "OKSixteen", value: strings.Repeat("a", 16)},
		{name: "OKEnv", value: "env:SET"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, err := parse(t, "admin_token: "+tt.value+"\n"+org, map[string]string{"SET": strings.Repeat("e", 20)})
			if tt.want != "" {
				if err == nil || !strings.Contains(err.Error(), tt.want) {
					t.Fatalf("got %v, want %q", err, tt.want)
				}
				return
			}
			if err != nil || len(c.AdminToken) < 16 {
				t.Fatalf("got %v, %+v; want no error and an admin token of at least 16 bytes", err, c)
			}
		})
	}
}

func TestJitter(t *testing.T) {
	t.Parallel()
	for _, bad := range []string{".nan", ".NaN", ".inf", "-.inf", "-0.1", "1", "1.5", "2"} {
		_, err := parse(t, "retry: {jitter: "+bad+"}\n"+org, nil)
		if err == nil || !strings.Contains(err.Error(), "retry.jitter: ") {
			t.Errorf("jitter %s: got %v, want a retry.jitter error", bad, err)
		}
		_, err = parse(t, org+"    endpoints:\n      - {id: a, url: http://x, retry: {jitter: "+bad+"}}\n", nil)
		if err == nil || !strings.Contains(err.Error(), "organisations[0].endpoints[0].retry.jitter: ") {
			t.Errorf("endpoint jitter %s: got %v, want its key named", bad, err)
		}
	}
	for _, good := range []string{"0", "0.2", "0.999"} {
		c, err := parse(t, "retry: {jitter: "+good+"}\n"+org, nil)
		if err != nil || math.IsNaN(c.Retry.Jitter) {
			t.Errorf("jitter %s: got %v", good, err)
		}
	}
}

func TestTargets(t *testing.T) {
	t.Parallel()
	c, err := parse(t, "allow_targets: [169.254.169.254, hooks.internal]\ndeny_targets: [10.0.0.0/8]\n"+org+
		"    endpoints:\n      - {id: a, url: 'http://169.254.169.254/hook'}\n", nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.AllowTargets) != 2 || len(c.DenyTargets) != 1 {
		t.Fatalf("got allow %v, deny %v; want 2 allowed and 1 denied", c.AllowTargets, c.DenyTargets)
	}
	p, err := target.New(target.Options{Allow: c.AllowTargets, Deny: c.DenyTargets})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.CheckTargets(p); err != nil {
		t.Fatalf("allowed metadata endpoint: got %v", err)
	}

	c, err = parse(t, org+"    endpoints:\n      - {id: a, url: 'http://127.0.0.1:8081/'}\n      - {id: b, url: 'http://169.254.169.254/'}\n", nil)
	if err != nil {
		t.Fatal(err)
	}
	p, err = target.New(target.Options{Self: []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:8080")}})
	if err != nil {
		t.Fatal(err)
	}
	err = c.CheckTargets(p)
	if !errors.Is(err, target.ErrDenied) || !strings.HasPrefix(err.Error(), "organisations[0].endpoints[1].url: ") {
		t.Fatalf("got %v, want endpoints[1] denied", err)
	}

	for _, bad := range []string{"allow_targets: [10.0.0.0/40]\n", "deny_targets: ['not a host']\n", "allow_targets: ['']\n"} {
		if _, err := parse(t, bad+org, nil); err == nil || !strings.Contains(err.Error(), "_targets[0]: ") {
			t.Errorf("%q: got %v, want the rule named", bad, err)
		}
	}
}

// writeCert writes a self-signed certificate and its key as PEM files.
func writeCert(tb testing.TB) (certFile, keyFile string) {
	tb.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "relay"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), DNSNames: []string{"relay"}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		tb.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		tb.Fatal(err)
	}
	dir := tb.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		tb.Fatal(err)
	}
	return certFile, keyFile
}

func TestTLS(t *testing.T) {
	t.Parallel()
	cert, key := writeCert(t)
	otherCert, _ := writeCert(t)
	dir := t.TempDir()
	tests := []struct{ name, yaml, want string }{
		{name: "OKBoth", yaml: "tls_cert: " + cert + "\ntls_key: " + key + "\n"},
		{name: "OKNeither", yaml: ""},
		{name: "ErrCertOnly", yaml: "tls_cert: " + cert + "\n", want: "tls_key: tls_cert is set without it; give both or neither"},
		{name: "ErrKeyOnly", yaml: "tls_key: " + key + "\n", want: "tls_cert: tls_key is set without it"},
		{name: "ErrMissingCert", yaml: "tls_cert: " + filepath.Join(dir, "nope.pem") + "\ntls_key: " + key + "\n", want: "tls_cert: " + filepath.Join(dir, "nope.pem") + ": no such file"},
		{name: "ErrKeyIsDir", yaml: "tls_cert: " + cert + "\ntls_key: " + dir + "\n", want: "tls_key: " + dir + ": is a directory"},
		{name: "ErrMismatch", yaml: "tls_cert: " + otherCert + "\ntls_key: " + key + "\n", want: "tls_cert, tls_key: not a PEM certificate and its private key"},
		{name: "ErrSwapped", yaml: "tls_cert: " + key + "\ntls_key: " + cert + "\n", want: "tls_cert, tls_key: "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, err := parse(t, tt.yaml+org, nil)
			if tt.want != "" {
				if err == nil || !strings.Contains(err.Error(), tt.want) || strings.Contains(err.Error(), "\n") {
					t.Fatalf("got %v, want one line containing %q", err, tt.want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if (c.TLSCert == "") != (tt.yaml == "") {
				t.Fatalf("got cert %q, key %q; want a cert only when TLS is configured", c.TLSCert, c.TLSKey)
			}
		})
	}
}

func TestStandardSecretList(t *testing.T) {
	t.Parallel()
	const a, b = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_YW5vdGhlci1zZWNyZXQtb2YtMjQtYnl0ZXMh"
	for name, yml := range map[string]string{
		"OKOne":        "    standard_secret: " + a + "\n",
		"OKList":       "    standard_secret: [" + a + ", " + b + "]\n",
		"OKListEnv":    "    standard_secret:\n      - " + a + "\n      - env:NEXT\n",
		"OKOneInAList": "    standard_secret: [" + a + "]\n",
	} {
		c, err := parse(t, org+yml, map[string]string{"NEXT": b})
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		want := strings.Count(yml, "whsec_") + strings.Count(yml, "env:")
		if got := len(c.Organisations[0].StandardSecrets); got != want {
			t.Errorf("%s: got %d secrets, want %d", name, got, want)
		}
	}
	_, err := parse(t, org+"    standard_secret: ["+a+", nope]\n", nil)
	if err == nil || !strings.Contains(err.Error(), `organisations[0].standard_secret[1]: standard secret must start with "whsec_"`) {
		t.Errorf("bad second: got %v", err)
	}
	_, err = parse(t, org+"    standard_secret: {a: b}\n", nil)
	if err == nil || !strings.Contains(err.Error(), "organisations[0].standard_secret: want a list") {
		t.Errorf("mapping: got %v", err)
	}

	// Every secret signs: a receiver that knows only the newer one
	// accepts a delivery signed from the list.
	c, err := parse(t, org+"    standard_secret: ["+a+", "+b+"]\n", nil)
	if err != nil {
		t.Fatal(err)
	}
	secrets := c.Organisations[0].StandardSecrets
	header := auth.SignStandardMulti(secrets, "evt_1", time.Unix(1_800_000_000, 0), []byte("{}"))
	if reason := auth.VerifyStandard(secrets[1:], "evt_1", "1800000000", header, []byte("{}"), time.Unix(1_800_000_000, 0), 0); reason != "" {
		t.Fatalf("newer secret alone: got %q, want valid", reason)
	}
}

func httptestRequest(token string) *http.Request {
	r := httptest.NewRequest(http.MethodPost, "/in/demo", strings.NewReader("{}"))
	r.Header.Set("X-Webio-Token", token)
	return r
}
