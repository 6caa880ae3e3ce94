package pool

import (
	"errors"
	"testing"

	"github.com/go-logr/logr"

	ferryv1 "github.com/ferry-dev/ferry/api/v1alpha1"
)

// TestScalingErrorOnlyOfARevisionSpawned: a failed spawn backs the pool
// off only when the pool still spawns its revision. One that began before
// a newer revision was asked for, or before the pool came to resist its
// own, is recorded (lastSpawnError) but is no scaling error: nothing would
// clear it, and its backoff would hold up the spawns of the revision the
// pool does spawn, those that keep a resisting pool at minProcesses.
func TestScalingErrorOnlyOfARevisionSpawned(t *testing.T) {
	resisting := func(p *Pool) {
		p.resisting = &ferryv1.SpawnError{Revision: "2"}
		p.resistFrom = spawnable{revision: "1"}
	}
	cases := []struct {
		name     string
		revision string
		setup    func(*Pool)
		backsOff bool
	}{
		{"the target", "2", func(*Pool) {}, true},
		{"a revision asked for before", "1", func(*Pool) {}, false},
		{"the resisted revision", "2", resisting, false},
		{"the revision resisted from", "1", resisting, true},
	}
	for _, tc := range cases {
		p := &Pool{cfg: Config{Revision: "2"}, log: logr.Discard(), changed: make(chan struct{})}
		tc.setup(p)
		p.recordScalingError(tc.revision, errors.New("out of memory"), SpawnScale)
		if got := p.scaling.err != nil && p.scaling.failures == 1; got != tc.backsOff {
			t.Errorf("%s: scaling %+v, want a scaling error and backoff: %v", tc.name, p.scaling, tc.backsOff)
		}
		if p.lastErr == nil || p.lastErr.Revision != tc.revision {
			t.Errorf("%s: last spawn error %+v, want revision %s's recorded", tc.name, p.lastErr, tc.revision)
		}
	}
}
