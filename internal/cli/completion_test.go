package cli

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestCompletion(t *testing.T) {
	tests := []struct {
		shell string
		want  []string
	}{
		{"bash", []string{"complete -o bashdefault", "--generate-bash-completion", "_sidehook_complete"}},
		{"zsh", []string{"#compdef sidehook", "--generate-bash-completion"}},
		{"fish", []string{"complete -c sidehook", "receive", "-l listen", "-l shutdown-grace"}},
	}
	for _, tt := range tests {
		t.Run(tt.shell, func(t *testing.T) {
			code, out, stderr := runCLI(t, nil, "completion", tt.shell)
			if code != 0 {
				t.Fatalf("exit %d, want 0: %s", code, stderr)
			}
			for _, w := range tt.want {
				if !strings.Contains(out, w) {
					t.Errorf("got a script without %q", w)
				}
			}
			if strings.Contains(out, "webio-secret") {
				t.Error("the script offers a renamed flag's old name")
			}
		})
	}
	for _, args := range [][]string{{"completion"}, {"completion", "tcsh"}, {"completion", "bash", "zsh"}} {
		if code, _, stderr := runCLI(t, nil, args...); code != 2 || !strings.Contains(stderr, "completion: ") {
			t.Errorf("%v: got %d %q, want a usage error", args, code, stderr)
		}
	}
	// What the bash and zsh scripts ask the binary for: the commands.
	code, out, _ := runCLI(t, nil, "--generate-bash-completion")
	for _, cmd := range []string{"dev", "relay", "receive", "send", "test", "render", "replay", "token", "version", "completion", "man"} {
		if code != 0 || !strings.Contains("\n"+out, "\n"+cmd+"\n") {
			t.Errorf("completion words: got %d %q, want %q", code, out, cmd)
		}
	}
	// A flag being completed: the command's flags with that prefix, the
	// hidden old names left out.
	code, out, _ = runCLI(t, nil, "receive", "--s", "--generate-bash-completion")
	if code != 0 || out != "--secret-key\n--standard-secret\n--shutdown-grace\n" {
		t.Errorf("receive --s: got %d %q, want 0 and --secret-key, --standard-secret, --shutdown-grace", code, out)
	}
	if _, out, _ = runCLI(t, nil, "--log", "--generate-bash-completion"); out != "--log-format\n--log-level\n" {
		t.Errorf("--log: got %q, want --log-format and --log-level", out)
	}
}

// TestCompletionAfterFlag: the scripts pass the word being completed only
// when it is a flag, so `send --event <TAB>` asks with --event last. That
// flag's value comes next: no words, so the shell completes file names.
// The binary answered "--event", which the shell wrote again.
func TestCompletionAfterFlag(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want []string // among the words; none when empty
	}{
		{"ValueFlag", []string{"send", "--event"}, nil},
		{"ValueFlagOldName", []string{"receive", "--webio-secret"}, nil},
		{"GlobalValueFlag", []string{"--log-level"}, nil},
		{"GlobalValueFlagAfterCommand", []string{"token", "--log-level"}, nil},
		// After a boolean flag comes another flag: all of them, as after
		// no flag; the shell keeps those that start with what is typed.
		{"BoolFlag", []string{"token", "--json"}, []string{"--json", "--org", "--secret-key"}},
		{"PartialFlag", []string{"send", "--ev"}, []string{"--event"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, stderr := runCLI(t, nil, append(tt.args, "--generate-bash-completion")...)
			if code != 0 {
				t.Fatalf("exit %d, want 0: %s", code, stderr)
			}
			if len(tt.want) == 0 && out != "" {
				t.Errorf("got %q, want no words", out)
			}
			for _, w := range tt.want {
				if !strings.Contains("\n"+out, "\n"+w+"\n") {
					t.Errorf("got %q, want %s among the words", out, w)
				}
			}
		})
	}
}

func TestManPage(t *testing.T) {
	code, out, stderr := runCLI(t, nil, "man")
	if code != 0 || !strings.HasPrefix(out, ".nh\n.TH sidehook 1") {
		t.Fatalf("got %d %q %q, want a roff page in section 1", code, out[:min(len(out), 80)], stderr)
	}
	app := newApp(newEnv(nil, envOf(nil), strings.NewReader(""), nil, nil))
	for _, c := range app.Commands {
		// A command is headed by its names: "help, h".
		if !strings.Contains(out, "\n.SH "+strings.Join(c.Names(), ", ")+"\n") {
			t.Errorf("man page lacks the command %s", c.Name)
		}
	}
	for _, want := range []string{"--shutdown-grace", "SIDEHOOK_RELAY_LISTEN", "--check-config"} {
		if !strings.Contains(out, want) {
			t.Errorf("man page lacks %q", want)
		}
	}
	if strings.Contains(out, "webio-secret") {
		t.Error("man page documents a renamed flag's old name")
	}
}

