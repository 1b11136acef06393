package auth_test

import (
	"encoding/base64"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sidehook/sidehook/internal/auth"
)

// rawHS256 signs a token whose header and claims are raw JSON text, so a
// test can send what json.Marshal never writes.
func rawHS256(header, claims string) string {
	enc := base64.RawURLEncoding
	input := enc.EncodeToString([]byte(header)) + "." + enc.EncodeToString([]byte(claims))
	return input + "." + enc.EncodeToString(hmacSHA256(secret, input))
}

// nonCanonicalHS256 signs claims whose base64 has non-zero padding bits:
// a lax decoder reads the same bytes, a strict one refuses the segment.
func nonCanonicalHS256(claims string) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	enc := base64.RawURLEncoding
	for len(enc.EncodeToString([]byte(claims)))%4 == 0 {
		claims = " " + claims
	}
	seg := enc.EncodeToString([]byte(claims))
	last := strings.IndexByte(alphabet, seg[len(seg)-1])
	seg = seg[:len(seg)-1] + string(alphabet[last^1])
	input := enc.EncodeToString([]byte(`{"alg":"HS256","typ":"JWT"}`)) + "." + seg
	return input + "." + enc.EncodeToString(hmacSHA256(secret, input))
}

// TestVerify_OddTokens pins the verdicts on tokens at the edges of JWS and
// JSON, signed with the right secret: the ones a hand-written decoder is
// likely to read differently from golang-jwt. They were recorded when a
// fast path still sat in front of the parser and agreed with it, and did
// not move when the parser came to read every token alone, except for the
// out-of-range times below.
func TestVerify_OddTokens(t *testing.T) {
	t.Parallel()
	const hdr = `{"alg":"HS256","typ":"JWT"}`
	exp := strconv.FormatInt(t0.Add(5*time.Minute).Unix(), 10)
	good := `"iss":"sidehook","sub":"demo","aud":"crm","iat":1800000000,"nbf":1800000000,"exp":` + exp +
		`,"jti":"odd","evt":"payment","wid":"evt_1","sha256":"` + auth.BodyHash(body) + `"`
	valid := attempt(t, signingKey(t, auth.HS256), body, nil)
	parts := strings.Split(valid, ".")
	tests := []struct {
		name, token, want string // want "": valid
	}{
		{name: "OKSurroundingSpace", token: " " + valid + " "},
		{name: "OKMinimalHeader", token: rawHS256(`{"alg":"HS256"}`, "{"+good+"}")},
		{name: "OKWhitespaceEverywhere", token: rawHS256(` { "alg" : "HS256" } `, " { "+strings.ReplaceAll(good, ",", " ,\n\t")+" } ")},
		{name: "OKDuplicateAlgLastWins", token: rawHS256(`{"alg":"none","alg":"HS256"}`, "{"+good+"}")},
		{name: "ErrDuplicateAlgLastNone", token: rawHS256(`{"alg":"HS256","alg":"none"}`, "{"+good+"}"), want: `unexpected signing method "none", want HS256`},
		{name: "OKKidNotAStringForHMAC", token: rawHS256(`{"alg":"HS256","kid":7}`, "{"+good+"}")},
		{name: "ErrCrit", token: rawHS256(`{"alg":"HS256","crit":["exp"]}`, "{"+good+"}"), want: `unsupported crit header ["exp"], want none: no extension is understood`},
		{name: "ErrCritNull", token: rawHS256(`{"alg":"HS256","crit":null}`, "{"+good+"}"), want: "unsupported crit header null, want none: no extension is understood"},
		{name: "ErrAlgNoneSigned", token: rawHS256(`{"alg":"none"}`, "{"+good+"}"), want: `unexpected signing method "none", want HS256`},
		{name: "ErrAlgLowerCase", token: rawHS256(`{"alg":"hs256"}`, "{"+good+"}"), want: `unexpected signing method "hs256", want HS256`},
		{name: "ErrAlgNull", token: rawHS256(`{"alg":null}`, "{"+good+"}"), want: "missing alg header, want HS256"},
		{name: "ErrHeaderNull", token: rawHS256(`null`, "{"+good+"}"), want: "missing alg header, want HS256"},
		{name: "ErrHeaderArray", token: rawHS256(`["HS256"]`, "{"+good+"}"), want: "malformed token: its header does not decode as one JSON object"},
		{name: "ErrHeaderTrailingBytes", token: rawHS256(`{"alg":"HS256"}x`, "{"+good+"}"), want: "malformed token: its header does not decode as one JSON object"},
		{name: "OKDuplicateClaimLastWins", token: rawHS256(hdr, "{"+good+`,"exp":1,"exp":`+exp+"}")},
		{name: "ErrDuplicateClaimLastExpired", token: rawHS256(hdr, "{"+good+`,"exp":`+exp+`,"exp":1}`), want: "token expired: exp 1970-01-01T00:00:01Z, now " + stamp(t0)},
		{name: "OKClaimsTrailingSpace", token: rawHS256(hdr, "{"+good+"} ")},
		{name: "ErrClaimsTrailingBytes", token: rawHS256(hdr, "{"+good+"}x"), want: "malformed token: its claims do not decode as one JSON object"},
		{name: "ErrClaimsTwoObjects", token: rawHS256(hdr, "{"+good+"}{}"), want: "malformed token: its claims do not decode as one JSON object"},
		{name: "ErrByteOrderMark", token: rawHS256(hdr, "\ufeff{"+good+"}"), want: "malformed token: its claims do not decode as one JSON object"},
		{name: "ErrTrailingComma", token: rawHS256(hdr, "{"+good+",}"), want: "malformed token: its claims do not decode as one JSON object"},
		{name: "OKAudienceArray", token: rawHS256(hdr, "{"+good+`,"aud":["crm","billing"]}`)},
		{name: "ErrExpString", token: rawHS256(hdr, "{"+good+`,"exp":"`+exp+`"}`), want: `invalid exp claim "` + exp + `"` + timeWant},
		{name: "ErrExpNull", token: rawHS256(hdr, "{"+good+`,"exp":null}`), want: "invalid exp claim null" + timeWant},
		{name: "ErrExpZero", token: rawHS256(hdr, "{"+good+`,"exp":0}`), want: "missing required claim"},
		{name: "ErrExpOverflow", token: rawHS256(hdr, "{"+good+`,"exp":1e400}`), want: "malformed token: its claims do not decode as one JSON object"},
		// Time claims beyond years 1 to 9999 are refused as invalid rather
		// than read: golang-jwt's int64 conversion wraps them, so 1e20
		// read as a date long past (an iat or nbf far in the future
		// passed; -1e300 was "token expired").
		{name: "ErrExpHugeNegative", token: rawHS256(hdr, "{"+good+`,"exp":-1e300}`), want: "invalid exp claim -1e+300" + timeWant},
		{name: "ErrIatOverflow", token: rawHS256(hdr, "{"+good+`,"iat":1e20}`), want: "invalid iat claim 100000000000000000000" + timeWant},
		{name: "ErrNbfOverflow", token: rawHS256(hdr, "{"+good+`,"nbf":1e20}`), want: "invalid nbf claim 100000000000000000000" + timeWant},
		{name: "ErrIatAfterYear9999", token: rawHS256(hdr, "{"+good+`,"iat":253402300800}`), want: "invalid iat claim 253402300800" + timeWant},
		{name: "OKExpExponent", token: rawHS256(hdr, "{"+good+`,"exp":18000003e2}`)},
		{name: "OKExpFraction", token: rawHS256(hdr, "{"+good+`,"exp":1800000300.999999999}`)},
		{name: "ErrExpLeadingZero", token: rawHS256(hdr, "{"+good+`,"exp":01800000300}`), want: "malformed token: its claims do not decode as one JSON object"},
		{name: "ErrExpHex", token: rawHS256(hdr, "{"+good+`,"exp":0x6B49D42C}`), want: "malformed token: its claims do not decode as one JSON object"},
		{name: "ErrSHA256Null", token: rawHS256(hdr, "{"+good+`,"sha256":null}`), want: "sha256 claim null does not match the body's " + hashOf(string(body))},
		{name: "OKEscapes", token: rawHS256(hdr, "{"+good+`,"e\u0076t":"pay\u006dent"}`)},
		{name: "OKInvalidUTF8", token: rawHS256(hdr, "{"+good+",\"evt\":\"pay\xffment\"}")},
		{name: "ErrControlCharacter", token: rawHS256(hdr, "{"+good+",\"evt\":\"tab\there\"}"), want: "malformed token: its claims do not decode as one JSON object"},
		{name: "OKNested", token: rawHS256(hdr, "{"+good+`,"x":{"y":[1,{}]}}`)},
		{name: "ErrBadLiteral", token: rawHS256(hdr, "{"+good+`,"x":tru}`), want: "malformed token: its claims do not decode as one JSON object"},
		{name: "ErrUnterminated", token: rawHS256(hdr, "{"+good), want: "malformed token: its claims do not decode as one JSON object"},
		{name: "ErrClaimsNull", token: rawHS256(hdr, "null"), want: "missing exp claim"},
		{name: "ErrClaimsArray", token: rawHS256(hdr, "[]"), want: "malformed token: its claims do not decode as one JSON object"},
		{name: "ErrClaimsEmpty", token: rawHS256(hdr, ""), want: "malformed token: its claims do not decode as one JSON object"},
		{name: "ErrNonCanonicalBase64", token: nonCanonicalHS256("{" + good + "}"), want: "malformed token: its claims are not (canonical) base64url"},
		{name: "ErrNoSignature", token: parts[0] + "." + parts[1] + ".", want: "signature mismatch"},
		{name: "ErrPaddedSignature", token: valid + "=", want: "malformed token: its signature is not (canonical) base64url"},
		{name: "ErrFourSegments", token: valid + ".", want: "malformed token: 4 dot-separated parts, want 3 (header.claims.signature)"},
		{name: "ErrBearerTwice", token: "Bearer " + valid, want: "malformed token: its header is not (canonical) base64url"},
		{name: "ErrDots", token: "..", want: "malformed token: its header does not decode as one JSON object"},
	}
	v := newVerifier(t, auth.VerifyConfig{JWTSecret: secret, MaxJTIs: -1})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := verify(v, request(http.MethodPost, "/hook", body, bearer(tt.token)), body)
			if tt.want == "" {
				if got.Status != auth.StatusValid {
					t.Fatalf("got %+v, want valid", got)
				}
				return
			}
			if got.Status != auth.StatusInvalid || got.Reason != tt.want {
				t.Fatalf("got %+v, want invalid %q", got, tt.want)
			}
		})
	}
}

func TestCanonicalHeaders(t *testing.T) {
	t.Parallel()
	for name, canonical := range auth.CanonicalHeaders {
		if want := http.CanonicalHeaderKey(name); canonical != want {
			t.Errorf("%s: got %q, want %q", name, canonical, want)
		}
	}
}
