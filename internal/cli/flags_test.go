package cli

import (
	"os"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"
)

// env maps a test's environment variables to a getenv.
func envOf(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

// TestGlobalFlagsAnywhere: the global flags work before the command, after
// it and from their variables; the one nearest the command wins. The
// receiver builds its logger, then applies --memory-limit, so which of the
// two a usage error names says which value was read.
func TestGlobalFlagsAnywhere(t *testing.T) {
	recv := []string{"receive", "--in-memory", "--listen", "127.0.0.1:0"}
	tests := []struct {
		name string
		env  map[string]string
		args []string
		want string
	}{
		{"Before", nil, append([]string{"--log-level", "loud"}, recv...), `--log-level "loud"`},
		{"After", nil, append(recv, "--log-level", "loud"), `--log-level "loud"`},
		{"AfterWins", nil, append(append([]string{"--log-level", "loud"}, recv...), "--log-level", "info", "--memory-limit", "lots"), `--memory-limit "lots"`},
		{"FormatAfter", nil, append(recv, "--log-format", "yaml"), `--log-format "yaml"`},
		{"Env", map[string]string{"SIDEHOOK_LOG_LEVEL": "loud"}, recv, `SIDEHOOK_LOG_LEVEL="loud"`},
		{"FlagBeatsEnv", map[string]string{"SIDEHOOK_LOG_LEVEL": "loud"}, append(recv, "--log-level", "warn", "--memory-limit", "lots"), `--memory-limit "lots"`},
		{"BeforeBeatsEnv", map[string]string{"SIDEHOOK_LOG_LEVEL": "loud"}, append([]string{"--log-level", "warn"}, append(recv, "--memory-limit", "lots")...), `--memory-limit "lots"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, stderr := runCLI(t, envOf(tt.env), tt.args...)
			if code != 2 || !strings.Contains(stderr, tt.want) {
				t.Errorf("got exit %d %q, want 2 and %q", code, stderr, tt.want)
			}
		})
	}
}

func TestRenamedFlags(t *testing.T) {
	secret := "0123456789abcdef0123456789abcdef"
	tests := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"TokenOldName", []string{"token", "--secret", secret, "--org", "demo"}, 0, "."},
		{"TokenBothNames", []string{"token", "--secret", secret, "--secret-key", secret, "--org", "demo"}, 2, "token: give --secret-key only (--secret is its old name)"},
		{"RelayOldGrace", []string{"relay", "--api-key", "k", "--in-memory", "--grace", "0s"}, 2, "relay: --grace must be positive"},
		{"TokenOldNameShort", []string{"token", "--secret", "short", "--org", "demo"}, 2, "token: --secret is 5 bytes, need at least 32"},
		{"ReceiveNoGrace", []string{"receive", "--in-memory", "--listen", "127.0.0.1:0", "--shutdown-grace", "0s"}, 2, "receive: --shutdown-grace must be positive"},
		{"ReceiveShortAdminToken", []string{"receive", "--in-memory", "--listen", "127.0.0.1:0", "--admin-token", "s3cret"}, 2, "receive: --admin-token: 6 bytes, need at least 16"},
		{"ReceiveOldSecret", []string{"receive", "--in-memory", "--listen", "127.0.0.1:0", "--webio-secret", "short"}, 2, "receive: --webio-secret: 5 bytes, need at least 32"},
		{"ReplayOldSecret", []string{"replay", "--receiver", "http://127.0.0.1:1", "--all", "--webio-secret", secret}, 2, "replay: --webio-secret needs --org"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, stderr := runCLI(t, nil, tt.args...)
			if code != tt.code || !strings.Contains(out+stderr, tt.want) {
				t.Errorf("got exit %d %q %q, want %d and %q", code, out, stderr, tt.code, tt.want)
			}
		})
	}
	// The old names are not advertised.
	for cmd, old := range map[string]string{"token": "--secret ", "receive": "--webio-secret", "replay": "--webio-secret", "relay": " --grace"} {
		_, out, _ := runCLI(t, nil, "help", cmd)
		if strings.Contains(out, old) {
			t.Errorf("help %s shows the old name %q:\n%s", cmd, old, out)
		}
	}
}

func TestStrayArguments(t *testing.T) {
	for _, args := range [][]string{
		{"receive", "--in-memory", "extra"},
		{"token", "--org", "demo", "extra"},
		{"version", "extra"},
		{"man", "extra"},
		{"relay", "--api-key", "k", "sidehook.yaml"},
	} {
		code, _, stderr := runCLI(t, nil, args...)
		want := args[0] + `: unexpected argument "`
		if code != 2 || !strings.Contains(stderr, want) || strings.Count(strings.TrimSpace(stderr), "\n") != 0 {
			t.Errorf("%v: got exit %d %q, want 2 and one line with %q", args, code, stderr, want)
		}
	}
}

// flagEnvs lists every flag of every command with its variable.
func flagEnvs(t *testing.T) map[string][]string {
	t.Helper()
	app := newApp(newEnv(nil, envOf(nil), strings.NewReader(""), nil, nil))
	byName := map[string][]string{} // variable → "command --flag"
	add := func(cmd string, flags []cli.Flag) {
		for _, f := range flags {
			if hasEnv(f) {
				v := envName(cmd, f.Names()[0])
				byName[v] = append(byName[v], strings.TrimSpace(cmd+" --"+f.Names()[0]))
			}
		}
	}
	add("", app.Flags)
	for _, c := range app.Commands {
		add(c.Name, c.Flags)
		for _, sub := range c.Subcommands {
			add(sub.Name, sub.Flags)
		}
	}
	return byName
}

// TestEnvNamesDoNotCollide: a variable serves several flags only when they
// are the same flag (one name, in sharedEnv); every other is its command's.
func TestEnvNamesDoNotCollide(t *testing.T) {
	for v, users := range flagEnvs(t) {
		flags := map[string]bool{}
		for _, u := range users {
			_, flag, _ := strings.Cut(u, "--")
			flags[flag] = true
		}
		if len(flags) > 1 {
			t.Errorf("%s serves different flags: %v", v, users)
		}
		for flag := range flags {
			if _, shared := sharedEnv(flag); len(users) > 1 && !shared {
				t.Errorf("%s is shared by %v without being in sharedEnv", v, users)
			}
		}
	}
	for _, tt := range []struct{ cmd, flag, want string }{
		{"relay", "listen", "SIDEHOOK_RELAY_LISTEN"},
		{"receive", "listen", "SIDEHOOK_RECEIVE_LISTEN"},
		{"dev", "relay-listen", "SIDEHOOK_DEV_RELAY_LISTEN"},
		{"relay", "endpoint", "SIDEHOOK_RELAY_ENDPOINT"},
		{"test", "endpoint", "SIDEHOOK_TEST_ENDPOINT"},
		{"send", "relay", "SIDEHOOK_RELAY_URL"},
		{"relay", "api-key", "SIDEHOOK_API_KEY"},
		{"", "log-level", "SIDEHOOK_LOG_LEVEL"},
	} {
		if got := envName(tt.cmd, tt.flag); got != tt.want {
			t.Errorf("envName(%q, %q) = %q, want %q", tt.cmd, tt.flag, got, tt.want)
		}
	}
}

// TestEnvPerCommand: a variable of one command is not read by another.
func TestEnvPerCommand(t *testing.T) {
	env := map[string]string{"SIDEHOOK_RELAY_ENDPOINT": "http://127.0.0.1:9/hook", "SIDEHOOK_API_KEY": "k"}
	code, _, stderr := runCLI(t, envOf(env), "test", "--relay", "http://127.0.0.1:1")
	if code != 2 || !strings.Contains(stderr, "--endpoint is required") {
		t.Errorf("test with SIDEHOOK_RELAY_ENDPOINT: got %d %q, want 2 and --endpoint is required", code, stderr)
	}
	code, _, stderr = runCLI(t, envOf(map[string]string{"SIDEHOOK_RECEIVE_LISTEN": "nope"}), "receive", "--in-memory")
	if code != 2 || !strings.Contains(stderr, `receive: SIDEHOOK_RECEIVE_LISTEN "nope"`) {
		t.Errorf("SIDEHOOK_RECEIVE_LISTEN=nope: got %d %q, want 2 with `receive: SIDEHOOK_RECEIVE_LISTEN \"nope\"`", code, stderr)
	}
	// An error about a value from a variable names the variable.
	code, _, stderr = runCLI(t, envOf(map[string]string{"SIDEHOOK_ORG": "demo"}), "receive", "--in-memory", "--listen", "127.0.0.1:0")
	if code != 2 || !strings.Contains(stderr, "receive: SIDEHOOK_ORG needs --secret-key") {
		t.Errorf("SIDEHOOK_ORG alone: got %d %q, want 2 with \"receive: SIDEHOOK_ORG needs --secret-key\"", code, stderr)
	}
	code, _, stderr = runCLI(t, envOf(map[string]string{"SIDEHOOK_RELAY_LISTEN": "nope"}), "receive", "--in-memory", "--rules", "/nonexistent/rules.yaml")
	if code != 2 || !strings.Contains(stderr, "--rules") {
		t.Errorf("receive with SIDEHOOK_RELAY_LISTEN=nope: got %d %q, want the --rules error only", code, stderr)
	}
}

// TestEnvGeneric: every flag also reads SIDEHOOK_<FLAG> (SPEC §1), after
// its command's own variable and the command line; its help names both,
// and an error about its value names the one that set it.
func TestEnvGeneric(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		args []string
		code int
		want string
	}{
		{"Generic", map[string]string{"SIDEHOOK_LISTEN": "nope"}, []string{"receive", "--in-memory"}, 2, `receive: SIDEHOOK_LISTEN "nope"`},
		{"OwnBeatsGeneric", map[string]string{"SIDEHOOK_LISTEN": "nope", "SIDEHOOK_RECEIVE_LISTEN": "nope2"}, []string{"receive", "--in-memory"}, 2, `"nope2"`},
		{"NamedInError", map[string]string{"SIDEHOOK_TTL": "soon"}, []string{"token", "--org", "demo", "--secret-key", replaySecret}, 2, `SIDEHOOK_TTL="soon"`},
		{"FlagBeatsGeneric", map[string]string{"SIDEHOOK_TTL": "soon"}, []string{"token", "--org", "demo", "--secret-key", replaySecret, "--ttl", "1h"}, 0, ""},
		{"Help", nil, []string{"receive", "--help"}, 0, ""},
		// A renamed flag's old name reads its variables too, after the new
		// name's: SPEC names --webio-secret.
		{"OldName", map[string]string{"SIDEHOOK_WEBIO_SECRET": "short"}, []string{"receive", "--in-memory", "--listen", "127.0.0.1:0", "--org", "demo"}, 2, "receive: SIDEHOOK_WEBIO_SECRET: 5 bytes, need at least 32"},
		{"OldNameOwn", map[string]string{"SIDEHOOK_RECEIVE_WEBIO_SECRET": "short"}, []string{"receive", "--in-memory", "--listen", "127.0.0.1:0", "--org", "demo"}, 2, "receive: SIDEHOOK_RECEIVE_WEBIO_SECRET: 5 bytes, need at least 32"},
		{"OldNameNamedInError", map[string]string{"SIDEHOOK_WEBIO_SECRET": replaySecret}, []string{"replay", "--receiver", "http://127.0.0.1:1", "--all"}, 2, "SIDEHOOK_WEBIO_SECRET needs --org"},
		{"OldNameToken", map[string]string{"SIDEHOOK_SECRET": replaySecret}, []string{"token", "--org", "demo"}, 0, ""},
		{"NewNameBeatsOld", map[string]string{"SIDEHOOK_SECRET_KEY": "short", "SIDEHOOK_WEBIO_SECRET": replaySecret}, []string{"receive", "--in-memory", "--listen", "127.0.0.1:0", "--org", "demo"}, 2, "receive: SIDEHOOK_SECRET_KEY: 5 bytes, need at least 32"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := runCLI(t, envOf(tt.env), tt.args...)
			if code != tt.code || !strings.Contains(stderr, tt.want) {
				t.Fatalf("got %d %q, want %d and %q", code, stderr, tt.code, tt.want)
			}
			if tt.name == "Help" && !strings.Contains(stdout, "[$SIDEHOOK_RECEIVE_LISTEN, $SIDEHOOK_LISTEN]") {
				t.Errorf("receive --help does not name both variables of --listen:\n%s", stdout)
			}
		})
	}
}

