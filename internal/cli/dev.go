package cli

import (
	"bytes"
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/rs/zerolog"
	"github.com/urfave/cli/v2"

	"github.com/sidehook/sidehook/fixtures"
	"github.com/sidehook/sidehook/internal/auth"
	"github.com/sidehook/sidehook/internal/event"
	"github.com/sidehook/sidehook/internal/httpguard"
	"github.com/sidehook/sidehook/internal/httpjson"
	"github.com/sidehook/sidehook/internal/target"
	"github.com/sidehook/sidehook/receiver"
	"github.com/sidehook/sidehook/relay"
	"github.com/sidehook/sidehook/relay/badgerstore"
	"github.com/sidehook/sidehook/relay/config"
	"github.com/sidehook/sidehook/relay/tunnel"
)

// devConfig is the relay configuration `sidehook dev` runs on.
//
//go:embed dev.yaml
var devConfig string

// The dev configuration's demo credentials, which the receiver checks and
// dev prints.
const (
	devOrg            = "demo"
	devAPIKey         = "sk_dev_sidehook_demo_key"
	devSecretKey      = "dev-secret-key-for-sidehook-demo-0001"
	devStandardSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
)

func devCommand(e *env) *cli.Command {
	return &cli.Command{
		Name:  "dev",
		Usage: "run a relay and a mock receiver wired together and send the five events",
		Description: "Starts a relay and a mock receiver on an embedded configuration: the receiver checks\n" +
			"every scheme the relay signs with (webio-token, ES256 jwt through the relay's JWKS,\n" +
			"Standard Webhooks), and re-signs its replays with the same secrets and the relay's key pair.\n" +
			"Sends one event of each of the five kinds, shows how each arrived,\n" +
			"then prints the dashboards, the API key and the secrets, and runs until stopped\n" +
			"(SIGINT, SIGTERM or SIGHUP: Ctrl-C, a service manager, or its terminal closing).\n" +
			"With --json, all of that is one JSON object on one line of standard output.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "relay-listen", Value: "127.0.0.1:8080", Usage: "the relay's address"},
			&cli.StringFlag{Name: "receiver-listen", Value: "127.0.0.1:8081", Usage: "the receiver's address"},
			&cli.StringFlag{Name: "data", Value: "./.sidehook/dev", Usage: "data `DIR` (relay/ and receiver/ under it)"},
			&cli.BoolFlag{Name: "in-memory", Usage: "keep nothing on disk"},
			&cli.BoolFlag{Name: "no-send", Usage: "do not send the five demo events"},
			&cli.BoolFlag{Name: "json", Usage: "print the URLs, keys, secrets and what was sent as one JSON object"},
			&cli.StringSliceFlag{Name: "allow-host", Usage: "a Host `NAME` the dashboards and admin APIs answer, besides localhost, 127.0.0.1 and [::1] (repeatable)"},
			&cli.StringSliceFlag{Name: "allow-target", Usage: "a `CIDR|host` endpoints and replays may reach although denied by default (repeatable)"},
			&cli.StringFlag{Name: "admin-token", Usage: "Bearer token for the receiver's /_sidehook/ and, beyond loopback, the whole relay's dashboard and /metrics (>= 16 bytes; required when --receiver-listen is beyond loopback)"},
		},
		Action: func(c *cli.Context) error {
			for _, name := range []string{"relay-listen", "receiver-listen"} {
				if err := checkListen("dev: "+e.source(c, name), c.String(name)); err != nil {
					return err
				}
			}
			// One address for both would bind the receiver, then fail the
			// relay as "already in use", by dev itself. Port 0 is a free
			// port for each.
			if a := c.String("relay-listen"); a == c.String("receiver-listen") && !strings.HasSuffix(a, ":0") {
				return usageErrorf("dev: %s and %s are both %s: give them different ports", e.source(c, "relay-listen"), e.source(c, "receiver-listen"), a)
			}
			for _, r := range c.StringSlice("allow-target") {
				if _, err := target.ParseRule(r); err != nil {
					return usageErrorf("dev: --allow-target: %v", err)
				}
			}
			adminToken, err := devAdminToken(c, e)
			if err != nil {
				return err
			}
			if err := inMemoryWithData(c, e, "dev"); err != nil {
				return err
			}
			if !c.Bool("in-memory") {
				if err := checkDataDir("dev", c.String("data"), dataSource(c, e, "", "", "")); err != nil {
					return err
				}
			}
			log, err := e.serverSetup(c)
			if err != nil {
				return err
			}
			d := &devRun{
				allowHosts:   c.StringSlice("allow-host"),
				allowTargets: c.StringSlice("allow-target"),
				adminToken:   adminToken,
				env:          e,
				log:          log,
				relayListen:  c.String("relay-listen"),
				recvListen:   c.String("receiver-listen"),
				data:         c.String("data"),
				inMemory:     c.Bool("in-memory"),
				send:         !c.Bool("no-send"),
				json:         c.Bool("json"),
				fixtures:     fixtures.Default(),
				eventTimeout: 10 * time.Second,
			}
			return d.run(c.Context)
		},
	}
}

