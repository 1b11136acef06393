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
			"replays it to the app with the same bytes.\n" +
			"An app serving HTTPS with a certificate of its own is checked like any server: trust its CA\n" +
			"with --forward-ca FILE (mkcert: $(mkcert -CAROOT)/rootCA.pem; a self-signed one: its own\n" +
			"PEM), or skip the check with --skip-verify. Neither touches the relay's connection, which\n" +
			"--ca alone trusts.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "relay", Value: defaultRelayURL, Usage: "the relay's base `URL` (https:// for TLS)"},
			&cli.StringFlag{Name: "api-key", Usage: "an API key of the organisation"},
			&cli.StringFlag{Name: "name", Usage: "the tunnel's `NAME`: endpoints with url tunnel://NAME[/PATH] come here"},
			&cli.StringFlag{Name: "forward", Usage: "the local app's `URL`, e.g. http://localhost:3000/webhooks"},
			&cli.StringSliceFlag{Name: "events", Usage: "take only these event types (repeat or comma-separate; default all); the relay keeps the others for a client that takes them"},
			&cli.BoolFlag{Name: "json", Usage: "print JSON lines"},
			&cli.BoolFlag{Name: "print-secret", Usage: "print what the local app needs to verify deliveries, then exit"},
			&cli.StringFlag{Name: "inspect", Value: defaultInspect, Usage: "the local inspector's loopback `ADDR` (false to turn it off)"},
			&cli.StringFlag{Name: "ca", Usage: "PEM `FILE` of the CA that signed the relay's certificate (default: the system's; the local app's is --forward-ca)"},
			&cli.StringFlag{Name: "forward-ca", Usage: "PEM `FILE` of the CA (or the self-signed certificate) of an https:// --forward app, instead of the system's"},
			&cli.BoolFlag{Name: "skip-verify", Usage: "do not check the certificate of an https:// --forward app (the relay's is always checked)"},
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
			if err := forwardTLSFlags(c, e); err != nil {
				return err
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
			// Checked here as well, to name the flag or the variable
			// each URL came from.
			for _, f := range []string{"relay", "forward"} {
				if v := c.String(f); v != "" {
					if _, err := tunnel.ParseBaseURL(f, v); err != nil {
						return usageErrorf("tunnel: %s: %v", e.source(c, f), err)
					}
				}
			}
			cl, err := tunnel.NewClient(tunnel.ClientConfig{
				RelayURL:   c.String("relay"),
				APIKey:     c.String("api-key"),
				Name:       c.String("name"),
				Forward:    c.String("forward"),
				Events:     events,
				JSON:       c.Bool("json"),
				Inspect:    inspect,
				CA:         c.String("ca"),
				ForwardCA:  c.String("forward-ca"),
				SkipVerify: c.Bool("skip-verify"),
				Stdout:     e.stdout,
				Logger:     log,
			})
			if err != nil {
				return usageErrorf("tunnel: %v", err)
			}
			if c.Bool("print-secret") {
				if err := cl.PrintSecret(c.Context); err != nil {
					// Interrupted, it printed nothing: a failure, unlike
					// stopping a running tunnel.
					return relayFailed("tunnel", err)
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

// forwardTLSFlags refuses --forward-ca and --skip-verify together, and
// either given on the command line for an http:// --forward, where it
// would silently do nothing. One set by its variable is let be there: a
// developer may export SIDEHOOK_SKIP_VERIFY for every tunnel, whichever
// scheme each app serves.
func forwardTLSFlags(c *cli.Context, e *env) error {
	if c.String("forward-ca") != "" && c.Bool("skip-verify") {
		return usageErrorf("tunnel: %s and %s: choose one (--forward-ca checks the local app's certificate against FILE, --skip-verify checks nothing)",
			e.source(c, "forward-ca"), e.source(c, "skip-verify"))
	}
	// Any other malformed --forward is NewClient's to word.
	forward := c.String("forward")
	if !strings.HasPrefix(strings.ToLower(forward), "http://") {
		return nil
	}
	for flag, set := range map[string]bool{"forward-ca": c.String("forward-ca") != "", "skip-verify": c.Bool("skip-verify")} {
		if set && e.given(c, flag) {
			return usageErrorf("tunnel: --%s applies to an https:// --forward, not %s, which has no certificate", flag, forward)
		}
	}
	return nil
}
