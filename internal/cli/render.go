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
			rc, err := newRelayClient(c, "render")
			if err != nil {
				return err
			}
			if !c.IsSet("template") {
				return usageErrorf("render: --template is required")
			}
			ans, raw, err := rc.Render(c.Context, c.String("template"), relayapi.Customer{
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
