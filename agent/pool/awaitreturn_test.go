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
// for the return from the second failure of the loop on, up to the crash
// window of the first (nextSpawnLocked).
func TestAwaitsReturnOnlyWhenOneCanCome(t *testing.T) {
	now := time.Now()
	for _, tc := range []struct {
		name       string
		resist     *bool
		proven     bool
		resisting  bool
		standalone bool
		failures   int
		want, hold bool
	}{
		{name: "resistance on (default)", failures: 2, want: true, hold: true},
		{name: "its first young death: replaced at once", failures: 1, want: true},
		{name: "resistance off: no return comes", resist: ptr.To(false), failures: 2},
		{name: "a proven revision: no return comes", proven: true, failures: 2},
		// Found by review: the old revision's replacements dying young (code
		// replaced in place) held its spawns for a return that never comes.
		{name: "resisting: no return comes", resisting: true, failures: 2},
		{name: "standalone: no manager", standalone: true, failures: 2},
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
			p.scaling.crashSince = now.Add(-time.Second)
			p.scaling.failures = tc.failures
			p.scaling.until = now.Add(time.Second)
			if got := p.awaitsReturnLocked(now); got != tc.want {
				t.Errorf("awaitsReturnLocked = %v, want %v", got, tc.want)
			}
			wantNext := p.scaling.until
			if tc.hold {
				wantNext = p.scaling.crashSince.Add(crashWindow)
			}
			if got := p.nextSpawnLocked(now); got.Sub(now) != wantNext.Sub(now) {
				t.Errorf("next spawn in %s, want %s (holding %v)", got.Sub(now), wantNext.Sub(now), tc.hold)
			}
		})
	}
}
