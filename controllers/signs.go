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
// Only readers that see an object's versions in order record (saw): the
// pool predicate, as updates arrive, and the lease watcher, on its checks
// every two seconds. A pass holds copies read earlier, or the API server's
// newer answer to a write, and may meet a stamp older than the one last
// seen; taken for a change, it would make a dead agent look alive. Passes
// only read (at): the last sighting's time, whatever copy they hold.
//
// A stamp first seen (the manager has just started, or the object is new
// to it) has no change to time it by: it is taken at its word, but never
// later than now. A new leader then judges agents by their stamps, as
// before, with hearing.vouched's grace from its start; an agent whose clock
// is behind reads fresh again from its next renewal, a few seconds later.
type signs struct {
	clock clock.PassiveClock

	mu sync.Mutex
	by map[string]sighting
}

// sighting is the last stamp seen of one sign, and when the manager saw
// it (its clock); changed: it replaced another stamp (so at is when the
// agent wrote it, give or take how late the manager saw it).
type sighting struct {
	stamp, at time.Time
	changed   bool
}

func newSigns(c clock.PassiveClock) *signs {
	return &signs{clock: c, by: map[string]sighting{}}
}

// leaseSign keys the last renewal of any Lease held by node (the lease
// watcher's judgement); leaseObjectSign one Lease; reportSign a pool's
// report.
func leaseSign(node string) string                  { return "holder/" + node }
func leaseObjectSign(namespace, name string) string { return "lease/" + namespace + "/" + name }
func reportSign(namespace, name string) string      { return "pool/" + namespace + "/" + name }

// saw records that the sign key carries stamp (zero: none yet) and
// returns when the manager first saw it carry that stamp: now for a stamp
// that replaced another, the stamp itself, capped at now, for the first
// it sees. Only for readers that see the object's versions in order.
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
		old = sighting{stamp: stamp, at: now, changed: true}
	default:
		old = sighting{stamp: stamp, at: capped(stamp, now)}
	}
	if stamp.IsZero() {
		old.at = time.Time{}
	}
	s.by[key] = old
	return old.at
}

// heard records that key was last heard at (a node's Lease: the latest of
// its Leases' sightings).
func (s *signs) heard(key string, at time.Time) {
	if s == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.by[key] = sighting{at: at}
}

// at is when the manager last saw the sign key change, for a reader
// holding a copy stamped stamp: the last sighting's time, whichever copy
// the reader holds (an older one was replaced then; a newer one, seen
// first by a pass, is recorded by its stream within moments). With no
// sighting, the stamp, capped at now. A nil signs trusts every stamp (the
// pure tests, which give stamps as the manager would have seen them).
func (s *signs) at(key string, stamp time.Time) time.Time {
	if s == nil || stamp.IsZero() {
		return stamp
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if old, ok := s.by[key]; ok && !old.at.IsZero() {
		return old.at
	}
	return capped(stamp, s.clock.Now())
}

// ahead is how far the agent's clock was ahead of the manager's (behind:
// negative) when it last saw the sign key change: the stamp less when it
// saw it. A sighting seen late makes it read less ahead than it is. False
// with no sighting, or none that changed (a stamp first seen is taken at
// its word: it says nothing of the clock).
func (s *signs) ahead(key string) (time.Duration, bool) {
	if s == nil {
		return 0, false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	old, ok := s.by[key]
	if !ok || old.stamp.IsZero() || old.at.IsZero() || !old.changed {
		return 0, false
	}
	return old.stamp.Sub(old.at), true
}

// capped is stamp, but not later than now.
func capped(stamp, now time.Time) time.Time {
	if stamp.After(now) {
		return now
	}
	return stamp
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
