// Package target decides which outbound targets the relay may connect to:
// endpoint URLs and the `to` of a replay. Without it, anyone who can add an
// endpoint or ask for a replay can make the relay fetch a cloud metadata
// service (169.254.169.254) or call its own API, with the organisation's
// credentials attached.
//
// A Policy answers twice. CheckURL looks at a URL before anything is sent,
// so an API can answer 400 with a clear reason. DialContext (or Control)
// checks the address a connection is actually about to reach, after name
// resolution, so a host name whose DNS answer changes between the two
// checks (DNS rebinding) cannot get past it.
//
// By default link-local addresses (169.254.0.0/16 and fe80::/10, where
// cloud metadata services answer), two known metadata addresses outside
// them, and the relay's own listen addresses are denied; everything else is
// allowed. Allow and deny rules, each a CIDR, an IP or a host name
// ("*.example.com" for any name under it), change that: the most specific
// rule that matches decides (a host name over any CIDR, a longer prefix
// over a shorter one, deny over allow between equals), and any rule beats
// the defaults.
package target

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strings"
	"syscall"
)

// ErrDenied matches (errors.Is) every refusal of a Policy.
var ErrDenied = errors.New("target denied")

// DeniedError is a refused target and why.
type DeniedError struct {
	Target string // host:port or address as checked
	Reason string
}

func (e *DeniedError) Error() string {
	return "target " + e.Target + " is not allowed: " + e.Reason
}

// Is makes errors.Is(err, ErrDenied) true.
func (e *DeniedError) Is(target error) bool { return target == ErrDenied }

// Options configure a Policy.
type Options struct {
	// Allow and Deny are rules: a CIDR ("10.0.0.0/8"), an IP, or a host
	// name ("hooks.example.com", "*.internal.example").
	Allow, Deny []string
	// Self are the relay's own listen addresses, as bound (a listener on
	// 0.0.0.0 or [::] stands for every local address on its port).
	Self []netip.AddrPort
	// InterfaceAddrs lists the machine's addresses, for Self entries bound
	// to an unspecified address; net.InterfaceAddrs when nil.
	InterfaceAddrs func() ([]net.Addr, error)
}

// Policy is an allow/deny decision for outbound targets. It is immutable
// and safe for concurrent use.
type Policy struct {
	prefixes []prefixRule
	names    []nameRule
	self     []netip.AddrPort
	ifaddrs  func() ([]net.Addr, error)
}

type prefixRule struct {
	prefix netip.Prefix
	allow  bool
	text   string
}

type nameRule struct {
	name     string // lower case, without "*."
	wildcard bool   // "*.name": any name under it, not name itself
	allow    bool
	text     string
}

// defaultDeny are denied unless a rule says otherwise.
var defaultDeny = []struct {
	prefix netip.Prefix
	reason string
}{
	{netip.MustParsePrefix("169.254.0.0/16"), "it is link-local, where cloud metadata services answer"},
	{netip.MustParsePrefix("fe80::/10"), "it is link-local, where cloud metadata services answer"},
	// AWS's metadata service over IPv6 and Alibaba Cloud's are outside the
	// link-local ranges.
	{netip.MustParsePrefix("fd00:ec2::254/128"), "it is a cloud metadata address"},
	{netip.MustParsePrefix("100.100.100.200/32"), "it is a cloud metadata address"},
}

// nat64 is the well-known NAT64 prefix (RFC 6052): an address in it
// reaches the IPv4 address in its last 32 bits.
var nat64 = netip.MustParsePrefix("64:ff9b::/96")

// New checks the rules and builds a Policy. It does no I/O.
func New(o Options) (*Policy, error) {
	p := &Policy{self: o.Self, ifaddrs: o.InterfaceAddrs}
	if p.ifaddrs == nil {
		p.ifaddrs = net.InterfaceAddrs
	}
	for _, set := range []struct {
		rules []string
		allow bool
		name  string
	}{{o.Allow, true, "allow"}, {o.Deny, false, "deny"}} {
		for _, s := range set.rules {
			r, err := ParseRule(s)
			if err != nil {
				return nil, fmt.Errorf("%s target: %w", set.name, err)
			}
			if r.name != "" {
				p.names = append(p.names, nameRule{name: r.name, wildcard: r.wildcard, allow: set.allow, text: s})
			} else {
				p.prefixes = append(p.prefixes, prefixRule{prefix: r.prefix, allow: set.allow, text: s})
			}
		}
	}
	return p, nil
}

// Rule is one parsed allow or deny entry.
type Rule struct {
	prefix   netip.Prefix
	name     string
	wildcard bool
}

