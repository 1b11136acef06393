package cli

import (
	"fmt"

	"github.com/urfave/cli/v2"
)

func versionCommand(e *env) *cli.Command {
	return &cli.Command{
		Name:  "version",
		Usage: "print the version",
		Action: func(c *cli.Context) error {
			_, err := fmt.Fprintf(e.stdout, "sidehook %s\n", Version)
			return err
		},
	}
}
