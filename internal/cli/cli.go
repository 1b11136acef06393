// Package cli is the sidehook command line: one file per command, all
// behind Run, which main calls with the process's environment and tests
// call in-process with their own.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/rs/zerolog"
	"github.com/urfave/cli/v2"
)

// stopSignals start a graceful stop; a second one skips the drain
// (drainContext). A hangup is one: the terminal that started a relay or a
// tunnel closed, and its in-flight attempts still finish and are recorded.
// Unless it was started ignoring hangups (nohup): asked to be notified, Go
// would stop ignoring them, and the terminal closing would stop it.
func stopSignals() []os.Signal {
	sigs := []os.Signal{os.Interrupt, syscall.SIGTERM}
	if !signal.Ignored(syscall.SIGHUP) {
		sigs = append(sigs, syscall.SIGHUP)
	}
	return sigs
}

// stopSignal is why a command's context ended: the signal received, so
// that the stopping line can say which (a relay stopped by SIGHUP lost its
// terminal; one stopped by SIGTERM was stopped by a service manager).
type stopSignal struct{ sig os.Signal }

func (s stopSignal) Error() string { return signalName(s.sig) + " received" }

// Is makes a stop by signal a cancellation, as signal.NotifyContext's is.
func (s stopSignal) Is(target error) bool { return target == context.Canceled }

// signalName is a stop signal's name as kill(1) and service managers write
// it; Go's own String says "interrupt", "terminated" and "hangup".
func signalName(sig os.Signal) string {
	switch sig {
	case os.Interrupt:
		return "SIGINT"
	case syscall.SIGTERM:
		return "SIGTERM"
	case syscall.SIGHUP:
		return "SIGHUP"
	}
	return sig.String()
}

// notifyStop is signal.NotifyContext with the signal kept as the
// context's cause (stopSignal): NotifyContext's cause is only text.
func notifyStop(parent context.Context, sigs ...os.Signal) (context.Context, context.CancelFunc) {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, sigs...)
	ctx, stop := cancelOnSignal(parent, ch)
	return ctx, func() {
		signal.Stop(ch)
		stop()
	}
}

// cancelOnSignal cancels the context it returns with the first signal
// from ch as its cause.
func cancelOnSignal(parent context.Context, ch <-chan os.Signal) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancelCause(parent)
	go func() {
		select {
		case sig := <-ch:
			cancel(stopSignal{sig})
		case <-ctx.Done():
		}
	}()
	return ctx, func() { cancel(nil) }
}

// stoppedBy is the name of the signal that ended ctx, or "" when none did
// (a test, or a parent context canceled).
func stoppedBy(ctx context.Context) string {
	var s stopSignal
	if errors.As(context.Cause(ctx), &s) {
		return signalName(s.sig)
	}
	return ""
}

// logStopping is a server's line once its context has ended, naming the
// signal that ended it and how long it may wait for what is in flight
// (grace; 0 says nothing), so that the wait that follows is not silence.
func logStopping(ctx context.Context, log zerolog.Logger, grace time.Duration) {
	ev := log.Info()
	if sig := stoppedBy(ctx); sig != "" {
		ev = ev.Str("signal", sig)
	}
	if grace > 0 {
		ev = ev.Str("grace", grace.String())
	}
	ev.Msg("stopping")
}

// Run is the whole program behind main, with its environment injected so
// every command can be tested in-process.
func Run(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	ctx, stop := notifyStop(ctx, stopSignals()...)
	defer stop()

	args = helpArgs(args)
	e := newEnv(args, getenv, stdin, stdout, stderr)
	defer func() {
		if e.logOut != nil {
			_ = e.logOut.Flush()
		}
	}()
	defer e.closeClients()
	err := newApp(e).RunContext(ctx, args)
	var exit cli.ExitCoder
	if errors.As(err, &exit) {
		// urfave/cli's own failures ("No help topic for …") are mistakes
		// in how sidehook was called.
		return usageErrorf("%v", err)
	}
	if err != nil {
		return err
	}
	return e.notFound
}

