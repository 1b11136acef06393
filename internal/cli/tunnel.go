package cli

import (
	"fmt"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/sidehook/sidehook/relay/tunnel"
)

// defaultInspect is the inspector's address: a free loopback port.
const defaultInspect = "127.0.0.1:0"

func tunnelCommand(e *env) *cli.Command {
	return &cli.Command{
		Name:  "tunnel",
		Usage: "forward a relay's tunnel://NAME deliveries to a local app",
		Description: "Connects to the relay's GET /v1/tunnel?name=NAME over a websocket and forwards each\n" +
			"delivery of the organisation's tunnel://NAME[/PATH] endpoints to --forward (+PATH) with its\n" +
			"exact bytes and headers, so the app verifies signatures as in production; the app's answer\n" +
			"is the attempt's result (non-2xx and no answer are retried by the relay). Reconnects with\n" +
			"backoff; deliveries that waited while it was away become due when it is back. Prints a\n" +
			"ready line (the public POST /in/{org} URL and how to verify), then one line per delivery,\n" +
			"per replay (\"replay of ID\", from the inspector or the relay) and per endpoint test (\"test\"),\n" +
			"and one per retry: \"cannot connect\" (--json: connect_failed) when a dial fails,\n" +
			"\"disconnected\" when a connection is lost.\n" +
			"The local inspector (--inspect) lists every forwarded request with the app's answer and\n" +
			"replays it to the app with the same bytes.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "relay", Value: defaultRelayURL, Usage: "the relay's base `URL` (https:// for TLS)"},
			&cli.StringFlag{Name: "api-key", Usage: "an API key of the organisation"},
			&cli.StringFlag{Name: "name", Usage: "the tunnel's `NAME`: endpoints with url tunnel://NAME[/PATH] come here"},
			&cli.StringFlag{Name: "forward", Usage: "the local app's `URL`, e.g. http://localhost:3000/webhooks"},
			&cli.StringSliceFlag{Name: "events", Usage: "take only these event types (repeat or comma-separate; default all); the relay keeps the others for a client that takes them"},
			&cli.BoolFlag{Name: "json", Usage: "print JSON lines"},
			&cli.BoolFlag{Name: "print-secret", Usage: "print what the local app needs to verify deliveries, then exit"},
			&cli.StringFlag{Name: "inspect", Value: defaultInspect, Usage: "the local inspector's loopback `ADDR` (false to turn it off)"},
			&cli.StringFlag{Name: "ca", Usage: "PEM `FILE` of the CA that signed the relay's certificate (default: the system's)"},
		},
		Action: func(c *cli.Context) error {
			log, err := e.logger(c)
			if err != nil {
				return err
			}
			required := []string{"api-key", "name", "forward"}
			if c.Bool("print-secret") {
				required = required[:2] // nothing is forwarded
			}
			for _, req := range required {
				if c.String(req) == "" {
					return usageErrorf("tunnel: --%s is required", req)
				}
			}
			inspect := c.String("inspect")
			if off := strings.ToLower(inspect); off == "false" || off == "off" || off == "no" {
				inspect = ""
			}
			var events []string
			for _, v := range c.StringSlice("events") {
				for _, ev := range strings.Split(v, ",") {
					if ev = strings.TrimSpace(ev); ev != "" {
						events = append(events, ev)
					}
				}
			}
			cl, err := tunnel.NewClient(tunnel.ClientConfig{
				RelayURL: c.String("relay"),
				APIKey:   c.String("api-key"),
				Name:     c.String("name"),
				Forward:  c.String("forward"),
				Events:   events,
				JSON:     c.Bool("json"),
				Inspect:  inspect,
				CA:       c.String("ca"),
				Stdout:   e.stdout,
				Logger:   log,
			})
			if err != nil {
				return usageErrorf("tunnel: %v", err)
			}
			if c.Bool("print-secret") {
				if err := cl.PrintSecret(c.Context); err != nil {
					return fmt.Errorf("tunnel: %w", err)
				}
				return nil
			}
			// Run ends with an error only when retrying cannot help (a
			// refused API key, an untrusted certificate, the inspector's
			// port taken): exit 1, one line.
			if err := cl.Run(c.Context); err != nil {
				return busyPort(fmt.Errorf("tunnel: %w", err), "tunnel", inspect, listenFlagHint("tunnel", "inspect"))
			}
			return nil
		},
	}
}
