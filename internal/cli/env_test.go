package cli

import (
	"regexp"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"
)

func TestMemoryLimit(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, flag, def string
		want            int64
		wantErr         bool
	}{
		{name: "relay default", def: relayMemoryLimit, want: 72 << 20},
		{name: "server default", def: defaultMemoryLimit, want: 160 << 20},
		{name: "given wins", flag: "192MiB", def: relayMemoryLimit, want: 192 << 20},
		{name: "blank is the default", flag: "  ", def: relayMemoryLimit, want: 72 << 20},
		{name: "zero is none", flag: "0", def: relayMemoryLimit, want: 0},
		{name: "zero default is none", def: "0", want: 0},
		{name: "bad", flag: "lots", def: relayMemoryLimit, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := memoryLimit(tt.flag, tt.def)
			if (err != nil) != tt.wantErr {
				t.Fatalf("memoryLimit(%q, %q): error %v, want error %v", tt.flag, tt.def, err, tt.wantErr)
			}
			if got != tt.want {
				t.Errorf("memoryLimit(%q, %q) = %d, want %d", tt.flag, tt.def, got, tt.want)
			}
		})
	}
}

// TestLoggerTime: every line carries its time to the millisecond, in JSON
// and on the console.
func TestLoggerTime(t *testing.T) {
	for _, format := range []string{"json", "console"} {
		var out strings.Builder
		e := newEnv(nil, envOf(nil), strings.NewReader(""), nil, &out)
		app := &cli.App{Flags: globalFlags(""), Action: func(c *cli.Context) error {
			log, err := e.logger(c)
			if err != nil {
				return err
			}
			log.Info().Msg("hello")
			return nil
		}}
		if err := app.Run([]string{"sidehook", "--log-format", format}); err != nil {
			t.Fatal(err)
		}
		e.logOut.Flush() // as Run does last
		want := regexp.MustCompile(`"time":"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"`)
		if format == "console" {
			want = regexp.MustCompile(`^\d\d:\d\d:\d\d\.\d{3} INF hello`)
		}
		if !want.MatchString(out.String()) {
			t.Errorf("%s: got %q, want it to match %s", format, out.String(), want)
		}
	}
}