// helpArgs turns "help relay rotate-key" into "relay rotate-key --help":
// urfave/cli's help command reads its first topic only, and showed the
// relay's help for rotate-key. The global flags may come before help
// ("--log-level debug help relay rotate-key"); they stay where they are.
// Completing after "help" completes the topics as commands (urfave/cli's
// offered "help" and "h").
func helpArgs(args []string) []string {
	if len(args) < 2 {
		return args
	}
	i := 1 + leadingGlobals(args[1:])
	if i >= len(args) || (args[i] != "help" && args[i] != "h") {
		return args
	}
	head, topics := args[:i:i], args[i+1:]
	if n := len(topics); n > 0 && topics[n-1] == "--generate-bash-completion" {
		return append(head, topics...)
	}
	// "help relay" too: urfave/cli showed the relay's description
	// alone, without its commands and options (the relay is not set up
	// when the app's help command prints it). "help help" is the help
	// command's own help, which it shows; "help --help" the app's.
	if len(topics) == 0 || topics[0] == "help" || topics[0] == "h" || strings.HasPrefix(topics[0], "-") {
		return args
	}
	return append(append(head, topics...), "--help")
}

// leadingGlobals is how many of args, from the first, are global flags
// and their values. It stops at anything else, an unknown flag included,
// which urfave/cli then refuses as it would have.
func leadingGlobals(args []string) int {
	n := 0
	for n < len(args) {
		a := args[n]
		if len(a) < 2 || a[0] != '-' || a == "--" {
			break
		}
		name, _, inline := strings.Cut(strings.TrimLeft(a, "-"), "=")
		f := flagNamed(globalFlags(""), name)
		if f == nil {
			break
		}
		n++
		if !inline && takesValue(f) {
			n++
		}
	}
	return min(n, len(args))
}

// helpCommand stands in for urfave/cli's, which is one package-level value
// named only when it runs as a subcommand: "sidehook help help" said
// "help" (or the name of whichever command ran first in the process). The
// app names its own commands, this one "sidehook help".
func helpCommand() *cli.Command {
	return &cli.Command{
		Name:      "help",
		Aliases:   []string{"h"},
		Usage:     "Shows a list of commands or help for one command",
		ArgsUsage: "[command [subcommand]]",
		// urfave/cli would give it its own help command as a subcommand.
		HideHelpCommand: true,
		Action: func(c *cli.Context) error {
			if !c.Args().Present() {
				return cli.ShowAppHelp(c)
			}
			// The topic is one of the app's commands: look among them.
			return cli.ShowCommandHelp(c.Lineage()[1], c.Args().First())
		},
	}
}

// subcommandHelp is the help command of a command that has subcommands
// (path, such as "relay"): "sidehook relay help [command]". urfave/cli's
// is one package-level value that each run renames and changes (it is
// given itself as a subcommand), so two runs in one process raced on it,
// and its unknown topic pointed to 'sidehook help'.
func subcommandHelp(path string) *cli.Command {
	return &cli.Command{
		Name:            "help",
		Aliases:         []string{"h"},
		Usage:           "Shows a list of commands or help for one command",
		ArgsUsage:       "[command]",
		HideHelpCommand: true,
		Action: func(c *cli.Context) error {
			parent := c.Lineage()[1]
			if !c.Args().Present() {
				return cli.ShowSubcommandHelp(parent)
			}
			topic := c.Args().First()
			if parent.Command.Command(topic) == nil {
				return usageErrorf("%s help: unknown command %q (see 'sidehook %s --help')", path, topic, path)
			}
			return cli.ShowCommandHelp(parent, topic)
		},
	}
}

// newApp is the whole command line, every command prepared by
// prepareCommand. The man page and the completions are generated from it.
func newApp(e *env) *cli.App {
	app := &cli.App{
		Name:    "sidehook",
		Usage:   "a durable webhook relay and a mock receiver for Webio-style webhooks",
		Version: e.build.Version,
		Writer:  e.stdout,
		// ErrWriter takes urfave's own messages; ours go through ExitCode.
		ErrWriter: e.stderr,
		// urfave/cli adds --help only when it adds its help command.
		Flags:                append(e.withEnv("", globalFlags("")), cli.HelpFlag),
		Commands:             append(commands(e), helpCommand()),
		EnableBashCompletion: true,
		BashComplete:         e.completer(nil),
		// urfave/cli calls os.Exit for errors that carry an exit code unless
		// this is set; exit codes are decided in main alone.
		ExitErrHandler: func(*cli.Context, error) {},
		Before:         e.applyGlobalEnv,
		CommandNotFound: func(c *cli.Context, name string) {
			e.notFound = usageErrorf("unknown command %q (see 'sidehook help')", name)
		},
		OnUsageError: func(c *cli.Context, err error, _ bool) error {
			return usageErrorf("%s", flagError("", c.App.Flags, err))
		},
	}
	for _, c := range app.Commands {
		prepareCommand(e, c, c.Name)
	}
	return app
}

