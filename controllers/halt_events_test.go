package controllers_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ferryv1 "github.com/ferry-dev/ferry/api/v1alpha1"
	"github.com/ferry-dev/ferry/controllers"
)

// TestHaltSwappedPastTheFifthNodeIsRecorded: a new AppGroup's first
// revision fails on six of seven nodes; RollingRestart names five, "and 1
// more". Then the sixth starts its processes anew, its agent restarted
// (no spawn error since: one that retries after its failures stays
// named), as the seventh fails, and the manager sees both in one pass: the message, and the whole status,
// stay as they were, so there is no status to write. The halt spread to
// the seventh node all the same: RolloutHalted is recorded again, naming
// it (seen failing: no event, as the pass returned at the status it need
// not write before it looked at the nodes halting).
//
// The manager sees both reports in one pass because its status writes
// are refused meanwhile (a ValidatingAdmissionPolicy): each pass that
// saw one report alone had a status to write, and left nothing behind.
func TestHaltSwappedPastTheFifthNodeIsRecorded(t *testing.T) {
	ns := newNamespace(t)
	agents := map[string]*simAgent{}
	var nodes []string
	for i, s := range []string{"a", "b", "c", "d", "e", "f", "g"} {
		node := newNode(t, ns, s, true)
		nodes = append(nodes, node)
		agents[s] = newAgent(t, ns, node, fmt.Sprintf("192.0.2.%d", i+2))
	}
	f, g := nodes[5], nodes[6]
	newAppGroup(t, ns, "blog", nil)
	agents["g"].booting("blog", 2)
	agents["a"].failSpawns("blog", "the app failed to load")
	waitEvent(t, ns, "blog", corev1.EventTypeWarning, controllers.EventRolloutHalted, "it failed to spawn on "+nodes[0]+" (")
	for _, s := range []string{"b", "c", "d", "e", "f"} {
		agents[s].failSpawns("blog", "the app failed to load")
	}
	waitCondition(t, ns, "blog", ferryv1.ConditionRollingRestart, metav1.ConditionFalse, ferryv1.ReasonRolloutHalted,
		"it failed to spawn on "+strings.Join(nodes[:5], ", ")+" and 1 more (")
	waitEvent(t, ns, "blog", corev1.EventTypeWarning, controllers.EventRolloutHalted, "; now also on ", f)
	halts := eventCountOf(t, ns, "blog", controllers.EventRolloutHalted, "")
	before := getAppGroup(t, ns, "blog")

	refuseStatusWrites(t, ns, "blog")
	// The agents' reports carry a new stamp, so that setClock can tell
	// when the manager has seen them.
	setClock(t, clk.Now().Add(time.Second))
	agents["f"].report("blog", func(p *ferryv1.ProcessPool) { bootingAnew(p, 2) })
	agents["g"].failSpawns("blog", "the app failed to load")
	setClock(t, clk.Now()) // once the manager has seen both reports

	waitEvent(t, ns, "blog", corev1.EventTypeWarning, controllers.EventRolloutHalted, "; now also on "+g)
	assertEventCount(t, ns, "blog", controllers.EventRolloutHalted, halts+1)
	after := getAppGroup(t, ns, "blog")
	if after.ResourceVersion != before.ResourceVersion || !equality.Semantic.DeepEqual(after.Status, before.Status) {
		t.Errorf("the AppGroup was written (resourceVersion %s, then %s): the test means a status the swap leaves as it was",
			before.ResourceVersion, after.ResourceVersion)
	}
}

// refuseStatusWrites has the API server refuse every write of the
// AppGroup's status in ns (a ValidatingAdmissionPolicy, until the test
// ends), and waits until it does.
func refuseStatusWrites(t *testing.T, ns, name string) {
	t.Helper()
	ctx := testContext(t)
	policyName := "refuse-status-" + ns
	denyInNamespace(t, ns, policyName, admissionregistrationv1.Update, "appgroups/status", "status writes refused by the test")
	eventually(t, "the policy refusing status writes", func() error {
		probe := getAppGroup(t, ns, name)
		probe.Status.ObservedGeneration++
		err := env.Client.Status().Update(ctx, probe, client.DryRunAll)
		switch {
		case err == nil:
			return errors.New("a status write was still accepted")
		case !strings.Contains(err.Error(), "status writes refused by the test"):
			return err
		}
		return nil
	})
}

// bootingAnew is what a restarted agent reports of a pool: n processes of
// spec.revision spawning, none ready yet, and no spawn error of its own.
func bootingAnew(p *ferryv1.ProcessPool, n int32) {
	setRolledOut(p, n)
	p.Status.ProcessCounts.Ready = 0
	p.Status.LastSpawnError = nil
	setCondition(p, ferryv1.ConditionReady, metav1.ConditionFalse, ferryv1.ReasonProcessesNotReady)
}
