package cli

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"

	"github.com/rs/zerolog"
	"github.com/urfave/cli/v2"

	"github.com/sidehook/sidehook/relay"
	"github.com/sidehook/sidehook/relay/badgerstore"
	"github.com/sidehook/sidehook/relay/config"
	"github.com/sidehook/sidehook/relay/memstore"
	"github.com/sidehook/sidehook/relay/tunnel"
)

func relayCommand(e *env) *cli.Command {
	return &cli.Command{
		Name:  "relay",
		Usage: "run the durable webhook relay",
		Description: "Accepts events (POST /v1/events with an API key, or POST /in/{org} as the platform's\n" +
			"public URL), stores them durably and delivers each to every subscribed endpoint, signed,\n" +
			"retrying until delivered or dead. Configure it with --config FILE (SPEC §4), or for one\n" +
			"organisation with --org, --api-key, --secret-key and --endpoint flags.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "config", Usage: "configuration `FILE` (YAML)"},
			&cli.StringFlag{Name: "listen", Usage: "address to listen on (default " + config.DefaultListen + ")"},
			&cli.StringFlag{Name: "data", Usage: "data directory (default " + config.DefaultData + ")"},
			&cli.BoolFlag{Name: "in-memory", Usage: "keep nothing on disk (events are lost at exit)"},
			&cli.StringFlag{Name: "org", Usage: "without --config: the organisation id (default demo)"},
			&cli.StringSliceFlag{Name: "api-key", Usage: "without --config: an API key of the organisation"},
			&cli.StringFlag{Name: "secret-key", Usage: "without --config: the organisation's secret key (>= 32 bytes; signs its Webio token)"},
			&cli.StringFlag{Name: "standard-secret", Usage: "without --config: a whsec_ Standard Webhooks secret"},
			&cli.StringFlag{Name: "jwt-algorithm", Usage: "without --config: HS256, RS256, ES256 or EdDSA"},
			&cli.StringFlag{Name: "inbound-auth", Usage: "without --config: none or webio-token (for /in/{org})"},
			&cli.StringSliceFlag{Name: "endpoint", Usage: "without --config: an endpoint `URL` subscribed to every event (repeatable)"},
			&cli.StringFlag{Name: "custom-values", Usage: "without --config: the custom-value endpoint `URL`"},
			&cli.DurationFlag{Name: "grace", Value: relay.DefaultGrace, Usage: "how long a stop waits for in-flight deliveries"},
		},
		Action: func(c *cli.Context) error {
			log, err := e.serverSetupLimit(c, relayMemoryLimit)
			if err != nil {
				return err
			}
			cfg, err := relayConfig(c, e)
			if err != nil {
				return err
			}
			st, err := openRelayStore(c.Context, cfg, log)
			if err != nil {
				return fmt.Errorf("relay: %w", err)
			}
			// Deferred first, so it runs last: after the relay's Close.
			defer func() {
				if err := st.Close(); err != nil {
					log.Error().Err(err).Msg("close store")
				}
			}()
			tunnels := tunnel.NewServer(tunnel.ServerOptions{Logger: log})
			r, err := relay.New(cfg, relay.Options{Store: st, Tunnels: tunnels, Logger: log, Version: Version, Grace: c.Duration("grace")})
			if err != nil {
				return usageErrorf("relay: %v", err)
			}
			if err := r.Start(c.Context); err != nil {
				return fmt.Errorf("relay: %w", err)
			}
			<-c.Context.Done()
			log.Info().Msg("stopping")
			drain, cancel := drainContext()
			defer cancel()
			// Tunnel clients go after the drain: their in-flight
			// attempts are among those it waits for.
			return errors.Join(r.Close(drain), tunnels.Close(drain))
		},
	}
}

// relayConfig reads --config or builds the one-organisation setup; every
// mistake is a usage error naming the key or flag.
func relayConfig(c *cli.Context, e *env) (*config.Config, error) {
	var (
		cfg *config.Config
		err error
	)
	// With --config the one-organisation flags are ignored: their
	// environment variables (SIDEHOOK_API_KEY, SIDEHOOK_SECRET_KEY) are
	// the ones a configuration file names with env:, so they are often set.
	if path := c.String("config"); path != "" {
		cfg, err = config.Load(path, e.getenv)
		if err != nil {
			return nil, usageErrorf("relay: %v", err)
		}
	} else {
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
			Endpoints:      c.StringSlice("endpoint"),
			CustomValues:   c.String("custom-values"),
		})
		if err != nil {
			return nil, usageErrorf("relay: %v", err)
		}
	}
	if c.IsSet("listen") {
		cfg.Listen = c.String("listen")
	}
	if c.IsSet("data") {
		cfg.Data = c.String("data")
	}
	cfg.InMemory = c.Bool("in-memory")
	if c.Duration("grace") <= 0 {
		return nil, usageErrorf("relay: --grace must be positive")
	}
	return cfg, nil
}

// openRelayStore opens the relay's store: in memory, or Badger under the
// data directory. The caller closes it after the relay.
func openRelayStore(ctx context.Context, cfg *config.Config, log zerolog.Logger) (relay.Store, error) {
	if cfg.InMemory {
		return memstore.New(), nil
	}
	st, err := badgerstore.Open(ctx, badgerstore.Options{
		Dir:          filepath.Join(cfg.Data, "db"),
		Logger:       log.With().Str("component", "store").Logger(),
		MinFreeBytes: cfg.Limits.MinFreeDisk,
	})
	if err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	return st, nil
}
