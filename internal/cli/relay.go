package cli

import (
	"errors"
	"fmt"
	"io/fs"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/sidehook/sidehook/internal/target"
	"github.com/sidehook/sidehook/internal/units"
	"github.com/sidehook/sidehook/relay"
	"github.com/sidehook/sidehook/relay/badgerstore"
	"github.com/sidehook/sidehook/relay/config"
	"github.com/sidehook/sidehook/relay/memstore"
	"github.com/sidehook/sidehook/relay/natsstore"
)

func relayCommand(e *env) *cli.Command {
	grace := &cli.DurationFlag{Name: "shutdown-grace", Value: relay.DefaultGrace, Usage: "how long a stop (SIGINT, SIGTERM or SIGHUP) waits for in-flight deliveries; a second signal skips the wait"}
	return &cli.Command{
		Name:  "relay",
		Usage: "run the durable webhook relay",
		Description: "Accepts events (POST /v1/events with an API key, or POST /in/{org} as the platform's\n" +
			"public URL), stores them durably and delivers each to every subscribed endpoint, signed,\n" +
			"retrying until delivered or dead. Configure it with --config FILE (SPEC §4; see\n" +
			"sidehook.example.yaml), or for one organisation with --org, --api-key, --secret-key and\n" +
			"--endpoint (a secret flag may say env:NAME, as the file may). --check-config validates\n" +
			"the file and exits.",
		Flags: append(storeFlags(),
			&cli.BoolFlag{Name: "check-config", Usage: "validate the configuration and exit (0 when it is valid, 2 when not)"},
			&cli.StringFlag{Name: "listen", Usage: "address to listen on (default " + config.DefaultListen + ")"},
			&cli.BoolFlag{Name: "in-memory", Usage: "keep nothing on disk (events are lost at exit)"},
			&cli.StringFlag{Name: "org", Usage: "without --config: the organisation id (default demo)"},
			&cli.StringSliceFlag{Name: "api-key", Usage: "without --config: an API key of the organisation"},
			&cli.StringFlag{Name: "secret-key", Usage: "without --config: the organisation's secret key (>= 32 bytes; signs its Webio token)"},
			&cli.StringFlag{Name: "standard-secret", Usage: "without --config: a whsec_ Standard Webhooks secret"},
			&cli.StringFlag{Name: "jwt-algorithm", Usage: "without --config: HS256, RS256, ES256 or EdDSA"},
			&cli.StringFlag{Name: "inbound-auth", Usage: "without --config: none or webio-token (for /in/{org}; webio-token needs --inbound-secret)"},
			&cli.StringFlag{Name: "inbound-secret", Usage: "without --config: the secret the platform signs the tokens it sends to /in/{org} with (not --secret-key)"},
			&cli.StringFlag{Name: "inbound-issuer", Usage: "without --config: the iss those tokens must carry (optional)"},
			&cli.StringSliceFlag{Name: "endpoint", Usage: "without --config: an endpoint `URL` subscribed to every event (repeatable)"},
			&cli.StringFlag{Name: "custom-values", Usage: "without --config: the custom-value endpoint `URL`"},
			&cli.StringFlag{Name: "tls-cert", Usage: "serve HTTPS with this PEM certificate `FILE` (with --tls-key; overrides tls_cert:)"},
			&cli.StringFlag{Name: "tls-key", Usage: "the PEM private key `FILE` of --tls-cert (overrides tls_key:)"},
			&cli.StringFlag{Name: "admin-token", Usage: "Bearer token for the whole-relay dashboard and /metrics beyond loopback (>= 16 bytes; overrides admin_token:)"},
			&cli.StringSliceFlag{Name: "allow-host", Usage: "a Host `NAME` the dashboard and /metrics answer on loopback, besides localhost, 127.0.0.1 and [::1] (repeatable)"},
			&cli.StringSliceFlag{Name: "allow-target", Usage: "a `CIDR|host` endpoints and replays may reach although denied by default, e.g. 169.254.0.0/16 (repeatable; adds to allow_targets:)"},
			grace,
			oldName("grace", "shutdown-grace", grace),
		),
		Subcommands: []*cli.Command{rotateKeyCommand(e)},
		Action: func(c *cli.Context) error {
			cfg, err := relayConfig(c, e)
			if err != nil {
				return err
			}
			if c.Bool("check-config") {
				return checkRelayConfig(c, e, cfg)
			}
			log, err := e.serverSetupLimit(c, relayMemoryLimit)
			if err != nil {
				return err
			}
			st, err := openRelayStore(c.Context, cfg, log, false)
			if errors.Is(err, badgerstore.ErrLocked) {
				return fmt.Errorf("relay: %s is in use by another relay: stop it, or give this one another data directory with %s", cfg.Data, keyHint(c, "relay", "data", "data"))
			}
			if low := (*badgerstore.BelowReserveError)(nil); errors.As(err, &low) {
				return belowReserve(c, cfg, low)
			}
			if err != nil {
				return fmt.Errorf("relay: %w", err)
			}
			// Deferred first, so it runs last: after the relay's Close.
			defer func() {
				if err := st.Close(); err != nil {
					log.Error().Err(err).Msg("close store")
				}
			}()
			tunnels, err := openRelayTunnels(c.Context, st, cfg.Limits.MaxBody, log)
			if err != nil {
				return err
			}
			r, err := relay.New(cfg, relay.Options{Store: st, Tunnels: tunnels, Logger: log, Version: e.build.Version, Grace: c.Duration("shutdown-grace"),
				AllowHosts: c.StringSlice("allow-host")})
			if err != nil {
				closeTunnels(tunnels, log)
				return usageErrorf("%v", err)
			}
			if err := r.Start(c.Context); err != nil {
				closeTunnels(tunnels, log)
				if errors.Is(err, target.ErrDenied) {
					return usageErrorf("%v", err)
				}
				return busyPort(err, "relay", cfg.Listen, listenHint(c, "relay"))
			}
			<-c.Context.Done()
			logStopping(c.Context, log, c.Duration("shutdown-grace"))
			drain, cancel := drainContext()
			defer cancel()
			// Tunnel clients go after the drain: their in-flight
			// attempts are among those it waits for.
			return errors.Join(r.Close(drain), tunnels.Close(drain))
		},
	}
}

