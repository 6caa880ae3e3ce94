package controllers_test

import (
	"fmt"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	ferryv1 "github.com/ferry-dev/ferry/api/v1alpha1"
	"github.com/ferry-dev/ferry/controllers"
	"github.com/ferry-dev/ferry/controllers/contract"
)

// withCrashWindow restarts the manager under test with the agents' crash
// window (SettleFor zero: contract.CrashWindow), and with none again once
// t is over.
func withCrashWindow(t *testing.T) {
	t.Helper()
	// Not restartManager: with no AppGroup yet, no pass comes to wait for.
	restart := func(settle time.Duration) {
		stopManager()
		settleFor = settle
		stop, err := startManager(managerConfig)
		if err != nil {
			t.Fatal(err)
		}
		stopManager = stop
	}
	restart(0)
	t.Cleanup(func() { restart(-1) })
}

// passCrashWindow waits until the manager's last pass over blog asked for
// the next at the crash window's end (nextSettle: a pass that found the
// new processes ready and still in the window asks for one 100 ms past
// it), steps the manager's clock there, has the agent report (nothing new)
// and brings that pass (controllers.DuePass): it finds the processes have
// lived the window. Due within the last two seconds before end, not merely
// by end: a requeue sooner, a conflict's retry (250 ms), was no proof the
// manager asked for the window's end. The report keeps the agent fresh:
// each call steps the clock 11 s, and a test that calls it again and again
// would otherwise leave its pool's heartbeat older than
// DefaultAgentStaleAfter (40 s), the node unheard. The report alone brings
// no pass (the pool predicate drops a report that only moves the
// heartbeat), and the work queue would bring the asked-for one ten real
// seconds after it was asked for, whatever the stepped clock says (seen:
// the crash-window tests spent ten seconds of real time at each step). The
// wait first proves the manager asked for it: one that asked for none
// would pass the tests anyway, through the staleness requeue 40 s later
// (seen failing with nextSettle at 0: "the manager's last pass over …/blog
// to ask for the next by …: not within 1m30s").
func passCrashWindow(t *testing.T, agent *simAgent) {
	t.Helper()
	key := types.NamespacedName{Namespace: agent.ns, Name: "blog"}
	end := clk.Now().Add(contract.CrashWindow + time.Second)
	eventually(t, fmt.Sprintf("the manager's last pass over %s to ask for the next by %s", key, end.Format(time.RFC3339)), func() error {
		if due, ok := passes.dueWithin(key, end.Add(-2*time.Second), end); !ok {
			return fmt.Errorf("it asked for one at %s (zero: none)", due.Format(time.RFC3339))
		}
		return nil
	})
	setClock(t, end)
	agent.heartbeat("blog")
	controllers.DuePass(t, reconciler, agent.ns, "blog")
}

// crashWindow is the crash window as the manager's messages say it: the
// agents' (contract.CrashWindow), whatever the manager's SettleFor, which
// only tests set.
var crashWindow = contract.CrashWindow.String()

// provingOn is RollingRestart's message (ProvingRevision) while node,
// the only one, has every process of a revision not proven yet ready and
// lives the crash window. The window it names is contract.CrashWindow,
// not the manager's SettleFor: the message says the agents' window (and
// withCrashWindow's SettleFor, zero, is that window).
func provingOn(node string) string {
	return "1/1 nodes updated (new processes on " + node + " must first live " + crashWindow + ", the crash window)"
}

// startOneNodeRollout is the opening of the one-node crash-window tests:
// a namespace with one node, a, AppGroup blog as edit leaves it (nil: the
// defaults) and an agent on a, which rolls out the first revision (rev1)
// with procs processes ready. The caller starts the manager with the
// crash window first (withCrashWindow).
func startOneNodeRollout(t *testing.T, procs int32, edit func(*ferryv1.AppGroup)) (ns, a string, agent *simAgent, rev1 string) {
	t.Helper()
	ns = newNamespace(t)
	a = newNode(t, ns, "a", true)
	newAppGroup(t, ns, "blog", edit)
	agent = newAgent(t, ns, a, "192.0.2.2")
	rev1 = target(t, ns, "blog")
	agent.rollOut("blog", procs)
	return ns, a, agent, rev1
}

