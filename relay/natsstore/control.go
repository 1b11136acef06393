package natsstore

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sidehook/sidehook/relay"
)

// kvGet reads a control key, or nil when it is absent. Like get, it asks
// the bucket's leader: the bucket's own Get is a direct get, which a
// lagging follower may answer. A bucket is a stream KV_{bucket} with a
// subject $KV.{bucket}.{key} per key, and a delete or purge is a record
// marked by its KV-Operation header.
func (s *Store) kvGet(ctx context.Context, key string) ([]byte, error) {
	if err := s.ready(); err != nil {
		return nil, err
	}
	ctx, cancel := s.bound(ctx, opTimeout)
	defer cancel()
	bucket := s.ctl.Bucket()
	m, err := s.leader.GetLastMsg("KV_"+bucket, "$KV."+bucket+"."+key, nats.Context(ctx))
	if errors.Is(err, nats.ErrMsgNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", key, unavailable(err))
	}
	if op := m.Header.Get("KV-Operation"); op == "DEL" || op == "PURGE" {
		return nil, nil
	}
	return m.Data, nil
}

func (s *Store) kvPut(ctx context.Context, key string, v []byte) error {
	if err := s.ready(); err != nil {
		return err
	}
	ctx, cancel := s.writeCtx(ctx)
	defer cancel()
	if _, err := s.ctl.Put(ctx, key, v); err != nil {
		return fmt.Errorf("write %s: %w", key, err)
	}
	return nil
}

func (s *Store) kvDelete(ctx context.Context, key string) error {
	if err := s.ready(); err != nil {
		return err
	}
	ctx, cancel := s.writeCtx(ctx)
	defer cancel()
	if err := s.ctl.Purge(ctx, key); err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
		return fmt.Errorf("delete %s: %w", key, err)
	}
	return nil
}

// kvKeys lists the live keys matching a filter.
func (s *Store) kvKeys(ctx context.Context, filter string) ([]string, error) {
	if err := s.ready(); err != nil {
		return nil, err
	}
	l, err := s.ctl.ListKeysFiltered(ctx, filter)
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", filter, err)
	}
	var keys []string
	for k := range l.Keys() {
		keys = append(keys, k)
	}
	return keys, nil
}

// Endpoints returns an organisation's API endpoints and disabled marks.
func (s *Store) Endpoints(ctx context.Context, org string) ([]relay.StoredEndpoint, error) {
	byID := map[string]*relay.StoredEndpoint{}
	var order []string
	for _, pfx := range []string{"ep.", "dis."} {
		keys, err := s.kvKeys(ctx, pfx+tok(org)+".*")
		if err != nil {
			return nil, fmt.Errorf("endpoints: %w", err)
		}
		for _, k := range keys {
			id, err := untok(k[strings.LastIndexByte(k, '.')+1:])
			if err != nil {
				continue
			}
			v, err := s.kvGet(ctx, k)
			if err != nil {
				return nil, fmt.Errorf("endpoints: %w", err)
			}
			if v == nil {
				continue
			}
			e := byID[id]
			if e == nil {
				e = &relay.StoredEndpoint{ID: id}
				byID[id] = e
				order = append(order, id)
			}
			if pfx == "ep." {
				e.Doc = v
			} else {
				e.Disabled = string(v)
			}
		}
	}
	out := make([]relay.StoredEndpoint, 0, len(order))
	for _, id := range order {
		out = append(out, *byID[id])
	}
	return out, nil
}

// PutEndpoint stores an API endpoint and clears its disabled mark.
func (s *Store) PutEndpoint(ctx context.Context, org, id string, doc []byte) error {
	if err := s.kvPut(ctx, endpointKey(org, id), doc); err != nil {
		return fmt.Errorf("put endpoint: %w", err)
	}
	if err := s.kvDelete(ctx, disabledKey(org, id)); err != nil {
		return fmt.Errorf("put endpoint: %w", err)
	}
	return nil
}

// SetDisabled marks an endpoint disabled, or clears the mark.
func (s *Store) SetDisabled(ctx context.Context, org, id, reason string) error {
	var err error
	if reason == "" {
		err = s.kvDelete(ctx, disabledKey(org, id))
	} else {
		err = s.kvPut(ctx, disabledKey(org, id), []byte(reason))
	}
	if err != nil {
		return fmt.Errorf("set disabled: %w", err)
	}
	return nil
}

