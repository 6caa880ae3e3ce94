package controllers_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	ferryv1 "github.com/ferry-dev/ferry/api/v1alpha1"
	"github.com/ferry-dev/ferry/controllers"
)

// diesYoung reports what an agent reports of a pool whose process of
// spec.revision died soon after it was ready (reason), its replacement
// booting: one of two ready, the crash the last spawn error, ScalingError.
func (a *simAgent) diesYoung(agName, reason string) {
	a.t.Helper()
	a.report(agName, func(p *ferryv1.ProcessPool) {
		setRolledOut(p, 2)
		p.Status.ProcessCounts.Ready = 1
		p.Status.LastSpawnError = &ferryv1.SpawnError{Revision: p.Spec.Revision, Reason: reason, Time: metav1.Time{Time: clk.Now()}}
		setCondition(p, ferryv1.ConditionReady, metav1.ConditionFalse, ferryv1.ReasonProcessesNotReady)
		setCondition(p, ferryv1.ConditionScalingError, metav1.ConditionTrue, ferryv1.ReasonSpawnBackoff)
	})
}

// diesAlone reports what an agent reports of a pool of one process whose
// process of spec.revision died soon after it was ready (reason): none
// runs until the agent respawns it with backoff (ScalingError); its
// restart is over.
func (a *simAgent) diesAlone(agName, reason string) {
	a.t.Helper()
	a.report(agName, func(p *ferryv1.ProcessPool) {
		setRolledOut(p, 0)
		p.Status.LastSpawnError = &ferryv1.SpawnError{Revision: p.Spec.Revision, Reason: reason, Time: metav1.Time{Time: clk.Now()}}
		setCondition(p, ferryv1.ConditionReady, metav1.ConditionFalse, ferryv1.ReasonProcessesNotReady)
		setCondition(p, ferryv1.ConditionScalingError, metav1.ConditionTrue, ferryv1.ReasonSpawnBackoff)
	})
}

// onePerPool: the AppGroup runs one process per node.
func onePerPool(ag *ferryv1.AppGroup) { ag.Spec.Pool.MinProcesses, ag.Spec.Pool.MaxProcesses = 1, 1 }

// replacementReady reports the replacement of a process that died young
// ready: every process (n) ready, ScalingError ended, the crash still the
// last spawn error.
func (a *simAgent) replacementReady(agName string, n int32) {
	a.t.Helper()
	a.report(agName, func(p *ferryv1.ProcessPool) {
		setRolledOut(p, n)
		setCondition(p, ferryv1.ConditionScalingError, metav1.ConditionFalse, ferryv1.ReasonSpawnsHealthy)
	})
}

// lived reports n processes of spec.revision ready, one of which lived the
// crash window (lastedRevision), ScalingError ended: a loop is over.
func (a *simAgent) lived(agName string, n int32) {
	a.t.Helper()
	a.report(agName, func(p *ferryv1.ProcessPool) {
		setRolledOut(p, n)
		p.Status.LastedRevision = p.Spec.Revision
		setCondition(p, ferryv1.ConditionScalingError, metav1.ConditionFalse, ferryv1.ReasonSpawnsHealthy)
	})
}

// loopOf is the status.crashLoop of revision on nodes, not returned
// for reason, said in message.
func loopOf(revision, reason, message string, nodes ...string) *ferryv1.CrashLoop {
	return &ferryv1.CrashLoop{Revision: revision, Nodes: nodes, NodeCount: int32(len(nodes)), Reason: reason, Message: message}
}

// assertCrashLoop fails the test unless ag's status.crashLoop is want
// (nil: none).
func assertCrashLoop(t *testing.T, ag *ferryv1.AppGroup, want *ferryv1.CrashLoop) {
	t.Helper()
	if !equality.Semantic.DeepEqual(ag.Status.CrashLoop, want) {
		t.Fatalf("status.crashLoop = %+v, want %+v", ag.Status.CrashLoop, want)
	}
}

