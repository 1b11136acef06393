package cli

import (
	"slices"

	"github.com/urfave/cli/v2"
)

// forGenerator is app as urfave/cli's generators (the fish script, the
// manual page) should walk it: a copy whose command tree has no cycle.
// urfave/cli's help command is one package-level value; once it has run
// (sidehook help) it lists itself among its own subcommands, and a
// generator would follow that cycle until the stack ran out. A process
// runs one command, but a test process runs many, in any order; in a
// fresh process there is no cycle, and the output is the same.
func forGenerator(app *cli.App) *cli.App {
	cp := *app
	cp.Commands = acyclic(app.Commands, nil)
	return &cp
}

// acyclic copies cmds, leaving out any command that is its own ancestor.
func acyclic(cmds []*cli.Command, path []*cli.Command) []*cli.Command {
	out := make([]*cli.Command, 0, len(cmds))
	for _, c := range cmds {
		if slices.Contains(path, c) {
			continue
		}
		cp := *c
		cp.Subcommands = acyclic(c.Subcommands, append(path[:len(path):len(path)], c))
		out = append(out, &cp)
	}
	return out
}
