package cli

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"github.com/dustin/go-humanize/english"
	"github.com/mattn/go-isatty"
	"github.com/schollz/progressbar/v3"
	"github.com/urfave/cli/v2"
	"golang.org/x/time/rate"

	"github.com/sidehook/sidehook/internal/auth"
	"github.com/sidehook/sidehook/internal/event"
	"github.com/sidehook/sidehook/internal/units"
	"github.com/sidehook/sidehook/receiver/receiverapi"
	"github.com/sidehook/sidehook/relay/relayapi"
	"github.com/sidehook/sidehook/relay/tunnel"
	"github.com/sidehook/sidehook/replay"
)

func replayCommand(e *env) *cli.Command {
	secretKey := &cli.StringFlag{Name: "secret-key", Usage: "sign with a Webio token minted from the organisation's secret key (needs --org)"}
	return &cli.Command{
		Name:      "replay",
		Usage:     "resend captured requests or stored deliveries, re-signed, with the bytes kept",
		UsageText: "sidehook replay (--receiver URL | --relay URL --api-key K | --file captures.ndjson) [selection] [--to URL] [keys]",
		Description: "Selects requests from a mock receiver's admin API (--receiver) or a receiver's NDJSON export\n" +
			"(--file), then resends each: same method, path, headers and body bytes (unless --body or --edit),\n" +
			"the original webhook-id, a fresh webhook-timestamp, sidehook-replay-of naming the original, and\n" +
			"fresh authentication from the keys given. The original's own auth headers are never resent.\n" +
			"With --relay, the relay replays its stored deliveries itself (POST /v1/replay), signed as each\n" +
			"endpoint signs, with sidehook-replay-of naming the delivery: --api-key is the only secret needed.\n" +
			"Each is sent once to --to, or without it to its original target: its endpoint's URL, or the\n" +
			"tunnel to a connected `sidehook tunnel`, signed afresh. A replay is not a retry: the deliveries\n" +
			"keep their state and attempts. Custom-value requests are never replayed.\n" +
			"A request that cannot be replayed is reported and the rest go on (--fail-fast: stop at the first).\n" +
			"Exit 0 when every replay got a 2xx, 1 when one did not, 2 on a usage error.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "receiver", Usage: "replay captures of the mock receiver at this `URL`"},
			&cli.StringFlag{Name: "admin-token", Usage: "the receiver's admin token"},
			&cli.StringFlag{Name: "relay", Usage: "replay deliveries of the relay at this `URL`"},
			&cli.StringFlag{Name: "api-key", Usage: "with --relay: an API key of the organisation"},
			&cli.StringFlag{Name: "file", Usage: "replay captures from this NDJSON export `FILE` (GET /_sidehook/requests/export)"},

			&cli.StringSliceFlag{Name: "id", Usage: "a capture, delivery or event `ID` to replay (repeatable)"},
			&cli.StringFlag{Name: "event", Usage: "only this event type"},
			&cli.StringFlag{Name: "since", Usage: "only requests at or after this `TIME` (RFC 3339, or a duration ago: 15m)"},
			&cli.StringFlag{Name: "until", Usage: "only requests at or before this `TIME` (RFC 3339, or a duration ago)"},
			&cli.StringFlag{Name: "status", Usage: "with --relay: only deliveries in this status (pending, delivering, delivered, failed, dead)"},
			&cli.StringFlag{Name: "endpoint", Usage: "with --relay: only deliveries to this endpoint `ID`"},
			&cli.StringFlag{Name: "verdict", Usage: "captures only: only this verdict (valid, invalid, unverified)"},
			&cli.BoolFlag{Name: "all", Usage: "replay everything the source has (required to select with no id or filter)"},
			&cli.IntFlag{Name: "max", Value: replay.DefaultMax, Usage: "refuse a selection of more than `N` requests"},

			&cli.StringFlag{Name: "to", Usage: "send to this `URL` instead of the original target (a URL without a path keeps the original path)"},
			&cli.StringFlag{Name: "body", Usage: "send the bytes of this `FILE` instead of the original body"},
			&cli.BoolFlag{Name: "edit", Usage: "edit the body in $EDITOR before sending (one request, on a terminal)"},
			&cli.StringFlag{Name: "rate", Usage: "send at most this many a second (e.g. 10/s, 100/m)"},
			&cli.DurationFlag{Name: "timeout", Value: 30 * time.Second, Usage: "how long to wait for each API call and each replay (a relay replaying N deliveries in one call: N times this)"},
			&cli.BoolFlag{Name: "dry-run", Usage: "print what would be sent and send nothing"},
			&cli.BoolFlag{Name: "fail-fast", Usage: "stop at the first request that cannot be replayed or fails, instead of reporting it and going on"},
			&cli.BoolFlag{Name: "json", Usage: "print the results as JSON"},

			secretKey,
			oldName("webio-secret", "secret-key", secretKey),
			&cli.StringFlag{Name: "org", Usage: "the organisation id: the webio token's org claim, the jwt's sub"},
			&cli.StringFlag{Name: "jwt-secret", Usage: "sign a per-request Bearer JWT, HS256 with this secret"},
			&cli.StringFlag{Name: "jwt-key", Usage: "sign a per-request Bearer JWT with this PEM private key `FILE` (RS256, ES256 or EdDSA)"},
			&cli.StringSliceFlag{Name: "standard-secret", Usage: "sign Standard Webhooks signatures with this whsec_ secret (repeatable)"},
			&cli.StringSliceFlag{Name: "sign", Usage: "the schemes to sign with: webio-token, jwt, standard (default: every scheme a key was given for)"},
			&cli.StringFlag{Name: "issuer", Usage: "the iss of the tokens (default sidehook)"},
			&cli.StringFlag{Name: "audience", Usage: "the aud of the jwt"},
		},
		Action: func(c *cli.Context) error { return runReplay(c, e) },
	}
}

