// Package perkey bounds how many of something each key holds at once: a
// shared relay's tunnel connections and dashboard websockets, per
// organisation, so one key holder cannot take what every organisation
// shares.
package perkey

import "sync"

// Limit counts what each key holds. Its methods are safe for concurrent
// use.
type Limit struct {
	max int
	mu  sync.Mutex
	n   map[string]int
}

// New returns a Limit of max per key.
func New(max int) *Limit { return &Limit{max: max, n: make(map[string]int)} }

// Max is the most a key may hold.
func (l *Limit) Max() int { return l.max }

// Acquire counts one in for key, unless key holds Max already; release
// counts it out again.
func (l *Limit) Acquire(key string) (release func(), ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.n[key] >= l.max {
		return nil, false
	}
	l.n[key]++
	return func() {
		l.mu.Lock()
		defer l.mu.Unlock()
		if l.n[key]--; l.n[key] == 0 {
			delete(l.n, key)
		}
	}, true
}
