package auth

import (
	"context"

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
}

func newTokenCheck(opts []jwt.ParserOption, methods, required []string, key keyFunc) *tokenCheck {
	return &tokenCheck{parser: jwt.NewParser(opts...), methods: methods, required: required, key: key}
}

// parse verifies raw and returns its decoded claims (nil when there are
// none or they did not decode) and, when it fails, the reason.
func (c *tokenCheck) parse(ctx context.Context, raw string) (map[string]any, string) {
	mc := jwt.MapClaims{}
	tok, err := c.parser.ParseWithClaims(raw, mc, func(t *jwt.Token) (any, error) {
		return c.key(ctx, t.Header, t.Method.Alg())
	})
	claims := decodedClaims(mc, err)
	if err != nil {
		return claims, tokenReason(err, tok, c.methods, c.required)
	}
	return claims, ""
}
