package pool

import (
	"testing"
	"time"

	"k8s.io/utils/ptr"

	ferryv1 "github.com/ferry-dev/ferry/api/v1alpha1"
)

// TestAwaitsReturnOnlyWhenOneCanCome: a pool whose revision dies young
// right after a rolling restart waits for a return only when one can
// come: with resistDeploymentErrors false, or of a revision the manager
// holds proven, the manager keeps the node on the target
// (returnsFromTarget), so a request is refused at once; a pool that
// resists is never returned (FailsTarget), and standalone
// (ResistEarlyCrashes) has no manager. It holds the revision's spawns
// for the return from the second round of failures of the loop on (not
// the second failure: processes that die together are one round, whose
// replacements are not held), for the crash window from that round
// (holdFrom), not from the first death (nextSpawnLocked).
func TestAwaitsReturnOnlyWhenOneCanCome(t *testing.T) {
	now := time.Now()
	for _, tc := range []struct {
		name       string
		resist     *bool
		proven     bool
		resisting  bool
		standalone bool
		failures   int
		rounds     int
		// since and held are how long ago the loop's first death and its
		// second round (0: none yet) were recorded.
		since, held time.Duration
		want, hold  bool
	}{
		{name: "resistance on (default)", failures: 2, rounds: 2, held: time.Second, want: true, hold: true},
		{name: "its first young death: not held", failures: 1, rounds: 1, want: true},
		{name: "two young deaths of one round: not held", failures: 2, rounds: 1, want: true},
		{name: "the first death's window over, no second round: no wait", failures: 1, rounds: 1, since: 11 * time.Second},
		// Found by review: timed from the first death, a second round past
		// its window (an app that boots slowly) held nothing.
		{name: "a second round past the first death's window: held from it", failures: 2, rounds: 2,
			since: 12 * time.Second, held: time.Second, want: true, hold: true},
		{name: "a later round, the hold's window over: not held again", failures: 3, rounds: 3,
			since: 25 * time.Second, held: 11 * time.Second},
		{name: "resistance off: no return comes", resist: ptr.To(false), failures: 2, rounds: 2, held: time.Second},
		{name: "a proven revision: no return comes", proven: true, failures: 2, rounds: 2, held: time.Second},
		// Found by review: the old revision's replacements dying young (code
		// replaced in place) held its spawns for a return that never comes.
		{name: "resisting: no return comes", resisting: true, failures: 2, rounds: 2, held: time.Second},
		{name: "standalone: no manager", standalone: true, failures: 2, rounds: 2, held: time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := &Pool{lasted: map[string]bool{}}
			p.cfg.Revision = "2"
			p.cfg.Proven = tc.proven
			p.cfg.Template.Restart.ResistDeploymentErrors = tc.resist
			p.opts.ResistEarlyCrashes = tc.standalone
			if tc.resisting {
				p.resisting = &ferryv1.SpawnError{Revision: "2"}
			}
			p.rolledFrom = rollingFrom{to: "2"}
			p.scaling.crashSince = now.Add(-max(tc.since, 2*time.Second))
			if tc.held > 0 {
				p.scaling.holdFrom = now.Add(-tc.held)
			}
			p.scaling.failures, p.scaling.rounds = tc.failures, tc.rounds
			p.scaling.until = now.Add(time.Second)
			if got := p.awaitsReturnLocked(now); got != tc.want {
				t.Errorf("awaitsReturnLocked = %v, want %v", got, tc.want)
			}
			if got := p.holdingLocked(now); got != tc.hold {
				t.Errorf("holdingLocked = %v, want %v", got, tc.hold)
			}
			wantNext := p.scaling.until
			if tc.hold {
				wantNext = p.scaling.holdFrom.Add(crashWindow)
			}
			if got := p.nextSpawnLocked(now); got.Sub(now) != wantNext.Sub(now) {
				t.Errorf("next spawn in %s, want %s (holding %v)", got.Sub(now), wantNext.Sub(now), tc.hold)
			}
		})
	}
}

// TestHoldKeepsTheScalingError: a pool whose revision dies young twice
// after a rolling restart holds its spawns for the manager's return
// (holdingLocked), one worker of the second round still ready. Once the
// second round's backoff is over, the hold still runs: the scaling error
// is of no need that passed, and stays with its retry time, the hold's
// end (nextSpawnLocked). Before, clearPassedScalingErrorLocked went by
// the backoff alone and cleared it there ("Cleared scaling error: the
// pool needs no spawn now"), ScalingError and ScalingRetryAt gone until
// the next death. Once the hold is over too (no return came), a pool the
// survivor is enough for clears it as for any passed need.
func TestHoldKeepsTheScalingError(t *testing.T) {
	now := time.Now()
	for _, tc := range []struct {
		name string
		min  int32
		// held is how long ago the second round was recorded.
		held  time.Duration
		clear bool
	}{
		{name: "min 3, the backoff over, the hold not", min: 3, held: 3 * time.Second},
		{name: "min 1, the backoff over, the hold not", min: 1, held: 3 * time.Second},
		{name: "min 1, the hold over too: no return came", min: 1, held: crashWindow + time.Second, clear: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := &Pool{lasted: map[string]bool{}, changed: make(chan struct{})}
			p.cfg.Revision = "2"
			p.cfg.Template.Pool.MinProcesses, p.cfg.Template.Pool.MaxProcesses = tc.min, 3
			p.rolledFrom = rollingFrom{to: "2"}
			p.workers = []*Worker{{ID: 3, Revision: "2", state: ferryv1.ProcessReady}} // the survivor
			p.scaling.err = &ferryv1.SpawnError{Revision: "2"}
			p.scaling.failures, p.scaling.steps, p.scaling.rounds = 3, 2, 2
			p.scaling.crashSince = now.Add(-tc.held - 5*time.Second)
			p.scaling.holdFrom = now.Add(-tc.held)
			p.scaling.until = now.Add(-time.Second) // the second round's backoff is over

			v := p.viewLocked(now)
			p.clearPassedScalingErrorLocked(v, decide(v))
			if cleared := p.scaling.err == nil; cleared != tc.clear {
				t.Errorf("scaling error cleared %v, want %v (holding %v, next spawn in %s)",
					cleared, tc.clear, p.holdingLocked(now), p.nextSpawnLocked(now).Sub(now))
			}
		})
	}
}