// TestGeneratorsAfterHelp: once urfave/cli's help command has run, it lists
// itself among its subcommands; the fish script and the manual page must
// still come out whole, in a process that ran it first (as a test
// process, running commands in any order, does).
func TestGeneratorsAfterHelp(t *testing.T) {
	for _, args := range [][]string{{"help"}, {"help", "receive"}} {
		if code, _, stderr := runCLI(t, nil, args...); code != 0 {
			t.Fatalf("%v: exit %d, want 0: %s", args, code, stderr)
		}
	}
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"completion", "fish"}, "complete -c sidehook"},
		{[]string{"man"}, ".TH sidehook 1"},
	} {
		type result struct {
			code     int
			out, err string
		}
		done := make(chan result, 1)
		go func() {
			code, out, stderr := runCLI(t, nil, tt.args...)
			done <- result{code, out, stderr}
		}()
		select {
		case r := <-done:
			if r.code != 0 || !strings.Contains(r.out, tt.want) {
				t.Errorf("%v: exit %d, output without %q: %s", tt.args, r.code, tt.want, r.err)
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("%v: no answer in 30 s: the help command's cycle is being followed", tt.args)
		}
	}
}

// shell is the path of a shell the completion tests run. Without it the
// test is skipped, or fails under CI=true, where .ci/run installs it.
func shell(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s runs the completion script under test: %v", name, err)
		}
		t.Skipf("%s runs the completion script under test: %v", name, err)
	}
	return p
}

// TestBashCompletionScript runs the bash script on the words of a command
// line, with a function standing in for the binary that records what the
// script asks it, and asks the binary that in-process. "sidehook send
// --<TAB>" asked "send -- --generate-bash-completion": urfave/cli takes
// "--" for the end of the flags, so the binary ran send rather than
// answer, and no flag was offered.
func TestBashCompletionScript(t *testing.T) {
	bash := shell(t, "bash")
	_, script, _ := runCLI(t, nil, "completion", "bash")
	tests := []struct {
		name  string
		words []string
		want  string // among the words offered
	}{
		{"DoubleDash", []string{"sidehook", "send", "--"}, "--event"},
		{"Dash", []string{"sidehook", "send", "-"}, "--event"},
		{"Prefix", []string{"sidehook", "send", "--ev"}, "--event"},
		{"Command", []string{"sidehook", "se"}, "send"},
		{"AppDoubleDash", []string{"sidehook", "--"}, "--log-level"},
		// What completion takes is a shell; its flags were offered.
		{"CompletionShell", []string{"sidehook", "completion", ""}, "zsh"},
		{"CompletionFlag", []string{"sidehook", "completion", "--"}, "--log-level"},
		// help takes a command: "help" and "h" were offered.
		{"HelpTopic", []string{"sidehook", "help", ""}, "relay"},
		{"HelpSubtopic", []string{"sidehook", "help", "relay", ""}, "rotate-key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			quoted := make([]string, len(tt.words))
			for i, w := range tt.words {
				quoted[i] = strconv.Quote(w)
			}
			prog := script + "exec 3>&1\n" +
				"sidehook() { printf '%s\\n' \"$@\" >&3; }\n" +
				"COMP_WORDS=(" + strings.Join(quoted, " ") + "); COMP_CWORD=" + strconv.Itoa(len(tt.words)-1) + "\n" +
				"_sidehook_complete; true\n"
			out, err := exec.Command(bash, "-c", prog).Output()
			if err != nil {
				t.Fatalf("bash: %v", err)
			}
			asked := strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
			code, words, stderr := runCLI(t, nil, asked...)
			if code != 0 || !strings.Contains("\n"+words, "\n"+tt.want+"\n") {
				t.Errorf("the script asked %q: got exit %d %q %q, want %s among the words", asked, code, words, stderr, tt.want)
			}
		})
	}
}

// TestZshCompletionScript installs the zsh script as the README says (a
// file _sidehook in $fpath) and completes once: the autoloaded file only
// defined the function and registered it, so the first <TAB> of every
// shell offered nothing. Sourced, it registers the function.
func TestZshCompletionScript(t *testing.T) {
	zsh := shell(t, "zsh")
	_, script, _ := runCLI(t, nil, "completion", "zsh")
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "_sidehook"), []byte(script), 0o600); err != nil {
		t.Fatal(err)
	}
	// Stand-ins for the completion system and the binary, which records
	// what it is asked.
	stubs := "compdef() { print -r -- compdef $@ >&3; }\n" +
		"_describe() { :; }\n_files() { :; }\n" +
		"sidehook() { print -r -- ask $@ >&3; }\n"
	prog := "exec 3>&1\n" + stubs + "fpath=(" + strconv.Quote(dir) + " $fpath)\nautoload -Uz _sidehook\n" +
		"words=(sidehook send --)\n_sidehook\n"
	out, err := exec.Command(zsh, "-f", "-c", prog).Output()
	if err != nil {
		t.Fatalf("zsh: %v", err)
	}
	if got, want := strings.TrimSpace(string(out)), "ask send - --generate-bash-completion"; got != want {
		t.Errorf("first completion of the autoloaded script: got %q, want %q", got, want)
	}
	sourced := "exec 3>&1\n" + stubs + "source " + strconv.Quote(filepath.Join(dir, "_sidehook")) + "\n"
	out, err = exec.Command(zsh, "-f", "-c", sourced).Output()
	if err != nil {
		t.Fatalf("zsh: %v", err)
	}
	if got, want := strings.TrimSpace(string(out)), "compdef _sidehook sidehook"; got != want {
		t.Errorf("sourced: got %q, want %q", got, want)
	}
}
