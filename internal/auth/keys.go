package auth

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
)

// Algorithm is a JWS algorithm sidehook signs and verifies with. Each one is
// tied to exactly one key type, which is what defeats algorithm confusion.
type Algorithm string

// The supported algorithms.
const (
	HS256 Algorithm = "HS256"
	RS256 Algorithm = "RS256"
	ES256 Algorithm = "ES256"
	EdDSA Algorithm = "EdDSA"
)

// minRSABits is the smallest RSA modulus accepted for signing or verifying.
const minRSABits = 2048

// PEM header names that keep a persisted key's algorithm and key id.
const (
	pemHeaderAlg = "Alg"
	pemHeaderKid = "Kid"
)

// ParseAlgorithm reads an algorithm name, case-insensitively.
func ParseAlgorithm(s string) (Algorithm, error) {
	for _, a := range []Algorithm{HS256, RS256, ES256, EdDSA} {
		if strings.EqualFold(strings.TrimSpace(s), string(a)) {
			return a, nil
		}
	}
	return "", fmt.Errorf("auth: unknown algorithm %q (want HS256, RS256, ES256 or EdDSA)", s)
}

// Asymmetric reports whether the algorithm signs with a key pair.
func (a Algorithm) Asymmetric() bool {
	return a == RS256 || a == ES256 || a == EdDSA
}

// SigningKey is what signs per-attempt JWTs: the organisation's secret for
// HS256, or one of the relay's key pairs.
type SigningKey struct {
	Alg Algorithm
	// KID is the key id put in the JWT header and the JWKS; for key pairs it
	// is the RFC 7638 thumbprint unless set otherwise.
	KID string
	// Secret is the HMAC key (HS256 only), at least MinSecretLen bytes.
	Secret []byte
	// Private is *rsa.PrivateKey (RS256, >= 2048 bits), *ecdsa.PrivateKey
	// on P-256 (ES256) or ed25519.PrivateKey (EdDSA).
	Private crypto.Signer
}

// HMACKey returns an HS256 signing key for a secret, checking its length.
func HMACKey(secret []byte) (SigningKey, error) {
	k := SigningKey{Alg: HS256, Secret: secret}
	if err := k.validate(); err != nil {
		return SigningKey{}, err
	}
	return k, nil
}

// GenerateKey makes a fresh key pair for an asymmetric algorithm, with its
// KID set to the key's thumbprint. HS256 has no generated key: it signs with
// the organisation's secret key (see HMACKey).
func GenerateKey(alg Algorithm) (SigningKey, error) {
	var (
		priv crypto.Signer
		err  error
	)
	switch alg {
	case RS256:
		priv, err = rsa.GenerateKey(rand.Reader, minRSABits)
	case ES256:
		priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case EdDSA:
		_, priv, err = ed25519.GenerateKey(rand.Reader)
	case HS256:
		return SigningKey{}, errors.New("auth: generate key: HS256 signs with the organisation's secret key, not a generated key")
	default:
		return SigningKey{}, fmt.Errorf("auth: generate key: unknown algorithm %q", alg)
	}
	if err != nil {
		return SigningKey{}, fmt.Errorf("auth: generate %s key: %w", alg, err)
	}
	return newAsymmetricKey(alg, "", priv)
}

// newAsymmetricKey checks that priv fits alg and fills in the KID.
func newAsymmetricKey(alg Algorithm, kid string, priv crypto.Signer) (SigningKey, error) {
	got, err := algorithmFor(priv.Public())
	if err != nil {
		return SigningKey{}, fmt.Errorf("auth: %w", err)
	}
	if alg == "" {
		alg = got
	}
	if got != alg {
		return SigningKey{}, fmt.Errorf("auth: key is for %s, not %s", got, alg)
	}
	if kid == "" {
		jwk, err := publicJWK(priv.Public(), alg, "")
		if err != nil {
			return SigningKey{}, err
		}
		if kid, err = jwk.Thumbprint(); err != nil {
			return SigningKey{}, err
		}
	}
	return SigningKey{Alg: alg, KID: kid, Private: priv}, nil
}

// validate checks that the key material matches the algorithm.
func (k SigningKey) validate() error {
	switch k.Alg {
	case HS256:
		if len(k.Secret) < MinSecretLen {
			return ErrWeakSecret
		}
		return nil
	case RS256, ES256, EdDSA:
		if k.Private == nil {
			return fmt.Errorf("auth: %s key has no private key", k.Alg)
		}
		got, err := algorithmFor(k.Private.Public())
		if err != nil {
			return fmt.Errorf("auth: %w", err)
		}
		if got != k.Alg {
			return fmt.Errorf("auth: key is for %s, not %s", got, k.Alg)
		}
		return nil
	case "":
		return errors.New("auth: signing key has no algorithm")
	}
	return fmt.Errorf("auth: unknown algorithm %q", k.Alg)
}

// Public returns the verification key: the public half of a key pair, or
// the secret itself for HS256.
func (k SigningKey) Public() (crypto.PublicKey, error) {
	if err := k.validate(); err != nil {
		return nil, err
	}
	if k.Alg == HS256 {
		return k.Secret, nil
	}
	return k.Private.Public(), nil
}

