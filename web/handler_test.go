package web_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/sidehook/sidehook/web"
)

func httpGet(tb testing.TB, url string, header http.Header) (*http.Response, string) {
	tb.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		tb.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if err != nil {
		tb.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatalf("read %s: %v", url, err)
	}
	return resp, string(b)
}

var configRE = regexp.MustCompile(`(?s)<script type="application/json" id="sidehook-config">(.*?)</script>`)

func pageConfig(tb testing.TB, html string) map[string]any {
	tb.Helper()
	m := configRE.FindStringSubmatch(html)
	if m == nil {
		tb.Fatalf("no config block in page")
	}
	var cfg map[string]any
	if err := json.Unmarshal([]byte(m[1]), &cfg); err != nil {
		tb.Fatalf("config block %q: %v", m[1], err)
	}
	return cfg
}

func TestPage(t *testing.T) {
	for _, role := range []string{web.RoleReceiver, web.RoleRelay} {
		t.Run(role, func(t *testing.T) {
			d := startDashboard(t, dashOptions{Role: role})
			resp, body := httpGet(t, d.URL+web.UIPath, nil)
			if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
				t.Fatalf("got %d %s, want 200 text/html", resp.StatusCode, resp.Header.Get("Content-Type"))
			}
			if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") {
				t.Fatalf("got CSP %q, want scripts from the server only", csp)
			}
			cfg := pageConfig(t, body)
			if cfg["role"] != role || cfg["wsPath"] != web.WSPath {
				t.Fatalf("got config %v, want role %s", cfg, role)
			}
			redact, _ := cfg["redact"].([]any)
			if len(redact) != len(web.RedactedHeaderNames()) {
				t.Fatalf("page redacts %v, want %v", redact, web.RedactedHeaderNames())
			}
			for _, label := range []string{`<label for="f-event">Event</label>`, `<label for="f-text">Search</label>`} {
				if !strings.Contains(body, label) {
					t.Fatalf("page lacks %s", label)
				}
			}
			if strings.Contains(body, "http://") || strings.Contains(body, "https://") {
				t.Fatal("page refers to another site; everything must be served from the binary")
			}
		})
	}
}

// TestPageNamesItsRole: the page's title and heading say which program
// serves it; the tunnel's inspector once called itself a mock receiver.
func TestPageNamesItsRole(t *testing.T) {
	tests := []struct {
		role, want, notWant string
	}{
		{web.RoleReceiver, "mock receiver", "inspector"},
		{web.RoleRelay, "relay", "mock receiver"},
		{web.RoleInspector, "tunnel inspector", "mock receiver"},
	}
	for _, tt := range tests {
		t.Run(tt.role, func(t *testing.T) {
			d := startDashboard(t, dashOptions{Role: tt.role})
			_, body := httpGet(t, d.URL+web.UIPath, nil)
			if title := "<title>sidehook · " + tt.want + "</title>"; !strings.Contains(body, title) {
				t.Errorf("page lacks %s", title)
			}
			if brand := `<span class="role">` + tt.want + `</span>`; !strings.Contains(body, brand) {
				t.Errorf("page lacks %s", brand)
			}
			if strings.Contains(body, tt.notWant) {
				t.Errorf("page of the %s says %q", tt.role, tt.notWant)
			}
		})
	}
}

func TestAssets(t *testing.T) {
	d := startDashboard(t, dashOptions{Authorize: bearerAuth("s3cret")})
	tests := []struct {
		path string
		want int
		ct   string
	}{
		{"js/app.js", http.StatusOK, "text/javascript"},
		{"js/format.js", http.StatusOK, "text/javascript"},
		{"app.css", http.StatusOK, "text/css"},
		{"index.html", http.StatusNotFound, ""},
		{"login.html", http.StatusNotFound, ""},
		{"js/", http.StatusNotFound, ""},
		{"js", http.StatusNotFound, ""},
		{"nope.js", http.StatusNotFound, ""},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			resp, body := httpGet(t, d.URL+web.UIPath+tt.path, nil)
			if resp.StatusCode != tt.want {
				t.Fatalf("got %d, want %d", resp.StatusCode, tt.want)
			}
			if tt.want == http.StatusNotFound {
				wantJSONError(t, resp, body, http.StatusNotFound, "not_found")
			}
			if tt.ct != "" && !strings.HasPrefix(resp.Header.Get("Content-Type"), tt.ct) {
				t.Fatalf("got %q, want %s", resp.Header.Get("Content-Type"), tt.ct)
			}
			if tt.want == http.StatusOK && (strings.Contains(body, "://cdn") || strings.Contains(body, "https://")) {
				t.Fatalf("%s loads something from the network", tt.path)
			}
		})
	}
}

