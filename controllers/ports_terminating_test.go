package controllers_test

import (
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	ferryv1 "github.com/ferry-dev/ferry/api/v1alpha1"
)

// TestTerminatingAppGroupKeepsDrainedNodes: first (older) holds
// 8080 on a and b; second waits. first is deleted; a's agent drains, b's
// agent is dead, so first stays Terminating. Node a has no pool of first
// any more: second takes it, while first waits for b. (Found by review:
// the first version counted a deleted AppGroup's bare selection of a, and
// second waited for as long as b's agent was dead.)
func TestTerminatingAppGroupKeepsDrainedNodes(t *testing.T) {
	ns := newNamespace(t)
	a, b := newNode(t, ns, "a", true), newNode(t, ns, "b", true)
	first := newAppGroup(t, ns, "first", nil)
	agentA, agentB := newAgent(t, ns, a, "192.0.2.2"), newAgent(t, ns, b, "192.0.2.3")
	rollAll("first", 2, agentA, agentB)
	waitRolledOut(t, ns, "first", 2)
	time.Sleep(1100 * time.Millisecond)
	newAppGroup(t, ns, "second", nil)
	waitCondition(t, ns, "second", ferryv1.ConditionReady, metav1.ConditionFalse, ferryv1.ReasonPortConflict)

	if err := env.Client.Delete(testContext(t), first); err != nil {
		t.Fatal(err)
	}
	agentA.drain("first")
	// b's agent never drains.
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if _, err := agentA.find("second"); err == nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	ag := getAppGroup(t, ns, "second")
	t.Errorf("second got no pool on %s, where terminating first has none left; Ready %+v", a,
		conditionOf(&ag.Status, ferryv1.ConditionReady))
}
