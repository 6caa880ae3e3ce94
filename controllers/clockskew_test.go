package controllers_test

import (
	"fmt"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	ferryv1 "github.com/ferry-dev/ferry/api/v1alpha1"
)

// The manager judges an agent silent "when neither a node's Lease nor its
// pool's status was written within manager.agentStaleAfter" (install.md,
// How liveness works). The agent stamps both with its own clock, which may
// be wrong; the manager times them by when it saw them change (signs), as
// the node lifecycle controller judges the kubelet's Lease by when it saw
// it change, not by its renewTime.

// TestAgentClockAheadDoesNotKeepADeadNodeServing: an agent whose clock is
// an hour ahead reports once and dies. Its node must leave the Service
// once the manager has heard nothing of it for agentStaleAfter, not an
// hour later.
func TestAgentClockAheadDoesNotKeepADeadNodeServing(t *testing.T) {
	ns := newNamespace(t)
	a, _, agentA, agentB, _ := rolledOutOnTwo(t, ns, "blog", nil)

	// a's last report, stamped by a clock an hour ahead; then it dies.
	agentA.report("blog", func(p *ferryv1.ProcessPool) {
		p.Status.HeartbeatTime = &metav1.Time{Time: clk.Now().Add(time.Hour)}
	})
	setClock(t, clk.Now().Add(staleAfter+5*time.Second))
	// b reports a change, which brings a pass: 2 + 3 processes.
	agentB.report("blog", func(p *ferryv1.ProcessPool) { setRolledOut(p, 3) })
	ag := waitStatus(t, ns, "blog", "5 processes", func(st *ferryv1.AppGroupStatus) error {
		if st.Processes.Total != 5 {
			return fmt.Errorf("processes %+v", st.Processes)
		}
		return nil
	})
	if ready := condition(ag, ferryv1.ConditionReady); ready.Status == metav1.ConditionTrue {
		t.Errorf("nothing heard from %s's agent for %s, yet Ready %s/%s (%s): its report is stamped an hour ahead",
			a, staleAfter+5*time.Second, ready.Status, ready.Reason, ready.Message)
	}
	if err := checkEndpoints(ns, "blog", map[string]bool{"192.0.2.2": false, "192.0.2.3": true}); err != nil {
		t.Errorf("the dead agent's node stays in the Service: %v", err)
	}
}

// TestAgentClockBehindIsNotSilence: an agent whose clock is 45 s behind
// the manager's writes its pool's status now. It was written within
// agentStaleAfter: the node is not silent, and stays in the Service.
func TestAgentClockBehindIsNotSilence(t *testing.T) {
	ns := newNamespace(t)
	a, _, agentA, _, _ := rolledOutOnTwo(t, ns, "blog", nil)

	// a's agent writes a change now (3 processes), stamped 45 s behind.
	agentA.report("blog", func(p *ferryv1.ProcessPool) {
		setRolledOut(p, 3)
		p.Status.HeartbeatTime = &metav1.Time{Time: clk.Now().Add(-staleAfter - 5*time.Second)}
	})
	ag := waitStatus(t, ns, "blog", "5 processes", func(st *ferryv1.AppGroupStatus) error {
		if st.Processes.Total != 5 {
			return fmt.Errorf("processes %+v", st.Processes)
		}
		return nil
	})
	if ready := condition(ag, ferryv1.ConditionReady); ready.Status != metav1.ConditionTrue {
		t.Errorf("%s's agent wrote its status just now, yet Ready %s/%s (%s)", a, ready.Status, ready.Reason, ready.Message)
	}
	if err := checkEndpoints(ns, "blog", map[string]bool{"192.0.2.2": true, "192.0.2.3": true}); err != nil {
		t.Errorf("a node whose agent reports, with its clock behind, left the Service: %v", err)
	}
}

// condition is ag's condition of type typ (zero when it has none).
func condition(ag *ferryv1.AppGroup, typ string) metav1.Condition {
	for _, c := range ag.Status.Conditions {
		if c.Type == typ {
			return c
		}
	}
	return metav1.Condition{}
}

// TestAgentLeaseBehindIsNotSilence: an agent whose clock is 45 s behind
// the manager's renews its Lease after a silence. The renewal was made
// now: the node is heard again.
func TestAgentLeaseBehindIsNotSilence(t *testing.T) {
	ns := newNamespace(t)
	a, _ := rolledOutWithLease(t, ns)
	setClock(t, clk.Now().Add(3*staleAfter))
	waitCondition(t, ns, "blog", ferryv1.ConditionReady, metav1.ConditionUnknown, ferryv1.ReasonAgentNotReporting, a)

	renewLeaseAt(t, a, clk.Now().Add(-staleAfter-5*time.Second))
	waitCondition(t, ns, "blog", ferryv1.ConditionReady, metav1.ConditionTrue, ferryv1.ReasonProcessesReady, "")
}