// TestAssetRefusals: what net/http's file server refuses (a range past
// the end, a failed precondition) is answered in the {"error","reason"}
// shape, not its plain text.
func TestAssetRefusals(t *testing.T) {
	d := startDashboard(t, dashOptions{})
	tests := []struct {
		name   string
		header http.Header
		status int
		code   string
	}{
		{"RangePastEnd", http.Header{"Range": {"bytes=99999999-"}}, http.StatusRequestedRangeNotSatisfiable, "invalid_range"},
		{"RangeMalformed", http.Header{"Range": {"lines=1-2"}}, http.StatusRequestedRangeNotSatisfiable, "invalid_range"},
		{"IfMatchFails", http.Header{"If-Match": {`"nope"`}}, http.StatusPreconditionFailed, "precondition_failed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := httpGet(t, d.URL+web.UIPath+"app.css", tt.header)
			wantJSONError(t, resp, body, tt.status, tt.code)
		})
	}
	t.Run("RangeServed", func(t *testing.T) {
		resp, body := httpGet(t, d.URL+web.UIPath+"app.css", http.Header{"Range": {"bytes=0-3"}})
		if resp.StatusCode != http.StatusPartialContent || len(body) != 4 {
			t.Fatalf("got %d with %d bytes, want 206 with 4", resp.StatusCode, len(body))
		}
	})
}

// wantJSONError checks an error answer: status, a JSON body
// {"error":code,"reason":…} with a reason, and the JSON content type.
func wantJSONError(tb testing.TB, resp *http.Response, body string, status int, code string) {
	tb.Helper()
	if resp.StatusCode != status {
		tb.Fatalf("got %d %q, want %d", resp.StatusCode, body, status)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		tb.Fatalf("got Content-Type %q (body %q), want application/json", ct, body)
	}
	var e struct{ Error, Reason string }
	if err := json.Unmarshal([]byte(body), &e); err != nil || e.Error != code || e.Reason == "" {
		tb.Fatalf("got body %q, want {\"error\":%q,\"reason\":…}", body, code)
	}
}

