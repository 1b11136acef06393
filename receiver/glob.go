package receiver

import (
	"fmt"
	"net/url"
	"path"
	"strings"
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
	// star then takes the rest, slashes and all.
	for i := len(p); i >= 0; i-- {
		if ok, _ := path.Match(base, p[:i]); ok {
			return true
		}
	}
	return false
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
