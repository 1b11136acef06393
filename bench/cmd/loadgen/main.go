// Command loadgen runs sidehook's benchmarks (docs/BENCHMARKS.md): each
// target measured against its baseline in the same run, on loopback, with
// the same client.
//
//	loadgen receiver --sidehook /tmp/sidehook   # sidehook receive vs a bare net/http handler
//	loadgen relay --sidehook /tmp/sidehook      # sidehook relay vs posting straight to a sink
//	loadgen scale --sidehook /tmp/sidehook      # one relay on Badger, 1-3 relays on JetStream
//
// The baselines run in child processes of this same binary (the hidden
// modes serve-bare, serve-sink and serve-forward), so server and client never share a Go
// runtime, just as sidehook runs in its own process.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"syscall"

	"github.com/sidehook/sidehook/bench/loadgen"
)

func main() {
	err := run(context.Background(), os.Args[1:], os.Stdout, os.Stderr)
	switch {
	case err == nil:
	case errors.Is(err, flag.ErrHelp):
		os.Exit(0)
	case errors.As(err, new(*usageError)):
		fmt.Fprintf(os.Stderr, "loadgen: %v\n", err)
		os.Exit(2)
	default:
		fmt.Fprintf(os.Stderr, "loadgen: %v\n", err)
		os.Exit(1)
	}
}

const usage = `usage: loadgen <command> [flags]

commands:
  receiver   sidehook receive (JWT verified, durable captures) vs a bare net/http handler
  relay      sidehook relay (ingest → durable → delivered) vs posting straight to a sink
  scale      one relay on Badger, then 1, 2 and 3 relays on a three-node JetStream cluster

Run 'loadgen <command> -h' for its flags. Every phase is bounded in time and
every child process is killed on exit.
`

// run is the whole program with its streams injected.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return usageErrorf("no command")
	}
	switch cmd, rest := args[0], args[1:]; cmd {
	case "receiver":
		return runReceiver(ctx, rest, stdout, stderr)
	case "relay":
		return runRelay(ctx, rest, stdout, stderr)
	case "scale":
		return runScale(ctx, rest, stdout, stderr)
	case "serve-bare":
		return serve(ctx, rest, loadgen.BareHandler(), stdout, stderr)
	case "serve-sink":
		return serve(ctx, rest, loadgen.NewSink(), stdout, stderr)
	case "serve-forward":
		return serveForward(ctx, rest, stdout, stderr)
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, usage)
		return nil
	default:
		fmt.Fprint(stderr, usage)
		return usageErrorf("unknown command %q", cmd)
	}
}

// serve is the hidden child mode: one server on loopback until SIGTERM.
func serve(ctx context.Context, args []string, h http.Handler, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", "127.0.0.1:0", "address to listen on")
	if err := parse(fs, args); err != nil {
		return err
	}
	return loadgen.Serve(ctx, *listen, h, stdout)
}

// serveForward is the hidden child mode of the relay benchmark's forwarder.
func serveForward(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("serve-forward", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", "127.0.0.1:0", "address to listen on")
	to := fs.String("to", "", "URL to post each body on to")
	workers := fs.Int("workers", 32, "requests in flight")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *to == "" || *workers < 1 {
		return usageErrorf("serve-forward: --to and a positive --workers are required")
	}
	return loadgen.Serve(ctx, *listen, loadgen.NewForwarder(ctx, *to, *workers), stdout)
}

// usageError is a mistake in how loadgen was called: exit code 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usageErrorf(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

// parse parses flags, turning flag's errors into usage errors and refusing
// stray arguments.
func parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageErrorf("%s: %v", fs.Name(), err)
	}
	if fs.NArg() > 0 {
		return usageErrorf("%s: unexpected argument %q", fs.Name(), fs.Arg(0))
	}
	return nil
}
