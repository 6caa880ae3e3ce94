package controllers_test

import (
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	ferryv1 "github.com/ferry-dev/ferry/api/v1alpha1"
)

// TestDeletedAppGroupEndpointsTurnTerminating: a deleted AppGroup's
// endpoints turn terminating at once, while the agents serve through their
// drain delay, and a drained pool's endpoint goes. (Found by review: the
// endpoints stayed ready until the AppGroup was released.)
func TestDeletedAppGroupEndpointsTurnTerminating(t *testing.T) {
	ns := newNamespace(t)
	a, b := newNode(t, ns, "a", true), newNode(t, ns, "b", true)
	ag := newAppGroup(t, ns, "blog", nil)
	agentA, agentB := newAgent(t, ns, a, "192.0.2.2"), newAgent(t, ns, b, "192.0.2.3")
	rollAll("blog", 2, agentA, agentB)
	waitRolledOut(t, ns, "blog", 2)
	eventually(t, "both endpoints ready", func() error {
		return checkEndpoints(ns, "blog", map[string]bool{"192.0.2.2": true, "192.0.2.3": true})
	})
	if err := env.Client.Delete(testContext(t), ag); err != nil {
		t.Fatal(err)
	}
	waitCondition(t, ns, "blog", ferryv1.ConditionReady, metav1.ConditionFalse, ferryv1.ReasonDeleting)
	// a's agent drained (its listener is closed); b's still delays.
	agentA.drain("blog")
	setNodeLabel(t, b, "test.ferry.dev/poke", "1")
	waitCondition(t, ns, "blog", ferryv1.ConditionReady, metav1.ConditionFalse, ferryv1.ReasonDeleting,
		"Waiting for the agent on "+b+" to drain its pool")
	if err := checkEndpoints(ns, "blog", map[string]bool{"192.0.2.3": false}); err != nil {
		t.Errorf("while the AppGroup is deleted: %v (want a's drained endpoint gone and b's not ready/terminating)", err)
	}
}
