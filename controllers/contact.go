package controllers

import (
	"sync"
	"time"

	"k8s.io/utils/clock"

	ferryv1 "github.com/ferry-dev/ferry/api/v1alpha1"
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
// Passes read hearing.
type apiContact struct {
	clock clock.PassiveClock
	mu    sync.Mutex
	state contactState
	since time.Time // inContact: when the current unbroken contact began; zero before any outage
	began time.Time // the manager's first look (hearing): when it began to lead
	at    time.Time // lost, catchingUp: when that began
	lost  time.Time // when the last outage began; zero before any
}

type contactState int

const (
	inContact  contactState = iota
	lost                    // the probe fails
	catchingUp              // the probe succeeds; the cache is behind
)

// newAPIContact starts in contact, with no outage seen. A manager that has
// just started (a new leader, one back from a crash) cannot itself tell an
// agent silent through an outage (the one that may have ended its
// predecessor) from one that died long before: it takes its predecessor's
// word from each AppGroup's status (hearing.vouched).
func newAPIContact(c clock.PassiveClock) *apiContact {
	return &apiContact{clock: c}
}

// hearing is what the manager knows of its own contact with the API
// server, to judge an agent's silence by (hearing.from).
type hearing struct {
	// since is when the manager's current unbroken contact began (now
	// while it is lost or the cache catches up); zero before any outage.
	since time.Time
	// lost is when the last outage began.
	lost time.Time
	// began is when the manager began to lead: its first look at the
	// agents (a pass or a lease check). Nothing it heard of agents is
	// older.
	began time.Time
	// vouched: the AppGroup's status, when this manager first passed over
	// it, said its agents were reporting (statusVouches): the manager
	// before it judged them alive at its last write.
	vouched bool
	// signs times the agents' stamps by when the manager saw them change;
	// nil trusts the stamps.
	signs *signs
}

// leaseSeen is when the manager last saw node's agent renew its Lease
// (renewed, by the agent's clock: zero for no Lease).
func (h hearing) leaseSeen(node string, renewed time.Time) time.Time {
	return h.signs.at(leaseSign(node), renewed)
}

// reportSeen is when the manager last saw p's report change, zero for
// none.
func (h hearing) reportSeen(p *ferryv1.ProcessPool) time.Time {
	return h.signs.at(reportSign(p.Namespace, p.Name), heartbeatOf(p))
}

// from is when an agent last seen at last is judged silent from. An agent
// the status vouched for is judged from when the manager began, if its
// last sign is older: a new leader heard nothing before it began, and
// after an API server outage that ended its predecessor every agent's
// Lease may be older than the bound for a while (as the node lifecycle
// controller gives a node its grace from its own first look). One the
// status did not vouch for (its predecessor judged it silent, or the
// status says nothing of it) stays judged by its last sign. Then since,
// for an agent that was still within staleAfter of that when the outage
// began (its silence may be the outage's); that otherwise (it was silent
// past the bound already, and an outage does not revive it).
func (h hearing) from(last time.Time, staleAfter time.Duration) time.Time {
	if h.vouched && h.began.After(last) {
		last = h.began
	}
	if h.since.After(last) && !h.lost.IsZero() && h.lost.Sub(last) <= staleAfter {
		return h.since
	}
	return last
}

// hearing is the manager's contact now, vouching for no agent; the zero
// hearing for a nil apiContact (no lease watcher). The first call is the
// manager's first look: it began then.
func (c *apiContact) hearing() hearing {
	if c == nil {
		return hearing{}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.clock.Now()
	if c.began.IsZero() {
		c.began = now
	}
	h := hearing{since: c.since, lost: c.lost, began: c.began}
	if c.state != inContact {
		h.since = now
	}
	return h
}

// lose records a failed probe; it reports whether contact was lost with it.
func (c *apiContact) lose() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.state == lost {
		return false
	}
	c.state, c.at = lost, c.clock.Now()
	if c.lost.IsZero() || c.since.After(c.lost) { // an outage during catching up continues the last
		c.lost = c.at
	}
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
