package auth

import (
	"context"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// keyFunc returns the key that verifies a token with the given decoded
// header and alg, or a *reasonError.
type keyFunc func(ctx context.Context, header map[string]any, alg string) (any, error)

// tokenCheck verifies the tokens of one scheme with golang-jwt's parser
// alone: it splits, decodes, checks the signature and validates the claims,
// and every refusal, with its reason, comes from it. A second, faster
// parser in front of it would be a second place for a token to be read
// differently (RFC 8725 §2.8); a mock receiver does not need the speed.
type tokenCheck struct {
	parser   *jwt.Parser
	methods  []string // algorithms the parser accepts
	required []string // claims it insists on, in reporting order
	key      keyFunc
	want     claimWants
}

// claimWants are what the parser checks claims against, given to it as
// options; a reason names them beside what the token carried.
type claimWants struct {
	issuer, audience string
	leeway           time.Duration
	now              func() time.Time
}

func newTokenCheck(opts []jwt.ParserOption, methods, required []string, want claimWants, key keyFunc) *tokenCheck {
	return &tokenCheck{parser: jwt.NewParser(opts...), methods: methods, required: required, want: want, key: key}
}

// parse verifies raw and returns its decoded claims (nil when there are
// none or they did not decode) and, when it fails, the reason.
func (c *tokenCheck) parse(ctx context.Context, raw string) (map[string]any, string) {
	bc := boundedClaims{}
	tok, err := c.parser.ParseWithClaims(raw, &bc, func(t *jwt.Token) (any, error) {
		return c.key(ctx, t.Header, t.Method.Alg())
	})
	claims := decodedClaims(jwt.MapClaims(bc), err)
	if err != nil {
		return claims, c.reason(err, raw, tok, bc)
	}
	return claims, ""
}

// Time claims must fall within years 1 to 9999. golang-jwt converts a
// claim's float seconds to int64 without a range check, so 1e20 wraps to
// a date in the distant past: an iat or nbf that far in the future would
// pass as long ago.
var (
	minClaimTime = time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC).Unix()
	maxClaimTime = time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC).Unix()
)

// boundedClaims are jwt.MapClaims whose time claims are refused, as an
// invalid claim type, outside minClaimTime..maxClaimTime. The parser
// decodes and validates them as it does MapClaims.
type boundedClaims map[string]any

func (c *boundedClaims) GetExpirationTime() (*jwt.NumericDate, error) {
	return bounded("exp", c.m().GetExpirationTime)
}

func (c *boundedClaims) GetIssuedAt() (*jwt.NumericDate, error) {
	return bounded("iat", c.m().GetIssuedAt)
}

func (c *boundedClaims) GetNotBefore() (*jwt.NumericDate, error) {
	return bounded("nbf", c.m().GetNotBefore)
}

func (c *boundedClaims) GetIssuer() (string, error)             { return c.m().GetIssuer() }
func (c *boundedClaims) GetSubject() (string, error)            { return c.m().GetSubject() }
func (c *boundedClaims) GetAudience() (jwt.ClaimStrings, error) { return c.m().GetAudience() }

func (c *boundedClaims) m() jwt.MapClaims { return jwt.MapClaims(*c) }

func bounded(name string, get func() (*jwt.NumericDate, error)) (*jwt.NumericDate, error) {
	d, err := get()
	if err != nil || d == nil {
		return d, err
	}
	// The float itself, not the wrapped time: the conversion is what
	// overflows.
	if sec := d.Unix(); sec < minClaimTime || sec > maxClaimTime {
		return nil, fmt.Errorf("%s claim out of range: %w", name, jwt.ErrInvalidType)
	}
	return d, nil
}
