package receiver

import (
	"strconv"
	"strings"
	"testing"
)

// FuzzParseLimit: limit= comes from the admin API's query string. A limit
// read is within 1 to MaxLimit and is the number written (capped); a
// refusal names the parameter and its value.
func FuzzParseLimit(f *testing.F) {
	for _, s := range []string{"", "1", "100", "1000", "1001", "0", "-1", "+5", "05", " 5", "1e3", "99999999999999999999", "0x10", "٣"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := ParseLimit(s)
		if err != nil {
			if n != 0 || !strings.HasPrefix(err.Error(), "limit: "+strconv.Quote(s)) {
				t.Fatalf("ParseLimit(%q) = %d, %v", s, n, err)
			}
			return
		}
		if n < 1 || n > MaxLimit {
			t.Fatalf("ParseLimit(%q) = %d, outside 1 to %d", s, n, MaxLimit)
		}
		if s == "" {
			if n != DefaultLimit {
				t.Fatalf("ParseLimit(\"\") = %d, want %d", n, DefaultLimit)
			}
			return
		}
		v, err := strconv.ParseInt(s, 10, 64)
		if err != nil || min(v, MaxLimit) != int64(n) {
			t.Fatalf("ParseLimit(%q) = %d, but %q is %d, %v", s, n, s, v, err)
		}
	})
}