// replayConfig is the replay command's flags, checked.
type replayConfig struct {
	src      replay.Source
	relay    *relayReplay // set for --relay: the relay replays, the CLI asks
	sel      replay.Selection
	opts     replay.Options
	limiter  *rate.Limiter
	edit     bool
	dryRun   bool
	json     bool
	failFast bool
}

func runReplay(c *cli.Context, e *env) error {
	cfg, err := replayFlags(c, e)
	if err != nil {
		return err
	}
	if cfg.relay != nil {
		return runRelayReplay(c.Context, e, cfg)
	}
	ctx := c.Context
	items, err := cfg.src.Select(ctx, cfg.sel)
	if err != nil {
		return selectError(notRunning(receiverErr(c, e, err), "receiver", "receive"))
	}
	if len(items) == 0 {
		return nothingMatched(e, cfg)
	}
	if cfg.edit {
		if len(items) != 1 {
			return usageErrorf("replay: --edit edits one request's body; the selection has %d (name one with --id)", len(items))
		}
		body := items[0].Body
		if items[0].BodyMissing {
			body = nil
		}
		edited, err := editBody(ctx, editorOf(e), body, e.stdin, e.stdout, e.stderr)
		if err != nil {
			return fmt.Errorf("replay: %w", err)
		}
		cfg.opts.Body = edited
	}

	b := &replay.Batch{Options: cfg.opts, Limiter: cfg.limiter, FailFast: cfg.failFast}
	checkErr := b.Check(items)
	if checkErr != nil && cfg.failFast {
		return usageErrorf("replay: %v%s; nothing sent", checkErr, fixHint(checkErr))
	}
	if len(cfg.opts.Schemes) == 0 && !cfg.json {
		fmt.Fprintln(e.stderr, "replay: no keys given: requests go without authentication (see --secret-key, --jwt-secret, --standard-secret)")
	}
	if cfg.dryRun {
		return printDryRun(ctx, e, items, cfg)
	}
	bar := progress(e, len(items))
	b.OnResult = func(int, int, replay.Result) { bar.add() }
	results, runErr := b.Run(ctx, items)
	bar.finish()
	outcomes := make([]replayOutcome, len(results))
	for i, r := range results {
		outcomes[i] = replayOutcome{Result: r, Ok: r.OK()}
	}
	if err := reportReplay(e, cfg, outcomes, len(items), runErr); err != nil {
		return err
	}
	if checkErr != nil {
		fmt.Fprintf(e.stderr, "replay: %v%s\n", checkErr, fixHint(checkErr))
	}
	return replayExit(outcomes, len(items), runErr)
}

// runRelayReplay asks the relay to replay its own deliveries.
func runRelayReplay(ctx context.Context, e *env, cfg *replayConfig) error {
	r := cfg.relay
	// The table shows where each replay goes, the endpoints' URLs
	// without --to, before the relay says (a dry run, a delivery skipped).
	// Read first, every relay answers it: a server that does not is no
	// relay, and its 404 no unknown id.
	if err := r.readEndpointURLs(ctx); err != nil {
		return selectError(fmt.Errorf("replay: read the endpoints: %w", notRunning(r.notRelay(err), "relay", "relay")))
	}
	sel, err := r.selectDeliveries(ctx)
	if err != nil {
		return selectError(notRunning(relayErr(err), "relay", "relay"))
	}
	if len(sel) == 0 {
		return nothingMatched(e, cfg)
	}
	if cfg.dryRun {
		return printRelayDryRun(e.stdout, r, sel, cfg.json)
	}
	bar := progress(e, len(sel))
	outcomes, runErr := r.run(ctx, sel, cfg.limiter, cfg.failFast, bar.add)
	bar.finish()
	if runErr != nil && outcomes == nil && ctx.Err() == nil {
		return fmt.Errorf("replay: %v", relayErr(runErr))
	}
	if err := reportReplay(e, cfg, outcomes, len(sel), runErr); err != nil {
		return err
	}
	return replayExit(outcomes, len(sel), runErr)
}