// belowReserve is the one line of a relay that will not open its store on
// a disk with less free than it keeps (limits.min_free_disk, or the
// default): what is free, what it keeps, and what to change. Nothing it
// holds is lost: it is delivered once the relay starts.
func belowReserve(c *cli.Context, cfg *config.Config, low *badgerstore.BelowReserveError) error {
	hint := ""
	if path := c.String("config"); path != "" && low.Reserve > badgerstore.ReserveFloor() {
		hint = fmt.Sprintf(", or lower limits.min_free_disk in %s (at least %s)", path, units.FormatSize(badgerstore.ReserveFloor()))
	}
	return fmt.Errorf("relay: disk full: %s free for %s, below the %s it keeps free; free space in %s%s, then start it: the events it holds are kept",
		units.FormatSize(low.Free), cfg.Data, units.FormatSize(low.Reserve), cfg.Data, hint)
}

// storeFlags say where the relay's data is: its configuration file, its
// data directory, or the NATS servers of a shared store. The relay and
// `relay rotate-key` take them; each gets fresh copies, as withEnv names
// each command's own variables in their help.
func storeFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "config", Usage: "configuration `FILE` (YAML)"},
		&cli.StringFlag{Name: "data", Usage: "data directory (default " + config.DefaultData + ")"},
		&cli.StringFlag{Name: "store", Usage: "keep the data in NATS JetStream, shared with every relay that names it: `URLS` like nats://h1:4222,nats://h2:4222 (replaces store.servers of --config)"},
	}
}

// listenHint names what changes a server's address: the flag, its
// variable, or the configuration file's listen key.
func listenHint(c *cli.Context, cmd string) string { return keyHint(c, cmd, "listen", "listen") }

// keyHint names what changes a setting of cmd: the configuration file's
// key (for the relay, unless the flag is set) or the flag and its variable.
func keyHint(c *cli.Context, cmd, key, flag string) string {
	if path := c.String("config"); cmd == "relay" && path != "" && !c.IsSet(flag) {
		return key + ": in " + path + " or --" + flag
	}
	return listenFlagHint(cmd, flag)
}

