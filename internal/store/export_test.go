package store

// WithBadgerDefaults makes Open use Badger's stock options (except
// SyncWrites, the logger and metrics), for the comparison benchmarks.
func WithBadgerDefaults(o Options) Options {
	o.badgerDefaults = true
	return o
}

// WithValueLogFileSize sets the value log file size, so that a test can
// make the GC rewrite files.
func WithValueLogFileSize(o Options, n int64) Options {
	o.valueLogFileSize = n
	return o
}

// WithWALSegmentBytes sets the WAL size that triggers a checkpoint, so that
// a test can make checkpoints happen under load.
func WithWALSegmentBytes(o Options, n int64) Options {
	o.walSegmentBytes = n
	return o
}
