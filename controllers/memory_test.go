package controllers

import (
	"context"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	ferryv1 "github.com/ferry-dev/ferry/api/v1alpha1"
	"github.com/ferry-dev/ferry/internal/scheme"
)

func TestWrittenMemory(t *testing.T) {
	ag := func(rv string) *ferryv1.AppGroup {
		return &ferryv1.AppGroup{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "blog", UID: "u1", ResourceVersion: rv}}
	}
	rvOf := func(obj *ferryv1.AppGroup, known, ok bool) string {
		if !ok || !known {
			return ""
		}
		return obj.ResourceVersion
	}
	var w writtenMemory
	w.wrote(ag("11"), "10")
	if got := rvOf(w.newer(ag("10"))); got != "11" {
		t.Errorf("the cache still at the write's base: start from %q, want the write's 11", got)
	}
	// A pass started from 11 writes 12: the cache at 10 or 11 has not seen it.
	w.wrote(ag("12"), "11")
	for _, cached := range []string{"10", "11"} {
		if got := rvOf(w.newer(ag(cached))); got != "12" {
			t.Errorf("the cache at %s: start from %q, want the last write's 12", cached, got)
		}
	}
	if _, _, ok := w.newer(ag("12")); ok {
		t.Error("the cache has caught up: the write is still preferred")
	}
	if _, _, ok := w.newer(ag("10")); ok {
		t.Error("an entry the cache caught up with was kept")
	}

	w.wrote(ag("11"), "10")
	other := ag("10")
	other.UID = "u2"
	if _, _, ok := w.newer(other); ok {
		t.Error("an AppGroup recreated under the name took the old one's write")
	}

	// resourceVersions turned back (an etcd restore without
	// --bump-revision): the pass starting from the recorded write
	// conflicts, and the next reads the API server. (Found by review.)
	w.wrote(ag("500"), "499")
	w.failed(ag("500"), "500")
	if _, known, ok := w.newer(ag("300")); !ok || known {
		t.Errorf("after a conflict: known %v ok %v, want a read of the API server", known, ok)
	}

	w = writtenMemory{}
	w.failed(ag("10"), "10")
	for range 2 { // until the cache moves, every pass reads the API server
		if _, known, ok := w.newer(ag("10")); !ok || known {
			t.Errorf("after a write of unknown outcome: known %v ok %v, want ok and not known", known, ok)
		}
	}
}

// TestWrittenMemoryVersionsNeverSeen: the cache may sit at versions the
// manager never saw, between the write and what it knew: the
// resourceVersions compare. (Found by review: the first version went by
// the versions it knew.)
func TestWrittenMemoryVersionsNeverSeen(t *testing.T) {
	ag := func(rv string) *ferryv1.AppGroup {
		return &ferryv1.AppGroup{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "blog", UID: "u1", ResourceVersion: rv}}
	}
	// The finalizer patch on 10 gave 11, the status write on 11 gave 12.
	var w writtenMemory
	w.wrote(ag("12"), "11")
	for _, cached := range []string{"10", "11"} {
		if _, known, ok := w.newer(ag(cached)); !ok || !known {
			t.Errorf("the cache at %s has not seen the write 12, but the pass starts from it", cached)
		}
	}
	// A write on 10 of unknown outcome (it landed as 11); someone wrote
	// 12; a pass read the API server (12) and wrote 13.
	w = writtenMemory{}
	w.failed(ag("10"), "10")
	w.wrote(ag("13"), "12")
	for _, cached := range []string{"11", "12"} {
		if _, known, ok := w.newer(ag(cached)); !ok || !known {
			t.Errorf("the cache at %s has not seen the write 13, but the pass starts from it", cached)
		}
	}
	if _, _, ok := w.newer(ag("13")); ok {
		t.Error("the cache at 13 has seen the write")
	}
}

// TestUncertainWriteReadsTheAPIServer: after a status write whose outcome
// is unknown (its response lost), a pass starts from the API server's
// AppGroup, not from a cache that may not show the write yet. (Found by
// review.)
func TestUncertainWriteReadsTheAPIServer(t *testing.T) {
	s := scheme.New()
	cached := &ferryv1.AppGroup{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "blog", UID: "u1"}}
	onServer := cached.DeepCopy()
	onServer.Status.HaltedRollout = &ferryv1.HaltedRollout{Revision: "2-abc", Node: "a", Resisted: true}
	api := fake.NewClientBuilder().WithScheme(s).WithObjects(onServer).WithStatusSubresource(onServer).Build()
	r := &AppGroupReconciler{APIReader: api, Scheme: s}
	r.written.failed(cached, cached.ResourceVersion)
	got, err := r.lastWritten(context.Background(), cached)
	if err != nil {
		t.Fatal(err)
	}
	if h := got.Status.HaltedRollout; h == nil || h.Node != "a" {
		t.Errorf("halt %+v, want the API server's", h)
	}
}

// TestObjectMemoryIsOfOneObject: an AppGroup deleted and created again
// under its name, before a pass saw it gone, does not inherit its
// predecessor's entry (found by review: a recreated AppGroup inherited a
// standing AgentNotReporting warning, and recorded AgentReporting with
// none before).
func TestObjectMemoryIsOfOneObject(t *testing.T) {
	var s objectMemory[bool]
	k := types.NamespacedName{Namespace: "ns", Name: "blog"}
	s.set(k, "uid-1", true)
	got1, known1 := s.get(k, "uid-1")
	_, known2 := s.get(k, "uid-2")
	if !got1 || !known1 || known2 {
		t.Errorf("get(uid-1) %v, %v; get(uid-2) known %v; want true, true; false", got1, known1, known2)
	}
	s.forget(k)
	if _, known := s.get(k, "uid-1"); known {
		t.Error("still known after forget")
	}
}