// algorithmFor is the one place a public key type maps to the only
// algorithm it may verify.
func algorithmFor(pub crypto.PublicKey) (Algorithm, error) {
	switch p := pub.(type) {
	case *rsa.PublicKey:
		if p.N == nil || p.N.BitLen() < minRSABits {
			return "", fmt.Errorf("RSA key must be at least %d bits", minRSABits)
		}
		return RS256, nil
	case *ecdsa.PublicKey:
		if p.Curve != elliptic.P256() {
			return "", errors.New("only P-256 EC keys are supported (ES256)")
		}
		return ES256, nil
	case ed25519.PublicKey:
		if len(p) != ed25519.PublicKeySize {
			return "", errors.New("invalid Ed25519 public key size")
		}
		return EdDSA, nil
	}
	return "", fmt.Errorf("unsupported key type %T", pub)
}

// MarshalKey encodes a key pair as a PKCS#8 "PRIVATE KEY" PEM block, with
// the algorithm and key id kept in PEM headers so a reloaded key keeps the
// KID that receivers have cached.
func MarshalKey(k SigningKey) ([]byte, error) {
	if err := k.validate(); err != nil {
		return nil, fmt.Errorf("auth: marshal key: %w", err)
	}
	if k.Alg == HS256 {
		return nil, errors.New("auth: marshal key: HS256 secrets are configuration, not stored keys")
	}
	der, err := x509.MarshalPKCS8PrivateKey(k.Private)
	if err != nil {
		return nil, fmt.Errorf("auth: marshal key: %w", err)
	}
	headers := map[string]string{pemHeaderAlg: string(k.Alg)}
	if k.KID != "" {
		headers[pemHeaderKid] = k.KID
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Headers: headers, Bytes: der}), nil
}

// ParseKey reads a private key PEM: what MarshalKey writes, or a plain
// PKCS#8, PKCS#1 ("RSA PRIVATE KEY") or SEC 1 ("EC PRIVATE KEY") file as
// openssl makes them. Without headers, the algorithm follows the key type
// and the KID is the thumbprint.
func ParseKey(data []byte) (SigningKey, error) {
	rest := data
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			return SigningKey{}, errors.New("auth: parse key: no private key PEM block found")
		}
		var (
			key any
			err error
		)
		switch block.Type {
		case "PRIVATE KEY":
			key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
		case "RSA PRIVATE KEY":
			key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
		case "EC PRIVATE KEY":
			key, err = x509.ParseECPrivateKey(block.Bytes)
		case "ENCRYPTED PRIVATE KEY":
			return SigningKey{}, errors.New("auth: parse key: encrypted private keys are not supported")
		default:
			// openssl puts "EC PARAMETERS" before the key; skip such blocks.
			continue
		}
		if err != nil {
			return SigningKey{}, fmt.Errorf("auth: parse key: %w", err)
		}
		signer, ok := key.(crypto.Signer)
		if !ok {
			return SigningKey{}, fmt.Errorf("auth: parse key: unsupported key type %T", key)
		}
		var alg Algorithm
		if s := block.Headers[pemHeaderAlg]; s != "" {
			if alg, err = ParseAlgorithm(s); err != nil {
				return SigningKey{}, fmt.Errorf("auth: parse key: unknown algorithm %q in PEM header", s)
			}
		}
		k, err := newAsymmetricKey(alg, block.Headers[pemHeaderKid], signer)
		if err != nil {
			return SigningKey{}, fmt.Errorf("auth: parse key: %w", err)
		}
		return k, nil
	}
}

// ParsePublicKeyPEM reads a verification key: a PKIX "PUBLIC KEY", a PKCS#1
// "RSA PUBLIC KEY" or a "CERTIFICATE" (its subject key). The returned
// algorithm is the only one that key will verify.
func ParsePublicKeyPEM(data []byte) (crypto.PublicKey, Algorithm, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, "", errors.New("auth: parse public key: no PEM block found")
	}
	var (
		pub any
		err error
	)
	switch block.Type {
	case "PUBLIC KEY":
		pub, err = x509.ParsePKIXPublicKey(block.Bytes)
	case "RSA PUBLIC KEY":
		pub, err = x509.ParsePKCS1PublicKey(block.Bytes)
	case "CERTIFICATE":
		var cert *x509.Certificate
		if cert, err = x509.ParseCertificate(block.Bytes); err == nil {
			pub = cert.PublicKey
		}
	default:
		return nil, "", fmt.Errorf("auth: parse public key: got a %q PEM block, want PUBLIC KEY or CERTIFICATE", block.Type)
	}
	if err != nil {
		return nil, "", fmt.Errorf("auth: parse public key: %w", err)
	}
	alg, err := algorithmFor(pub)
	if err != nil {
		return nil, "", fmt.Errorf("auth: parse public key: %w", err)
	}
	return pub, alg, nil
}

// MarshalPublicKeyPEM encodes a public key as a PKIX "PUBLIC KEY" PEM block,
// the form ParsePublicKeyPEM reads (for --jwt-public-key files).
func MarshalPublicKeyPEM(pub crypto.PublicKey) ([]byte, error) {
	if _, err := algorithmFor(pub); err != nil {
		return nil, fmt.Errorf("auth: marshal public key: %w", err)
	}
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("auth: marshal public key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), nil
}
