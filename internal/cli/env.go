package cli

import (
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"strings"

	"github.com/mattn/go-isatty"
	"github.com/rs/zerolog"
	"github.com/urfave/cli/v2"
)

// env is what run was given: the environment and the output streams. Every
// command takes it instead of reaching for os.*.
type env struct {
	getenv   func(string) string
	stdout   io.Writer
	stderr   io.Writer
	notFound error
}

// envName is the environment variable of a flag: SIDEHOOK_ + upper snake.
func envName(flag string) string {
	return "SIDEHOOK_" + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}

// withEnv names each flag's environment variable in its help text. The value
// is read by applyEnv through the injected getenv, not by urfave/cli (which
// would read the real process environment and leak it into in-process tests).
func (e *env) withEnv(flags []cli.Flag) []cli.Flag {
	for _, f := range flags {
		name := f.Names()[0]
		if name == "help" || name == "version" {
			continue
		}
		suffix := " [$" + envName(name) + "]"
		var usage *string
		switch f := f.(type) {
		case *cli.StringFlag:
			usage = &f.Usage
		case *cli.StringSliceFlag:
			usage = &f.Usage
		case *cli.BoolFlag:
			usage = &f.Usage
		case *cli.IntFlag:
			usage = &f.Usage
		case *cli.Float64Flag:
			usage = &f.Usage
		case *cli.DurationFlag:
			usage = &f.Usage
		}
		// Idempotent, so preparing a command twice does no harm.
		if usage != nil && !strings.HasSuffix(*usage, suffix) {
			*usage += suffix
		}
	}
	return flags
}

// applyEnv sets every flag not given on the command line from its
// SIDEHOOK_<FLAG> variable. A slice flag takes a comma-separated list.
func (e *env) applyEnv(c *cli.Context) error {
	if c.Command == nil {
		return nil
	}
	return e.applyEnvFlags(c, c.Command.Flags)
}

// applyGlobalEnv is applyEnv for the app's own flags.
func (e *env) applyGlobalEnv(c *cli.Context) error {
	return e.applyEnvFlags(c, c.App.Flags)
}

func (e *env) applyEnvFlags(c *cli.Context, flags []cli.Flag) error {
	for _, f := range flags {
		name := f.Names()[0]
		if c.IsSet(name) {
			continue
		}
		v := e.getenv(envName(name))
		if v == "" {
			continue
		}
		values := []string{v}
		if _, ok := f.(*cli.StringSliceFlag); ok {
			values = strings.Split(v, ",")
		}
		for _, val := range values {
			if err := c.Set(name, strings.TrimSpace(val)); err != nil {
				return usageErrorf("%s=%q: %v", envName(name), v, err)
			}
		}
	}
	return nil
}

func logFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "log-format", Usage: "console or json (default: console on a terminal, json otherwise)"},
		&cli.StringFlag{Name: "log-level", Value: "info", Usage: "debug, info, warn or error"},
		&cli.StringFlag{Name: "memory-limit",
			Usage: "soft limit of the Go heap for relay, receive and dev (e.g. 192MiB; 0 for none; default " +
				relayMemoryLimit + " for relay, " + defaultMemoryLimit + " for receive and dev; GOMEMLIMIT, when set, wins)"},
	}
}

// defaultMemoryLimit keeps a sidecar's RSS near its target: without a
// limit the Go runtime lets the heap grow to twice what is live before it
// collects, and Badger's compactions make a lot of short-lived garbage.
const defaultMemoryLimit = "160MiB"

// relayMemoryLimit is lower: the relay's target is 256 MiB of RSS with a
// backlog of a million events, and its resident value log and tables come
// on top of the heap. With 160MiB its anonymous memory peaked at 133 MiB
// and its RSS at 241 MiB; with 128MiB at 111 and 217 MiB, for the same
// GC time.
const relayMemoryLimit = "128MiB"

// serverSetup is what every long-running command does first: build the
// logger and apply --memory-limit (defaultMemoryLimit when not given).
func (e *env) serverSetup(c *cli.Context) (zerolog.Logger, error) {
	return e.serverSetupLimit(c, defaultMemoryLimit)
}

// serverSetupLimit is serverSetup for a command whose default memory limit
// is def.
func (e *env) serverSetupLimit(c *cli.Context, def string) (zerolog.Logger, error) {
	log, err := e.logger(c)
	if err != nil {
		return log, err
	}
	if e.getenv("GOMEMLIMIT") != "" {
		return log, nil // the runtime has already applied it
	}
	limit, err := memoryLimit(c.String("memory-limit"), def)
	if err != nil {
		return log, err
	}
	if limit > 0 {
		debug.SetMemoryLimit(limit)
	}
	return log, nil
}

// memoryLimit resolves the value of --memory-limit, def when it is not
// given, to bytes; 0 means no limit.
func memoryLimit(flag, def string) (int64, error) {
	v := strings.TrimSpace(flag)
	if v == "" {
		v = def
	}
	if v == "0" {
		return 0, nil
	}
	limit, err := parseSize(v)
	if err != nil {
		return 0, usageErrorf("--memory-limit %q: %v", v, err)
	}
	return limit, nil
}

// logger builds the one logger of the process from the global flags.
func (e *env) logger(c *cli.Context) (zerolog.Logger, error) {
	level, err := zerolog.ParseLevel(c.String("log-level"))
	if err != nil || c.String("log-level") == "" {
		return zerolog.Nop(), usageErrorf("--log-level %q: want debug, info, warn or error", c.String("log-level"))
	}
	var w io.Writer = e.stderr
	switch format := c.String("log-format"); format {
	case "":
		if f, ok := e.stderr.(*os.File); ok && isatty.IsTerminal(f.Fd()) {
			w = zerolog.ConsoleWriter{Out: e.stderr}
		}
	case "console":
		w = zerolog.ConsoleWriter{Out: e.stderr, NoColor: true}
	case "json":
	default:
		return zerolog.Nop(), usageErrorf("--log-format %q: want console or json", format)
	}
	return zerolog.New(w).Level(level).With().Timestamp().Logger(), nil
}

func (e *env) printf(format string, args ...any) {
	fmt.Fprintf(e.stdout, format, args...)
}
