package natsstore

import "github.com/nats-io/nats.go"

// Conn is the store's NATS connection, for the parts of a relay that talk
// to the other relays sharing this store with plain NATS messages (the
// tunnels, relay/natstunnel). It stays the store's: Close closes it, so
// whoever uses it stops before the store closes.
func (s *Store) Conn() *nats.Conn { return s.nc }

// Prefix names this store's stream and bucket; relays sharing a store
// share it. The stream captures every subject under Prefix + ".", so
// messages that must not be stored go under another first token.
func (s *Store) Prefix() string { return s.cfg.Prefix }

// Token writes s as one subject token the way the store's own subjects do:
// plain [A-Za-z0-9_-] as is, anything else "=" + base64url, one to one.
func Token(s string) string { return tok(s) }
