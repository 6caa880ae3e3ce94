package pool

import (
	"testing"
	"time"

	"k8s.io/utils/ptr"
)

// TestAwaitsReturnOnlyWhenOneCanCome: a pool whose revision dies young
// right after a rolling restart waits for a return only when one can
// come: with resistDeploymentErrors false, or of a revision the manager
// holds proven, the manager keeps the node on the target
// (returnsFromTarget), so a request is refused at once.
func TestAwaitsReturnOnlyWhenOneCanCome(t *testing.T) {
	now := time.Now()
	for _, tc := range []struct {
		name   string
		resist *bool
		proven bool
		want   bool
	}{
		{"resistance on (default)", nil, false, true},
		{"resistance off: no return comes", ptr.To(false), false, false},
		{"a proven revision: no return comes", nil, true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := &Pool{lasted: map[string]bool{}}
			p.cfg.Revision = "2"
			p.cfg.Proven = tc.proven
			p.cfg.Template.Restart.ResistDeploymentErrors = tc.resist
			p.rolledFrom = rollingFrom{to: "2"}
			p.scaling.crashSince = now.Add(-time.Second)
			if got := p.awaitsReturnLocked(now); got != tc.want {
				t.Errorf("awaitsReturnLocked = %v, want %v (resistDeploymentErrors %v, proven %v)", got, tc.want,
					ptr.Deref(tc.resist, true), tc.proven)
			}
		})
	}
}
