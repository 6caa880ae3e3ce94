package controllers_test

import (
	"errors"
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
	a, agentA := rolledOutWithLease(t, ns)
	// The pool's report is old, the Lease fresh: the Lease is the last sign.
	setClock(t, clk.Now().Add(3*staleAfter))
	renewLease(t, a)
	p := agentA.pool("blog")
	if err := env.Client.Delete(testContext(t), getAppGroup(t, ns, "blog")); err != nil {
		t.Fatal(err)
	}
	// The renewal counts once the lease watcher has seen it, which may be
	// after the deletion's pass: wait for the status to trust the agent.
	eventually(t, "the deleted AppGroup waiting for a trusted agent", func() error {
		c := meta.FindStatusCondition(getAppGroup(t, ns, "blog").Status.Conditions, ferryv1.ConditionReady)
		if c == nil || c.Reason != ferryv1.ReasonDeleting || strings.Contains(c.Message, "has not reported") {
			return fmt.Errorf("Ready is %+v", c)
		}
		return nil
	})

	// The label goes; the pass that brings (the pool changed) runs while
	// the agent is trusted, before the clock moves on.
	before := reconciles(t)
	orig := p.DeepCopy()
	delete(p.Labels, ferryv1.NodeLabel)
	if err := env.Client.Patch(testContext(t), p, client.MergeFrom(orig)); err != nil {
		t.Fatal(err)
	}
	eventually(t, "a pass after the label went", func() error {
		if reconciles(t) <= before {
			return errors.New("no pass yet")
		}
		return nil
	})

	setClock(t, clk.Now().Add(staleAfter+5*time.Second))
	waitCondition(t, ns, "blog", ferryv1.ConditionReady, metav1.ConditionFalse, ferryv1.ReasonDeleting,
		"The agent on "+a+" has not reported since")
}
