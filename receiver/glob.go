package receiver

import (
	"fmt"
	"net/url"
	"path"
	"slices"
	"strings"
	"unicode/utf8"
)

// A path glob, as rules and the requests filter use it, has path.Match
// semantics ('*' within one segment, '?', '[…]', '\\' escapes) with one
// addition: a '*' that ends the pattern matches the rest of the path, '/'
// included, so "/flaky*" matches "/flaky", "/flaky-2" and "/flaky/a/b", the
// way users expect a prefix match to read. An empty pattern matches every
// path.

// checkGlob reports a malformed pattern, or one that can match no path: a
// request path starts with '/', so "flaky*" would silently match nothing.
func checkGlob(pattern string) error {
	if _, err := path.Match(pattern, ""); err != nil {
		return fmt.Errorf("bad path pattern %q: %w", pattern, err)
	}
	if pattern != "" && !strings.ContainsAny(pattern[:1], `/*?[\`) {
		return fmt.Errorf("path pattern %q matches no path: a path starts with /, such as %q", pattern, "/"+pattern)
	}
	return nil
}

// matchPath reports whether a request path, as sent (escaped), matches
// pattern. A pattern written as the path reads ("/café", "/~user") matches
// too: one that misses the escaped path is tried on the decoded one. So
// "/a%2Fb" matches only a request sent with the escaped slash, while
// "/a/b" matches both it and "/a/b", as it did when paths were kept
// decoded.
func matchPath(pattern, p string) bool {
	if matchGlob(pattern, p) {
		return true
	}
	if !strings.Contains(p, "%") {
		return false
	}
	d, err := url.PathUnescape(p)
	return err == nil && d != p && matchGlob(pattern, d)
}

// matchGlob reports whether p matches pattern; a malformed pattern matches
// nothing (patterns are checked when rules and filters are parsed).
func matchGlob(pattern, p string) bool {
	if pattern == "" {
		return true
	}
	if ok, _ := path.Match(pattern, p); ok {
		return true
	}
	base, ok := trailingStar(pattern)
	if !ok {
		return false
	}
	if !strings.ContainsAny(base, `*?[\`) {
		return strings.HasPrefix(p, base)
	}
	// The prefix before the final '*' must match some prefix of p; the
	// star then takes the rest, slashes and all. Trying path.Match on
	// every prefix cost time quadratic in the path, which the sender
	// chooses: one request of /hooks/ and 80,000 bytes held a core for 70 s
	// against the rule "/hooks/*/x*". One pass over p finds every prefix
	// base matches at once.
	toks, ok := globTokens(base)
	return ok && matchesPrefix(toks, p)
}

// globToken is one term of a path.Match pattern.
type globToken struct {
	kind   byte // '*', '?', '[' or 0 for a literal byte
	b      byte // the literal byte
	neg    bool // a class's '^'
	ranges [][2]rune
}

// globTokens splits a pattern path.Match accepts into its terms, read as
// path.Match reads them: a literal is one byte (after '\\' too), '*' runs
// are one '*', a class is its ranges. ok is false for a malformed pattern.
func globTokens(pattern string) (toks []globToken, ok bool) {
	if _, err := path.Match(pattern, ""); err != nil {
		return nil, false
	}
	esc := func(s string) (rune, string) {
		if s[0] == '\\' {
			s = s[1:]
		}
		r, n := utf8.DecodeRuneInString(s)
		return r, s[n:]
	}
	for s := pattern; len(s) > 0; {
		switch s[0] {
		case '*':
			if n := len(toks); n == 0 || toks[n-1].kind != '*' {
				toks = append(toks, globToken{kind: '*'})
			}
			s = s[1:]
		case '?':
			toks = append(toks, globToken{kind: '?'})
			s = s[1:]
		case '[':
			t := globToken{kind: '['}
			s = s[1:]
			if s[0] == '^' {
				t.neg, s = true, s[1:]
			}
			for len(t.ranges) == 0 || s[0] != ']' {
				var lo, hi rune
				lo, s = esc(s)
				hi = lo
				if s[0] == '-' {
					hi, s = esc(s[1:])
				}
				t.ranges = append(t.ranges, [2]rune{lo, hi})
			}
			toks, s = append(toks, t), s[1:]
		case '\\':
			toks, s = append(toks, globToken{b: s[1]}), s[2:]
		default:
			toks, s = append(toks, globToken{b: s[0]}), s[1:]
		}
	}
	return toks, true
}

// matchesPrefix reports whether toks match some prefix of p, path.Match's
// way ('*' and '?' never take a '/'), in time linear in p: it follows
// every term p can be at, byte by byte. A term ends at most utf8.UTFMax
// bytes on, so a few sets of terms are live at once.
func matchesPrefix(toks []globToken, p string) bool {
	const ring = utf8.UTFMax + 1
	var at [ring][]bool // at[pos%ring][k]: p[:pos] is matched up to term k
	for i := range at {
		at[i] = make([]bool, len(toks)+1)
	}
	at[0][0] = true
	for pos := 0; ; pos++ {
		cur := at[pos%ring]
		live := false
		for k, t := range toks {
			if cur[k] && t.kind == '*' {
				cur[k+1] = true // a '*' may take nothing
			}
		}
		if cur[len(toks)] {
			return true
		}
		for k, t := range toks {
			if !cur[k] || pos == len(p) {
				continue
			}
			live = true
			r, w := utf8.DecodeRuneInString(p[pos:])
			switch t.kind {
			case '*':
				if p[pos] != '/' {
					at[(pos+1)%ring][k] = true
				}
			case '?':
				if p[pos] != '/' {
					at[(pos+w)%ring][k+1] = true
				}
			case '[':
				in := false
				for _, rg := range t.ranges {
					in = in || rg[0] <= r && r <= rg[1]
				}
				if in != t.neg {
					at[(pos+w)%ring][k+1] = true
				}
			default:
				if p[pos] == t.b {
					at[(pos+1)%ring][k+1] = true
				}
			}
		}
		clear(cur)
		if pos == len(p) {
			return false
		}
		if !live {
			pending := false
			for i := range at {
				pending = pending || slices.Contains(at[i], true)
			}
			if !pending {
				return false
			}
		}
	}
}

// trailingStar returns the pattern without its final '*' when it ends with
// an unescaped one.
func trailingStar(pattern string) (string, bool) {
	if !strings.HasSuffix(pattern, "*") {
		return "", false
	}
	// Count the backslashes before the star: an odd number escapes it.
	n := 0
	for i := len(pattern) - 2; i >= 0 && pattern[i] == '\\'; i-- {
		n++
	}
	if n%2 == 1 {
		return "", false
	}
	return pattern[:len(pattern)-1], true
}