// waitCrashLoop waits for the pass that counts ready processes of the
// AppGroup (-1: any pass) with status.crashLoop want (nil: none).
func waitCrashLoop(t *testing.T, ns, name string, ready int32, want *ferryv1.CrashLoop) *ferryv1.AppGroup {
	t.Helper()
	return waitStatus(t, ns, name, fmt.Sprintf("%d processes ready, status.crashLoop %+v", ready, want), func(st *ferryv1.AppGroupStatus) error {
		if ready >= 0 && st.Processes.Ready != ready {
			return fmt.Errorf("%d processes ready", st.Processes.Ready)
		}
		if !equality.Semantic.DeepEqual(st.CrashLoop, want) {
			return fmt.Errorf("status.crashLoop %+v", st.CrashLoop)
		}
		return nil
	})
}

// waitSameRollingRestart waits for the pass that counts ready processes
// of the AppGroup, and fails unless its RollingRestart is still want; it
// returns the AppGroup as that pass left it.
func waitSameRollingRestart(t *testing.T, ns, name string, ready int32, want metav1.Condition) *ferryv1.AppGroup {
	t.Helper()
	return waitStatus(t, ns, name, fmt.Sprintf("%d processes ready, RollingRestart unchanged", ready), func(st *ferryv1.AppGroupStatus) error {
		if st.Processes.Ready != ready {
			return fmt.Errorf("%d processes ready", st.Processes.Ready)
		}
		c := meta.FindStatusCondition(st.Conditions, ferryv1.ConditionRollingRestart)
		if c.Status != want.Status || c.Reason != want.Reason || c.Message != want.Message {
			return errors.New("RollingRestart is " + string(c.Status) + "/" + c.Reason + ": " + c.Message)
		}
		return nil
	})
}

// assertNoHalt fails the test if the AppGroup's status records a halted
// rollout (kubectl ferry status shows it as "Halted rollout").
func assertNoHalt(t *testing.T, ag *ferryv1.AppGroup) {
	t.Helper()
	if h := ag.Status.HaltedRollout; h != nil {
		t.Fatalf("status.haltedRollout %+v", *h)
	}
}

// TestCrashLoopNothingReturnsIsSaid: with resistDeploymentErrors false, a
// new revision whose processes die soon after they are ready on its one
// node is respawned there with backoff for ever: nothing returns the
// node, and the rollout neither goes on nor ends. RollingRestart stays
// True/ProvingRevision, and says so: the node, the crash, and why nothing
// returns it; the same words while a replacement boots and once it is
// ready, or the status would be rewritten at each, saying something else
// (seen failing: "1/1 nodes updated (new processes on ...-a must first all
// be ready and live 10s, the crash window)" for ever, and "must first
// live 10s" between deaths).
func TestCrashLoopNothingReturnsIsSaid(t *testing.T) {
	ns, a, agent, rev2 := provingUnresisted(t, 2)

	agent.diesYoung("blog", "exited with status 3 1.2s after it was ready")
	ag := waitCondition(t, ns, "blog", ferryv1.ConditionRollingRestart, metav1.ConditionTrue, ferryv1.ReasonProvingRevision,
		"1/1 nodes updated; on "+a+" a process of revision "+rev2+" died soon after it was ready "+
			"(exited with status 3 1.2s after it was ready), and none has lived "+crashWindow+", the crash window, there yet; "+
			"nothing returns the node to an older revision (resistDeploymentErrors is false): "+
			"its processes are respawned, with a growing backoff from the second round of deaths, until one lives "+crashWindow)
	loop := loopOf(rev2, ferryv1.CrashLoopResistanceOff, "resistDeploymentErrors is false", a)
	assertCrashLoop(t, ag, loop)
	looping := *meta.FindStatusCondition(ag.Status.Conditions, ferryv1.ConditionRollingRestart)
	agent.replacementReady("blog", 2)
	assertCrashLoop(t, waitSameRollingRestart(t, ns, "blog", 2, looping), loop)
	agent.diesYoung("blog", "exited with status 3 1.2s after it was ready")
	assertCrashLoop(t, waitSameRollingRestart(t, ns, "blog", 1, looping), loop)
}

