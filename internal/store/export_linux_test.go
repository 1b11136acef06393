//go:build linux

package store

// SmapsBytes sums smaps fields over the mappings of dir's files.
var SmapsBytes = smapsBytes
