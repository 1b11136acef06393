package receiver

import (
	"encoding/json"
	"math"

	"github.com/sidehook/sidehook/internal/auth"
)

// Verdict statuses.
const (
	VerdictValid      = auth.StatusValid
	VerdictInvalid    = auth.StatusInvalid
	VerdictUnverified = auth.StatusUnverified
)

// Verdict is the outcome of a capture's verification (SPEC §5).
type Verdict struct {
	// Status is VerdictValid, VerdictInvalid or VerdictUnverified.
	Status string `json:"status"`
	// Scheme is the failing scheme when invalid; when valid, the schemes
	// checked, comma-separated in checking order (webio-token, jwt,
	// standard).
	Scheme string `json:"scheme"`
	// Reason is a short human reason when invalid.
	Reason string `json:"reason"`
	// Claims are the decoded claims of the last token checked, even when
	// it failed, as long as they could be decoded. Integer numbers (exp,
	// iat, nbf…) are int64, other numbers float64, as JSON decodes them.
	Claims map[string]any `json:"claims,omitempty"`
}

// keysUnavailable reports whether the request failed only for want of the
// keys to check its jwt: answered as unavailable (5xx), the sender
// retries; as a refusal (4xx) a sender such as the relay never would.
func (v Verdict) keysUnavailable() bool {
	return v.Status == VerdictInvalid && v.Scheme == auth.SchemeJWT && auth.KeysUnavailable(v.Reason)
}

// verdictOf converts the verifier's verdict.
func verdictOf(v auth.Verdict) Verdict {
	return Verdict{Status: v.Status, Scheme: v.Scheme, Reason: v.Reason, Claims: intClaims(v.Claims)}
}

// intClaims turns the integral numbers among the top-level claims into
// int64, in place: times come out of a token's JSON as float64 (or
// json.Number), and a test comparing exp with time.Unix wants an integer.
func intClaims(m map[string]any) map[string]any {
	for k, v := range m {
		switch x := v.(type) {
		case float64:
			if x == math.Trunc(x) && x >= math.MinInt64 && x < math.MaxInt64 {
				m[k] = int64(x)
			}
		case json.Number:
			if n, err := x.Int64(); err == nil {
				m[k] = n
			} else if f, err := x.Float64(); err == nil {
				m[k] = f
			}
		}
	}
	return m
}