// commands lists every command; one is registered only once it works.
func commands(e *env) []*cli.Command {
	return []*cli.Command{
		devCommand(e),
		relayCommand(e),
		receiveCommand(e),
		sendCommand(e),
		testCommand(e),
		renderCommand(e),
		replayCommand(e),
		tokenCommand(e),
		versionCommand(e),
		completionCommand(e),
		manCommand(e),
		tunnelCommand(e),
	}
}

// prepareCommand gives every command, and subcommand, the shared
// behaviour: the global flags also after the command's name, the old names
// of renamed flags, an environment variable per flag, usage errors (exit
// code 2) for an unknown flag or a stray argument, and its completion
// words unless it brings its own. Its errors name it by its path ("relay
// rotate-key"), its variables by its own name.
func prepareCommand(e *env, c *cli.Command, path string) {
	if len(c.Subcommands) > 0 && c.Command("help") == nil {
		c.Subcommands = append(c.Subcommands, subcommandHelp(path))
	}
	for _, sub := range c.Subcommands {
		prepareCommand(e, sub, path+" "+sub.Name)
	}
	c.Flags = e.withEnv(c.Name, append(c.Flags, globalFlags(globalCategory)...))
	before := c.Before
	c.Before = func(ctx *cli.Context) error {
		if ctx.Args().Present() && c.Command(ctx.Args().First()) != nil {
			return beforeSubcommand(ctx, path)
		}
		if err := readAliases(ctx); err != nil {
			return err
		}
		if err := inheritGlobals(ctx); err != nil {
			return err
		}
		if c.ArgsUsage == "" && ctx.Args().Present() {
			return usageErrorf("%s: unexpected argument %q (flags are written --name value)", path, ctx.Args().First())
		}
		if err := e.applyEnv(ctx); err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		if err := e.checkGlobals(ctx); err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		if before != nil {
			return before(ctx)
		}
		return nil
	}
	c.OnUsageError = func(_ *cli.Context, err error, _ bool) error {
		return usageErrorf("%s: %s", path, flagError(path, c.Flags, err))
	}
	if c.BashComplete == nil {
		c.BashComplete = e.completer(c)
	}
}

// beforeSubcommand checks a command on the way to its subcommand (`relay
// rotate-key`): the subcommand reads only the flags written after its
// name, so the command's own flags before it would be dropped unseen. The
// global flags may come anywhere.
func beforeSubcommand(ctx *cli.Context, path string) error {
	name := ctx.Args().First()
	sub := path + " " + name
	for _, flag := range ctx.LocalFlagNames() {
		if slices.ContainsFunc(globalFlags(""), func(f cli.Flag) bool { return f.Names()[0] == flag }) {
			continue
		}
		// Written after, a flag the subcommand lacks is unknown there.
		if flagNamed(ctx.Command.Command(name).Flags, flag) == nil {
			return usageErrorf("%s: --%s is the %s's, which %q does not take: leave it out (see 'sidehook %s --help')",
				sub, flag, path, name, sub)
		}
		return usageErrorf("%s: --%s comes before %q, where it would be ignored: write it after (sidehook %s --%s …)",
			sub, flag, name, sub, flag)
	}
	return nil
}

// usageError is a mistake in how sidehook was called: exit code 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usageErrorf(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

// ExitCode maps Run's result to the process exit code, printing the error as
// one line: 0 success, 2 usage, 1 anything else.
func ExitCode(err error, stderr io.Writer) int {
	if err == nil {
		return 0
	}
	if errors.Is(err, context.Canceled) {
		return 0
	}
	fmt.Fprintf(stderr, "sidehook: %v\n", err)
	var ue *usageError
	if errors.As(err, &ue) {
		return 2
	}
	return 1
}
