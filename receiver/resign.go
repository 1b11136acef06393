package receiver

import (
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/golang-jwt/jwt/v5"

	"github.com/sidehook/sidehook/internal/auth"
	"github.com/sidehook/sidehook/internal/httpjson"
)

// codeCannotSign answers a replay that asks for a scheme this receiver has
// no key for.
const codeCannotSign = "cannot_sign"

// Standard Webhooks headers under Svix's names. A replay never carries a
// stale signature or timestamp under them (replay drops only the webhook-*
// ones); a re-signed one carries webhook-id, so svix-id goes too: a
// Svix-aware verifier would read the svix-* set first and fail.
const (
	svixID        = "svix-id"
	svixTimestamp = "svix-timestamp"
	svixSignature = "svix-signature"
)

// schemesOf lists the schemes a captured request carried, by its headers,
// in auth's checking order; what it carried is what a replay re-signs,
// whether the original passed or not.
func schemesOf(h map[string][]string) []string {
	var out []string
	if first(h, auth.HeaderWebioToken) != "" {
		out = append(out, auth.SchemeWebioToken)
	}
	if _, ok := auth.Bearer(first(h, auth.HeaderAuthorization)); ok {
		out = append(out, auth.SchemeJWT)
	}
	if first(h, auth.HeaderSignature) != "" || first(h, svixSignature) != "" {
		out = append(out, auth.SchemeStandard)
	}
	return out
}

func first(h map[string][]string, name string) string {
	if v := h[name]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// tokenFacts are what a replay copies from an original token: its header's
// alg and kid and the claims the verifier may check. Read without
// verifying (golang-jwt's ParseUnverified): they only choose the key and
// the claims of a new token that this receiver signs itself.
type tokenFacts struct {
	alg, kid           string
	iss, sub, aud, org string
}

func readToken(raw string) (tokenFacts, bool) {
	claims := jwt.MapClaims{}
	tok, _, err := jwt.NewParser().ParseUnverified(raw, claims)
	if err != nil {
		return tokenFacts{}, false
	}
	f := tokenFacts{alg: tok.Method.Alg()}
	f.kid, _ = tok.Header["kid"].(string)
	f.iss, _ = claims["iss"].(string)
	f.sub, _ = claims["sub"].(string)
	f.org, _ = claims["org"].(string)
	switch aud := claims["aud"].(type) {
	case string:
		f.aud = aud
	case []any:
		if len(aud) > 0 {
			f.aud, _ = aud[0].(string)
		}
	}
	return f, true
}

// replaySigning decides how a replay of c is signed: with the schemes
// asked, or when asked is nil every scheme c carried, each with this
// receiver's own keys (its verification secrets, and ReplayKey for
// asymmetric JWTs). A scheme it cannot sign is an error naming it and the
// flag that would give the key, never a replay sent unsigned as if it
// were signed.
func (s *Server) replaySigning(c *Capture, asked []string) ([]string, auth.OutboundKeys, error) {
	v := s.cfg.Verify
	var k auth.OutboundKeys
	schemes := asked
	if schemes == nil {
		schemes = schemesOf(c.Headers)
	}
	cannot := func(format string, args ...any) error {
		return &httpjson.Error{Status: http.StatusBadRequest, Code: codeCannotSign, Reason: fmt.Sprintf(format, args...)}
	}
	parsed := make([]string, 0, len(schemes))
	for _, name := range schemes {
		scheme, err := auth.ParseScheme(name)
		if err != nil {
			return nil, k, badRequest("sign: " + err.Error())
		}
		if !slices.Contains(parsed, scheme) {
			parsed = append(parsed, scheme)
		}
	}
	schemes = parsed
	for _, scheme := range schemes {
		switch scheme {
		case auth.SchemeWebioToken:
			if v.WebioSecret == nil {
				return nil, k, cannot("webio-token cannot be re-signed: this receiver has no webio secret (start it with --webio-secret)")
			}
			orig, _ := readToken(first(c.Headers, auth.HeaderWebioToken))
			org := firstOf(v.Org, orig.org, auth.DefaultIssuer)
			tok, err := auth.MintWebioToken(v.WebioSecret, auth.WebioClaims{Issuer: firstOf(v.WebioIssuer, orig.iss), Org: org, IssuedAt: s.now()})
			if err != nil {
				return nil, k, cannot("webio-token cannot be re-signed: %v", err)
			}
			k.WebioToken = tok
		case auth.SchemeJWT:
			raw, _ := auth.Bearer(first(c.Headers, auth.HeaderAuthorization))
			orig, known := readToken(raw)
			key, err := s.jwtKey(orig, known)
			if err != nil {
				return nil, k, cannot("%s", err)
			}
			k.JWT = key
			k.Issuer = firstOf(v.Issuer, orig.iss)
			k.Audience = firstOf(v.Audience, orig.aud)
			k.Org = firstOf(orig.sub, v.Org)
		case auth.SchemeStandard:
			if len(v.StandardSecrets) == 0 {
				return nil, k, cannot("standard cannot be re-signed: this receiver has no standard secret (start it with --standard-secret)")
			}
			if c.WebhookID == "" && first(c.Headers, svixID) == "" {
				return nil, k, cannot("standard cannot be re-signed: the original has no webhook-id to sign")
			}
			k.Standard = v.StandardSecrets
		}
	}
	return schemes, k, nil
}

// jwtKey picks the key a replayed JWT is signed with: the HS256 secret for
// an HS256 original, the replay key for an asymmetric one of the same
// algorithm; for an original without a readable token, whichever there is.
func (s *Server) jwtKey(orig tokenFacts, known bool) (*auth.SigningKey, error) {
	secret, priv := s.cfg.Verify.JWTSecret, s.cfg.ReplayKey
	switch {
	case !known && secret != nil:
		return &auth.SigningKey{Alg: auth.HS256, Secret: secret}, nil
	case !known && priv != nil:
		return priv, nil
	case !known:
		return nil, fmt.Errorf("jwt cannot be re-signed: this receiver has no jwt secret (--jwt-secret) and no private key (--jwt-private-key)")
	case orig.alg == string(auth.HS256):
		if secret == nil {
			return nil, fmt.Errorf("jwt cannot be re-signed: the original is HS256 and this receiver has no jwt secret (start it with --jwt-secret)")
		}
		return &auth.SigningKey{Alg: auth.HS256, Secret: secret}, nil
	case priv == nil:
		return nil, fmt.Errorf("jwt cannot be re-signed: the original is %s and this receiver has no private key (start it with --jwt-private-key FILE)", orig.alg)
	case string(priv.Alg) != orig.alg:
		return nil, fmt.Errorf("jwt cannot be re-signed: the original is %s and this receiver's private key is %s", orig.alg, priv.Alg)
	}
	return priv, nil
}

// firstOf is the first non-empty string.
func firstOf(vals ...string) string {
	for _, v := range vals {
		if v != "" {
			return v
		}
	}
	return ""
}

// replayHeaders is c's headers as a replay starts from them: without
// Svix-named credentials, and without svix-id when standard is re-signed.
func replayHeaders(c *Capture, schemes []string) http.Header {
	resign := slices.Contains(schemes, auth.SchemeStandard)
	h := make(http.Header, len(c.Headers))
	for k, v := range c.Headers {
		switch strings.ToLower(k) {
		case svixSignature, svixTimestamp:
			continue
		case svixID:
			if resign {
				continue
			}
		}
		h[k] = v
	}
	return h
}
