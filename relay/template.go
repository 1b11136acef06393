package relay

import (
	"strings"
)

// Segment is a piece of a <<field>> template: literal text, or a field
// with an optional default.
type Segment struct {
	Text       string // literal text when Field is ""
	Field      string
	Default    string
	HasDefault bool
}

// maxFieldLen bounds a field name; longer "<<…>>" runs are literal text.
const maxFieldLen = 128

// ParseTemplate splits a template into literal text and <<field>> or
// <<field|default>> placeholders. A field name is letters, digits, '_',
// '-' and '.'; anything between << and >> that is not a valid placeholder
// stays literal text, so every string is a valid template.
func ParseTemplate(s string) []Segment {
	var out []Segment
	lit := strings.Builder{}
	for len(s) > 0 {
		i := strings.Index(s, "<<")
		if i < 0 {
			lit.WriteString(s)
			break
		}
		lit.WriteString(s[:i])
		rest := s[i+2:]
		j := strings.Index(rest, ">>")
		if j < 0 {
			lit.WriteString(s[i:])
			break
		}
		inner := rest[:j]
		name, def, hasDef := strings.Cut(inner, "|")
		name = strings.TrimSpace(name)
		if !validField(name) || strings.Contains(inner, "<<") {
			// Not a placeholder: keep the "<" and look again one byte on,
			// so "<<<x>>" still finds "<<x>>".
			lit.WriteString("<")
			s = s[i+1:]
			continue
		}
		if lit.Len() > 0 {
			out = append(out, Segment{Text: lit.String()})
			lit.Reset()
		}
		out = append(out, Segment{Field: name, Default: def, HasDefault: hasDef})
		s = rest[j+2:]
	}
	if lit.Len() > 0 {
		out = append(out, Segment{Text: lit.String()})
	}
	return out
}

func validField(s string) bool {
	if s == "" || len(s) > maxFieldLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}

// TemplateFields lists the distinct fields of a template in order.
func TemplateFields(segs []Segment) []string {
	var out []string
	seen := map[string]bool{}
	for _, s := range segs {
		if s.Field != "" && !seen[s.Field] {
			seen[s.Field] = true
			out = append(out, s.Field)
		}
	}
	return out
}

// Render fills a parsed template: a field with no value (absent or null)
// renders as its default when it has one, else as the literal "null", as
// Webio does. missing lists the fields without a value.
func Render(segs []Segment, values map[string]*string) (text string, missing []string) {
	var b strings.Builder
	seen := map[string]bool{}
	for _, s := range segs {
		if s.Field == "" {
			b.WriteString(s.Text)
			continue
		}
		v := values[s.Field]
		switch {
		case v != nil:
			b.WriteString(*v)
			continue
		case s.HasDefault:
			b.WriteString(s.Default)
		default:
			b.WriteString("null")
		}
		if !seen[s.Field] {
			seen[s.Field] = true
			missing = append(missing, s.Field)
		}
	}
	return b.String(), missing
}
