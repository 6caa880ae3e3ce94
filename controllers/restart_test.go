package controllers_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	ferryv1 "github.com/ferry-dev/ferry/api/v1alpha1"
	"github.com/ferry-dev/ferry/controllers"
)

// A restarted manager (a new leader, one back from a crash) knows of each
// AppGroup only what the API server has. These tests make a transition,
// restart the manager, and check that what it then records is no second
// event of the same transition.

// TestRestartedManagerRecordsNoSecondNodeRolledOut: a node rolled out
// the target (NodeRolledOut 1/3), the manager restarts, and that node's
// agent goes silent and is heard again while the next node rolls: the
// same node, no second "1/3" (seen failing: recorded again).
func TestRestartedManagerRecordsNoSecondNodeRolledOut(t *testing.T) {
	silentNodeBack(t, func() { restartManager(t) })
}

// TestRestartedManagerRecordsNoSecondHalt: a node halts the rollout
// (RolloutHalted), the manager restarts, and the node's agent falls
// silent and is heard again, still failing: the same halt (seen failing:
// recorded again).
func TestRestartedManagerRecordsNoSecondHalt(t *testing.T) {
	silentHaltingNodeBack(t, func() { restartManager(t) })
}

// TestRestartedManagerRecordsNothingOfARolloutComplete: a rollout
// completed, the manager restarts and passes over the AppGroup again: no
// event of the rollout is recorded again.
func TestRestartedManagerRecordsNothingOfARolloutComplete(t *testing.T) {
	ns := newNamespace(t)
	_, _, _, agents, rev1 := rolledOutOnThree(t, ns, nil)
	waitLastRolledOut(t, ns, "blog", rev1)
	waitEvent(t, ns, "blog", corev1.EventTypeNormal, controllers.EventRolloutComplete, "Revision "+rev1+" runs on 3/3 nodes")
	reasons := []string{controllers.EventRolloutStarted, controllers.EventNodeRolledOut,
		controllers.EventRolloutComplete, controllers.EventRolloutHalted}
	before := map[string]int{}
	for _, reason := range reasons {
		before[reason] = eventCountOf(t, ns, "blog", reason, "")
	}

	restartManager(t) // and its first pass
	for _, agent := range agents {
		agent.heartbeat("blog")
	}
	waitRolledOut(t, ns, "blog", 3)
	for _, reason := range reasons {
		assertEventCountOf(t, ns, "blog", reason, "", before[reason])
	}
}

// TestRestartedManagerNamesNoListenFailureTwice: b's proxy cannot listen
// (ListenFailed names b), the manager restarts, and its first pass finds
// the status as it would write it; a's report then changes the status:
// b is not named again, and once it listens ListenRecovered says so
// (seen failing: a second ListenFailed of b at a's report).
func TestRestartedManagerNamesNoListenFailureTwice(t *testing.T) {
	ns := newNamespace(t)
	a, b, agentA, agentB, _ := rolledOutOnTwo(t, ns, "blog", nil)
	agentB.cannotListen("blog", 2, "the proxy cannot listen: listen tcp 0.0.0.0:8080: bind: address already in use")
	waitEvent(t, ns, "blog", corev1.EventTypeWarning, controllers.EventListenFailed, b)

	restartManager(t) // and its first pass
	agentA.notReady("blog", 1, 2)
	waitCondition(t, ns, "blog", ferryv1.ConditionReady, metav1.ConditionFalse, ferryv1.ReasonProcessesNotReady, "not ready: "+a+" and "+b)
	assertEventCount(t, ns, "blog", controllers.EventListenFailed, 1)

	agentB.rollOut("blog", 2)
	waitEvent(t, ns, "blog", corev1.EventTypeNormal, controllers.EventListenRecovered, "listen.port 8080")
	assertEventCount(t, ns, "blog", controllers.EventListenFailed, 1)
}

