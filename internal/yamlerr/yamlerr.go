// Package yamlerr words the errors of go.yaml.in/yaml for the person who
// wrote the file: one line, without the parser's "yaml: " prefix, its
// "unmarshal errors:" heading or Go type names, and a tab in a line's
// indentation named as such, which the parser's own words ("found
// character that cannot start any token") do not say, nor, on the first
// line, where. The relay's configuration, the receiver's rules and the
// values files are read with it.
package yamlerr

import (
	"bytes"
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// tabMessage is what the parser says of a tab that indents a line.
const tabMessage = "found character that cannot start any token"

// Tab is the reason given for a line indented with a tab.
const Tab = "a tab indents this line: YAML indents with spaces"

// goType matches what the parser says of Go types: "into int", "in type
// config.RawOrg".
var goType = regexp.MustCompile(` (into|in type) [\w.\[\]*]+`)

// Describe is err, from parsing data, in the writer's words: the line it
// names (0 when it names none) and what is wrong there. Several errors (a
// decode's list) are joined with "; ", each keeping its own line.
func Describe(data []byte, err error) (line int, reason string) {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	msg = strings.TrimPrefix(msg, "unmarshal errors:\n")
	parts := strings.Split(msg, "\n")
	for i := range parts {
		parts[i] = strings.TrimSpace(parts[i])
	}
	msg = goType.ReplaceAllString(strings.Join(parts, "; "), "")
	if l, rest, ok := strings.Cut(msg, ": "); ok && strings.HasPrefix(l, "line ") && !strings.Contains(rest, "; ") {
		if n, err := strconv.Atoi(strings.TrimPrefix(l, "line ")); err == nil {
			line, msg = n, rest
		}
	}
	switch {
	case line > 0 && tabIndented(data, line):
		return line, Tab
	case strings.Contains(msg, tabMessage):
		if n := firstTabIndented(data); n > 0 {
			return n, Tab
		}
	}
	return line, msg
}

// Reason is Describe on one line: "line 2: a tab indents this line: …".
func Reason(data []byte, err error) string {
	line, reason := Describe(data, err)
	if line == 0 {
		return reason
	}
	return fmt.Sprintf("line %d: %s", line, reason)
}

// tabIndented reports whether line n (from 1) of data has a tab in its
// indentation.
func tabIndented(data []byte, n int) bool {
	lines := bytes.Split(data, []byte("\n"))
	if n < 1 || n > len(lines) {
		return false
	}
	l := lines[n-1]
	indent := l[:len(l)-len(bytes.TrimLeft(l, " \t"))]
	return bytes.IndexByte(indent, '\t') >= 0
}

// firstTabIndented is the first line of data with a tab in its
// indentation, or 0.
func firstTabIndented(data []byte) int {
	for i := range bytes.Count(data, []byte("\n")) + 1 {
		if tabIndented(data, i+1) {
			return i + 1
		}
	}
	return 0
}
