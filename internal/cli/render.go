package cli

import (
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/sidehook/sidehook/relay/relayapi"
)

func renderCommand(e *env) *cli.Command {
	return &cli.Command{
		Name:  "render",
		Usage: "fill a <<field>> template with custom values through a relay",
		// The template as the one argument, as a user first types it, or
		// --template.
		ArgsUsage: "[TEMPLATE]",
		Description: "Asks the relay's POST /v1/render: the relay requests the template's fields from the\n" +
			"organisation's custom-value endpoint and fills <<field>> and <<field|default>>; a field\n" +
			"without a value renders as its default, else as null. Prints the text (--json: the answer).",
		Flags: append(relayFlags(),
			&cli.StringFlag{Name: "template", Usage: "the template, e.g. \"Hi <<fullname|there>>\""},
			&cli.StringFlag{Name: "customer-uid", Usage: "the customer's UID"},
			&cli.StringFlag{Name: "channel-id", Usage: "the customer's channel address"},
			&cli.StringFlag{Name: "conversation-id", Usage: "the conversation id"},
			&cli.BoolFlag{Name: "json", Usage: "print the whole answer as JSON"},
		),
		Action: func(c *cli.Context) error {
			// The template first: flags written after it are not read, so
			// a required one there is misplaced, not missing.
			tmpl, err := renderTemplate(c)
			if err != nil {
				return err
			}
			rc, err := e.newRelayClient(c, "render")
			if err != nil {
				return err
			}
			ans, raw, err := rc.Render(c.Context, tmpl, relayapi.Customer{
				CustomerUID: c.String("customer-uid"), ChannelID: c.String("channel-id"), ConversationID: c.String("conversation-id")})
			if err != nil {
				return relayFailed("render", err)
			}
			if c.Bool("json") {
				e.printf("%s\n", strings.TrimSpace(string(raw)))
				return nil
			}
			e.printf("%s\n", ans.Text)
			return nil
		},
	}
}

// renderTemplate is the template given as the one argument or --template.
// An empty one is refused: it is almost always an unset variable
// (render "$TEMPLATE"), which would print an empty line and succeed.
func renderTemplate(c *cli.Context) (string, error) {
	args := c.Args().Slice()
	var tmpl string
	switch {
	case len(args) > 1:
		return "", usageErrorf("render: give one TEMPLATE, quoted, with the flags before it; got %d arguments", len(args))
	case len(args) == 1 && c.IsSet("template"):
		return "", usageErrorf("render: give the template as the argument or --template, not both")
	case len(args) == 1:
		tmpl = args[0]
	case !c.IsSet("template"):
		return "", usageErrorf("render: give the TEMPLATE, e.g. sidehook render 'Hi <<fullname|there>>'")
	default:
		tmpl = c.String("template")
	}
	if strings.TrimSpace(tmpl) == "" {
		return "", usageErrorf("render: the template is empty (an unset variable?): give the text to fill, e.g. 'Hi <<fullname|there>>'")
	}
	return tmpl, nil
}