// receiverErr words a receiver's 401 for the command line: its own
// reason tells an HTTP client to send an Authorization header.
func receiverErr(c *cli.Context, e *env, err error) error {
	var ae *receiverapi.Error
	if !errors.As(err, &ae) || ae.Status != http.StatusUnauthorized {
		return err
	}
	if c.String("admin-token") == "" {
		return fmt.Errorf("replay: the receiver's admin API needs its admin token: give %s", listenFlagHint("replay", "admin-token"))
	}
	return fmt.Errorf("replay: the receiver refused %s: %s", e.source(c, "admin-token"), ae.Reason)
}

// selectError is the error of a selection that failed. An interrupted one
// is a failure, not a clean stop, so it is not wrapped: ExitCode takes a
// wrapped context.Canceled for a clean stop (exit 0).
func selectError(err error) error {
	if errors.Is(err, context.Canceled) {
		return errors.New("replay: interrupted while selecting what to replay; nothing sent")
	}
	var tooMany *replay.TooManyError
	if errors.As(err, &tooMany) {
		return fmt.Errorf("replay: the selection matches more than %d requests: narrow it or raise --max", tooMany.Max)
	}
	// The receiver exports HAR and curl too; only one of its formats is
	// a replay's input.
	var lineErr *replay.LineError
	if errors.As(err, &lineErr) {
		return fmt.Errorf("%w; --file takes the receiver's NDJSON export (GET /_sidehook/requests/export?format=ndjson)", err)
	}
	// The replay package's own errors already begin so.
	if strings.HasPrefix(err.Error(), "replay: ") {
		return err
	}
	return fmt.Errorf("replay: %w", err)
}

func nothingMatched(e *env, cfg *replayConfig) error {
	fmt.Fprintln(e.stderr, "replay: nothing matched the selection; nothing sent")
	if cfg.json {
		return writeReplayJSON(e.stdout, replayReport{Results: []replayOutcome{}, DryRun: cfg.dryRun})
	}
	return nil
}

// fixHint names the flags that would let the items of a *CheckError be
// replayed, each once.
func fixHint(err error) string {
	var ce *replay.CheckError
	if !errors.As(err, &ce) {
		return ""
	}
	var hints []string
	seen := map[string]bool{}
	for _, it := range ce.Items {
		var nr *replay.NotReplayableError
		if !errors.As(it.Err, &nr) {
			continue
		}
		h := map[replay.Need]string{
			replay.NeedTarget:    "give --to URL",
			replay.NeedBody:      "give --body FILE",
			replay.NeedWebhookID: "leave " + nr.Scheme + " out of --sign",
			replay.NeedScheme:    "fix --sign",
		}[nr.Need]
		if nr.Need == replay.NeedKey {
			h = "give " + map[string]string{
				auth.SchemeWebioToken: "--secret-key and --org",
				auth.SchemeJWT:        "--jwt-secret or --jwt-key",
				auth.SchemeStandard:   "--standard-secret",
			}[nr.Scheme]
		}
		if h != "" && !seen[h] {
			seen[h] = true
			hints = append(hints, h)
		}
	}
	if len(hints) == 0 {
		return ""
	}
	return " (" + strings.Join(hints, "; ") + ")"
}

// reportReplay prints the outcomes as a table or as JSON.
func reportReplay(e *env, cfg *replayConfig, outcomes []replayOutcome, total int, runErr error) error {
	report := replayReport{Results: outcomes, Total: total, Interrupted: runErr != nil}
	if report.Results == nil {
		report.Results = []replayOutcome{}
	}
	for _, o := range outcomes {
		switch {
		case o.Skipped != "":
			report.Skipped++
		case o.Ok:
			report.OK++
		default:
			report.Failed++
		}
	}
	if cfg.json {
		return writeReplayJSON(e.stdout, report)
	}
	writeReplayTable(e.stdout, report)
	return nil
}