type devRun struct {
	env          *env
	log          zerolog.Logger
	relayListen  string
	recvListen   string
	data         string
	inMemory     bool
	send         bool
	json         bool
	fixtures     *fixtures.Set
	eventTimeout time.Duration
	allowHosts   []string
	allowTargets []string
	// adminToken guards the receiver's admin API (on loopback too) and
	// opens the whole relay beyond loopback, as in receive and relay.
	adminToken string
}

// devAdminToken checks --admin-token before dev opens or binds anything:
// the receiver refuses to listen beyond loopback without one.
func devAdminToken(c *cli.Context, e *env) (string, error) {
	tok, err := adminTokenFlag(c, e, "dev")
	if err != nil {
		return "", err
	}
	if tok == "" && !httpjson.IsLoopback(c.String("receiver-listen")) {
		return "", usageErrorf("dev: %s %q is beyond loopback, where the receiver's admin API needs a token: give %s, at least %d bytes",
			e.source(c, "receiver-listen"), c.String("receiver-listen"), listenFlagHint("dev", "admin-token"), httpguard.MinAdminTokenLen)
	}
	return tok, nil
}

func (d *devRun) run(ctx context.Context) error {
	// The receiver needs the relay's JWKS URL and the relay needs the
	// receiver's URL: fix the relay's port first so both are known.
	relayAddr, err := resolvePort(d.relayListen)
	if err != nil {
		return busyPort(fmt.Errorf("dev: --relay-listen: %w", err), "dev", d.relayListen, listenFlagHint("dev", "relay-listen"))
	}
	relayURL := "http://" + relayAddr
	standard, err := auth.ParseStandardSecret(devStandardSecret)
	if err != nil {
		return fmt.Errorf("dev: embedded standard secret: %w", err)
	}

	// The relay's store is opened first: it holds the relay's signing key,
	// which the receiver needs to re-sign replays of what the relay
	// signed. The store does not depend on the receiver's URL, not known
	// until the receiver listens; the configuration is read again then.
	relayData := filepath.Join(d.data, "relay")
	storeCfg, err := devRelayConfig(relayAddr, relayData, "http://127.0.0.1")
	if err != nil {
		return err
	}
	storeCfg.InMemory = d.inMemory
	st, err := openRelayStore(ctx, storeCfg, d.log, false)
	if errors.Is(err, badgerstore.ErrLocked) {
		return fmt.Errorf("dev: %s is in use by another dev: stop it, or give this one another data directory with %s, or --in-memory",
			d.data, listenFlagHint("dev", "data"))
	}
	if err != nil {
		return fmt.Errorf("dev: %w", err)
	}
	defer st.Close()
	replayKey, err := devReplayKey(ctx, st, storeCfg)
	if err != nil {
		return err
	}

	captures, err := openCaptures(filepath.Join(d.data, "receiver"), d.inMemory, 0, d.log)
	if err != nil {
		return fmt.Errorf("dev: receiver: %w", err)
	}
	defer captures.Close()
	recv, err := receiver.New(receiver.Config{
		Listen: d.recvListen,
		Store:  captures,
		Verify: auth.VerifyConfig{
			WebioSecret:     []byte(devSecretKey),
			Org:             devOrg,
			JWKS:            auth.NewJWKSFetcher(relayURL+"/.well-known/jwks.json", nil, auth.JWKSOptions{}),
			Issuer:          "sidehook",
			RequireSHA256:   true,
			StandardSecrets: [][]byte{standard},
		},
		// Its replays are re-signed as the relay signs: the webio token
		// and Standard Webhooks with the secrets above, the JWT with the
		// relay's own key pair (same kid, so its JWKS still verifies).
		ReplayKey:  replayKey,
		AllowHosts: d.allowHosts,
		AdminToken: d.adminToken,
		Logger:     d.log,
		Version:    d.env.build.Version,
	})
	if err != nil {
		// The embedded part is fixed; what New refuses came from a flag.
		return usageErrorf("dev: %v", err)
	}
	if err := recv.Start(ctx); err != nil {
		return busyPort(err, "dev", d.recvListen, listenFlagHint("dev", "receiver-listen"))
	}
	defer closeWithin(recv.Close)

	cfg, err := devRelayConfig(relayAddr, relayData, recv.URL())
	if err != nil {
		return err
	}
	cfg.InMemory = d.inMemory
	cfg.AllowTargets = append(cfg.AllowTargets, d.allowTargets...)
	cfg.AdminToken = d.adminToken
	// dev serves tunnels too: `sidehook tunnel` can join it with the API key.
	tunnels := tunnel.NewServer(tunnel.ServerOptions{Logger: d.log, MaxBody: cfg.Limits.MaxBody})
	defer closeWithin(tunnels.Close)
	rel, err := relay.New(cfg, relay.Options{Store: st, Tunnels: tunnels, Logger: d.log, Version: d.env.build.Version, AllowHosts: d.allowHosts})
	if err != nil {
		return usageErrorf("dev: %v", err)
	}
	if err := rel.Start(ctx); err != nil {
		return busyPort(err, "dev", relayAddr, listenFlagHint("dev", "relay-listen"))
	}
	defer closeWithin(rel.Close)

	var sent []devSent
	if d.send {
		if sent, err = d.sendAll(ctx, rel.URL(), recv); err != nil {
			return err
		}
	}
	if d.json {
		if err := d.printJSON(rel.URL(), recv.URL(), sent); err != nil {
			return err
		}
	} else {
		d.printInfo(rel.URL(), recv.URL())
	}
	<-ctx.Done()
	logStopping(ctx, d.log, 0)
	return nil
}

