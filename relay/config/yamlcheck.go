package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"reflect"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/sidehook/sidehook/internal/yamlerr"
)

// errEmpty is the answer to a file with nothing in it.
var errEmpty = errors.New("empty configuration: organisations is required")

// decodeFile decodes exactly one YAML document into f. Before decoding,
// it walks the document against File's keys, so an unknown key or a value
// of the wrong kind is reported by its path in the file (never a Go type)
// with its line, and a misspelt key with the nearest valid one.
func decodeFile(data []byte, f *File) error {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return errEmpty
		}
		return syntaxError(data, err)
	}
	var next yaml.Node
	switch err := dec.Decode(&next); {
	case err == nil && !emptyDocument(&next):
		return fmt.Errorf("line %d: a second YAML document starts here: a configuration is one document, remove the \"---\" and merge the two", next.Line)
	case err != nil && !errors.Is(err, io.EOF):
		return syntaxError(data, err)
	}
	if emptyDocument(&doc) {
		return errEmpty
	}
	root := doc.Content[0]
	if err := checkNode(root, reflect.TypeFor[File](), ""); err != nil {
		return err
	}
	if err := root.Decode(f); err != nil {
		return cleanYAMLError(err)
	}
	return nil
}

func emptyDocument(n *yaml.Node) bool {
	if n.Kind != yaml.DocumentNode || len(n.Content) == 0 {
		return true
	}
	c := n.Content[0]
	return c.Kind == yaml.ScalarNode && c.Tag == "!!null"
}

// checkNode checks that n has the shape of t; path names n in messages.
func checkNode(n *yaml.Node, t reflect.Type, path string) error {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return nil // an empty value leaves the default
	}
	if t == reflect.TypeFor[Secrets]() {
		if n.Kind == yaml.ScalarNode {
			return nil
		}
		return checkNode(n, reflect.TypeFor[[]string](), path)
	}
	switch t.Kind() {
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			return mismatch(n, path, "a mapping of keys (key: value)")
		}
		return checkMapping(n, t, path)
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			return mismatch(n, path, "a list ([a, b] or one \"- item\" per line)")
		}
		for i, c := range n.Content {
			if err := checkNode(c, t.Elem(), fmt.Sprintf("%s[%d]", path, i)); err != nil {
				return err
			}
		}
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			return mismatch(n, path, "a mapping (name: value)")
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			if err := checkNode(n.Content[i+1], t.Elem(), join(path, n.Content[i].Value)); err != nil {
				return err
			}
		}
	case reflect.String:
		if n.Kind != yaml.ScalarNode {
			return mismatch(n, path, "a string")
		}
	case reflect.Int, reflect.Int64:
		if n.Kind != yaml.ScalarNode || n.Tag != "!!int" {
			return mismatch(n, path, "a whole number")
		}
	case reflect.Float64:
		if n.Kind != yaml.ScalarNode || (n.Tag != "!!float" && n.Tag != "!!int") {
			return mismatch(n, path, "a number")
		}
	case reflect.Bool:
		if n.Kind != yaml.ScalarNode || n.Tag != "!!bool" {
			return mismatch(n, path, "true or false")
		}
	}
	return nil
}

// checkMapping checks the keys of a mapping against t's yaml keys.
func checkMapping(n *yaml.Node, t reflect.Type, path string) error {
	fields := yamlFields(t)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Value == "<<" && k.Tag == "!!merge" {
			if err := checkNode(v, t, path); err != nil {
				return err
			}
			continue
		}
		ft, ok := fields[k.Value]
		if !ok {
			return unknownKey(k, path, fields)
		}
		if err := checkNode(v, ft, join(path, k.Value)); err != nil {
			return err
		}
	}
	return nil
}

// yamlFields maps the yaml keys of struct t to their types.
func yamlFields(t reflect.Type) map[string]reflect.Type {
	m := make(map[string]reflect.Type, t.NumField())
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "-" || !f.IsExported() {
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		m[name] = f.Type
	}
	return m
}

func unknownKey(k *yaml.Node, path string, fields map[string]reflect.Type) error {
	where := ""
	if path != "" {
		where = " in " + path
	}
	valid := make([]string, 0, len(fields))
	for name := range fields {
		valid = append(valid, name)
	}
	sort.Strings(valid)
	if near := nearest(k.Value, valid); near != "" {
		return fmt.Errorf("line %d: unknown key %q%s; did you mean %q?", k.Line, k.Value, where, near)
	}
	return fmt.Errorf("line %d: unknown key %q%s; valid keys are %s", k.Line, k.Value, where, strings.Join(valid, ", "))
}

// nearest returns the valid key closest to s, if it is close enough to be
// a typo: at most a third of its letters edited (one for short keys).
func nearest(s string, valid []string) string {
	best, bestDist := "", max(1, len(s)/3)+1
	for _, v := range valid {
		if d := editDistance(strings.ToLower(s), v); d < bestDist {
			best, bestDist = v, d
		}
	}
	return best
}

// editDistance is the optimal string alignment distance: insertions,
// deletions, substitutions and transpositions of adjacent bytes.
func editDistance(a, b string) int {
	prev2 := make([]int, len(b)+1)
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(b)]
}

func mismatch(n *yaml.Node, path, want string) error {
	if path == "" {
		path = "the configuration"
	}
	return fmt.Errorf("line %d: %s: want %s, got %s", n.Line, path, want, describe(n))
}

// describe says what a node is, in the words of the file.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	}
	v := n.Value
	if len(v) > 40 {
		v = v[:40] + "…"
	}
	return fmt.Sprintf("%q", v)
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// syntaxError words a YAML syntax error as the file's writer reads it
// (yamlerr): "line 2: not valid YAML: a tab indents this line: …".
func syntaxError(data []byte, err error) error {
	line, reason := yamlerr.Describe(data, err)
	if line > 0 {
		return fmt.Errorf("line %d: not valid YAML: %s", line, reason)
	}
	return fmt.Errorf("not valid YAML: %s", reason)
}

// cleanYAMLError is the last resort for an error checkNode did not
// foresee: one line, without Go type names.
func cleanYAMLError(err error) error {
	return errors.New(yamlerr.Reason(nil, err))
}
