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
// errors, the revision is not proven, and an older one runs; otherwise
// the words say which of those is missing, the strategy first.
func TestNotReturnedWhy(t *testing.T) {
	rolling, blocking := ferryv1.RestartSpec{}, ferryv1.RestartSpec{Strategy: ferryv1.RestartBlocking}
	off := ferryv1.RestartSpec{ResistDeploymentErrors: ptr.To(false)}
	tests := []struct {
		name          string
		restart       ferryv1.RestartSpec
		proven, older bool
		want          string
	}{
		{name: "resisted, not proven, an older revision runs: returned", restart: rolling, older: true, want: ""},
		{name: "resistance on explicitly: returned", restart: ferryv1.RestartSpec{ResistDeploymentErrors: ptr.To(true)}, older: true, want: ""},
		{name: "Blocking", restart: blocking, older: true, want: "a Blocking restart resists no deployment error"},
		{name: "Blocking, proven, nothing older: the strategy first", restart: blocking, proven: true,
			want: "a Blocking restart resists no deployment error"},
		{name: "resistance off", restart: off, older: true, want: "resistDeploymentErrors is false"},
		{name: "resistance off, proven", restart: off, proven: true, older: true, want: "resistDeploymentErrors is false"},
		{name: "proven", restart: rolling, proven: true, older: true,
			want: "revision 2-abc lasted on a node before: status.provenRevision"},
		{name: "proven, nothing older", restart: rolling, proven: true,
			want: "revision 2-abc lasted on a node before: status.provenRevision"},
		{name: "first revision: nothing older", restart: rolling, want: "no older revision runs"},
	}
	for _, tt := range tests {
		if got := NotReturnedWhy(&tt.restart, "2-abc", tt.proven, tt.older); got != tt.want {
			t.Errorf("%s: NotReturnedWhy = %q, want %q", tt.name, got, tt.want)
		}
	}
}
