package store

// WithoutRelease turns off the release of mapped pages, for the benchmark
// that measures what it is for.
func WithoutRelease(o Options) Options {
	o.noRelease = true
	return o
}
