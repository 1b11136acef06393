package natsstore

import (
	"testing"
	"time"
)

// A relay started with another store.prefix than the relays already
// running shares nothing with them, and said nothing of it: events posted
// to it were unknown to the others. The first relay of a prefix warns
// when relays run under another; a relay joining its prefix's does not.
func TestWarnsOfOtherPrefixes(t *testing.T) {
	const warning = "relays run on this NATS under another"
	for _, c := range []struct {
		name    string
		running []string // prefixes of the relays already running
		prefix  string
		warns   bool
	}{
		{"alone", nil, "a", false},
		{"joining its prefix", []string{"a"}, "a", false},
		{"first of another prefix", []string{"a"}, "b", true},
		{"joining its prefix beside another", []string{"a", "b"}, "b", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			srv := startServer(t, nil)
			for _, p := range c.running {
				openStore(t, Config{Servers: []string{srv.ClientURL()}, Prefix: p, AckWait: 5 * time.Second})
			}
			var log logBuf
			openLogged(t, Config{Servers: []string{srv.ClientURL()}, Prefix: c.prefix, AckWait: 5 * time.Second}, &log)
			if got := log.lines("warn", warning) == 1; got != c.warns {
				t.Errorf("warned %v, want %v; log:\n%s", got, c.warns, log.b.String())
			}
			if c.warns && log.lines("warn", `"other_prefixes":["a"]`) != 1 {
				t.Errorf("the warning does not name prefix a; log:\n%s", log.b.String())
			}
		})
	}
}
