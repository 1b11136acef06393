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
	"syscall"

	"github.com/urfave/cli/v2"
)

// Version is set at build time with
// -ldflags "-X github.com/sidehook/sidehook/internal/cli.Version=…".
var Version = "dev"

// Run is the whole program behind main, with its environment injected so
// every command can be tested in-process.
func Run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()

	e := &env{getenv: getenv, stdout: stdout, stderr: stderr}
	app := &cli.App{
		Name:    "sidehook",
		Usage:   "a durable webhook relay and a mock receiver for Webio-style webhooks",
		Version: Version,
		Writer:  stdout,
		// ErrWriter takes urfave's own messages; ours go through ExitCode.
		ErrWriter:       stderr,
		Flags:           e.withEnv(logFlags()),
		Commands:        commands(e),
		HideHelpCommand: true,
		// urfave/cli calls os.Exit for errors that carry an exit code unless
		// this is set; exit codes are decided in main alone.
		ExitErrHandler: func(*cli.Context, error) {},
		Before:         e.applyGlobalEnv,
		CommandNotFound: func(c *cli.Context, name string) {
			e.notFound = usageErrorf("unknown command %q (see 'sidehook --help')", name)
		},
		OnUsageError: func(c *cli.Context, err error, _ bool) error {
			return usageErrorf("%v", err)
		},
	}
	for _, c := range app.Commands {
		prepareCommand(e, c)
	}
	if err := app.RunContext(ctx, args); err != nil {
		return err
	}
	return e.notFound
}

// commands lists every command; one is registered only once it works.
func commands(e *env) []*cli.Command {
	return []*cli.Command{
		devCommand(e),
		versionCommand(e),
		tokenCommand(e),
		relayCommand(e),
		sendCommand(e),
		renderCommand(e),
		testCommand(e),
		receiveCommand(e),
		replayCommand(e),
		tunnelCommand(e),
	}
}

// prepareCommand gives every command (and subcommand) the shared behaviour:
// SIDEHOOK_<FLAG> environment variables and usage errors with exit code 2.
func prepareCommand(e *env, c *cli.Command) {
	c.Flags = e.withEnv(c.Flags)
	before := c.Before
	c.Before = func(ctx *cli.Context) error {
		if err := e.applyEnv(ctx); err != nil {
			return err
		}
		if before != nil {
			return before(ctx)
		}
		return nil
	}
	c.OnUsageError = func(_ *cli.Context, err error, _ bool) error {
		return usageErrorf("%s: %v", c.Name, err)
	}
	for _, sub := range c.Subcommands {
		prepareCommand(e, sub)
	}
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
