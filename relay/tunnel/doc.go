// Package tunnel carries the relay's deliveries to a developer's laptop
// (SPEC §8): [Server] is the relay's side, a [relay.TunnelServer] behind
// GET /v1/tunnel and the Transport of tunnel://NAME[/PATH] endpoints;
// [Client] is `sidehook tunnel`, which forwards each delivery to a local
// app with its exact bytes and headers and sends the app's answer back.
//
// # Wire protocol
//
// One websocket per client, opened by GET /v1/tunnel?name=NAME with the
// organisation's API key in Authorization: Bearer. Every data frame is one
// JSON text frame, a [Message] whose "type" says which fields it uses;
// [Decode] is the only reader of frames, on both sides.
//
//	client → relay  {"type":"hello","version":1,"events":["payment"],"max_message"}
//	relay → client  {"type":"ready","version":1,"org","name","events","max_message",
//	                 "public_url":"https://relay/in/ORG","jwks_url","client_id"}
//	relay → client  {"type":"delivery","id":7,"delivery_id","attempt","method",
//	                 "path","query","headers","body"(base64),"timeout_ms"}
//	client → relay  {"type":"result","id":7,"delivery_id","status","headers",
//	                 "body"(first 64 KiB, base64),"truncated","duration_ms","error"}
//	either way      {"type":"error","error":"what was wrong with your message"}
//
// "id" matches a result to its delivery: it is unique per connection,
// where delivery_id is not (an endpoint test or a replay reuses one, a
// custom-value GET goes through the same Send). A client written to SPEC
// §8, which names only delivery_id, is still understood: a result without
// an id goes to the one request in flight with its delivery_id, and one
// that names no single request is refused with an error message. A custom-value GET is a
// delivery with method GET and its query; the relay's Send waits for its
// result like any other, within the endpoint's timeout, so no separate
// request kind is needed. A result's headers are the app's up to
// MaxResultHeaders; past that, values are dropped and the result says so
// in a Sidehook-Headers-Dropped header, so a result always fits the
// relay's frame limit. A result with no status (only an error) means
// the local app gave no answer: Send reports it as an error, which the
// relay retries like a refused connection. A hello's max_message is the
// largest frame the client reads; a ready's is the largest delivery the
// relay sends (one with a body of its limits.max_body), which a client
// whose hello states none reads. An attempt whose delivery would not fit
// fails, the client is sent an error message with its delivery_id saying
// why, and the connection carries on. A hello with "probe":true gets
// its ready and the connection closes without taking deliveries
// (--print-secret).
//
// A malformed frame is answered with an error message and the connection
// carries on; a bad hello closes it with a policy-violation close frame
// whose reason says why.
//
// # Liveness
//
// Both ends ping with websocket control frames every PingInterval and push
// their read deadline on with every frame and pong they receive, so a peer
// that stops reading (a laptop asleep, a half-open TCP connection) is cut
// after PongWait, 25 s by default. On the relay, cutting a client fails
// its in-flight Sends at once, so the relay retries them, possibly on
// another client of the same name.
package tunnel