// replayExit is the command's error: nil when every replay succeeded.
func replayExit(outcomes []replayOutcome, total int, runErr error) error {
	failed := 0
	for _, o := range outcomes {
		if !o.Ok && o.Skipped == "" {
			failed++
		}
	}
	switch {
	case errors.Is(runErr, replay.ErrStopped):
		return fmt.Errorf("replay: stopped at the first failure (--fail-fast) after %d of %d", len(outcomes), total)
	case runErr != nil:
		// Not wrapped: an interrupted replay is a failure, and ExitCode
		// would take a wrapped context.Canceled for a clean stop.
		return fmt.Errorf("replay: stopped after %d of %d (%d failed): %v", len(outcomes), total, failed, runErr)
	case failed > 0:
		return fmt.Errorf("replay: %d of %d failed", failed, total)
	}
	return nil
}

// bar is a progress bar on a terminal, nothing elsewhere.
type bar struct{ pb *progressbar.ProgressBar }

func progress(e *env, n int) *bar {
	if !isTerminal(e.stderr) {
		return &bar{}
	}
	return &bar{pb: progressbar.NewOptions(n,
		progressbar.OptionSetWriter(e.stderr),
		progressbar.OptionSetDescription("replaying"),
		progressbar.OptionShowCount(),
		progressbar.OptionSetPredictTime(true),
		progressbar.OptionThrottle(65*time.Millisecond),
		progressbar.OptionClearOnFinish(),
	)}
}

func (b *bar) add() {
	if b.pb != nil {
		b.pb.Add(1)
	}
}

func (b *bar) finish() {
	if b.pb != nil {
		b.pb.Finish()
	}
}

// replayFlags reads and checks every flag; each mistake is a usage error
// found before anything is selected or sent.
func replayFlags(c *cli.Context, e *env) (*replayConfig, error) {
	cfg := &replayConfig{edit: c.Bool("edit"), dryRun: c.Bool("dry-run"), json: c.Bool("json"), failFast: c.Bool("fail-fast")}
	timeout := c.Duration("timeout")
	if timeout <= 0 {
		return nil, usageErrorf("replay: %s must be positive", e.source(c, "timeout"))
	}
	apiClient := e.ownClient(&http.Client{Timeout: timeout})

	source, err := replaySource(c, e)
	if err != nil {
		return nil, err
	}
	switch source {
	case "receiver":
		if err := checkHTTPURL(c.String("receiver")); err != nil {
			return nil, usageErrorf("replay: %s %q: %v", e.source(c, "receiver"), c.String("receiver"), err)
		}
		api, err := receiverapi.New(c.String("receiver"), c.String("admin-token"), apiClient)
		if err != nil {
			return nil, usageErrorf("replay: %s: %v", e.source(c, "receiver"), err)
		}
		cfg.src = &receiverapi.Source{Client: api}
	case "relay":
		if err := checkHTTPURL(c.String("relay")); err != nil {
			return nil, usageErrorf("replay: %s %q: %v", e.source(c, "relay"), c.String("relay"), err)
		}
		if c.String("api-key") == "" {
			return nil, usageErrorf("replay: --relay needs --api-key")
		}
		api, err := relayapi.New(c.String("relay"), c.String("api-key"), apiClient)
		if err != nil {
			return nil, usageErrorf("replay: %s: %v", e.source(c, "relay"), err)
		}
		bulk, err := relayapi.New(c.String("relay"), c.String("api-key"), e.ownClient(&http.Client{}))
		if err != nil {
			return nil, usageErrorf("replay: %s: %v", e.source(c, "relay"), err)
		}
		base := c.String("relay")
		if u, err := url.Parse(base); err == nil {
			base = u.Redacted() // as the tunnel names it: no password in a message
		}
		cfg.relay = &relayReplay{base: base, api: api, bulk: bulk, timeout: timeout, to: c.String("to"), all: c.Bool("all")}
	default:
		// The file first: a missing one is the mistake to hear about.
		fi, err := os.Stat(c.String("file"))
		if err != nil {
			return nil, usageErrorf("replay: --file: %v", err)
		}
		if fi.IsDir() {
			return nil, usageErrorf("replay: --file %s is a directory: give an NDJSON export file (GET /_sidehook/requests/export)", c.String("file"))
		}
		if c.String("to") == "" {
			return nil, usageErrorf("replay: an export file has no receiver URL: give --to")
		}
		cfg.src = &replay.FileSource{Path: c.String("file")}
	}

	sel, err := replaySelection(c, e, source)
	if err != nil {
		return nil, err
	}
	cfg.sel = sel
	if cfg.relay != nil {
		cfg.relay.filter = relayapi.Filter{IDs: replay.UniqueIDs(sel.IDs), Status: sel.Status, Endpoint: c.String("endpoint"),
			Type: sel.Event, Since: sel.Since, Until: sel.Until}
		cfg.relay.max = sel.Max
		// The relay signs and sends: what the CLI would sign with or
		// send instead has no place there. Keys from the shared variables
		// (set for other commands) are left alone.
		for _, name := range []string{"secret-key", "webio-secret", "org", "jwt-secret", "jwt-key", "standard-secret", "sign", "issuer", "audience", "body", "edit"} {
			if e.given(c, name) {
				return nil, usageErrorf("replay: --%s does not apply to --relay: the relay replays its deliveries itself, signed as each endpoint signs, with their stored bytes", name)
			}
		}
	} else if c.IsSet("endpoint") {
		return nil, usageErrorf("replay: --endpoint filters relay deliveries (with --relay)")
	}
	// A credential for another source would be ignored, and the request
	// then refused (or sent unauthenticated) without saying why.
	if source != "relay" && e.given(c, "api-key") {
		return nil, usageErrorf("replay: --api-key is for --relay; a receiver's admin API takes --admin-token")
	}
	if source != "receiver" && e.given(c, "admin-token") {
		return nil, usageErrorf("replay: --admin-token is for --receiver")
	}

	cfg.opts = replay.Options{
		To:        c.String("to"),
		UserAgent: e.build.UserAgent(),
		Client:    e.ownClient(replay.NewClient(timeout)),
	}
	if to := cfg.opts.To; to != "" {
		if err := checkHTTPURL(to); err != nil {
			return nil, usageErrorf("replay: %s %q: %v", e.source(c, "to"), to, err)
		}
	}
	// Through a relay, the relay signs: keys in the shared variables are
	// not the CLI's to read, let alone to refuse.
	if cfg.relay == nil {
		if cfg.opts.Schemes, cfg.opts.Keys, err = replayKeys(c, e); err != nil {
			return nil, err
		}
	}

	if c.String("body") != "" && cfg.edit {
		return nil, usageErrorf("replay: give --body or --edit, not both")
	}
	if path := c.String("body"); path != "" {
		if cfg.opts.Body, err = readPayload("replay: --body", path, e.stdin); err != nil {
			return nil, err
		}
	}
	if cfg.edit && !isTerminal(e.stdin) {
		return nil, usageErrorf("replay: --edit needs a terminal on standard input; use --body FILE instead")
	}
	if s := c.String("rate"); s != "" {
		r, err := units.ParseRate(s)
		if err != nil {
			return nil, usageErrorf("replay: %s: %v", e.source(c, "rate"), err)
		}
		// A burst of one paces evenly from the first request.
		cfg.limiter = rate.NewLimiter(rate.Limit(r.PerSecond), 1)
	}
	return cfg, nil
}

