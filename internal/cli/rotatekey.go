package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"time"

	"github.com/rs/zerolog"
	"github.com/urfave/cli/v2"

	"github.com/sidehook/sidehook/internal/auth"
	"github.com/sidehook/sidehook/relay"
	"github.com/sidehook/sidehook/relay/badgerstore"
	"github.com/sidehook/sidehook/relay/config"
)

func rotateKeyCommand(e *env) *cli.Command {
	return &cli.Command{
		Name:  "rotate-key",
		Usage: "replace the relay's jwt key pair of one algorithm, keeping the old one published until its tokens expire",
		Description: "Opens the relay's store (--config FILE, --data DIR or --store nats://…, as the relay\n" +
			"takes them; on NATS the stream and bucket the relays made, as they are), makes a new\n" +
			"current key for --alg and keeps the old one in\n" +
			"/.well-known/jwks.json until every token it signed has expired, then prints the new kid.\n" +
			"Relays sharing a NATS store follow at once; a relay on Badger holds its data directory:\n" +
			"stop it first, and it signs with the new key from its next start.",
		Flags: append(storeFlags(),
			&cli.StringFlag{Name: "alg", Usage: "the algorithm whose key to replace: RS256, ES256 or EdDSA"},
			&cli.BoolFlag{Name: "json", Usage: "print what was done as one JSON object"},
		),
		Action: func(c *cli.Context) error {
			alg, err := rotateAlg(c.String("alg"))
			if err != nil {
				return err
			}
			cfg, err := rotateKeyConfig(c, e, alg)
			if err != nil {
				return err
			}
			// Opening Badger would make a store where there is none: a
			// key rotated there is no relay's (a mistyped --data, or the
			// relay's data named only by its SIDEHOOK_RELAY_* variable).
			if _, err := os.Stat(badgerDir(cfg)); cfg.Store == nil && errors.Is(err, fs.ErrNotExist) {
				// With the configuration given, the relay has not run
				// there yet: asking for its --config would not help.
				if file := c.String("config"); file != "" && !c.IsSet("data") {
					return usageErrorf("relay rotate-key: no relay data in %s, where %s keeps it: start the relay once (it makes its keys then), or give its --data DIR", cfg.Data, file)
				}
				return usageErrorf("relay rotate-key: no relay data in %s: give the relay's --config FILE, --data DIR or --store URLS", cfg.Data)
			}
			log, err := e.logger(c)
			if err != nil {
				return err
			}
			// A command that prints its answer: the store's info lines
			// ("nats store open") are noise on its stderr unless asked for.
			if !c.IsSet("log-level") {
				log = log.Level(max(log.GetLevel(), zerolog.WarnLevel))
			}
			st, err := openRelayStore(c.Context, cfg, log, true)
			if errors.Is(err, badgerstore.ErrLocked) {
				return fmt.Errorf("relay rotate-key: %s is in use by a running relay: stop the relay first (it loads the new key when it starts again)", cfg.Data)
			}
			if err != nil {
				return fmt.Errorf("relay rotate-key: %w", err)
			}
			defer func() {
				if err := st.Close(); err != nil {
					log.Error().Err(err).Msg("close store")
				}
			}()
			rot, err := relay.RotateStoredKey(c.Context, st, alg)
			if err != nil {
				return fmt.Errorf("relay rotate-key: %w", err)
			}
			return printRotation(e, rot, c.Bool("json"))
		},
	}
}

// rotateAlg reads --alg: an algorithm with a key pair of the relay's.
func rotateAlg(name string) (auth.Algorithm, error) {
	if name == "" {
		return "", usageErrorf("relay rotate-key: --alg is required: RS256, ES256 or EdDSA")
	}
	alg, err := auth.ParseAlgorithm(name)
	if err != nil {
		return "", usageErrorf("relay rotate-key: --alg %q: want RS256, ES256 or EdDSA", name)
	}
	if !alg.Asymmetric() {
		return "", usageErrorf("relay rotate-key: --alg %s has no relay key to rotate: HS256 signs with each organisation's secret_key", alg)
	}
	return alg, nil
}

// rotateKeyConfig is the store's part of the relay's configuration: the
// file, read as the relay reads it, and --data or --store over it.
func rotateKeyConfig(c *cli.Context, e *env, alg auth.Algorithm) (*config.Config, error) {
	cfg := &config.Config{Data: config.DefaultData}
	if path := c.String("config"); path != "" {
		var err error
		if cfg, err = loadConfig(c, e, "relay rotate-key"); err != nil {
			return nil, err
		}
		// A key no organisation signs with would be made and never used.
		if !slices.ContainsFunc(cfg.Organisations, func(o config.Org) bool { return o.JWTAlgorithm == alg }) {
			return nil, usageErrorf("relay rotate-key: no organisation in %s signs jwt with %s (jwt: {algorithm: %s})", path, alg, alg)
		}
	}
	if err := applyStoreFlags(c, cfg); err != nil {
		return nil, err
	}
	if cfg.Store == nil {
		if err := checkDataDir("relay rotate-key", cfg.Data, dataSource(c, e, c.String("config"), cfg.Data, config.DefaultData)); err != nil {
			return nil, err
		}
	}
	if err := checkReserve("relay rotate-key", cfg, c.String("config")); err != nil {
		return nil, err
	}
	return cfg, nil
}

// printRotation says what changed: one line, or one JSON object.
func printRotation(e *env, rot relay.Rotation, asJSON bool) error {
	if asJSON {
		out := struct {
			Alg          auth.Algorithm `json:"alg"`
			KID          string         `json:"kid"`
			RetiredKID   string         `json:"retired_kid,omitempty"`
			RetiredUntil *time.Time     `json:"retired_until,omitempty"`
		}{Alg: rot.Alg, KID: rot.KID, RetiredKID: rot.Retired}
		if rot.Retired != "" {
			until := rot.Until.UTC()
			out.RetiredUntil = &until
		}
		return json.NewEncoder(e.stdout).Encode(out)
	}
	e.printf("%s: signing with new key %s; the old key %s stays in the JWKS until %s\n",
		rot.Alg, rot.KID, rot.Retired, rot.Until.UTC().Format(time.RFC3339))
	return nil
}
