package cli

import (
	"encoding/json"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/urfave/cli/v2"

	"github.com/sidehook/sidehook/internal/auth"
)

func tokenCommand(e *env) *cli.Command {
	secretKey := &cli.StringFlag{Name: "secret-key", Usage: "the organisation's secret key (at least 32 bytes)"}
	return &cli.Command{
		Name:  "token",
		Usage: "mint a Webio-style token (x-webio-token) for an organisation",
		Description: "Prints an HS256 token with the claims iss, org, iat and jti (and exp with --ttl),\n" +
			"as the platform sends in x-webio-token. Use it to call a receiver by hand:\n\n" +
			"   curl -H \"x-webio-token: $(sidehook token --secret-key $SECRET --org demo)\" ...",
		Flags: []cli.Flag{
			secretKey,
			oldName("secret", "secret-key", secretKey),
			&cli.StringFlag{Name: "org", Usage: "the organisation id"},
			&cli.DurationFlag{Name: "ttl", Usage: "token lifetime", DefaultText: "no expiry, as Webio's tokens"},
			&cli.StringFlag{Name: "issuer", Value: "sidehook", Usage: "the iss claim"},
			&cli.BoolFlag{Name: "json", Usage: "print the token and its claims as one JSON object"},
		},
		Action: func(c *cli.Context) error {
			secret, org := c.String("secret-key"), c.String("org")
			if secret == "" || org == "" {
				return usageErrorf("token: --secret-key and --org are required")
			}
			if len(secret) < auth.MinSecretLen {
				return usageErrorf("token: %s is %d bytes, need at least %d", e.source(c, "secret-key"), len(secret), auth.MinSecretLen)
			}
			if c.Duration("ttl") < 0 {
				return usageErrorf("token: %s must not be negative", e.source(c, "ttl"))
			}
			// Resolved here, not left to MintWebioToken, so that --json
			// reports the iss the token carries.
			issuer := c.String("issuer")
			if issuer == "" {
				issuer = auth.DefaultIssuer
			}
			now := time.Now()
			claims := auth.WebioClaims{
				Issuer:   issuer,
				Org:      org,
				ID:       ulid.Make().String(),
				IssuedAt: now,
				TTL:      c.Duration("ttl"),
			}
			tok, err := auth.MintWebioToken([]byte(secret), claims)
			if err != nil {
				return err
			}
			if !c.Bool("json") {
				e.printf("%s\n", tok)
				return nil
			}
			out := struct {
				Token     string     `json:"token"`
				Header    string     `json:"header"`
				Org       string     `json:"org"`
				Issuer    string     `json:"issuer"`
				ID        string     `json:"jti"`
				IssuedAt  time.Time  `json:"issued_at"`
				ExpiresAt *time.Time `json:"expires_at,omitempty"`
			}{Token: tok, Header: "x-webio-token", Org: org, Issuer: claims.Issuer, ID: claims.ID, IssuedAt: now.UTC().Truncate(time.Second)}
			if ttl := c.Duration("ttl"); ttl > 0 {
				exp := out.IssuedAt.Add(ttl)
				out.ExpiresAt = &exp
			}
			return json.NewEncoder(e.stdout).Encode(out)
		},
	}
}
