package web

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"net/url"
	"strings"

	"github.com/gorilla/websocket"
	"github.com/rs/zerolog"

	"github.com/sidehook/sidehook/internal/event"
	"github.com/sidehook/sidehook/internal/httpjson"
)

// Roles a dashboard plays; the page offers the actions of its role and
// calls that server's API.
const (
	RoleReceiver = "receiver"
	RoleRelay    = "relay"
	// RoleInspector is the tunnel's inspector: a receiver's page whose
	// replays send the recorded headers as they are (it holds no keys, so
	// no schemes to sign with), whose rows carry the local app's answer,
	// and which has no exports, rules or delete-all.
	RoleInspector = "inspector"
)

// Paths the handler answers. Servers mount the handler on both (it ignores
// anything else with 404).
const (
	UIPath = "/_sidehook/ui/"
	WSPath = "/_sidehook/ws"
)

// SnapshotSize is how many of the newest items a connection starts with.
const SnapshotSize = 200

// MaxItems is how many items the page keeps; older ones are dropped from
// the browser's memory (the server still has them).
const MaxItems = 10000

// Config is what a server gives its dashboard.
type Config struct {
	// Role is RoleReceiver, RoleRelay or RoleInspector; empty means
	// RoleReceiver.
	Role string
	// Hub feeds live items. Servers Close it on shutdown, which ends every
	// websocket connection.
	Hub *Hub
	// Recent returns the newest n items, newest first; nil means none.
	Recent func(ctx context.Context, n int) ([]Item, error)
	// Authorize decides whether a request may see the dashboard; nil means
	// everyone may (a loopback listener). The request it sees carries any
	// token the browser sent as "Authorization: Bearer <token>".
	Authorize func(r *http.Request) bool
	// Scope names the one organisation an authorized request may see ("":
	// everything, the admin's or a loopback developer's view). It sees the
	// same request as Authorize. Recent finds it with ScopeFrom.
	Scope  func(r *http.Request) string
	Logger zerolog.Logger
}

type scopeKey struct{}

// ScopeFrom returns the organisation a Recent call is limited to ("": all).
func ScopeFrom(ctx context.Context) string {
	s, _ := ctx.Value(scopeKey{}).(string)
	return s
}

// WithScope returns ctx limited to org, as the websocket hands it to Recent.
func WithScope(ctx context.Context, org string) context.Context {
	return context.WithValue(ctx, scopeKey{}, org)
}

//go:embed static
var staticFiles embed.FS

// pageConfig is handed to the page's script as JSON.
type pageConfig struct {
	Role         string   `json:"role"`
	WSPath       string   `json:"wsPath"`
	TokenCookie  string   `json:"tokenCookie"`
	Redact       []string `json:"redact"`
	RedactedText string   `json:"redactedText"`
	MaxItems     int      `json:"maxItems"`
	SnapshotSize int      `json:"snapshotSize"`
	// Events are offered by the event filter before any item of theirs
	// is loaded: a filter searches older items too.
	Events []event.Type `json:"events"`
}

type server struct {
	cfg      Config
	log      zerolog.Logger
	setupErr error
	assets   fs.FS
	pages    *template.Template
	page     pageConfig
	upgrader websocket.Upgrader
}

