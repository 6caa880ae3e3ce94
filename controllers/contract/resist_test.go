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