// replaySource names the one source to replay from: receiver, relay or
// file. One given on the command line wins over the variables, so
// SIDEHOOK_RELAY_URL, set for send and test, does not stand in the way of
// --receiver.
func replaySource(c *cli.Context, e *env) (string, error) {
	names := []string{"receiver", "relay", "file"}
	pick := func(set func(string) bool) []string {
		var got []string
		for _, name := range names {
			if c.String(name) != "" && set(name) {
				got = append(got, name)
			}
		}
		return got
	}
	given := pick(func(name string) bool { return e.given(c, name) })
	if len(given) == 0 {
		given = pick(func(string) bool { return true })
	}
	if len(given) != 1 {
		return "", usageErrorf("replay: give one source: --receiver URL, --relay URL (with --api-key) or --file FILE")
	}
	return given[0], nil
}

// checkReplayID refuses an --id the source cannot hold: one pasted from
// the tunnel's inspector (fwd_), or from the other source, says where it
// is replayed, rather than "unknown id" after asking the wrong one.
func checkReplayID(source, id string) error {
	if source == "file" {
		return nil
	}
	is := func(prefix string) bool { _, err := event.ParseID(prefix, id); return err == nil }
	switch {
	case is(tunnel.PrefixForward):
		return usageErrorf("replay: --id %s is a request in the tunnel's inspector: replay it there, or give its delivery id (%s…) to replay it from the relay, signed afresh",
			id, event.PrefixDelivery)
	case source == "relay" && is(event.PrefixCapture):
		return usageErrorf("replay: --id %s is a receiver's capture: replay it with --receiver URL", id)
	case source == "receiver" && is(event.PrefixDelivery):
		return usageErrorf("replay: --id %s is a relay's delivery: replay it with --relay URL --api-key K", id)
	case source == "receiver" && !is(event.PrefixCapture):
		return usageErrorf("replay: --id %q: not a capture id (%s followed by 26 characters)", id, event.PrefixCapture)
	case source == "relay" && strings.HasPrefix(id, event.PrefixDelivery) && !is(event.PrefixDelivery):
		// The relay takes a dlv_ id for a delivery's (an event id is
		// any other): a malformed one is no event either.
		return usageErrorf("replay: --id %q: not a delivery id (%s followed by 26 characters)", id, event.PrefixDelivery)
	}
	return nil
}