// DeleteEndpoint removes an API endpoint and its mark, then ends its
// waiting deliveries with reason (EndWaiting).
func (s *Store) DeleteEndpoint(ctx context.Context, org, id, reason string, ended func([]*relay.Delivery)) error {
	if err := s.kvDelete(ctx, endpointKey(org, id)); err != nil {
		return fmt.Errorf("delete endpoint: %w", err)
	}
	if err := s.kvDelete(ctx, disabledKey(org, id)); err != nil {
		return fmt.Errorf("delete endpoint: %w", err)
	}
	if _, err := s.EndWaiting(ctx, relay.EndpointRef{Org: org, Endpoint: id}, reason, ended); err != nil {
		return fmt.Errorf("delete endpoint: %w", err)
	}
	return nil
}

// EndWaiting makes every delivery with a work or retry item of the
// endpoint dead with reason, each by a compare-and-set of its state,
// leased ones included (their lease's end then finds the state dead and
// keeps it so, see Record); then it deletes the endpoint's consumer, the
// items it listed and the head lock. Cut short between the two, the items
// left name final deliveries: a Take drops them, and a later call deletes
// them. ended is told of each delivery once its state is written.
func (s *Store) EndWaiting(ctx context.Context, ref relay.EndpointRef, reason string, ended func([]*relay.Delivery)) (int, error) {
	ctx, cancel := s.writeCtx(ctx)
	defer cancel()
	var subs []string
	for _, filter := range []string{s.subj.workOf(ref.Org, ref.Endpoint, false), s.subj.workOf(ref.Org, ref.Endpoint, true),
		s.subj.retryOf(ref.Org, ref.Endpoint)} {
		more, err := s.list(ctx, filter)
		if err != nil {
			return 0, fmt.Errorf("end waiting: %w", err)
		}
		subs = append(subs, more...)
	}
	seen := map[string]bool{}
	n := 0
	for _, subj := range subs {
		_, _, id, err := s.subj.parseWork(subj)
		if err != nil {
			if _, _, _, id, err = s.subj.parseRetry(subj); err != nil {
				continue
			}
		}
		if seen[id] {
			continue
		}
		seen[id] = true
		d, err := s.endOne(ctx, ref, id, reason)
		if err != nil {
			return n, fmt.Errorf("end waiting: %w", err)
		}
		if d != nil {
			n++
			if ended != nil {
				ended([]*relay.Delivery{d})
			}
		}
	}
	err := s.js.DeleteConsumer(ctx, s.cfg.Prefix, s.consumerName(ref))
	if err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
		return n, fmt.Errorf("end waiting: %w", err)
	}
	s.dropConsumer(ref)
	if err := s.remove(ctx, append(subs, s.subj.lock(ref.Org, ref.Endpoint))...); err != nil {
		return n, fmt.Errorf("end waiting: %w", err)
	}
	s.forgetRetries(ref)
	return n, nil
}

