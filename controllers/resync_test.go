package controllers_test

import (
	"net/http"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	ferryv1 "github.com/ferry-dev/ferry/api/v1alpha1"
	"github.com/ferry-dev/ferry/controllers"
)

// TestForeignStatusIsPutBack: a status another writer put on an AppGroup
// (a hand edit of the status subresource, a second manager) changes
// nothing the manager watches, so no event brings a pass; the periodic
// pass (ResyncEvery, a second here) writes the manager's status back, and
// the passes that find nothing changed write nothing (seen failing
// without the periodic pass: Ready stayed the foreign Unknown for the
// whole wait). Putting back a foreign AgentNotReporting records no
// AgentReporting: no agent was silent, none came back (seen failing
// while a manager took any AgentNotReporting its status showed for a
// warning of its own).
func TestForeignStatusIsPutBack(t *testing.T) {
	ns := newNamespace(t)
	a := newNode(t, ns, "a", true)
	// The agent's Lease is there before the manager starts: the lease
	// watcher's first check finds it fresh and asks for nothing. A Lease
	// it first sees later brings a pass of the node's AppGroups (within
	// its 2s check), which would put the status back by itself.
	renewLease(t, a)
	withResync(t, time.Second)
	newAppGroup(t, ns, "blog", nil)
	agentA := newAgent(t, ns, a, "192.0.2.2")
	// Its reports are no newer than its Lease: none is due to go stale.
	rollAll("blog", 2, agentA)
	waitRolledOut(t, ns, "blog", 1)
	ag := waitCondition(t, ns, "blog", ferryv1.ConditionReady, metav1.ConditionTrue, ferryv1.ReasonProcessesReady)

	foreign := ag.DeepCopy()
	foreign.Status.ReadyNodes = "0/1"
	meta.SetStatusCondition(&foreign.Status.Conditions, metav1.Condition{Type: ferryv1.ConditionReady,
		Status: metav1.ConditionUnknown, Reason: ferryv1.ReasonAgentNotReporting, Message: "written by another manager"})
	if err := env.Client.Status().Update(testContext(t), foreign); err != nil {
		t.Fatal(err)
	}
	got := waitCondition(t, ns, "blog", ferryv1.ConditionReady, metav1.ConditionTrue, ferryv1.ReasonProcessesReady)
	if got.Status.ReadyNodes != ag.Status.ReadyNodes {
		t.Errorf("readyNodes %q after the pass, want %q as before the foreign write", got.Status.ReadyNodes, ag.Status.ReadyNodes)
	}

	// Three periodic passes of blog's own with nothing new (passes of
	// any AppGroup could end while blog's are still to come).
	writes, mark := apiWrites(t), passMark(ns, "blog")
	waitPasses(t, ns, "blog", mark, 3)
	if w := apiWrites(t); w != writes {
		t.Errorf("%v API writes over passes that found nothing changed, want none", w-writes)
	}
	assertNoEvent(t, ns, "blog", controllers.EventAgentReporting)
	assertNoEvent(t, ns, "blog", controllers.EventAgentNotReporting)
}

// TestForeignStatusIsPutBackWhileDeleting: an AppGroup whose deletion
// waits for an agent to drain its pool gets the periodic pass too, so a
// status another writer put on it is put back (seen failing while a
// deleting AppGroup asked for no pass past its reports' staleness).
func TestForeignStatusIsPutBackWhileDeleting(t *testing.T) {
	ns := newNamespace(t)
	a := newNode(t, ns, "a", true)
	renewLease(t, a) // before the manager starts (TestForeignStatusIsPutBack)
	withResync(t, time.Second)
	ag := newAppGroup(t, ns, "blog", nil)
	agentA := newAgent(t, ns, a, "192.0.2.2")
	rollAll("blog", 2, agentA)
	waitRolledOut(t, ns, "blog", 1)

	// Its agent never drains the pool: the deletion waits.
	if err := env.Client.Delete(testContext(t), ag); err != nil {
		t.Fatal(err)
	}
	waiting := "Waiting for the agent on " + a + " to drain its pool"
	waitCondition(t, ns, "blog", ferryv1.ConditionReady, metav1.ConditionFalse, ferryv1.ReasonDeleting, waiting)
	// A new manager has none of the old one's passes pending (those of
	// before the deletion, a second away, would put the status back
	// whatever a deleting pass asks): only its first pass, then those
	// the passes ask for. restartManager waits for its first pass.
	restartManager(t)
	foreign := getAppGroup(t, ns, "blog")
	meta.SetStatusCondition(&foreign.Status.Conditions, metav1.Condition{Type: ferryv1.ConditionReady,
		Status: metav1.ConditionUnknown, Reason: ferryv1.ReasonAgentNotReporting, Message: "written by another manager"})
	if err := env.Client.Status().Update(testContext(t), foreign); err != nil {
		t.Fatal(err)
	}
	waitCondition(t, ns, "blog", ferryv1.ConditionReady, metav1.ConditionFalse, ferryv1.ReasonDeleting, waiting)
}

// withResync restarts the manager under test with ResyncEvery every, and
// with the default again when the test ends.
func withResync(t *testing.T, every time.Duration) {
	t.Helper()
	resyncEvery = every
	restartManager(t)
	t.Cleanup(func() {
		resyncEvery = 0
		restartManager(t)
	})
}

// apiWrites is how many requests this process has sent the API server
// that may write (client-go's count, every client's).
func apiWrites(t *testing.T) float64 {
	t.Helper()
	var n float64
	for _, m := range []string{http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete} {
		n += metricValue(t, "rest_client_requests_total", map[string]string{"method": m})
	}
	return n
}
