package target_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/sidehook/sidehook/internal/target"
)

func newPolicy(tb testing.TB, o target.Options) *target.Policy {
	tb.Helper()
	if o.InterfaceAddrs == nil {
		o.InterfaceAddrs = func() ([]net.Addr, error) {
			return []net.Addr{&net.IPNet{IP: net.ParseIP("192.0.2.10"), Mask: net.CIDRMask(24, 32)}}, nil
		}
	}
	p, err := target.New(o)
	if err != nil {
		tb.Fatalf("New: %v", err)
	}
	return p
}

func TestCheckURL(t *testing.T) {
	t.Parallel()
	self := []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:8080"), netip.MustParseAddrPort("[::]:9090")}
	tests := []struct {
		name  string
		opts  target.Options
		url   string
		want  string // substring of the reason; "" allowed
		other bool   // an error that is not a denial (bad URL)
	}{
		{name: "OKPublic", url: "https://hooks.example.com/in"},
		{name: "OKLoopbackReceiver", url: "http://127.0.0.1:8081/webhooks"},
		{name: "OKLocalhostReceiver", url: "http://localhost:8081/webhooks"},
		{name: "OKPrivateNetwork", url: "http://10.1.2.3/hook"},
		{name: "OKTunnel", url: "tunnel://laptop/hooks"},
		{name: "ErrMetadata", url: "http://169.254.169.254/latest/meta-data/", want: "link-local"},
		{name: "ErrMetadataReasonSaysHowToAllow", url: "http://169.254.169.254/", want: "--allow-target 169.254.169.254"},
		{name: "ErrLinkLocalV6", url: "http://[fe80::1%25eth0]:80/", want: "link-local"},
		{name: "ErrMappedMetadata", url: "http://[::ffff:169.254.169.254]/", want: "link-local"},
		{name: "ErrNAT64Metadata", url: "http://[64:ff9b::a9fe:a9fe]/", want: "link-local"},
		{name: "ErrAWSMetadataV6", url: "http://[fd00:ec2::254]/", want: "metadata"},
		{name: "ErrSelf", url: "http://127.0.0.1:8080/v1/events", want: "own listener"},
		{name: "ErrSelfByLocalhost", url: "http://localhost:8080/v1/events", want: "own listener"},
		{name: "ErrSelfUnspecified", url: "http://0.0.0.0:8080/", want: "own listener"},
		{name: "ErrSelfWildcardLoopback", url: "http://[::1]:9090/", want: "own listener"},
		{name: "ErrSelfWildcardInterface", url: "http://192.0.2.10:9090/", want: "own listener"},
		{name: "OKSelfWildcardOtherHost", url: "http://192.0.2.11:9090/"},
		{name: "OKOtherPortOnLoopback", url: "http://127.0.0.1:8081/"},
		{name: "OKAllowOverridesLinkLocal", opts: target.Options{Allow: []string{"169.254.169.254"}}, url: "http://169.254.169.254/"},
		{name: "ErrAllowIsExact", opts: target.Options{Allow: []string{"169.254.169.254"}}, url: "http://169.254.169.253/", want: "link-local"},
		{name: "OKAllowCIDROverridesSelf", opts: target.Options{Allow: []string{"127.0.0.0/8"}}, url: "http://127.0.0.1:8080/"},
		{name: "ErrDenyCIDR", opts: target.Options{Deny: []string{"10.0.0.0/8"}}, url: "http://10.1.2.3/", want: "deny rule 10.0.0.0/8"},
		{name: "OKMoreSpecificAllowWins", opts: target.Options{Deny: []string{"10.0.0.0/8"}, Allow: []string{"10.1.0.0/16"}}, url: "http://10.1.2.3/"},
		{name: "ErrMoreSpecificDenyWins", opts: target.Options{Deny: []string{"10.1.0.0/16"}, Allow: []string{"10.0.0.0/8"}}, url: "http://10.1.2.3/", want: "deny rule 10.1.0.0/16"},
		{name: "ErrDenyWinsTie", opts: target.Options{Deny: []string{"10.0.0.0/8"}, Allow: []string{"10.0.0.0/8"}}, url: "http://10.1.2.3/", want: "deny rule"},
		{name: "ErrDenyName", opts: target.Options{Deny: []string{"internal.example.com"}}, url: "https://INTERNAL.example.com./x", want: "deny rule internal.example.com"},
		{name: "ErrDenyWildcard", opts: target.Options{Deny: []string{"*.corp.example"}}, url: "https://a.b.corp.example/", want: "deny rule *.corp.example"},
		{name: "OKWildcardNotApex", opts: target.Options{Deny: []string{"*.corp.example"}}, url: "https://corp.example/"},
		{name: "OKExactNameBeatsWildcard", opts: target.Options{Deny: []string{"*.corp.example"}, Allow: []string{"hooks.corp.example"}}, url: "https://hooks.corp.example/"},
		{name: "OKAllowLocalhostName", opts: target.Options{Allow: []string{"localhost"}}, url: "http://localhost:8080/"},
		{name: "ErrScheme", url: "ftp://example.com/", other: true},
		{name: "ErrNoHost", url: "http:///x", other: true},
		{name: "ErrNotAURL", url: "http://[::1", other: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			o := tt.opts
			o.Self = self
			err := newPolicy(t, o).CheckURL(tt.url)
			switch {
			case tt.other:
				if err == nil || errors.Is(err, target.ErrDenied) {
					t.Fatalf("got %v, want an error that is not a denial", err)
				}
			case tt.want == "":
				if err != nil {
					t.Fatalf("got %v, want allowed", err)
				}
			default:
				if !errors.Is(err, target.ErrDenied) || !strings.Contains(err.Error(), tt.want) {
					t.Fatalf("got %v, want a denial containing %q", err, tt.want)
				}
			}
		})
	}
}