// endOne makes one waiting delivery of ref dead with reason and returns
// it as stored, or nil when it did not (final already, or another
// endpoint's).
func (s *Store) endOne(ctx context.Context, ref relay.EndpointRef, id, reason string) (*relay.Delivery, error) {
	for {
		st, rev, err := s.state(ctx, ref.Org, id)
		if errors.Is(err, relay.ErrNotFound) {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		if relay.Final(st.Status) || st.Endpoint != ref.Endpoint {
			return nil, nil
		}
		st.Status, st.NextAttemptAt, st.Reason = relay.StatusDead, nil, reason
		st.Leased, st.Holder, st.RequeueAt, st.Retry = false, "", nil, false
		_, err = s.putState(ctx, st, rev)
		if casConflict(err) {
			continue // changed since read: read again
		}
		if err != nil {
			return nil, err
		}
		return st.out(), nil
	}
}

// Token returns an organisation's Webio token, "" when none.
func (s *Store) Token(ctx context.Context, org string) (string, error) {
	v, err := s.kvGet(ctx, tokenKey(org))
	if err != nil {
		return "", fmt.Errorf("token: %w", err)
	}
	return string(v), nil
}

// PutToken stores an organisation's Webio token.
func (s *Store) PutToken(ctx context.Context, org, token string) error {
	if err := s.kvPut(ctx, tokenKey(org), []byte(token)); err != nil {
		return fmt.Errorf("put token: %w", err)
	}
	return nil
}

// SigningKeys returns every signing key document by name.
func (s *Store) SigningKeys(ctx context.Context) (map[string][]byte, error) {
	keys, err := s.kvKeys(ctx, "key.*")
	if err != nil {
		return nil, fmt.Errorf("signing keys: %w", err)
	}
	out := map[string][]byte{}
	for _, k := range keys {
		name, err := untok(strings.TrimPrefix(k, "key."))
		if err != nil {
			continue
		}
		v, err := s.kvGet(ctx, k)
		if err != nil {
			return nil, fmt.Errorf("signing keys: %w", err)
		}
		if v != nil {
			out[name] = v
		}
	}
	return out, nil
}

// CreateSigningKey stores doc under name unless a key has that name (a KV
// Create: the first relay wins) and returns the stored one.
func (s *Store) CreateSigningKey(ctx context.Context, name string, doc []byte) ([]byte, error) {
	if err := s.ready(); err != nil {
		return nil, fmt.Errorf("create signing key: %w", err)
	}
	wctx, cancel := s.writeCtx(ctx)
	defer cancel()
	_, err := s.ctl.Create(wctx, signingKey(name), doc)
	if err == nil {
		return doc, nil
	}
	if !errors.Is(err, jetstream.ErrKeyExists) {
		return nil, fmt.Errorf("create signing key: %w", err)
	}
	v, err := s.kvGet(wctx, signingKey(name))
	if err != nil {
		return nil, fmt.Errorf("create signing key: %w", err)
	}
	if v == nil {
		return nil, fmt.Errorf("create signing key %s: deleted while created", name)
	}
	return v, nil
}

// PutSigningKey stores or replaces a key document.
func (s *Store) PutSigningKey(ctx context.Context, name string, doc []byte) error {
	if err := s.kvPut(ctx, signingKey(name), doc); err != nil {
		return fmt.Errorf("put signing key: %w", err)
	}
	return nil
}

// DeleteSigningKey removes a key document; missing is not an error.
func (s *Store) DeleteSigningKey(ctx context.Context, name string) error {
	if err := s.kvDelete(ctx, signingKey(name)); err != nil {
		return fmt.Errorf("delete signing key: %w", err)
	}
	return nil
}

// WatchControl sends, on changed, the organisation whose API endpoints,
// disabled marks or Webio token any relay sharing the store changed, and
// relay.SigningKeysChanged when a signing key was stored or deleted (a
// rotation), until ctx ends or the store is closed: each relay keeps them
// in memory (relay's controlWatcher). Once it has returned nil, the watch
// closes changed when it ends, so its reader can wait for it; Close
// stops it and waits for it before it closes the connection.
func (s *Store) WatchControl(ctx context.Context, changed chan<- string) error {
	if err := s.ready(); err != nil {
		return err
	}
	// Cancelled when the watch ends: nats.go waits for the watch's ctx in
	// a goroutine of its own, which would otherwise outlive Close.
	ctx, cancel := context.WithCancel(ctx)
	w, err := s.ctl.WatchFiltered(ctx, []string{"ep.>", "dis.>", "tok.*", "key.*"}, jetstream.UpdatesOnly())
	if err != nil {
		cancel()
		return fmt.Errorf("watch the control bucket: %w", err)
	}
	// Counted under mu, as Close sets closed before it waits: a watch
	// begun after Close is stopped here, not left running.
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		w.Stop()
		cancel()
		return fmt.Errorf("%w: store closed", relay.ErrUnavailable)
	}
	s.done.Add(1)
	s.mu.Unlock()
	go func() {
		defer s.done.Done()
		defer close(changed)
		defer cancel()
		// Stopped while the connection is open, so the server drops the
		// watch's consumer now, not after its inactive threshold.
		defer w.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-s.stop:
				return
			case e, ok := <-w.Updates():
				if !ok {
					return
				}
				if e == nil {
					continue // the end of the (empty) initial values
				}
				// ep.ORG.ID, dis.ORG.ID, tok.ORG, key.NAME
				parts := strings.Split(e.Key(), ".")
				if len(parts) < 2 {
					continue
				}
				what, err := untok(parts[1])
				if err != nil {
					continue
				}
				if parts[0] == "key" {
					what = relay.SigningKeysChanged
				}
				select {
				case changed <- what:
				case <-ctx.Done():
					return
				case <-s.stop:
					return
				}
			}
		}
	}()
	return nil
}
