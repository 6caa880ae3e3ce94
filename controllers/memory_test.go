package controllers

import (
	"context"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	clocktesting "k8s.io/utils/clock/testing"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	ferryv1 "github.com/ferry-dev/ferry/api/v1alpha1"
	"github.com/ferry-dev/ferry/internal/scheme"
)

func TestWrittenMemory(t *testing.T) {
	ag := func(rv string) *ferryv1.AppGroup {
		return &ferryv1.AppGroup{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "blog", UID: "u1", ResourceVersion: rv}}
	}
	halted := ag("11")
	halted.Status.HaltedRollout = &ferryv1.HaltedRollout{Revision: "2-abc", Node: "a"}

	var w writtenMemory
	w.wrote(halted, "10")
	if m, ok := w.get(ag("10")); !ok || m.halt == nil || m.halt.Node != "a" {
		t.Errorf("the cache still at the write's base: got %+v %v, want the written halt", m, ok)
	}
	if _, ok := w.get(ag("11")); ok {
		t.Error("the cache has caught up: the written memory is still used")
	}
	if _, ok := w.get(ag("10")); ok {
		t.Error("an entry the cache caught up with was kept")
	}

	w.wrote(halted, "10")
	other := ag("10")
	other.UID = "u2"
	if _, ok := w.get(other); ok {
		t.Error("an AppGroup recreated under the name took the old one's memory")
	}

	w.failed(ag("11"))
	if m, ok := w.get(ag("11")); !ok || !m.uncertain {
		t.Errorf("after a failed write: got %+v %v, want uncertain", m, ok)
	}
}

// TestUncertainWriteReadsTheAPIServer: after a status write whose outcome
// is unknown (its response lost), a pass takes the memory from the API
// server, not from a cache that may not show the write yet. (Found by
// review: the first version kept the memory of the write before.)
func TestUncertainWriteReadsTheAPIServer(t *testing.T) {
	s := scheme.New()
	cached := &ferryv1.AppGroup{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "blog", UID: "u1", ResourceVersion: "10"}}
	onServer := cached.DeepCopy()
	onServer.Status.HaltedRollout = &ferryv1.HaltedRollout{Revision: "2-abc", Node: "a", Resisted: true}
	cache := fake.NewClientBuilder().WithScheme(s).WithObjects(cached.DeepCopy()).
		WithIndex(&ferryv1.AppGroup{}, portIndex, indexPort).WithIndex(&ferryv1.ProcessPool{}, portNodeIndex, indexPortNode).Build()
	api := fake.NewClientBuilder().WithScheme(s).WithObjects(onServer).Build()
	r := &AppGroupReconciler{Client: cache, APIReader: api, Scheme: s, Clock: clocktesting.NewFakePassiveClock(t0)}
	r.written.wrote(cached, "9") // an earlier write, which the cache shows
	r.written.failed(cached)
	sc, err := r.newScope(context.Background(), cached)
	if err != nil {
		t.Fatal(err)
	}
	if sc.halt == nil || sc.halt.Node != "a" {
		t.Errorf("halt %+v, want the API server's", sc.halt)
	}
}
