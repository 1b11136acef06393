package auth_test

import (
	"context"
	"fmt"
	"net/http"
	"testing"

	"github.com/sidehook/sidehook/internal/auth"
)

// BenchmarkVerifyHS256 is the receiver's hot path with --jwt-secret: one
// Bearer token, sha256 over a small body, jti recorded. Each iteration
// verifies a distinct token (signed outside the timer) so the replay cache
// does its real work.
func BenchmarkVerifyHS256(b *testing.B) {
	benchVerify(b, auth.HS256)
}

func BenchmarkVerifyES256(b *testing.B) { benchVerify(b, auth.ES256) }
func BenchmarkVerifyEdDSA(b *testing.B) { benchVerify(b, auth.EdDSA) }
func BenchmarkVerifyRS256(b *testing.B) { benchVerify(b, auth.RS256) }

// BenchmarkVerifyHS256AudienceArray verifies tokens whose aud is an array,
// the form golang-jwt's RegisteredClaims and most other signers write.
func BenchmarkVerifyHS256AudienceArray(b *testing.B) {
	benchVerifyTokens(b, auth.HS256, func(i int) string {
		c := goodClaims()
		c["aud"] = []string{"crm"}
		c["jti"] = fmt.Sprintf("jti-%d", i)
		return jwtHS256(b, c)
	})
}

func benchVerify(b *testing.B, alg auth.Algorithm) {
	k := signingKey(b, alg)
	benchVerifyTokens(b, alg, func(int) string { return attempt(b, k, body, nil) })
}

func benchVerifyTokens(b *testing.B, alg auth.Algorithm, token func(i int) string) {
	v := newVerifier(b, jwtConfig(b, alg))
	const pool = 4096
	reqs := make([]*http.Request, pool)
	for i := range reqs {
		reqs[i] = request(http.MethodPost, "/hook", body, bearer(token(i)))
	}
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		if i > 0 && i%pool == 0 {
			// Past the pool every jti is a replay; a fresh verifier keeps
			// measuring the accepting path.
			b.StopTimer()
			v = newVerifier(b, jwtConfig(b, alg))
			b.StartTimer()
		}
		if got := v.Verify(ctx, reqs[i%pool], body); got.Status != auth.StatusValid {
			b.Fatalf("got %+v, want valid", got)
		}
	}
}

func BenchmarkVerifyStandard(b *testing.B) {
	std := standardSecret(b)
	v := newVerifier(b, auth.VerifyConfig{StandardSecrets: [][]byte{std}})
	h := http.Header{}
	if err := auth.SignRequest(h, []string{auth.SchemeStandard}, auth.OutboundKeys{Standard: [][]byte{std}},
		auth.Outbound{WebhookID: "evt_1", Body: body, Timestamp: t0}); err != nil {
		b.Fatal(err)
	}
	r := request(http.MethodPost, "/hook", body, h)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if got := v.Verify(ctx, r, body); got.Status != auth.StatusValid {
			b.Fatalf("got %+v, want valid", got)
		}
	}
}

// BenchmarkSignRequest is the relay's per-attempt cost for an endpoint
// with every scheme.
func BenchmarkSignRequest(b *testing.B) {
	for _, alg := range []auth.Algorithm{auth.HS256, auth.ES256, auth.EdDSA, auth.RS256} {
		b.Run(string(alg), func(b *testing.B) {
			k := signingKey(b, alg)
			keys := auth.OutboundKeys{WebioToken: "t", JWT: &k, Org: "demo", Audience: "crm", Standard: [][]byte{standardSecret(b)}}
			o := auth.Outbound{Method: "POST", WebhookID: "evt_1", Event: "payment", Body: body, Timestamp: t0}
			schemes := []string{auth.SchemeWebioToken, auth.SchemeJWT, auth.SchemeStandard}
			b.ReportAllocs()
			for b.Loop() {
				if err := auth.SignRequest(http.Header{}, schemes, keys, o); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
