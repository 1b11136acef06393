package tunnel_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sidehook/sidehook/relay/tunnel"
)

// writeCertPEM writes cert's PEM to a file, as a developer points
// --forward-ca at the certificate a local app serves.
func writeCertPEM(tb testing.TB, cert *x509.Certificate) string {
	tb.Helper()
	file := filepath.Join(tb.TempDir(), "app.pem")
	if err := os.WriteFile(file, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw}), 0o600); err != nil {
		tb.Fatal(err)
	}
	return file
}

// TestForwardTLS: a local app serving HTTPS with a certificate of its own
// CA (mkcert's) or a self-signed one is reached when --forward-ca trusts
// it or --skip-verify skips the check; otherwise each delivery fails with
// a line naming the flag that fixes it, not Go's x509 error, on the
// terminal, in the inspector and in the relay's attempt.
func TestForwardTLS(t *testing.T) {
	caFile, cert := testCA(t)
	otherCA, _ := testCA(t)
	hostCA, hostCert := testCAWith(t, func(c *x509.Certificate) { c.IPAddresses, c.DNSNames = nil, []string{"app.test"} })
	oldCA, oldCert := testCAWith(t, func(c *x509.Certificate) { c.NotAfter = time.Now().Add(-time.Minute) })
	tests := []struct {
		name string
		// app starts the local app and returns its URL and the file
		// --forward-ca names, if any.
		app  func(t *testing.T) (url, forwardCA string)
		edit func(*tunnel.ClientConfig)
		// want are the words of the delivery's error; none means 200.
		want []string
	}{
		{"TrustedCA", func(t *testing.T) (string, string) { return newTLSApp(t, &cert).URL, caFile }, nil, nil},
		{"SelfSigned", func(t *testing.T) (string, string) {
			a := newTLSApp(t, nil)
			return a.URL, writeCertPEM(t, a.Certificate())
		}, nil, nil},
		{"SkipVerify", func(t *testing.T) (string, string) { return newTLSApp(t, &cert).URL, "" },
			func(c *tunnel.ClientConfig) { c.SkipVerify = true }, nil},
		{"SkipVerifySelfSigned", func(t *testing.T) (string, string) { return newTLSApp(t, nil).URL, "" },
			func(c *tunnel.ClientConfig) { c.SkipVerify = true }, nil},
		{"Untrusted", func(t *testing.T) (string, string) { return newTLSApp(t, &cert).URL, "" }, nil,
			[]string{"certificate is not trusted", "--forward-ca FILE", "--skip-verify"}},
		{"UntrustedSelfSigned", func(t *testing.T) (string, string) { return newTLSApp(t, nil).URL, "" }, nil,
			[]string{"certificate is not trusted: it is self-signed", "trust it with --forward-ca FILE", "--skip-verify"}},
		// --ca is the relay's: the developer who tried it for the app is
		// told so.
		{"RelayCAOnly", func(t *testing.T) (string, string) { return newTLSApp(t, &cert).URL, "" },
			func(c *tunnel.ClientConfig) { c.CA = caFile },
			[]string{"--forward-ca FILE", "--ca trusts the relay's certificate only"}},
		{"OtherCA", func(t *testing.T) (string, string) { return newTLSApp(t, &cert).URL, otherCA }, nil,
			[]string{"not signed by the CA in --forward-ca " + otherCA, "--skip-verify"}},
		{"WrongHost", func(t *testing.T) (string, string) { return newTLSApp(t, &hostCert).URL, hostCA }, nil,
			[]string{"certificate is for app.test, not 127.0.0.1", "--skip-verify"}},
		{"Expired", func(t *testing.T) (string, string) { return newTLSApp(t, &oldCert).URL, oldCA }, nil,
			[]string{"certificate expired", "--skip-verify"}},
		{"PlainApp", func(t *testing.T) (string, string) {
			return strings.Replace(newApp(t).URL, "http://", "https://", 1), ""
		}, nil, []string{"does not speak TLS", "--forward http://127.0.0.1:"}},
		// The other way round: an app serving HTTPS that hangs up on a
		// plain request (most do; Go's answers 400) is not "did it crash?".
		{"TLSApp", func(t *testing.T) (string, string) {
			return strings.Replace(hangUpTLSApp(t, cert), "https://", "http://", 1), ""
		}, nil, []string{"the app speaks TLS", "--forward https://127.0.0.1:"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fr := newFakeRelay(t, fastServer())
			url, forwardCA := tt.app(t)
			cfg := clientConfig(fr.URL, url)
			cfg.ForwardCA = forwardCA
			cfg.Inspect = "127.0.0.1:0"
			if tt.edit != nil {
				tt.edit(&cfg)
			}
			rc := startClient(t, cfg)
			res, err := fr.send(context.Background(), "/", "payment", []byte("{}"))
			rc.out.wait(t, "the delivery line", func() bool { return len(rc.out.jsonLines(t, "delivery")) == 1 })
			line := rc.out.jsonLines(t, "delivery")[0]
			var list inspectedList
			getJSON(t, inspectorBase(t, rc)+"/_sidehook/requests", &list)
			if len(list.Requests) != 1 {
				t.Fatalf("inspector: got %d requests, want 1", len(list.Requests))
			}
			shown := list.Requests[0].Response.Error
			if tt.want == nil {
				if err != nil || res.Status != http.StatusOK {
					t.Fatalf("Send: got %+v %v, want 200", res, err)
				}
				if line["error"] != nil || shown != "" {
					t.Errorf("got line error %v, inspector error %q, want none", line["error"], shown)
				}
				return
			}
			if err == nil {
				t.Fatalf("Send: got %+v, want the forward's error", res)
			}
			lineErr, _ := line["error"].(string)
			for what, got := range map[string]string{"relay's attempt": err.Error(), "delivery line": lineErr, "inspector": shown} {
				for _, w := range tt.want {
					if !strings.Contains(got, w) {
						t.Errorf("%s: got %q, want it to say %q", what, got, w)
					}
				}
				// Go's words are for Go programmers: the line says what
				// is wrong and which flag fixes it.
				if strings.Contains(got, "x509:") || strings.Contains(got, "tls:") {
					t.Errorf("%s: got %q, want no raw Go TLS error", what, got)
				}
			}
		})
	}
}

