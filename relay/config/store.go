package config

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/sidehook/sidehook/internal/units"
)

// Store is where a relay keeps its data when not in the embedded store:
// NATS JetStream, shared by every relay that names the same servers and
// prefix (SPEC §9).
type Store struct {
	Servers     []string // nats:// or tls:// URLs; any one is enough to join; none when --store gives them
	Credentials string   // a NATS .creds file, or ""
	Token       string   // a NATS token, or ""
	TLSCA       string   // a PEM file of CAs that verify the servers, or ""
	Replicas    int      // 1 or 3
	Prefix      string   // names the stream, bucket and subjects; "" for the store's default
	// AckWait is how long a lease lasts without a heartbeat before another
	// relay takes the delivery; 0 for the store's default (30s). Every
	// relay sharing the store must use the same.
	AckWait time.Duration
}

// RawStore is the store section as written.
type RawStore struct {
	Servers     []string `yaml:"servers"`
	Credentials string   `yaml:"credentials"`
	Token       string   `yaml:"token"`
	TLSCA       string   `yaml:"tls_ca"`
	Replicas    *int     `yaml:"replicas"`
	Prefix      string   `yaml:"prefix"`
	AckWait     string   `yaml:"ack_wait"`
}

// Bounds of store.ack_wait.
const (
	minAckWait = time.Second
	maxAckWait = time.Hour
)

var storePrefix = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// reservedPrefix is the first subject token of what relays sharing a
// store send each other (relay/natstunnel), never a store's prefix.
const reservedPrefix = "_sidehook"

// ParseStoreServers reads the value of --store: comma-separated NATS URLs.
func ParseStoreServers(s string) ([]string, error) {
	var servers []string
	for i, u := range strings.Split(s, ",") {
		u = strings.TrimSpace(u)
		if err := validNATSURL(u); err != nil {
			return nil, fmt.Errorf("server %d: %w", i+1, err)
		}
		servers = append(servers, u)
	}
	return servers, nil
}

func validNATSURL(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("not a NATS URL like nats://host:4222")
	}
	if u.User != nil {
		return fmt.Errorf("%q: put credentials in store.token or store.credentials, not in the URL", u.Redacted())
	}
	if (u.Scheme != "nats" && u.Scheme != "tls") || u.Hostname() == "" ||
		(u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("%q is not a NATS URL like nats://host:4222", s)
	}
	if p := u.Port(); p != "" {
		if n, ok := units.ParsePort(p); !ok || n == 0 {
			return fmt.Errorf("%q: port %s is not between 1 and 65535", s, p)
		}
	}
	return nil
}

func (rs RawStore) validate(key string, getenv Getenv) (*Store, error) {
	s := &Store{Credentials: rs.Credentials, TLSCA: rs.TLSCA, Replicas: 1, Prefix: rs.Prefix}
	for i, u := range rs.Servers {
		if err := validNATSURL(u); err != nil {
			return nil, fmt.Errorf("%s.servers[%d]: %w", key, i, err)
		}
		s.Servers = append(s.Servers, u)
	}
	if rs.Token != "" {
		v, err := secret(key+".token", rs.Token, getenv)
		if err != nil {
			return nil, err
		}
		s.Token = v
	}
	if s.Token != "" && s.Credentials != "" {
		return nil, fmt.Errorf("%s: token and credentials are two ways to authenticate: give one", key)
	}
	for _, file := range []struct{ name, path string }{{"credentials", s.Credentials}, {"tls_ca", s.TLSCA}} {
		if file.path == "" {
			continue
		}
		if err := regularFile(file.path); err != nil {
			return nil, fmt.Errorf("%s.%s: %w", key, file.name, err)
		}
	}
	if rs.Replicas != nil {
		if *rs.Replicas != 1 && *rs.Replicas != 3 {
			return nil, fmt.Errorf("%s.replicas: %d: want 1 or 3", key, *rs.Replicas)
		}
		s.Replicas = *rs.Replicas
	}
	if s.Prefix != "" && !storePrefix.MatchString(s.Prefix) {
		return nil, fmt.Errorf("%s.prefix: %q: use 1 to 64 of letters, digits, '_' and '-'", key, s.Prefix)
	}
	// The relays talk over core NATS under _sidehook.PREFIX.>, and the
	// store's stream captures PREFIX.>: with this prefix it would capture
	// (and answer, with its acks) every deployment's tunnel requests.
	if s.Prefix == reservedPrefix {
		return nil, fmt.Errorf("%s.prefix: %q is reserved for the messages relays send each other; choose another", key, s.Prefix)
	}
	if rs.AckWait != "" {
		d, err := units.ParseDuration(rs.AckWait)
		if err != nil || d < minAckWait || d > maxAckWait {
			return nil, fmt.Errorf("%s.ack_wait: %q is not a duration between %s and %s", key, rs.AckWait, minAckWait, maxAckWait)
		}
		s.AckWait = d
	}
	return s, nil
}

// regularFile checks that path names a readable file, with an error that
// says what is wrong in the user's words.
func regularFile(path string) error {
	fi, err := os.Stat(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return fmt.Errorf("%s: no such file", path)
	case err != nil:
		return fmt.Errorf("%s: %w", path, errors.Unwrap(err))
	case fi.IsDir():
		return fmt.Errorf("%s: is a directory, want a file", path)
	}
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("%s: cannot read: %w", path, errors.Unwrap(err))
	}
	return f.Close()
}