// devReplayKey is the key pair the relay signs its organisation's JWTs
// with (stored first if the relay has none yet), which the receiver signs
// replayed JWTs with; nil when the organisation's JWTs are HS256.
func devReplayKey(ctx context.Context, st relay.Store, cfg *config.Config) (*auth.SigningKey, error) {
	for _, o := range cfg.Organisations {
		if !o.JWTAlgorithm.Asymmetric() {
			continue
		}
		key, err := relay.StoredKey(ctx, st, o.JWTAlgorithm)
		if err != nil {
			return nil, fmt.Errorf("dev: the relay's %s key: %w", o.JWTAlgorithm, err)
		}
		return key, nil
	}
	return nil, nil
}

// devSent is how one demo event arrived at the receiver.
type devSent struct {
	Event   string `json:"event"`
	ID      string `json:"id,omitempty"`
	Arrived bool   `json:"arrived"`
	Method  string `json:"method,omitempty"`
	Path    string `json:"path,omitempty"`
	Status  int    `json:"status,omitempty"`
	Verdict string `json:"verdict,omitempty"`
	Scheme  string `json:"scheme,omitempty"`
	Reason  string `json:"reason,omitempty"`
}

// sendAll sends one event of each kind through the relay and reports how
// each arrived at the receiver (printed as it goes, without --json).
func (d *devRun) sendAll(ctx context.Context, relayURL string, recv *receiver.Server) ([]devSent, error) {
	out := d.env.stdout
	if d.json {
		out = io.Discard
	}
	fmt.Fprintf(out, "Sending one event of each kind through the relay (%s) to the receiver (%s):\n", relayURL, recv.URL())
	client := d.env.ownClient(&http.Client{Timeout: d.eventTimeout})
	var all []devSent
	for _, t := range d.fixtures.Types() {
		// A receiver on a kept data dir still holds earlier runs'
		// captures: wait for this one by its webhook-id, or its time.
		sent := time.Now().Add(-time.Millisecond)
		id, err := d.sendOne(ctx, client, relayURL, t)
		if err != nil {
			return nil, fmt.Errorf("dev: send %s: %w", t, err)
		}
		wctx, cancel := context.WithTimeout(ctx, d.eventTimeout)
		caps, err := recv.Wait(wctx, receiver.Filter{Event: string(t), WebhookID: id, Since: sent}, 1)
		cancel()
		if err != nil || len(caps) == 0 {
			all = append(all, devSent{Event: string(t), ID: id})
			fmt.Fprintf(out, "  %-22s %s  NOT ARRIVED within %s\n", t, id, d.eventTimeout)
			continue
		}
		cp := caps[len(caps)-1]
		all = append(all, devSent{
			Event: string(t), ID: id, Arrived: true, Method: cp.Method, Path: cp.Path, Status: cp.Response.Status,
			Verdict: cp.Verdict.Status, Scheme: cp.Verdict.Scheme, Reason: cp.Verdict.Reason,
		})
		verdict := cp.Verdict.Status
		if cp.Verdict.Scheme != "" {
			verdict += " (" + cp.Verdict.Scheme + ")"
		}
		if cp.Verdict.Reason != "" {
			verdict += ": " + cp.Verdict.Reason
		}
		fmt.Fprintf(out, "  %-22s %-4s %-16s -> %d  %s\n", t, cp.Method, cp.Path, cp.Response.Status, verdict)
	}
	return all, nil
}

