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
// once, after replication when Replicas is 3.
//
//	P.e.{org}.{event}             event record (meta JSON + body bytes)
//	P.eb.{org}.{event}.{n}        the rest of a body above the max payload
//	P.ei.{org}.{ns}{event}        event list index, empty
//	P.d.{org}.{delivery}          delivery state and attempts (JSON)
//	P.di.{org}.{ns}{delivery}     delivery list index, empty
//	P.q.{org}.{endpoint}.{deliv}  work item of a waiting delivery, empty
//	P.o.{org}.{endpoint}.{deliv}  the same for an ordered delivery
//	P.lk.{org}.{endpoint}         head lock of an ordered endpoint
//
// Tokens that are not plain [A-Za-z0-9_-] are written "=" + base64url, and
// {ns} is 16 hex digits of unix nanoseconds, so subject order is time order.
// Endpoint documents, disabled marks, Webio tokens and signing keys live in
// the KV bucket P_ctl, so every relay serves the same JWKS and token;
// CreateSigningKey is a KV Create, so the first relay to write wins.
//
// Open creates the stream and bucket, or updates them to this store's
// settings; it never lowers their replicas (a relay asking for fewer is
// refused with what to set), so one relay started with the default of 1
// cannot drop the copies the others count on.
//
// # Work and leases
//
// Each endpoint has a durable pull consumer over its (unordered) work
// items. Take fetches (no wait) what the consumer offers, reads each
// delivery's state, and leases those due at the caller's now: a leased
// message stays unacknowledged (the consumer gives it to no other relay)
// and this store sends in-progress heartbeats every AckWait/3 while it
// holds it. A relay that dies stops the heartbeats, and after AckWait the
// consumer offers the delivery to another relay. Record writes the new
// state and then acknowledges and deletes the work item (delivered, dead)
// or gives it back (failed). A Requeue during a lease is a mark on the
// state that the lease's end applies.
//
// A work item that is not due is given back with a Nak delayed until its
// NextAttemptAt by the real clock, so Takes in between do not read it; the
// consumer's delivery count is unlimited and the state's NextAttemptAt,
// against the caller's now, decides, so a redelivery never burns an
// attempt and no consumer BackOff is used. When the caller's now is not
// ahead of the real clock (the relay's case) that is exact; a caller whose
// clock runs ahead sees a delivery once the real clock reaches its due
// time. Requeue and Expedite write a new work item (a newer generation, in
// the state and the item's header, in the same batch) that replaces the
// hidden one, so they take effect at once on every relay; an older copy is
// never leased. The store that hid an item counts its due time in Take's
// next; other relays learn of it from Wake's tick.
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
//   - ordered endpoints are FIFO across relays, as above;
//   - max_in_flight and rate are each relay's share, not a total: every
//     relay's dispatcher asks Take for at most its own free slots (Take's
//     n) and runs its own rate limiter, so N relays make at most
//     N × max_in_flight concurrent attempts, and up to N × rate attempts a
//     second, on one endpoint. (An ordered endpoint is unaffected: its head
//     lock allows one attempt in all.) The consumers keep MaxAckPending
//     unlimited because a retry hidden by a delayed Nak stays pending on
//     the consumer: a limit there would let waiting retries hold every slot
//     and starve new deliveries until they fall due. To hold an endpoint to
//     a total, set max_in_flight and rate to the total divided by the
//     number of relays;
//   - idempotency by webhook-id: the event subject is written with an
//     expected last subject sequence of 0 and the message id org/id, so the
//     second Accept of an id, on any relay, fails and reads the first.
//
// Take reads every visible work item of the endpoint on each call (new
// ones, and those whose retry time has come by the real clock; an ordered
// endpoint's Take reads all its waiting items): it leases the
// due ones in due order and gives the rest back. Take runs once at a time
// per endpoint in one store; while one relay's Take reads, another relay's
// Take of the same endpoint sees fewer items and finds them on a later
// call (see Wake).
//
// # Waking other relays
//
// Wake returns a channel of endpoints that may have new due work: it hears
// every work item written by any relay (plain NATS subscriptions on
// P.q.> and P.o.>) and, every AckWait, names each endpoint it has seen, so a retry
// given back by a relay that then died is found again. The dispatcher reads
// it through an optional interface (a type assertion on the store).
//
// # Retention
//
// Purge deletes events received before the cutoff whose deliveries are all
// final, with their deliveries, indexes and work items. The stream has no
// MaxAge: an event that still waits must never expire.
package natsstore