// TestREADMEListsSharedVariables keeps the README's table of the shared
// variables (each, and the commands that read it) and the command line the
// same; every other variable is
// SIDEHOOK_<COMMAND>_<FLAG>, as TestEnvNamesDoNotCollide checks.
func TestREADMEListsSharedVariables(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	documented := map[string]bool{}
	readBy := map[string]string{} // variable → its "read by" column
	for _, m := range regexp.MustCompile("(?m)^\\| `(SIDEHOOK_[A-Z_]+)` \\| [^|]* \\| ([^|]*) \\|").FindAllStringSubmatch(string(readme), -1) {
		documented[m[1]] = true
		readBy[m[1]] = m[2]
	}
	shared := map[string]bool{}
	for v, users := range flagEnvs(t) {
		_, flag, _ := strings.Cut(users[0], "--")
		if _, ok := sharedEnv(flag); ok {
			shared[v] = true
		}
		col, ok := readBy[v]
		if !ok || strings.HasPrefix(col, "every command") {
			continue
		}
		var cmds []string
		for _, u := range users {
			cmd, _, _ := strings.Cut(u, " ")
			cmds = append(cmds, cmd)
		}
		sort.Strings(cmds)
		listed := strings.Split(col, ", ")
		sort.Strings(listed)
		if !reflect.DeepEqual(listed, cmds) {
			t.Errorf("README: %s is read by %q, want %q", v, col, strings.Join(cmds, ", "))
		}
	}
	var missing, extra []string
	for v := range shared {
		if !documented[v] {
			missing = append(missing, v)
		}
	}
	for v := range documented {
		if !shared[v] {
			extra = append(extra, v)
		}
	}
	sort.Strings(missing)
	sort.Strings(extra)
	if len(missing) > 0 || len(extra) > 0 {
		t.Errorf("README's table of shared variables: missing %v, not shared %v", missing, extra)
	}
}

