// Package units is the one parser of the quantities people type into
// sidehook's flags, YAML and query strings: byte sizes, durations, rates
// and points in time ("since"). Each error says what was expected.
package units

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/dustin/go-humanize"
)

// MaxSize bounds every size: nothing sidehook sizes is near a pebibyte.
const MaxSize = 1 << 50

// ParseSize reads a byte size: 65536, 512KB, 1MiB, 2 GiB (go-humanize's
// units: KB, MB, GB are powers of 1000, KiB, MiB, GiB of 1024; a bare K, M,
// G is a power of 1000).
func ParseSize(s string) (int64, error) {
	n, err := humanize.ParseBytes(strings.TrimSpace(s))
	if err != nil || n > MaxSize {
		return 0, fmt.Errorf("%q: want a size such as 1MiB, 512KiB, 2MB or 65536", s)
	}
	return int64(n), nil
}

// FormatSize writes n the way ParseSize reads it back (1.0 MiB).
func FormatSize(n int64) string { return humanize.IBytes(uint64(max(n, 0))) }

// Millis is d in milliseconds to the microsecond, the unit of every
// latency_ms sidehook answers: a loopback answer takes well under one.
func Millis(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// ParseDuration is time.ParseDuration plus a "d" unit for days (72h reads
// better as 3d in a retention setting). Negative durations are refused.
func ParseDuration(s string) (time.Duration, error) {
	t := strings.TrimSpace(s)
	if n, ok := strings.CutSuffix(t, "d"); ok {
		days, err := strconv.ParseFloat(n, 64)
		if err != nil || days < 0 || days > 3650 || math.IsNaN(days) {
			return 0, fmt.Errorf("%q: want a duration such as 90s, 15m, 72h or 3d", s)
		}
		return time.Duration(days * float64(24*time.Hour)), nil
	}
	d, err := time.ParseDuration(t)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("%q: want a duration such as 90s, 15m, 72h or 3d", s)
	}
	return d, nil
}

// Rate is a request rate limit; zero PerSecond means unlimited.
type Rate struct {
	PerSecond float64
	Burst     int
	Text      string // as written, for answers that show it
}

// MaxRate bounds a rate: above it the limiter is meaningless.
const MaxRate = 1e6

// ParseRate reads "50/s", "10/m", "100/h", "50/1s", "5/10s".
func ParseRate(s string) (Rate, error) {
	n, per, ok := strings.Cut(strings.TrimSpace(s), "/")
	if !ok {
		return Rate{}, fmt.Errorf("%q: want a rate such as 50/s, 10/m or 5/10s", s)
	}
	count, err := strconv.ParseFloat(strings.TrimSpace(n), 64)
	if err != nil || count <= 0 || math.IsInf(count, 0) || math.IsNaN(count) {
		return Rate{}, fmt.Errorf("%q: the count must be a positive number", s)
	}
	var d time.Duration
	switch per = strings.TrimSpace(per); per {
	case "s":
		d = time.Second
	case "m":
		d = time.Minute
	case "h":
		d = time.Hour
	default:
		if d, err = time.ParseDuration(per); err != nil || d <= 0 {
			return Rate{}, fmt.Errorf("%q: the period must be s, m, h or a duration", s)
		}
	}
	r := Rate{PerSecond: count / d.Seconds(), Text: strings.TrimSpace(s)}
	if r.PerSecond > MaxRate {
		return Rate{}, errors.New("rate above 1000000/s")
	}
	// A burst of one second's worth smooths the limit without letting a
	// backlog out all at once.
	r.Burst = int(math.Max(1, math.Floor(r.PerSecond)))
	return r, nil
}

// Times since/until may name: years 1 to 9999, as for JWT time claims.
// Beyond them time.Unix wraps around and a store's time key overflows.
var (
	minSince = time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC)
	maxSince = time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC)
)

// ParseSince reads a point in time as people give one for since/until: an
// RFC 3339 time, unix seconds, or a duration ago ("15m", "2h", "3d"),
// within years 1 to 9999 (UTC). Empty is the zero time.
func ParseSince(s string, now time.Time) (time.Time, error) {
	t := strings.TrimSpace(s)
	if t == "" {
		return time.Time{}, nil
	}
	at, ok := time.Time{}, false
	if v, err := time.Parse(time.RFC3339Nano, t); err == nil {
		at, ok = v, true
	} else if n, err := strconv.ParseInt(t, 10, 64); err == nil && n >= 0 {
		if n > maxSince.Unix() {
			return time.Time{}, fmt.Errorf("%q: unix seconds after the year 9999", s)
		}
		at, ok = time.Unix(n, 0), true
	} else if d, err := ParseDuration(t); err == nil {
		at, ok = now.Add(-d), true
	}
	if ok {
		if at.Before(minSince) || at.After(maxSince) {
			return time.Time{}, fmt.Errorf("%q: want a time within the years 1 to 9999 (UTC)", s)
		}
		return at, nil
	}
	return time.Time{}, fmt.Errorf("%q: want an RFC 3339 time, unix seconds or a duration ago such as 15m", s)
}

// ParsePort reads a TCP port number, 0 to 65535, written as digits only:
// url.Parse and net.SplitHostPort take any run of digits as a port, so 99999
// would pass them and fail at the dial or the listen, as if the peer were
// down.
func ParsePort(s string) (int, bool) {
	if s == "" || len(s) > 5 {
		return 0, false
	}
	n := 0
	for _, c := range []byte(s) {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, n <= 65535
}
