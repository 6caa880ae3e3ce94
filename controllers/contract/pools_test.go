package contract

import (
	"maps"
	"slices"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	ferryv1 "github.com/ferry-dev/ferry/api/v1alpha1"
)

// TestKeptPools: on each node the manager keeps, of the pools not being
// deleted, the one of the lowest name, in whatever order they and those
// being deleted are listed, and none where every pool is being deleted.
func TestKeptPools(t *testing.T) {
	// pool is node's pool name, being deleted or not.
	pool := func(node, name string, deleting bool) *ferryv1.ProcessPool {
		p := &ferryv1.ProcessPool{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: ferryv1.ProcessPoolSpec{NodeName: node}}
		if deleting {
			// Not a zero time: that reads as none (IsZero).
			p.DeletionTimestamp = &metav1.Time{Time: time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC)}
		}
		return p
	}
	tests := []struct {
		name  string
		pools []*ferryv1.ProcessPool
		// want is the name of the pool kept, node by node.
		want map[string]string
	}{
		{name: "none", want: map[string]string{}},
		{name: "one a node", pools: []*ferryv1.ProcessPool{pool("a", "a1", false), pool("b", "b1", false)},
			want: map[string]string{"a": "a1", "b": "b1"}},
		{name: "two for one node, a lost race's: the lowest name", pools: []*ferryv1.ProcessPool{pool("a", "a1", false), pool("a", "a2", false)},
			want: map[string]string{"a": "a1"}},
		{name: "one being deleted listed first", pools: []*ferryv1.ProcessPool{pool("a", "a1", true), pool("a", "a2", false)},
			want: map[string]string{"a": "a2"}},
		{name: "one being deleted listed after", pools: []*ferryv1.ProcessPool{pool("a", "a1", false), pool("a", "a2", true)},
			want: map[string]string{"a": "a1"}},
		{name: "all of a node's being deleted", pools: []*ferryv1.ProcessPool{pool("a", "a1", true), pool("b", "b1", false), pool("a", "a2", true)},
			want: map[string]string{"b": "b1"}},
		{name: "a lost race's behind one being deleted", pools: []*ferryv1.ProcessPool{pool("a", "a1", true), pool("a", "a2", false), pool("a", "a3", false)},
			want: map[string]string{"a": "a2"}},
		{name: "listed out of order", pools: []*ferryv1.ProcessPool{pool("b", "b1", false), pool("a", "a3", false),
			pool("a", "a1", true), pool("a", "a2", false)},
			want: map[string]string{"a": "a2", "b": "b1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := map[string]string{}
			for node, p := range KeptPools(tt.pools) {
				got[node] = p.Name
			}
			if !maps.Equal(got, tt.want) {
				t.Errorf("kept %v, want %v", got, tt.want)
			}
		})
	}
}

// TestControlledPools: of the pools listed, those whose controller owner
// reference names ag's UID are ag's, sorted by node then name; a pool of
// an earlier AppGroup of the same name (another UID), one ag owns without
// controlling, and one of no owner are not.
func TestControlledPools(t *testing.T) {
	ag := &ferryv1.AppGroup{ObjectMeta: metav1.ObjectMeta{Name: "web", UID: "now"}}
	ag.APIVersion, ag.Kind = ferryv1.GroupVersion.String(), "AppGroup"
	// pool is node's pool name, controlled (or only owned) by an AppGroup
	// "web" of uid; of no owner when uid is empty.
	pool := func(node, name, uid string, controls bool) ferryv1.ProcessPool {
		p := ferryv1.ProcessPool{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: ferryv1.ProcessPoolSpec{NodeName: node}}
		if uid != "" {
			p.OwnerReferences = []metav1.OwnerReference{{APIVersion: ag.APIVersion, Kind: "AppGroup", Name: "web",
				UID: types.UID(uid), Controller: &controls}}
		}
		return p
	}
	listed := []ferryv1.ProcessPool{
		pool("b", "web-b2", "now", true),
		pool("b", "web-b1", "before", true),
		pool("a", "web-a9", "now", true),
		pool("b", "web-b0", "now", false),
		pool("c", "web-c1", "", false),
		pool("b", "web-b1x", "now", true),
	}
	var got []string
	for _, p := range ControlledPools(listed, ag) {
		got = append(got, p.Name)
	}
	if want := []string{"web-a9", "web-b1x", "web-b2"}; !slices.Equal(got, want) {
		t.Errorf("ControlledPools = %v, want %v", got, want)
	}
}