// TestNewLeaderGivesVouchedAgentsTheirGrace: an API server outage kept
// the agent from renewing its Lease and ended the manager; a new one
// starts with the Lease and the report older than the staleness bound,
// and the AppGroup's status Ready. It takes its predecessor's word: the
// node stays in the Service and no AgentNotReporting comes while the
// agent has the bound from the new manager's start to renew; past it,
// unrenewed, the agent is judged not reporting as before, and trusted
// again once it renews.
func TestNewLeaderGivesVouchedAgentsTheirGrace(t *testing.T) {
	ns := newNamespace(t)
	a, agentA := rolledOutWithLease(t, ns)
	eventually(t, "a in the Service", func() error { return checkEndpoints(ns, "blog", map[string]bool{"192.0.2.2": true}) })

	restartManagerAfter(t, func() { clk.SetTime(clk.Now().Add(staleAfter + 5*time.Second)) })
	// The agent's pool changes (3 processes) with no heartbeat: the new
	// manager's pass over it shows in the status.
	p := agentA.pool("blog")
	heartbeat := p.Status.HeartbeatTime
	setRolledOut(p, 3)
	p.Status.HeartbeatTime, p.Status.ReadyProcesses = heartbeat, "3/3"
	if err := env.Client.Status().Update(context.Background(), p); err != nil {
		t.Fatal(err)
	}
	ag := waitStatus(t, ns, "blog", "the new manager's pass over 3 processes", func(st *ferryv1.AppGroupStatus) error {
		if st.Processes.Total != 3 {
			return fmt.Errorf("processes %+v", st.Processes)
		}
		return nil
	})
	if c := conditionOf(&ag.Status, ferryv1.ConditionReady); c.Status != metav1.ConditionTrue {
		t.Errorf("within the grace, Ready is %s %s (%s), want True", c.Status, c.Reason, c.Message)
	}
	if err := checkEndpoints(ns, "blog", map[string]bool{"192.0.2.2": true}); err != nil {
		t.Errorf("within the grace: %v", err)
	}
	assertNoEvent(t, ns, "blog", controllers.EventAgentNotReporting)

	setClock(t, clk.Now().Add(staleAfter+5*time.Second))
	waitCondition(t, ns, "blog", ferryv1.ConditionReady, metav1.ConditionUnknown, ferryv1.ReasonAgentNotReporting, a)
	eventually(t, "a not ready in the Service", func() error { return checkEndpoints(ns, "blog", map[string]bool{"192.0.2.2": false}) })
	renewLease(t, a)
	waitCondition(t, ns, "blog", ferryv1.ConditionReady, metav1.ConditionTrue, ferryv1.ReasonProcessesReady, "")
}

// TestRestartedManagerRecordsAHaltThatSpreads: a new AppGroup's first
// revision fails on a (RolloutHalted names a), the manager restarts, and
// its first pass finds the status as it would write it; then b's agent
// reports that it cannot spawn it either. The new manager records
// RolloutHalted again, naming both, as the one before it would have, and
// nothing more: the halt it took over is not recorded again, nor counted
// twice (seen failing: no second event, as it did not know which nodes
// the first one named).
func TestRestartedManagerRecordsAHaltThatSpreads(t *testing.T) {
	firstRevisionHaltSpreads(t, newNamespace(t), func(string) { restartManager(t) }) // and its first pass
}

// TestRestartedManagerRecordsAHaltThatSpreadWhileNoneRan: a new
// AppGroup's first revision fails on a (RolloutHalted names a); while no
// manager runs, b's agent reports that it cannot spawn it either. The new
// manager's first pass moves RollingRestart to name both: it records
// RolloutHalted again, naming both, as the manager before it would have,
// and counts no second halt (seen failing: no second event, as the nodes
// the first one named were taken as not known once the message moved).
func TestRestartedManagerRecordsAHaltThatSpreadWhileNoneRan(t *testing.T) {
	ns := newNamespace(t)
	firstRevisionHaltSpreads(t, ns, func(string) {
		restartManagerAfter(t, func() {
			// firstRevisionHaltSpreads reports the same again, the manager
			// back: nothing new then.
			newAgent(t, ns, ns+"-b", "192.0.2.3").failSpawns("blog", "the app failed to load")
		})
	})
}

