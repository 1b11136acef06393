// Package natstunnel lets the tunnels of relays that share one NATS store
// (relay/natsstore) work as one: a tunnel client connected to relay A
// takes the deliveries, custom-value GETs and endpoint tests that relay B
// attempts, and GET /v1/tunnels lists the clients of every relay.
//
// [Server] wraps the relay's own tunnel server (relay/tunnel) and the
// store's NATS connection. It is a relay.TunnelServer:
//
//   - Send tries a local client first. When none takes the request, it
//     sends it as a NATS request to whichever relay holds the tunnel and
//     waits, within the endpoint's timeout, for that relay's answer. No
//     relay holding it is the local server's "no tunnel client connected"
//     error, so the retry rules see one relay.
//   - Serve serves the client locally. While a relay holds at least one
//     client of (org, name) it is subscribed, in a queue group, to the
//     name's subjects of the event types its clients take (their --events
//     filters, which the local server hands to onConnect; all of them when
//     one client has none), so exactly one holder that takes the event answers each
//     request, and a relay whose clients leave it out is never asked.
//     The subscriptions follow the clients as they come and go; the last
//     client going unsubscribes them all.
//   - Tunnels is the local list plus what the other relays last said of
//     theirs: each relay publishes its list every PresenceEvery and on
//     every connect and disconnect, and another relay believes it for
//     3 × PresenceEvery. So the list answers at once, and a relay that died
//     drops out of it after that time (at once when it closes).
//
// # Subjects
//
// Core NATS, never stored: the store's stream captures PREFIX.> only (a
// deployment must not use "_sidehook" as its prefix).
//
//	_sidehook.PREFIX.tun.{org}.{name}.{event}  a request to a tunnel's holder
//	_sidehook.PREFIX.tunnels                   a relay's list of tunnels (JSON)
//	_sidehook.PREFIX.tunnels.ask               a relay just started: tell your lists
//
// {event} is the request's sidehook-event header; a request without one
// (which any client takes) has "=", the token of "". A holder subscribes
// to {event} for each type its clients take, and "=", or to "*" when a
// client takes every type. {org}, {name} and {event} are written as the
// store writes subject tokens. An
// account limited by permissions needs publish and subscribe rights on
// _sidehook.PREFIX.> as well as the store's.
//
// # Wire format
//
// A request and its reply are each one message: a line of JSON metadata,
// a newline, then the body's bytes as they are (encoding/json never writes
// a raw newline). A request carries method, URL, headers, org, delivery id,
// attempt, what is left of the timeout and how much of the answer's body
// to keep; a reply carries status, headers, latency and the body, or an
// error text (flagged when the holder found no client). Both carry a
// version. A request that does not fit in the NATS max payload (1 MB by
// default) fails at once with an error saying so ([ErrTooLarge]); the
// relay retries it like any failed attempt, and an attempt made by the
// relay holding the tunnel does not cross NATS at all.
package natstunnel
