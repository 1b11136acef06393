package cli

import (
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// TestReceiveReserveBelowFloor: a --min-free-disk the capture store would
// refuse is a usage error naming where it came from (exit 2, one line),
// not the store's error at open (exit 1, naming neither).
func TestReceiveReserveBelowFloor(t *testing.T) {
	for _, tc := range []struct {
		name string
		env  map[string]string
		args []string
		want string
	}{
		{"Flag", nil, []string{"--min-free-disk", "1MiB"}, "receive: --min-free-disk: 1.0 MiB is below the store's floor of 80 MiB"},
		{"Variable", map[string]string{"SIDEHOOK_RECEIVE_MIN_FREE_DISK": "1MiB"}, nil, "receive: SIDEHOOK_RECEIVE_MIN_FREE_DISK: 1.0 MiB is below"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"receive", "--listen", "127.0.0.1:0", "--data", t.TempDir()}, tc.args...)
			code, _, stderr := runCLI(t, func(k string) string { return tc.env[k] }, args...)
			if code != 2 || !strings.Contains(stderr, tc.want) || strings.Count(strings.TrimSpace(stderr), "\n") != 0 {
				t.Errorf("got exit %d, stderr %q; want 2 and one line with %q", code, stderr, tc.want)
			}
		})
	}
}

// TestReceiveReserveHelp: the floor that --min-free-disk's help names is
// the store's: that much starts a receiver, a byte less is refused.
func TestReceiveReserveHelp(t *testing.T) {
	_, help, _ := runCLI(t, nil, "receive", "--help")
	m := regexp.MustCompile(`at least (\d+) MiB`).FindStringSubmatch(help)
	if m == nil || strings.Contains(help, "a memtable flush's worth") {
		t.Fatalf("--min-free-disk's help names no floor in MiB: %s", help)
	}
	mib, _ := strconv.ParseInt(m[1], 10, 64)
	floor := strconv.FormatInt(mib<<20, 10)
	startReceive(t, nil, "--data", t.TempDir(), "--min-free-disk", floor)
	below := strconv.FormatInt(mib<<20-1, 10)
	if code, _, stderr := runCLI(t, nil, "receive", "--listen", "127.0.0.1:0", "--data", t.TempDir(), "--min-free-disk", below); code != 2 {
		t.Errorf("--min-free-disk %s, a byte below the help's floor: got exit %d (%s), want 2", below, code, stderr)
	}
}
