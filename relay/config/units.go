package config

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// ParseDuration is time.ParseDuration plus a "d" unit for days (72h is
// easier to read as 3d in a retention setting).
func ParseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if n, ok := strings.CutSuffix(s, "d"); ok {
		days, err := strconv.ParseFloat(n, 64)
		if err != nil || days < 0 || days > 3650 {
			return 0, fmt.Errorf("invalid duration %q", s)
		}
		return time.Duration(days * float64(24*time.Hour)), nil
	}
	return time.ParseDuration(s)
}

// ParseSize reads a byte size: 1024, 512KB, 1MiB, 2 GiB.
func ParseSize(s string) (int64, error) {
	t := strings.TrimSpace(s)
	i := len(t)
	for i > 0 && (t[i-1] < '0' || t[i-1] > '9') && t[i-1] != '.' {
		i--
	}
	num, unit := strings.TrimSpace(t[:i]), strings.ToLower(strings.TrimSpace(t[i:]))
	mult := map[string]float64{
		"": 1, "b": 1,
		"kb": 1e3, "mb": 1e6, "gb": 1e9,
		"k": 1 << 10, "m": 1 << 20, "g": 1 << 30,
		"kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30,
	}[unit]
	if mult == 0 {
		return 0, fmt.Errorf("invalid size %q: unknown unit %q", s, unit)
	}
	f, err := strconv.ParseFloat(num, 64)
	if err != nil || f < 0 || math.IsInf(f, 0) || math.IsNaN(f) || f*mult > float64(1<<50) {
		return 0, fmt.Errorf("invalid size %q", s)
	}
	return int64(f * mult), nil
}

// Rate is a request rate limit; zero PerSecond means unlimited.
type Rate struct {
	PerSecond float64
	Burst     int
	Text      string // as written, for the API's answers
}

// ParseRate reads "50/s", "10/m", "100/h" (also "50/1s", "5/10s").
func ParseRate(s string) (Rate, error) {
	n, per, ok := strings.Cut(strings.TrimSpace(s), "/")
	if !ok {
		return Rate{}, fmt.Errorf("%q is not a rate like 50/s or 10/m", s)
	}
	count, err := strconv.ParseFloat(strings.TrimSpace(n), 64)
	if err != nil || count <= 0 || math.IsInf(count, 0) {
		return Rate{}, fmt.Errorf("%q: the count must be a positive number", s)
	}
	per = strings.TrimSpace(per)
	var d time.Duration
	switch per {
	case "s":
		d = time.Second
	case "m":
		d = time.Minute
	case "h":
		d = time.Hour
	default:
		d, err = time.ParseDuration(per)
		if err != nil || d <= 0 {
			return Rate{}, fmt.Errorf("%q: the period must be s, m, h or a duration", s)
		}
	}
	r := Rate{PerSecond: count / d.Seconds(), Text: strings.TrimSpace(s)}
	// A burst of one second's worth smooths the limit without letting a
	// backlog out all at once.
	r.Burst = int(math.Max(1, math.Floor(r.PerSecond)))
	if r.PerSecond > 1e6 {
		return Rate{}, errors.New("rate above 1000000/s")
	}
	return r, nil
}
