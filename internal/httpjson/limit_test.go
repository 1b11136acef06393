package httpjson_test

import (
	"math/big"
	"strconv"
	"strings"
	"testing"

	"github.com/sidehook/sidehook/internal/httpjson"
)

// FuzzParseLimit: limit= comes from a query string. A limit read is
// within 1 to max and is the number written, capped at max however large
// it is; a refusal names the parameter and its value.
func FuzzParseLimit(f *testing.F) {
	const def, max = 100, 1000
	for _, s := range []string{"", "1", "100", "1000", "1001", "0", "-1", "+5", "05", " 5", "1e3", "99999999999999999999", "-99999999999999999999", "20000000000000000000A", "0x10", "٣"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := httpjson.ParseLimit(s, def, max)
		if err != nil {
			if n != 0 || !strings.HasPrefix(err.Error(), "limit "+strconv.Quote(s)+": ") {
				t.Fatalf("ParseLimit(%q) = %d, %v", s, n, err)
			}
			return
		}
		if s == "" {
			if n != def {
				t.Fatalf("ParseLimit(\"\") = %d, want %d", n, def)
			}
			return
		}
		// What Atoi reads, at any size.
		v, ok := new(big.Int).SetString(strings.TrimPrefix(s, "+"), 10)
		if !ok || strings.HasPrefix(s, "+-") || v.Sign() < 1 {
			t.Fatalf("ParseLimit(%q) = %d, want a refusal", s, n)
		}
		if want := bigMin(v, big.NewInt(max)); int64(n) != want.Int64() {
			t.Fatalf("ParseLimit(%q) = %d, want %d", s, n, want)
		}
	})
}

func bigMin(a, b *big.Int) *big.Int {
	if a.Cmp(b) < 0 {
		return a
	}
	return b
}