func TestPageAuth(t *testing.T) {
	d := startDashboard(t, dashOptions{Authorize: bearerAuth("s3cret")})

	t.Run("NoTokenGetsSignInForm", func(t *testing.T) {
		resp, body := httpGet(t, d.URL+web.UIPath, nil)
		if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(body, `<label for="token">Admin token</label>`) {
			t.Fatalf("got %d, want 401 with a labelled token field", resp.StatusCode)
		}
		if strings.Contains(body, "refused") {
			t.Fatal("says refused before any token was tried")
		}
	})
	t.Run("WrongTokenRefused", func(t *testing.T) {
		resp, body := httpGet(t, d.URL+web.UIPath+"?token=nope", nil)
		if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(body, "refused") {
			t.Fatalf("got %d, want 401 saying refused", resp.StatusCode)
		}
	})
	t.Run("QueryTokenBecomesCookie", func(t *testing.T) {
		resp, _ := httpGet(t, d.URL+web.UIPath+"?token=s3cret&x=1", nil)
		if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/_sidehook/ui/?x=1" {
			t.Fatalf("got %d to %q, want 303 to the address without the token", resp.StatusCode, resp.Header.Get("Location"))
		}
		var cookie *http.Cookie
		for _, c := range resp.Cookies() {
			if c.Name == "sidehook_receiver_token" {
				cookie = c
			}
		}
		if cookie == nil || cookie.Value != "s3cret" || cookie.SameSite != http.SameSiteStrictMode || cookie.Path != "/_sidehook/" {
			t.Fatalf("got cookie %+v, want a SameSite=Strict token cookie on /_sidehook/", cookie)
		}
		resp, body := httpGet(t, d.URL+web.UIPath, http.Header{"Cookie": {cookie.String()}})
		if resp.StatusCode != http.StatusOK || pageConfig(t, body)["tokenCookie"] != "sidehook_receiver_token" {
			t.Fatalf("got %d with the cookie, want the page", resp.StatusCode)
		}
	})
	// A link on another site carrying its maker's token must not sign the
	// browser in as them (login CSRF); the user's own ways in still do.
	t.Run("QueryTokenBySite", func(t *testing.T) {
		for _, tt := range []struct {
			site   string
			signIn bool
		}{{"", true}, {"none", true}, {"same-origin", true}, {"same-site", false}, {"cross-site", false}} {
			t.Run("site="+tt.site, func(t *testing.T) {
				h := http.Header{}
				if tt.site != "" {
					h.Set("Sec-Fetch-Site", tt.site)
				}
				resp, body := httpGet(t, d.URL+web.UIPath+"?token=s3cret", h)
				if got := resp.StatusCode == http.StatusSeeOther && len(resp.Cookies()) == 1; got != tt.signIn {
					t.Fatalf("got %d with cookies %v, want signed in %v", resp.StatusCode, resp.Cookies(), tt.signIn)
				}
				if !tt.signIn && (resp.StatusCode != http.StatusUnauthorized || !strings.Contains(body, "from another site") || strings.Contains(body, "refused")) {
					t.Fatalf("got %d %q, want the sign-in form saying the link's token was not used", resp.StatusCode, body)
				}
			})
		}
	})
	t.Run("HeaderToken", func(t *testing.T) {
		resp, _ := httpGet(t, d.URL+web.UIPath, http.Header{"Authorization": {"Bearer s3cret"}})
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("got %d, want 200", resp.StatusCode)
		}
	})
	t.Run("RedirectKeepsQuery", func(t *testing.T) {
		resp, _ := httpGet(t, d.URL+"/_sidehook/ui?token=s3cret", nil)
		if resp.StatusCode != http.StatusMovedPermanently || resp.Header.Get("Location") != "/_sidehook/ui/?token=s3cret" {
			t.Fatalf("got %d to %q, want 301 to \"/_sidehook/ui/?token=s3cret\"", resp.StatusCode, resp.Header.Get("Location"))
		}
	})
}

func TestUnknownRole(t *testing.T) {
	h := web.NewHandler(web.Config{Role: "proxy", Hub: web.NewHub(web.HubOptions{}), Logger: zerolog.Nop()})
	for _, path := range []string{web.UIPath, web.WSPath, web.UIPath + "app.css"} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		if !strings.Contains(rec.Body.String(), `\"proxy\"`) {
			t.Fatalf("%s: got %q, want the role named", path, rec.Body.String())
		}
		wantJSONError(t, rec.Result(), rec.Body.String(), http.StatusInternalServerError, "dashboard_misconfigured")
	}
}

// TestOtherPathsNotFound: what the dashboard does not serve, when a server
// hands it on, is a 404, or a 405 with Allow where the path is served, in
// the {"error","reason"} shape rather than net/http's plain text.
func TestOtherPathsNotFound(t *testing.T) {
	h := web.NewHandler(web.Config{Hub: web.NewHub(web.HubOptions{}), Logger: zerolog.Nop()})
	for _, tc := range []struct {
		method, path string
		status       int
		code, allow  string
	}{
		{"GET", "/", http.StatusNotFound, "not_found", ""},
		{"GET", "/webhooks", http.StatusNotFound, "not_found", ""},
		{"POST", web.UIPath, http.StatusMethodNotAllowed, "method_not_allowed", "GET, HEAD, OPTIONS"},
		{"DELETE", web.UIPath + "app.css", http.StatusMethodNotAllowed, "method_not_allowed", "GET, HEAD, OPTIONS"},
		{"POST", web.WSPath, http.StatusMethodNotAllowed, "method_not_allowed", "GET, HEAD, OPTIONS"},
	} {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(tc.method, tc.path, nil))
			wantJSONError(t, rec.Result(), rec.Body.String(), tc.status, tc.code)
			if got := rec.Header().Get("Allow"); got != tc.allow {
				t.Fatalf("got Allow %q, want %q", got, tc.allow)
			}
		})
	}
}