// replaySelection reads the selection flags.
func replaySelection(c *cli.Context, e *env, source string) (replay.Selection, error) {
	sel := replay.Selection{Event: c.String("event"), Status: c.String("status"), Verdict: c.String("verdict"), Max: c.Int("max")}
	for _, v := range c.StringSlice("id") {
		for _, id := range strings.Split(v, ",") {
			if id = strings.TrimSpace(id); id != "" {
				sel.IDs = append(sel.IDs, id)
			}
		}
	}
	// A receiver names its captures itself; a relay's event ids may be
	// the producers' own webhook-ids, and a file holds what it holds.
	for _, id := range sel.IDs {
		if err := checkReplayID(source, id); err != nil {
			return sel, err
		}
	}
	if sel.Max <= 0 {
		return sel, usageErrorf("replay: %s must be positive", e.source(c, "max"))
	}
	if sel.Event != "" && !event.ValidName(sel.Event) {
		return sel, usageErrorf("replay: %s %q is not an event type name", e.source(c, "event"), sel.Event)
	}
	switch sel.Status {
	case "", "pending", "delivering", "delivered", "failed", "dead":
	default:
		return sel, usageErrorf("replay: %s %q: want pending, delivering, delivered, failed or dead", e.source(c, "status"), sel.Status)
	}
	if sel.Status != "" && source != "relay" {
		return sel, usageErrorf("replay: --status filters relay deliveries; captures have --verdict")
	}
	switch sel.Verdict {
	case "", auth.StatusValid, auth.StatusInvalid, auth.StatusUnverified:
	default:
		return sel, usageErrorf("replay: %s %q: want valid, invalid or unverified", e.source(c, "verdict"), sel.Verdict)
	}
	if sel.Verdict != "" && source == "relay" {
		return sel, usageErrorf("replay: --verdict filters captures; relay deliveries have --status")
	}
	now := time.Now()
	for _, f := range []struct {
		name string
		dst  *time.Time
	}{{"since", &sel.Since}, {"until", &sel.Until}} {
		if s := c.String(f.name); s != "" {
			t, err := units.ParseSince(s, now)
			if err != nil {
				return sel, usageErrorf("replay: %s %v", e.source(c, f.name), err)
			}
			if t.IsZero() {
				// The zero time is how a selection says "no bound", so
				// --until at it would select everything, not nothing.
				return sel, usageErrorf("replay: %s %s: nothing is that old", e.source(c, f.name), s)
			}
			*f.dst = t
		}
	}
	if !sel.Since.IsZero() && !sel.Until.IsZero() && sel.Until.Before(sel.Since) {
		return sel, usageErrorf("replay: --until is before --since")
	}
	filtered := len(sel.IDs) > 0 || sel.Event != "" || sel.Status != "" || sel.Verdict != "" || !sel.Since.IsZero() || !sel.Until.IsZero() ||
		c.String("endpoint") != ""
	if !filtered && !c.Bool("all") && source != "file" {
		return sel, usageErrorf("replay: say what to replay: --id, --event, --since, --until, --status, --endpoint or --verdict (or --all for everything)")
	}
	return sel, nil
}

