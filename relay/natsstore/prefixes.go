package natsstore

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// ctlSuffix ends the name of a prefix's control bucket.
const ctlSuffix = "_ctl"

// ctlBucket is the name of this store's control bucket.
func (s *Store) ctlBucket() string { return s.cfg.Prefix + ctlSuffix }

// prefixesTimeout bounds the look for other prefixes at Open: a warning
// is not worth a slow start.
const prefixesTimeout = 2 * time.Second

// warnOtherPrefixes warns when this relay is the only one running under
// its store.prefix (it claimed the shared ack wait, see agreeAckWait) and
// relays run on this NATS under another: relays meant to share the work
// but given different prefixes share nothing (an event one accepts is
// unknown to the others), and nothing else says so. Relays kept apart on
// purpose hear it only from the first of each prefix to start.
func (s *Store) warnOtherPrefixes(ctx context.Context) {
	if s.ackWaitRev == 0 {
		return // others run under this prefix: it is the one meant
	}
	ctx, cancel := context.WithTimeout(ctx, prefixesTimeout)
	defer cancel()
	others, err := s.livePrefixes(ctx)
	if err != nil {
		s.log.Debug().Err(err).Msg("look for relays under other store prefixes")
		return
	}
	if len(others) == 0 {
		return
	}
	s.log.Warn().Str("prefix", s.cfg.Prefix).Strs("other_prefixes", others).
		Msg("no other relay runs under this store.prefix, and relays run on this NATS under another: they share nothing with this one; if they are meant to share the work, give every relay the same store.prefix")
}

// livePrefixes lists the prefixes other than this store's whose control
// bucket a running relay rewrote its ack wait in (see sharedAckWait).
func (s *Store) livePrefixes(ctx context.Context) ([]string, error) {
	names := s.js.KeyValueStoreNames(ctx)
	var out []string
	for name := range names.Name() {
		prefix, ok := strings.CutSuffix(name, ctlSuffix)
		if !ok || prefix == s.cfg.Prefix {
			continue
		}
		if live, err := s.relaysRun(ctx, name); err != nil {
			return nil, err
		} else if live {
			out = append(out, prefix)
		}
	}
	if err := names.Error(); err != nil {
		return nil, fmt.Errorf("list key-value buckets: %w", err)
	}
	slices.Sort(out)
	return out, nil
}

// relaysRun reports whether a relay runs on the control bucket named.
func (s *Store) relaysRun(ctx context.Context, bucket string) (bool, error) {
	kv, err := s.js.KeyValue(ctx, bucket)
	if err != nil {
		return false, fmt.Errorf("open bucket %s: %w", bucket, err)
	}
	e, err := kv.Get(ctx, ackWaitKey)
	if err != nil {
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			return false, nil
		}
		return false, fmt.Errorf("read %s of %s: %w", ackWaitKey, bucket, err)
	}
	_, live := sharedAckWait(e)
	return live, nil
}
