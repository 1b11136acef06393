package auth

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// OutboundKeys are what an organisation signs its deliveries with.
type OutboundKeys struct {
	WebioToken string      // the organisation's current token, sent as is
	JWT        *SigningKey // for scheme jwt
	Issuer     string      // jwt iss (DefaultIssuer when empty)
	Org        string      // jwt sub
	Audience   string      // jwt aud: the endpoint id
	Standard   [][]byte    // standard secrets; every one signs (rotation)
}

// Outbound describes the request being signed.
type Outbound struct {
	Method    string // POST when empty
	WebhookID string
	Event     string
	RawQuery  string // what a GET's sha256 claim covers
	Body      []byte
	Timestamp time.Time // this attempt's webhook-timestamp; now when zero
}

// SignRequest sets on h the authentication headers of every scheme listed:
// x-webio-token, Authorization: Bearer, webhook-signature. For standard it
// also sets webhook-id and webhook-timestamp, because the signature covers
// exactly those values. A scheme whose key is missing, or an unknown
// scheme, is an error naming it, and then h is left untouched.
func SignRequest(h http.Header, schemes []string, k OutboundKeys, o Outbound) error {
	ts := o.Timestamp
	if ts.IsZero() {
		ts = time.Now()
	}
	set := make(http.Header, 4)
	for _, scheme := range schemes {
		switch scheme {
		case SchemeWebioToken:
			if k.WebioToken == "" {
				return errors.New("auth: sign webio-token: the organisation has no webio token")
			}
			set.Set(HeaderWebioToken, k.WebioToken)
		case SchemeJWT:
			if k.JWT == nil {
				return errors.New("auth: sign jwt: no signing key")
			}
			covered := o.Body
			if strings.EqualFold(o.Method, http.MethodGet) {
				covered = []byte(o.RawQuery)
			}
			tok, err := SignAttempt(*k.JWT, AttemptClaims{
				Issuer: k.Issuer, Subject: k.Org, Audience: k.Audience,
				Event: o.Event, WebhookID: o.WebhookID, SHA256: BodyHash(covered),
				IssuedAt: ts,
			})
			if err != nil {
				return fmt.Errorf("auth: sign jwt: %w", err)
			}
			set.Set(HeaderAuthorization, "Bearer "+tok)
		case SchemeStandard:
			if len(k.Standard) == 0 {
				return errors.New("auth: sign standard: no standard secret")
			}
			if o.WebhookID == "" {
				return errors.New("auth: sign standard: no webhook id")
			}
			set.Set(HeaderWebhookID, o.WebhookID)
			set.Set(HeaderTimestamp, strconv.FormatInt(ts.Unix(), 10))
			set.Set(HeaderSignature, SignStandardMulti(k.Standard, o.WebhookID, ts, o.Body))
		default:
			return fmt.Errorf("auth: sign: unknown scheme %q", scheme)
		}
	}
	for name, v := range set {
		h[name] = v
	}
	return nil
}
