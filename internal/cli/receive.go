package cli

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/sidehook/sidehook/fixtures"
	"github.com/sidehook/sidehook/internal/auth"
	"github.com/sidehook/sidehook/receiver"
)

// defaultLeeway is the clock skew allowed on a jwt's exp and nbf: enough
// for two machines whose clocks drift apart, short against a 5-minute
// token lifetime.
const defaultLeeway = 30 * time.Second

func receiveCommand(e *env) *cli.Command {
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
			&cli.StringFlag{Name: "webio-secret", Usage: "check x-webio-token with this secret key (at least 32 bytes)"},
			&cli.StringFlag{Name: "org", Usage: "with --webio-secret: the org claim required"},
			&cli.StringFlag{Name: "jwt-secret", Usage: "check a Bearer JWT signed HS256 with this secret"},
			&cli.StringFlag{Name: "jwt-public-key", Usage: "check a Bearer JWT with this PEM public key `FILE` (RS256, ES256 or EdDSA by key type)"},
			&cli.StringFlag{Name: "jwks-url", Usage: "check a Bearer JWT with the keys at this JWKS `URL`"},
			&cli.DurationFlag{Name: "leeway", Value: defaultLeeway, Usage: "clock skew allowed on exp and nbf"},
			&cli.StringFlag{Name: "audience", Usage: "the aud a JWT must carry"},
			&cli.StringFlag{Name: "issuer", Usage: "the iss a JWT must carry"},
			&cli.BoolFlag{Name: "require-sha256", Usage: "refuse a JWT without a sha256 claim"},
			&cli.StringSliceFlag{Name: "standard-secret", Usage: "check Standard Webhooks signatures with this whsec_ secret (repeat during a rotation)"},
			&cli.StringFlag{Name: "values", Usage: "custom values `FILE` (JSON or YAML; default: the embedded demo values)"},
			&cli.StringFlag{Name: "rules", Usage: "scripted responses `FILE` (a JSON or YAML list)"},
			&cli.StringFlag{Name: "max-body", Value: "1MiB", Usage: "largest body captured (e.g. 1MiB, 512KiB, 2MB, 65536); larger is 413"},
			&cli.StringFlag{Name: "admin-token", Usage: "Bearer token for /_sidehook/ (required when listening beyond loopback)"},
			&cli.DurationFlag{Name: "shutdown-grace", Value: receiver.DefaultShutdownGrace, Usage: "how long a stop waits for in-flight requests"},
		},
		Action: func(c *cli.Context) error {
			log, err := e.serverSetup(c)
			if err != nil {
				return err
			}
			cfg, err := receiveConfig(c)
			if err != nil {
				return err
			}
			cfg.Logger = log
			srv, err := receiver.New(cfg)
			if err != nil {
				return usageErrorf("receive: %v", err)
			}
			if err := srv.Start(c.Context); err != nil {
				return fmt.Errorf("receive: %w", err)
			}
			<-c.Context.Done()
			log.Info().Msg("stopping")
			drain, cancel := drainContext()
			defer cancel()
			return srv.Close(drain)
		},
	}
}

// drainContext is canceled by a second SIGINT/SIGTERM: the first one
// started a graceful stop, the second skips the drain.
func drainContext() (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(context.Background())
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	go func() {
		defer signal.Stop(sig)
		select {
		case <-sig:
			cancel()
		case <-ctx.Done():
		}
	}()
	return ctx, cancel
}

// receiveConfig turns the flags into a receiver config; any bad value or
// file is a usage error naming it.
func receiveConfig(c *cli.Context) (receiver.Config, error) {
	cfg := receiver.Config{
		Listen:        c.String("listen"),
		DataDir:       c.String("data"),
		InMemory:      c.Bool("in-memory"),
		AdminToken:    c.String("admin-token"),
		Version:       Version,
		ShutdownGrace: c.Duration("shutdown-grace"),
	}
	maxBody, err := parseSize(c.String("max-body"))
	if err != nil {
		return cfg, usageErrorf("receive: --max-body: %v", err)
	}
	cfg.MaxBody = maxBody
	if c.Duration("leeway") < 0 {
		return cfg, usageErrorf("receive: --leeway must not be negative")
	}

	v := auth.VerifyConfig{
		Org:           c.String("org"),
		Leeway:        c.Duration("leeway"),
		Audience:      c.String("audience"),
		Issuer:        c.String("issuer"),
		RequireSHA256: c.Bool("require-sha256"),
	}
	if s := c.String("webio-secret"); s != "" {
		v.WebioSecret = []byte(s)
	} else if v.Org != "" {
		return cfg, usageErrorf("receive: --org needs --webio-secret")
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
	if raw := c.String("jwks-url"); raw != "" {
		u, err := url.Parse(raw)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return cfg, usageErrorf("receive: --jwks-url %q: want an http:// or https:// URL", raw)
		}
		v.JWKS = auth.NewJWKSFetcher(raw, nil, auth.JWKSOptions{})
	}
	for i, s := range c.StringSlice("standard-secret") {
		key, err := auth.ParseStandardSecret(strings.TrimSpace(s))
		if err != nil {
			return cfg, usageErrorf("receive: --standard-secret %d: %v", i+1, err)
		}
		v.StandardSecrets = append(v.StandardSecrets, key)
	}
	if (v.Audience != "" || v.Issuer != "" || v.RequireSHA256) && v.JWTSecret == nil && v.JWTPublicKey == nil && v.JWKS == nil {
		return cfg, usageErrorf("receive: --audience, --issuer and --require-sha256 need --jwt-secret, --jwt-public-key or --jwks-url")
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

// parseSize reads a byte size: a number of bytes, or a number with a unit
// B, KB, MB, GB (powers of 1000) or KiB, MiB, GiB (powers of 1024), any
// case.
func parseSize(s string) (int64, error) {
	t := strings.TrimSpace(s)
	i := 0
	for i < len(t) && (t[i] >= '0' && t[i] <= '9' || t[i] == '.') {
		i++
	}
	num, unit := t[:i], strings.ToLower(strings.TrimSpace(t[i:]))
	mult := map[string]float64{
		"": 1, "b": 1,
		"k": 1 << 10, "kb": 1e3, "kib": 1 << 10,
		"m": 1 << 20, "mb": 1e6, "mib": 1 << 20,
		"g": 1 << 30, "gb": 1e9, "gib": 1 << 30,
	}[unit]
	f, err := strconv.ParseFloat(num, 64)
	if err != nil || mult == 0 {
		return 0, fmt.Errorf("%q: want a size such as 1MiB, 512KiB, 2MB or 65536", s)
	}
	n := f * mult
	if n < 1 || n > 1<<40 {
		return 0, fmt.Errorf("%q: want a size from 1 byte to 1TiB", s)
	}
	return int64(n), nil
}
