package loadgen

import (
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/oklog/ulid/v2"

	"github.com/sidehook/sidehook/internal/event"
)

// DefaultBodySize is the size of a benchmark webhook body: Webio's own
// payloads are 250–400 bytes, with a long message text about a kilobyte.
const DefaultBodySize = 1024

// filler is the text that pads a message body to size: plain ASCII with
// nothing to escape, so the body can be cut anywhere.
const filler = "Hi, can I pay my balance this Friday instead? I get paid on Thursday and " +
	"would rather not miss the arrangement again, so please move the payment of 50.00 GBP " +
	"to the 27th and send me a reminder the day before. Thanks, Jane. "

// payloadEpoch dates the payloads: fixed, so a body depends on n alone.
var payloadEpoch = time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC)

// WebhookBody returns Webio's inboundMessage payload number n (its ids and
// date derive from n, so bodies differ), its message text padded so the
// whole body is size bytes, or as short as it can be when size is smaller.
func WebhookBody(n int64, size int) []byte {
	if n < 0 {
		n = -n
	}
	date := payloadEpoch.Add(time.Duration(n) * time.Millisecond).Format("2006-01-02 15:04:05.000")
	head := `{"type":"inboundMessage","conversationId":"` + strconv.FormatInt(90000+n%100000, 10) +
		`","communicationActionId":"` + strconv.FormatInt(3000000+n, 10) +
		`","outboundChannelAddress":"447700900123","inboundChannelAddress":"447860064712",` +
		`"customerUID":"ACC-10023","body":"`
	tail := `","dateCreated":"` + date + `"}`
	text := size - len(head) - len(tail)
	b := make([]byte, 0, max(size, len(head)+len(tail)+1))
	b = append(b, head...)
	if text < 1 {
		text = 1
	}
	for text > 0 {
		k := min(text, len(filler))
		b = append(b, filler[:k]...)
		text -= k
	}
	return append(b, tail...)
}

// BodyHash is the jwt sha256 claim of SPEC §3: base64url (unpadded)
// SHA-256 of the exact body bytes.
func BodyHash(b []byte) string {
	sum := sha256.Sum256(b)
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// JWTSigner mints the per-request HS256 JWT of SPEC §3's jwt scheme.
type JWTSigner struct {
	Secret   []byte        // at least 32 bytes
	Issuer   string        // iss; "sidehook" when empty
	Org      string        // sub
	Endpoint string        // aud
	TTL      time.Duration // exp = iat + TTL; 5 minutes when zero
}

// jwtClaims are SPEC §3's jwt claims.
type jwtClaims struct {
	jwt.RegisteredClaims
	Evt    string `json:"evt"`
	Wid    string `json:"wid"`
	SHA256 string `json:"sha256"`
}

// Sign returns a token for one request: a fresh jti, the event type, the
// webhook-id and the body's hash.
func (s JWTSigner) Sign(body []byte, eventType, webhookID string, now time.Time) (string, error) {
	if len(s.Secret) < 32 {
		return "", errors.New("loadgen: jwt secret must be at least 32 bytes")
	}
	iss := s.Issuer
	if iss == "" {
		iss = "sidehook"
	}
	ttl := s.TTL
	if ttl <= 0 {
		ttl = 5 * time.Minute
	}
	c := jwtClaims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    iss,
			Subject:   s.Org,
			IssuedAt:  jwt.NewNumericDate(now),
			NotBefore: jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(now.Add(ttl)),
			ID:        ulid.Make().String(),
		},
		Evt:    eventType,
		Wid:    webhookID,
		SHA256: BodyHash(body),
	}
	if s.Endpoint != "" {
		c.Audience = jwt.ClaimStrings{s.Endpoint}
	}
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString(s.Secret)
	if err != nil {
		return "", fmt.Errorf("loadgen: sign jwt: %w", err)
	}
	return tok, nil
}

// DeliveryRequest is webhook n as a relay delivers it (SPEC §3): a POST
// of an inboundMessage body of bodySize bytes to path, with a fresh
// webhook-id and, when signer is not nil, its own Bearer JWT.
func DeliveryRequest(path string, n int64, bodySize int, signer *JWTSigner, now time.Time) (Request, error) {
	body := WebhookBody(n, bodySize)
	id := event.NewEventID()
	h := http.Header{
		"Content-Type":      {"application/json"},
		"Webhook-Id":        {id},
		"Webhook-Timestamp": {strconv.FormatInt(now.Unix(), 10)},
		"Sidehook-Event":    {string(event.InboundMessage)},
		"Sidehook-Attempt":  {"1"},
		"User-Agent":        {"sidehook-loadgen"},
	}
	if signer != nil {
		tok, err := signer.Sign(body, string(event.InboundMessage), id, now)
		if err != nil {
			return Request{}, err
		}
		h["Authorization"] = []string{"Bearer " + tok}
	}
	return Request{Method: http.MethodPost, Path: path, Header: h, Body: body, ID: id}, nil
}

// IngestPath is the relay's ingest API (SPEC §4).
const IngestPath = "/v1/events"

// IngestRequest is an event as a producer posts it to a relay: POST
// /v1/events with the API key, the event type in sidehook-event and body
// (a WebhookBody, which may be shared with other requests: it is only
// read). The relay assigns the id (read it from the 202 answer).
func IngestRequest(apiKey string, body []byte) Request {
	return Request{
		Method: http.MethodPost,
		Path:   IngestPath,
		Header: http.Header{
			"Authorization":  {"Bearer " + apiKey},
			"Content-Type":   {"application/json"},
			"Sidehook-Event": {string(event.InboundMessage)},
			"User-Agent":     {"sidehook-loadgen"},
		},
		Body: body,
	}
}

// IngestAnswer is the part of the relay's 202 answer the benchmark reads.
type IngestAnswer struct {
	ID         string `json:"id"`
	Deliveries []struct {
		ID       string `json:"id"`
		Endpoint string `json:"endpoint"`
	} `json:"deliveries"`
}