// hangUpTLSApp serves TLS with cert and closes every connection after
// its handshake, as an HTTPS app does one that sends it plain HTTP, and
// returns its https:// URL.
func hangUpTLSApp(tb testing.TB, cert tls.Certificate) string {
	tb.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { ln.Close() })
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer conn.Close()
				conn.SetDeadline(time.Now().Add(5 * time.Second))
				conn.(*tls.Conn).Handshake()
			}()
		}
	}()
	return "https://" + ln.Addr().String()
}

// TestSkipVerifyKeepsRelayChecked: --skip-verify is the local app's only:
// a relay whose certificate is not trusted is still refused, and the
// error says that --ca, not --skip-verify, trusts it.
func TestSkipVerifyKeepsRelayChecked(t *testing.T) {
	fr, _ := newTLSRelay(t)
	cfg := clientConfig(fr.URL, "https://127.0.0.1:1")
	cfg.SkipVerify = true
	err := runUntilGivesUp(t, cfg)
	if err == nil || !strings.Contains(err.Error(), "--ca FILE") || !strings.Contains(err.Error(), "--skip-verify skips the local app's check only") {
		t.Fatalf("Run against an untrusted relay with SkipVerify: got %v, want the relay refused, naming --ca", err)
	}
}

// TestForwardCAKeepsRelayChecked: --forward-ca trusts the app, not the
// relay, even when it holds the relay's CA.
func TestForwardCAKeepsRelayChecked(t *testing.T) {
	fr, caFile := newTLSRelay(t)
	cfg := clientConfig(fr.URL, "https://127.0.0.1:1")
	cfg.ForwardCA = caFile
	if err := runUntilGivesUp(t, cfg); err == nil || !strings.Contains(err.Error(), "--ca FILE") ||
		!strings.Contains(err.Error(), "--forward-ca trusts the local app's certificate only") {
		t.Fatalf("Run against a relay trusted by ForwardCA only: got %v, want the relay refused, naming --ca", err)
	}
}
