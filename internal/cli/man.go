package cli

import (
	"fmt"

	"github.com/urfave/cli/v2"
)

func manCommand(e *env) *cli.Command {
	return &cli.Command{
		Name:  "man",
		Usage: "print the manual page (roff), generated from the commands and flags",
		Description: "Read it with:   sidehook man | man -l -\n" +
			"or install it:  sidehook man > /usr/local/share/man/man1/sidehook.1",
		Action: func(c *cli.Context) error {
			page, err := forGenerator(c.App).ToManWithSection(1)
			if err != nil {
				return fmt.Errorf("man: %w", err)
			}
			e.printf("%s", page)
			return nil
		},
	}
}