// TestOneWaveRolloutWaitsForTheCrashWindow: a revision bump on one node
// (every node in one wave) of a revision that never ran: no node waits
// for the first one's new processes to live the crash window, yet the
// rollout is not over until they have: RollingRestart stays True, saying
// so, and RolloutComplete comes once they lived it; processes that die in
// it halt the rollout and return the node, with no RolloutComplete before,
// nor while one that died young is replaced (seen failing: RolloutComplete as soon as the node was updated, the
// halt and NodeReturned after it, and `kubectl ferry restart --wait`
// said "Rolled out"). A new AppGroup's first revision, which has nothing
// to be returned to, waits so too: processes that die in the window halt
// it (RolloutHalted) as much as a bump.
func TestOneWaveRolloutWaitsForTheCrashWindow(t *testing.T) {
	withCrashWindow(t)
	for _, lives := range []bool{true, false} {
		name := "its processes die in the window"
		if lives {
			name = "its processes live the window"
		}
		t.Run(name, func(t *testing.T) {
			ns, a, agent, rev1 := startOneNodeRollout(t, 2, nil)
			settling := provingOn(a)
			waitCondition(t, ns, "blog", ferryv1.ConditionRollingRestart, metav1.ConditionTrue, ferryv1.ReasonProvingRevision, settling)
			assertNoEvent(t, ns, "blog", controllers.EventRolloutComplete)
			passCrashWindow(t, agent)
			waitLastRolledOut(t, ns, "blog", rev1)
			waitRolledOut(t, ns, "blog", 1)
			waitEvent(t, ns, "blog", corev1.EventTypeNormal, controllers.EventRolloutComplete, "Revision "+rev1+" runs on 1/1 nodes")

			bump(t, ns, "blog", "2")
			rev2 := target(t, ns, "blog")
			waitRevisions(t, ns, "blog", map[string]string{a: rev2})
			agent.restarting("blog", 1, 2)
			agent.rollOut("blog", 2)
			waitCondition(t, ns, "blog", ferryv1.ConditionRollingRestart, metav1.ConditionTrue, ferryv1.ReasonProvingRevision, settling)
			assertEventCountOf(t, ns, "blog", controllers.EventRolloutComplete, rev2, 0)

			if lives {
				// One dies young and is replaced: not over either.
				agent.notReady("blog", 1, 2)
				waitCondition(t, ns, "blog", ferryv1.ConditionRollingRestart, metav1.ConditionTrue, ferryv1.ReasonProvingRevision,
					"1/1 nodes updated (new processes on "+a+" must first all be ready and live "+crashWindow+", the crash window)")
				agent.rollOut("blog", 2)
				waitCondition(t, ns, "blog", ferryv1.ConditionRollingRestart, metav1.ConditionTrue, ferryv1.ReasonProvingRevision, settling)
				assertEventCountOf(t, ns, "blog", controllers.EventRolloutComplete, rev2, 0)
				passCrashWindow(t, agent)
				waitLastRolledOut(t, ns, "blog", rev2)
				waitRolledOut(t, ns, "blog", 1)
				waitEvent(t, ns, "blog", corev1.EventTypeNormal, controllers.EventRolloutComplete, "Revision "+rev2+" runs on 1/1 nodes")
				return
			}
			// Its processes die in the window, all replaced: nothing of
			// revision 2 runs, and the node goes back to revision 1.
			agent.failSpawns("blog", "exited with status 3 1.2s after it was ready")
			waitEvent(t, ns, "blog", corev1.EventTypeWarning, controllers.EventRolloutHalted, rev2)
			waitEvent(t, ns, "blog", corev1.EventTypeWarning, controllers.EventNodeReturned, "node "+a, "revision "+rev1)
			waitRevisions(t, ns, "blog", map[string]string{a: rev1})
			assertEventCountOf(t, ns, "blog", controllers.EventRolloutComplete, rev2, 0)
		})
	}
}

// TestBlockingRolloutProvesItsRevision: a Blocking AppGroup's restart is
// over once its new processes run, on one node (no wave waits): while they
// live the crash window, RollingRestart stays True, as for a rolling
// restart, but says ProvingRevision, not RestartingBlocking, which reads
// as the app down while its new processes serve (seen failing: True/
// RestartingBlocking, the crash-window message, until the window passed).
func TestBlockingRolloutProvesItsRevision(t *testing.T) {
	withCrashWindow(t)
	ns, a, agent, rev1 := startOneNodeRollout(t, 2, func(ag *ferryv1.AppGroup) { ag.Spec.Restart.Strategy = ferryv1.RestartBlocking })
	settling := provingOn(a)
	waitCondition(t, ns, "blog", ferryv1.ConditionRollingRestart, metav1.ConditionTrue, ferryv1.ReasonProvingRevision, settling)
	passCrashWindow(t, agent)
	waitEvent(t, ns, "blog", corev1.EventTypeNormal, controllers.EventRolloutComplete, "Revision "+rev1+" runs on 1/1 nodes")

	bump(t, ns, "blog", "2")
	rev2 := target(t, ns, "blog")
	waitRevisions(t, ns, "blog", map[string]string{a: rev2})
	agent.restartingBlocking("blog", 2)
	waitCondition(t, ns, "blog", ferryv1.ConditionRollingRestart, metav1.ConditionTrue, ferryv1.ReasonRestartingBlocking, "node 1/1 ("+a+"), process 1/2")
	agent.rollOut("blog", 2)
	waitCondition(t, ns, "blog", ferryv1.ConditionRollingRestart, metav1.ConditionTrue, ferryv1.ReasonProvingRevision, settling)
	assertEventCountOf(t, ns, "blog", controllers.EventRolloutComplete, rev2, 0)
	passCrashWindow(t, agent)
	waitCondition(t, ns, "blog", ferryv1.ConditionRollingRestart, metav1.ConditionFalse, ferryv1.ReasonRolloutComplete, "Revision "+rev2+" runs on 1/1 nodes")
	waitEvent(t, ns, "blog", corev1.EventTypeNormal, controllers.EventRolloutComplete, "Revision "+rev2+" runs on 1/1 nodes")
}
