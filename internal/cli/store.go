package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/rs/zerolog"
	"github.com/urfave/cli/v2"

	"github.com/sidehook/sidehook/internal/units"
	"github.com/sidehook/sidehook/relay"
	"github.com/sidehook/sidehook/relay/badgerstore"
	"github.com/sidehook/sidehook/relay/config"
	"github.com/sidehook/sidehook/relay/memstore"
	"github.com/sidehook/sidehook/relay/natsstore"
	"github.com/sidehook/sidehook/relay/natstunnel"
	"github.com/sidehook/sidehook/relay/tunnel"
)

// openRelayStore opens the relay's store: NATS JetStream when the
// configuration names servers, else in memory, else Badger under the data
// directory. Failing to open it (NATS unreachable or without JetStream, a
// full disk, a locked directory) is a runtime failure, exit 1, in one line.
// existing opens, on NATS, only a store the relays made, as it is: for a
// command that acts on their store without being one of them.
func openRelayStore(ctx context.Context, cfg *config.Config, log zerolog.Logger, existing bool) (relay.Store, error) {
	if cfg.Store != nil {
		st, err := natsstore.Open(ctx, natsstore.Config{
			Existing:  existing,
			Servers:   cfg.Store.Servers,
			CredsFile: cfg.Store.Credentials,
			Token:     cfg.Store.Token,
			CAFile:    cfg.Store.TLSCA,
			Replicas:  cfg.Store.Replicas,
			Prefix:    cfg.Store.Prefix,
			AckWait:   cfg.Store.AckWait,
			Logger:    log,
		})
		if errors.Is(err, natsstore.ErrMisconfigured) {
			return nil, usageErrorf("%v", err) // starting again as it is fails again
		}
		if err != nil {
			// natsstore's errors already begin "open nats store".
			return nil, err
		}
		return st, nil
	}
	if cfg.InMemory {
		return memstore.New(), nil
	}
	st, err := badgerstore.Open(ctx, badgerstore.Options{
		Dir:     badgerDir(cfg),
		Logger:  log.With().Str("component", "store").Logger(),
		Reserve: cfg.Limits.MinFreeDisk,
	})
	if err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	return st, nil
}

// badgerDir is where the relay keeps its Badger store.
func badgerDir(cfg *config.Config) string { return filepath.Join(cfg.Data, "db") }

// inMemoryWithData refuses --in-memory with --data on the command line:
// one of them would be ignored without a word (a variable SIDEHOOK_DATA,
// set for other commands, is not counted).
func inMemoryWithData(c *cli.Context, e *env, cmd string) error {
	if c.Bool("in-memory") && e.given(c, "data") {
		return usageErrorf("%s: --in-memory keeps nothing on disk, so --data has no use: give one of them", cmd)
	}
	return nil
}

// applyStoreFlags puts --data, --in-memory and --store (storeFlags) over
// what the configuration says.
func applyStoreFlags(c *cli.Context, cfg *config.Config) error {
	if c.IsSet("data") {
		cfg.Data = c.String("data")
	}
	cfg.InMemory = c.Bool("in-memory")
	if err := applyStoreFlag(cfg, c.String("store")); err != nil {
		return err
	}
	if cfg.Store != nil && len(cfg.Store.Servers) == 0 {
		// Asked here, not by the file's check: --store may give them.
		return usageErrorf("relay: %s: store.servers: at least one NATS URL is required (nats://host:4222): name them there or give --store", c.String("config"))
	}
	return nil
}

// applyStoreFlag puts --store's servers (value; "" when not given) into
// the configuration: they replace the file's store.servers and keep its
// other store settings. A NATS store and --in-memory exclude each other.
func applyStoreFlag(cfg *config.Config, value string) error {
	if value != "" {
		servers, err := config.ParseStoreServers(value)
		if err != nil {
			return usageErrorf("relay: --store: %v", err)
		}
		if cfg.Store == nil {
			cfg.Store = &config.Store{Replicas: 1}
		}
		cfg.Store.Servers = servers
	}
	if cfg.Store != nil && cfg.InMemory {
		return usageErrorf("relay: --in-memory and a NATS store (--store or store: in the file) exclude each other: give one")
	}
	return nil
}

