package auth

// Hooks for the external tests of the token fast path.

// NewReferenceVerifier is NewVerifier with the fast path turned off: every
// token goes through golang-jwt's parser, the reference the fast path must
// agree with.
func NewReferenceVerifier(cfg VerifyConfig) (*Verifier, error) {
	v, err := NewVerifier(cfg)
	if err != nil {
		return nil, err
	}
	for _, c := range []*tokenCheck{v.webio, v.jwt} {
		if c != nil {
			c.referenceOnly = true
		}
	}
	return v, nil
}

// CachedHeaders is the number of decoded token headers v holds, over all
// its schemes.
func (v *Verifier) CachedHeaders() int {
	n := 0
	for _, c := range []*tokenCheck{v.webio, v.jwt} {
		if c != nil {
			n += c.headers.size()
		}
	}
	return n
}

const (
	MaxCachedHeaders   = maxCachedHeaders
	MaxCachedHeaderLen = maxCachedHeaderLen
)

var (
	DecodeClaims     = decodeClaims
	DecodeFlatObject = decodeFlatObject
)

// CanonicalHeaders maps each Header* name to the form Verify looks up.
var CanonicalHeaders = map[string]string{
	HeaderWebioToken:    canonicalWebioToken,
	HeaderAuthorization: canonicalAuthorization,
	HeaderWebhookID:     canonicalWebhookID,
	HeaderTimestamp:     canonicalTimestamp,
	HeaderSignature:     canonicalSignature,
}
