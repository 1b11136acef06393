package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/sidehook/sidehook/fixtures"
	"github.com/sidehook/sidehook/internal/event"
)

const defaultRelayURL = "http://127.0.0.1:8080"

// relayFlags are the flags of every command that talks to a relay.
func relayFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "relay", Value: defaultRelayURL, Usage: "the relay's base `URL`"},
		&cli.StringFlag{Name: "api-key", Usage: "an API key of the organisation"},
		&cli.DurationFlag{Name: "timeout", Value: 30 * time.Second, Usage: "how long to wait for the relay"},
	}
}

// relayClient calls a relay's management API.
type relayClient struct {
	base   string
	key    string
	client *http.Client
}

func newRelayClient(c *cli.Context, cmd string) (*relayClient, error) {
	base := strings.TrimRight(c.String("relay"), "/")
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, usageErrorf("%s: --relay %q is not an http(s) URL", cmd, c.String("relay"))
	}
	if c.String("api-key") == "" {
		return nil, usageErrorf("%s: --api-key is required", cmd)
	}
	if c.Duration("timeout") <= 0 {
		return nil, usageErrorf("%s: --timeout must be positive", cmd)
	}
	return &relayClient{base: base, key: c.String("api-key"), client: &http.Client{Timeout: c.Duration("timeout")}}, nil
}

// do sends a request and decodes a 2xx JSON answer into out; any other
// answer is an error carrying the relay's reason.
func (rc *relayClient) do(ctx context.Context, method, path string, header http.Header, body []byte, out any) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, rc.base+path, bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	for k, v := range header {
		req.Header[k] = v
	}
	req.Header.Set("Authorization", "Bearer "+rc.key)
	if req.Header.Get("Content-Type") == "" && body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := rc.client.Do(req)
	if err != nil {
		return 0, nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return resp.StatusCode, nil, fmt.Errorf("%s %s: read answer: %w", method, path, err)
	}
	if resp.StatusCode/100 != 2 {
		var e struct{ Error, Reason string }
		if json.Unmarshal(b, &e) == nil && e.Error != "" {
			return resp.StatusCode, b, fmt.Errorf("relay answered %d %s: %s", resp.StatusCode, e.Error, e.Reason)
		}
		return resp.StatusCode, b, fmt.Errorf("relay answered %d: %s", resp.StatusCode, strings.TrimSpace(string(b)))
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return resp.StatusCode, b, fmt.Errorf("%s %s: decode answer: %w", method, path, err)
		}
	}
	return resp.StatusCode, b, nil
}

func sendCommand(e *env) *cli.Command {
	return &cli.Command{
		Name:  "send",
		Usage: "post an event to a relay (a fixture by event name, or a file)",
		Description: "Posts the embedded fixture payload of --event (or the bytes of --file) to the relay's\n" +
			"POST /v1/events and prints its answer: 202 {\"id\",\"type\",\"deliveries\":[…]}.",
		Flags: append(relayFlags(),
			&cli.StringFlag{Name: "event", Usage: "the event type (inbound_message, message_send, delivery_report, payment, or any name)"},
			&cli.StringFlag{Name: "file", Usage: "send this payload `FILE` instead of the fixture"},
			&cli.StringFlag{Name: "id", Usage: "the webhook-id (idempotency key); default: the relay makes one"},
		),
		Action: func(c *cli.Context) error {
			rc, err := newRelayClient(c, "send")
			if err != nil {
				return err
			}
			typ := c.String("event")
			if typ != "" && !event.ValidName(typ) {
				return usageErrorf("send: --event %q is not an event type name", typ)
			}
			if typ == string(event.CustomValueRequest) {
				return usageErrorf("send: custom_value_request is a synchronous GET: use 'sidehook render' or 'sidehook test'")
			}
			var body []byte
			switch {
			case c.String("file") != "":
				body, err = os.ReadFile(c.String("file"))
				if err != nil {
					return usageErrorf("send: --file: %v", err)
				}
			case typ != "":
				p, ok := fixtures.Default().Payload(event.Type(typ))
				if !ok {
					return usageErrorf("send: no fixture for %q: give --file, or one of inbound_message, message_send, delivery_report, payment", typ)
				}
				body = p
			default:
				return usageErrorf("send: give --event TYPE (a fixture) or --file FILE")
			}
			h := http.Header{}
			if typ != "" {
				h.Set("sidehook-event", typ)
			}
			if id := c.String("id"); id != "" {
				h.Set("webhook-id", id)
			}
			_, b, err := rc.do(c.Context, http.MethodPost, "/v1/events", h, body, nil)
			if err != nil {
				return fmt.Errorf("send: %w", err)
			}
			e.printf("%s\n", strings.TrimSpace(string(b)))
			return nil
		},
	}
}
