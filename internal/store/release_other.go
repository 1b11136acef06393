//go:build !linux

package store

import "errors"

const releaseSupported = false

func releaseMappings(string) error { return errors.New("release mapped pages: not supported") }

func residentFileBytes() (int64, error) {
	return 0, errors.New("resident size: not supported")
}