// replayKeys turns the key flags into signing keys and the schemes to
// sign with: those of --sign, or else every scheme a key was given for.
func replayKeys(c *cli.Context, e *env) ([]string, auth.OutboundKeys, error) {
	keys := auth.OutboundKeys{Issuer: c.String("issuer"), Audience: c.String("audience"), Org: c.String("org")}
	var have []string
	if err := emptySecret(c, e, "no signing", "secret-key", "jwt-secret"); err != nil {
		return nil, keys, err
	}
	if s := c.String("secret-key"); s != "" {
		if keys.Org == "" {
			return nil, keys, usageErrorf("replay: %s needs --org (the token's org claim)", e.source(c, "secret-key"))
		}
		tok, err := auth.MintWebioToken([]byte(s), auth.WebioClaims{Issuer: keys.Issuer, Org: keys.Org})
		if err != nil {
			return nil, keys, usageErrorf("replay: %s: %v", e.source(c, "secret-key"), err)
		}
		keys.WebioToken = tok
		have = append(have, auth.SchemeWebioToken)
	}
	if c.String("jwt-secret") != "" && c.String("jwt-key") != "" {
		return nil, keys, usageErrorf("replay: give --jwt-secret or --jwt-key, not both")
	}
	if s := c.String("jwt-secret"); s != "" {
		k, err := auth.HMACKey([]byte(s))
		if err != nil {
			return nil, keys, usageErrorf("replay: --jwt-secret: %v", err)
		}
		keys.JWT = &k
		have = append(have, auth.SchemeJWT)
	}
	if path := c.String("jwt-key"); path != "" {
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, keys, usageErrorf("replay: --jwt-key: %v", err)
		}
		k, err := auth.ParseKey(data)
		if err != nil {
			return nil, keys, usageErrorf("replay: --jwt-key %s: %v", path, err)
		}
		keys.JWT = &k
		have = append(have, auth.SchemeJWT)
	}
	for _, s := range c.StringSlice("standard-secret") {
		k, err := auth.ParseStandardSecret(s)
		if err != nil {
			return nil, keys, usageErrorf("replay: --standard-secret: %v", err)
		}
		keys.Standard = append(keys.Standard, k)
	}
	if len(keys.Standard) > 0 {
		have = append(have, auth.SchemeStandard)
	}
	asked := c.StringSlice("sign")
	if len(asked) == 0 {
		return have, keys, nil
	}
	var schemes []string
	for _, v := range asked {
		for _, name := range strings.Split(v, ",") {
			scheme, err := auth.ParseScheme(name)
			if err != nil {
				return nil, keys, usageErrorf("replay: --sign: %v", err)
			}
			missing := map[string]string{
				auth.SchemeWebioToken: "--secret-key and --org",
				auth.SchemeJWT:        "--jwt-secret or --jwt-key",
				auth.SchemeStandard:   "--standard-secret",
			}[scheme]
			found := false
			for _, h := range have {
				found = found || h == scheme
			}
			if !found {
				return nil, keys, usageErrorf("replay: --sign %s needs %s", scheme, missing)
			}
			schemes = append(schemes, scheme)
		}
	}
	return schemes, keys, nil
}

func checkHTTPURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return errors.New("not an absolute http:// or https:// URL")
	}
	return nil
}

// isTerminal reports whether stream (standard input or an output) is a
// terminal; only an *os.File can be one.
func isTerminal(stream any) bool {
	f, ok := stream.(*os.File)
	return ok && (isatty.IsTerminal(f.Fd()) || isatty.IsCygwinTerminal(f.Fd()))
}

// replayOutcome is one request's outcome, as --json prints it.
type replayOutcome struct {
	replay.Result
	EventID string `json:"event_id,omitempty"`
	Ok      bool   `json:"ok"`
	// Skipped is why the request was not replayed, when it was skipped.
	Skipped string `json:"skipped,omitempty"`
}

// replayReport is the whole outcome, as --json prints it.
type replayReport struct {
	Results     []replayOutcome `json:"results"`
	Total       int             `json:"total"`
	OK          int             `json:"ok"`
	Failed      int             `json:"failed"`
	Skipped     int             `json:"skipped,omitempty"`
	Interrupted bool            `json:"interrupted,omitempty"`
	DryRun      bool            `json:"dry_run,omitempty"`
}

func writeReplayJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func writeReplayTable(w io.Writer, r replayReport) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tMETHOD\tTARGET\tSTATUS\tLATENCY\tERROR")
	for _, res := range r.Results {
		status := "-"
		switch {
		case res.Skipped != "":
			status = "skipped"
		case res.Status != 0:
			status = fmt.Sprint(res.Status)
		}
		latency := "-"
		if res.Status != 0 || res.LatencyMS > 0 {
			latency = fmt.Sprintf("%.1fms", res.LatencyMS)
		}
		errText := res.Error
		if res.Skipped != "" {
			errText = res.Skipped
		} else if errText == "" && !res.Ok {
			errText = oneLineText(res.Body, 60)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", res.ID, res.Method, res.Target, status, latency, oneLineText(errText, 200))
	}
	tw.Flush()
	fmt.Fprintf(w, "%d replayed: %d ok, %d failed", r.OK+r.Failed, r.OK, r.Failed)
	if r.Skipped > 0 {
		fmt.Fprintf(w, ", %d skipped", r.Skipped)
	}
	if n := r.Total - len(r.Results); n > 0 {
		fmt.Fprintf(w, ", %d not sent", n)
	}
	fmt.Fprintln(w)
}

// oneLineText keeps a table cell on one line and bounded.
func oneLineText(s string, max int) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > max {
		cut := max
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut] + "…"
	}
	return s
}

// requestPreview is one request a dry run shows.
type requestPreview struct {
	ID           string      `json:"id"`
	Method       string      `json:"method"`
	URL          string      `json:"url"`
	Headers      http.Header `json:"headers"`
	Body         string      `json:"body"`
	BodyEncoding string      `json:"body_encoding"`
	// Error is why the request could not be built; nothing else is set.
	Error string `json:"error,omitempty"`
}

