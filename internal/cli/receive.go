package cli

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/rs/zerolog"
	"github.com/urfave/cli/v2"

	"github.com/sidehook/sidehook/fixtures"
	"github.com/sidehook/sidehook/internal/auth"
	"github.com/sidehook/sidehook/internal/httpguard"
	"github.com/sidehook/sidehook/internal/httpjson"
	"github.com/sidehook/sidehook/internal/units"
	"github.com/sidehook/sidehook/receiver"
	"github.com/sidehook/sidehook/receiver/badgerstore"
	"github.com/sidehook/sidehook/receiver/memstore"
)

// defaultLeeway is the clock skew allowed on a jwt's exp and nbf: enough
// for two machines whose clocks drift apart, short against a 5-minute
// token lifetime.
const defaultLeeway = 30 * time.Second

func receiveCommand(e *env) *cli.Command {
	secretKey := &cli.StringFlag{Name: "secret-key", Usage: "check x-webio-token with the organisation's secret key (at least 32 bytes)"}
	return &cli.Command{
		Name:  "receive",
		Usage: "run a mock receiver: verify, capture and script answers to webhooks",
		Description: "Accepts any method on any path outside /_sidehook/, verifies the configured schemes\n" +
			"(401 {\"error\":\"invalid_token\"} when one fails), captures every request durably,\n" +
			"answers custom-value GETs (?fields=…) from --values and plays --rules.\n" +
			"The admin API lives under /_sidehook/ (requests, wait, export, rules, reset, metrics).",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "listen", Value: receiver.DefaultListen, Usage: "address to listen on"},
			&cli.StringFlag{Name: "data", Value: "./.sidehook/receiver", Usage: "directory of the captures"},
			&cli.BoolFlag{Name: "in-memory", Usage: "keep captures in memory only"},
			secretKey,
			oldName("webio-secret", "secret-key", secretKey),
			&cli.StringFlag{Name: "org", Usage: "with --secret-key: the org claim required"},
			&cli.StringFlag{Name: "jwt-secret", Usage: "check a Bearer JWT signed HS256 with this secret"},
			&cli.StringFlag{Name: "jwt-public-key", Usage: "check a Bearer JWT with this PEM public key `FILE` (RS256, ES256 or EdDSA by key type)"},
			&cli.StringFlag{Name: "jwt-private-key", Usage: "sign the JWTs of replays whose original was RS256, ES256 or EdDSA with this PEM private key `FILE`"},
			&cli.StringFlag{Name: "jwks-url", Usage: "check a Bearer JWT with the keys at this JWKS `URL`"},
			&cli.DurationFlag{Name: "leeway", Value: defaultLeeway, Usage: "clock skew allowed on exp and nbf"},
			&cli.StringFlag{Name: "audience", Usage: "the aud a JWT must carry"},
			&cli.StringFlag{Name: "issuer", Usage: "the iss a JWT must carry"},
			&cli.BoolFlag{Name: "require-sha256", Usage: "refuse a JWT without a sha256 claim"},
			&cli.StringSliceFlag{Name: "standard-secret", Usage: "check Standard Webhooks signatures with this whsec_ secret (repeat during a rotation)"},
			&cli.StringFlag{Name: "values", Usage: "custom values `FILE` (JSON or YAML; default: the embedded demo values)"},
			&cli.StringFlag{Name: "rules", Usage: "scripted responses `FILE` (a JSON or YAML list)"},
			&cli.StringFlag{Name: "max-body", Value: "1MiB", Usage: "largest body captured (e.g. 1MiB, 512KiB, 2MB, 65536; at most 62MiB on disk); larger is 413"},
			&cli.StringFlag{Name: "min-free-disk", Usage: reserveUsage()},
			&cli.StringSliceFlag{Name: "allow-host", Usage: "a Host `NAME` the admin API and dashboard answer on loopback, besides localhost, 127.0.0.1 and [::1] (repeatable)"},
			&cli.StringFlag{Name: "admin-token", Usage: "Bearer token for /_sidehook/ (required when listening beyond loopback)"},
			&cli.DurationFlag{Name: "shutdown-grace", Value: receiver.DefaultShutdownGrace, Usage: "how long a stop (SIGINT, SIGTERM or SIGHUP) waits for in-flight requests; a second signal skips the wait"},
		},
		Action: func(c *cli.Context) error {
			log, err := e.serverSetup(c)
			if err != nil {
				return err
			}
			cfg, err := receiveConfig(c, e)
			if err != nil {
				return err
			}
			cfg.Logger = log
			reserve, err := receiveReserve(c, e)
			if err != nil {
				return err
			}
			if err := inMemoryWithData(c, e, "receive"); err != nil {
				return err
			}
			if !c.Bool("in-memory") {
				if err := checkDataDir("receive", c.String("data"), dataSource(c, e, "", "", "")); err != nil {
					return err
				}
				// receiver.New checks it too, once the store is open: here
				// it is refused before, naming where it came from. In
				// memory a capture has no such bound.
				if err := badgerstore.BodyLimit().Check(cfg.MaxBody, "capture"); err != nil {
					return usageErrorf("receive: %s: %v; lower it, or keep captures --in-memory", e.source(c, "max-body"), err)
				}
			}
			st, err := openCaptures(c.String("data"), c.Bool("in-memory"), reserve, log)
			if errors.Is(err, badgerstore.ErrLocked) {
				return fmt.Errorf("receive: %s is in use by another receiver: stop it, or give this one another data directory with %s, or --in-memory", c.String("data"), keyHint(c, "receive", "data", "data"))
			}
			if err != nil {
				return fmt.Errorf("receive: %w", err)
			}
			cfg.Store = st
			srv, err := receiver.New(cfg)
			if err != nil {
				st.Close()
				return usageErrorf("%v", err)
			}
			if c.String("secret-key") != "" && c.String("org") == "" {
				// The token's org claim is not checked: any organisation's
				// token signed with this key passes.
				log.Warn().Msg("--secret-key without --org: x-webio-token of any organisation is accepted; give --org to require one")
			}
			if err := srv.Start(c.Context); err != nil {
				st.Close()
				return busyPort(err, "receive", cfg.Listen, listenHint(c, "receive"))
			}
			<-c.Context.Done()
			logStopping(c.Context, log, c.Duration("shutdown-grace"))
			drain, cancel := drainContext()
			defer cancel()
			if err := errors.Join(srv.Close(drain), st.Close()); err != nil {
				return err
			}
			// As the relay's: the stop is over, its captures on disk.
			log.Info().Msg("stopped")
			return nil
		},
	}
}

