package httpjson

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// ParseLimit reads a list's limit query parameter: def when absent. A
// page holds at most max, so a larger limit, however large, lists max
// (the answer's cursor goes on); the relay, the receiver and the tunnel
// inspector read it so alike.
func ParseLimit(s string, def, max int) (int, error) {
	if s == "" {
		return def, nil
	}
	n, err := strconv.Atoi(s)
	// Atoi stops at the digit that overflows: what follows it is
	// unread, so only a run of digits is a number too large.
	if errors.Is(err, strconv.ErrRange) && n > 0 && digits(strings.TrimPrefix(s, "+")) {
		n, err = max, nil
	}
	if err != nil || n < 1 {
		return 0, fmt.Errorf("limit %q: want a whole number from 1 (a page lists at most %d)", s, max)
	}
	return min(n, max), nil
}

func digits(s string) bool {
	for _, c := range []byte(s) {
		if c < '0' || c > '9' {
			return false
		}
	}
	return s != ""
}
