package cli

import (
	"encoding/json"
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/urfave/cli/v2"

	"github.com/sidehook/sidehook/internal/event"
)

func testCommand(e *env) *cli.Command {
	return &cli.Command{
		Name:  "test",
		Usage: "run the connection tests against a relay's endpoint",
		Description: "Asks the relay to send each fixture payload (all five, or --event) to the endpoint once,\n" +
			"synchronously, with sidehook-test: true, and prints one result per test. Exit code 1 when\n" +
			"any test failed.",
		Flags: append(relayFlags(),
			&cli.StringFlag{Name: "endpoint", Usage: "the endpoint `ID`"},
			&cli.StringFlag{Name: "event", Usage: "test only this event type"},
			&cli.BoolFlag{Name: "json", Usage: "print the answer as JSON"},
		),
		Action: func(c *cli.Context) error {
			rc, err := e.newRelayClient(c, "test")
			if err != nil {
				return err
			}
			ep := c.String("endpoint")
			if ep == "" {
				return usageErrorf("test: --endpoint is required")
			}
			t := c.String("event")
			if t != "" && !event.Type(t).IsBuiltin() {
				return usageErrorf("test: %s %q: want one of inbound_message, message_send, delivery_report, payment, custom_value_request", e.source(c, "event"), t)
			}
			ans, raw, err := rc.Test(c.Context, ep, t)
			if err != nil {
				return relayFailed("test", err)
			}
			failed := 0
			for _, r := range ans.Results {
				if !r.OK {
					failed++
				}
			}
			if c.Bool("json") {
				e.printf("%s\n", strings.TrimSpace(string(raw)))
			} else {
				tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "EVENT\tRESULT\tSTATUS\tLATENCY\tDETAIL")
				for _, r := range ans.Results {
					res, detail := "ok", ""
					if !r.OK {
						res, detail = "FAIL", r.Error
					} else if r.Values != nil {
						detail = valuesText(r.Values)
					}
					fmt.Fprintf(tw, "%s\t%s\t%d\t%.1fms\t%s\n", r.Event, res, r.Status, r.LatencyMS, detail)
				}
				tw.Flush()
			}
			if failed > 0 {
				return fmt.Errorf("test: %d of %d connection tests failed", failed, len(ans.Results))
			}
			return nil
		},
	}
}

func valuesText(v map[string]*string) string {
	b, err := json.Marshal(v)
	if err != nil {
		return ""
	}
	return string(b)
}