// TestRestartedManagerRecordsNoSpreadOfAHaltOfTwoKinds: a Blocking
// restart onto revision 2, given to a and b at once, fails to spawn on a
// and dies soon after it was ready on b: RollingRestart has a clause for
// each ("it died on b ...; it failed to spawn on a ..."), and
// RolloutHalted named both. The manager restarts: the halt it takes over
// named a in its second clause, so a is no news, and no RolloutHalted is
// recorded again (seen failing: its first pass recorded one "again",
// having read the first clause alone). c's proxy then fails to listen:
// its ListenFailed, recorded after any such RolloutHalted, says when to
// count them, counted as the manager recorded them (recordedEvents), not
// as the API server lists them, in no order.
func TestRestartedManagerRecordsNoSpreadOfAHaltOfTwoKinds(t *testing.T) {
	ns := newNamespace(t)
	a, b, c, agents, rev1 := rolledOutOnThree(t, ns, func(ag *ferryv1.AppGroup) {
		ag.Spec.Restart.Strategy = ferryv1.RestartBlocking
		ag.Spec.Restart.MaxConcurrentNodes = 2
	})
	bump(t, ns, "blog", "2")
	rev2 := target(t, ns, "blog")
	waitRevisions(t, ns, "blog", map[string]string{a: rev2, b: rev2, c: rev1})
	agents[0].failSpawns("blog", "the app failed to load")
	waitEvent(t, ns, "blog", corev1.EventTypeWarning, controllers.EventRolloutHalted, "it failed to spawn on "+a+" (")
	agents[1].diesBlocking("blog", "exited with status 3 1.2s after it was ready")
	died := "it died on " + b + " soon after it was ready (exited with status 3 soon after it was ready)"
	waitCondition(t, ns, "blog", ferryv1.ConditionRollingRestart, metav1.ConditionFalse, ferryv1.ReasonRolloutHalted,
		died, "; it failed to spawn on "+a+" (the app failed to load)")
	waitEvent(t, ns, "blog", corev1.EventTypeWarning, controllers.EventRolloutHalted, died)

	mark := recordedEvents.mark()
	restartManager(t) // and its first pass
	agents[2].cannotListen("blog", 2, "the proxy cannot listen: listen tcp 0.0.0.0:8080: bind: address already in use")
	// Counted as the manager recorded them (recordedEvents): the API
	// server may list a RolloutHalted recorded before ListenFailed after
	// it.
	before := waitLogged(t, mark, ns, "blog", controllers.EventListenFailed, c)
	if n := loggedCount(before, ns, "blog", controllers.EventRolloutHalted); n != 0 {
		t.Fatalf("the restarted manager recorded RolloutHalted %d times, want none: %+v", n, before)
	}
}

// diesBlocking reports what an agent reports while its Blocking restart
// onto spec.revision runs and a process of it died soon after it was
// ready (reason): every old process stopped, none of it ready, the death
// the last spawn error, its spawns backed off (ScalingError).
func (a *simAgent) diesBlocking(agName, reason string) {
	a.t.Helper()
	a.report(agName, func(p *ferryv1.ProcessPool) {
		st := &p.Status
		st.ObservedRevision = p.Spec.Revision
		st.ProcessCounts = ferryv1.ProcessCounts{Ready: 0, Updated: 2, Total: 2}
		st.RestartProgress = &ferryv1.RestartProgress{Revision: p.Spec.Revision, Done: 0, Total: 2}
		st.LastSpawnError = &ferryv1.SpawnError{Revision: p.Spec.Revision, Reason: reason, Time: metav1.Time{Time: clk.Now()}}
		setCondition(p, ferryv1.ConditionReady, metav1.ConditionFalse, ferryv1.ReasonProcessesNotReady)
		setCondition(p, ferryv1.ConditionRollingRestart, metav1.ConditionTrue, ferryv1.ReasonRestartingBlocking)
		setCondition(p, ferryv1.ConditionScalingError, metav1.ConditionTrue, ferryv1.ReasonSpawnBackoff)
	})
}
