package cli

import (
	"time"

	"github.com/urfave/cli/v2"

	"github.com/sidehook/sidehook/internal/auth"
)

func tokenCommand(e *env) *cli.Command {
	return &cli.Command{
		Name:  "token",
		Usage: "mint a Webio-style token (x-webio-token) for an organisation",
		Description: "Prints an HS256 token with the claims iss, org, iat and jti (and exp with --ttl),\n" +
			"as the platform sends in x-webio-token. Use it to call a receiver by hand:\n\n" +
			"   curl -H \"x-webio-token: $(sidehook token --secret $SECRET --org demo)\" ...",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "secret", Usage: "the organisation's secret key (at least 32 bytes)"},
			&cli.StringFlag{Name: "org", Usage: "the organisation id"},
			&cli.DurationFlag{Name: "ttl", Usage: "token lifetime (default: no expiry, as Webio's tokens)"},
			&cli.StringFlag{Name: "issuer", Value: "sidehook", Usage: "the iss claim"},
		},
		Action: func(c *cli.Context) error {
			secret, org := c.String("secret"), c.String("org")
			if secret == "" || org == "" {
				return usageErrorf("token: --secret and --org are required")
			}
			if len(secret) < auth.MinSecretLen {
				return usageErrorf("token: --secret is %d bytes, need at least %d", len(secret), auth.MinSecretLen)
			}
			if c.Duration("ttl") < 0 {
				return usageErrorf("token: --ttl must not be negative")
			}
			tok, err := auth.MintWebioToken([]byte(secret), auth.WebioClaims{
				Issuer:   c.String("issuer"),
				Org:      org,
				IssuedAt: time.Now(),
				TTL:      c.Duration("ttl"),
			})
			if err != nil {
				return err
			}
			e.printf("%s\n", tok)
			return nil
		},
	}
}