func TestHelp(t *testing.T) {
	code, out, _ := runCLI(t, nil, "help", "receive")
	for _, want := range []string{"sidehook receive", "--listen", "SIDEHOOK_RECEIVE_LISTEN", "GLOBAL", "--log-level"} {
		if code != 0 || !strings.Contains(out, want) {
			t.Errorf("help receive: got %d, want %q in:\n%s", code, want, out)
		}
	}
	code, out, _ = runCLI(t, nil, "help")
	for _, want := range []string{"dev", "relay", "receive", "replay", "completion", "man", "version"} {
		if code != 0 || !strings.Contains(out, "   "+want) {
			t.Errorf("help: got %d, want %q in:\n%s", code, want, out)
		}
	}
	if code, _, stderr := runCLI(t, nil, "help", "nope"); code != 2 || !strings.Contains(stderr, "nope") {
		t.Errorf("help nope: got %d %q, want 2", code, stderr)
	}
	// A subcommand's help, as CMD SUB --help gives it: urfave/cli's help
	// command read its first topic only and showed the relay's help.
	code, out, _ = runCLI(t, nil, "help", "relay", "rotate-key")
	if want := "sidehook relay rotate-key - replace"; code != 0 || !strings.Contains(out, want) || strings.Contains(out, "run the durable webhook relay") {
		t.Errorf("help relay rotate-key: got %d, want %q alone in:\n%s", code, want, out)
	}
	if code, _, stderr := runCLI(t, nil, "help", "relay", "nope"); code != 2 || !strings.Contains(stderr, "nope") {
		t.Errorf("help relay nope: got %d %q, want 2", code, stderr)
	}
}

