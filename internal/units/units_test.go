package units_test

import (
	"testing"
	"time"

	"github.com/sidehook/sidehook/internal/units"
)

func TestParseSize(t *testing.T) {
	cases := []struct {
		in   string
		want int64
		ok   bool
	}{
		{"65536", 65536, true},
		{"1MiB", 1 << 20, true},
		{"512 KiB", 512 << 10, true},
		{"2MB", 2e6, true},
		{"1mib", 1 << 20, true},
		{"-1", 0, false},
		{"1XB", 0, false},
		{"", 0, false},
		{"2PiB", 0, false},
	}
	for _, tc := range cases {
		got, err := units.ParseSize(tc.in)
		if got != tc.want || (err == nil) != tc.ok {
			t.Errorf("ParseSize(%q) = %d, %v; want %d, ok %v", tc.in, got, err, tc.want, tc.ok)
		}
	}
}

func TestParseDuration(t *testing.T) {
	cases := []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"90s", 90 * time.Second, true},
		{"3d", 72 * time.Hour, true},
		{"1.5d", 36 * time.Hour, true},
		{"-5s", 0, false},
		{"NaNd", 0, false},
		{"soon", 0, false},
	}
	for _, tc := range cases {
		got, err := units.ParseDuration(tc.in)
		if got != tc.want || (err == nil) != tc.ok {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v, ok %v", tc.in, got, err, tc.want, tc.ok)
		}
	}
}

func TestParseRate(t *testing.T) {
	cases := []struct {
		in        string
		perSecond float64
		burst     int
		ok        bool
	}{
		{"50/s", 50, 50, true},
		{"10/m", 10.0 / 60, 1, true},
		{"5/10s", 0.5, 1, true},
		{"0/s", 0, 0, false},
		{"NaN/s", 0, 0, false},
		{"5", 0, 0, false},
		{"5/fortnight", 0, 0, false},
		{"2000000/s", 0, 0, false},
	}
	for _, tc := range cases {
		got, err := units.ParseRate(tc.in)
		if (err == nil) != tc.ok || (tc.ok && (got.PerSecond != tc.perSecond || got.Burst != tc.burst)) {
			t.Errorf("ParseRate(%q) = %+v, %v; want %v/s burst %d, ok %v", tc.in, got, err, tc.perSecond, tc.burst, tc.ok)
		}
	}
}

func TestParseSince(t *testing.T) {
	now := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	cases := []struct {
		in   string
		want time.Time
		ok   bool
	}{
		{"", time.Time{}, true},
		{"2026-12-01T10:00:00Z", time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC), true},
		{"1764842400", time.Unix(1764842400, 0), true},
		{"15m", now.Add(-15 * time.Minute), true},
		{"2d", now.Add(-48 * time.Hour), true},
		{"yesterday", time.Time{}, false},
		// Years 1 to 9999 only: time.Unix of a huge count wraps around.
		{"253402300799", time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC), true},
		{"253402300800", time.Time{}, false},
		{"9223372036854775807", time.Time{}, false},
		{"0000-06-01T00:00:00Z", time.Time{}, false},
		{"0001-01-01T00:00:00Z", time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC), true},
		{"9999-12-31T23:59:59-01:00", time.Time{}, false},
	}
	for _, tc := range cases {
		got, err := units.ParseSince(tc.in, now)
		if !got.Equal(tc.want) || (err == nil) != tc.ok {
			t.Errorf("ParseSince(%q) = %v, %v; want %v, ok %v", tc.in, got, err, tc.want, tc.ok)
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"1MiB", "50/s", "3d", "15m", "2026-12-01T10:00:00Z", "9223372036854775807", "253402300800", "0000-01-01T00:00:00Z"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if n, err := units.ParseSize(s); err == nil && (n < 0 || n > units.MaxSize) {
			t.Fatalf("ParseSize(%q) = %d out of range", s, n)
		}
		if d, err := units.ParseDuration(s); err == nil && d < 0 {
			t.Fatalf("ParseDuration(%q) = %v negative", s, d)
		}
		if r, err := units.ParseRate(s); err == nil && (r.PerSecond <= 0 || r.PerSecond > units.MaxRate || r.Burst < 1) {
			t.Fatalf("ParseRate(%q) = %+v out of range", s, r)
		}
		if at, err := units.ParseSince(s, time.Now()); err == nil && !at.IsZero() && (at.UTC().Year() < 1 || at.UTC().Year() > 9999) {
			t.Fatalf("ParseSince(%q) = %v outside years 1 to 9999", s, at)
		}
	})
}

func TestMillis(t *testing.T) {
	for _, tt := range []struct {
		d    time.Duration
		want float64
	}{
		{0, 0},
		{567 * time.Microsecond, 0.567},
		{1500 * time.Microsecond, 1.5},
		{1234567 * time.Nanosecond, 1.234}, // to the microsecond
		{2 * time.Second, 2000},
	} {
		if got := units.Millis(tt.d); got != tt.want {
			t.Errorf("Millis(%v): got %v, want %v", tt.d, got, tt.want)
		}
	}
}

func TestParsePort(t *testing.T) {
	tests := []struct {
		in   string
		want int
		ok   bool
	}{
		{"0", 0, true}, {"80", 80, true}, {"08080", 8080, true}, {"65535", 65535, true},
		{"65536", 0, false}, {"99999", 0, false}, {"", 0, false}, {"+80", 0, false},
		{"-1", 0, false}, {"8o", 0, false}, {"123456", 0, false}, {"٣", 0, false},
	}
	for _, tt := range tests {
		n, ok := units.ParsePort(tt.in)
		if ok != tt.ok || ok && n != tt.want {
			t.Errorf("ParsePort(%q) = %d, %v; want %d, %v", tt.in, n, ok, tt.want, tt.ok)
		}
	}
}
