// Package natsstore keeps the relay's store (relay.Store) in NATS
// JetStream, so that any number of relays share one set of events,
// deliveries, endpoints, keys and tokens.
//
// # Layout
//
// One stream, named by the prefix P (default "sidehook"), holds every record
// of the data path under subjects P.>, with at most one message per subject:
// a subject is a key, its last message the value (what a JetStream KV bucket
// is, without the bucket's own stream). Keeping them in one stream is what
// lets Accept write an event, its deliveries, their list indexes and their
// work items as one JetStream atomic batch: all or nothing, acknowledged
// once, after replication when Replicas is 3. One batch holds at most 1000
// records (the servers' default): the body's records, the event's index,
// and three for each waiting delivery. So an event with a small body has
// at most 332 deliveries (endpoints); Accept refuses more with
// relay.ErrTooLarge (a 413) saying how many this body leaves room for.
// Split over several batches, an event would no longer appear whole or
// not at all.
//
//	P.e.{org}.{event}             event record (meta JSON + body bytes)
//	P.eb.{org}.{event}.{n}        the rest of a body above the max payload
//	P.ei.{org}.{ns}{event}        event list index, empty
//	P.d.{org}.{delivery}          delivery state and attempts (JSON)
//	P.di.{org}.{ns}{delivery}     delivery list index, empty
//	P.q.{org}.{endpoint}.{deliv}  work item of a waiting delivery, empty
//	P.o.{org}.{endpoint}.{deliv}  the same for an ordered delivery
//	P.r.{org}.{endpoint}.{ns}{deliv}  retry item: a delivery waiting until {ns}
//	P.lk.{org}.{endpoint}         head lock of an ordered endpoint
//
// Tokens that are not plain [A-Za-z0-9_-] are written "=" + base64url, and
// {ns} is 16 hex digits of unix nanoseconds, so subject order is time order.
// Endpoint documents, disabled marks, Webio tokens and signing keys live in
// the KV bucket P_ctl, so every relay serves the same JWKS and token;
// CreateSigningKey is a KV Create, so the first relay to write wins.
// WatchControl watches the bucket, so each relay reloads what another
// changed (an endpoint, a token, a rotated key) without a restart. The
// bucket also keeps, per endpoint of a configuration file, a hash of what
// the last relay to start read there (RecordFileEndpoint), for the next to
// warn when its own file differs.
//
// Records are read at the leader of their stream, never by a direct get,
// which any replica may answer from a copy that lags: a relay reads what it
// has just written (a freed head lock, a new delivery), and a producer can
// read the event it was just answered 202 for.
//
// Open creates the stream and bucket, or updates them to this store's
// settings; it never lowers their replicas (a relay asking for fewer is
// refused with what to set), so one relay started with the default of 1
// cannot drop the copies the others count on. The first relay to run
// under a prefix warns when relays run on the same NATS under another:
// relays given different prefixes share nothing.
//
// # Work and leases
//
// Each endpoint has a durable pull consumer over its (unordered) work
// items, and it holds only deliveries that are due, or were when written:
// new ones, and retries whose time has come. Take fetches at most the n it
// may lease, reads each delivery's state and leases it: a leased message
// stays unacknowledged (the consumer gives it to no other relay) and this
// store sends in-progress heartbeats every AckWait/3 while it holds it. A
// relay that dies stops the heartbeats, and after AckWait the consumer
// offers the delivery to another relay. Record writes the new state and
// then acknowledges and deletes the work item. The server acknowledges a
// write before it tells the consumer of it (another of its goroutines
// does, a moment later), and a no-wait fetch from a consumer that knows
// of no message comes back empty at once; so a Take whose fetch comes
// back short of a work item this store wrote (Accept, a retry it moved,
// Requeue, Expedite) asks the consumer until it knows of it, for at most
// a second, and fetches again.
//
// A delivery that waits (failed, requeued during its attempt, or accepted
// due later than the Take's now) leaves the consumer: a retry item named
// by its due time is written, then its state, a generation newer, naming
// it (so the old work item, acknowledged and deleted next, is stale if it
// survives a crash; a Take drops a stale item). Take first lists the
// endpoint's retry items (subjects only: their names say when each is
// due, against the caller's now) and moves each due one back, in due
// order, as a work item of the state's generation written only if the
// work subject is empty, so of two relays only one moves it (an item of
// a newer generation there, a Requeue's since, stays); then the
// retry item is deleted, and the lease that follows clears the state's
// mark. A retry item is deleted as stale only below the revision of a
// state that does not name it, so one written just before its state is
// never taken for stale. These are single records, not atomic batches:
// on one replica the server makes a file store for each batch, and a
// batch costs it far more than the records. Between listings a store
// keeps the earliest due time it knows, lowered by every retry item any
// relay writes (a plain subscription on P.r.>), and lists again when that
// time comes, or after AckWait at the latest. So a Take reads only what
// it leases, however many deliveries wait, and the earliest retry due is
// its next. Requeue and Expedite write a new work item (a newer
// generation) in the same batch as the state, so they take effect at once
// on every relay; the retry item they leave is stale. (The server's
// delayed messages, Nats-Schedule, would move retries by the real clock;
// Take decides by the caller's now, so the store moves them.)
//
// Take leases in the consumer's order: acceptance order for new
// deliveries, and the order of their move for retries (moved in due order
// when due), which is due order when deliveries are accepted due, as the
// relay accepts them; what one Take reads is leased in due order.
//
// Ordered deliveries have no consumer: a consumer offers messages in
// stream order, which is acceptance order, and FIFO is by creation. Take
// lists the endpoint's ordered work items, finds the head (first by
// creation, then id) and, when it is due, writes the endpoint's head lock
// and the delivery's lease as one compare-and-set batch. The lock lasts
// AckWait and the holder renews it with the heartbeats; Record frees it in
// the same batch as the state. So one relay at a time attempts the head,
// and a failed head stays the head: FIFO across relays.
//
// What holds across relays:
//   - each attempt is made by one relay (one consumer lease, or the lock);
//   - every attempt made is on the delivery's record: Record adds its
//     relay's new attempts to those stored, so a relay whose lease lapsed
//     mid-attempt and the one that retook the delivery both keep theirs;
//   - a lease that lapsed and was retaken is the retaker's: the
//     delivery's state names the store holding its lease, as the head
//     lock does, and a Release by the relay whose lease lapsed leaves the
//     state and the work item the other now holds as they are; its
//     Record of an attempt that did not end the delivery adds the
//     attempt and leaves the lease, its requeue mark and its item too;
//     its heartbeat renews only a lease the state (or the head lock)
//     still names it the holder of, and warns once when it finds one
//     retaken;
//   - a delivered outcome stands: whichever relay records it, a later
//     outcome of the other (failed, dead) adds its attempt and leaves
//     the delivery delivered, and the other's end of its lease (Record
//     or Release) frees the head lock it holds. Each attempt keeps the
//     number its request carried, so two attempts may share one;
//   - ordered endpoints are FIFO across relays, as above;
//   - max_in_flight is a total across relays: the relay's dispatcher tells
//     the store each endpoint's value (SetMaxInFlight, an optional
//     interface) and it is the MaxAckPending of the endpoint's consumer,
//     so all relays together hold at most max_in_flight leases of it. A
//     waiting retry holds no slot: it is outside the consumer. A Take asks
//     the consumer how many slots are free before it fetches (a pull past
//     them would wait for one; another relay's fetch in between can still
//     make it wait, up to a second); when other relays hold them all, it
//     pulls for at most fullPoll, which takes what the server redelivers
//     (a dead relay's leases, still counted as held), and its next is
//     shortly after now. A new value (an API PUT) updates the consumer at
//     the next Take of the relay told it; relays told different values
//     leave the last one's. A relay that dies holds its slots until
//     AckWait; then the others retake its deliveries even if it held every
//     slot. (An ordered endpoint's head lock allows one attempt in all.)
//   - rate is each relay's share, not a total: every relay runs its own
//     rate limiter, so N relays make up to N × rate attempts a second on
//     one endpoint. To hold an endpoint to a total rate, set rate to the
//     total divided by the number of relays;
//   - AckWait (Config.AckWait, store.ack_wait) must be the same on every
//     relay: it is the consumers' ack wait, the lease and lock lifetime,
//     and the heartbeat period's base. The running relays keep theirs in
//     the control bucket (relays.ack_wait), and a relay asking for another
//     refuses to start; to change it, stop them all;
//   - idempotency by webhook-id: the event subject is written with an
//     expected last subject sequence of 0 and the message id org/id, so the
//     second Accept of an id, on any relay, fails and reads the first.
//
// An ordered endpoint's Take lists its waiting items and reads each one's
// state to find the head. Take runs once at a time per endpoint in one
// store.
//
// # Waking other relays
//
// Wake returns a channel of endpoints that may have new due work: it hears
// every work item written by any relay (plain NATS subscriptions on
// P.q.> and P.o.>) and, four times each AckWait, names each endpoint it
// has seen, so a retry written by a relay that then died, or a lease it
// held, is found again within AckWait/4 of coming due. A Release, which
// writes nothing the others hear, tells them on _sidehook.P.back.{org}.{endpoint}
// (plain NATS, never stored), so that a stop's cut-short attempts are
// taken at once. The dispatcher reads it through an optional interface
// (a type assertion on the store).
//
// # The change feed
//
// ShareChanges and HearChanges carry each relay's changes (accepted
// events, attempts, retries, ended deliveries: what its change hub
// publishes) to the other relays, so that every relay's dashboard and
// Subscribe tell of all of them (SPEC §9). They are plain NATS messages
// on _sidehook.P.feed.{store id}, never stored: nothing needs them after
// the moment, and a publish never waits on the server. A store hears the
// messages of every other store of its prefix, in the order each shared
// them, and not its own. The relay decides what a message holds.
//
// # Retention
//
// Purge deletes events received before the cutoff whose deliveries are all
// final, with their deliveries, indexes and work items (a final delivery
// has no retry item; a stale one is deleted when a Take lists it). It
// deletes each delivery's state only up to the revision it read, and
// leaves the event when one changed since (a Requeue on any relay), so an
// acknowledged Requeue is never purged. Each delivery's list index goes
// just before its state, since only the state names it: a purge cut short
// or stopped leaves no index a later one cannot find. A Requeue of a
// final delivery writes its index again, after the state, so a purge
// that read the state final keeps it. The stream has no MaxAge: an event
// that still waits must never expire.
package natsstore
