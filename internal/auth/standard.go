package auth

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// StandardSecretPrefix starts every Standard Webhooks secret.
const StandardSecretPrefix = "whsec_"

// DefaultStandardTolerance is how far webhook-timestamp may be from now,
// either way (the Standard Webhooks reference libraries use 5 minutes).
const DefaultStandardTolerance = 5 * time.Minute

// maxStandardSignatures bounds the entries of one webhook-signature header
// checked, so a header of thousands of entries costs no more than a few.
const maxStandardSignatures = 16

// ParseStandardSecret decodes a "whsec_" + base64 secret into its key bytes.
func ParseStandardSecret(s string) ([]byte, error) {
	rest, ok := strings.CutPrefix(strings.TrimSpace(s), StandardSecretPrefix)
	if !ok {
		return nil, errors.New(`auth: standard secret must start with "whsec_"`)
	}
	key, err := base64.StdEncoding.DecodeString(rest)
	if err != nil {
		// Some issuers drop the padding.
		if key, err = base64.RawStdEncoding.DecodeString(rest); err != nil {
			return nil, errors.New("auth: standard secret: invalid base64 after whsec_")
		}
	}
	if len(key) < MinStandardSecretLen {
		return nil, fmt.Errorf("auth: standard secret must decode to at least %d bytes, got %d", MinStandardSecretLen, len(key))
	}
	return key, nil
}

// FormatStandardSecret encodes key bytes as a "whsec_" secret.
func FormatStandardSecret(key []byte) string {
	return StandardSecretPrefix + base64.StdEncoding.EncodeToString(key)
}

// SignStandard returns the webhook-signature value for one secret:
// "v1," + base64 HMAC-SHA256(secret, "{id}.{unix seconds}.{body}").
func SignStandard(secret []byte, id string, ts time.Time, body []byte) string {
	return "v1," + base64.StdEncoding.EncodeToString(standardMAC(secret, id, strconv.FormatInt(ts.Unix(), 10), body))
}

// SignStandardMulti signs with every secret, space-separated, so receivers
// holding either the old or the new secret accept the request during a
// rotation.
func SignStandardMulti(secrets [][]byte, id string, ts time.Time, body []byte) string {
	parts := make([]string, len(secrets))
	for i, s := range secrets {
		parts[i] = SignStandard(s, id, ts, body)
	}
	return strings.Join(parts, " ")
}

// standardMAC signs the header strings as received: the signature covers
// the exact timestamp text, not a re-formatted number.
func standardMAC(secret []byte, id, ts string, body []byte) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(id))
	m.Write([]byte{'.'})
	m.Write([]byte(ts))
	m.Write([]byte{'.'})
	m.Write(body)
	return m.Sum(nil)
}

// ParseStandardSignatures splits a webhook-signature header into the
// decoded MACs of its "v1," entries. Entries of other versions are skipped
// (a future v1a must not break v1 receivers); an entry that claims v1 but
// does not decode is skipped too. At most maxStandardSignatures are kept.
func ParseStandardSignatures(header string) [][]byte {
	sigs, _ := parseStandardSignatures(header)
	return sigs
}

// parseStandardSignatures is ParseStandardSignatures that also counts the
// v1 entries left unchecked past the limit, so a refusal can say so.
func parseStandardSignatures(header string) (sigs [][]byte, unchecked int) {
	for _, entry := range strings.Fields(header) {
		version, value, ok := strings.Cut(entry, ",")
		if !ok || version != "v1" {
			continue
		}
		if len(sigs) == maxStandardSignatures {
			unchecked++
			continue
		}
		mac, err := base64.StdEncoding.Strict().DecodeString(value)
		if err != nil || len(mac) != sha256.Size {
			continue
		}
		sigs = append(sigs, mac)
	}
	return sigs, unchecked
}

// standardHeaders are the three header values of a Standard Webhooks
// request and the names they came under, for the reasons.
type standardHeaders struct {
	prefix             string // "webhook-" or "svix-"
	id, timestamp, sig string
}

// standardHeadersOf picks the header set as Svix's library does: the
// svix-* names when all three are present, else the webhook-* names. A
// request that carries only some svix-* headers and no webhook-* header
// is read under the svix-* names, so its reason names what is missing.
func standardHeadersOf(h http.Header) standardHeaders {
	svix := standardHeaders{prefix: "svix-",
		id: h.Get(canonicalSvixID), timestamp: h.Get(canonicalSvixTimestamp), sig: h.Get(canonicalSvixSignature)}
	std := standardHeaders{prefix: "webhook-",
		id: h.Get(canonicalWebhookID), timestamp: h.Get(canonicalTimestamp), sig: h.Get(canonicalSignature)}
	switch {
	case svix.id != "" && svix.timestamp != "" && svix.sig != "":
		return svix
	case std.id == "" && std.timestamp == "" && std.sig == "" && (svix.id != "" || svix.timestamp != "" || svix.sig != ""):
		return svix
	}
	return std
}

// VerifyStandard checks a Standard Webhooks request: the timestamp within
// tolerance of now, and any v1 signature matching any secret. It returns a
// short reason when the request does not pass, "" when it does.
func VerifyStandard(secrets [][]byte, id, timestamp, signature string, body []byte, now time.Time, tolerance time.Duration) string {
	return verifyStandard(secrets, standardHeaders{prefix: "webhook-", id: id, timestamp: timestamp, sig: signature}, body, now, tolerance)
}

