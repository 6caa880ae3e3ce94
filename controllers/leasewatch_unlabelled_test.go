package controllers_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ferryv1 "github.com/ferry-dev/ferry/api/v1alpha1"
)

// TestSilentAgentOfAnUnlabelledDeletedPool: a deleted AppGroup waits for
// the agent on its node to drain its pool, whose ferry.dev/node label
// went (the manager puts it back on the pools it keeps, not on those it
// deletes). The agent's last sign is its Lease, so the AppGroup's passes
// requeue for no staleness (nextStaleness): when the agent falls silent,
// the lease watcher's pass is what makes the status say so. Before, the
// watcher found a node's AppGroups by the pools labelled for the node,
// missed this one, and the status said nothing of the silence until the
// AppGroup's resync, up to 5.5 minutes later (nor, the other way, that
// an agent judged silent renewed again).
func TestSilentAgentOfAnUnlabelledDeletedPool(t *testing.T) {
	ns := newNamespace(t)
	a, b, agentA, agentB, _ := rolledOutOnTwo(t, ns, "blog", nil)
	// The pools' reports are old, the Leases fresh: the Leases are the
	// last signs.
	setClock(t, clk.Now().Add(3*staleAfter))
	renewLease(t, a)
	renewLease(t, b)
	p := agentA.pool("blog")
	if err := env.Client.Delete(testContext(t), getAppGroup(t, ns, "blog")); err != nil {
		t.Fatal(err)
	}
	// The renewals count once the lease watcher has seen them, which may
	// be after the deletion's pass: wait for the status to trust the
	// agents.
	eventually(t, "the deleted AppGroup waiting for trusted agents", func() error {
		c := meta.FindStatusCondition(getAppGroup(t, ns, "blog").Status.Conditions, ferryv1.ConditionReady)
		if c == nil || c.Reason != ferryv1.ReasonDeleting || !strings.Contains(c.Message, "Waiting for the agents on") ||
			strings.Contains(c.Message, "has not reported") {
			return fmt.Errorf("Ready is %+v", c)
		}
		return nil
	})

	// The label goes on a. The pass that brings (the pool changed) must
	// run while a's agent is trusted, before the clock moves on: one
	// after would find the agent silent by itself, watcher or not. So b's
	// agent drains its pool next, and the pass that shows b's pool gone
	// began after the label went (the manager's cache sees the pools'
	// changes in order): it is, or comes after, the label's pass of this
	// AppGroup, and none is left to come (b's only use here).
	orig := p.DeepCopy()
	delete(p.Labels, ferryv1.NodeLabel)
	if err := env.Client.Patch(testContext(t), p, client.MergeFrom(orig)); err != nil {
		t.Fatal(err)
	}
	agentB.drain("blog")
	waitCondition(t, ns, "blog", ferryv1.ConditionReady, metav1.ConditionFalse, ferryv1.ReasonDeleting,
		"Waiting for the agent on "+a+" to drain its pool")

	setClock(t, clk.Now().Add(staleAfter+5*time.Second))
	waitCondition(t, ns, "blog", ferryv1.ConditionReady, metav1.ConditionFalse, ferryv1.ReasonDeleting,
		"The agent on "+a+" has not reported since")
}
