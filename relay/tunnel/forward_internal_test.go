package tunnel

import (
	"testing"
	"time"
)

// TestHostPort: the address a refused forward names is the one dialled,
// with the scheme's port when the URL has none.
func TestHostPort(t *testing.T) {
	for in, want := range map[string]string{
		"http://localhost:3000/hooks": "localhost:3000",
		"https://localhost/hooks":     "localhost:443",
		"http://127.0.0.1":            "127.0.0.1:80",
		"http://[::1]:8080/x?y=1":     "[::1]:8080",
	} {
		if got := hostPort(in); got != want {
			t.Errorf("hostPort(%q): got %q, want %q", in, got, want)
		}
	}
}

// TestRoughly: a timeout is said as a person says it.
func TestRoughly(t *testing.T) {
	for in, want := range map[time.Duration]string{
		14990 * time.Millisecond:  "15s",
		13491 * time.Millisecond:  "13s",
		4499 * time.Millisecond:   "4.5s",
		448200 * time.Microsecond: "450ms",
	} {
		if got := roughly(in).String(); got != want {
			t.Errorf("roughly(%v): got %s, want %s", in, got, want)
		}
	}
}
