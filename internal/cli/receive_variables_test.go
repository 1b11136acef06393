package cli

import (
	"strings"
	"testing"
)

// TestReceiveBadValueNamesItsVariable: a value the receiver refuses names
// where it came from; from a variable, the variable, not the flag the
// command line never gave.
func TestReceiveBadValueNamesItsVariable(t *testing.T) {
	for _, tc := range []struct {
		name, variable, value, want string
	}{
		{"Leeway", "SIDEHOOK_RECEIVE_LEEWAY", "-1s", "receive: SIDEHOOK_RECEIVE_LEEWAY must not be negative"},
		{"Grace", "SIDEHOOK_SHUTDOWN_GRACE", "0s", "receive: SIDEHOOK_SHUTDOWN_GRACE must be positive"},
		{"MaxBody", "SIDEHOOK_MAX_BODY", "lots", `receive: SIDEHOOK_MAX_BODY: "lots": want a size`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			getenv := func(k string) string {
				if k == tc.variable {
					return tc.value
				}
				return ""
			}
			code, _, stderr := runCLI(t, getenv, "receive", "--in-memory", "--listen", "127.0.0.1:0")
			if code != 2 || !strings.Contains(stderr, tc.want) {
				t.Errorf("got exit %d, %q; want 2 and %q", code, stderr, tc.want)
			}
		})
	}
}