// listenFlagHint is "--flag (or SIDEHOOK_CMD_FLAG)".
func listenFlagHint(cmd, flag string) string {
	return "--" + flag + " (or " + envName(cmd, flag) + ")"
}

// checkRelayConfig is --check-config: everything the relay checks before
// it opens its store or listens, then one line saying what was found.
func checkRelayConfig(c *cli.Context, e *env, cfg *config.Config) error {
	if c.String("config") == "" {
		return usageErrorf("relay: --check-config checks a --config FILE")
	}
	// A store the check never opens: New only wants one to exist.
	if _, err := relay.New(cfg, relay.Options{Store: memstore.New(), Version: e.build.Version, AllowHosts: c.StringSlice("allow-host")}); err != nil {
		return usageErrorf("%v", err)
	}
	// The relay's own address is checked at start, once it is bound.
	p, err := target.New(target.Options{Allow: cfg.AllowTargets, Deny: cfg.DenyTargets})
	if err != nil {
		return usageErrorf("relay: %v", err)
	}
	if err := cfg.CheckTargets(p); err != nil {
		return usageErrorf("relay: %v", err)
	}
	endpoints := 0
	for _, o := range cfg.Organisations {
		endpoints += len(o.Endpoints)
	}
	e.printf("%s: valid: %s, %s, listen %s, %s\n", c.String("config"),
		count(len(cfg.Organisations), "organisation"), count(endpoints, "endpoint"), cfg.Listen, describeStore(cfg))
	return nil
}

// describeStore says where the relay keeps its data, as openRelayStore
// opens it, without opening it: for NATS the servers, prefix, replicas,
// ack wait and how it authenticates (the files by name; never a token).
func describeStore(cfg *config.Config) string {
	switch {
	case cfg.Store != nil:
		s := cfg.Store
		prefix, ackWait := s.Prefix, s.AckWait
		if prefix == "" {
			prefix = natsstore.DefaultPrefix
		}
		if ackWait == 0 {
			ackWait = natsstore.DefaultAckWait
		}
		details := []string{"prefix " + prefix, count(max(s.Replicas, 1), "replica"), "ack wait " + ackWait.String()}
		if s.Credentials != "" {
			details = append(details, "credentials "+s.Credentials)
		}
		if s.Token != "" {
			details = append(details, "authenticated by a token")
		}
		if s.TLSCA != "" {
			details = append(details, "TLS CA "+s.TLSCA)
		}
		return fmt.Sprintf("store NATS %s (%s)", strings.Join(s.Servers, ","), strings.Join(details, ", "))
	case cfg.InMemory:
		return "store in memory"
	default:
		return "store Badger in " + cfg.Data
	}
}

// count is "1 endpoint" or "2 endpoints".
func count(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// loadConfig reads and checks --config for cmd. A file that is not there
// is named by where its name came from, the flag or a variable such as
// SIDEHOOK_CONFIG, which a user may not know is set.
func loadConfig(c *cli.Context, e *env, cmd string) (*config.Config, error) {
	path := c.String("config")
	cfg, err := config.Load(path, e.getenv)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, usageErrorf("%s: %s: %s: no such file", cmd, e.source(c, "config"), path)
	case err != nil:
		return nil, usageErrorf("%s: %v", cmd, err)
	}
	return cfg, nil
}

