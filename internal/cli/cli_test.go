package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// runCLI runs the whole program in-process and returns its exit code and
// output, as a user at a shell would see them.
func runCLI(tb testing.TB, getenv func(string) string, args ...string) (code int, stdout, stderr string) {
	tb.Helper()
	return runCLIInput(tb, getenv, "", args...)
}

// runCLIInput is runCLI with stdin as the standard input.
func runCLIInput(tb testing.TB, getenv func(string) string, stdin string, args ...string) (code int, stdout, stderr string) {
	tb.Helper()
	if getenv == nil {
		getenv = func(string) string { return "" }
	}
	var out, errOut bytes.Buffer
	err := Run(context.Background(), append([]string{"sidehook"}, args...), getenv, strings.NewReader(stdin), &out, &errOut)
	code = ExitCode(err, &errOut)
	return code, out.String(), errOut.String()
}

func TestUsageErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"UnknownCommand", []string{"nope"}, `unknown command "nope"`},
		// Go's flag package words these "flag provided but not defined:
		// -nope" and "invalid value … for flag -ttl: parse error"; a user
		// reads the flag as they write it, and what value it wants.
		{"UnknownFlag", []string{"token", "--nope"}, "token: unknown flag --nope (see 'sidehook token --help')"},
		{"UnknownGlobalFlag", []string{"--nope", "version"}, "unknown flag --nope (see 'sidehook --help')"},
		{"FlagWithoutValue", []string{"relay", "--listen"}, "relay: --listen needs a value"},
		{"BadDuration", []string{"token", "--ttl", "5"}, `token: --ttl "5": want a duration such as 30s, 5m or 1h30m`},
		{"BadDurationOldName", []string{"relay", "--grace", "x"}, `relay: --grace "x": want a duration`},
		{"BadWholeNumber", []string{"replay", "--max", "x"}, `replay: --max "x": want a whole number`},
		{"BadBool", []string{"relay", "--in-memory=maybe"}, `relay: --in-memory "maybe": want true or false`},
		{"TokenMissingFlags", []string{"token"}, "--secret-key and --org are required"},
		{"TokenShortSecret", []string{"token", "--secret-key", "short", "--org", "demo"}, "need at least 32"},
		// Commands that never log or set a memory limit check the global
		// flags too: a typo is a usage error wherever it is made.
		{"BadLogLevel", []string{"--log-level", "loud", "version"}, `version: --log-level "loud"`},
		{"BadLogFormat", []string{"send", "--log-format", "yaml"}, `send: --log-format "yaml"`},
		{"BadMemoryLimitToken", []string{"token", "--memory-limit", "lots"}, `token: --memory-limit "lots": want a size such as 1MiB`},
		{"BadMemoryLimit", []string{"--memory-limit", "lots", "receive", "--in-memory", "--listen", "127.0.0.1:0"}, `--memory-limit "lots"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, stderr := runCLI(t, nil, tt.args...)
			if code != 2 {
				t.Errorf("exit code: got %d, want 2 (stderr %q)", code, stderr)
			}
			if !strings.Contains(stderr, tt.want) {
				t.Errorf("stderr: got %q, want it to contain %q", stderr, tt.want)
			}
			if n := strings.Count(strings.TrimSpace(stderr), "\n"); n != 0 {
				t.Errorf("stderr: got %d lines, want one: %q", n+1, stderr)
			}
		})
	}
}

// TestBadValueFromEnv: a variable with a value its flag cannot take names
// the command, the variable and what the flag wants, not "parse error"
// (a command's own variable named no command, as a flag's error does). A global
// flag's variable was named as the flag (--log-level "loud"), which a
// command line without it left unexplained.
func TestBadValueFromEnv(t *testing.T) {
	tests := []struct {
		name, variable, value string
		global                []string // before the command
		want                  string
	}{
		{"Duration", "SIDEHOOK_TOKEN_TTL", "5", nil, `token: SIDEHOOK_TOKEN_TTL="5": want a duration such as 30s, 5m or 1h30m`},
		{"Bool", "SIDEHOOK_TOKEN_JSON", "maybe", nil, `token: SIDEHOOK_TOKEN_JSON="maybe": want true or false`},
		{"LogLevel", "SIDEHOOK_LOG_LEVEL", "loud", nil, `token: SIDEHOOK_LOG_LEVEL="loud": want debug, info, warn or error`},
		{"LogFormat", "SIDEHOOK_LOG_FORMAT", "yaml", nil, `token: SIDEHOOK_LOG_FORMAT="yaml": want console or json`},
		{"MemoryLimit", "SIDEHOOK_MEMORY_LIMIT", "lots", nil, `token: SIDEHOOK_MEMORY_LIMIT="lots": want a size such as 1MiB`},
		// The command line wins over the variable, so its value is the one
		// to name.
		{"FlagBeatsVariable", "SIDEHOOK_LOG_LEVEL", "info", []string{"--log-level=loud"}, `token: --log-level "loud": want debug`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			getenv := func(k string) string {
				if k == tt.variable {
					return tt.value
				}
				return ""
			}
			args := append(tt.global, "token", "--secret-key", "0123456789abcdef0123456789abcdef", "--org", "demo")
			code, _, stderr := runCLI(t, getenv, args...)
			if code != 2 || !strings.Contains(stderr, tt.want) {
				t.Errorf("got exit %d, %q, want 2 and %q", code, stderr, tt.want)
			}
		})
	}
}

func TestToken(t *testing.T) {
	secret := "0123456789abcdef0123456789abcdef"
	code, out, stderr := runCLI(t, nil, "token", "--secret-key", secret, "--org", "demo", "--ttl", "1h")
	if code != 0 {
		t.Fatalf("exit %d, want 0: %s", code, stderr)
	}
	tok, err := jwt.Parse(strings.TrimSpace(out), func(*jwt.Token) (any, error) { return []byte(secret), nil },
		jwt.WithValidMethods([]string{"HS256"}))
	if err != nil {
		t.Fatalf("token does not verify: %v", err)
	}
	claims := tok.Claims.(jwt.MapClaims)
	if claims["org"] != "demo" || claims["iss"] != "sidehook" || claims["jti"] == "" {
		t.Errorf("claims: got %v, want org demo, iss sidehook and a jti", claims)
	}
	exp, err := claims.GetExpirationTime()
	if err != nil || exp == nil || time.Until(exp.Time) < 59*time.Minute {
		t.Errorf("exp: got %v %v, want about an hour from now", exp, err)
	}
}

func TestTokenFromEnv(t *testing.T) {
	env := map[string]string{
		"SIDEHOOK_SECRET_KEY": "0123456789abcdef0123456789abcdef",
		"SIDEHOOK_ORG":        "acme",
	}
	code, out, stderr := runCLI(t, func(k string) string { return env[k] }, "token")
	if code != 0 {
		t.Fatalf("exit %d, want 0: %s", code, stderr)
	}
	parts := strings.Split(strings.TrimSpace(out), ".")
	if len(parts) != 3 {
		t.Fatalf("got %q, want a JWT", out)
	}
}

// syncBuffer is an output the command's goroutines and the test share.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startCommand runs a long-running command (`sidehook receive`, `sidehook
// relay`) in-process with JSON logs and returns its URL, read from its
// ready line, and a stop function that cancels it and returns its result
// (also called by t.Cleanup).
func startCommand(t *testing.T, getenv func(string) string, args ...string) (url string, stop func() error) {
	t.Helper()
	url, _, stop = startCommandReady(t, getenv, args...)
	return url, stop
}

// startCommandReady is startCommand that also returns the dashboard URL of
// the ready line.
func startCommandReady(t *testing.T, getenv func(string) string, args ...string) (url, dashboard string, stop func() error) {
	t.Helper()
	if getenv == nil {
		getenv = func(string) string { return "" }
	}
	ctx, cancel := context.WithCancel(context.Background())
	logs := &syncBuffer{}
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, append([]string{"sidehook", "--log-format", "json"}, args...), getenv, strings.NewReader(""), io.Discard, logs)
	}()
	var once sync.Once
	var result error
	stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case result = <-done:
			case <-time.After(15 * time.Second):
				t.Errorf("%s did not stop within 15s", args[0])
			}
		})
		return result
	}
	t.Cleanup(func() {
		if err := stop(); err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("%s: %v", args[0], err)
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		for _, l := range strings.Split(logs.String(), "\n") {
			var line struct{ Message, URL, Dashboard string }
			if json.Unmarshal([]byte(l), &line) == nil && line.Message == "ready" && line.URL != "" {
				return line.URL, line.Dashboard, stop
			}
		}
		select {
		case err := <-done:
			t.Fatalf("%s exited: %v; logs: %s", args[0], err, logs.String())
		case <-time.After(10 * time.Millisecond):
		}
	}
	t.Fatalf("%s not ready within 10s; logs: %s", args[0], logs.String())
	return "", "", nil
}

