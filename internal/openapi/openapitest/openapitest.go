// Package openapitest checks an OpenAPI document against the routes a
// server registers: every route documented, every documented route served,
// and the document valid per a standard OpenAPI 3.1 validator
// (kin-openapi); and, with Exchanges, against what the running server
// answers. Test-only: the binary never links it.
package openapitest

import (
	"bytes"
	"context"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"

	"github.com/sidehook/sidehook/internal/openapi"
)

// RoutesIn returns the "METHOD /path" patterns registered with
// mux.Handle or mux.HandleFunc in a Go source file. Patterns without a
// method (prefixes, the catch-all) are left out, and so are those whose
// path is one of pages (a dashboard's page and websocket): they are not API.
func RoutesIn(tb testing.TB, file string, pages ...string) []string {
	tb.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), file, nil, 0)
	if err != nil {
		tb.Fatalf("parse %s: %v", file, err)
	}
	var out []string
	ast.Inspect(f, func(n ast.Node) bool {
		call, ok := n.(*ast.CallExpr)
		if !ok || len(call.Args) == 0 {
			return true
		}
		sel, ok := call.Fun.(*ast.SelectorExpr)
		if !ok || (sel.Sel.Name != "Handle" && sel.Sel.Name != "HandleFunc") {
			return true
		}
		lit, ok := call.Args[0].(*ast.BasicLit)
		if !ok || lit.Kind != token.STRING {
			return true
		}
		p, err := strconv.Unquote(lit.Value)
		if _, path, ok := strings.Cut(p, " "); err == nil && ok && !slices.Contains(pages, path) {
			out = append(out, p)
		}
		return true
	})
	slices.Sort(out)
	return out
}

// Check validates doc (YAML) and compares its operations with routes
// ("METHOD /path" patterns as net/http's mux takes them).
func Check(tb testing.TB, doc []byte, routes []string) {
	tb.Helper()
	d := Validate(tb, doc)
	var documented []string
	for path, item := range d.Paths.Map() {
		for method := range item.Operations() {
			documented = append(documented, fmt.Sprintf("%s %s", method, path))
		}
	}
	slices.Sort(documented)
	for _, r := range routes {
		if !slices.Contains(documented, normalize(r)) {
			tb.Errorf("route %q is served but not documented", r)
		}
	}
	normalized := make([]string, len(routes))
	for i, r := range routes {
		normalized[i] = normalize(r)
	}
	for _, op := range documented {
		if !slices.Contains(normalized, op) {
			tb.Errorf("operation %q is documented but not served", op)
		}
	}
}

// Validate loads doc (YAML) with kin-openapi and validates it as OpenAPI
// 3.1.
func Validate(tb testing.TB, doc []byte) *openapi3.T {
	tb.Helper()
	js, err := openapi.JSON(doc)
	if err != nil {
		tb.Fatal(err)
	}
	loader := openapi3.NewLoader()
	d, err := loader.LoadFromData(js)
	if err != nil {
		tb.Fatalf("load OpenAPI document: %v", err)
	}
	if !strings.HasPrefix(d.OpenAPI, "3.1") {
		tb.Fatalf("got openapi %q, want 3.1.x", d.OpenAPI)
	}
	if err := d.Validate(context.Background()); err != nil {
		tb.Fatalf("OpenAPI document invalid: %v", err)
	}
	return d
}

// normalize turns a mux pattern into "METHOD /path" with OpenAPI's path
// template syntax ({id...} becomes {id}).
func normalize(pattern string) string {
	method, path, _ := strings.Cut(pattern, " ")
	path = strings.ReplaceAll(path, "...}", "}")
	return strings.ToUpper(method) + " " + strings.TrimSpace(path)
}

// Exchanges checks a running server's answers against the document: each
// request is one of its operations, the answer's status is documented for
// that operation, a JSON answer matches the documented schema, and a
// request the document calls invalid (a required field missing, a value
// out of range) is not answered 2xx. A route test alone cannot see a
// status, a body or a rule that drifted from the document.
type Exchanges struct {
	base   string
	router routers.Router
}

// NewExchanges checks exchanges with the server at base (its URL).
func NewExchanges(tb testing.TB, doc []byte, base string) *Exchanges {
	tb.Helper()
	d := Validate(tb, doc)
	d.Servers = openapi3.Servers{{URL: base}}
	r, err := legacy.NewRouter(d)
	if err != nil {
		tb.Fatalf("route the OpenAPI document: %v", err)
	}
	return &Exchanges{base: base, router: r}
}

// Do sends method target (a path with its query) with header and body,
// checks the exchange, and returns the answer's status, header and body.
func (x *Exchanges) Do(tb testing.TB, method, target string, header http.Header, body []byte) (int, http.Header, []byte) {
	tb.Helper()
	newReq := func() *http.Request {
		req, err := http.NewRequest(method, x.base+target, bytes.NewReader(body))
		if err != nil {
			tb.Fatal(err)
		}
		if body == nil {
			req.Body, req.ContentLength = http.NoBody, 0
		}
		for k, vs := range header {
			req.Header[k] = vs
		}
		return req
	}
	resp, err := http.DefaultClient.Do(newReq())
	if err != nil {
		tb.Fatalf("%s %s: %v", method, target, err)
	}
	defer resp.Body.Close()
	got, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatalf("%s %s: read answer: %v", method, target, err)
	}

	req := newReq()
	route, params, err := x.router.FindRoute(req)
	if err != nil {
		tb.Errorf("%s %s: not an operation of the document: %v", method, target, err)
		return resp.StatusCode, resp.Header, got
	}
	opts := &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc, IncludeResponseStatus: true, MultiError: true}
	in := &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route, Options: opts}
	if err := openapi3filter.ValidateRequest(context.Background(), in); err != nil && resp.StatusCode/100 == 2 {
		tb.Errorf("%s %s: the document refuses the request (%v), the server answered %d", method, target, err, resp.StatusCode)
	}
	out := &openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: resp.StatusCode, Header: resp.Header,
		Body: io.NopCloser(bytes.NewReader(got)), Options: opts}
	if err := openapi3filter.ValidateResponse(context.Background(), out); err != nil {
		tb.Errorf("%s %s: answered %d %.300s: not as documented: %v", method, target, resp.StatusCode, got, err)
	}
	return resp.StatusCode, resp.Header, got
}
