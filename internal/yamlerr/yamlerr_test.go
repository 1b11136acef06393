package yamlerr_test

import (
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/sidehook/sidehook/internal/yamlerr"
)

// TestReason: the parser's errors, from a real parse of each document, in
// the writer's words.
func TestReason(t *testing.T) {
	type doc struct {
		N    int      `yaml:"n"`
		List []string `yaml:"list"`
	}
	tests := []struct{ name, data, want string }{
		{"TabFirstLine", "\tn: 1\n", "line 1: " + yamlerr.Tab},
		{"TabBeforeListItem", "list:\n\t- a\n", "line 2: " + yamlerr.Tab},
		{"TabUnderMapping", "list:\n  - a\nn:\n\t 1\n", "line 4: " + yamlerr.Tab},
		{"Syntax", "n: [1\n", "line 1: did not find expected ',' or ']'"},
		{"TypeNoGoNames", "n: abc\n", "line 1: cannot unmarshal !!str `abc`"},
		{"SeveralTypes", "n: abc\nlist: x\n", "line 1: cannot unmarshal !!str `abc`; line 2: cannot unmarshal !!str `x`"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var d doc
			err := yaml.Unmarshal([]byte(tt.data), &d)
			if err == nil {
				t.Fatalf("%q parsed", tt.data)
			}
			if got := yamlerr.Reason([]byte(tt.data), err); got != tt.want {
				t.Errorf("got %q, want %q (the parser: %q)", got, tt.want, err)
			}
		})
	}
}

// FuzzReason: whatever the document, the reason is one line without the
// parser's prefix.
func FuzzReason(f *testing.F) {
	for _, s := range []string{"\tn: 1", "list:\n\t- a", "n: [1", "n: abc\nlist: x", "a: b: c", "- \t"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data string) {
		var v map[string]any
		err := yaml.Unmarshal([]byte(data), &v)
		if err == nil {
			return
		}
		got := yamlerr.Reason([]byte(data), err)
		if got == "" || strings.Contains(got, "\n") || strings.HasPrefix(got, "yaml: ") {
			t.Fatalf("Reason(%q, %q) = %q: want one line without the parser's prefix", data, err, got)
		}
	})
}
