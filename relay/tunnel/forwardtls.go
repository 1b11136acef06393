package tunnel

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"
)

// certPool reads the PEM certificates of file, which flag named.
func certPool(flag, file string) (*x509.CertPool, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("read %s file: %w", flag, err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("%s file %s holds no PEM certificate", flag, file)
	}
	return pool, nil
}

// checkForwardTLS refuses ForwardCA and SkipVerify together: one checks
// the local app's certificate against a file, the other checks nothing.
func checkForwardTLS(cfg ClientConfig) error {
	if cfg.ForwardCA != "" && cfg.SkipVerify {
		return errors.New("--forward-ca and --skip-verify: choose one (--forward-ca checks the local app's certificate against FILE, --skip-verify checks nothing)")
	}
	return nil
}

// forwardTLS is the TLS configuration of the requests to the local app:
// nil (the system's roots) unless ForwardCA or SkipVerify says otherwise.
func forwardTLS(cfg ClientConfig) (*tls.Config, error) {
	switch {
	case cfg.ForwardCA != "":
		pool, err := certPool("--forward-ca", cfg.ForwardCA)
		if err != nil {
			return nil, err
		}
		return &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: pool}, nil
	case cfg.SkipVerify:
		// The developer's own app on their own machine, asked for by
		// name (--skip-verify, as Stripe CLI's): this config carries
		// only the forwards, never the relay's connection.
		return &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: true}, nil
	}
	return nil, nil
}

// describeTLSError words a failed check of the local app's certificate as
// what is wrong and the flag that fixes it; ok is false for any other
// error. Go's x509 text is for Go programmers, and it names neither.
func (c *Client) describeTLSError(err error, target string) (text string, ok bool) {
	const skip = "or skip the check with --skip-verify"
	var (
		unknown x509.UnknownAuthorityError
		invalid x509.CertificateInvalidError
		host    x509.HostnameError
		plain   tls.RecordHeaderError
	)
	switch {
	case errors.As(err, &unknown):
		issuer := "an unknown authority"
		if unknown.Cert != nil {
			issuer = fmt.Sprintf("%q", certName(unknown.Cert.Issuer.CommonName, unknown.Cert.Issuer.String()))
		}
		if c.cfg.ForwardCA != "" {
			return fmt.Sprintf("the local app's TLS certificate, issued by %s, is not signed by the CA in --forward-ca %s: give the CA that signed it, %s",
				issuer, c.cfg.ForwardCA, skip), true
		}
		var b strings.Builder
		if unknown.Cert != nil && string(unknown.Cert.RawIssuer) == string(unknown.Cert.RawSubject) {
			fmt.Fprintf(&b, "the local app's TLS certificate is not trusted: it is self-signed (%s): trust it with --forward-ca FILE (the certificate's PEM), %s", issuer, skip)
		} else {
			fmt.Fprintf(&b, "the local app's TLS certificate is not trusted: it is issued by %s: trust that CA with --forward-ca FILE (mkcert's is $(mkcert -CAROOT)/rootCA.pem), %s", issuer, skip)
		}
		if c.cfg.CA != "" {
			b.WriteString("; --ca trusts the relay's certificate only")
		}
		return b.String(), true
	case errors.As(err, &host):
		names := certHosts(host.Certificate)
		if names == "" {
			return fmt.Sprintf("the local app's TLS certificate names no host (it has no subject alternative name), so it is valid for none: reissue it for %s, %s", host.Host, skip), true
		}
		return fmt.Sprintf("the local app's TLS certificate is for %s, not %s: forward to a host it names, %s", names, host.Host, skip), true
	case errors.As(err, &invalid):
		what := "the local app's TLS certificate"
		if invalid.Cert != nil && invalid.Cert.IsCA {
			what = fmt.Sprintf("the local app's CA certificate %q", certName(invalid.Cert.Subject.CommonName, invalid.Cert.Subject.String()))
		}
		if invalid.Reason == x509.Expired && invalid.Cert != nil {
			if time.Now().Before(invalid.Cert.NotBefore) {
				return fmt.Sprintf("%s is not valid before %s (is the clock right?): %s", what, invalid.Cert.NotBefore.UTC().Format(time.RFC3339), strings.TrimPrefix(skip, "or ")), true
			}
			return fmt.Sprintf("%s expired at %s: renew it, %s", what, invalid.Cert.NotAfter.UTC().Format(time.RFC3339), skip), true
		}
		return fmt.Sprintf("%s is not valid (%s): reissue it, %s", what, strings.TrimPrefix(invalid.Error(), "x509: "), skip), true
	case errors.Is(err, http.ErrSchemeMismatch) || errors.As(err, &plain):
		text := "the local app does not speak TLS"
		if u, perr := url.Parse(target); perr == nil && c.forward != nil && u.Host == c.forward.Host {
			fw := *c.forward
			fw.Scheme = "http"
			text += fmt.Sprintf(": is it --forward %s?", fw.Redacted())
		}
		return text, true
	}
	return "", false
}

// certName is a certificate's common name, or its whole name when it has
// none.
func certName(cn, full string) string {
	if cn != "" {
		return cn
	}
	return full
}

// certHosts lists the first few hosts cert is valid for.
func certHosts(cert *x509.Certificate) string {
	if cert == nil {
		return ""
	}
	names := append([]string(nil), cert.DNSNames...)
	for _, ip := range cert.IPAddresses {
		names = append(names, ip.String())
	}
	const show = 4
	if len(names) > show {
		return strings.Join(names[:show], ", ") + fmt.Sprintf(" and %d more", len(names)-show)
	}
	return strings.Join(names, ", ")
}