// ParseRule reads a rule: a CIDR, an IP, or a host name, optionally
// "*."-prefixed. Configuration uses it to name a bad entry by its key.
func ParseRule(s string) (Rule, error) {
	t := strings.TrimSpace(s)
	if t == "" {
		return Rule{}, errors.New("empty rule: want a CIDR, an IP or a host name")
	}
	if strings.Contains(t, "/") {
		pfx, err := netip.ParsePrefix(t)
		if err != nil {
			return Rule{}, fmt.Errorf("%q is not a CIDR (e.g. 10.0.0.0/8 or fd00::/8)", s)
		}
		return Rule{prefix: unmapPrefix(pfx.Masked())}, nil
	}
	if a, err := netip.ParseAddr(strings.Trim(t, "[]")); err == nil {
		a = a.Unmap().WithZone("")
		return Rule{prefix: netip.PrefixFrom(a, a.BitLen())}, nil
	}
	name, wildcard := strings.CutPrefix(strings.ToLower(strings.TrimSuffix(t, ".")), "*.")
	if !validHostname(name) {
		return Rule{}, fmt.Errorf("%q is not a CIDR, an IP or a host name", s)
	}
	return Rule{name: name, wildcard: wildcard}, nil
}

func unmapPrefix(p netip.Prefix) netip.Prefix {
	if a := p.Addr(); a.Is4In6() && p.Bits() >= 96 {
		return netip.PrefixFrom(a.Unmap(), p.Bits()-96)
	}
	return p
}

func validHostname(s string) bool {
	if s == "" || len(s) > 253 {
		return false
	}
	for _, label := range strings.Split(s, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}

// CheckURL checks a target URL before anything is sent: its scheme, and
// its host when that is an IP literal or a host name a rule names.
// Other names pass here and are checked again, resolved, when dialled.
// tunnel:// URLs reach no network address and always pass.
func (p *Policy) CheckURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("%q is not a URL", raw)
	}
	switch strings.ToLower(u.Scheme) {
	case "tunnel":
		return nil
	case "http", "https":
	default:
		return fmt.Errorf("%q is not an http(s) URL", raw)
	}
	host := u.Hostname()
	if host == "" {
		return fmt.Errorf("%q has no host", raw)
	}
	port := u.Port()
	if port == "" {
		port = map[string]string{"http": "80", "https": "443"}[strings.ToLower(u.Scheme)]
	}
	return p.CheckHostPort(net.JoinHostPort(host, port))
}

// CheckHostPort checks "host:port" without resolving the host: an IP
// literal is checked as an address, a name against the name rules, and
// "localhost" as the loopback addresses it always means.
func (p *Policy) CheckHostPort(hostport string) error {
	host, portText, err := net.SplitHostPort(hostport)
	if err != nil {
		return fmt.Errorf("%q is not host:port", hostport)
	}
	port, err := parsePort(portText)
	if err != nil {
		return fmt.Errorf("%q: %w", hostport, err)
	}
	if a, err := netip.ParseAddr(host); err == nil {
		return p.CheckAddr(netip.AddrPortFrom(a, port))
	}
	name := strings.ToLower(strings.TrimSuffix(host, "."))
	if allow, rule, ok := p.matchName(name); ok {
		if allow {
			return nil
		}
		return &DeniedError{Target: hostport, Reason: "it matches the deny rule " + rule + allowHint(name)}
	}
	if name == "localhost" || strings.HasSuffix(name, ".localhost") {
		for _, a := range []netip.Addr{netip.AddrFrom4([4]byte{127, 0, 0, 1}), netip.IPv6Loopback()} {
			if reason := p.check(a, port); reason != "" {
				return &DeniedError{Target: hostport, Reason: reason}
			}
		}
	}
	return nil
}

func parsePort(s string) (uint16, error) {
	var n uint32
	if s == "" || len(s) > 5 {
		return 0, errors.New("invalid port")
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, errors.New("invalid port")
		}
		n = n*10 + uint32(s[i]-'0')
	}
	if n > 65535 {
		return 0, errors.New("invalid port")
	}
	return uint16(n), nil
}

// matchName finds the most specific name rule for name: an exact name
// over a wildcard, a longer wildcard over a shorter, deny over allow.
func (p *Policy) matchName(name string) (allow bool, rule string, ok bool) {
	best := -1
	for _, r := range p.names {
		score := -1
		switch {
		case !r.wildcard && name == r.name:
			score = 1 << 16 // longer than any name
		case r.wildcard && strings.HasSuffix(name, "."+r.name):
			score = len(r.name)
		}
		if score < 0 || score < best || (score == best && (!allow || r.allow)) {
			continue
		}
		best, allow, rule, ok = score, r.allow, r.text, true
	}
	return allow, rule, ok
}

