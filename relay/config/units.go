package config

import "github.com/sidehook/sidehook/internal/units"

// Rate is an endpoint's request rate limit, as internal/units reads it;
// zero PerSecond means unlimited.
type Rate = units.Rate