func verifyStandard(secrets [][]byte, h standardHeaders, body []byte, now time.Time, tolerance time.Duration) string {
	switch {
	case h.id == "":
		return "missing " + h.prefix + "id header"
	case h.timestamp == "":
		return "missing " + h.prefix + "timestamp header"
	case h.sig == "":
		return "missing " + h.prefix + "signature header"
	}
	ts, err := strconv.ParseInt(h.timestamp, 10, 64)
	if err != nil {
		return "invalid " + h.prefix + "timestamp header " + strconv.Quote(clip(h.timestamp)) + ", want unix seconds"
	}
	if tolerance <= 0 {
		tolerance = DefaultStandardTolerance
	}
	tol := int64(tolerance / time.Second)
	n := now.Unix()
	// Arithmetic only on now and the tolerance, never on the untrusted
	// timestamp, so extreme values cannot overflow past the check. A
	// timestamp exactly the tolerance old is refused, as the reference
	// libraries refuse it (their clocks read past the whole second).
	if ts <= n-tol {
		return fmt.Sprintf("timestamp too old: %stimestamp %d, now %d, tolerance %s", h.prefix, ts, n, tolerance)
	}
	if ts > n+tol {
		return fmt.Sprintf("timestamp too new: %stimestamp %d, now %d, tolerance %s", h.prefix, ts, n, tolerance)
	}
	sigs, unchecked := parseStandardSignatures(h.sig)
	if len(sigs) == 0 {
		return "no v1 signature in " + h.prefix + "signature header: it carries " + describeSignatures(h.sig) +
			`; want "v1,<base64 of an HMAC-SHA256>"`
	}
	for _, secret := range secrets {
		want := standardMAC(secret, h.id, h.timestamp, body)
		for _, sig := range sigs {
			if hmac.Equal(sig, want) {
				return ""
			}
		}
	}
	if unchecked > 0 {
		return fmt.Sprintf("signature mismatch in the first %d v1 signatures; %d more were not checked", maxStandardSignatures, unchecked)
	}
	// What was signed, as received, so a sender can compare it with what
	// it signed; the signatures and secrets are only counted.
	return "signature mismatch: none of " + plural(len(sigs), "v1 signature", "v1 signatures") + " matches " +
		h.prefix + "id " + strconv.Quote(clipTo(h.id, maxClaimText)) + ", " + h.prefix + "timestamp " + strconv.Quote(h.timestamp) +
		" and the " + strconv.Itoa(len(body)) + "-byte body under " + plural(len(secrets), "secret", "secrets")
}

// maxNamedVersions is how many signature versions a reason names.
const maxNamedVersions = 4

// describeSignatures says what a signature header without a usable v1
// signature carries: the versions of its entries and how many of each,
// never the signatures themselves (nor a version that does not read as
// one: it may be a signature sent without its version).
func describeSignatures(header string) string {
	type version struct {
		name string
		n    int
	}
	var (
		versions                []version
		bare, unreadable, badV1 int
	)
	for _, entry := range strings.Fields(header) {
		name, _, ok := strings.Cut(entry, ",")
		switch {
		case !ok:
			bare++
		case !isVersionName(name):
			unreadable++
		case name == "v1":
			// Here only when no v1 entry decoded.
			badV1++
		default:
			i := slices.IndexFunc(versions, func(v version) bool { return v.name == name })
			if i < 0 {
				i = len(versions)
				versions = append(versions, version{name: name})
			}
			versions[i].n++
		}
	}
	var parts []string
	for _, v := range versions[:min(len(versions), maxNamedVersions)] {
		parts = append(parts, plural(v.n, strconv.Quote(v.name)+" signature", strconv.Quote(v.name)+" signatures"))
	}
	if len(versions) > maxNamedVersions {
		n := 0
		for _, v := range versions[maxNamedVersions:] {
			n += v.n
		}
		parts = append(parts, plural(n, "signature", "signatures")+" of "+plural(len(versions)-maxNamedVersions, "other version", "other versions"))
	}
	if badV1 > 0 {
		parts = append(parts, plural(badV1, "v1 signature that is", "v1 signatures that are")+" not the base64 of 32 bytes")
	}
	if unreadable > 0 {
		parts = append(parts, plural(unreadable, "entry whose version is", "entries whose versions are")+" not a version name")
	}
	if bare > 0 {
		parts = append(parts, plural(bare, "entry", "entries")+" without a version")
	}
	switch len(parts) {
	case 0:
		return "no entry"
	case 1:
		return parts[0]
	}
	return strings.Join(parts[:len(parts)-1], ", ") + " and " + parts[len(parts)-1]
}

// plural is n and the singular or plural noun it counts.
func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return strconv.Itoa(n) + " " + many
}

// isVersionName reports whether s reads as a signature version (v1, v1a,
// v2…): short, a letter, then letters and digits.
func isVersionName(s string) bool {
	if s == "" || len(s) > 8 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		letter := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
		if !letter && (i == 0 || c < '0' || c > '9') {
			return false
		}
	}
	return true
}
