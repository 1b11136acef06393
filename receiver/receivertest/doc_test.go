package receivertest_test

import (
	"go/ast"
	"go/doc"
	"go/parser"
	"go/printer"
	"go/token"
	"strings"
	"testing"
)

// TestOptionDoc: go doc shows Option as a type a reader can use without
// this package's internals: no unexported type in its declaration, and
// the With functions listed as its constructors.
func TestOptionDoc(t *testing.T) {
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "receivertest.go", nil, parser.ParseComments)
	if err != nil {
		t.Fatal(err)
	}
	pkg, err := doc.NewFromFiles(fset, []*ast.File{f}, "github.com/sidehook/sidehook/receiver/receivertest")
	if err != nil {
		t.Fatal(err)
	}
	for _, typ := range pkg.Types {
		if typ.Name != "Option" {
			continue
		}
		var b strings.Builder
		if err := printer.Fprint(&b, fset, typ.Decl); err != nil {
			t.Fatal(err)
		}
		if strings.Contains(b.String(), "config") {
			t.Errorf("go doc shows\n%s\nwant no unexported type in it", b.String())
		}
		if len(typ.Funcs) < 10 {
			t.Errorf("go doc lists %d constructors of Option, want the With functions", len(typ.Funcs))
		}
		return
	}
	t.Fatal("no type Option")
}
