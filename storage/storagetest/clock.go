package storagetest

import (
	"sync"
	"time"
)

// Clock is a settable time source for tests: storage.Options.Now,
// account.Config.Now and the like take its Now method.
type Clock struct {
	mu sync.Mutex
	t  time.Time
	// running: Now is the real time plus off (NewRunningClock).
	running bool
	off     time.Duration
}

// NewClock returns a clock that reads t until it is advanced.
func NewClock(t time.Time) *Clock { return &Clock{t: t} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.running {
		return time.Now().Add(c.off)
	}
	return c.t
}

// Advance moves the clock by d (backwards when d is negative).
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
	c.off += d
}

// NewRunningClock returns a clock that runs with the real one, offset by
// what Advance adds: for a test whose code under test reads this clock
// while the store stamps rows with the real time, so that the two never
// drift apart however slowly the test runs.
func NewRunningClock() *Clock { return &Clock{running: true} }
