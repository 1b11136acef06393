package auth

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"slices"
	"strings"
	"sync"

	"github.com/golang-jwt/jwt/v5"
)

// maxCachedHeaders bounds a tokenCheck's header cache. A receiver sees one
// header per signing key (two during a rotation), so a few dozen entries
// cover every honest sender with room to spare.
const maxCachedHeaders = 32

// maxCachedHeaderLen keeps oversized headers out of the cache, so its
// memory stays small whatever senders put there. Ours are about 100 bytes.
const maxCachedHeaderLen = 512

// segmentEncoding decodes token segments as the parser does with
// jwt.WithStrictDecoding: unpadded base64url, canonical padding bits only.
// Like base64.RawURLEncoding it is never modified.
var segmentEncoding = base64.RawURLEncoding.Strict()

// keyFunc returns the key that verifies a token with the given decoded
// header and alg, or a *reasonError. header is shared and must not be
// modified.
type keyFunc func(ctx context.Context, header map[string]any, alg string) (any, error)

// tokenCheck verifies the tokens of one scheme. The golang-jwt parser is
// the reference: every refusal, and its reason, comes from it. In front of
// it sits a fast path for well-formed tokens that decodes only what it
// must, reuses the decoded header of earlier tokens, and calls the same
// golang-jwt pieces (signing method, validator) the parser would; it can
// only accept, with the claims the parser would return, and hands anything
// else to the parser.
type tokenCheck struct {
	parser    *jwt.Parser
	validator *jwt.Validator // built from the parser's options
	methods   []string       // algorithms the parser accepts
	required  []string       // claims it insists on, in reporting order
	key       keyFunc
	headers   headerCache
	// referenceOnly skips the fast path; tests compare the two.
	referenceOnly bool
}

func newTokenCheck(opts []jwt.ParserOption, methods, required []string, key keyFunc) *tokenCheck {
	return &tokenCheck{
		parser:    jwt.NewParser(opts...),
		validator: jwt.NewValidator(opts...),
		methods:   methods,
		required:  required,
		key:       key,
		headers:   headerCache{max: maxCachedHeaders},
	}
}

// parse verifies raw and returns its decoded claims (nil when there are
// none or they did not decode) and, when it fails, the reason.
func (c *tokenCheck) parse(ctx context.Context, raw string) (map[string]any, string) {
	var lookup keyLookup
	if !c.referenceOnly {
		if claims, ok := c.parseFast(ctx, raw, &lookup); ok {
			return claims, ""
		}
	}
	mc := jwt.MapClaims{}
	tok, err := c.parser.ParseWithClaims(raw, mc, func(t *jwt.Token) (any, error) {
		if lookup.done {
			// The fast path already asked about this very header: do not
			// ask a JWKS twice.
			return lookup.key, lookup.err
		}
		return c.key(ctx, t.Header, t.Method.Alg())
	})
	claims := decodedClaims(mc, err)
	if err != nil {
		return claims, tokenReason(err, tok, c.methods, c.required)
	}
	return claims, ""
}

// keyLookup remembers the fast path's key lookup for the parser.
type keyLookup struct {
	done bool
	key  any
	err  error
}

// parseFast makes the checks of jwt.Parser.ParseWithClaims and reports
// whether the token passed all of them. It must never accept a token the
// parser refuses: each step is the parser's own call on the same input, or
// stricter. It looks the key up only once everything the parser checks
// before calling its key function has passed, so the parser, given the
// same token, may reuse that lookup.
func (c *tokenCheck) parseFast(ctx context.Context, raw string, lookup *keyLookup) (map[string]any, bool) {
	headerSeg, rest, ok := strings.Cut(raw, ".")
	if !ok {
		return nil, false
	}
	claimsSeg, sigSeg, ok := strings.Cut(rest, ".")
	if !ok || strings.Contains(sigSeg, ".") {
		return nil, false
	}
	h := c.header(headerSeg)
	if h == nil {
		return nil, false
	}
	claimBytes, err := segmentEncoding.DecodeString(claimsSeg)
	if err != nil {
		return nil, false
	}
	// The parser decodes with json.Unmarshal too, which also refuses
	// anything after the object. null decodes to a nil map here but leaves
	// the parser's map empty: leave that to the parser.
	claims, err := decodeClaims(claimBytes)
	if err != nil || claims == nil {
		return nil, false
	}
	sig, err := segmentEncoding.DecodeString(sigSeg)
	if err != nil {
		return nil, false
	}
	lookup.key, lookup.err = c.key(ctx, h.fields, h.method.Alg())
	lookup.done = true
	if lookup.err != nil {
		return nil, false
	}
	signed := raw[:len(headerSeg)+1+len(claimsSeg)]
	if err := h.method.Verify(signed, sig, lookup.key); err != nil {
		return nil, false
	}
	if err := c.validator.Validate(jwt.MapClaims(claims)); err != nil {
		return nil, false
	}
	return decodedClaims(claims, nil), true
}

// tokenHeader is a decoded header the fast path may use: a JSON object
// whose alg is a registered signing method this check accepts.
type tokenHeader struct {
	fields map[string]any // shared between requests: read only
	method jwt.SigningMethod
}

// header returns the decoded header for a raw segment, or nil when the
// fast path should leave the token to the parser.
func (c *tokenCheck) header(seg string) *tokenHeader {
	if h := c.headers.get(seg); h != nil {
		return h
	}
	b, err := segmentEncoding.DecodeString(seg)
	if err != nil {
		return nil
	}
	var fields map[string]any
	if err := json.Unmarshal(b, &fields); err != nil {
		return nil
	}
	alg, ok := fields["alg"].(string)
	if !ok {
		return nil
	}
	method := jwt.GetSigningMethod(alg)
	if method == nil || !slices.Contains(c.methods, alg) {
		return nil
	}
	h := &tokenHeader{fields: fields, method: method}
	if len(seg) <= maxCachedHeaderLen {
		c.headers.put(seg, h)
	}
	return h
}

// headerCache maps raw header segments to decoded headers. It is bounded:
// when full, an arbitrary entry makes room, so a sender cycling through
// headers costs only cache misses, and an honest signer's header is back
// after its next token.
type headerCache struct {
	mu  sync.RWMutex
	max int
	m   map[string]*tokenHeader
}

func (c *headerCache) get(seg string) *tokenHeader {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.m[seg]
}

func (c *headerCache) put(seg string, h *tokenHeader) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = make(map[string]*tokenHeader, c.max)
	}
	if _, ok := c.m[seg]; !ok && len(c.m) >= c.max {
		for k := range c.m {
			delete(c.m, k)
			break
		}
	}
	// The segment is part of a request header: copy it rather than keep
	// the whole token alive.
	c.m[strings.Clone(seg)] = h
}

func (c *headerCache) size() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.m)
}
