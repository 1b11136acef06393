package relay_test

import (
	"bufio"
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/sidehook/sidehook/relay"
)

// TestServerErrorsInRelayLog: what net/http reports about a connection (a
// plain HTTP request or a scanner on a TLS port) goes to the relay's log,
// as JSON like every other line, not to the standard library's logger,
// which wrote "2006/01/02 15:04:05 http: TLS handshake error …" into a
// JSON log stream.
func TestServerErrorsInRelayLog(t *testing.T) {
	cfg := orgConfig(t)
	cfg.TLSCert, cfg.TLSKey = writeTestCert(t)
	logs := &lockedBuffer{}
	r := runRelay(t, cfg, relay.Options{Logger: zerolog.New(logs).Level(zerolog.DebugLevel)})

	conn, err := net.Dial("tcp", r.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	if _, err := fmt.Fprintf(conn, "GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	// The server answers a plain request on a TLS port, then logs why.
	_, _ = bufio.NewReader(conn).ReadString('\n')

	eventually(t, 5*time.Second, func() error {
		logs.mu.Lock()
		defer logs.mu.Unlock()
		for _, line := range bytes.Split(logs.b.Bytes(), []byte("\n")) {
			var m map[string]any
			if json.Unmarshal(line, &m) == nil && bytes.Contains(line, []byte("TLS handshake error")) {
				return nil
			}
		}
		return errors.New("no JSON log line about the TLS handshake error")
	})
}

// writeTestCert writes a self-signed certificate for 127.0.0.1 and its key
// as PEM files, returning their paths.
func writeTestCert(tb testing.TB) (cert, key string) {
	tb.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "127.0.0.1"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		tb.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		tb.Fatal(err)
	}
	dir := tb.TempDir()
	cert, key = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(cert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(key, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		tb.Fatal(err)
	}
	return cert, key
}