func TestTokenJSON(t *testing.T) {
	secret := "0123456789abcdef0123456789abcdef"
	code, out, stderr := runCLI(t, nil, "token", "--secret-key", secret, "--org", "demo", "--ttl", "10m", "--json")
	if code != 0 {
		t.Fatalf("exit %d, want 0: %s", code, stderr)
	}
	var got struct {
		Token, Header, Org, Issuer string
		JTI                        string     `json:"jti"`
		IssuedAt                   time.Time  `json:"issued_at"`
		ExpiresAt                  *time.Time `json:"expires_at"`
	}
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("got %q: %v", out, err)
	}
	tok, err := jwt.Parse(got.Token, func(*jwt.Token) (any, error) { return []byte(secret), nil }, jwt.WithValidMethods([]string{"HS256"}))
	if err != nil {
		t.Fatalf("token does not verify: %v", err)
	}
	claims := tok.Claims.(jwt.MapClaims)
	iat, _ := claims.GetIssuedAt()
	exp, _ := claims.GetExpirationTime()
	if got.Header != "x-webio-token" || got.Org != "demo" || got.Issuer != "sidehook" || claims["org"] != "demo" || got.JTI == "" || claims["jti"] != got.JTI ||
		iat == nil || !got.IssuedAt.Equal(iat.Time) || exp == nil || got.ExpiresAt == nil || !got.ExpiresAt.Equal(exp.Time) {
		t.Errorf("got %+v, claims %v: want the token's own claims", got, claims)
	}
	// Without --ttl there is no expiry to report.
	_, out, _ = runCLI(t, nil, "token", "--secret-key", secret, "--org", "demo", "--json")
	if strings.Contains(out, "expires_at") {
		t.Errorf("no --ttl: got %q, want no expires_at", out)
	}
	// An empty --issuer signs with the default, and says so: the JSON
	// reported "issuer":"" for a token whose iss is sidehook.
	_, out, _ = runCLI(t, nil, "token", "--secret-key", secret, "--org", "demo", "--issuer", "", "--json")
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("got %q: %v", out, err)
	}
	tok, _, err = jwt.NewParser().ParseUnverified(got.Token, jwt.MapClaims{})
	if err != nil {
		t.Fatal(err)
	}
	if iss := tok.Claims.(jwt.MapClaims)["iss"]; got.Issuer != iss {
		t.Errorf("empty --issuer: got issuer %q, want the token's iss %q", got.Issuer, iss)
	}
}
