package cli

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/mattn/go-isatty"
	"github.com/rs/zerolog"
	"github.com/urfave/cli/v2"
)

// env is what Run was given: the environment, the streams and the build.
// Every command takes it instead of reaching for os.* or a global.
type env struct {
	getenv func(string) string
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
	build  buildInfo
	args   []string // the command line, for completion
	// fromEnv maps "command flag" to the variable that set the flag, for
	// each flag set from one, not the command line.
	fromEnv  map[string]string
	notFound error
	// logOut batches the log's writes to stderr; Run flushes it last.
	logOut *batchWriter

	mu sync.Mutex
	// clients are the HTTP clients the command made (ownClient); Run
	// closes their idle connections when it returns.
	clients []*http.Client
}

func newEnv(args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) *env {
	return &env{
		args:    args,
		getenv:  getenv,
		stdin:   stdin,
		stdout:  stdout,
		stderr:  stderr,
		build:   readBuildInfo(debug.ReadBuildInfo()),
		fromEnv: make(map[string]string),
	}
}

// ownClient makes hc the command's own: on a transport of its own when it
// has none (not Go's shared default one, which would keep the command's
// keep-alive connections, two goroutines each, until its idle timeout
// after the command returned: nothing to a process that exits, but many
// runs in-process, as the tests run them, pile them up), whose idle
// connections Run closes when the command returns.
func (e *env) ownClient(hc *http.Client) *http.Client {
	if hc.Transport == nil {
		hc.Transport = http.DefaultTransport.(*http.Transport).Clone()
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.clients = append(e.clients, hc)
	return hc
}

// closeClients closes the idle connections of every client ownClient
// made. A connection still in use is the command's to finish: each closes
// its answers' bodies before it returns.
func (e *env) closeClients() {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, hc := range e.clients {
		hc.CloseIdleConnections()
	}
	e.clients = nil
}

// defaultMemoryLimit keeps a sidecar's RSS near its target: without a
// limit the Go runtime lets the heap grow to twice what is live before it
// collects, and Badger's compactions make a lot of short-lived garbage.
const defaultMemoryLimit = "160MiB"

// relayMemoryLimit is lower: the relay's target is 128 MiB of RSS with a
// backlog of a million events, and its resident value log and tables come
// on top of the heap. With 160MiB its anonymous memory peaked at 133 MiB
// and its RSS at 241 MiB; with 128MiB at 111 and 217 MiB, for the same
// GC time. With 72MiB (and the store sized for a relay) at 85 and 148 MiB,
// against 122 and 182 MiB for 128MiB in the same run (loadgen's backlog
// phase, 2 cores).
const relayMemoryLimit = "72MiB"

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
	limit, err := e.memoryLimit(c, def)
	if err != nil {
		return log, err
	}
	if limit > 0 {
		debug.SetMemoryLimit(limit)
	}
	return log, nil
}

// memoryLimit is --memory-limit in bytes, def when it is not given; 0
// means no limit.
func (e *env) memoryLimit(c *cli.Context, def string) (int64, error) {
	limit, err := memoryLimit(c.String("memory-limit"), def)
	if err != nil {
		// The error quotes the value already.
		return 0, usageErrorf("%s%v", e.globalSource("memory-limit"), err)
	}
	return limit, nil
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
	return parseSize(v)
}

// consoleTime is the console log's clock: to the millisecond, as two
// deliveries a few milliseconds apart must be told apart.
const consoleTime = "15:04:05.000"

// millisecondTime stamps each line with its time to the millisecond.
// zerolog's Timestamp writes whole seconds unless its package-wide
// TimeFieldFormat is changed, which is not this package's to change.
type millisecondTime struct{}

func (millisecondTime) Run(e *zerolog.Event, _ zerolog.Level, _ string) {
	e.Str(zerolog.TimestampFieldName, time.Now().UTC().Format("2006-01-02T15:04:05.000Z07:00"))
}

// checkGlobals refuses a bad value of a global flag in every command, the
// ones that never log or set a memory limit too: a typo there is still a
// mistake in how sidehook was called.
func (e *env) checkGlobals(c *cli.Context) error {
	if _, err := e.logLevel(c); err != nil {
		return err
	}
	if _, err := e.logFormat(c); err != nil {
		return err
	}
	_, err := e.memoryLimit(c, "0")
	return err
}

// globalSource names where a global flag's value came from, for an error
// about it: "--name " when the command line writes the flag, before the
// command or after it (the command line wins), else "VARIABLE=" when its
// variable set it. Every command inherits the global flags' values, so
// only the command line tells which.
func (e *env) globalSource(name string) string {
	if v := e.fromEnv[" "+name]; v != "" && !e.written(name) {
		return v + "="
	}
	return "--" + name + " "
}

// written reports whether the command line writes the flag name.
func (e *env) written(name string) bool {
	for _, a := range e.args[min(1, len(e.args)):] {
		if a == "--" {
			break
		}
		flag, _, _ := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if strings.HasPrefix(a, "-") && flag == name {
			return true
		}
	}
	return false
}

// logFormat is --log-format: "" (chosen by the terminal), console or json.
func (e *env) logFormat(c *cli.Context) (string, error) {
	switch format := c.String("log-format"); format {
	case "", "console", "json":
		return format, nil
	default:
		return "", usageErrorf("%s%q: want console or json", e.globalSource("log-format"), format)
	}
}

func (e *env) logLevel(c *cli.Context) (zerolog.Level, error) {
	level, err := zerolog.ParseLevel(c.String("log-level"))
	if err != nil || c.String("log-level") == "" {
		return level, usageErrorf("%s%q: want debug, info, warn or error", e.globalSource("log-level"), c.String("log-level"))
	}
	return level, nil
}

// logger builds the one logger of the process from the global flags,
// which checkGlobals has checked.
func (e *env) logger(c *cli.Context) (zerolog.Logger, error) {
	level, err := e.logLevel(c)
	if err != nil {
		return zerolog.Nop(), err
	}
	format, err := e.logFormat(c)
	if err != nil {
		return zerolog.Nop(), err
	}
	if e.logOut == nil {
		e.logOut = newBatchWriter(e.stderr)
	}
	var w io.Writer = e.logOut
	switch format {
	case "":
		if f, ok := e.stderr.(*os.File); ok && isatty.IsTerminal(f.Fd()) {
			w = zerolog.ConsoleWriter{Out: e.logOut, TimeFormat: consoleTime}
		}
	case "console":
		w = zerolog.ConsoleWriter{Out: e.logOut, NoColor: true, TimeFormat: consoleTime}
	}
	return zerolog.New(w).Level(level).Hook(millisecondTime{}), nil
}

func (e *env) printf(format string, args ...any) {
	fmt.Fprintf(e.stdout, format, args...)
}
