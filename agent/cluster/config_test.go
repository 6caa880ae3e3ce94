package cluster

import (
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	ferryv1 "github.com/ferry-dev/ferry/api/v1alpha1"
	"github.com/ferry-dev/ferry/controllers/contract"
)

// TestConfigOfReadsTheProvenMark: the pool's revision is proven when the
// manager's mark names it, and only then: a mark left of an older
// revision (the pool given a new one in the same write, or an older
// manager's) proves nothing of the new one.
func TestConfigOfReadsTheProvenMark(t *testing.T) {
	for _, tc := range []struct {
		name string
		mark map[string]string
		want bool
	}{
		{"no mark", nil, false},
		{"marked proven", map[string]string{contract.ProvenAnnotation: "2"}, true},
		{"the mark of another revision", map[string]string{contract.ProvenAnnotation: "1"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pp := &ferryv1.ProcessPool{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "blog-a", Annotations: tc.mark},
				Spec: ferryv1.ProcessPoolSpec{Revision: "2"}}
			if got := configOf(pp).Proven; got != tc.want {
				t.Errorf("Proven = %v, want %v (annotations %v, revision 2)", got, tc.want, tc.mark)
			}
		})
	}
}
