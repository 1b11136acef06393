package tunnel_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sidehook/sidehook/receiver/receivertest"
	"github.com/sidehook/sidehook/relay/config"
	"github.com/sidehook/sidehook/relay/tunnel"
)

// testCA makes a certificate authority and a server certificate it signed
// for 127.0.0.1, and writes the CA's PEM to a file.
func testCA(tb testing.TB) (caFile string, cert tls.Certificate) {
	tb.Helper()
	return testCAWith(tb, nil)
}

// testCAWith is testCA with edit applied to the server certificate's
// template first (other names, an expiry), as a local app's mkcert
// certificate may differ from the URL it is reached at.
func testCAWith(tb testing.TB, edit func(*x509.Certificate)) (caFile string, cert tls.Certificate) {
	tb.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "sidehook test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		tb.Fatal(err)
	}
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		tb.Fatal(err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	leafTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "relay"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, DNSNames: []string{"localhost"},
	}
	if edit != nil {
		edit(leafTmpl)
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, leafTmpl, caCert, &key.PublicKey, caKey)
	if err != nil {
		tb.Fatal(err)
	}
	caFile = filepath.Join(tb.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), 0o600); err != nil {
		tb.Fatal(err)
	}
	return caFile, tls.Certificate{Certificate: [][]byte{leafDER}, PrivateKey: key}
}

// newTLSRelay serves a fake relay over TLS, offering alpn (none: Go's
// default) as a proxy in front of a relay may.
func newTLSRelay(tb testing.TB, alpn ...string) (*fakeRelay, string) {
	tb.Helper()
	caFile, cert := testCA(tb)
	fr := newFakeRelayHandler(tb, fastServer())
	fr.Server = httptest.NewUnstartedServer(fr.handler())
	fr.Server.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: alpn}
	fr.Server.EnableHTTP2 = slices.Contains(alpn, "h2")
	// The untrusted-CA test makes handshakes fail on purpose.
	fr.Server.Config.ErrorLog = log.New(io.Discard, "", 0)
	fr.Server.StartTLS()
	tb.Cleanup(fr.Close)
	return fr, caFile
}

func TestTLSWithCA(t *testing.T) {
	fr, caFile := newTLSRelay(t)
	a := newApp(t)
	cfg := clientConfig(fr.URL, a.URL)
	cfg.CA = caFile
	rc := startClient(t, cfg)
	ready := rc.out.jsonLines(t, "ready")[0]
	if want := fr.URL + "/in/" + testOrg; ready["public_url"] != want || !strings.HasPrefix(want, "https://") {
		t.Errorf("public_url: got %v, want %s", ready["public_url"], want)
	}
	if eps, _ := ready["endpoints"].([]any); len(eps) != 1 {
		t.Errorf("endpoints over TLS: got %v, want the tunnel's endpoint (warning %v)", ready["endpoints"], ready["warning"])
	}
	if _, err := fr.send(context.Background(), "/", "payment", []byte("{}")); err != nil {
		t.Fatalf("Send over wss: %v", err)
	}
}

// TestTLSReconnectBehindHTTP2Proxy: a relay behind a proxy that speaks
// HTTP/2 (nginx, Caddy, a cloud load balancer) takes the websocket's
// HTTP/1.1 upgrade on every dial, not only the first: the client's API
// calls must not make its later dials offer h2.
func TestTLSReconnectBehindHTTP2Proxy(t *testing.T) {
	fr, caFile := newTLSRelay(t, "h2", "http/1.1")
	a := newApp(t)
	cfg := clientConfig(fr.URL, a.URL)
	cfg.CA = caFile
	rc := startClient(t, cfg)
	fr.waitConnected(t, 1)
	if eps, _ := rc.out.jsonLines(t, "ready")[0]["endpoints"].([]any); len(eps) != 1 {
		t.Fatalf("endpoints over HTTP/2: got %v, want the tunnel's endpoint", rc.out.jsonLines(t, "ready")[0])
	}
	old := fr.srv.Swap(tunnel.NewServer(fastServer()))
	if err := old.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	rc.out.wait(t, "a second ready line", func() bool { return len(rc.out.jsonLines(t, "ready")) == 2 })
	if _, err := fr.send(context.Background(), "/", "payment", []byte("{}")); err != nil {
		t.Fatalf("Send after the reconnect: %v", err)
	}
}

func TestTLSUntrusted(t *testing.T) {
	fr, _ := newTLSRelay(t)
	err := runUntilGivesUp(t, clientConfig(fr.URL, "http://127.0.0.1:1"))
	if err == nil || !strings.Contains(err.Error(), "not trusted") || !strings.Contains(err.Error(), "--ca") {
		t.Fatalf("Run against an unknown CA: got %v, want an error saying to pass --ca", err)
	}
}

func TestTLSToPlainRelay(t *testing.T) {
	// https:// for a relay that serves plain HTTP: retrying will not help.
	fr := newFakeRelay(t, fastServer())
	err := runUntilGivesUp(t, clientConfig(strings.Replace(fr.URL, "http://", "https://", 1), "http://127.0.0.1:1"))
	if err == nil || !strings.Contains(err.Error(), "does not speak TLS") || !strings.Contains(err.Error(), "http://") {
		t.Errorf("got %v, want an error saying the relay does not speak TLS", err)
	}
}

func TestBadCAFile(t *testing.T) {
	fr, _ := newTLSRelay(t)
	bad := filepath.Join(t.TempDir(), "bad.pem")
	os.WriteFile(bad, []byte("not a certificate"), 0o600)
	for name, file := range map[string]string{"Missing": filepath.Join(t.TempDir(), "none.pem"), "NotPEM": bad} {
		t.Run(name, func(t *testing.T) {
			cfg := clientConfig(fr.URL, "http://127.0.0.1:1")
			cfg.CA = file
			// Refused by NewClient, as a mistake in the command, not
			// found by Run.
			if _, err := tunnel.NewClient(cfg); err == nil || !strings.Contains(err.Error(), "--ca file") {
				t.Errorf("got %v, want an error naming the --ca file", err)
			}
		})
	}
}

// TestRelayServesTLS: a relay with tls_cert and tls_key serves HTTPS; a
// tunnel client that trusts its CA (--ca) connects over wss and the
// deliveries reach the local app with valid signatures.
func TestRelayServesTLS(t *testing.T) {
	caFile, cert := testCA(t)
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	keyDER, err := x509.MarshalPKCS8PrivateKey(cert.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Certificate[0]}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	rr := newRealRelay(t, []string{"50ms"}, func(f *config.File) { f.TLSCert, f.TLSKey = certFile, keyFile })
	if !strings.HasPrefix(rr.URL(), "https://") {
		t.Fatalf("relay URL %s, want https", rr.URL())
	}
	caPEM, err := os.ReadFile(caFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	rr.client = &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}

	app := receiverApp(t)
	cfg := clientConfig(rr.URL(), app.URL)
	cfg.CA = caFile
	startClient(t, cfg)
	rr.post(t, "payment", 2)
	for _, c := range app.Expect(receivertest.Filter{Event: "payment"}, 2, 10*time.Second) {
		if c.Verdict.Status != "valid" {
			t.Errorf("capture %s: verdict %+v, want valid", c.ID, c.Verdict)
		}
	}
}