func (d *devRun) sendOne(ctx context.Context, client *http.Client, relayURL string, t event.Type) (string, error) {
	var req *http.Request
	var err error
	if t == event.CustomValueRequest {
		// As the platform asks: a GET on the organisation's public URL,
		// proxied synchronously to its custom-value endpoint.
		req, err = http.NewRequestWithContext(ctx, http.MethodGet, relayURL+"/in/"+devOrg+"?"+d.fixtures.Query(), nil)
	} else {
		body, _ := d.fixtures.Payload(t)
		req, err = http.NewRequestWithContext(ctx, http.MethodPost, relayURL+"/v1/events", bytes.NewReader(body))
		if err == nil {
			req.Header.Set("Authorization", "Bearer "+devAPIKey)
			req.Header.Set("Content-Type", "application/json")
		}
	}
	if err != nil {
		return "", err
	}
	resp, err := client.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode >= 300 {
		return "", fmt.Errorf("relay answered %d: %s", resp.StatusCode, bytes.TrimSpace(b))
	}
	var ack struct {
		ID string `json:"id"`
	}
	_ = json.Unmarshal(b, &ack)
	return ack.ID, nil
}

func (d *devRun) printInfo(relayURL, recvURL string) {
	// The token is the user's own secret, not a demo value: name it, never
	// print it.
	adminHeader := ""
	if d.adminToken != "" {
		adminHeader = ` -H 'Authorization: Bearer <admin token>'`
	}
	d.env.printf(`
Relay     %[1]s   dashboard %[1]s/_sidehook/ui/
Receiver  %[2]s   dashboard %[2]s/_sidehook/ui/

Organisation     %[3]s
API key          %[4]s
Secret key       %[5]s   (signs the Webio token and checks it)
Standard secret  %[6]s
JWT              ES256, keys at %[1]s/.well-known/jwks.json

Send an event:
  sidehook send --relay %[1]s --api-key %[4]s --event payment --set amount=12.50
  curl -X POST %[1]s/v1/events -H 'Authorization: Bearer %[4]s' \
    -H 'Content-Type: application/json' -d '{"type":"payment","amount":"50.00","currency":"GBP"}'
See what arrived:
  curl '%[2]s/_sidehook/requests?limit=5'%[7]s

Press Ctrl-C to stop.
`, relayURL, recvURL, devOrg, devAPIKey, devSecretKey, devStandardSecret, adminHeader)
}