// TestHelpTopic: the help command shows its topic's help whatever global
// flags come before it. The relay's help came for "--log-level debug help
// relay rotate-key": the rewrite of help's topics looked at the first word
// only.
func TestHelpTopic(t *testing.T) {
	const rotateKey, relayHelp = "sidehook relay rotate-key - replace", "run the durable webhook relay"
	tests := []struct {
		name       string
		args       []string
		want, omit string
	}{
		{"Subcommand", []string{"help", "relay", "rotate-key"}, rotateKey, relayHelp},
		{"GlobalFlag", []string{"--log-level", "debug", "help", "relay", "rotate-key"}, rotateKey, relayHelp},
		{"GlobalFlagEquals", []string{"--log-level=debug", "help", "relay", "rotate-key"}, rotateKey, relayHelp},
		{"GlobalFlags", []string{"--log-format", "json", "--memory-limit", "0", "h", "relay", "rotate-key"}, rotateKey, relayHelp},
		{"GlobalFlagCommand", []string{"--log-level", "debug", "help", "send"}, "sidehook send - post", "sidehook - a durable"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, stderr := runCLI(t, nil, tt.args...)
			if code != 0 || !strings.Contains(out, tt.want) || (tt.omit != "" && strings.Contains(out, tt.omit)) {
				t.Errorf("%v: got %d %q, want 0 and %q (without %q) in:\n%s", tt.args, code, stderr, tt.want, tt.omit, out)
			}
		})
	}
	// A flag that is not global stops the rewrite: it is refused as
	// before, not taken for help's.
	if code, _, stderr := runCLI(t, nil, "--nope", "help", "relay", "rotate-key"); code != 2 || !strings.Contains(stderr, "--nope") {
		t.Errorf("--nope help relay rotate-key: got %d %q, want 2 naming --nope", code, stderr)
	}
}