func TestNew_BadRules(t *testing.T) {
	t.Parallel()
	for _, rule := range []string{"", "10.0.0.0/33", "not a host", "-bad.example", "a..b", "http://x", "10.0.0.1:80"} {
		if _, err := target.New(target.Options{Allow: []string{rule}}); err == nil {
			t.Errorf("%q: got nil error, want one", rule)
		}
	}
	for _, rule := range []string{"10.0.0.0/8", "::1", "[fe80::1]", "fe80::/10", "hooks.example.com", "*.example.com", "localhost", "::ffff:10.0.0.0/104"} {
		if _, err := target.ParseRule(rule); err != nil {
			t.Errorf("%q: got %v, want valid", rule, err)
		}
	}
}

func TestNew_InterfaceListingFailsClosed(t *testing.T) {
	t.Parallel()
	p := newPolicy(t, target.Options{
		Self:           []netip.AddrPort{netip.MustParseAddrPort("0.0.0.0:8080")},
		InterfaceAddrs: func() ([]net.Addr, error) { return nil, errors.New("no netlink") },
	})
	if err := p.CheckAddr(netip.MustParseAddrPort("192.0.2.99:8080")); !errors.Is(err, target.ErrDenied) {
		t.Fatalf("got %v, want denied when the machine's addresses cannot be listed", err)
	}
	if err := p.CheckAddr(netip.MustParseAddrPort("192.0.2.99:8081")); err != nil {
		t.Fatalf("other port: got %v, want allowed", err)
	}
}

// startServer serves 200 on a loopback port and returns its address.
func startServer(t *testing.T) netip.AddrPort {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	t.Cleanup(srv.Close)
	return netip.MustParseAddrPort(srv.Listener.Addr().String())
}

