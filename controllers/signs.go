package controllers

import (
	"sync"
	"time"

	"k8s.io/utils/clock"
)

// signs are when the manager saw each agent's signs of life, by its own
// clock. An agent stamps its Lease's renewTime and its pools'
// heartbeatTime with its own clock, which may be wrong: judged by the
// stamps, an agent 45 s behind read as silent while it reported, and a dead
// one an hour ahead kept its node in the Service for an hour. As the node
// lifecycle controller does with the kubelet's Lease, the manager instead
// times a sign by when it saw the stamp change: a new stamp is a write the
// agent made just now, whatever its clock says.
//
// A stamp first seen (the manager has just started, or the object is new
// to it) has no change to time it by: it is taken at its word, but never
// later than now. A new leader then judges agents by their stamps, as
// before, with hearing.vouched's grace from its start; an agent whose clock
// is behind reads fresh again from its next renewal, a few seconds later.
//
// Pools' stamps are seen as their updates arrive (poolChanged), Leases'
// on the lease watcher's checks, every two seconds, and both whenever a
// pass reads them: a renewal may be timed up to that much late.
type signs struct {
	clock clock.PassiveClock

	mu sync.Mutex
	by map[string]sighting
}

// sighting is the last stamp seen of one sign, and when the manager saw
// it (its clock).
type sighting struct{ stamp, at time.Time }

func newSigns(c clock.PassiveClock) *signs {
	return &signs{clock: c, by: map[string]sighting{}}
}

// leaseSign and reportSign key a node's agent Lease and a pool's report.
func leaseSign(node string) string             { return "lease/" + node }
func reportSign(namespace, name string) string { return "pool/" + namespace + "/" + name }

// saw records that the sign key carries stamp (zero: none yet) and
// returns when the manager saw that stamp first: now for a stamp that
// replaced another it had seen, the stamp itself, capped at now, for the
// first it sees. A nil signs trusts every stamp (the pure tests, which
// give stamps as the manager would have seen them).
func (s *signs) saw(key string, stamp time.Time) time.Time {
	if s == nil {
		return stamp
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.clock.Now()
	old, known := s.by[key]
	switch {
	case known && old.stamp.Equal(stamp):
		return old.at
	case known:
		old = sighting{stamp: stamp, at: now}
	default:
		old = sighting{stamp: stamp, at: stamp}
		if stamp.After(now) {
			old.at = now
		}
	}
	if stamp.IsZero() {
		old.at = time.Time{}
	}
	s.by[key] = old
	return old.at
}

// seen reports whether the manager has seen key carry stamp.
func (s *signs) seen(key string, stamp time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	old, ok := s.by[key]
	return ok && old.stamp.Equal(stamp)
}

// forget drops key: its object is gone.
func (s *signs) forget(key string) {
	if s == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.by, key)
}
