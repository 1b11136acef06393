package config_test

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/sidehook/sidehook/relay/config"
)

// TestExampleCommentedKeys: the keys sidehook.example.yaml shows commented
// out are keys the relay reads, as their comments say, once uncommented
// (their files made, inbound_auth set to the webio-token they belong to).
// The example as it stands is checked by internal/cli's TestExampleConfig.
func TestExampleCommentedKeys(t *testing.T) {
	data, err := os.ReadFile("../../sidehook.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cert, key := writeCert(t)
	dir := t.TempDir()
	for _, f := range []string{"nats.creds", "nats-ca.pem"} {
		if err := os.WriteFile(filepath.Join(dir, f), []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	text := string(data)
	text = strings.NewReplacer("/etc/sidehook/cert.pem", cert, "/etc/sidehook/key.pem", key, "/etc/sidehook/", dir+"/",
		"inbound_auth: none", "inbound_auth: webio-token").Replace(text)
	// "# key: value" and "#   key: value" (a block's member) lose their "# ".
	commented := regexp.MustCompile(`(?m)^( *)# ((?:  )?[a-z_]+:(?: .*)?)$`)
	n := len(commented.FindAllString(text, -1))
	if n < 10 {
		t.Fatalf("found %d commented keys in the example, want the optional ones (admin_token, store, …)", n)
	}
	path := filepath.Join(dir, "sidehook.yaml")
	if err := os.WriteFile(path, []byte(commented.ReplaceAllString(text, "$1$2")), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"SIDEHOOK_API_KEY": "sk_example", "SIDEHOOK_SECRET_KEY": secret32,
		"SIDEHOOK_ADMIN_TOKEN": strings.Repeat("a", 16), "SIDEHOOK_INBOUND_SECRET": inbound}
	c, err := config.Load(path, func(k string) string { return env[k] })
	if err != nil {
		t.Fatalf("the example with its commented keys: %v", err)
	}
	o := c.Organisations[0]
	if c.AdminToken == "" || len(c.AllowTargets) != 1 || len(c.DenyTargets) != 1 || c.TLSCert != cert ||
		c.Store == nil || c.Store.Replicas != 3 || len(c.Store.Servers) != 3 || c.Store.Credentials == "" ||
		c.Limits.MinFreeDisk == 0 || string(o.InboundSecret) != inbound || o.InboundIssuer == "" {
		t.Errorf("a commented key was not read: %+v, org %+v", c, o)
	}
}
