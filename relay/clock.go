package relay

import (
	"sync"
	"time"
)

// Clock is the relay's sense of time for scheduling: when a delivery is
// due, what webhook-timestamp says, when a retry fires. Tests inject a fast
// one so a seven-step schedule runs in milliseconds; HTTP timeouts and
// latencies always use real time.
type Clock interface {
	Now() time.Time
	NewTimer(d time.Duration) Timer
}

// Timer is the part of *time.Timer the dispatcher uses.
type Timer interface {
	C() <-chan time.Time
	Stop() bool
	Reset(d time.Duration) bool
}

// RealClock is the wall clock.
type RealClock struct{}

// Now returns time.Now().
func (RealClock) Now() time.Time { return time.Now() }

// NewTimer returns a real timer.
func (RealClock) NewTimer(d time.Duration) Timer { return realTimer{time.NewTimer(d)} }

type realTimer struct{ t *time.Timer }

func (t realTimer) C() <-chan time.Time        { return t.t.C }
func (t realTimer) Stop() bool                 { return t.t.Stop() }
func (t realTimer) Reset(d time.Duration) bool { return t.t.Reset(d) }

// ScaledClock runs Factor times faster than the wall clock from the moment
// it is made: with Factor 100000 the default schedule (about 33 hours)
// passes in about 1.2 seconds. For tests and demos.
type ScaledClock struct {
	Factor float64
	once   sync.Once
	start  time.Time
}

// NewScaledClock returns a clock running factor times faster than real time.
func NewScaledClock(factor float64) *ScaledClock {
	c := &ScaledClock{Factor: factor}
	c.once.Do(func() { c.start = time.Now() })
	return c
}

func (c *ScaledClock) init() { c.once.Do(func() { c.start = time.Now() }) }

// Now returns the scaled time.
func (c *ScaledClock) Now() time.Time {
	c.init()
	el := time.Since(c.start)
	return c.start.Add(time.Duration(float64(el) * c.Factor))
}

// NewTimer returns a real timer firing after d/Factor.
func (c *ScaledClock) NewTimer(d time.Duration) Timer {
	c.init()
	return scaledTimer{realTimer{time.NewTimer(c.scale(d))}, c}
}

func (c *ScaledClock) scale(d time.Duration) time.Duration {
	return time.Duration(float64(d) / c.Factor)
}

type scaledTimer struct {
	realTimer
	c *ScaledClock
}

func (t scaledTimer) Reset(d time.Duration) bool { return t.t.Reset(t.c.scale(d)) }