// TestHelpHelp: the help command's own help names it as it is typed.
// urfave/cli's, one package-level value named only as a subcommand's,
// said "help" (or "sidehook relay help" once the relay had run).
func TestHelpHelp(t *testing.T) {
	for _, args := range [][]string{{"help", "help"}, {"h", "help"}, {"help", "h"}, {"--log-level", "debug", "help", "help"}} {
		code, out, stderr := runCLI(t, nil, args...)
		if want := "sidehook help [command options]"; code != 0 || !strings.Contains(out, want) {
			t.Errorf("%v: got %d %q, want 0 and %q in:\n%s", args, code, stderr, want, out)
		}
	}
}

// TestHelpOneDefault: a flag's help line gives its default once. A usage
// text saying the default in words got urfave/cli's as well: "--ttl …
// (default: no expiry, as Webio's tokens) … (default: 0s)".
func TestHelpOneDefault(t *testing.T) {
	app := newApp(newEnv(nil, envOf(nil), strings.NewReader(""), nil, nil))
	var paths [][]string
	for _, c := range app.Commands {
		paths = append(paths, []string{c.Name})
		for _, sub := range c.Subcommands {
			paths = append(paths, []string{c.Name, sub.Name})
		}
	}
	for _, path := range paths {
		t.Run(strings.Join(path, "_"), func(t *testing.T) {
			code, out, stderr := runCLI(t, nil, append(path, "--help")...)
			if code != 0 {
				t.Fatalf("exit %d, want 0: %s", code, stderr)
			}
			for _, line := range strings.Split(out, "\n") {
				if strings.Count(line, "(default:") > 1 {
					t.Errorf("two defaults: %s", strings.TrimSpace(line))
				}
			}
		})
	}
}

