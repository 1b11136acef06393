package cli

import (
	"fmt"
	"strings"

	"github.com/urfave/cli/v2"
)

func manCommand(e *env) *cli.Command {
	return &cli.Command{
		Name:  "man",
		Usage: "print the manual page (roff), generated from the commands and flags",
		Description: "Read it with:   sidehook man | man -l -\n" +
			"or install it:  sidehook man > /usr/local/share/man/man1/sidehook.1",
		Action: func(c *cli.Context) error {
			page, err := forManPage(c.App).ToManWithSection(1)
			if err != nil {
				return fmt.Errorf("man: %w", err)
			}
			e.printf("%s", page)
			return nil
		},
	}
}

// forManPage is forGenerator with every flag's usage escaped for the
// Markdown urfave/cli makes the page from: there a usage's end, "[$VAR]
// (default: x)", is a link, and the page showed neither the variables'
// brackets nor the default.
func forManPage(app *cli.App) *cli.App {
	page := forGenerator(app)
	page.Flags = manFlags(page.Flags)
	manCommands(page.Commands)
	return page
}

// manCommands escapes the flags of cmds, forGenerator's copies, and of
// their subcommands.
func manCommands(cmds []*cli.Command) {
	for _, c := range cmds {
		c.Flags = manFlags(c.Flags)
		manCommands(c.Subcommands)
	}
}

// manFlags copies flags with their usage's brackets escaped; the
// command's own flags are left as they are.
func manFlags(flags []cli.Flag) []cli.Flag {
	esc := strings.NewReplacer("[", `\[`, "]", `\]`)
	out := make([]cli.Flag, len(flags))
	for i, f := range flags {
		out[i] = copyFlag(f)
		if u := usageOf(out[i]); u != nil {
			*u = esc.Replace(*u)
		}
	}
	return out
}

// copyFlag is a shallow copy of f, or f itself for a kind usageOf does not
// know (nothing of it is changed then).
func copyFlag(f cli.Flag) cli.Flag {
	switch f := f.(type) {
	case *cli.StringFlag:
		cp := *f
		return &cp
	case *cli.StringSliceFlag:
		cp := *f
		return &cp
	case *cli.BoolFlag:
		cp := *f
		return &cp
	case *cli.IntFlag:
		cp := *f
		return &cp
	case *cli.Float64Flag:
		cp := *f
		return &cp
	case *cli.DurationFlag:
		cp := *f
		return &cp
	case *cli.GenericFlag:
		cp := *f
		return &cp
	}
	return f
}