// NewHandler returns the dashboard: GET /_sidehook/ui/ (the page and its
// assets) and GET /_sidehook/ws (the websocket, see the package doc for its
// protocol).
func NewHandler(cfg Config) http.Handler {
	s := &server{
		cfg: cfg,
		log: cfg.Logger.With().Str("component", "dashboard").Logger(),
		// Origin is checked (gorilla's default: same host) so another site
		// open in the same browser cannot ride the token cookie into the
		// websocket.
		upgrader: websocket.Upgrader{ReadBufferSize: 1024, WriteBufferSize: 16 << 10},
	}
	s.upgrader.Error = s.upgradeError
	if s.cfg.Role == "" {
		s.cfg.Role = RoleReceiver
	}
	if s.cfg.Role != RoleReceiver && s.cfg.Role != RoleRelay && s.cfg.Role != RoleInspector {
		s.setupErr = fmt.Errorf("unknown dashboard role %q (want %q, %q or %q)", s.cfg.Role, RoleReceiver, RoleRelay, RoleInspector)
	}
	if s.cfg.Hub == nil {
		s.log.Error().Msg("dashboard has no hub: the websocket will answer 503")
	}
	sub, err := fs.Sub(staticFiles, "static")
	if err != nil {
		// Only a broken embed directive gets here, and the tests would
		// fail; still, answer 500 rather than crash a server.
		s.setupErr = errors.Join(s.setupErr, fmt.Errorf("open embedded assets: %w", err))
	}
	s.assets = sub
	if s.pages, err = template.ParseFS(staticFiles, "static/index.html", "static/login.html"); err != nil {
		s.setupErr = errors.Join(s.setupErr, fmt.Errorf("parse embedded pages: %w", err))
	}
	if s.setupErr != nil {
		s.log.Error().Err(s.setupErr).Msg("dashboard disabled")
	}
	s.page = pageConfig{
		Role:         s.cfg.Role,
		WSPath:       WSPath,
		TokenCookie:  s.tokenCookie(),
		Redact:       RedactedHeaderNames(),
		RedactedText: RedactedValue,
		MaxItems:     MaxItems,
		SnapshotSize: SnapshotSize,
		Events:       event.Builtin(),
	}
	return s.routes()
}

func (s *server) tokenCookie() string { return "sidehook_" + s.cfg.Role + "_token" }

// token finds the credential a browser sent: the Authorization header, else
// ?token=, else the dashboard's cookie. A ?token= on a link followed from
// another site is not used: it would sign the browser in as whoever made
// the link (login CSRF), showing their organisation as the user's own.
func (s *server) token(r *http.Request) (tok string, fromQuery bool) {
	if r.Header.Get("Authorization") != "" {
		return "", false
	}
	if t := r.URL.Query().Get("token"); t != "" && !fromOtherSite(r) {
		return t, true
	}
	if c, err := r.Cookie(s.tokenCookie()); err == nil && c.Value != "" {
		return c.Value, false
	}
	return "", false
}

// authorized runs Config.Authorize on r, with a query or cookie token
// presented as a Bearer header so servers need only one check.
func (s *server) authorized(r *http.Request) bool {
	if s.cfg.Authorize == nil {
		return true
	}
	return s.cfg.Authorize(s.withBearer(r))
}

// scope is Config.Scope of an authorized request.
func (s *server) scope(r *http.Request) string {
	if s.cfg.Scope == nil {
		return ""
	}
	return s.cfg.Scope(s.withBearer(r))
}

func (s *server) withBearer(r *http.Request) *http.Request {
	if tok, _ := s.token(r); tok != "" {
		r = r.Clone(r.Context())
		r.Header.Set("Authorization", "Bearer "+tok)
	}
	return r
}

// requireAuth guards data-bearing routes; deny answers the refusal.
func (s *server) requireAuth(next http.Handler, deny http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !s.authorized(r) {
			deny(w, r)
			return
		}
		next.ServeHTTP(w, r)
	})
}

func (s *server) handleIndex() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if tok, fromQuery := s.token(r); fromQuery && s.cfg.Authorize != nil {
			// Move the token out of the address bar (and history, and
			// Referer) into a cookie the page and websocket can use.
			http.SetCookie(w, &http.Cookie{
				Name:     s.tokenCookie(),
				Value:    tok,
				Path:     "/_sidehook/",
				SameSite: http.SameSiteStrictMode,
				Secure:   r.TLS != nil,
			})
			q := r.URL.Query()
			q.Del("token")
			u := url.URL{Path: r.URL.Path, RawQuery: q.Encode()}
			http.Redirect(w, r, u.String(), http.StatusSeeOther)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		if err := s.pages.ExecuteTemplate(w, "index.html", s.page); err != nil {
			s.log.Error().Err(err).Msg("render dashboard page")
		}
	})
}

// denyPage answers an unauthorised page load with a form asking for the
// token rather than a bare 401, so a browser user can get in.
func (s *server) denyPage(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusUnauthorized)
	tok, _ := s.token(r)
	data := struct {
		Role    string
		Tried   bool
		Foreign bool
	}{s.cfg.Role, tok != "" || r.Header.Get("Authorization") != "", r.URL.Query().Has("token") && fromOtherSite(r)}
	if err := s.pages.ExecuteTemplate(w, "login.html", data); err != nil {
		s.log.Error().Err(err).Msg("render dashboard login page")
	}
}

