package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/urfave/cli/v2"

	"github.com/sidehook/sidehook/fixtures"
	"github.com/sidehook/sidehook/internal/event"
	"github.com/sidehook/sidehook/relay/relayapi"
)

const defaultRelayURL = "http://127.0.0.1:8080"

// maxSendBody bounds what send reads of --file: far above the
// relay's default body limit, so the relay's 413 is what a user sees.
const maxSendBody = 64 << 20

// relayFlags are the flags of every command that talks to a relay.
func relayFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "relay", Value: defaultRelayURL, Usage: "the relay's base `URL`"},
		&cli.StringFlag{Name: "api-key", Usage: "an API key of the organisation"},
		&cli.DurationFlag{Name: "timeout", Value: 30 * time.Second, Usage: "how long to wait for the relay"},
	}
}

// newRelayClient is the relay API client the relay flags describe, on a
// client of the command's own (ownClient).
func (e *env) newRelayClient(c *cli.Context, cmd string) (*relayapi.Client, error) {
	if c.String("api-key") == "" {
		return nil, usageErrorf("%s: --api-key is required", cmd)
	}
	if c.Duration("timeout") <= 0 {
		return nil, usageErrorf("%s: %s must be positive", cmd, e.source(c, "timeout"))
	}
	rc, err := relayapi.New(c.String("relay"), c.String("api-key"), e.ownClient(&http.Client{Timeout: c.Duration("timeout")}))
	if err != nil {
		return nil, usageErrorf("%s: %s: %v", cmd, e.source(c, "relay"), err)
	}
	return rc, nil
}

// relayFailed is the error of a command whose call to the relay failed.
// An interrupted call is a failure, not a clean stop, so it is not wrapped:
// ExitCode takes a wrapped context.Canceled for a clean stop (exit 0).
func relayFailed(cmd string, err error) error {
	if errors.Is(err, context.Canceled) {
		return fmt.Errorf("%s: interrupted before the relay answered", cmd)
	}
	return fmt.Errorf("%s: %w", cmd, notRunning(err, "relay", "relay"))
}

// notRunning adds to a connection refused by the server (a relay, a
// receiver) what starts one: the README's first send, before any relay
// runs, ended at "connect: connection refused".
func notRunning(err error, server, command string) error {
	if errors.Is(err, syscall.ECONNREFUSED) {
		return fmt.Errorf("%w: is a %s running there? (sidehook dev or sidehook %s starts one)", err, server, command)
	}
	return err
}

