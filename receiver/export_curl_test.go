package receiver_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sidehook/sidehook/receiver"
)

// needTools skips the test without the commands it runs, except under
// CI=true, where a missing tool fails it: CI must run it.
func needTools(tb testing.TB, names ...string) {
	tb.Helper()
	for _, name := range names {
		if _, err := exec.LookPath(name); err != nil {
			if os.Getenv("CI") == "true" {
				tb.Fatalf("%s is needed to run this test (CI=true): %v", name, err)
			}
			tb.Skipf("no %s on this machine", name)
		}
	}
}

// TestExportCurlScriptRuns runs the curl export as a script, with bash and
// with sh, against a second receiver: every capture arrives there once,
// with its path, query, method, headers and body bytes as captured. The
// cases are those a naive script gets wrong: curl's URL globbing ([] and
// {} sent as two requests), bodies past the kernel's 128 KiB limit on one
// argument, a body curl would read as a file name (@…), shell
// metacharacters, every byte value, an empty header, no content-type.
func TestExportCurlScriptRuns(t *testing.T) {
	needTools(t, "bash", "curl")
	srv := start(t, receiver.Config{})

	var all []byte
	for i := range 256 {
		all = append(all, byte(i))
	}
	shell := "it's \"quoted\" $(id) `id` ${HOME} \\ %s %d %% \\n\r\n\ttab ✓ é\n"
	type req struct {
		method, path, query string
		body                []byte
		header              map[string]string
	}
	reqs := []req{
		{method: "POST", path: "/brk", query: "items[]=1&x={a,b}", body: []byte(`{"a":1}`), header: map[string]string{"content-type": "application/json"}},
		{method: "POST", path: "/shell", body: []byte(shell), header: map[string]string{"content-type": "text/plain"}},
		{method: "POST", path: "/big", body: bytes.Repeat([]byte(shell), 200<<10/len(shell)+1), header: map[string]string{"content-type": "text/plain"}},
		{method: "POST", path: "/bytes", body: all, header: map[string]string{"content-type": "application/octet-stream"}},
		{method: "POST", path: "/bigbin", body: bytes.Repeat(all, 800), header: map[string]string{"content-type": "application/octet-stream"}},
		{method: "POST", path: "/at", body: []byte("@/etc/passwd"), header: map[string]string{"content-type": "text/plain"}},
		{method: "POST", path: "/nul", body: []byte("a\x00b'c"), header: map[string]string{"content-type": "text/plain"}},
		{method: "PUT", path: "/notype", body: []byte("a=1&b=[2]")},
		{method: "POST", path: "/empty-header", body: []byte("{}"), header: map[string]string{"content-type": "application/json", "x-empty": ""}},
		{method: "GET", path: "/get", query: "q=[1]&r={x}"},
	}
	for _, r := range reqs {
		u := srv.URL() + r.path
		if r.query != "" {
			u += "?" + r.query
		}
		if got := send(t, r.method, u, r.body, r.header); got.status != 200 {
			t.Fatalf("%s %s: got %d %s, want 200", r.method, u, got.status, got.body)
		}
	}

	for _, sh := range []string{"bash", "sh"} {
		t.Run(sh, func(t *testing.T) {
			needTools(t, sh)
			target := start(t, receiver.Config{})
			ex := send(t, "GET", srv.URL()+"/_sidehook/requests/export?format=curl&base="+target.URL(), nil, nil)
			if ex.status != 200 {
				t.Fatalf("export: got %d %s, want 200", ex.status, ex.body)
			}
			script := filepath.Join(t.TempDir(), "replay.sh")
			if err := os.WriteFile(script, ex.body, 0o600); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			if out, err := exec.CommandContext(ctx, sh, script).CombinedOutput(); err != nil {
				t.Fatalf("%s %s: %v\n%.2000s", sh, script, err, out)
			}
			caps, _ := list(t, target, "limit=100")
			if len(caps) != len(reqs) {
				t.Errorf("the script sent %d requests, want %d, one per capture", len(caps), len(reqs))
			}
			byPath := map[string]receiver.Capture{}
			for _, c := range caps {
				if _, dup := byPath[c.Path]; dup {
					t.Errorf("%s arrived twice", c.Path)
				}
				byPath[c.Path] = c
			}
			for _, r := range reqs {
				c, ok := byPath[r.path]
				if !ok {
					t.Errorf("%s did not arrive", r.path)
					continue
				}
				if c.Method != r.method || c.Query != r.query {
					t.Errorf("%s: got %s ?%s, want %s ?%s", r.path, c.Method, c.Query, r.method, r.query)
				}
				if !bytes.Equal(c.Body, r.body) {
					t.Errorf("%s: body of %d bytes differs from the %d captured (first bytes %q)", r.path, len(c.Body), len(r.body), c.Body[:min(len(c.Body), 40)])
				}
				for _, name := range []string{"content-type", "x-empty", "expect"} {
					want, has := r.header[name]
					got, gotHas := c.Headers[name]
					if has != gotHas || has && strings.Join(got, ",") != want {
						t.Errorf("%s: header %s is %q (present %v), want %q (present %v)", r.path, name, got, gotHas, want, has)
					}
				}
			}
		})
	}
}

// TestExportPointsAtTheHostAsked: the export's curl commands and HAR URLs
// point at the host the export was asked of, which reaches the receiver
// from where the export is read: a Handler mounted on another server (it
// has no listen address; the commands read curl '/x') or a receiver
// reached under another name or port (Docker's -p 18081:8081).
func TestExportPointsAtTheHostAsked(t *testing.T) {
	srv := start(t, receiver.Config{})
	hs := mount(t)
	port := srv.URL()[strings.LastIndex(srv.URL(), ":")+1:]

	tests := []struct {
		name, base, host, want string
	}{
		{"Mounted", hs.URL, "", hs.URL + "/x?a=1"},
		{"OtherName", srv.URL(), "localhost:" + port, "http://localhost:" + port + "/x?a=1"},
		{"Listened", srv.URL(), "", srv.URL() + "/x?a=1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			send(t, "POST", tt.base+"/x?a=1", []byte(`{}`), nil)
			for _, format := range []string{"curl", "har"} {
				req, err := http.NewRequest("GET", tt.base+"/_sidehook/requests/export?format="+format, nil)
				if err != nil {
					t.Fatal(err)
				}
				if tt.host != "" {
					req.Host = tt.host
				}
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if want := strconv.Quote(tt.want); format == "har" && !bytes.Contains(b, []byte(`"url":`+want)) {
					t.Errorf("har: got %s, want the url %s", b, want)
				}
				if want := "'" + tt.want + "'"; format == "curl" && !bytes.Contains(b, []byte(want)) {
					t.Errorf("curl: got %s, want the url %s", b, want)
				}
			}
		})
	}
}