// fromOtherSite reports whether the browser says r was sent by, or is a
// navigation from, a page of another site (Sec-Fetch-Site). "none" (typed,
// a bookmark, a link opened from a terminal) and "same-origin" (the sign-in
// form) are the user's own doing; tools send no such header.
func fromOtherSite(r *http.Request) bool {
	switch r.Header.Get("Sec-Fetch-Site") {
	case "cross-site", "same-site":
		return true
	}
	return false
}

// denyAPI answers an unauthorised call that is not a page load (the
// websocket, the page's probe of it) in the {"error","reason"} shape.
func (s *server) denyAPI(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("WWW-Authenticate", `Bearer realm="sidehook"`)
	s.writeError(w, r, httpjson.Errorf(http.StatusUnauthorized, "unauthorized",
		"this dashboard needs the admin token (receiver) or an API key (relay)"))
}

// writeError answers err in the {"error","reason"} shape every sidehook
// server uses; the dashboard's error answers are for programs (the page's
// fetch, curl), its pages alone are HTML.
func (s *server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	httpjson.WriteError(w, r, s.log, err)
}

func (s *server) handleAssets() http.Handler {
	files := http.StripPrefix(strings.TrimSuffix(UIPath, "/"), http.FileServerFS(s.assets))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name := strings.TrimPrefix(r.URL.Path, UIPath)
		// The HTML files are templates, rendered by handleIndex only.
		// Looked up here rather than left to the file server, whose 404
		// is plain text and which would redirect a directory ("js") to
		// its listing.
		if fi, err := fs.Stat(s.assets, name); err != nil || fi.IsDir() || strings.HasSuffix(name, ".html") {
			s.writeError(w, r, httpjson.Errorf(http.StatusNotFound, "not_found", "no dashboard file %q", name))
			return
		}
		// Embedded files have no modification time, so revalidate always
		// rather than let a browser run a stale script after an upgrade.
		w.Header().Set("Cache-Control", "no-cache")
		fw := &fileErrors{ResponseWriter: w}
		files.ServeHTTP(fw, r)
		fw.finish(w, r, s)
	})
}

// fileErrors holds back an error answer of net/http's file server (a
// Range past the end, a failed If-Match: plain text or no body at all) so
// that it goes out in the {"error","reason"} shape with the same status.
type fileErrors struct {
	http.ResponseWriter
	status int // the error status held back; 0 while none
	text   []byte
}

func (f *fileErrors) WriteHeader(code int) {
	if code < http.StatusBadRequest {
		f.ResponseWriter.WriteHeader(code)
		return
	}
	f.status = code
}

func (f *fileErrors) Write(b []byte) (int, error) {
	if f.status == 0 {
		return f.ResponseWriter.Write(b)
	}
	// http.Error's one line; bounded in case of anything else.
	if len(f.text) < 512 {
		f.text = append(f.text, b[:min(len(b), 512-len(f.text))]...)
	}
	return len(b), nil
}

// finish writes the held-back error, if any.
func (f *fileErrors) finish(w http.ResponseWriter, r *http.Request, s *server) {
	if f.status == 0 {
		return
	}
	reason := strings.TrimSpace(string(f.text))
	if reason == "" {
		reason = strings.ToLower(http.StatusText(f.status))
	}
	code := "invalid_request"
	switch {
	case f.status == http.StatusRequestedRangeNotSatisfiable:
		code = "invalid_range"
	case f.status == http.StatusPreconditionFailed:
		code = "precondition_failed"
	case f.status == http.StatusNotFound:
		code = "not_found"
	case f.status >= http.StatusInternalServerError:
		code = "internal"
	}
	s.writeError(w, r, &httpjson.Error{Status: f.status, Code: code, Reason: reason})
}

// secureHeaders keeps captured data (which is attacker-controlled) from
// ever running as script, and the page from being framed.
func (s *server) secureHeaders(next http.Handler) http.Handler {
	const csp = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
		"connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", csp)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("X-Frame-Options", "DENY")
		if s.setupErr != nil {
			// The cause is the server's own setup (a role, the embedded
			// files), logged when it was made; it names no secret.
			httpjson.Write(w, http.StatusInternalServerError, httpjson.Body{Error: "dashboard_misconfigured", Reason: "dashboard misconfigured: " + s.setupErr.Error()})
			return
		}
		next.ServeHTTP(w, r)
	})
}