// TestProvenCrashLoopIsSaid: deployment errors resisted, a revision that
// lived the crash window on the first node (status.provenRevision) and
// whose processes then die young on the last one is not returned from
// there: its agent respawns them, with a growing backoff, and the rollout reads
// RolloutComplete while Ready says the node is not ready. Its message
// says that they die young there, and why nothing returns the node, also
// between two deaths (seen failing: "Revision 2-... runs on 2/2 nodes"
// and nothing more).
func TestProvenCrashLoopIsSaid(t *testing.T) {
	ns := newNamespace(t)
	a, b, agentA, agentB, _, rev2 := bumpedOnTwo(t, ns, nil)
	agentA.rollOut("blog", 2)
	waitRevisions(t, ns, "blog", map[string]string{a: rev2, b: rev2})
	agentB.diesYoung("blog", "exited with status 3 1.2s after it was ready")
	ag := waitCondition(t, ns, "blog", ferryv1.ConditionRollingRestart, metav1.ConditionFalse, ferryv1.ReasonRolloutComplete,
		"Revision "+rev2+" runs on 2/2 nodes; on "+b+" a process of revision "+rev2+" died soon after it was ready "+
			"(exited with status 3 1.2s after it was ready), and none has lived "+crashWindow+", the crash window, there yet; "+
			"nothing returns the node to an older revision (revision "+rev2+" lasted on a node before: status.provenRevision)")
	loop := loopOf(rev2, ferryv1.CrashLoopRevisionProven, "revision "+rev2+" lasted on a node before: status.provenRevision", b)
	assertCrashLoop(t, ag, loop)
	looping := *meta.FindStatusCondition(ag.Status.Conditions, ferryv1.ConditionRollingRestart)
	agentB.replacementReady("blog", 2)
	assertCrashLoop(t, waitSameRollingRestart(t, ns, "blog", 4, looping), loop)
	// A process lives the crash window there: the loop is over.
	agentB.lived("blog", 2)
	waitCrashLoop(t, ns, "blog", 4, nil)
}

// TestLoneCrashLoopReadsOneWay: TestCrashLoopNothingReturnsIsSaid with one
// process (minProcesses 1): a death leaves none of the revision running,
// and the agent reports its spawns failing. RollingRestart reads the loop
// the same then as between deaths, and no RolloutHalted is recorded, nor
// a halt in status.haltedRollout (which kubectl ferry status showed as
// "Halted rollout" from each death to the replacement ready; seen
// failing: "status.haltedRollout {Revision:2-... Node:...-a Reason:exited
// with status 3 1.2s after it was ready ...}"): the
// node stays on the revision, its agent respawns it, and the rollout goes
// on by itself once a process lives the crash window (seen failing:
// "RollingRestart=True/ProvingRevision: not within 1m30s:
// RollingRestart is False/RolloutHalted: Rollout of revision 2-... halted
// at 0/1 nodes updated: it died on ...-a soon after it was ready (...);
// its agent retries it with backoff, at most a minute apart, and the
// rollout goes on once it starts there; ...").
func TestLoneCrashLoopReadsOneWay(t *testing.T) {
	ns, a, agent, rev2 := provingUnresisted(t, 1)

	looping := metav1.Condition{Status: metav1.ConditionTrue, Reason: ferryv1.ReasonProvingRevision,
		Message: "1/1 nodes updated; on " + a + " a process of revision " + rev2 + " died soon after it was ready " +
			"(exited with status 3 1.2s after it was ready), and none has lived " + crashWindow + ", the crash window, there yet; " +
			"nothing returns the node to an older revision (resistDeploymentErrors is false): " +
			"its processes are respawned, with a growing backoff from the second round of deaths, until one lives " + crashWindow + " or another revision is requested"}
	agent.diesAlone("blog", "exited with status 3 1.2s after it was ready")
	assertNoHalt(t, waitSameRollingRestart(t, ns, "blog", 0, looping))
	agent.replacementReady("blog", 1)
	assertNoHalt(t, waitSameRollingRestart(t, ns, "blog", 1, looping))
	agent.diesAlone("blog", "exited with status 3 1.2s after it was ready")
	assertNoHalt(t, waitSameRollingRestart(t, ns, "blog", 0, looping))

	// The events of those passes are recorded before the next rollout's.
	bump(t, ns, "blog", "3")
	waitEvent(t, ns, "blog", "Normal", controllers.EventRolloutStarted, "(was "+rev2)
	assertNoEvent(t, ns, "blog", controllers.EventRolloutHalted)
	// Another revision requested: nothing of revision 2 loops any more.
	waitCrashLoop(t, ns, "blog", -1, nil)
}