func sendCommand(e *env) *cli.Command {
	return &cli.Command{
		Name:  "send",
		Usage: "post an event to a relay (a fixture by event name, or a file)",
		Description: "Posts the embedded fixture payload of --event (or the bytes of --file; - reads standard\n" +
			"input) to the relay's POST /v1/events and prints its answer: 202 {\"id\",\"type\",\"deliveries\":[…]}.\n" +
			"--set changes a field of the payload first (as stripe trigger --override does):\n\n" +
			"   sidehook send --event payment --set amount=12.50 --set customer.name=Ada --set retries:=3",
		Flags: append(relayFlags(),
			&cli.StringFlag{Name: "event", Usage: "the event type (inbound_message, message_send, delivery_report, payment, or any name)"},
			&cli.StringFlag{Name: "file", Usage: "send this payload `FILE` instead of the fixture (- for standard input)"},
			&cli.GenericFlag{Name: "set", Value: &assignments{}, Usage: "set a field of the JSON payload: `PATH=TEXT` (a string) or PATH:=JSON (a number, true, an object…); PATH is dotted for nested fields (repeatable)"},
			&cli.StringFlag{Name: "id", Usage: "the webhook-id (idempotency key); default: the relay makes one"},
		),
		Action: func(c *cli.Context) error {
			rc, err := e.newRelayClient(c, "send")
			if err != nil {
				return err
			}
			typ := c.String("event")
			if typ != "" && !event.ValidName(typ) {
				return usageErrorf("send: %s %q is not an event type name", e.source(c, "event"), typ)
			}
			if typ == string(event.CustomValueRequest) {
				return usageErrorf("send: custom_value_request is a synchronous GET: use 'sidehook render' or 'sidehook test'")
			}
			var body []byte
			switch {
			case c.String("file") != "":
				if body, err = readPayload("send: --file", c.String("file"), e.stdin); err != nil {
					return err
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
			if sets := *c.Generic("set").(*assignments); len(sets) > 0 {
				if body, err = setFields(body, sets, e.source(c, "set")); err != nil {
					return usageErrorf("send: %v", err)
				}
			}
			_, raw, err := rc.Ingest(c.Context, typ, c.String("id"), body)
			if err != nil {
				return relayFailed("send", err)
			}
			e.printf("%s\n", strings.TrimSpace(string(raw)))
			return nil
		},
	}
}

// readPayload reads the file a flag names (what: "send: --file"), or
// standard input for "-", up to maxSendBody: a file named by mistake (a
// log, a disk image) must not take all the memory before the server
// refuses it.
func readPayload(what, name string, stdin io.Reader) ([]byte, error) {
	r, src := stdin, what+" -: standard input"
	if name != "-" {
		f, err := os.Open(name)
		if err != nil {
			return nil, usageErrorf("%s: %v", what, err)
		}
		defer f.Close()
		r, src = f, what+" "+name
	}
	body, err := io.ReadAll(io.LimitReader(r, maxSendBody+1))
	if err != nil && name == "-" {
		return nil, fmt.Errorf("%s: read: %w", src, err)
	}
	if err != nil {
		// A directory, most often: a mistake in the command.
		return nil, usageErrorf("%s: %v", what, err)
	}
	if len(body) > maxSendBody {
		return nil, usageErrorf("%s is over %d bytes", src, maxSendBody)
	}
	return body, nil
}

// assignments are the values of --set, each kept whole: a StringSlice
// would split "lines:=[1,2]" at its comma.
type assignments []string

func (a *assignments) Set(s string) error { *a = append(*a, s); return nil }
func (a *assignments) String() string     { return strings.Join(*a, " ") }

// setFields applies --set assignments to a JSON object: PATH=TEXT sets a
// string, PATH:=JSON any JSON value; a dotted PATH reaches into nested
// objects, making the missing ones. The object is written back with its
// keys sorted; numbers keep their digits (json.Number), so a 64-bit id
// survives.
func setFields(body []byte, sets []string, flag string) ([]byte, error) {
	var doc map[string]any
	if err := decodeJSON(body, &doc); err != nil || doc == nil {
		return nil, fmt.Errorf("%s needs a payload that is a JSON object", flag)
	}
	for _, s := range sets {
		path, value, err := parseSet(flag, s)
		if err != nil {
			return nil, err
		}
		keys := strings.Split(path, ".")
		obj := doc
		for i, k := range keys[:len(keys)-1] {
			next, ok := obj[k]
			if !ok || next == nil {
				m := map[string]any{}
				obj[k], obj = m, m
				continue
			}
			m, ok := next.(map[string]any)
			if !ok {
				return nil, fmt.Errorf("--set %s: %s is not an object", s, strings.Join(keys[:i+1], "."))
			}
			obj = m
		}
		obj[keys[len(keys)-1]] = value
	}
	// Without HTML escaping: --set 'note=<b>&' arrives as typed, not as
	// \u003cb\u003e\u0026.
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(doc); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

// parseSet reads one --set assignment; flag names where it came from (the
// flag, or its variable) in an error.
func parseSet(flag, s string) (path string, value any, err error) {
	// JSON would turn invalid bytes into U+FFFD without a word.
	if !utf8.ValidString(s) {
		return "", nil, fmt.Errorf("%s %q: not valid UTF-8", flag, s)
	}
	i := strings.IndexByte(s, '=')
	if i <= 0 {
		return "", nil, fmt.Errorf("%s %q: want PATH=TEXT or PATH:=JSON", flag, s)
	}
	path, raw := s[:i], s[i+1:]
	isJSON := strings.HasSuffix(path, ":")
	path = strings.TrimSuffix(path, ":")
	for _, k := range strings.Split(path, ".") {
		if k == "" {
			return "", nil, fmt.Errorf("%s %q: empty field name in %q", flag, s, path)
		}
	}
	if !isJSON {
		return path, raw, nil
	}
	if err := decodeJSON([]byte(raw), &value); err != nil {
		return "", nil, fmt.Errorf("%s %q: %q is not JSON (use %s=TEXT for a string)", flag, s, raw, path)
	}
	return path, value, nil
}

// decodeJSON is json.Unmarshal with numbers kept as written.
func decodeJSON(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return errors.New("more than one JSON value")
	}
	return nil
}