// reserveUsage is --min-free-disk's help, with the store's real default
// and floor.
func reserveUsage() string {
	return fmt.Sprintf("refuse captures (503) while the data directory's disk has less than this `SIZE` free "+
		"(default %s, room for compactions too; at least %s, a flush of every memtable and a value log file)",
		units.FormatSize(badgerstore.DefaultReserve()), units.FormatSize(badgerstore.ReserveFloor()))
}

// receiveReserve is --min-free-disk (0: the store's default). One below
// the store's floor is refused here, as a usage error naming the flag,
// rather than by the store at open in its own words.
func receiveReserve(c *cli.Context, e *env) (int64, error) {
	v := c.String("min-free-disk")
	if v == "" {
		return 0, nil
	}
	reserve, err := parseSize(v)
	if err != nil {
		return 0, usageErrorf("receive: %s: %v", e.source(c, "min-free-disk"), err)
	}
	if floor := badgerstore.ReserveFloor(); !c.Bool("in-memory") && reserve < floor {
		return 0, usageErrorf("receive: %s: %s is below the store's floor of %s (a flush of every memtable and a value log file); raise it or leave it out",
			e.source(c, "min-free-disk"), units.FormatSize(reserve), units.FormatSize(floor))
	}
	return reserve, nil
}

// captureStore is a receiver's store as its opener holds it.
type captureStore interface {
	receiver.Store
	Close() error
}

// openCaptures opens the receiver's capture store: in memory, or durable
// in dir.
func openCaptures(dir string, inMemory bool, reserve int64, log zerolog.Logger) (captureStore, error) {
	if inMemory {
		return memstore.New(), nil
	}
	if dir == "" {
		return nil, usageErrorf("a data directory is required unless in memory")
	}
	st, err := badgerstore.Open(badgerstore.Options{Dir: dir, Logger: log, Reserve: reserve})
	if err != nil {
		return nil, err
	}
	return st, nil
}

