// Command sidehook is a durable webhook relay and a mock receiver for
// Webio-style webhooks. See README.md and SPEC.md; the commands live in
// internal/cli.
package main

import (
	"context"
	"os"

	"github.com/sidehook/sidehook/internal/cli"
)

func main() {
	err := cli.Run(context.Background(), os.Args, os.Getenv, os.Stdout, os.Stderr)
	os.Exit(cli.ExitCode(err, os.Stderr))
}
