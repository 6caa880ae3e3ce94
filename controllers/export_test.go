package controllers

import (
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/event"

	ferryv1 "github.com/ferry-dev/ferry/api/v1alpha1"
)

// SawSigns reports whether r has seen each pool's report and each agent
// Lease's renewal as they are: a test that steps the manager's clock past
// a report must let the manager see it first, as time would.
func SawSigns(r *AppGroupReconciler, pools []ferryv1.ProcessPool, leases []coordinationv1.Lease) bool {
	for _, p := range pools {
		if p.Status.HeartbeatTime != nil && !r.signs.seen(reportSign(p.Namespace, p.Name), p.Status.HeartbeatTime.Time) {
			return false
		}
	}
	for _, l := range leases {
		if l.Spec.HolderIdentity != nil && l.Spec.RenewTime != nil && !r.signs.seen(leaseObjectSign(l.Namespace, l.Name), l.Spec.RenewTime.Time) {
			return false
		}
	}
	return true
}

// seen reports whether the manager has seen key carry stamp (the tests'
// hook: the manager itself only asks when it saw a sign).
func (s *signs) seen(key string, stamp time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	old, ok := s.by[key]
	return ok && old.stamp.Equal(stamp)
}

// DuePass asks r for a pass over the AppGroup namespace/name now, as the
// requeue a pass scheduled (RequeueAfter) brings it once its time has
// come: the tests step the manager's clock past that time, and the work
// queue's timers run on the real one (a crash window's requeue would come
// ten real seconds later, whatever the clock says). It goes through the
// lease watcher's channel, the manager's own way of asking for a pass.
func DuePass(t testing.TB, r *AppGroupReconciler, namespace, name string) {
	t.Helper()
	if r.leases == nil {
		t.Fatal("DuePass: the reconciler has no lease watcher (LeaseNamespace unset, or not set up with a manager)")
	}
	select {
	case r.leases.events <- event.GenericEvent{Object: &ferryv1.AppGroup{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name}}}:
	case <-time.After(10 * time.Second):
		t.Fatalf("DuePass: the manager took no pass request for %s/%s within 10s (stopped?)", namespace, name)
	}
}
