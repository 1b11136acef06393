package store

import (
	"fmt"
	"strings"

	"github.com/dgraph-io/badger/v4"
	"github.com/rs/zerolog"
)

// badgerLogger routes Badger's logs to zerolog one level down: Badger's INFO
// is chatty (every compaction and flush), so it lands at debug, and its
// DEBUG at trace.
type badgerLogger struct{ log zerolog.Logger }

var _ badger.Logger = badgerLogger{}

func (l badgerLogger) Errorf(f string, v ...any)   { emit(l.log.Error(), f, v) }
func (l badgerLogger) Warningf(f string, v ...any) { emit(l.log.Warn(), f, v) }
func (l badgerLogger) Infof(f string, v ...any)    { emit(l.log.Debug(), f, v) }
func (l badgerLogger) Debugf(f string, v ...any)   { emit(l.log.Trace(), f, v) }

func emit(e *zerolog.Event, f string, v []any) {
	if !e.Enabled() {
		return
	}
	// Not "component": the store's logger carries its own, and a JSON log
	// line with a key twice is refused by some log pipelines.
	e.Str("engine", "badger").Msg(strings.TrimSpace(fmt.Sprintf(f, v...)))
}
