package units

import "fmt"

// StoreLimit is what a store holds of one record (a relay's event, a
// receiver's capture): the relay and the receiver check their max body
// against it, with the one message below.
type StoreLimit struct {
	// Store names the store in a message: "the Badger store".
	Store string
	// MaxBody is the largest body the store holds in one record.
	MaxBody int64
	// Why says what sets MaxBody, in a phrase for a message ("a value
	// log file of 64 MiB, …"), or "".
	Why string
}

// Check refuses a max body above l.MaxBody, saying both sizes: every body
// between the two would be accepted by the limit, then refused by the
// store at every try. of names the record: "event", "capture".
func (l StoreLimit) Check(maxBody int64, of string) error {
	if maxBody <= l.MaxBody {
		return nil
	}
	why := ""
	if l.Why != "" {
		why = " (" + l.Why + ")"
	}
	return fmt.Errorf("%s is more than %s holds of one %s: at most %s%s",
		FormatSize(maxBody), l.Store, of, FormatSize(l.MaxBody), why)
}
