package auth

// CanonicalHeaders maps each Header* name to the form Verify looks up.
var CanonicalHeaders = map[string]string{
	HeaderWebioToken:    canonicalWebioToken,
	HeaderAuthorization: canonicalAuthorization,
	HeaderWebhookID:     canonicalWebhookID,
	HeaderTimestamp:     canonicalTimestamp,
	HeaderSignature:     canonicalSignature,
	HeaderSvixID:        canonicalSvixID,
	HeaderSvixTimestamp: canonicalSvixTimestamp,
	HeaderSvixSignature: canonicalSvixSignature,
}
