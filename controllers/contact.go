package controllers

import (
	"sync"
	"time"

	"k8s.io/utils/clock"
)

// apiContact is how long the manager has heard the API server without a
// break, through its cache. An agent is not judged silent over time in
// which the manager could hear nothing either: after an API server outage
// every agent's Lease and report are old through no fault of the agent's,
// and they are renewed within a heartbeat once the agents can reach the
// API server again. Judging them at once raised AgentNotReporting for
// every AppGroup after every outage longer than the staleness bound.
//
// Contact is back only once the cache is: client-go's informers retry a
// failed watch with a backoff that grows to between 30 and 60 seconds, so
// for up to a minute after the API server returns the cache may still hold
// the Leases as they were when it went away (TestLeaseWatcherForgivesItsOwnOutage,
// and the e2e test's outage).
//
// The lease watcher drives it: it probes the API server on each check
// (uncached: the cache's reads succeed however long the API server is
// gone), and once the probe succeeds again it compares the Leases read
// from the API server with the cache's until the cache has caught up.
// Passes read heardSince.
type apiContact struct {
	clock clock.PassiveClock
	mu    sync.Mutex
	state contactState
	since time.Time // inContact: when the current unbroken contact began
	at    time.Time // lost, catchingUp: when that began
}

type contactState int

const (
	inContact  contactState = iota
	lost                    // the probe fails
	catchingUp              // the probe succeeds; the cache is behind
)

// newAPIContact counts contact from now: a manager that has just started
// (or restarted after losing its leadership in an outage) has heard
// nothing of the time before.
func newAPIContact(c clock.PassiveClock) *apiContact {
	return &apiContact{clock: c, since: c.Now()}
}

// heardSince is when the manager's current unbroken contact with the API
// server began; zero for a nil apiContact (no lease watcher). While contact
// is lost or the cache catches up it is now: a pass that runs then either
// cannot write, or would read the outage into the cache's old Leases.
func (c *apiContact) heardSince() time.Time {
	if c == nil {
		return time.Time{}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.state != inContact {
		return c.clock.Now()
	}
	return c.since
}

// lose records a failed probe; it reports whether contact was lost with it.
func (c *apiContact) lose() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.state == lost {
		return false
	}
	c.state, c.at = lost, c.clock.Now()
	return true
}

// reach records a successful probe; it reports whether contact was lost
// until it, and for how long.
func (c *apiContact) reach() (regained bool, without time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.state != lost {
		return false, 0
	}
	now := c.clock.Now()
	without = now.Sub(c.at)
	c.state, c.at = catchingUp, now
	return true, without
}

// catchingUp reports whether the cache is still to catch up.
func (c *apiContact) catchingUp() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.state == catchingUp
}

// catchingUpFor is how long the cache has been catching up.
func (c *apiContact) catchingUpFor() time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.clock.Now().Sub(c.at)
}

// caughtUp ends the catching up: contact counts from now. It returns how
// long the cache took.
func (c *apiContact) caughtUp() time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.clock.Now()
	took := now.Sub(c.at)
	c.state, c.since = inContact, now
	return took
}

// later is the later of two times.
func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}