// printJSON is --json: everything printInfo says, as one object on one
// line, so a script can read it while dev keeps running.
func (d *devRun) printJSON(relayURL, recvURL string, sent []devSent) error {
	type server struct {
		URL       string `json:"url"`
		Dashboard string `json:"dashboard"`
	}
	if sent == nil {
		sent = []devSent{}
	}
	return json.NewEncoder(d.env.stdout).Encode(struct {
		Relay          server    `json:"relay"`
		Receiver       server    `json:"receiver"`
		Organisation   string    `json:"organisation"`
		APIKey         string    `json:"api_key"`
		SecretKey      string    `json:"secret_key"`
		StandardSecret string    `json:"standard_secret"`
		JWTAlgorithm   string    `json:"jwt_algorithm"`
		JWKSURL        string    `json:"jwks_url"`
		Sent           []devSent `json:"sent"`
	}{
		Relay:          server{relayURL, relayURL + dashboardPath},
		Receiver:       server{recvURL, recvURL + dashboardPath},
		Organisation:   devOrg,
		APIKey:         devAPIKey,
		SecretKey:      devSecretKey,
		StandardSecret: devStandardSecret,
		JWTAlgorithm:   "ES256",
		JWKSURL:        relayURL + "/.well-known/jwks.json",
		Sent:           sent,
	})
}

// dashboardPath is where relay and receiver serve their dashboards.
const dashboardPath = "/_sidehook/ui/"

// resolvePort turns a :0 port into a free one, so the relay's URL is known
// before it starts. A fixed port is returned as given once it is found
// free: one held by another program is an error here, before the
// receiver starts and logs that it is ready, not after.
func resolvePort(addr string) (string, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", err
	}
	defer ln.Close()
	if _, port, _ := net.SplitHostPort(addr); port != "0" {
		return addr, nil
	}
	return ln.Addr().String(), nil
}

// devRelayConfig is the embedded configuration with the relay's address,
// its data directory and the receiver's URL filled in.
func devRelayConfig(listen, data, receiverURL string) (*config.Config, error) {
	cfg, err := config.Parse([]byte(strings.NewReplacer(
		"${RELAY_LISTEN}", yamlQuoted(listen),
		"${RELAY_DATA}", yamlQuoted(data),
		"${RECEIVER_URL}", yamlQuoted(receiverURL),
	).Replace(devConfig)), func(string) string { return "" })
	if err != nil {
		return nil, fmt.Errorf("dev: embedded configuration: %w", err)
	}
	return cfg, nil
}

// yamlQuoted escapes s for a YAML double-quoted scalar: Go's escapes
// (\\, \", \n, \xNN, \uNNNN…) are YAML's too.
func yamlQuoted(s string) string {
	q := strconv.Quote(s)
	return q[1 : len(q)-1]
}
