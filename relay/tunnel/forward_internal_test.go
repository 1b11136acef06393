package tunnel

import "testing"

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
