// Package web is sidehook's live dashboard: the embedded page served at
// /_sidehook/ui/ by both the mock receiver and the relay, and the websocket
// hub at /_sidehook/ws that feeds it.
//
// web knows nothing of captures or deliveries. The receiver and the relay
// each turn what they store into an [Item] (Kind "capture" or "delivery",
// Data the object exactly as their own API returns it), call
// [Hub.Publish] after the write is durable, and mount [NewHandler] with a
// Recent function that reads their newest items.
//
// # Wire protocol
//
// The websocket at /_sidehook/ws only speaks; text frames from the browser
// are read (to see pongs and close frames) and ignored. A scope (one
// organisation on the relay) holds at most HubOptions.MaxViewers of them;
// one more handshake is answered 429. Every frame is one JSON object with
// a "type":
//
//	{"type":"snapshot","items":[Item, …]}   newest first, at most 200
//	{"type":"item","item":Item}             one publish
//	{"type":"dropped","count":n}            n publishes were not sent to you
//	{"type":"error","error":"…"}           the server could not do something
//	{"type":"cleared","time":t,"by":"…"}   every item was deleted at t
//
// A connection starts with a snapshot. Items follow as they are published;
// an item whose ID the page already holds is an update of it (a delivery
// moving from pending to delivered), so the page upserts by ID. The hub
// subscribes before it reads the snapshot, so an item may arrive both in the
// snapshot and right after it: upserting makes that harmless. A snapshot
// also says what the server no longer has (cleared, or lost with a server
// that kept it in memory and restarted): the page drops the items it holds
// that are newer than the snapshot's oldest and not in it, or, when the
// snapshot is shorter than SnapshotSize (the server's every item), all it
// lacks; not after an error message, whose snapshot lacks what could not
// be read. A cleared message ("by" is "delete" or "reset", see
// [Hub.Cleared]) says the same at once, to every open page: it forgets
// every item it holds and empties its detail pane; items that follow it
// came after the delete.
//
// A browser that cannot keep up never slows a publisher: once its buffer
// (HubOptions.ClientBuffer items) is full, further items for it are dropped
// and counted. When it has caught up it is sent {"type":"dropped"} and then
// a fresh snapshot, which the page merges into what it holds: the dropped
// updates are coalesced into the newest state of the newest 200 items.
// Every browser is told the same way when the server's own feed of the hub
// ([Feed]) fell behind what it commits and lost some of it.
//
// # Item data the page reads
//
// For a capture, Data is the capture JSON of SPEC §5 (headers, body,
// body_encoding, query, verdict, webhook_id, duplicate_of, and response:
// status, rule, fault, headers, body, duration_ms), shown in the detail
// pane; a sidehook-replay-of header marks the row as a replay.
// For a delivery, Data is the delivery JSON of SPEC §4 (id, event_id,
// endpoint, status, next_attempt_at, attempts[{n, at, status, latency_ms,
// error, response}]) plus what the page needs to show and copy the request:
// "body", "body_encoding" ("utf8" or "base64"), "headers" (lower-case keys,
// lists of values) and "url" (the endpoint URL the delivery goes to).
//
// Servers redact the headers in Data with [RedactHeaders] on their typed
// value before encoding it (web sends Data as it is, so no browser gets a
// secret whatever its script does), and put bodies in Data through
// [ItemBody], which cuts them to [MaxItemBody] so a snapshot stays small;
// a cut body is marked "body_preview": true beside "body_size" (the whole
// length), and the page then says so and neither edits nor copies it (a
// replay sends the whole body from the server's store). [Hub.Publish]
// encodes each item once and every viewer is sent the same frame.
//
// # Access
//
// Config.Authorize guards the page and the websocket (the scripts and the
// stylesheet are the binary's own files, carry no data, and are served to
// anyone so the sign-in form can be styled). Browsers
// cannot put headers on a page load or a websocket handshake, so a token is
// also taken from ?token= (on the first page load: it is moved into a
// SameSite=Strict cookie and the address is cleaned) and from that cookie,
// and handed to Authorize as "Authorization: Bearer <token>". The page sends
// the same token in an Authorization header on its own API calls (replay,
// retry).
//
// # Calls the page makes
//
// Both roles: POST to replay (the receiver answers with the target's own
// status, headers, body and duration, which the page shows coloured by
// that status) and, on the relay, retry. The receiver's page, and the
// tunnel inspector's, page back through older captures when the list is
// scrolled to the end (GET /_sidehook/requests?limit=100&cursor=…, the
// oldest id held, until the answer's next is null). The receiver's page
// also links the NDJSON and HAR exports, shows the rules in force (GET
// /_sidehook/rules) and deletes every capture on Clear (DELETE
// /_sidehook/requests). The relay's page pages back through older
// deliveries the same way by their creation time (GET
// /_sidehook/deliveries?before=…&limit=…).
package web
