package auth_test

import (
	"encoding/base64"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/sidehook/sidehook/internal/auth"
)

// withKID is k under another key id.
func withKID(k auth.SigningKey, kid string) auth.SigningKey {
	k.KID = kid
	return k
}

// TestReasonsNameValues: a refusal names what came and what was wanted,
// never a key, a secret or a signature.
func TestReasonsNameValues(t *testing.T) {
	t.Parallel()
	pairs := keyPairs()
	longKID := strings.Repeat("K", 43) // a thumbprint's length
	jwks := newJWKSServer(t, withKID(pairs[auth.ES256], "ec-1"), withKID(pairs[auth.EdDSA], "ed-1"), withKID(pairs[auth.RS256], longKID))
	jv := newVerifier(t, auth.VerifyConfig{JWKS: auth.NewJWKSFetcher(jwks.URL, jwks.Client(), auth.JWKSOptions{Now: fixedNow}), Now: fixedNow})
	hv := newVerifier(t, auth.VerifyConfig{JWTSecret: secret, Now: fixedNow})
	down := newJWKSServer(t, pairs[auth.ES256])
	down.status = http.StatusBadGateway
	dv := newVerifier(t, auth.VerifyConfig{JWKS: auth.NewJWKSFetcher(down.URL, down.Client(), auth.JWKSOptions{Now: fixedNow}), Now: fixedNow})
	withPassword := strings.Replace(down.URL, "://", "://user:hunter2@", 1)
	pv := newVerifier(t, auth.VerifyConfig{JWKS: auth.NewJWKSFetcher(withPassword, down.Client(), auth.JWKSOptions{Now: fixedNow}), Now: fixedNow})
	std := standardSecret(t)
	sv := newVerifier(t, auth.VerifyConfig{StandardSecrets: [][]byte{std}, Now: fixedNow})
	ts := strconv.FormatInt(t0.Unix(), 10)
	standard := func(prefix, sig string) http.Header {
		h := http.Header{}
		h.Set(prefix+"id", "evt_1")
		h.Set(prefix+"timestamp", ts)
		h.Set(prefix+"signature", sig)
		return h
	}
	mac := base64.StdEncoding.EncodeToString(make([]byte, 32))
	short := base64.StdEncoding.EncodeToString([]byte("sixteen byte mac"))
	critToken := func(crit any) http.Header {
		return bearer(forge(map[string]any{"alg": "HS256", "crit": crit, "b64": false}, goodClaims(), hmacSign(secret)))
	}
	const wantV1 = `; want "v1,<base64 of an HMAC-SHA256>"`
	b64 := base64.RawURLEncoding.EncodeToString
	hdr, claims := b64([]byte(`{"alg":"HS256"}`)), b64([]byte(`{"exp":1}`))
	malformed := func(tok string) http.Header { return bearer(tok) }
	otherEC := withKID(otherKeyPairs()[auth.ES256], "zz")
	wrongSig := "v1," + mac + " v1," + base64.StdEncoding.EncodeToString(hmacSHA256(otherSecret, "x"))
	bodyLen := strconv.Itoa(len(body))
	tests := []struct {
		name   string
		v      *auth.Verifier
		header http.Header
		want   string
		// hidden must not show in the reason: signatures, keys.
		hidden []string
	}{
		{name: "MissingKID", v: jv, header: bearer(forge(map[string]any{"alg": "ES256"}, goodClaims(), func(string) []byte { return make([]byte, 64) })),
			want: `missing kid header (alg ES256): the JWKS has 3 keys, a kid must name one of ES256 "ec-1", EdDSA "ed-1", RS256 "` + longKID[:16] + `…"`},
		{name: "UnknownKID", v: jv, header: bearer(attempt(t, otherEC, body, nil)),
			want: `unknown key id "zz", not in the JWKS, which has 3 keys: ES256 "ec-1", EdDSA "ed-1", RS256 "` + longKID[:16] + `…"`},
		{name: "MalformedParts", v: hv, header: malformed("not.a"), want: "malformed token: 2 dot-separated parts, want 3 (header.claims.signature)"},
		{name: "MalformedManyParts", v: hv, header: malformed(hdr + "." + claims + ".c.d"), want: "malformed token: 4 dot-separated parts, want 3 (header.claims.signature)"},
		{name: "MalformedHeaderBase64", v: hv, header: malformed("!!." + claims + ".c"), want: "malformed token: its header is not (canonical) base64url"},
		{name: "MalformedHeaderJSON", v: hv, header: malformed(b64([]byte(`["HS256"]`)) + "." + claims + ".c"), want: "malformed token: its header does not decode as one JSON object"},
		{name: "MalformedClaimsBase64", v: hv, header: malformed(hdr + ".!!.c"), want: "malformed token: its claims are not (canonical) base64url"},
		{name: "MalformedClaimsJSON", v: hv, header: malformed(hdr + "." + b64([]byte(`{"exp":`)) + ".c"), want: "malformed token: its claims do not decode as one JSON object"},
		{name: "MalformedSignature", v: hv, header: malformed(hdr + "." + claims + ".!!"), want: "malformed token: its signature is not (canonical) base64url"},
		{name: "MissingAlg", v: hv, header: bearer(forge(map[string]any{"typ": "JWT"}, goodClaims(), hmacSign(secret))), want: "missing alg header, want HS256"},
		{name: "MissingAlgJWKS", v: jv, header: bearer(forge(map[string]any{"kid": "ec-1"}, goodClaims(), hmacSign(secret))), want: "missing alg header, want one of RS256, ES256, EdDSA"},
		{name: "StandardMismatch", v: sv, header: standard("webhook-", wrongSig),
			want: `signature mismatch: none of 2 v1 signatures matches webhook-id "evt_1", webhook-timestamp "` + ts + `" and the ` + bodyLen + `-byte body under 1 secret`, hidden: []string{mac}},
		{name: "StandardMismatchSvix", v: sv, header: standard("svix-", "v1,"+mac),
			want: `signature mismatch: none of 1 v1 signature matches svix-id "evt_1", svix-timestamp "` + ts + `" and the ` + bodyLen + `-byte body under 1 secret`, hidden: []string{mac}},
		{name: "SignatureMismatchKID", v: jv, header: bearer(attempt(t, withKID(otherKeyPairs()[auth.ES256], "ec-1"), body, nil)),
			want: `signature mismatch (alg ES256, kid "ec-1")`},
		{name: "SignatureMismatchLongKID", v: jv, header: bearer(attempt(t, withKID(otherKeyPairs()[auth.RS256], longKID), body, nil)),
			want: `signature mismatch (alg RS256, kid "` + longKID[:16] + `…")`},
		{name: "SignatureMismatchNoKID", v: hv, header: bearer(attempt(t, mustHMAC(t, otherSecret), body, nil)), want: "signature mismatch"},
		{name: "KeysUnavailable", v: dv, header: bearer(attempt(t, pairs[auth.ES256], body, nil)),
			want: "jwks unavailable: fetch " + down.URL + ": status 502"},
		{name: "KeysUnavailablePassword", v: pv, header: bearer(attempt(t, pairs[auth.ES256], body, nil)),
			want: "jwks unavailable: fetch " + strings.Replace(down.URL, "://", "://user:xxxxx@", 1) + ": status 502", hidden: []string{"hunter2"}},
		{name: "Crit", v: hv, header: critToken([]string{"b64"}), want: `unsupported crit header ["b64"], want none: no extension is understood`},
		{name: "CritNull", v: hv, header: critToken(nil), want: `unsupported crit header null, want none: no extension is understood`},
		{name: "CritLong", v: hv, header: critToken([]string{strings.Repeat("x", 100)}),
			want: `unsupported crit header ["` + strings.Repeat("x", 62) + `…, want none: no extension is understood`},
		{name: "NoV1OtherVersionAndBare", v: sv, header: standard("webhook-", "v2,abc garbage"),
			want: `no v1 signature in webhook-signature header: it carries 1 "v2" signature and 1 entry without a version` + wantV1, hidden: []string{"abc", "garbage"}},
		{name: "NoV1Versions", v: sv, header: standard("webhook-", "v1a,"+mac+" v2,"+mac+" v1a,"+mac),
			want: `no v1 signature in webhook-signature header: it carries 2 "v1a" signatures and 1 "v2" signature` + wantV1, hidden: []string{mac}},
		{name: "NoV1Undecodable", v: sv, header: standard("webhook-", "v1,"+short+" v1,!!!"),
			want: `no v1 signature in webhook-signature header: it carries 2 v1 signatures that are not the base64 of 32 bytes` + wantV1, hidden: []string{short, "!!!"}},
		{name: "NoV1UnreadableVersion", v: sv, header: standard("webhook-", mac+","+mac),
			want: `no v1 signature in webhook-signature header: it carries 1 entry whose version is not a version name` + wantV1, hidden: []string{mac}},
		{name: "NoV1ManyVersions", v: sv, header: standard("webhook-", "v2,a v3,a v4,a v5,a v6,a v7,a"),
			want: `no v1 signature in webhook-signature header: it carries 1 "v2" signature, 1 "v3" signature, 1 "v4" signature, 1 "v5" signature and 2 signatures of 2 other versions` + wantV1},
		{name: "NoV1Svix", v: sv, header: standard("svix-", "v2,"+mac),
			want: `no v1 signature in svix-signature header: it carries 1 "v2" signature` + wantV1, hidden: []string{mac}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := verify(tt.v, request("POST", "/", body, tt.header), body)
			if got.Reason != tt.want {
				t.Errorf("reason:\n got %s\nwant %s", got.Reason, tt.want)
			}
			for _, h := range tt.hidden {
				if strings.Contains(got.Reason, h) {
					t.Errorf("reason %q shows %q, want it hidden", got.Reason, h)
				}
			}
		})
	}
}

// mustHMAC is an HS256 signing key of secret.
func mustHMAC(tb testing.TB, secret []byte) auth.SigningKey {
	tb.Helper()
	k, err := auth.HMACKey(secret)
	if err != nil {
		tb.Fatal(err)
	}
	return k
}