// TestProvenLoneCrashLoopReadsOneWay: TestProvenCrashLoopIsSaid with one
// process: a death on the last node leaves none of the proven revision
// running there. RollingRestart stays RolloutComplete, saying the loop,
// and no RolloutHalted nor a second RolloutComplete is recorded (seen
// failing: RollingRestart read RolloutHalted at each death and
// RolloutComplete at each replacement ready, the halt starting the
// rollout's events over: "2 RolloutComplete events, want 1").
func TestProvenLoneCrashLoopReadsOneWay(t *testing.T) {
	ns := newNamespace(t)
	a, b, agentA, agentB, _, rev2 := bumpedOnTwo(t, ns, onePerPool)
	agentA.rollOut("blog", 1)
	waitRevisions(t, ns, "blog", map[string]string{a: rev2, b: rev2})

	looping := metav1.Condition{Status: metav1.ConditionFalse, Reason: ferryv1.ReasonRolloutComplete,
		Message: "Revision " + rev2 + " runs on 2/2 nodes; on " + b + " a process of revision " + rev2 + " died soon after it " +
			"was ready (exited with status 3 1.2s after it was ready), and none has lived " + crashWindow + ", the crash window, there yet; " +
			"nothing returns the node to an older revision (revision " + rev2 + " lasted on a node before: " +
			"status.provenRevision): its processes are respawned, with a growing backoff from the second round of deaths, until one lives " + crashWindow + " or another revision is requested"}
	agentB.diesAlone("blog", "exited with status 3 1.2s after it was ready")
	assertNoHalt(t, waitSameRollingRestart(t, ns, "blog", 1, looping))
	agentB.replacementReady("blog", 1)
	assertNoHalt(t, waitSameRollingRestart(t, ns, "blog", 2, looping))
	agentB.diesAlone("blog", "exited with status 3 1.2s after it was ready")
	assertNoHalt(t, waitSameRollingRestart(t, ns, "blog", 1, looping))

	// The events of those passes are recorded before the next rollout's.
	bump(t, ns, "blog", "3")
	waitEvent(t, ns, "blog", "Normal", controllers.EventRolloutStarted, "(was "+rev2)
	assertNoEvent(t, ns, "blog", controllers.EventRolloutHalted)
	assertEventCountOf(t, ns, "blog", controllers.EventRolloutComplete, rev2, 1)
}

// TestDeselectedLoneCrashLoopHaltsNothing: resistance off, one process per
// node, the first wave's node crash-loops on a revision not proven, and is
// deselected right after a death (none of the revision running there).
// Nothing halted the rollout there, as nothing does where it is
// deselected between two deaths: the other node gets the revision in its
// turn, and no RolloutHalted is read or recorded (seen failing: the halt
// recorded at the death outlived the node, "RollingRestart is
// False/RolloutHalted: Rollout of revision 2-... halted at 0/1 nodes
// updated: it died on ...-a soon after it was ready (...), which is no
// longer selected", the other node held on revision 1).
func TestDeselectedLoneCrashLoopHaltsNothing(t *testing.T) {
	withCrashWindow(t)
	ns := newNamespace(t)
	a, b := newNode(t, ns, "a", true), newNode(t, ns, "b", true)
	newAppGroup(t, ns, "blog", func(ag *ferryv1.AppGroup) {
		ag.Spec.Restart.ResistDeploymentErrors = new(bool)
		onePerPool(ag)
	})
	agentA, agentB := newAgent(t, ns, a, "192.0.2.2"), newAgent(t, ns, b, "192.0.2.3")
	rev1 := target(t, ns, "blog")
	rollAll("blog", 1, agentA, agentB)
	passCrashWindow(t, agentA)
	waitLastRolledOut(t, ns, "blog", rev1)

	bump(t, ns, "blog", "2")
	rev2 := target(t, ns, "blog")
	waitRevisions(t, ns, "blog", map[string]string{a: rev2, b: rev1})
	agentA.diesAlone("blog", "exited with status 3 1.2s after it was ready")
	ag := waitCondition(t, ns, "blog", ferryv1.ConditionRollingRestart, metav1.ConditionTrue, ferryv1.ReasonWaitingForWave,
		"1/2 nodes updated; next: "+b+", after "+a+" rolled out; on "+a+" a process of revision "+rev2+" died soon after it was ready")
	assertNoHalt(t, ag)

	setNodeLabel(t, a, testLabel, "")
	agentA.drain("blog")
	ag = waitStatus(t, ns, "blog", "one node selected", func(st *ferryv1.AppGroupStatus) error {
		if st.Nodes.Total != 1 {
			return fmt.Errorf("%d nodes selected", st.Nodes.Total)
		}
		return nil
	})
	if c := meta.FindStatusCondition(ag.Status.Conditions, ferryv1.ConditionRollingRestart); c.Reason == ferryv1.ReasonRolloutHalted {
		t.Fatalf("RollingRestart is %s/%s: %s", c.Status, c.Reason, c.Message)
	}
	assertCrashLoop(t, ag, nil) // the node looping is no longer selected
	waitRevisions(t, ns, "blog", map[string]string{b: rev2})
	agentB.restarting("blog", 0, 1)
	agentB.rollOut("blog", 1)
	waitCondition(t, ns, "blog", ferryv1.ConditionRollingRestart, metav1.ConditionTrue, ferryv1.ReasonProvingRevision, provingOn(b))
	assertNoEvent(t, ns, "blog", controllers.EventRolloutHalted)
}

