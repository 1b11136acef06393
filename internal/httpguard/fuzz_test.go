package httpguard_test

import (
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"

	"github.com/sidehook/sidehook/internal/httpguard"
)

// FuzzCheck throws arbitrary Host, Origin, Sec-Fetch-Site and content
// types at a loopback guard: it must not panic, must not serve a Host
// that could name another machine, and must never let a browser's
// cross-site state change through.
func FuzzCheck(f *testing.F) {
	for _, s := range [][4]string{
		{"localhost:8081", "http://localhost:8081", "same-origin", "application/json"},
		{"attacker.example", "https://attacker.example", "cross-site", "text/plain"},
		{"127.0.0.1.nip.io", "", "", ""},
		{"[::ffff:127.0.0.1]:80", "null", "same-site", "application/json;x"},
		{"LOCALHOST.", "http://LOCALHOST.", "none", "application/vnd.api+json"},
		{"[fe80::1%lo]:1", "", "", ""},
	} {
		f.Add(s[0], s[1], s[2], s[3], true)
	}
	g, err := httpguard.New(httpguard.Options{Loopback: true})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, host, origin, site, ct string, post bool) {
		r := httptest.NewRequest(http.MethodGet, "/_sidehook/requests", nil)
		if post {
			r = httptest.NewRequest(http.MethodPost, "/_sidehook/reset", strings.NewReader("{}"))
		}
		r.Host = host
		r.Header["Origin"] = []string{origin}
		r.Header["Sec-Fetch-Site"] = []string{site}
		r.Header["Content-Type"] = []string{ct}
		if g.Check(r) != nil {
			return
		}
		if host != "" && !loopbackName(host) {
			t.Fatalf("served Host %q on a loopback listener", host)
		}
		if post && (site == "cross-site" || site == "same-site") {
			t.Fatalf("served a %s POST", site)
		}
	})
}

func loopbackName(h string) bool {
	if host, _, err := net.SplitHostPort(h); err == nil {
		h = host
	}
	h = strings.ToLower(strings.TrimSuffix(strings.Trim(strings.TrimSpace(h), "[]"), "."))
	if h == "localhost" || strings.HasSuffix(h, ".localhost") {
		return true
	}
	a, err := netip.ParseAddr(h)
	return err == nil && a.Unmap().IsLoopback()
}
