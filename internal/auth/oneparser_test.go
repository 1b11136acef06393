package auth

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestOneTokenParser guards RFC 8725 §2.8's advice that a token be read
// in one place: every token goes through jwt.Parser.ParseWithClaims, and
// no code of this package takes golang-jwt apart to check a signature or
// validate claims on its own (as a fast path in front of the parser once
// did, with its own header cache and claims decoder).
func TestOneTokenParser(t *testing.T) {
	t.Parallel()
	// The pieces a second parser is built from.
	forbidden := map[string]string{
		"jwt.NewValidator":     "validates claims outside the parser",
		"jwt.Validator":        "validates claims outside the parser",
		"jwt.GetSigningMethod": "picks a signing method outside the parser",
	}
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	parsers := 0
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		src, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		f, err := parser.ParseFile(fset, name, src, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			sel, ok := n.(*ast.SelectorExpr)
			if !ok {
				return true
			}
			// jwt.SigningMethodHS256.Verify(…): a signature checked by hand.
			if inner, ok := sel.X.(*ast.SelectorExpr); ok && sel.Sel.Name == "Verify" {
				if pkg, ok := inner.X.(*ast.Ident); ok && pkg.Name == "jwt" {
					t.Errorf("%s: jwt.%s.Verify checks a signature outside the parser", fset.Position(sel.Pos()), inner.Sel.Name)
				}
			}
			if pkg, ok := sel.X.(*ast.Ident); ok && pkg.Name == "jwt" {
				if why, bad := forbidden["jwt."+sel.Sel.Name]; bad {
					t.Errorf("%s: jwt.%s %s", fset.Position(sel.Pos()), sel.Sel.Name, why)
				}
				if sel.Sel.Name == "NewParser" {
					parsers++
				}
			}
			return true
		})
	}
	if parsers != 1 {
		t.Errorf("jwt.NewParser: got %d call sites, want exactly 1 (tokenCheck)", parsers)
	}
}