// TestReceiveSharedIssuerEnv: SIDEHOOK_ISSUER, set for token and replay,
// makes receive without a JWT key a usage error that names the variable.
func TestReceiveSharedIssuerEnv(t *testing.T) {
	env := func(k string) string {
		if k == "SIDEHOOK_ISSUER" {
			return "myrelay"
		}
		return ""
	}
	code, _, stderr := runCLI(t, env, "receive", "--in-memory", "--listen", "127.0.0.1:0")
	if code != 2 || !strings.Contains(stderr, "SIDEHOOK_ISSUER") {
		t.Errorf("got exit %d %q, want 2 and a line naming SIDEHOOK_ISSUER", code, stderr)
	}
}

// TestRelayHelp: every way of asking for the relay's help, or its
// subcommand's, shows that help, whole. "sidehook help relay" showed the
// relay's description alone, without its commands and options; and the
// relay's help subcommand was urfave/cli's one package-level value, which
// each run renames and changes, and its unknown topic pointed to
// 'sidehook help'.
func TestRelayHelp(t *testing.T) {
	const (
		relayName  = "sidehook relay - run the durable webhook relay"
		rotateName = "sidehook relay rotate-key - replace the relay's jwt key pair"
		helpName   = "sidehook relay help - Shows a list of commands or help for one command"
	)
	_, relayHelp, _ := runCLI(t, nil, "relay", "--help")
	_, rotateHelp, _ := runCLI(t, nil, "relay", "rotate-key", "--help")
	tests := []struct {
		name string
		args []string
		// first is the start of the second line (the first is "NAME:");
		// whole, when set, is the whole help that must be shown.
		first, whole string
	}{
		{"RelayFlag", []string{"relay", "--help"}, relayName, ""},
		{"RelayHelp", []string{"relay", "help"}, relayName, relayHelp},
		{"RelayH", []string{"relay", "h"}, relayName, relayHelp},
		{"HelpRelay", []string{"help", "relay"}, relayName, relayHelp},
		{"RotateKeyFlag", []string{"relay", "rotate-key", "--help"}, rotateName, ""},
		{"RelayHelpRotateKey", []string{"relay", "help", "rotate-key"}, rotateName, rotateHelp},
		{"HelpRelayRotateKey", []string{"help", "relay", "rotate-key"}, rotateName, rotateHelp},
		{"RelayHelpHelp", []string{"relay", "help", "help"}, helpName, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, stderr := runCLI(t, nil, tt.args...)
			lines := strings.SplitN(out, "\n", 3)
			if code != 0 || len(lines) < 3 || lines[0] != "NAME:" || !strings.HasPrefix(strings.TrimSpace(lines[1]), tt.first) {
				t.Fatalf("%v: got %d %q, first lines %q, want 0 and %q", tt.args, code, stderr, lines[:min(2, len(lines))], tt.first)
			}
			if tt.whole != "" && out != tt.whole {
				t.Errorf("%v: got\n%s\nwant the same as --help:\n%s", tt.args, out, tt.whole)
			}
		})
	}
	for _, want := range []string{"COMMANDS:", "rotate-key", "OPTIONS:", "--config FILE"} {
		if !strings.Contains(relayHelp, want) {
			t.Errorf("relay --help: want %q in:\n%s", want, relayHelp)
		}
	}
	// A topic the relay has not is a usage error that says where to look.
	if code, _, stderr := runCLI(t, nil, "relay", "help", "nope"); code != 2 || !strings.Contains(stderr, `"nope"`) || !strings.Contains(stderr, "sidehook relay --help") {
		t.Errorf("relay help nope: got %d %q, want 2 naming nope and 'sidehook relay --help'", code, stderr)
	}
}
