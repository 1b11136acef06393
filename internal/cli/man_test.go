package cli

import (
	"strings"
	"testing"
)

// TestManPageDefaults: the man page gives each flag's variables and
// default as --help does. Made from Markdown, it read a usage's end,
// "[$VAR] (default: x)", as a link, and showed neither.
func TestManPageDefaults(t *testing.T) {
	code, page, stderr := runCLI(t, nil, "man")
	if code != 0 {
		t.Fatalf("man: exit %d: %s", code, stderr)
	}
	for _, want := range []string{
		`\fB--listen\fP="": address to listen on [$SIDEHOOK_RECEIVE_LISTEN, $SIDEHOOK_LISTEN] (default: "127.0.0.1:8081")`,
		`\fB--relay-listen\fP="": the relay's address [$SIDEHOOK_DEV_RELAY_LISTEN, $SIDEHOOK_RELAY_LISTEN] (default: "127.0.0.1:8080")`,
		`(default: 10s)`,
		`\fB--log-level\fP="": debug, info, warn or error [$SIDEHOOK_LOG_LEVEL] (default: "info")`,
	} {
		if !strings.Contains(page, want) {
			t.Errorf("man page lacks %q", want)
		}
	}
	if strings.Contains(page, `\[`) {
		t.Error(`man page shows the escape \[ itself`)
	}
	// The page's escapes are its own: --help after it is as before.
	_, help, _ := runCLI(t, nil, "receive", "--help")
	if !strings.Contains(help, `[$SIDEHOOK_RECEIVE_LISTEN, $SIDEHOOK_LISTEN] (default: "127.0.0.1:8081")`) || strings.Contains(help, `\[`) {
		t.Errorf("receive --help after the man page: %s", help)
	}
}
