// Package openapitest checks an OpenAPI document against the routes a
// server registers: every route documented, every documented route served,
// and the document valid per a standard OpenAPI 3.1 validator
// (kin-openapi). Test-only: the binary never links it.
package openapitest

import (
	"context"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/sidehook/sidehook/internal/openapi"
)

// RoutesIn returns the "METHOD /path" patterns registered with
// mux.Handle or mux.HandleFunc in a Go source file. Patterns without a
// method (pages, prefixes, the catch-all) are left out: they are not API.
func RoutesIn(tb testing.TB, file string) []string {
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
		if err == nil && strings.Contains(p, " ") {
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