// TestFirstRevisionCrashLoopIsPublished: a new AppGroup's first revision,
// deployment errors resisted, has no older revision to return its node
// to: its processes dying young there are a crash loop, which
// status.crashLoop names, with why nothing returns the node ("no older
// revision runs"), at the first death and the same at the next ones, so
// that kubectl ferry restart --wait need not work it out (seen failing:
// "status.crashLoop <nil>"). A process that lives the crash window ends
// it.
func TestFirstRevisionCrashLoopIsPublished(t *testing.T) {
	withCrashWindow(t)
	ns, a, agent, rev1 := startOneNodeRollout(t, 2, nil)
	waitCondition(t, ns, "blog", ferryv1.ConditionRollingRestart, metav1.ConditionTrue, ferryv1.ReasonProvingRevision, provingOn(a))

	loop := loopOf(rev1, ferryv1.CrashLoopNoOlderRevision, "no older revision runs", a)
	agent.diesYoung("blog", "exited with status 3 1.2s after it was ready")
	ag := waitCrashLoop(t, ns, "blog", 1, loop)
	if c := meta.FindStatusCondition(ag.Status.Conditions, ferryv1.ConditionRollingRestart); !strings.Contains(c.Message,
		"nothing returns the node to an older revision (no older revision runs)") {
		t.Errorf("RollingRestart's message %q does not say the loop as status.crashLoop does", c.Message)
	}
	agent.replacementReady("blog", 2)
	waitCrashLoop(t, ns, "blog", 2, loop)
	agent.diesYoung("blog", "exited with status 3 1.2s after it was ready")
	waitCrashLoop(t, ns, "blog", 1, loop)

	agent.lived("blog", 2)
	waitCrashLoop(t, ns, "blog", 2, nil)
}

// provingUnresisted is the opening of the crash-loop tests without
// resistance: blog, deployment errors not resisted, procs processes (1:
// onePerPool; 2: the default minProcesses) on one node a; revision 2 rolled out there over the first and proving
// itself (ProvingRevision, the crash window's note), with the crash
// window on.
func provingUnresisted(t *testing.T, procs int32) (ns, a string, agent *simAgent, rev2 string) {
	t.Helper()
	withCrashWindow(t)
	ns, a, agent, rev1 := startOneNodeRollout(t, procs, func(ag *ferryv1.AppGroup) {
		ag.Spec.Restart.ResistDeploymentErrors = new(bool)
		if procs == 1 {
			onePerPool(ag)
		}
	})
	passCrashWindow(t, agent)
	waitLastRolledOut(t, ns, "blog", rev1)

	bump(t, ns, "blog", "2")
	rev2 = target(t, ns, "blog")
	waitRevisions(t, ns, "blog", map[string]string{a: rev2})
	agent.restarting("blog", procs-1, procs)
	agent.rollOut("blog", procs)
	waitCondition(t, ns, "blog", ferryv1.ConditionRollingRestart, metav1.ConditionTrue, ferryv1.ReasonProvingRevision, provingOn(a))
	return ns, a, agent, rev2
}