// receiveConfig turns the flags into a receiver config; any bad value or
// file is a usage error naming it.
func receiveConfig(c *cli.Context, e *env) (receiver.Config, error) {
	if c.Duration("shutdown-grace") <= 0 {
		return receiver.Config{}, usageErrorf("receive: %s must be positive", e.source(c, "shutdown-grace"))
	}
	adminToken, err := adminTokenFlag(c, e, "receive")
	if err != nil {
		return receiver.Config{}, err
	}
	cfg := receiver.Config{
		Listen:        c.String("listen"),
		AdminToken:    adminToken,
		AllowHosts:    c.StringSlice("allow-host"),
		Version:       e.build.Version,
		ShutdownGrace: c.Duration("shutdown-grace"),
	}
	if err := checkListen("receive: "+e.source(c, "listen"), cfg.Listen); err != nil {
		return cfg, err
	}
	// The receiver would refuse it too, without naming the flag.
	if _, err := httpguard.New(httpguard.Options{AllowedHosts: cfg.AllowHosts}); err != nil {
		return cfg, usageErrorf("receive: %s: %v", e.source(c, "allow-host"), err)
	}
	if adminToken == "" && !httpjson.IsLoopback(cfg.Listen) {
		return cfg, usageErrorf("receive: %s %q is beyond loopback, where the admin API needs a token: give %s, at least %d bytes",
			e.source(c, "listen"), cfg.Listen, listenFlagHint("receive", "admin-token"), httpguard.MinAdminTokenLen)
	}
	maxBody, err := parseSize(c.String("max-body"))
	if err != nil {
		return cfg, usageErrorf("receive: %s: %v", e.source(c, "max-body"), err)
	}
	cfg.MaxBody = maxBody
	if c.Duration("leeway") < 0 {
		return cfg, usageErrorf("receive: %s must not be negative", e.source(c, "leeway"))
	}

	v := auth.VerifyConfig{
		Org:           c.String("org"),
		Leeway:        c.Duration("leeway"),
		Audience:      c.String("audience"),
		Issuer:        c.String("issuer"),
		RequireSHA256: c.Bool("require-sha256"),
	}
	if err := emptySecret(c, e, "no check", "secret-key", "jwt-secret"); err != nil {
		return cfg, err
	}
	// Checked here as relay and token check them, to name the flag; the
	// receiver would refuse them too, in its own words.
	for _, name := range []string{"secret-key", "jwt-secret"} {
		if s := c.String(name); s != "" && len(s) < auth.MinSecretLen {
			return cfg, usageErrorf("receive: %s: %d bytes, need at least %d", e.source(c, name), len(s), auth.MinSecretLen)
		}
	}
	if s := c.String("secret-key"); s != "" {
		v.WebioSecret = []byte(s)
	} else if v.Org != "" {
		return cfg, usageErrorf("receive: %s needs --secret-key", e.source(c, "org"))
	}
	if s := c.String("jwt-secret"); s != "" {
		v.JWTSecret = []byte(s)
	}
	if path := c.String("jwt-public-key"); path != "" {
		pem, err := os.ReadFile(path)
		if err != nil {
			return cfg, usageErrorf("receive: --jwt-public-key: %v", err)
		}
		key, alg, err := auth.ParsePublicKeyPEM(pem)
		if err != nil {
			return cfg, usageErrorf("receive: --jwt-public-key %s: %v", path, err)
		}
		v.JWTPublicKey, v.JWTPublicAlg = key, alg
	}
	if path := c.String("jwt-private-key"); path != "" {
		pem, err := os.ReadFile(path)
		if err != nil {
			return cfg, usageErrorf("receive: --jwt-private-key: %v", err)
		}
		key, err := auth.ParseKey(pem)
		if err != nil {
			return cfg, usageErrorf("receive: --jwt-private-key %s: %v", path, err)
		}
		cfg.ReplayKey = &key
	}
	if raw := c.String("jwks-url"); raw != "" {
		u, err := url.Parse(raw)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return cfg, usageErrorf("receive: --jwks-url %q: want an http:// or https:// URL", raw)
		}
		v.JWKS = auth.NewJWKSFetcher(raw, nil, auth.JWKSOptions{})
	}
	secrets := c.StringSlice("standard-secret")
	for i, s := range secrets {
		key, err := auth.ParseStandardSecret(strings.TrimSpace(s))
		if err != nil {
			which := e.source(c, "standard-secret")
			if len(secrets) > 1 {
				which += fmt.Sprintf(" (%d of %d)", i+1, len(secrets))
			}
			// auth's words, without its "auth: standard secret" prefix:
			// the flag says which secret.
			why := strings.TrimLeft(strings.TrimPrefix(err.Error(), "auth: standard secret"), ": ")
			return cfg, usageErrorf("receive: %s: %s", which, why)
		}
		v.StandardSecrets = append(v.StandardSecrets, key)
	}
	if (v.Audience != "" || v.Issuer != "" || v.RequireSHA256) && v.JWTSecret == nil && v.JWTPublicKey == nil && v.JWKS == nil {
		// Audience and issuer are shared with token and replay, so they
		// may come from SIDEHOOK_AUDIENCE or SIDEHOOK_ISSUER set for those.
		return cfg, usageErrorf("receive: --audience, --issuer and --require-sha256 (or SIDEHOOK_AUDIENCE, SIDEHOOK_ISSUER) need --jwt-secret, --jwt-public-key or --jwks-url")
	}
	cfg.Verify = v

	if path := c.String("values"); path != "" {
		vals, err := fixtures.ReadValuesFile(path)
		if err != nil {
			// One line, whatever the parser's message looks like.
			return cfg, usageErrorf("receive: --values: %s", strings.Join(strings.Fields(err.Error()), " "))
		}
		cfg.Values = vals
	}
	if path := c.String("rules"); path != "" {
		rules, err := receiver.ReadRulesFile(path)
		if err != nil {
			return cfg, usageErrorf("receive: --rules: %v", err)
		}
		cfg.Rules = rules
	}
	return cfg, nil
}

// parseSize is units.ParseSize for a flag that sizes something: at least a
// byte, at most 1 TiB.
func parseSize(s string) (int64, error) {
	n, err := units.ParseSize(s)
	if err != nil {
		return 0, err
	}
	if n < 1 || n > 1<<40 {
		return 0, fmt.Errorf("%q: want a size from 1 byte to 1TiB", s)
	}
	return n, nil
}
