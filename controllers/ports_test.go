package controllers

import (
	"context"
	"maps"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	ferryv1 "github.com/ferry-dev/ferry/api/v1alpha1"
	"github.com/ferry-dev/ferry/internal/scheme"
)

func TestPortLosses(t *testing.T) {
	older, newer := t0, t0.Add(time.Minute)
	set := func(nodes ...string) map[string]bool {
		m := map[string]bool{}
		for _, n := range nodes {
			m[n] = true
		}
		return m
	}
	claim := func(name string, created time.Time, selects, holds map[string]bool) portClaim {
		return portClaim{Key: types.NamespacedName{Namespace: "ns", Name: name}, Created: created, Selects: selects, Holds: holds}
	}
	first := types.NamespacedName{Namespace: "ns", Name: "first"}
	tests := []struct {
		name   string
		self   portClaim
		others []portClaim
		want   map[string]types.NamespacedName
	}{
		{"no rival", claim("self", newer, set("a", "b"), nil), nil, map[string]types.NamespacedName{}},
		{
			"the older AppGroup wins where neither has a pool",
			claim("self", newer, set("a", "b"), nil),
			[]portClaim{claim("first", older, set("b", "c"), nil)},
			map[string]types.NamespacedName{"b": first},
		},
		{
			"the newer keeps the nodes where it holds the port",
			claim("self", newer, set("a", "b"), set("a", "b")),
			[]portClaim{claim("first", older, set("a", "b"), set("b"))},
			map[string]types.NamespacedName{"b": first},
		},
		{
			"a pool that holds the port beats an older AppGroup",
			claim("self", older, set("a"), nil),
			[]portClaim{claim("first", newer, set("a"), set("a"))},
			map[string]types.NamespacedName{"a": first},
		},
		{
			"a rival's draining pool keeps the node until it is gone",
			claim("self", older, set("a"), nil),
			[]portClaim{claim("first", newer, set(), set("a"))},
			map[string]types.NamespacedName{"a": first},
		},
		{
			"same age: by name",
			claim("self", older, set("a"), nil),
			[]portClaim{claim("first", older, set("a"), nil)},
			map[string]types.NamespacedName{"a": first},
		},
		{
			"the older AppGroup loses nothing",
			claim("first", older, set("a"), nil),
			[]portClaim{claim("self", newer, set("a"), nil)},
			map[string]types.NamespacedName{},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := portLosses(tt.self, tt.others); !maps.Equal(got, tt.want) {
				t.Errorf("portLosses = %v, want %v", got, tt.want)
			}
		})
	}
}

// TestShortOfNodeWithHoldOutsideSelection: B (newer) selects n1 and
// n2, has pools on n1 and on n3 (no longer selected, still draining).
// A (older) selects n2 and has no pool there yet. B loses n2 to A, with
// the n3 pool as without it. (Found by review: the first version counted
// holds against selections, n3 among them, and skipped the AppGroup list.)
func TestShortOfNodeWithHoldOutsideSelection(t *testing.T) {
	for _, withN3 := range []bool{false, true} {
		ctx := context.Background()
		s := scheme.New()
		mkAG := func(name, uid string, created time.Time, sel map[string]ferryv1.LabelValue) *ferryv1.AppGroup {
			return &ferryv1.AppGroup{
				ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name, UID: types.UID(uid), CreationTimestamp: metav1.NewTime(created)},
				Spec:       ferryv1.AppGroupSpec{AppTemplate: ferryv1.AppTemplate{Listen: ferryv1.ListenSpec{Port: 8080}}, NodeSelector: sel},
			}
		}
		a := mkAG("a", "uid-a", t0, map[string]ferryv1.LabelValue{"a": "yes"})
		b := mkAG("b", "uid-b", t0.Add(time.Hour), map[string]ferryv1.LabelValue{"web": "b"})
		mkPool := func(node string) *ferryv1.ProcessPool {
			return &ferryv1.ProcessPool{
				ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "b-" + node,
					OwnerReferences: []metav1.OwnerReference{{APIVersion: ferryv1.GroupVersion.String(), Kind: "AppGroup", Name: "b", UID: "uid-b", Controller: ptr.To(true)}}},
				Spec: ferryv1.ProcessPoolSpec{NodeName: node, AppGroup: "b", Template: ferryv1.AppTemplate{Listen: ferryv1.ListenSpec{Port: 8080}}},
			}
		}
		own := []*ferryv1.ProcessPool{mkPool("n1")}
		if withN3 {
			own = append(own, mkPool("n3"))
		}
		objs := []client.Object{a, b}
		for _, p := range own {
			objs = append(objs, p)
		}
		c := fake.NewClientBuilder().WithScheme(s).WithObjects(objs...).WithIndex(&ferryv1.AppGroup{}, portIndex, indexPort).
			WithIndex(&ferryv1.ProcessPool{}, portNodeIndex, indexPortNode).Build()
		r := &AppGroupReconciler{Client: c, APIReader: c, Scheme: s}
		nodeLabels := map[string]labels.Set{"n1": {"web": "b"}, "n2": {"web": "b", "a": "yes"}, "n3": {}}
		self, rivals, err := r.portRivals(ctx, b, map[string]bool{"n1": true, "n2": true}, nodeLabels, own)
		if err != nil {
			t.Fatal(err)
		}
		lost := portLosses(self, rivals)
		if lost["n2"] != client.ObjectKeyFromObject(a) {
			t.Errorf("withN3=%v: B's losses %v, want n2 lost to the older A (which selects it, no pool there)", withN3, lost)
		}
	}
}