func printDryRun(ctx context.Context, e *env, items []replay.Item, cfg *replayConfig) error {
	previews := make([]requestPreview, 0, len(items))
	for _, it := range items {
		req, err := replay.Build(ctx, it, cfg.opts)
		if err != nil {
			// Shown, not fatal: the rest of the dry run still says what
			// would go out.
			previews = append(previews, requestPreview{ID: it.ID, Method: it.Method, Error: err.Error()})
			continue
		}
		var body []byte
		if req.GetBody != nil {
			rc, err := req.GetBody()
			if err != nil {
				return fmt.Errorf("replay: %s: %w", it.ID, err)
			}
			body, err = io.ReadAll(rc)
			rc.Close()
			if err != nil {
				return fmt.Errorf("replay: %s: %w", it.ID, err)
			}
		}
		// Bearer credentials: a dry run shows that they are there, not
		// what they are.
		h := req.Header.Clone()
		for _, name := range []string{"Authorization", "X-Webio-Token"} {
			if v := h.Get(name); v != "" {
				scheme, _, ok := strings.Cut(v, " ")
				if ok && strings.EqualFold(scheme, "bearer") {
					h.Set(name, scheme+" <redacted>")
				} else {
					h.Set(name, "<redacted>")
				}
			}
		}
		p := requestPreview{ID: it.ID, Method: req.Method, URL: req.URL.String(), Headers: h, Body: string(body), BodyEncoding: "utf8"}
		if !utf8.Valid(body) {
			p.Body, p.BodyEncoding = base64.StdEncoding.EncodeToString(body), "base64"
		}
		previews = append(previews, p)
	}
	if cfg.json {
		return writeReplayJSON(e.stdout, struct {
			DryRun   bool             `json:"dry_run"`
			Requests []requestPreview `json:"requests"`
		}{true, previews})
	}
	var b bytes.Buffer
	for _, p := range previews {
		if p.Error != "" {
			fmt.Fprintf(&b, "# %s cannot be replayed: %s\n\n", p.ID, p.Error)
			continue
		}
		fmt.Fprintf(&b, "%s %s  (replay of %s)\n", p.Method, p.URL, p.ID)
		if err := p.Headers.Write(&b); err != nil {
			return err
		}
		b.WriteString("\n")
		if p.BodyEncoding == "base64" {
			fmt.Fprintf(&b, "<%d bytes, not UTF-8; base64: %s>\n", base64.StdEncoding.DecodedLen(len(p.Body)), p.Body)
		} else if p.Body != "" {
			b.WriteString(p.Body)
			if !strings.HasSuffix(p.Body, "\n") {
				b.WriteString("\n")
			}
		}
		b.WriteString("\n")
	}
	fmt.Fprintf(&b, "dry run: %s, nothing sent\n", english.Plural(len(previews), "request", "requests"))
	_, err := e.stdout.Write(b.Bytes())
	return err
}

// editorOf is the user's editor: $VISUAL, else $EDITOR, else vi.
func editorOf(e *env) string {
	for _, name := range []string{"VISUAL", "EDITOR"} {
		if v := strings.TrimSpace(e.getenv(name)); v != "" {
			return v
		}
	}
	return "vi"
}

// editBody opens editor (a command line, "code --wait" works) on a temp
// copy of body and returns what was saved. An emptied file cancels.
func editBody(ctx context.Context, editor string, body []byte, stdin io.Reader, stdout, stderr io.Writer) ([]byte, error) {
	args := strings.Fields(editor)
	if len(args) == 0 {
		return nil, errors.New("edit: no editor: set $EDITOR")
	}
	pattern := "sidehook-replay-*.txt"
	if json.Valid(body) {
		pattern = "sidehook-replay-*.json"
	}
	f, err := os.CreateTemp("", pattern)
	if err != nil {
		return nil, fmt.Errorf("edit: %w", err)
	}
	path := f.Name()
	defer os.Remove(path)
	if _, err := f.Write(body); err != nil {
		f.Close()
		return nil, fmt.Errorf("edit: %w", err)
	}
	if err := f.Close(); err != nil {
		return nil, fmt.Errorf("edit: %w", err)
	}
	cmd := exec.CommandContext(ctx, args[0], append(args[1:], path)...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdin, stdout, stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("edit: %s: %w; nothing sent", args[0], err)
	}
	edited, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("edit: %w", err)
	}
	if len(bytes.TrimSpace(edited)) == 0 {
		return nil, errors.New("edit: the body was emptied, so the replay is cancelled; nothing sent (use --body /dev/null to send an empty body)")
	}
	// Most editors end a saved file with a newline; one added to a body
	// that had none is the editor's, not the user's, and would change the
	// bytes of an otherwise untouched body.
	if len(edited) == len(body)+1 && edited[len(body)] == '\n' && bytes.Equal(edited[:len(body)], body) {
		return body, nil
	}
	return edited, nil
}
