package contract

import (
	"testing"

	"k8s.io/utils/ptr"

	ferryv1 "github.com/ferry-dev/ferry/api/v1alpha1"
)

// TestNotResisted: an incomplete restart says resistDeploymentErrors "is
// false" while it is, and "was false when revision R rolled" once turned
// on (or unset, the default true), a Blocking strategy or not: the field
// is what the words are of.
func TestNotResisted(t *testing.T) {
	tests := []struct {
		name    string
		restart ferryv1.RestartSpec
		want    string
	}{
		{name: "still false", restart: ferryv1.RestartSpec{ResistDeploymentErrors: ptr.To(false)},
			want: "resistDeploymentErrors is false"},
		{name: "false, Blocking since", restart: ferryv1.RestartSpec{Strategy: ferryv1.RestartBlocking, ResistDeploymentErrors: ptr.To(false)},
			want: "resistDeploymentErrors is false"},
		{name: "turned on", restart: ferryv1.RestartSpec{ResistDeploymentErrors: ptr.To(true)},
			want: "resistDeploymentErrors was false when revision 2-abc rolled"},
		{name: "unset since (the default, true)", restart: ferryv1.RestartSpec{},
			want: "resistDeploymentErrors was false when revision 2-abc rolled"},
		{name: "turned on, Blocking", restart: ferryv1.RestartSpec{Strategy: ferryv1.RestartBlocking, ResistDeploymentErrors: ptr.To(true)},
			want: "resistDeploymentErrors was false when revision 2-abc rolled"},
	}
	for _, tt := range tests {
		if got := NotResisted(ResistanceAsked(&tt.restart), "2-abc"); got != tt.want {
			t.Errorf("%s: NotResisted = %q, want %q", tt.name, got, tt.want)
		}
	}
}

// TestNotReturnedWhy: a node whose processes of a revision fail is
// returned to an older revision only when the restart resists deployment
// errors, the revision is not proven or the node itself resisted it, and
// an older one runs; otherwise the reason and its words say which of
// those is missing, the strategy first.
func TestNotReturnedWhy(t *testing.T) {
	rolling, blocking := ferryv1.RestartSpec{}, ferryv1.RestartSpec{Strategy: ferryv1.RestartBlocking}
	off := ferryv1.RestartSpec{ResistDeploymentErrors: ptr.To(false)}
	const (
		isBlocking = "a Blocking restart resists no deployment error"
		isOff      = "resistDeploymentErrors is false"
		isProven   = "revision 2-abc lasted on a node before: status.provenRevision"
		isFirst    = "no older revision runs"
	)
	tests := []struct {
		name                    string
		restart                 ferryv1.RestartSpec
		proven, resisted, older bool
		reason, message         string
	}{
		{name: "resisted, not proven, an older revision runs: returned", restart: rolling, older: true},
		{name: "resistance on explicitly: returned", restart: ferryv1.RestartSpec{ResistDeploymentErrors: ptr.To(true)}, older: true},
		{name: "Blocking", restart: blocking, older: true, reason: ferryv1.CrashLoopBlockingRestart, message: isBlocking},
		{name: "Blocking, proven, nothing older: the strategy first", restart: blocking, proven: true,
			reason: ferryv1.CrashLoopBlockingRestart, message: isBlocking},
		{name: "Blocking, the node resisted: not returned", restart: blocking, resisted: true, older: true,
			reason: ferryv1.CrashLoopBlockingRestart, message: isBlocking},
		{name: "resistance off", restart: off, older: true, reason: ferryv1.CrashLoopResistanceOff, message: isOff},
		{name: "resistance off, proven", restart: off, proven: true, older: true, reason: ferryv1.CrashLoopResistanceOff, message: isOff},
		{name: "proven", restart: rolling, proven: true, older: true, reason: ferryv1.CrashLoopRevisionProven, message: isProven},
		{name: "proven, nothing older", restart: rolling, proven: true, reason: ferryv1.CrashLoopRevisionProven, message: isProven},
		{name: "proven, but this node resisted it: returned", restart: rolling, proven: true, resisted: true, older: true},
		{name: "proven, this node resisted it, nothing older", restart: rolling, proven: true, resisted: true,
			reason: ferryv1.CrashLoopNoOlderRevision, message: isFirst},
		{name: "first revision: nothing older", restart: rolling, reason: ferryv1.CrashLoopNoOlderRevision, message: isFirst},
	}
	for _, tt := range tests {
		reason, message := NotReturnedWhy(&tt.restart, "2-abc", tt.proven, tt.resisted, tt.older)
		if reason != tt.reason || message != tt.message {
			t.Errorf("%s: NotReturnedWhy = %q, %q, want %q, %q", tt.name, reason, message, tt.reason, tt.message)
		}
	}
}

// TestResistedOn: only a halt that resisted, on that node, of that
// revision, counts.
func TestResistedOn(t *testing.T) {
	halt := &ferryv1.HaltedRollout{Revision: "2", Node: "a", Resisted: true}
	tests := []struct {
		name           string
		halt           *ferryv1.HaltedRollout
		node, revision string
		want           bool
	}{
		{name: "this node, this revision", halt: halt, node: "a", revision: "2", want: true},
		{name: "no halt", node: "a", revision: "2"},
		{name: "another node", halt: halt, node: "b", revision: "2"},
		{name: "another revision", halt: halt, node: "a", revision: "3"},
		{name: "left with no process: not resisted", halt: &ferryv1.HaltedRollout{Revision: "2", Node: "a"}, node: "a", revision: "2"},
	}
	for _, tt := range tests {
		if got := ResistedOn(tt.halt, tt.node, tt.revision); got != tt.want {
			t.Errorf("%s: ResistedOn = %v, want %v", tt.name, got, tt.want)
		}
	}
}

// TestCrashLoopClause: one node or several, the same words.
func TestCrashLoopClause(t *testing.T) {
	if got, want := CrashLoopClause(1, "why"), "nothing returns the node to an older revision (why): its processes are "+CrashLoopRespawned; got != want {
		t.Errorf("one node: %q, want %q", got, want)
	}
	if got, want := CrashLoopClause(2, "why"), "nothing returns these nodes to an older revision (why): their processes are "+CrashLoopRespawned; got != want {
		t.Errorf("two nodes: %q, want %q", got, want)
	}
}
