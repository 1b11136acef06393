// Package httpguard keeps web pages from driving sidehook's admin and
// dashboard endpoints through the developer's browser (SPEC §6).
//
// Two attacks are stopped. DNS rebinding: a page on an attacker's domain
// whose name is made to resolve to 127.0.0.1 reaches a loopback listener
// as same-origin, so it can read the dashboard feed; a loopback listener
// therefore serves only requests whose Host is a loopback name or address
// (or a name the user allowed). Cross-site requests: a page on any origin
// can send a "simple" POST (text/plain, a form) that the browser does not
// preflight; state-changing requests must therefore come from the page's
// own origin (Sec-Fetch-Site, else Origin against Host, as
// net/http.CrossOriginProtection checks) and carry a JSON body, which a
// cross-site page cannot send without a preflight. A websocket handshake
// is a GET a browser sends cross-origin without a preflight, so it is
// checked as a state-changing request.
//
// Requests from tools (curl, the CLI, Go clients) send neither
// Sec-Fetch-Site nor Origin and pass the cross-site check; only the Host
// and content-type checks apply to them.
package httpguard

import (
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"unicode"
)

// MinAdminTokenLen is the shortest admin token accepted (SPEC §6): it
// opens every capture, or every organisation's data, to whoever holds it,
// so it must not be guessable.
const MinAdminTokenLen = 16

// CheckAdminToken refuses a token too short to guard an admin API, or one
// no request can present (CheckBearer).
func CheckAdminToken(tok string) error {
	if len(tok) < MinAdminTokenLen {
		return fmt.Errorf("%d bytes, need at least %d", len(tok), MinAdminTokenLen)
	}
	return CheckBearer(tok)
}

// CheckBearer refuses a credential with white space around it: a Bearer
// token is read without it, so such a key or token never matches and
// every request is a 401. It is most often the newline a secret file
// ends with.
func CheckBearer(v string) error {
	return CheckTrimmed(v, "which no Authorization: Bearer header carries")
}

// CheckTrimmed refuses a secret with white space around it, saying why
// that breaks it (after a comma): such white space is nearly always the
// newline a secret file ends with, which a shell's "$(cat file)" and
// sidehook's own flags drop.
func CheckTrimmed(v, why string) error {
	switch {
	case strings.TrimLeftFunc(v, unicode.IsSpace) != v:
		return errors.New("starts with white space, " + why)
	case strings.TrimRightFunc(v, unicode.IsSpace) != v:
		return errors.New("ends in white space (a newline from a file?), " + why)
	}
	return nil
}

// Options configure a Guard.
type Options struct {
	// Loopback says the listener is bound to loopback addresses only (see
	// LoopbackAddr): its requests must then name a loopback Host, one of
	// localhost (and names under it), 127.0.0.0/8 and ::1, any port, or
	// an AllowedHosts name.
	Loopback bool
	// AllowedHosts are more Host names a loopback listener serves (a flag
	// such as --allow-host), e.g. a name from /etc/hosts. Matched without
	// the port and case-insensitively.
	AllowedHosts []string
	// TrustedOrigins are origins ("https://dash.example.com") allowed to
	// make cross-origin state-changing requests, e.g. a proxy in front.
	TrustedOrigins []string
}

// Guard is the middleware. It is safe for concurrent use.
type Guard struct {
	loopback bool
	hosts    map[string]bool
	cop      *http.CrossOriginProtection
}

// New checks the options and builds a Guard.
func New(o Options) (*Guard, error) {
	g := &Guard{loopback: o.Loopback, hosts: make(map[string]bool, len(o.AllowedHosts)), cop: http.NewCrossOriginProtection()}
	for _, h := range o.AllowedHosts {
		name := strings.ToLower(strings.TrimSuffix(strings.TrimSpace(h), "."))
		if !hostName(name) {
			return nil, fmt.Errorf("allowed host %q: want a host name, without scheme or port", h)
		}
		g.hosts[name] = true
	}
	for _, origin := range o.TrustedOrigins {
		if err := g.cop.AddTrustedOrigin(origin); err != nil {
			return nil, fmt.Errorf("trusted origin: %w", err)
		}
	}
	return g, nil
}

