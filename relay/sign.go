package relay

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/sidehook/sidehook/internal/auth"
	"github.com/sidehook/sidehook/relay/config"
)

// HeaderEvent is the delivery header naming the event type (SPEC §3); a
// tunnel client's --events filter is matched against it.
const HeaderEvent = "sidehook-event"

// HeaderTest marks an endpoint test's request (SPEC §4); a tunnel client
// prints such a delivery as a test, not as an attempt.
const HeaderTest = "sidehook-test"

// Delivery headers of SPEC §3.
const (
	hdrWebhookID = "webhook-id"
	hdrTimestamp = "webhook-timestamp"
	hdrEvent     = HeaderEvent
	hdrDelivery  = "sidehook-delivery"
	hdrAttempt   = "sidehook-attempt"
	hdrReplayOf  = "sidehook-replay-of"
	hdrTest      = HeaderTest
)

// outbound is one request to an endpoint, before it is signed.
type outbound struct {
	method      string
	url         string
	query       string // GET: the raw query appended to the URL
	body        []byte
	contentType string
	eventID     string
	eventType   string
	deliveryID  string
	attempt     int
	replayOf    string
	test        bool
}

// target is the URL with the query appended.
func (ob outbound) target() string { return appendQuery(ob.url, ob.query) }

// sentQuery is the raw query the request carries: the endpoint URL's own
// and the platform's together, as a receiver reads r.URL.RawQuery and
// checks a GET's sha256 claim against it.
func (ob outbound) sentQuery() string {
	_, q, _ := strings.Cut(ob.target(), "?")
	q, _, _ = strings.Cut(q, "#")
	return q
}

func appendQuery(u, q string) string {
	if q == "" {
		return u
	}
	for i := 0; i < len(u); i++ {
		if u[i] == '?' {
			return u + "&" + q
		}
	}
	return u + "?" + q
}

// signer builds the headers of requests to endpoints: the endpoint's own,
// those of SPEC §3, and its authentication with the organisation's keys.
type signer struct {
	keys      *keyring
	issuer    string
	userAgent string
}

// headers are the signed headers of one request at ts.
func (s *signer) headers(o *orgState, e config.Endpoint, ob outbound, ts time.Time) (http.Header, error) {
	h := s.plainHeaders(e, ob, ts)
	if err := auth.SignRequest(h, e.Auth, s.outboundKeys(o, e), auth.Outbound{
		Method: ob.method, WebhookID: ob.eventID, Event: ob.eventType, RawQuery: ob.sentQuery(), Body: ob.body, Timestamp: ts,
	}); err != nil {
		return nil, fmt.Errorf("sign: %w", err)
	}
	return h, nil
}

// plainHeaders are headers without the authentication.
func (s *signer) plainHeaders(e config.Endpoint, ob outbound, ts time.Time) http.Header {
	h := make(http.Header, 12)
	for k, v := range e.Headers {
		h.Set(k, v)
	}
	h.Set("User-Agent", s.userAgent)
	h.Set(hdrWebhookID, ob.eventID)
	h.Set(hdrTimestamp, strconv.FormatInt(ts.Unix(), 10))
	h.Set(hdrEvent, ob.eventType)
	h.Set(hdrDelivery, ob.deliveryID)
	h.Set(hdrAttempt, strconv.Itoa(ob.attempt))
	if ob.replayOf != "" {
		h.Set(hdrReplayOf, ob.replayOf)
	}
	if ob.test {
		h.Set(hdrTest, "true")
	}
	// An endpoint's own Content-Type (its headers, which the
	// configuration accepts) wins over the producer's: it is what that
	// receiver was set up to be sent.
	if ob.method != http.MethodGet && h.Get("Content-Type") == "" {
		ct := ob.contentType
		if ct == "" {
			ct = "application/json"
		}
		h.Set("Content-Type", ct)
	}
	return h
}

// outboundKeys are the keys an endpoint of o is signed with.
func (s *signer) outboundKeys(o *orgState, e config.Endpoint) auth.OutboundKeys {
	keys := auth.OutboundKeys{
		WebioToken: *o.token.Load(),
		Issuer:     s.issuer,
		Org:        o.id,
		Audience:   e.ID,
		JWT:        s.signingKey(o),
	}
	// Several during a rotation: each signature verifies with its secret.
	keys.Standard = o.cfg.StandardSecrets
	return keys
}

// signingKey is the key of the jwt scheme.
func (s *signer) signingKey(o *orgState) *auth.SigningKey {
	if o.cfg.JWTAlgorithm == auth.HS256 {
		return o.hmac
	}
	return s.keys.current(o.cfg.JWTAlgorithm)
}