// TestDialContext checks at dial time, after resolution: "localhost" is
// not an address CheckAddr could see before, yet the connection to the
// denied listener it resolves to is refused.
func TestDialContext(t *testing.T) {
	t.Parallel()
	self := startServer(t)
	hostport := func(host string) string { return net.JoinHostPort(host, strconv.Itoa(int(self.Port()))) }
	tests := []struct {
		name    string
		opts    target.Options
		address string
		denied  bool
	}{
		{name: "ErrResolvedToSelf", opts: target.Options{Self: []netip.AddrPort{self}}, address: hostport("localhost"), denied: true},
		{name: "ErrAddressSelf", opts: target.Options{Self: []netip.AddrPort{self}}, address: self.String(), denied: true},
		{name: "ErrDenyName", opts: target.Options{Deny: []string{"localhost"}}, address: hostport("localhost"), denied: true},
		{name: "ErrDenyCIDR", opts: target.Options{Deny: []string{"127.0.0.0/8"}}, address: self.String(), denied: true},
		{name: "OKAllowName", opts: target.Options{Self: []netip.AddrPort{self}, Allow: []string{"localhost"}}, address: hostport("localhost")},
		{name: "OKNotSelf", opts: target.Options{}, address: hostport("localhost")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dial := newPolicy(t, tt.opts).DialContext(&net.Dialer{})
			conn, err := dial(context.Background(), "tcp4", tt.address)
			if conn != nil {
				conn.Close()
			}
			if tt.denied != errors.Is(err, target.ErrDenied) || (!tt.denied && err != nil) {
				t.Fatalf("got %v, want denied %v", err, tt.denied)
			}
		})
	}
}

// TestDialContext_HTTPClient is the wiring the relay uses: a transport
// whose dials go through the policy refuses a URL CheckURL could not judge.
func TestDialContext_HTTPClient(t *testing.T) {
	t.Parallel()
	self := startServer(t)
	p := newPolicy(t, target.Options{Self: []netip.AddrPort{self}})
	client := &http.Client{Transport: &http.Transport{Proxy: nil, DialContext: p.DialContext(&net.Dialer{})}}
	_, port, _ := net.SplitHostPort(self.String())
	resp, err := client.Get("http://localhost:" + port + "/")
	if resp != nil {
		resp.Body.Close()
	}
	if !errors.Is(err, target.ErrDenied) {
		t.Fatalf("got %v, want a denial", err)
	}
	var de *target.DeniedError
	if !errors.As(err, &de) || de.Reason != "it is this relay's own listener" || !strings.HasPrefix(de.Target, "127.0.0.1:") {
		t.Fatalf("got %#v, want the own-listener reason on 127.0.0.1", de)
	}
}

func TestDialContext_ChainsBaseControl(t *testing.T) {
	t.Parallel()
	srv := startServer(t)
	called := make(chan string, 1)
	base := &net.Dialer{}
	base.Control = func(network, address string, _ syscall.RawConn) error {
		called <- address
		return nil
	}
	conn, err := newPolicy(t, target.Options{}).DialContext(base)(context.Background(), "tcp", srv.String())
	if err != nil {
		t.Fatal(err)
	}
	conn.Close()
	if got := <-called; got != srv.String() {
		t.Fatalf("base Control saw %q, want %q", got, srv.String())
	}
}

func FuzzCheckURL(f *testing.F) {
	for _, s := range []string{"http://169.254.169.254/", "http://[::ffff:a9fe:a9fe]/", "http://[64:ff9b::169.254.169.254]/", "https://example.com:443/x?y#z",
		"http://0x7f.1/", "http://2852039166/", "tunnel://x", "http://[fe80::1%25lo]/", "http://a:b@c/"} {
		f.Add(s)
	}
	p, err := target.New(target.Options{Self: []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:8080")}})
	if err != nil {
		f.Fatal(err)
	}
	link := netip.MustParsePrefix("169.254.0.0/16")
	f.Fuzz(func(t *testing.T, raw string) {
		err := p.CheckURL(raw)
		if err != nil {
			return
		}
		// Whatever CheckURL lets through with a literal address must not
		// be link-local once read the way a dialer reads it.
		u, perr := url.Parse(raw)
		if perr != nil {
			return
		}
		if a, e := netip.ParseAddr(u.Hostname()); e == nil {
			a = a.Unmap()
			if link.Contains(a) || a.IsLinkLocalUnicast() {
				t.Fatalf("%q allowed, but %s is link-local", raw, a)
			}
		}
	})
}
