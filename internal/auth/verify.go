package auth

import (
	"container/heap"
	"context"
	"crypto"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Verdict statuses.
const (
	StatusValid      = "valid"
	StatusInvalid    = "invalid"
	StatusUnverified = "unverified"
)

// DefaultMaxJTIs bounds the jti replay cache of a Verifier.
const DefaultMaxJTIs = 100_000

// maxTokenLen bounds a token before any parsing: ours are well under 2 KiB,
// and a larger one is only there to make the verifier work.
const maxTokenLen = 16 << 10

// The Header* names in canonical form, for http.Header.Get, which would
// otherwise canonicalise a lower-case name, allocating, on every request.
const (
	canonicalWebioToken    = "X-Webio-Token"
	canonicalAuthorization = "Authorization"
	canonicalWebhookID     = "Webhook-Id"
	canonicalTimestamp     = "Webhook-Timestamp"
	canonicalSignature     = "Webhook-Signature"
	canonicalSvixID        = "Svix-Id"
	canonicalSvixTimestamp = "Svix-Timestamp"
	canonicalSvixSignature = "Svix-Signature"
)

// VerifyConfig says which schemes a Verifier checks and with what keys.
// Every scheme with a key configured is checked; a request must carry and
// pass all of them.
type VerifyConfig struct {
	// WebioSecret enables webio-token (when non-nil): an HS256 token in
	// x-webio-token. Org, when set, must equal its org claim, and
	// WebioIssuer, when set, its iss claim.
	WebioSecret []byte
	Org         string
	// WebioIssuer is separate from Issuer on purpose: a Webio token is
	// minted by whoever holds the organisation's secret (the platform, or
	// sidehook's token API) while Issuer names the per-attempt JWT's
	// signer, and one receiver may check both.
	WebioIssuer string

	// jwt is enabled by any of: JWTSecret (HS256), JWTPublicKey (its
	// algorithm is JWTPublicAlg, or derived from the key type when empty),
	// JWKS (the key named by the token's kid). An HS256 token is checked
	// with JWTSecret only; any other with the JWKS key of its kid, else
	// JWTPublicKey. The token must carry exp: a per-attempt token that
	// never expires could be replayed forever.
	JWTSecret    []byte
	JWTPublicKey crypto.PublicKey
	JWTPublicAlg Algorithm
	// JWKS is the verifier's: its Close closes it.
	JWKS *JWKSFetcher
	// Leeway is the clock skew allowed on exp, nbf and iat (both schemes):
	// a token whose iat is later than now + Leeway is refused.
	Leeway time.Duration
	// Audience and Issuer are checked against the jwt's aud and iss when
	// non-empty.
	Audience, Issuer string
	// RequireSHA256 rejects a jwt without a sha256 claim; when present the
	// claim is always checked.
	RequireSHA256 bool

	// StandardSecrets enable standard; a signature by any of them passes.
	// The headers are webhook-id, webhook-timestamp and webhook-signature,
	// or Svix's svix-id, svix-timestamp and svix-signature: the same scheme
	// under Svix's names, chosen between as Svix's own library does.
	StandardSecrets   [][]byte
	StandardTolerance time.Duration // default DefaultStandardTolerance

	Now func() time.Time

	// MaxJTIs caps the jti replay cache (default DefaultMaxJTIs; negative
	// disables replay detection). When full, the entries closest to
	// expiry are dropped first.
	MaxJTIs int
	// ReplayWindow, when > 0, caps how long a jti is remembered; by default
	// it is remembered until its token expires (exp + Leeway), after which
	// the token is refused as expired anyway.
	ReplayWindow time.Duration
}

// Verdict is the outcome of verifying one request, as captures store it.
type Verdict struct {
	// Status is StatusValid, StatusInvalid or StatusUnverified.
	Status string `json:"status"`
	// Scheme is the failing scheme when invalid; when valid, the schemes
	// checked, comma-separated in checking order (webio-token, jwt,
	// standard).
	Scheme string `json:"scheme"`
	// Reason is a short human reason when invalid.
	Reason string `json:"reason"`
	// Claims are the decoded claims of the last token checked, even when
	// it failed, as long as they could be decoded.
	Claims map[string]any `json:"claims,omitempty"`
}

// ReasonKeysUnavailable starts the reason of a jwt that could not be
// checked because the JWKS could not be fetched, followed by why (": fetch
// URL: status 502"): the token may well be good, and the failure is the
// checker's, not the request's. KeysUnavailable recognises such a reason.
const ReasonKeysUnavailable = "jwks unavailable"

// KeysUnavailable reports whether reason is that of a jwt that could not
// be checked for want of its JWKS.
func KeysUnavailable(reason string) bool {
	return reason == ReasonKeysUnavailable || strings.HasPrefix(reason, ReasonKeysUnavailable+": ")
}

// maxCauseText is how much of why the JWKS could not be had a reason
// shows.
const maxCauseText = 160

// Verifier checks inbound requests against a VerifyConfig. It is safe for
// concurrent use; it holds the jti replay cache.
type Verifier struct {
	cfg   VerifyConfig
	now   func() time.Time
	webio *tokenCheck // nil unless webio-token is enabled
	jwt   *tokenCheck // nil unless jwt is enabled
	jtis  *jtiCache   // nil when replay detection is off
	// The HMAC secrets as the keys handed to golang-jwt, converted once:
	// making an any of a []byte allocates.
	webioSecret, jwtSecret any
}

// ForgetJTIs forgets every jti seen, so a token used before is taken once
// more: a mock receiver's reset starts its test afresh.
func (v *Verifier) ForgetJTIs() {
	if v.jtis != nil {
		v.jtis.clear()
	}
}

// NewVerifier checks the configuration and builds a Verifier. It does no
// I/O: a JWKS is first fetched by the first token that needs it.
func NewVerifier(cfg VerifyConfig) (*Verifier, error) {
	if cfg.WebioSecret != nil && len(cfg.WebioSecret) < MinSecretLen {
		return nil, fmt.Errorf("webio secret: %w", ErrWeakSecret)
	}
	if cfg.JWTSecret != nil && len(cfg.JWTSecret) < MinSecretLen {
		return nil, fmt.Errorf("jwt secret: %w", ErrWeakSecret)
	}
	if cfg.JWTPublicKey != nil {
		alg, err := algorithmFor(cfg.JWTPublicKey)
		if err != nil {
			return nil, fmt.Errorf("auth: jwt public key: %w", err)
		}
		if cfg.JWTPublicAlg != "" && cfg.JWTPublicAlg != alg {
			return nil, fmt.Errorf("auth: jwt public key is for %s, not %s", alg, cfg.JWTPublicAlg)
		}
		cfg.JWTPublicAlg = alg
	} else if cfg.JWTPublicAlg != "" {
		return nil, errors.New("auth: jwt public key algorithm given without a key")
	}
	for i, s := range cfg.StandardSecrets {
		if len(s) < MinStandardSecretLen {
			return nil, fmt.Errorf("auth: standard secret %d: must be at least %d bytes", i+1, MinStandardSecretLen)
		}
	}
	if cfg.Leeway < 0 || cfg.StandardTolerance < 0 || cfg.ReplayWindow < 0 {
		return nil, errors.New("auth: negative leeway, tolerance or replay window")
	}
	if cfg.StandardTolerance == 0 {
		cfg.StandardTolerance = DefaultStandardTolerance
	}
	v := &Verifier{cfg: cfg, now: cfg.Now, webioSecret: cfg.WebioSecret, jwtSecret: cfg.JWTSecret}
	if v.now == nil {
		v.now = time.Now
	}
	// Strict decoding refuses non-canonical base64 (stray padding bits), so
	// a token verifies only in the exact form it was signed in. An iat
	// beyond now + leeway is refused: a token "issued" in the future was
	// minted by a clock or a signer that cannot be trusted, and a webio
	// token, which has no exp, would otherwise carry that date forever.
	common := []jwt.ParserOption{jwt.WithLeeway(cfg.Leeway), jwt.WithTimeFunc(v.now), jwt.WithStrictDecoding(), jwt.WithIssuedAt()}
	if cfg.WebioSecret != nil {
		methods := []string{string(HS256)}
		opts := append([]jwt.ParserOption{jwt.WithValidMethods(methods)}, common...)
		var required []string
		if cfg.WebioIssuer != "" {
			opts = append(opts, jwt.WithIssuer(cfg.WebioIssuer))
			required = []string{"iss"}
		}
		v.webio = newTokenCheck(opts, methods, required, claimWants{issuer: cfg.WebioIssuer, leeway: cfg.Leeway, now: v.now}, v.webioKey)
	}
	var methods []string
	if cfg.JWTSecret != nil {
		methods = append(methods, string(HS256))
	}
	if cfg.JWTPublicKey != nil {
		methods = append(methods, string(cfg.JWTPublicAlg))
	}
	if cfg.JWKS != nil {
		methods = append(methods, string(RS256), string(ES256), string(EdDSA))
	}
	if len(methods) > 0 {
		// exp is required: a per-attempt token that never expires could be
		// replayed forever, and the replay cache could never forget its jti.
		opts := append([]jwt.ParserOption{jwt.WithValidMethods(methods), jwt.WithExpirationRequired()}, common...)
		required := []string{"exp"}
		if cfg.Audience != "" {
			opts = append(opts, jwt.WithAudience(cfg.Audience))
			required = append(required, "aud")
		}
		if cfg.Issuer != "" {
			opts = append(opts, jwt.WithIssuer(cfg.Issuer))
			required = append(required, "iss")
		}
		v.jwt = newTokenCheck(opts, methods, required, claimWants{issuer: cfg.Issuer, audience: cfg.Audience, leeway: cfg.Leeway, now: v.now}, v.jwtKey)
		if cfg.MaxJTIs >= 0 {
			limit := cfg.MaxJTIs
			if limit == 0 {
				limit = DefaultMaxJTIs
			}
			v.jtis = &jtiCache{max: limit, until: make(map[jtiKey]int64)}
		}
	}
	return v, nil
}

// Close closes the JWKS fetcher of the configuration, if any: a fetch in
// progress is stopped and waited for. Call it once nothing verifies any
// more; it is safe to call twice.
func (v *Verifier) Close() error {
	if v == nil || v.cfg.JWKS == nil {
		return nil
	}
	return v.cfg.JWKS.Close()
}

// Enabled reports whether any scheme is configured; with none, every
// request is unverified.
func (v *Verifier) Enabled() bool {
	return v != nil && (v.webio != nil || v.jwt != nil || len(v.cfg.StandardSecrets) > 0)
}

// Verify checks every configured scheme on r, in the order webio-token,
// jwt, standard, and stops at the first failure. body is the exact body
// bytes (r.Body is not read); a GET's jwt sha256 claim covers
// r.URL.RawQuery instead. A jwt's jti is recorded only when the whole
// request passes, so a request refused for another reason can be retried.
func (v *Verifier) Verify(ctx context.Context, r *http.Request, body []byte) Verdict {
	if !v.Enabled() {
		return Verdict{Status: StatusUnverified}
	}
	if r == nil {
		return Verdict{Status: StatusInvalid, Reason: "no request"}
	}
	if ctx == nil {
		ctx = context.Background()
	}
	var (
		checked = make([]string, 0, 3)
		claims  map[string]any
		replay  *jtiRecord
	)
	if v.webio != nil {
		c, reason := v.verifyWebio(ctx, r)
		if c != nil {
			claims = c
		}
		if reason != "" {
			return Verdict{Status: StatusInvalid, Scheme: SchemeWebioToken, Reason: reason, Claims: claims}
		}
		checked = append(checked, SchemeWebioToken)
	}
	if v.jwt != nil {
		c, rec, reason := v.verifyJWT(ctx, r, body)
		if c != nil {
			claims = c
		}
		if reason != "" {
			return Verdict{Status: StatusInvalid, Scheme: SchemeJWT, Reason: reason, Claims: claims}
		}
		replay = rec
		checked = append(checked, SchemeJWT)
	}
	if len(v.cfg.StandardSecrets) > 0 {
		reason := verifyStandard(v.cfg.StandardSecrets, standardHeadersOf(r.Header), body, v.now(), v.cfg.StandardTolerance)
		if reason != "" {
			return Verdict{Status: StatusInvalid, Scheme: SchemeStandard, Reason: reason, Claims: claims}
		}
		checked = append(checked, SchemeStandard)
	}
	// Check-and-record in one step: of two concurrent requests with the
	// same jti, exactly one passes.
	if replay != nil && !v.jtis.add(replay.key, replay.until, v.now()) {
		return Verdict{Status: StatusInvalid, Scheme: SchemeJWT, Reason: jtiUsed(replay.jti), Claims: claims}
	}
	return Verdict{Status: StatusValid, Scheme: strings.Join(checked, ","), Claims: claims}
}

func (v *Verifier) verifyWebio(ctx context.Context, r *http.Request) (map[string]any, string) {
	raw := strings.TrimSpace(r.Header.Get(canonicalWebioToken))
	if raw == "" {
		return nil, "missing x-webio-token header"
	}
	// Tolerate a "Bearer " prefix some senders add to every token header.
	if tok, ok := Bearer(raw); ok {
		raw = tok
	}
	if len(raw) > maxTokenLen {
		return nil, tooLarge(raw)
	}
	claims, reason := v.webio.parse(ctx, raw)
	if reason != "" {
		return claims, reason
	}
	if v.cfg.Org != "" {
		org, present := claims["org"]
		if !present {
			return claims, "missing org claim, want " + strconv.Quote(v.cfg.Org)
		}
		if s, ok := org.(string); !ok || s != v.cfg.Org {
			return claims, "wrong org " + claimText(org) + ", want " + strconv.Quote(v.cfg.Org)
		}
	}
	return claims, ""
}

// tooLarge is the reason of a token refused unread for its size.
func tooLarge(raw string) string {
	return fmt.Sprintf("token too large: %d bytes, want at most %d", len(raw), maxTokenLen)
}

// notBearer is the reason of an Authorization header of another scheme.
// It names that scheme only when it reads as one (a short word before a
// space): a credential sent without any scheme must not be echoed.
func notBearer(authz string) string {
	const reason = "authorization header is not a bearer token"
	scheme, _, ok := strings.Cut(authz, " ")
	if !ok || !isSchemeName(scheme) {
		return reason + `: want "Bearer <token>"`
	}
	return reason + ": scheme " + strconv.Quote(scheme) + ", want Bearer"
}

// isSchemeName reports whether s looks like an HTTP auth scheme (Basic,
// Digest, Token, ApiKey…), not part of a credential.
func isSchemeName(s string) bool {
	if s == "" || len(s) > 20 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// jtiUsed is the reason of a replayed jti.
func jtiUsed(jti string) string { return "jti " + claimText(jti) + " already used" }

// jtiRecord is a jti to remember once the whole request has passed.
type jtiRecord struct {
	key   jtiKey
	jti   string // for the reason, should the record fail
	until time.Time
}

func (v *Verifier) verifyJWT(ctx context.Context, r *http.Request, body []byte) (map[string]any, *jtiRecord, string) {
	authz := strings.TrimSpace(r.Header.Get(canonicalAuthorization))
	if authz == "" {
		return nil, nil, "missing authorization header"
	}
	raw, ok := Bearer(authz)
	if !ok {
		return nil, nil, notBearer(authz)
	}
	if len(raw) > maxTokenLen {
		return nil, nil, tooLarge(raw)
	}
	claims, reason := v.jwt.parse(ctx, raw)
	if reason != "" {
		return claims, nil, reason
	}
	// The parser insists on exp, so the claims are never empty here.
	mc := jwt.MapClaims(claims)

	covered, what := body, "body"
	if r.Method == http.MethodGet {
		covered, what = nil, "query"
		if r.URL != nil {
			covered = []byte(r.URL.RawQuery)
		}
	}
	// The hashes are named, not secrets: each is of bytes the sender sent.
	if sum, present := mc["sha256"]; present {
		s, _ := sum.(string)
		if !isBodyHash(s, covered) {
			return claims, nil, "sha256 claim " + claimText(sum) + " does not match the " + what + "'s " + strconv.Quote(BodyHash(covered))
		}
	} else if v.cfg.RequireSHA256 {
		return claims, nil, "missing sha256 claim, want the " + what + "'s " + strconv.Quote(BodyHash(covered))
	}

	if v.jtis == nil {
		return claims, nil, ""
	}
	rawJTI, present := mc["jti"]
	if !present {
		return claims, nil, ""
	}
	jti, ok := rawJTI.(string)
	if !ok || jti == "" {
		return claims, nil, "invalid jti claim " + claimText(rawJTI) + ", want a non-empty string"
	}
	// A jti is unique per issuer (RFC 7519 §4.1.7).
	iss, _ := mc["iss"].(string)
	key := newJTIKey(iss, jti)
	now := v.now()
	if v.jtis.seen(key, now) {
		return claims, nil, jtiUsed(jti)
	}
	exp, err := mc.GetExpirationTime()
	if err != nil || exp == nil {
		// Unreachable: the parser requires a valid exp.
		return claims, nil, "missing exp claim"
	}
	until := exp.Add(v.cfg.Leeway)
	if v.cfg.ReplayWindow > 0 && now.Add(v.cfg.ReplayWindow).Before(until) {
		until = now.Add(v.cfg.ReplayWindow)
	}
	return claims, &jtiRecord{key: key, jti: jti, until: until}, ""
}

// webioKey returns the webio secret for a token with the given header.
func (v *Verifier) webioKey(_ context.Context, header map[string]any, alg string) (any, error) {
	if err := checkHeader(header); err != nil {
		return nil, err
	}
	// WithValidMethods already limits this check to HS256; checking again
	// here keeps the secret from ever meeting another algorithm.
	if alg != string(HS256) {
		return nil, &reasonError{reason: unexpectedAlg(alg, []string{string(HS256)})}
	}
	return v.webioSecret, nil
}

// jwtKey picks the verification key and pins the algorithm to it: the
// token's alg must be the one algorithm the selected key type allows, so an
// HS256 token can never be checked with an RSA public key as its secret.
func (v *Verifier) jwtKey(ctx context.Context, header map[string]any, alg string) (any, error) {
	if err := checkHeader(header); err != nil {
		return nil, err
	}
	if alg == string(HS256) {
		if v.cfg.JWTSecret == nil {
			return nil, &reasonError{reason: unexpectedAlg(alg, v.jwt.methods)}
		}
		return v.jwtSecret, nil
	}
	kid, ok := header["kid"].(string)
	if !ok && header["kid"] != nil {
		return nil, &reasonError{reason: "invalid kid header " + claimText(header["kid"]) + ", want a string"}
	}
	var (
		pub    crypto.PublicKey
		keyAlg Algorithm
	)
	switch {
	case v.cfg.JWKS != nil && (kid != "" || v.cfg.JWTPublicKey == nil):
		var err error
		pub, keyAlg, err = v.cfg.JWKS.Key(ctx, kid)
		switch {
		case errors.Is(err, ErrUnknownKID) && kid == "":
			reason := "missing kid header (alg " + alg + ")"
			var uk *unknownKIDError
			if errors.As(err, &uk) {
				count, named := uk.held()
				reason += ": the JWKS has " + count + ", a kid must name one of " + named
			}
			return nil, &reasonError{reason: reason, err: err}
		case errors.Is(err, ErrUnknownKID):
			reason := "unknown key id " + claimText(kid) + ", not in the JWKS"
			var uk *unknownKIDError
			if errors.As(err, &uk) {
				count, named := uk.held()
				reason += ", which has " + count + ": " + named
			}
			return nil, &reasonError{reason: reason, err: err}
		case err != nil:
			cause := strings.TrimPrefix(err.Error(), "auth: jwks: ")
			return nil, &reasonError{reason: ReasonKeysUnavailable + ": " + clipTo(cause, maxCauseText), err: err}
		}
	case v.cfg.JWTPublicKey != nil:
		pub, keyAlg = v.cfg.JWTPublicKey, v.cfg.JWTPublicAlg
	default:
		return nil, &reasonError{reason: unexpectedAlg(alg, v.jwt.methods)}
	}
	if Algorithm(alg) != keyAlg {
		return nil, &reasonError{reason: unexpectedAlg(alg, []string{string(keyAlg)})}
	}
	return pub, nil
}

// checkHeader refuses a "crit" header: RFC 7515 §4.1.11 requires
// rejecting extensions the verifier does not understand, and sidehook
// understands none. The reason names the extensions the token listed.
func checkHeader(header map[string]any) error {
	if crit, ok := header["crit"]; ok {
		return &reasonError{reason: "unsupported crit header " + claimText(crit) + ", want none: no extension is understood"}
	}
	return nil
}

// reasonError carries a verdict reason out of a key function.
type reasonError struct {
	reason string
	err    error
}

func (e *reasonError) Error() string {
	if e.err != nil {
		return e.reason + ": " + e.err.Error()
	}
	return e.reason
}

func (e *reasonError) Unwrap() error { return e.err }

// reason turns a parse error of raw into the short reason of a Verdict:
// what the token carried and what was wanted, never a key or a
// signature. claims are the token's decoded claims.
func (c *tokenCheck) reason(err error, raw string, tok *jwt.Token, claims map[string]any) string {
	var re *reasonError
	if errors.As(err, &re) {
		return re.reason
	}
	if errors.Is(err, jwt.ErrTokenMalformed) {
		return "malformed token" + malformedPart(err, raw, tok)
	}
	if tok != nil && (errors.Is(err, jwt.ErrTokenUnverifiable) || errors.Is(err, jwt.ErrTokenSignatureInvalid)) {
		alg, ok := tok.Header["alg"].(string)
		if !ok || alg == "" {
			return "missing alg header" + wantAlgs(c.methods)
		}
		allowed := false
		for _, m := range c.methods {
			allowed = allowed || m == alg
		}
		if !allowed {
			return unexpectedAlg(alg, c.methods)
		}
	}
	mc := jwt.MapClaims(claims)
	switch {
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		// The key id the token named, when it named one: a sender that
		// signed with a rotated key sees which it used.
		if kid, _ := tok.Header["kid"].(string); kid != "" {
			alg, _ := tok.Header["alg"].(string)
			return "signature mismatch (alg " + alg + ", kid " + strconv.Quote(clipTo(kid, maxKIDText)) + ")"
		}
		return "signature mismatch"
	case errors.Is(err, jwt.ErrTokenUnverifiable):
		return "unverifiable token"
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		for _, name := range c.required {
			if v, present := claims[name]; !present || v == "" {
				return "missing " + name + " claim" + c.wantOf(name)
			}
		}
		return "missing required claim"
	case errors.Is(err, jwt.ErrTokenExpired):
		return c.timeReason("token expired", "exp", mc.GetExpirationTime)
	case errors.Is(err, jwt.ErrTokenNotValidYet):
		return c.timeReason("token not yet valid", "nbf", mc.GetNotBefore)
	case errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		return c.timeReason("token issued in the future", "iat", mc.GetIssuedAt)
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		return "wrong audience " + claimText(claims["aud"]) + c.wantOf("aud")
	case errors.Is(err, jwt.ErrTokenInvalidIssuer):
		return "wrong issuer " + claimText(claims["iss"]) + c.wantOf("iss")
	case errors.Is(err, jwt.ErrInvalidType):
		return c.invalidType(claims)
	}
	return "invalid token"
}

// invalidType names the first claim the parser reads that is not of its
// type (or, for a time, beyond years 1 to 9999), its value and what it
// must be.
func (c *tokenCheck) invalidType(claims map[string]any) string {
	bc := boundedClaims(claims)
	const timeWant = ", want a number of seconds (years 1 to 9999)"
	for _, claim := range []struct {
		name, want string
		bad        func() bool
	}{
		{"exp", timeWant, func() bool { _, err := bc.GetExpirationTime(); return err != nil }},
		{"nbf", timeWant, func() bool { _, err := bc.GetNotBefore(); return err != nil }},
		{"iat", timeWant, func() bool { _, err := bc.GetIssuedAt(); return err != nil }},
		{"iss", firstOf(c.wantOf("iss"), ", want a string"), func() bool { _, err := bc.GetIssuer(); return err != nil }},
		{"aud", firstOf(c.wantOf("aud"), ", want a string or a list of strings"), func() bool { _, err := bc.GetAudience(); return err != nil }},
	} {
		if claim.bad() {
			return "invalid " + claim.name + " claim " + claimText(claims[claim.name]) + claim.want
		}
	}
	return "invalid claim type"
}

// firstOf is the first non-empty string.
func firstOf(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}

// wantOf is ", want" and the value the named claim is checked against,
// or "" for a claim without one (exp).
func (c *tokenCheck) wantOf(claim string) string {
	var want string
	switch claim {
	case "iss":
		want = c.want.issuer
	case "aud":
		want = c.want.audience
	}
	if want == "" {
		return ""
	}
	return ", want " + strconv.Quote(want)
}

// timeReason is what, then the time claim that failed and the time it
// was checked at, with the leeway allowed: "token expired: exp …, now …".
func (c *tokenCheck) timeReason(what, claim string, get func() (*jwt.NumericDate, error)) string {
	d, err := get()
	if err != nil || d == nil || c.want.now == nil {
		return what
	}
	r := what + ": " + claim + " " + stampOf(d.Time) + ", now " + stampOf(c.want.now())
	if c.want.leeway > 0 {
		r += ", leeway " + c.want.leeway.String()
	}
	return r
}

// stampOf is a time as reasons name it: RFC 3339, UTC, to the second.
func stampOf(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// unexpectedAlg is the reason of a token signed with an algorithm not
// accepted: the one it names, quoted (it is the sender's text), and those
// that are.
func unexpectedAlg(alg string, want []string) string {
	return "unexpected signing method " + strconv.Quote(clip(alg)) + wantAlgs(want)
}

// wantAlgs is ", want" and the algorithms accepted, or "" for none.
func wantAlgs(want []string) string {
	switch len(want) {
	case 0:
		return ""
	case 1:
		return ", want " + want[0]
	}
	return ", want one of " + strings.Join(want, ", ")
}

// malformedPart says what of raw the parser could not read, from how far
// it got (tok and the parts it filled) and the error under err: the count
// of parts, or the part that is not base64url or not a JSON object. It
// reads the parser's outcome, not the token: the parser is the one reader.
func malformedPart(err error, raw string, tok *jwt.Token) string {
	if tok == nil {
		return ": " + plural(strings.Count(raw, ".")+1, "dot-separated part", "dot-separated parts") + ", want 3 (header.claims.signature)"
	}
	part, is, does := "signature", "is", "does"
	switch {
	case tok.Claims == nil:
		part = "header"
	case tok.Method == nil:
		part, is, does = "claims", "are", "do"
	}
	var b64 base64.CorruptInputError
	if errors.As(err, &b64) {
		return ": its " + part + " " + is + " not (canonical) base64url"
	}
	if part != "signature" {
		return ": its " + part + " " + does + " not decode as one JSON object"
	}
	return ""
}

// claimText is a claim's (or header's) value as a reason shows it: a
// string quoted, anything else as JSON, clipped either way, as the
// sender chose it. Only values from the token are given to it, never a key.
func claimText(v any) string {
	if s, ok := v.(string); ok {
		return strconv.Quote(clipTo(s, maxClaimText))
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprintf("%T", v)
	}
	return clipTo(string(b), maxClaimText)
}

// maxClaimText is how much of a claim a reason shows: a body hash (43
// characters) whole.
const maxClaimText = 64

// decodedClaims returns the claims for the verdict when they decoded, even
// if the token failed later; a malformed token may have left them half
// filled, so those are dropped.
func decodedClaims(mc jwt.MapClaims, err error) map[string]any {
	if len(mc) == 0 || errors.Is(err, jwt.ErrTokenMalformed) {
		return nil
	}
	return map[string]any(mc)
}

// isBodyHash reports whether claim is BodyHash(b), in constant time and
// without allocating.
func isBodyHash(claim string, b []byte) bool {
	sum := sha256.Sum256(b)
	var want [(sha256.Size*8 + 5) / 6]byte // unpadded base64 of the sum
	base64.RawURLEncoding.Encode(want[:], sum[:])
	return hmac.Equal([]byte(claim), want[:])
}

// Bearer returns the credential of an "Authorization: Bearer <token>"
// header value; the scheme is case-insensitive (RFC 9110 §11.1). It is the
// one reading of that header: API keys, admin tokens and the jwt scheme's
// tokens all come through it, so none is read differently from another.
func Bearer(header string) (string, bool) {
	scheme, rest, ok := strings.Cut(strings.TrimSpace(header), " ")
	if !ok || !strings.EqualFold(scheme, "bearer") {
		return "", false
	}
	tok := strings.TrimSpace(rest)
	return tok, tok != ""
}

// clip keeps attacker-chosen text in a reason short.
func clip(s string) string { return clipTo(s, 32) }

// clipTo keeps s to limit bytes, valid UTF-8.
func clipTo(s string, limit int) string {
	if len(s) > limit {
		return strings.ToValidUTF8(s[:limit], "") + "…"
	}
	return strings.ToValidUTF8(s, "�")
}

// jtiKey identifies an issuer's jti in the replay cache: the first 16
// bytes of SHA-256 over iss, a zero byte and jti. A fixed-size key keeps
// the cache free of pointers, so the garbage collector never scans it: as
// strings, every collection marked a full cache's 100,000 keys, and with
// the receiver's duplicate_of map a mark phase took 31-37 ms under load
// (measured then; the figure is in git history). Two jtis share a key only
// by a SHA-256 collision.
type jtiKey [16]byte

func newJTIKey(iss, jti string) jtiKey {
	var buf [128]byte // on the stack for the usual iss and jti
	sum := sha256.Sum256(append(append(append(buf[:0], iss...), 0), jti...))
	return jtiKey(sum[:len(jtiKey{})])
}

// jtiCache remembers the jtis of accepted tokens until they expire, within
// a fixed count, so replay detection costs bounded memory.
type jtiCache struct {
	mu    sync.Mutex
	max   int
	until map[jtiKey]int64
	order expiryHeap
}

func (c *jtiCache) seen(key jtiKey, now time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	until, ok := c.until[key]
	return ok && now.UnixNano() < until
}

// add records key until the given time, or reports false when it is
// already recorded and not yet expired.
func (c *jtiCache) add(key jtiKey, until, now time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := now.UnixNano()
	for len(c.order) > 0 && t >= c.order[0].until {
		c.pop()
	}
	if u, ok := c.until[key]; ok && t < u {
		return false
	}
	for len(c.until) >= c.max && len(c.order) > 0 {
		c.pop()
	}
	c.until[key] = until.UnixNano()
	heap.Push(&c.order, expiryEntry{key: key, until: until.UnixNano()})
	return true
}

// clear forgets every jti.
func (c *jtiCache) clear() {
	c.mu.Lock()
	defer c.mu.Unlock()
	clear(c.until)
	c.order = nil
}

// pop drops the entry closest to expiry; must be called with c.mu held.
func (c *jtiCache) pop() {
	e := heap.Pop(&c.order).(expiryEntry)
	if u, ok := c.until[e.key]; ok && u == e.until {
		delete(c.until, e.key)
	}
}

type expiryEntry struct {
	key   jtiKey
	until int64 // Unix nanoseconds
}

type expiryHeap []expiryEntry

func (h expiryHeap) Len() int           { return len(h) }
func (h expiryHeap) Less(i, j int) bool { return h[i].until < h[j].until }
func (h expiryHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *expiryHeap) Push(x any)        { *h = append(*h, x.(expiryEntry)) }
func (h *expiryHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	*h = old[:len(old)-1]
	return e
}