// Handler wraps next: a refused request is answered with a JSON error
// {"error","reason"} and never reaches next.
func (g *Guard) Handler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if ref := g.Check(r); ref != nil {
			writeRefusal(w, ref)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// Refusal is why a request was refused, as answered.
type Refusal struct {
	Status int    // 421, 403 or 415
	Code   string // the "error" of the answer
	Reason string // the "reason"
}

func (r *Refusal) Error() string { return r.Code + ": " + r.Reason }

// Check returns why r must be refused, or nil.
func (g *Guard) Check(r *http.Request) *Refusal {
	if g.loopback && !g.hostAllowed(r.Host) {
		return &Refusal{Status: http.StatusMisdirectedRequest, Code: "misdirected_request",
			Reason: fmt.Sprintf("this loopback listener serves Host localhost, 127.0.0.1 or [::1], not %q; allow a name with --allow-host", clip(r.Host))}
	}
	probe := r
	if isWebsocket(r) {
		// CrossOriginProtection lets every GET through; the handshake
		// opens a live feed, so ask about it as if it were a POST.
		probe = &http.Request{Method: http.MethodPost, Header: r.Header, Host: r.Host, URL: r.URL}
	}
	if err := g.cop.Check(probe); err != nil {
		return &Refusal{Status: http.StatusForbidden, Code: "cross_site_request",
			Reason: "state-changing requests and websockets must come from this server's own pages: " + err.Error()}
	}
	if ct := r.Header.Get("Content-Type"); changesState(r.Method) && hasBody(r) && !isJSON(ct) {
		return mediaRefusal(ct)
	}
	return nil
}

// mediaRefusal names the content type that came and every one isJSON
// takes: a YAML rules list, which a rules file may be, is refused here
// too, and the reason must not leave the client guessing at a spelling.
func mediaRefusal(ct string) *Refusal {
	got := "no Content-Type"
	if ct != "" {
		got = "Content-Type " + strconv.Quote(clip(ct))
	}
	return &Refusal{Status: http.StatusUnsupportedMediaType, Code: "unsupported_media_type",
		Reason: got + " is not accepted: send the body as JSON, Content-Type application/json or application/*+json (state-changing requests take JSON only)"}
}

// hostAllowed reports whether a loopback listener may serve Host h.
func (g *Guard) hostAllowed(h string) bool {
	if h == "" {
		// HTTP/1.0 without Host: no browser sends that.
		return true
	}
	name := normalHost(h)
	if name == "localhost" || strings.HasSuffix(name, ".localhost") || g.hosts[name] {
		// Names under .localhost are loopback by RFC 6761: browsers never
		// ask DNS about them, so no attacker can point one elsewhere.
		return true
	}
	a, err := netip.ParseAddr(name)
	return err == nil && a.Unmap().IsLoopback()
}

// normalHost is h without port, brackets, trailing dot, in lower case.
func normalHost(h string) string {
	h = strings.TrimSpace(h)
	if host, _, err := net.SplitHostPort(h); err == nil {
		h = host
	}
	h = strings.TrimSuffix(strings.TrimPrefix(h, "["), "]")
	return strings.ToLower(strings.TrimSuffix(h, "."))
}

func hostName(s string) bool {
	if s == "" || len(s) > 253 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '.' || c == '_') {
			return false
		}
	}
	return true
}

func isWebsocket(r *http.Request) bool {
	for _, v := range r.Header.Values("Upgrade") {
		for _, token := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(token), "websocket") {
				return true
			}
		}
	}
	return false
}

func changesState(method string) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return false
	}
	return true
}

// hasBody reports whether r may carry body bytes: a known non-zero
// length, or an unknown one (chunked).
func hasBody(r *http.Request) bool {
	return r.ContentLength != 0 || len(r.TransferEncoding) > 0
}

// isJSON accepts application/json and application/*+json, with any
// parameters: content types a cross-site page cannot send without a
// CORS preflight.
func isJSON(ct string) bool {
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return false
	}
	sub, ok := strings.CutPrefix(mt, "application/")
	return ok && (sub == "json" || strings.HasSuffix(sub, "+json"))
}

func writeRefusal(w http.ResponseWriter, ref *Refusal) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(ref.Status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": ref.Code, "reason": ref.Reason})
}

// clip keeps an attacker-chosen Host short in a reason.
func clip(s string) string {
	const limit = 64
	if len(s) > limit {
		s = s[:limit] + "…"
	}
	return strings.ToValidUTF8(s, "�")
}

// LoopbackAddr reports whether a listen address ("127.0.0.1:8080",
// "[::1]:0", "localhost:8081") keeps a listener on this machine. An empty
// host, 0.0.0.0 or any other address listens beyond it.
func LoopbackAddr(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		host = addr
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	a, err := netip.ParseAddr(strings.Trim(host, "[]"))
	return err == nil && a.Unmap().IsLoopback()
}
