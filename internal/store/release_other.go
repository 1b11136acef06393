//go:build !linux

package store

import "errors"

type mapping struct {
	start, end uintptr
	name       string
}

func dirMappings(string) ([]mapping, error) { return nil, nil }

func dontNeed(mapping) error { return errors.New("madvise: not supported") }

func residentFileBytes() (int64, error) { return 0, errors.New("resident size: not supported") }

// Elsewhere the release loop does not run: no /proc/self/maps to read.
const releaseSupported = false