// CheckAddr checks the address a connection is about to reach.
func (p *Policy) CheckAddr(ap netip.AddrPort) error {
	a := canonical(ap.Addr())
	if reason := p.check(a, ap.Port()); reason != "" {
		return &DeniedError{Target: netip.AddrPortFrom(a, ap.Port()).String(), Reason: reason}
	}
	return nil
}

// canonical is the IPv4 address behind an IPv4-mapped or NAT64 one, or a
// without its zone.
func canonical(a netip.Addr) netip.Addr {
	a = a.Unmap().WithZone("")
	if nat64.Contains(a) {
		b := a.As16()
		return netip.AddrFrom4([4]byte(b[12:]))
	}
	return a
}

// check returns why a:port is denied, or "" when it is allowed.
func (p *Policy) check(a netip.Addr, port uint16) string {
	var decided *prefixRule
	for i := range p.prefixes {
		r := &p.prefixes[i]
		if !r.prefix.Contains(a) {
			continue
		}
		if decided == nil || r.prefix.Bits() > decided.prefix.Bits() ||
			(r.prefix.Bits() == decided.prefix.Bits() && !r.allow) {
			decided = r
		}
	}
	if decided != nil {
		if decided.allow {
			return ""
		}
		return "it matches the deny rule " + decided.text + allowHint(a.String())
	}
	for _, d := range defaultDeny {
		if d.prefix.Contains(a) {
			return d.reason + allowHint(a.String())
		}
	}
	if p.isSelf(a, port) {
		return "it is this relay's own listener"
	}
	return ""
}

// isSelf reports whether a:port reaches one of the relay's listeners.
func (p *Policy) isSelf(a netip.Addr, port uint16) bool {
	wildcard := false
	for _, s := range p.self {
		if s.Port() != port {
			continue
		}
		sa := s.Addr().Unmap().WithZone("")
		switch {
		case sa == a:
			return true
		// Dialling 0.0.0.0 or :: reaches the local host.
		case a.IsUnspecified() && (sa.IsLoopback() || sa.IsUnspecified()):
			return true
		case sa.IsUnspecified():
			wildcard = true
		}
	}
	if !wildcard {
		return false
	}
	if a.IsLoopback() || a.IsUnspecified() {
		return true
	}
	// A listener on every address: the target is it when it is one of
	// this machine's. Failing to list them fails closed.
	addrs, err := p.ifaddrs()
	if err != nil {
		return true
	}
	for _, ia := range addrs {
		if n, ok := ia.(*net.IPNet); ok {
			if la, ok := netip.AddrFromSlice(n.IP); ok && la.Unmap() == a {
				return true
			}
		}
	}
	return false
}

// Control is a net.Dialer Control function: it refuses a connection whose
// resolved address the Policy denies. It sees addresses only, so a host
// name rule does not apply here; DialContext applies both.
func (p *Policy) Control(network, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return &DeniedError{Target: address, Reason: "not an IP address and port"}
	}
	return p.CheckAddr(ap)
}

// DialContext returns a dial function for an http.Transport that dials
// with base and checks every connection: a host name an allow rule names
// is dialled unchecked, one a deny rule names is refused, and any other
// connection is checked on its resolved address just before it is made,
// after base's own Control, if any.
func (p *Policy) DialContext(base *net.Dialer) func(ctx context.Context, network, address string) (net.Conn, error) {
	if base == nil {
		base = &net.Dialer{}
	}
	guarded := *base
	baseControl, baseControlContext := base.Control, base.ControlContext
	guarded.Control = nil
	guarded.ControlContext = func(ctx context.Context, network, address string, c syscall.RawConn) error {
		switch {
		case baseControlContext != nil:
			if err := baseControlContext(ctx, network, address, c); err != nil {
				return err
			}
		case baseControl != nil:
			if err := baseControl(network, address, c); err != nil {
				return err
			}
		}
		return p.Control(network, address, c)
	}
	return func(ctx context.Context, network, address string) (net.Conn, error) {
		host, _, err := net.SplitHostPort(address)
		if err != nil {
			return nil, err
		}
		if _, err := netip.ParseAddr(host); err != nil {
			name := strings.ToLower(strings.TrimSuffix(host, "."))
			if allow, rule, ok := p.matchName(name); ok {
				if !allow {
					return nil, &DeniedError{Target: address, Reason: "it matches the deny rule " + rule + allowHint(name)}
				}
				return base.DialContext(ctx, network, address)
			}
		}
		return guarded.DialContext(ctx, network, address)
	}
}

// allowHint is how to let a refused address through: an allow rule as
// narrow as the address wins over any deny rule and the defaults.
func allowHint(target string) string {
	return "; allow it with --allow-target " + target + " (allow_targets in the config)"
}