// relayConfig reads --config or builds the one-organisation setup; every
// mistake is a usage error naming the key or flag.
func relayConfig(c *cli.Context, e *env) (*config.Config, error) {
	var (
		cfg *config.Config
		err error
	)
	if path := c.String("config"); path != "" {
		// The one-organisation flags' variables (SIDEHOOK_API_KEY,
		// SIDEHOOK_SECRET_KEY) are often the ones the file names with
		// env:, so only a flag on the command line is a mistake here.
		var ignored []string
		for _, name := range []string{"org", "api-key", "secret-key", "standard-secret", "jwt-algorithm", "inbound-auth", "inbound-secret", "inbound-issuer", "endpoint", "custom-values"} {
			if e.given(c, name) {
				ignored = append(ignored, "--"+name)
			}
		}
		if len(ignored) > 0 {
			return nil, usageErrorf("relay: %s would be ignored with %s: set the organisation in %s", strings.Join(ignored, ", "), e.source(c, "config"), path)
		}
		if cfg, err = loadConfig(c, e, "relay"); err != nil {
			return nil, err
		}
	} else {
		if c.Bool("check-config") {
			return nil, usageErrorf("relay: --check-config checks a --config FILE")
		}
		if len(c.StringSlice("api-key")) == 0 {
			return nil, usageErrorf("relay: give --config FILE, or --api-key (with --org, --endpoint …) for a one-organisation relay")
		}
		cfg, err = config.FromOneOrg(config.OneOrg{
			Org:            c.String("org"),
			APIKeys:        c.StringSlice("api-key"),
			SecretKey:      c.String("secret-key"),
			StandardSecret: c.String("standard-secret"),
			JWTAlgorithm:   c.String("jwt-algorithm"),
			InboundAuth:    c.String("inbound-auth"),
			InboundSecret:  c.String("inbound-secret"),
			InboundIssuer:  c.String("inbound-issuer"),
			Endpoints:      c.StringSlice("endpoint"),
			CustomValues:   c.String("custom-values"),
			// --secret-key env:NAME reads NAME, as secret_key: does.
			Getenv: e.getenv,
		})
		if err != nil {
			return nil, usageErrorf("relay: %v", err)
		}
	}
	// The address comes from --listen, else the file, else the default.
	where := "relay: listen"
	switch {
	case c.IsSet("listen"):
		cfg.Listen = c.String("listen")
		where = "relay: " + e.source(c, "listen")
	case c.String("config") != "":
		where = "relay: listen in " + c.String("config")
	}
	if err := checkListen(where, cfg.Listen); err != nil {
		return nil, err
	}
	if err := inMemoryWithData(c, e, "relay"); err != nil {
		return nil, err
	}
	if err := applyStoreFlags(c, cfg); err != nil {
		return nil, err
	}
	if cfg.Store == nil && !cfg.InMemory {
		if err := checkDataDir("relay", cfg.Data, dataSource(c, e, c.String("config"), cfg.Data, config.DefaultData)); err != nil {
			return nil, err
		}
	}
	if err := checkReserve("relay", cfg, c.String("config")); err != nil {
		return nil, err
	}
	if err := checkMaxBody("relay", cfg, c.String("config")); err != nil {
		return nil, err
	}
	if err := trustFlags(c, e, cfg); err != nil {
		return nil, err
	}
	if c.Duration("shutdown-grace") <= 0 {
		return nil, usageErrorf("relay: %s must be positive", e.source(c, "shutdown-grace"))
	}
	return cfg, nil
}

// trustFlags applies --admin-token and --allow-target over the file's
// admin_token: and allow_targets:.
func trustFlags(c *cli.Context, e *env, cfg *config.Config) error {
	if c.IsSet("admin-token") {
		tok, err := adminTokenFlag(c, e, "relay")
		if err != nil {
			return err
		}
		cfg.AdminToken = tok
	}
	for _, r := range c.StringSlice("allow-target") {
		if _, err := target.ParseRule(r); err != nil {
			return usageErrorf("relay: --allow-target: %v", err)
		}
		cfg.AllowTargets = append(cfg.AllowTargets, strings.TrimSpace(r))
	}
	if c.IsSet("tls-cert") || c.IsSet("tls-key") {
		if err := config.ValidTLS(c.String("tls-cert"), c.String("tls-key")); err != nil {
			// ValidTLS names the file's keys; these values came from the
			// flags. Only the key and the key named in "… is set without
			// it" are the file's words: a path may hold "tls_cert" too.
			key, rest, _ := strings.Cut(err.Error(), ": ")
			flags := strings.NewReplacer("tls_cert", "--tls-cert", "tls_key", "--tls-key")
			for _, k := range []string{"tls_cert", "tls_key"} {
				rest = strings.Replace(rest, k+" is set without it", flags.Replace(k)+" is given without it", 1)
			}
			return usageErrorf("relay: %s: %s", flags.Replace(key), rest)
		}
		cfg.TLSCert, cfg.TLSKey = c.String("tls-cert"), c.String("tls-key")
	}
	return nil
}