// relayTunnels is the relay's tunnel server as the CLI closes it.
type relayTunnels interface {
	relay.TunnelServer
	Close(ctx context.Context) error
}

// openRelayTunnels makes the relay's tunnel server. On a NATS store it
// serves the tunnels of every relay sharing the store (a client connected
// here takes the deliveries any of them attempts, and the list shows
// every relay's clients); otherwise only this relay's. maxBody is the
// relay's limits.max_body, which the server tells its clients to read.
func openRelayTunnels(ctx context.Context, st relay.Store, maxBody int64, log zerolog.Logger) (relayTunnels, error) {
	local := tunnel.NewServer(tunnel.ServerOptions{Logger: log, MaxBody: maxBody})
	ns, ok := st.(*natsstore.Store)
	if !ok {
		return local, nil
	}
	shared := natstunnel.New(local, ns.Conn(), ns.Prefix(), natstunnel.Options{Logger: log})
	if err := shared.Start(ctx); err != nil {
		return nil, err // natstunnel's errors already begin "start tunnels"
	}
	return shared, nil
}

// closeTunnels closes a tunnel server the relay never started serving.
func closeTunnels(t relayTunnels, log zerolog.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := t.Close(ctx); err != nil {
		log.Error().Err(err).Msg("close tunnels")
	}
}

// checkDataDir refuses a data directory that can never be one: the path,
// or a directory it would be made under, is a file. The store would say
// so only as "stat …/db: not a directory", deep in its open error. Any
// other trouble (permissions, a full disk, a lock) is the store's to
// report when it opens. cmd prefixes the error; from says where the path
// came from.
func checkDataDir(cmd, dir, from string) error {
	// Empty, it is almost always an unset variable (--data "$DIR"), and
	// the store would be made in the working directory.
	if dir == "" {
		return usageErrorf("%s: data directory %q (%s) is empty (an unset variable?): give a directory, or leave it out for the default", cmd, dir, from)
	}
	for p := filepath.Clean(dir); ; {
		fi, err := os.Stat(p)
		if err == nil {
			if !fi.IsDir() {
				return usageErrorf("%s: data directory %q (%s): %s is a file, not a directory", cmd, dir, from, p)
			}
			return nil
		}
		parent := filepath.Dir(p)
		if parent == p {
			return nil
		}
		p = parent
	}
}

// dataSource names where c's --data came from, for checkDataDir: the flag
// or its variable, else the configuration file (configPath, "" for none)
// unless it left the default (def) in place.
func dataSource(c *cli.Context, e *env, configPath, data, def string) string {
	switch {
	case c.IsSet("data"):
		return e.source(c, "data")
	case configPath != "" && data != def:
		return "data: in " + configPath
	case configPath != "":
		return "the default; choose another with data: in " + configPath + " or --data"
	}
	return "the default; choose another with --data"
}

// checkMaxBody refuses a limits.max_body that Badger's store cannot hold,
// before the store is opened, so that --check-config finds it too. In
// memory there is no such limit; a NATS store's depends on its servers,
// and relay.New checks it once connected.
func checkMaxBody(cmd string, cfg *config.Config, configPath string) error {
	if cfg.Store != nil || cfg.InMemory {
		return nil
	}
	if err := cfg.CheckMaxBody(badgerstore.BodyLimit()); err != nil {
		// The key only exists in the file: name it there.
		key, rest, _ := strings.Cut(err.Error(), ": ")
		return usageErrorf("%s: %s in %s: %s", cmd, key, configPath, rest)
	}
	return nil
}

// checkReserve refuses a limits.min_free_disk that Badger's store would
// refuse at open, so --check-config finds it and the error names the key
// rather than the store's internals. The key only exists in the file.
func checkReserve(cmd string, cfg *config.Config, configPath string) error {
	if cfg.Store != nil || cfg.InMemory || cfg.Limits.MinFreeDisk <= 0 {
		return nil
	}
	if floor := badgerstore.ReserveFloor(); cfg.Limits.MinFreeDisk < floor {
		return usageErrorf("%s: limits.min_free_disk in %s: %s is below the store's floor of %s (a flush of every memtable and a value log file); raise it or leave it out",
			cmd, configPath, units.FormatSize(cfg.Limits.MinFreeDisk), units.FormatSize(floor))
	}
	return nil
}
