package kubectlferry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	ferryv1 "github.com/ferry-dev/ferry/api/v1alpha1"
	"github.com/ferry-dev/ferry/controllers/contract"
)

func TestAssessRollout(t *testing.T) {
	target := "4-" + hash
	base := func() *ferryv1.AppGroup {
		ag := &ferryv1.AppGroup{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "app", Generation: 2,
			Annotations: map[string]string{ferryv1.RevisionAnnotation: "4"}}}
		rolledOut(ag, &ag.Status, target, 2)
		return ag
	}
	set := func(st *ferryv1.AppGroupStatus, c metav1.Condition) {
		for i := range st.Conditions {
			if st.Conditions[i].Type == c.Type {
				st.Conditions[i] = c
				return
			}
		}
		st.Conditions = append(st.Conditions, c)
	}
	resisting := func(rev string) metav1.Condition {
		return cond(ferryv1.ConditionResistingDeploymentError, metav1.ConditionTrue, ferryv1.ReasonSpawnFailed,
			"node node-1: revision "+rev+" failed to spawn (exited with status 1); the old processes keep serving")
	}
	rolling := cond(ferryv1.ConditionRollingRestart, metav1.ConditionTrue, ferryv1.ReasonRollingOut, "node 1/2 (node-1), process 1/2")
	// What the manager writes while node-2 waits for the new processes on
	// node-1 to be all ready and live the crash window, a target not
	// proven, or while they die there with none left.
	settling := cond(ferryv1.ConditionRollingRestart, metav1.ConditionTrue, ferryv1.ReasonWaitingForWave,
		"1/2 nodes updated; next: node-2, after node-1 rolled out")
	haltedYoung := cond(ferryv1.ConditionRollingRestart, metav1.ConditionFalse, ferryv1.ReasonRolloutHalted,
		"Rollout of revision "+target+" halted at 0/2 nodes updated: it died on node-1 soon after it was ready "+
			"(exited with status 3 1.2s after it was ready); its agent retries it with backoff, at most a minute apart, "+
			"and the rollout goes on once it starts there; or change the ferry.dev/revision annotation or the app to start a new rollout")
	// What it writes where no node waits and the target, proven on
	// another node, has processes that keep dying on node-2: it counts
	// the node rolled out (updated), and Ready says it is not.
	provenNotReady := func(_ *ferryv1.AppGroup, st *ferryv1.AppGroupStatus) {
		st.ProvenRevision = target
		set(st, cond(ferryv1.ConditionReady, metav1.ConditionFalse, ferryv1.ReasonProcessesNotReady,
			"1/2 nodes ready; not ready: node-2 (1 of 2 processes ready, minProcesses is 2; spawns are failing: "+
				"exited with status 3 1.2s after it was ready)"))
	}
	// once is node's pool at its first young death of the target:
	// spawnFailures 1.
	once := func(node string) ferryv1.ProcessPool { return firstDeath(diesYoung(node, target)) }
	// together is node's pool once both its processes of the target,
	// started together, died young together (an OOM kill of both): one
	// round, spawnFailures 1 beside ScalingError's two failures, both
	// replacements spawned at once.
	together := diesYoung("node-1", target)
	together.Status.SpawnFailures = 1
	together.Status.ProcessCounts, together.Status.ReadyProcesses = ferryv1.ProcessCounts{Total: 2}, "0/2"
	// failedSpawns is node's pool after failed spawns of the target, not
	// young deaths: a spike's, or a node out of memory. The manager
	// handles them (a rollout halted where the target never started).
	failedSpawns := diesYoung("node-1", target)
	// firstLoop is the status.crashLoop the manager writes of a first
	// revision looping on node, deployment errors resisted.
	firstLoop := func(node string) *ferryv1.CrashLoop {
		return &ferryv1.CrashLoop{Revision: target, Nodes: []string{node}, NodeCount: 1,
			Reason: ferryv1.CrashLoopNoOlderRevision, Message: "no older revision runs"}
	}
	failedSpawns.Status.LastSpawnError.Reason = "the app failed to load: RuntimeError: no database"
	failedSpawns.Status.SpawnFailures = 3
	uncounted := func(p ferryv1.ProcessPool) ferryv1.ProcessPool {
		p.Status.SpawnFailures = 0
		return p
	}
	lasted := diesYoung("node-1", target)
	lasted.Status.LastedRevision = target
	// Between two deaths: the replacement of the first is ready, and the
	// agent ended the scaling error (spawnWorkedLocked).
	between := func(p ferryv1.ProcessPool) ferryv1.ProcessPool {
		p.Status.ProcessCounts, p.Status.ReadyProcesses = ferryv1.ProcessCounts{Ready: 2, Updated: 2, Total: 2}, "2/2"
		p.Status.Conditions[0] = cond(ferryv1.ConditionReady, metav1.ConditionTrue, ferryv1.ReasonProcessesReady, "2 of 2 processes ready")
		p.Status.Conditions[3] = cond(ferryv1.ConditionScalingError, metav1.ConditionFalse, ferryv1.ReasonSpawnsHealthy, "No spawn is failing")
		return p
	}
	// A spawn held back by a cause outside the revision after the first
	// death: the agent's last failed spawn is that one.
	blocked := diesYoung("node-1", target)
	blocked.Status.LastSpawnError.Reason = "listen: address already in use"
	blocked.Status.Conditions[3] = cond(ferryv1.ConditionScalingError, metav1.ConditionTrue, ferryv1.ReasonSpawnBlocked,
		"spawn of revision "+target+" failed 2 time(s): listen: address already in use")
	older := diesYoung("node-1", target)
	older.Status.LastSpawnError.Revision = "3-" + hash
	var many []ferryv1.ProcessPool
	for i := range 7 {
		many = append(many, diesYoung(fmt.Sprintf("node-%d", i+1), target))
	}
	for _, tt := range []struct {
		name     string
		mutate   func(ag *ferryv1.AppGroup, st *ferryv1.AppGroupStatus)
		pools    []ferryv1.ProcessPool
		done     bool
		err      error
		progress string
		// errText is in the error.
		errText string
	}{
		{name: "rolled out", done: true, progress: "revision " + target + " runs on 2/2 nodes, 4/4 processes ready"},
		{name: "annotation changed again", done: true, err: ErrSuperseded,
			mutate: func(ag *ferryv1.AppGroup, _ *ferryv1.AppGroupStatus) {
				ag.Annotations[ferryv1.RevisionAnnotation] = "5"
			}},
		{name: "annotation removed", done: true, err: ErrSuperseded,
			mutate: func(ag *ferryv1.AppGroup, _ *ferryv1.AppGroupStatus) { ag.Annotations = nil }},
		{name: "manager not there yet", progress: "the manager has not taken up revision 4 yet (status.revision is 3-" + hash + ")",
			mutate: func(_ *ferryv1.AppGroup, st *ferryv1.AppGroupStatus) { st.Revision = "3-" + hash }},
		{name: "a revision of an annotation that starts alike", progress: "the manager has not taken up revision 4",
			mutate: func(_ *ferryv1.AppGroup, st *ferryv1.AppGroupStatus) { st.Revision = "4-x-" + hash }},
		{name: "generation not reconciled", progress: "the manager has not reconciled generation 2 yet",
			mutate: func(_ *ferryv1.AppGroup, st *ferryv1.AppGroupStatus) { st.ObservedGeneration = 1 }},
		{name: "generation seen, its pass not completed", progress: "the manager has seen generation 2 but not completed a pass over it",
			mutate: func(ag *ferryv1.AppGroup, st *ferryv1.AppGroupStatus) {
				st.ObservedGeneration = 1
				atGeneration(st, ag.Generation)
			}},
		{name: "rolling", progress: "RollingRestart=True: node 1/2 (node-1), process 1/2",
			mutate: func(_ *ferryv1.AppGroup, st *ferryv1.AppGroupStatus) { set(st, rolling) }},
		// The rollout waits for a node whose agent is silent (killed, or
		// cut off): RollingRestart alone would not say why it stands.
		{name: "rolling while an agent is silent",
			progress: "RollingRestart=True: node 1/2 (node-1), process 1/2; Ready=Unknown (AgentNotReporting): silent",
			mutate: func(_ *ferryv1.AppGroup, st *ferryv1.AppGroupStatus) {
				set(st, rolling)
				set(st, cond(ferryv1.ConditionReady, metav1.ConditionUnknown, ferryv1.ReasonAgentNotReporting, "silent"))
			}},
		// Or whose agent stops.
		{name: "rolling while an agent stops",
			progress: "RollingRestart=True: node 1/2 (node-1), process 1/2; Ready=False (ProcessesNotReady): 1/2 nodes ready; not ready: node-1 (the agent on node-1 is stopping",
			mutate: func(_ *ferryv1.AppGroup, st *ferryv1.AppGroupStatus) {
				set(st, rolling)
				set(st, cond(ferryv1.ConditionReady, metav1.ConditionFalse, ferryv1.ReasonProcessesNotReady,
					"1/2 nodes ready; not ready: node-1 (the agent on node-1 is stopping: x)"))
			}},
		{name: "rolling unknown", progress: "RollingRestart=Unknown",
			mutate: func(_ *ferryv1.AppGroup, st *ferryv1.AppGroupStatus) {
				set(st, cond(ferryv1.ConditionRollingRestart, metav1.ConditionUnknown, ferryv1.ReasonAgentNotReporting, "silent"))
			}},
		{name: "not ready", progress: "Ready=Unknown (AgentNotReporting): silent",
			mutate: func(_ *ferryv1.AppGroup, st *ferryv1.AppGroupStatus) {
				set(st, cond(ferryv1.ConditionReady, metav1.ConditionUnknown, ferryv1.ReasonAgentNotReporting, "silent"))
			}},
		{name: "no Ready condition", progress: "no Ready condition yet",
			mutate: func(_ *ferryv1.AppGroup, st *ferryv1.AppGroupStatus) { st.Conditions = st.Conditions[1:] }},
		{name: "no nodes counted yet", progress: "no node is selected",
			mutate: func(_ *ferryv1.AppGroup, st *ferryv1.AppGroupStatus) { st.Nodes = ferryv1.NodeCounts{} }},
		{name: "no node matches the selector", done: true, err: ErrNoNodes,
			mutate: func(_ *ferryv1.AppGroup, st *ferryv1.AppGroupStatus) {
				st.Nodes = ferryv1.NodeCounts{}
				set(st, cond(ferryv1.ConditionReady, metav1.ConditionFalse, ferryv1.ReasonNoNodes, "No node matches spec.nodeSelector"))
			}},
		{name: "being deleted", done: true, err: ErrDeleted,
			mutate: func(ag *ferryv1.AppGroup, _ *ferryv1.AppGroupStatus) {
				ag.DeletionTimestamp = &metav1.Time{Time: time.Now()}
			}},
		{name: "another AppGroup has the port on a node", done: true, err: ErrPortConflict,
			mutate: func(_ *ferryv1.AppGroup, st *ferryv1.AppGroupStatus) {
				set(st, cond(ferryv1.ConditionReady, metav1.ConditionFalse, ferryv1.ReasonPortConflict, "listen.port 8080 on node-2 belongs to AppGroup shop/cart"))
			}},
		{name: "halted by a node that cannot spawn the target", progress: "halted: Rollout of revision", err: ErrHalted,
			mutate: func(_ *ferryv1.AppGroup, st *ferryv1.AppGroupStatus) {
				set(st, cond(ferryv1.ConditionRollingRestart, metav1.ConditionFalse, ferryv1.ReasonRolloutHalted,
					"Rollout of revision "+target+" halted at 1/2 nodes updated: it failed to spawn on node-2 (the app failed to load)"))
			}},
		{name: "ended incomplete", done: true, err: ErrIncomplete,
			mutate: func(_ *ferryv1.AppGroup, st *ferryv1.AppGroupStatus) {
				st.Nodes.Updated = 0
				set(st, cond(ferryv1.ConditionRollingRestart, metav1.ConditionFalse, ferryv1.ReasonRolloutIncomplete,
					"Revision "+target+" runs on 0/2 nodes; some processes could not be replaced"))
			}},
		{name: "a node behind", progress: "1/2 nodes updated",
			mutate: func(_ *ferryv1.AppGroup, st *ferryv1.AppGroupStatus) { st.Nodes.Updated = 1 }},
		{name: "resisting the target, rollout halted", done: true, err: ErrResisting,
			mutate: func(_ *ferryv1.AppGroup, st *ferryv1.AppGroupStatus) {
				set(st, resisting(target))
				set(st, cond(ferryv1.ConditionRollingRestart, metav1.ConditionFalse, ferryv1.ReasonRolloutHalted, "halted"))
			}},
		{name: "resisting the target, named in the message", done: true, err: ErrResisting,
			mutate: func(_ *ferryv1.AppGroup, st *ferryv1.AppGroupStatus) { set(st, resisting(target)); set(st, rolling) }},
		// Deployment errors not resisted, the new processes die young on
		// node-1, a second time: its agent respawns them, the manager waits
		// for them to live the crash window, or halts while none is left,
		// until the next revision (seen failing: the wait went on to
		// --timeout).
		{name: "its processes die young twice, errors not resisted", done: true, err: ErrCrashLoop,
			pools: []ferryv1.ProcessPool{diesYoung("node-1", target)},
			errText: "on node-1 (exited with status 3 1.2s after it was ready)\n    Traceback (most recent call last):\n" +
				"    RuntimeError: no database\nNothing returns the node to an older revision (resistDeploymentErrors is false): " +
				"its processes are respawned, with a growing backoff",
			mutate: func(ag *ferryv1.AppGroup, st *ferryv1.AppGroupStatus) { notResisting(ag); set(st, settling) }},
		// A first death is not backed off, and a process of the revision
		// may live the window: a passing fault (seen failing: the wait ended at
		// the first, "crash loop").
		{name: "its processes die young once, errors not resisted", progress: "RollingRestart=True: 1/2 nodes updated",
			pools:  []ferryv1.ProcessPool{once("node-1")},
			mutate: func(ag *ferryv1.AppGroup, st *ferryv1.AppGroupStatus) { notResisting(ag); set(st, settling) }},
		// Processes started together that die together are one round:
		// their replacements are spawned at once and may live. (Agents
		// counted deaths before, spawnFailures 2 here: the wait ended,
		// "crash loop".)
		{name: "two processes die young in one round", progress: "RollingRestart=True: 1/2 nodes updated",
			pools:  []ferryv1.ProcessPool{together},
			mutate: func(ag *ferryv1.AppGroup, st *ferryv1.AppGroupStatus) { notResisting(ag); set(st, settling) }},
		// Failed spawns, counted: no young death, no crash loop of the wait's.
		{name: "spawns that fail, not young deaths", progress: "RollingRestart=True: 1/2 nodes updated",
			pools:  []ferryv1.ProcessPool{failedSpawns},
			mutate: func(ag *ferryv1.AppGroup, st *ferryv1.AppGroupStatus) { notResisting(ag); set(st, settling) }},
		// The pools' ScalingError is False once the replacement is ready:
		// a poll may see no more of a loop.
		{name: "between the first death and the second", progress: "RollingRestart=True: 1/2 nodes updated",
			pools:  []ferryv1.ProcessPool{between(once("node-1"))},
			mutate: func(ag *ferryv1.AppGroup, st *ferryv1.AppGroupStatus) { notResisting(ag); set(st, settling) }},
		{name: "between the second death and the third", done: true, err: ErrCrashLoop,
			pools:  []ferryv1.ProcessPool{between(diesYoung("node-1", target))},
			mutate: func(ag *ferryv1.AppGroup, st *ferryv1.AppGroupStatus) { notResisting(ag); set(st, settling) }},
		// One status says it: the wait remembers nothing across polls, so
		// one started (or a plugin restarted) after the first death, or two
		// deaths stamped in one second, end it as well (seen failing
		// against the wait that remembered deaths by their time: it went on).
		{name: "a wait started after the first death", done: true, err: ErrCrashLoop,
			pools:  []ferryv1.ProcessPool{diesYoung("node-1", target)},
			mutate: func(ag *ferryv1.AppGroup, st *ferryv1.AppGroupStatus) { notResisting(ag); set(st, settling) }},
		// A pool the manager does not keep is not the node's: one being
		// deleted beside the node's own, or a lost creation race's second
		// (a higher name), dying young is no crash loop of the node's
		// (seen failing: both ended the wait, "crash loop").
		{name: "young deaths twice on a pool being deleted", progress: "RollingRestart=True: 1/2 nodes updated",
			pools:  []ferryv1.ProcessPool{beingDeleted(diesYoung("node-1", target)), renamed(once("node-1"), "app-node-1-b")},
			mutate: func(ag *ferryv1.AppGroup, st *ferryv1.AppGroupStatus) { notResisting(ag); set(st, settling) }},
		{name: "young deaths twice on a lost race's second pool", progress: "RollingRestart=True: 1/2 nodes updated",
			pools:  []ferryv1.ProcessPool{once("node-1"), renamed(diesYoung("node-1", target), "app-node-1-b")},
			mutate: func(ag *ferryv1.AppGroup, st *ferryv1.AppGroupStatus) { notResisting(ag); set(st, settling) }},
		// An agent older than spawnFailures: the wait cannot tell a
		// second death from a first, and goes on to --timeout, never
		// ending on a first (crashLoop).
		{name: "an agent that reports no count", progress: "RollingRestart=True: 1/2 nodes updated",
			pools:  []ferryv1.ProcessPool{uncounted(diesYoung("node-1", target))},
			mutate: func(ag *ferryv1.AppGroup, st *ferryv1.AppGroupStatus) { notResisting(ag); set(st, settling) }},
		{name: "a spawn blocked after one death", progress: "RollingRestart=True: 1/2 nodes updated",
			pools:  []ferryv1.ProcessPool{blocked},
			mutate: func(ag *ferryv1.AppGroup, st *ferryv1.AppGroupStatus) { notResisting(ag); set(st, settling) }},
		{name: "young deaths of an older revision", progress: "RollingRestart=True: 1/2 nodes updated",
			pools:  []ferryv1.ProcessPool{older},
			mutate: func(ag *ferryv1.AppGroup, st *ferryv1.AppGroupStatus) { notResisting(ag); set(st, settling) }},
		{name: "its processes die young twice, halted with none left", done: true, err: ErrCrashLoop,
			pools:  []ferryv1.ProcessPool{diesYoung("node-1", target)},
			mutate: func(ag *ferryv1.AppGroup, st *ferryv1.AppGroupStatus) { notResisting(ag); set(st, haltedYoung) }},
		{name: "its processes die young once, halted with none left", err: ErrHalted, progress: "halted: Rollout of revision",
			pools:  []ferryv1.ProcessPool{once("node-1")},
			mutate: func(ag *ferryv1.AppGroup, st *ferryv1.AppGroupStatus) { notResisting(ag); set(st, haltedYoung) }},
		{name: "its processes die young twice in a Blocking restart", done: true, err: ErrCrashLoop,
			pools:   []ferryv1.ProcessPool{diesYoung("node-1", target)},
			errText: "Nothing returns the node to an older revision (a Blocking restart resists no deployment error)",
			mutate: func(ag *ferryv1.AppGroup, st *ferryv1.AppGroupStatus) {
				ag.Spec.Restart.Strategy = ferryv1.RestartBlocking
				set(st, settling)
			}},
		{name: "on many nodes", done: true, err: ErrCrashLoop, pools: many,
			errText: "on node-1, node-2, node-3, node-4, node-5 and 2 more (on node-1: exited with status 3 1.2s after it was ready)" +
				"\n    Traceback (most recent call last):\n    RuntimeError: no database\n" +
				"Nothing returns these nodes to an older revision (resistDeploymentErrors is false): their processes are respawned",
			mutate: func(ag *ferryv1.AppGroup, st *ferryv1.AppGroupStatus) { notResisting(ag); set(st, settling) }},
		// Resisted, the manager returns the node and the AppGroup resists.
		{name: "its processes die young twice, errors resisted", progress: "RollingRestart=True: 1/2 nodes updated",
			pools:  []ferryv1.ProcessPool{diesYoung("node-1", target)},
			mutate: func(_ *ferryv1.AppGroup, st *ferryv1.AppGroupStatus) { set(st, settling) }},
		// Unless there is nothing older to return it to, a new AppGroup's
		// first revision: the manager says so in status.crashLoop, which
		// the wait reads, the spec and status alone not telling (seen
		// failing: it went on, "RollingRestart=True", to --timeout).
		{name: "a first revision dies young twice, errors resisted", done: true, err: ErrCrashLoop,
			pools: []ferryv1.ProcessPool{diesYoung("node-1", target)},
			errText: "on node-1 (exited with status 3 1.2s after it was ready)\n    Traceback (most recent call last):\n" +
				"    RuntimeError: no database\nNothing returns the node to an older revision (no older revision runs): " +
				"its processes are respawned, with a growing backoff",
			mutate: func(_ *ferryv1.AppGroup, st *ferryv1.AppGroupStatus) {
				set(st, settling)
				st.CrashLoop = firstLoop("node-1")
			}},
		{name: "a first revision dies young once, errors resisted", progress: "RollingRestart=True: 1/2 nodes updated",
			pools: []ferryv1.ProcessPool{once("node-1")},
			mutate: func(_ *ferryv1.AppGroup, st *ferryv1.AppGroupStatus) {
				set(st, settling)
				st.CrashLoop = firstLoop("node-1")
			}},
		// status.crashLoop names the nodes: a pool elsewhere is not the
		// manager's loop (its node was returned, say).
		{name: "young deaths twice on a node status.crashLoop does not name", progress: "RollingRestart=True: 1/2 nodes updated",
			pools: []ferryv1.ProcessPool{diesYoung("node-1", target)},
			mutate: func(_ *ferryv1.AppGroup, st *ferryv1.AppGroupStatus) {
				set(st, settling)
				st.CrashLoop = firstLoop("node-2")
			}},
		// A loop of another revision is not the target's: the wait works
		// it out as without the field.
		{name: "status.crashLoop of another revision", progress: "RollingRestart=True: 1/2 nodes updated",
			pools: []ferryv1.ProcessPool{diesYoung("node-1", target)},
			mutate: func(_ *ferryv1.AppGroup, st *ferryv1.AppGroupStatus) {
				set(st, settling)
				st.CrashLoop = firstLoop("node-1")
				st.CrashLoop.Revision = "3-" + hash
			}},
		// Unless the target is proven: it lasted on another node, and a
		// node that cannot keep it is not returned from it (controllers'
		// returnsFromTarget); its agent respawns them with backoff (seen
		// failing: the wait went on to --timeout).
		{name: "a proven target dies young twice, the rollout complete", done: true, err: ErrCrashLoop,
			pools: []ferryv1.ProcessPool{diesYoung("node-2", target)}, mutate: provenNotReady,
			errText: "on node-2 (exited with status 3 1.2s after it was ready)\n    Traceback (most recent call last):\n" +
				"    RuntimeError: no database\nNothing returns the node to an older revision (revision " + target +
				" lasted on a node before: status.provenRevision): its processes are respawned"},
		{name: "a proven target dies young twice, a node waits", done: true, err: ErrCrashLoop,
			pools:  []ferryv1.ProcessPool{diesYoung("node-1", target)},
			mutate: func(ag *ferryv1.AppGroup, st *ferryv1.AppGroupStatus) { provenNotReady(ag, st); set(st, settling) }},
		{name: "a proven target dies young once", progress: "Ready=False (ProcessesNotReady): 1/2 nodes ready",
			pools: []ferryv1.ProcessPool{once("node-2")}, mutate: provenNotReady},
		{name: "a young death where the revision lasted", progress: "RollingRestart=True: 1/2 nodes updated",
			pools:  []ferryv1.ProcessPool{lasted},
			mutate: func(ag *ferryv1.AppGroup, st *ferryv1.AppGroupStatus) { notResisting(ag); set(st, settling) }},
		// A node that resisted the target (status.haltedRollout) is
		// returned even once it is proven (returnsFromTarget): without
		// status.crashLoop the wait reads that node by node, as the
		// manager does (seen failing: it ended, "crash loop ... revision R
		// lasted on a node before", on a node the manager returns).
		{name: "a proven target dies young twice where it was resisted", progress: "RollingRestart=True: 1/2 nodes updated",
			pools: []ferryv1.ProcessPool{diesYoung("node-1", target)},
			mutate: func(ag *ferryv1.AppGroup, st *ferryv1.AppGroupStatus) {
				provenNotReady(ag, st)
				set(st, settling)
				st.HaltedRollout = &ferryv1.HaltedRollout{Revision: target, Node: "node-1", Resisted: true}
			}},
		{name: "a proven target dies young twice, resisted on another node", done: true, err: ErrCrashLoop,
			pools: []ferryv1.ProcessPool{diesYoung("node-1", target)},
			mutate: func(ag *ferryv1.AppGroup, st *ferryv1.AppGroupStatus) {
				provenNotReady(ag, st)
				set(st, settling)
				st.HaltedRollout = &ferryv1.HaltedRollout{Revision: target, Node: "node-2", Resisted: true}
			}},
		// status.crashLoop names at most 64 nodes; nodeCount says more
		// loop: a node past the cut takes the loop's words (seen failing:
		// the wait went on, the only node dying young twice not named).
		{name: "young deaths twice on a node past status.crashLoop's cut", done: true, err: ErrCrashLoop,
			pools:   []ferryv1.ProcessPool{diesYoung("node-7", target)},
			errText: "on node-7 (exited",
			mutate: func(_ *ferryv1.AppGroup, st *ferryv1.AppGroupStatus) {
				set(st, settling)
				st.CrashLoop = firstLoop("node-1")
				st.CrashLoop.NodeCount = 70
			}},
		{name: "past the cut, the node that resisted the target", progress: "RollingRestart=True: 1/2 nodes updated",
			pools: []ferryv1.ProcessPool{diesYoung("node-7", target)},
			mutate: func(_ *ferryv1.AppGroup, st *ferryv1.AppGroupStatus) {
				set(st, settling)
				st.CrashLoop = firstLoop("node-1")
				st.CrashLoop.NodeCount = 70
				st.HaltedRollout = &ferryv1.HaltedRollout{Revision: target, Node: "node-7", Resisted: true}
			}},
		{name: "still resisting an earlier revision", progress: "RollingRestart=True",
			mutate: func(_ *ferryv1.AppGroup, st *ferryv1.AppGroupStatus) {
				set(st, resisting("14-"+hash))
				set(st, rolling)
			}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ag := base()
			if tt.mutate != nil {
				tt.mutate(ag, &ag.Status)
			}
			r := assessRollout(ag, tt.pools, "4")
			if r.Done != tt.done || !errors.Is(r.Err, tt.err) || (tt.err == nil) != (r.Err == nil) {
				t.Fatalf("got %+v, want done %v, error %v", r, tt.done, tt.err)
			}
			if tt.errText != "" && !strings.Contains(r.Err.Error(), tt.errText) {
				t.Errorf("error %q, want it to contain %q", r.Err, tt.errText)
			}
			if !strings.Contains(r.Progress, tt.progress) {
				t.Errorf("progress %q, want it to contain %q", r.Progress, tt.progress)
			}
		})
	}
}

// diesYoung is the pool on node of a revision whose processes die soon
// after they are ready, as the agent reports it (agent/pool's Status and
// Conditions) at the second death in a row: one of two respawned,
// ScalingError True, the last failed spawn the revision's, spawnFailures
// 2, no process of it lived the crash window.
func diesYoung(node, revision string) ferryv1.ProcessPool {
	return ferryv1.ProcessPool{
		ObjectMeta: metav1.ObjectMeta{Name: "app-" + node},
		Spec:       ferryv1.ProcessPoolSpec{NodeName: node, AppGroup: "app", Revision: revision, Template: template()},
		Status:     diesYoungStatus(revision),
	}
}

// beingDeleted is p with a deletion timestamp.
func beingDeleted(p ferryv1.ProcessPool) ferryv1.ProcessPool {
	p.DeletionTimestamp = ago(time.Second)
	return p
}

// renamed is p named name.
func renamed(p ferryv1.ProcessPool, name string) ferryv1.ProcessPool {
	p.Name = name
	return p
}

// firstDeath is p as the agent reports it at the first young death of
// a run: spawnFailures 1.
func firstDeath(p ferryv1.ProcessPool) ferryv1.ProcessPool {
	p.Status = firstDeathStatus(p.Status)
	return p
}

func firstDeathStatus(st ferryv1.ProcessPoolStatus) ferryv1.ProcessPoolStatus {
	st.SpawnFailures = 1
	st.Conditions = slices.Clone(st.Conditions)
	st.Conditions[3].Message = strings.Replace(st.Conditions[3].Message, "failed 2 time(s)", "failed 1 time(s)", 1)
	return st
}

// poolDiesYoung reports p's process of target dead soon after it was
// ready, at ago(at): the first death in a row (spawnFailures 1), or,
// again, the second (2).
func poolDiesYoung(t *testing.T, p *ferryv1.ProcessPool, target string, at time.Duration, again bool) {
	t.Helper()
	st := diesYoungStatus(target)
	if !again {
		st = firstDeathStatus(st)
	}
	st.LastSpawnError.Time = *ago(at)
	setPoolStatus(t, p, st)
}

// diedYoungRollup is the AppGroup status the manager writes of target
// rolled out on nodes nodes, one process of it dead young on node (of
// the last ones): 1 of its 2 processes ready, and Ready saying so. Each
// test sets its own RollingRestart and crash loop after it.
func diedYoungRollup(ag *ferryv1.AppGroup, st *ferryv1.AppGroupStatus, target, node string, nodes int32) {
	rolledOut(ag, st, target, nodes)
	st.Processes = ferryv1.ProcessCounts{Ready: 2*nodes - 1, Updated: 2 * nodes, Total: 2 * nodes}
	st.Nodes.Ready = nodes - 1
	st.ReadyProcesses, st.ReadyNodes = fmt.Sprintf("%d/%d", 2*nodes-1, 2*nodes), fmt.Sprintf("%d/%d", nodes-1, nodes)
	st.Conditions[0] = cond(ferryv1.ConditionReady, metav1.ConditionFalse, ferryv1.ReasonProcessesNotReady,
		fmt.Sprintf("%d/%d nodes ready; not ready: %s (1 of 2 processes ready, minProcesses is 2; spawns are failing: "+
			"exited with status 3 1.2s after it was ready)", nodes-1, nodes, node))
}

func diesYoungStatus(revision string) ferryv1.ProcessPoolStatus {
	reason := "exited with status 3 1.2s after it was ready"
	return ferryv1.ProcessPoolStatus{
		ObservedRevision: revision,
		HeartbeatTime:    ago(time.Second),
		ProcessCounts:    ferryv1.ProcessCounts{Ready: 1, Updated: 2, Total: 2},
		ReadyProcesses:   "1/2",
		LastSpawnError: &ferryv1.SpawnError{Revision: revision, Reason: reason,
			Output: "Traceback (most recent call last):\nRuntimeError: no database", Time: *ago(time.Second)},
		SpawnFailures: 2,
		Conditions: []metav1.Condition{
			cond(ferryv1.ConditionReady, metav1.ConditionFalse, ferryv1.ReasonProcessesNotReady,
				"1 of 2 processes ready, minProcesses is 2; spawns are failing: "+reason),
			cond(ferryv1.ConditionRollingRestart, metav1.ConditionFalse, ferryv1.ReasonRolloutComplete,
				"2 of 2 processes on revision "+revision),
			cond(ferryv1.ConditionResistingDeploymentError, metav1.ConditionFalse, ferryv1.ReasonNoDeploymentError,
				"No deployment error is being resisted"),
			cond(ferryv1.ConditionScalingError, metav1.ConditionTrue, ferryv1.ReasonSpawnBackoff,
				"spawn of revision "+revision+" failed 2 time(s): "+reason+"; next attempt at 09:00:00 UTC; "+contract.SpawnsRetried),
		},
	}
}

// waiter is a `restart --wait` running in the background. Every
// assessment it makes is handed to the test, which so knows, without
// sleeping, that the waiter has seen a status it wrote. Its clock (the
// halt grace's and --timeout's) stands still until the test moves it.
type waiter struct {
	seen  chan assessed
	done  chan result
	clock *fakeClock
}

// fakeClock is an App.clock that moves only when a test moves it on.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{now: testNow} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// advance moves the clock on by d: the waiter's polls from the next one
// on read the later time.
func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

type assessed struct {
	resourceVersion string
	pools           []ferryv1.ProcessPool
	rollout         rollout
}

func startWait(t *testing.T, ns, name string, args ...string) *waiter {
	t.Helper()
	return startWaitGrace(t, 3*time.Second, ns, name, args...)
}

// listEveryPoll is an App.poolListEvery that lists the pools at every
// poll: a test that writes them waits for the next poll to read them, not
// for the wait's real-clock interval (poolListInterval).
const listEveryPoll = time.Nanosecond

// startWaitGrace is startWait with App.HaltGrace grace. Its wait lists
// the pools at every poll (listEveryPoll).
func startWaitGrace(t *testing.T, grace time.Duration, ns, name string, args ...string) *waiter {
	t.Helper()
	w := &waiter{seen: make(chan assessed), done: make(chan result, 1), clock: newFakeClock()}
	stop := make(chan struct{})
	t.Cleanup(func() { close(stop) })
	a := &App{HaltGrace: grace, clock: w.clock.Now, poolListEvery: listEveryPoll, observed: func(ag *ferryv1.AppGroup, pools []ferryv1.ProcessPool, r rollout) {
		select {
		case w.seen <- assessed{ag.ResourceVersion, pools, r}:
		case <-stop:
		}
	}}
	go func() { w.done <- runApp(t, a, append([]string{"restart", name, "-n", ns, "--wait"}, args...)...) }()
	return w
}

// waitBound is how long, in all, each of a waiter's helpers below waits
// for what it waits for. In all, not for each assessment: the waiter
// assesses at every poll, so a bound on each alone never ended a wait
// that kept assessing without reaching what the test waited for, until
// runApp's own context ended the wait and the failure read as a wait
// that returned early.
const waitBound = time.Minute

// next is the waiter's next assessment; the waiter must still be waiting.
func (w *waiter) next(t *testing.T) assessed {
	t.Helper()
	return w.until(t, "anything", func(assessed) bool { return true })
}

// until is the first of the waiter's assessments that match takes, within
// waitBound in all; the waiter must still be waiting. what says what the
// test waits for, in its failure.
func (w *waiter) until(t *testing.T, what string, match func(assessed) bool) assessed {
	t.Helper()
	a, r, done := w.untilOrDone(t, what, match)
	if done {
		t.Fatalf("restart --wait returned early, waiting to assess %s: exit %d, stdout %q, stderr %q",
			what, r.code, r.out, r.err)
	}
	return a
}

// untilOrDone is until, but the waiter may return first: then it is its
// result, and done.
func (w *waiter) untilOrDone(t *testing.T, what string, match func(assessed) bool) (assessed, result, bool) {
	t.Helper()
	timeout := time.After(waitBound)
	var others int
	var last assessed
	for {
		select {
		case a := <-w.seen:
			if match(a) {
				return a, result{}, false
			}
			others, last = others+1, a
		case r := <-w.done:
			return assessed{}, r, true
		case <-timeout:
			if others == 0 {
				t.Fatalf("restart --wait assessed nothing for %s, waiting to assess %s", waitBound, what)
			}
			t.Fatalf("restart --wait did not assess %s within %s: %d assessments of other statuses, the last "+
				"of resourceVersion %s, %d pools: %+v", what, waitBound, others, last.resourceVersion, len(last.pools),
				last.rollout)
		}
	}
}

// at waits until the waiter has assessed the AppGroup as written at
// resourceVersion rv, and checks that it kept waiting.
func (w *waiter) at(t *testing.T, rv string) rollout {
	t.Helper()
	a := w.until(t, "the AppGroup at resourceVersion "+rv, func(a assessed) bool { return a.resourceVersion == rv })
	if a.rollout.Done {
		t.Fatalf("the wait ended at a status where it should go on: %+v", a.rollout)
	}
	return a.rollout
}

// sawPool waits until the waiter has assessed pools of which one is as
// seen says, and checks that it kept waiting.
func (w *waiter) sawPool(t *testing.T, seen func(ferryv1.ProcessPool) bool) {
	t.Helper()
	a := w.until(t, "the pool the test wrote", func(a assessed) bool { return slices.ContainsFunc(a.pools, seen) })
	if a.rollout.Done {
		t.Fatalf("the wait ended at pools where it should go on: %+v", a.rollout)
	}
}

// atOrDone waits until the waiter has assessed the AppGroup as written at
// resourceVersion rv and goes on, or has returned, with its result, within
// waitBound in all (untilOrDone).
func (w *waiter) atOrDone(t *testing.T, rv string) (result, bool) {
	t.Helper()
	_, r, done := w.untilOrDone(t, "the AppGroup at resourceVersion "+rv+" as going on",
		func(a assessed) bool { return a.resourceVersion == rv && !a.rollout.Done })
	return r, done
}

// diesTwice has died report a first young death (10s ago), waits until
// the wait saw it, has died report a second (1s ago), and returns the
// wait's result, which must be exit 1.
func (w *waiter) diesTwice(t *testing.T, died func(at time.Duration, again bool)) result {
	t.Helper()
	died(10*time.Second, false)
	w.sawPool(t, func(p ferryv1.ProcessPool) bool {
		return p.Status.LastSpawnError != nil && p.Status.LastSpawnError.Time.Equal(ago(10*time.Second))
	})
	died(time.Second, true)
	r := w.result(t)
	if r.code != ExitFailure {
		t.Fatalf("exit %d, stdout %q, stderr %q; want 1", r.code, r.out, r.err)
	}
	return r
}

// result is how the wait ended, within waitBound of asking, whatever it
// assessed before.
func (w *waiter) result(t *testing.T) result {
	t.Helper()
	return w.resultWithin(t, -1)
}

// resultWithin is result, where the wait must end within assessments more
// assessments (any number when negative): a wait that ends only by
// runApp's own context polls on past them.
func (w *waiter) resultWithin(t *testing.T, assessments int) result {
	t.Helper()
	timeout := time.After(waitBound)
	for drained := 0; ; {
		select {
		case a := <-w.seen:
			if drained++; assessments >= 0 && drained > assessments {
				t.Fatalf("restart --wait did not return within %d assessments: assessed %+v", assessments, a.rollout)
			}
		case r := <-w.done:
			return r
		case <-timeout:
			t.Fatalf("restart --wait did not return within %s", waitBound)
		}
	}
}

func TestRestartWaitSucceeds(t *testing.T) {
	ns := newNamespace(t)
	newAppGroup(t, ns, "app", "3")
	setAppGroupStatus(t, ns, "app", func(ag *ferryv1.AppGroup, st *ferryv1.AppGroupStatus) { rolledOut(ag, st, "3-"+hash, 2) })
	target := "4-" + hash

	w := startWait(t, ns, "app")
	first := w.next(t)
	if first.rollout.Done || !strings.Contains(first.rollout.Progress, "the manager has not taken up revision 4 yet") {
		t.Fatalf("first assessment: %+v", first.rollout)
	}
	if got := getAppGroup(t, ns, "app").Annotations[ferryv1.RevisionAnnotation]; got != "4" {
		t.Fatalf("annotation %q, want 4", got)
	}
	// The manager plays out the rollout; until its last status the wait
	// goes on.
	steps := []struct {
		name     string
		mutate   func(ag *ferryv1.AppGroup, st *ferryv1.AppGroupStatus)
		progress string
	}{
		{"rolling", func(ag *ferryv1.AppGroup, st *ferryv1.AppGroupStatus) {
			rolledOut(ag, st, target, 2)
			st.Nodes.Updated = 0
			st.Conditions[1] = cond(ferryv1.ConditionRollingRestart, metav1.ConditionTrue, ferryv1.ReasonRollingOut,
				"node 1/2 (node-1), process 1/2")
		}, "RollingRestart=True: node 1/2 (node-1), process 1/2"},
		{"generation behind", func(ag *ferryv1.AppGroup, st *ferryv1.AppGroupStatus) {
			rolledOut(ag, st, target, 2)
			st.ObservedGeneration = ag.Generation - 1
		}, "has not reconciled generation"},
		{"an agent silent", func(ag *ferryv1.AppGroup, st *ferryv1.AppGroupStatus) {
			rolledOut(ag, st, target, 2)
			st.Conditions[0] = cond(ferryv1.ConditionReady, metav1.ConditionUnknown, ferryv1.ReasonAgentNotReporting, "silent")
		}, "Ready=Unknown"},
		{"a node not updated", func(ag *ferryv1.AppGroup, st *ferryv1.AppGroupStatus) {
			rolledOut(ag, st, target, 2)
			st.Nodes.Updated = 1
		}, "1/2 nodes updated"},
	}
	for _, s := range steps {
		ag := setAppGroupStatus(t, ns, "app", s.mutate)
		if r := w.at(t, ag.ResourceVersion); !strings.Contains(r.Progress, s.progress) {
			t.Errorf("%s: progress %q, want %q", s.name, r.Progress, s.progress)
		}
	}
	setAppGroupStatus(t, ns, "app", func(ag *ferryv1.AppGroup, st *ferryv1.AppGroupStatus) { rolledOut(ag, st, target, 2) })
	r := w.result(t)
	if r.code != ExitOK {
		t.Fatalf("exit %d, stdout %q, stderr %q", r.code, r.out, r.err)
	}
	assertContains(t, r.out,
		"Restarting "+ns+"/app to revision 4 (was 3)\n",
		"Waiting: RollingRestart=True: node 1/2 (node-1), process 1/2\n",
		"Rolled out "+ns+"/app: revision "+target+" runs on 2/2 nodes, 4/4 processes ready, in ",
	)
}

func TestRestartWaitFailsWhenResisting(t *testing.T) {
	ns := newNamespace(t)
	newAppGroup(t, ns, "app", "5")
	old, target := "5-"+hash, "6-"+hash
	resistingMsg := func(rev string) string {
		return "node node-1: revision " + rev + " failed to spawn (exited with status 1); the old processes keep serving. " +
			"Output: ModuleNotFoundError: No module named 'nothing_here'"
	}
	// Revision 5 is resisted: the user fixes the app and rolls again.
	setAppGroupStatus(t, ns, "app", func(ag *ferryv1.AppGroup, st *ferryv1.AppGroupStatus) {
		rolledOut(ag, st, old, 2)
		st.Conditions[1] = cond(ferryv1.ConditionRollingRestart, metav1.ConditionFalse, ferryv1.ReasonRolloutHalted, "halted")
		st.Conditions[2] = cond(ferryv1.ConditionResistingDeploymentError, metav1.ConditionTrue, ferryv1.ReasonSpawnFailed, resistingMsg(old))
	})
	w := startWait(t, ns, "app")
	w.next(t)

	// The manager takes up 6 while node-1 still reports resisting 5: that
	// is not a failure of 6.
	ag := setAppGroupStatus(t, ns, "app", func(ag *ferryv1.AppGroup, st *ferryv1.AppGroupStatus) {
		st.Revision = target
		st.Conditions[1] = cond(ferryv1.ConditionRollingRestart, metav1.ConditionTrue, ferryv1.ReasonRollingOut,
			"node 1/2 (node-1), waiting for its agent")
	})
	w.at(t, ag.ResourceVersion)

	// Revision 6 fails too.
	setAppGroupStatus(t, ns, "app", func(ag *ferryv1.AppGroup, st *ferryv1.AppGroupStatus) {
		st.Conditions[1] = cond(ferryv1.ConditionRollingRestart, metav1.ConditionFalse, ferryv1.ReasonRolloutHalted,
			"Rollout of revision "+target+" halted at 0/2 nodes updated: node-1 resisting a deployment error")
		st.Conditions[2] = cond(ferryv1.ConditionResistingDeploymentError, metav1.ConditionTrue, ferryv1.ReasonSpawnFailed,
			resistingMsg(target))
	})
	r := w.result(t)
	if r.code != ExitFailure {
		t.Fatalf("exit %d, stdout %q, stderr %q; want 1", r.code, r.out, r.err)
	}
	assertContains(t, r.err,
		"error: resisting deployment error: AppGroup "+ns+"/app resists revision "+target+": "+resistingMsg(target),
		"Fix the app, then roll again: kubectl ferry restart app -n "+ns,
	)
}

// TestRestartWaitEndsWhenTheRolloutEndsIncomplete: with
// resistDeploymentErrors off, a rollout that reached every node but left
// processes on the older revision (RolloutIncomplete) ends the wait with
// exit 1 and the manager's reason. Before, the wait printed "0/2 nodes
// updated" and went on until --timeout (30 minutes by default).
func TestRestartWaitEndsWhenTheRolloutEndsIncomplete(t *testing.T) {
	ns := newNamespace(t)
	newAppGroup(t, ns, "app", "5")
	target := "6-" + hash
	setAppGroupStatus(t, ns, "app", func(ag *ferryv1.AppGroup, st *ferryv1.AppGroupStatus) { rolledOut(ag, st, "5-"+hash, 2) })
	w := startWait(t, ns, "app")
	w.next(t)
	incomplete := "Revision " + target + " runs on 0/2 nodes; some processes could not be replaced and serve an older revision. " +
		"On node-1, revision " + target + " failed to spawn (exited with status 1)"
	setAppGroupStatus(t, ns, "app", func(ag *ferryv1.AppGroup, st *ferryv1.AppGroupStatus) {
		st.Revision = target
		st.Nodes.Updated = 0
		st.Conditions[1] = cond(ferryv1.ConditionRollingRestart, metav1.ConditionFalse, ferryv1.ReasonRolloutIncomplete, incomplete)
	})
	r := w.result(t)
	if r.code != ExitFailure {
		t.Fatalf("exit %d, stdout %q, stderr %q; want 1", r.code, r.out, r.err)
	}
	assertContains(t, r.err,
		"error: rollout incomplete: AppGroup "+ns+"/app: "+incomplete,
		"The processes not replaced keep serving the older revision. Fix the app, then roll again: kubectl ferry restart app -n "+ns,
	)
}

// TestRestartWaitEndsWhenProcessesDieYoung: with resistDeploymentErrors
// false, a revision whose processes die soon after they are ready on its
// one node is respawned there with backoff, and the manager keeps
// RollingRestart True (ProvingRevision), waiting for them to live the
// crash window (the statuses below are those it wrote in a controllers
// test given such a pool). The wait reads the pools: a first death is
// not backed off, and the wait goes on (seen failing: it ended there,
// "crash loop", where the replacement may live the window and the rollout
// complete); at the second, it ends with exit 1, naming the revision, the
// node and the crash. Before either, it went on until --timeout.
func TestRestartWaitEndsWhenProcessesDieYoung(t *testing.T) {
	ns := newNamespace(t)
	ag := newAppGroup(t, ns, "app", "5", notResisting)
	target := "6-" + hash
	setAppGroupStatus(t, ns, "app", func(ag *ferryv1.AppGroup, st *ferryv1.AppGroupStatus) { rolledOut(ag, st, "5-"+hash, 1) })
	w := startWait(t, ns, "app")
	w.next(t)

	// Its new processes are ready, and must live the window first.
	p := newPool(t, ag, "node-1", target)
	healthy := diesYoungStatus(target)
	healthy.ProcessCounts, healthy.ReadyProcesses, healthy.LastSpawnError = ferryv1.ProcessCounts{Ready: 2, Updated: 2, Total: 2}, "2/2", nil
	healthy.Conditions[0] = cond(ferryv1.ConditionReady, metav1.ConditionTrue, ferryv1.ReasonProcessesReady, "2 of 2 processes ready (minProcesses 2)")
	healthy.Conditions[3] = cond(ferryv1.ConditionScalingError, metav1.ConditionFalse, ferryv1.ReasonSpawnsHealthy, "No spawn is failing")
	setPoolStatus(t, p, healthy)
	proving := func(ag *ferryv1.AppGroup, st *ferryv1.AppGroupStatus) {
		rolledOut(ag, st, target, 1)
		st.Conditions[1] = cond(ferryv1.ConditionRollingRestart, metav1.ConditionTrue, ferryv1.ReasonProvingRevision,
			"1/1 nodes updated (new processes on node-1 must first live 10s, the crash window)")
	}
	settling := setAppGroupStatus(t, ns, "app", proving)
	w.at(t, settling.ResourceVersion)

	// One dies in it, and is replaced. The agent counts the deaths in a
	// row (spawnFailures): 1 at the first, 2 at the second.
	died := func(at time.Duration, again bool) {
		poolDiesYoung(t, p, target, at, again)
		setAppGroupStatus(t, ns, "app", func(ag *ferryv1.AppGroup, st *ferryv1.AppGroupStatus) {
			diedYoungRollup(ag, st, target, "node-1", 1)
			st.Conditions[1] = cond(ferryv1.ConditionRollingRestart, metav1.ConditionTrue, ferryv1.ReasonProvingRevision,
				"1/1 nodes updated (new processes on node-1 must first all be ready and live 10s, the crash window)")
		})
	}
	died(10*time.Second, false)
	w.sawPool(t, func(p ferryv1.ProcessPool) bool {
		return p.Status.LastSpawnError != nil && p.Status.LastSpawnError.Time.Equal(ago(10*time.Second))
	})
	// The replacement is ready: the agent ends the scaling error, and
	// keeps the count.
	between := firstDeathStatus(diesYoungStatus(target))
	between.LastSpawnError.Time = *ago(10 * time.Second)
	between.ProcessCounts, between.ReadyProcesses, between.Conditions[0], between.Conditions[3] = healthy.ProcessCounts,
		healthy.ReadyProcesses, healthy.Conditions[0], healthy.Conditions[3]
	setPoolStatus(t, p, between)
	setAppGroupStatus(t, ns, "app", proving)
	w.sawPool(t, func(p ferryv1.ProcessPool) bool {
		return p.Status.LastSpawnError != nil && !meta.IsStatusConditionTrue(p.Status.Conditions, ferryv1.ConditionScalingError)
	})

	// It dies too.
	died(time.Second, true)
	r := w.result(t)
	if r.code != ExitFailure {
		t.Fatalf("exit %d, stdout %q, stderr %q; want 1", r.code, r.out, r.err)
	}
	assertContains(t, r.err,
		"error: crash loop: AppGroup "+ns+"/app: processes of revision "+target+" die soon after they are ready on node-1 "+
			"(exited with status 3 1.2s after it was ready)\n"+
			"    Traceback (most recent call last):\n    RuntimeError: no database\n",
		"\nNothing returns the node to an older revision (resistDeploymentErrors is false): its processes are respawned, with a growing backoff",
		"Fix the app, then roll again: kubectl ferry restart app -n "+ns,
	)
}

// TestRestartWaitEndsWhenAProvenRevisionDiesYoung: deployment errors
// resisted, a revision that lasted on node-1 (status.provenRevision) and
// whose processes then die young on node-2 is not returned from there
// (controllers' returnsFromTarget): node-2's agent respawns them with
// backoff, and the manager counts the rollout complete while Ready says
// node-2 is not ready. The wait reads the pools then too, and ends with
// exit 1 at the second death. Before, it read none (errors resisted) and
// went on until --timeout (seen failing: "timed out waiting for ... the
// rollout was at: Ready=False (ProcessesNotReady)").
func TestRestartWaitEndsWhenAProvenRevisionDiesYoung(t *testing.T) {
	ns := newNamespace(t)
	ag := newAppGroup(t, ns, "app", "5")
	target := "6-" + hash
	setAppGroupStatus(t, ns, "app", func(ag *ferryv1.AppGroup, st *ferryv1.AppGroupStatus) { rolledOut(ag, st, "5-"+hash, 2) })
	w := startWait(t, ns, "app")
	w.next(t)

	p := newPool(t, ag, "node-2", target)
	died := func(at time.Duration, again bool) {
		poolDiesYoung(t, p, target, at, again)
		setAppGroupStatus(t, ns, "app", func(ag *ferryv1.AppGroup, st *ferryv1.AppGroupStatus) {
			diedYoungRollup(ag, st, target, "node-2", 2)
			st.ProvenRevision = target
		})
	}
	r := w.diesTwice(t, died)
	assertContains(t, r.err,
		"error: crash loop: AppGroup "+ns+"/app: processes of revision "+target+" die soon after they are ready on node-2 ",
		"\nNothing returns the node to an older revision (revision "+target+" lasted on a node before: status.provenRevision)",
		"Fix the app, then roll again: kubectl ferry restart app -n "+ns,
	)
}

// TestRestartWaitEndsWhenAFirstRevisionDiesYoung: deployment errors
// resisted, a revision with nothing older to return its node to (a new
// AppGroup's first; here the status the manager writes of one) whose
// processes die young is respawned there with backoff, and the manager
// says so in status.crashLoop ("no older revision runs"). The wait reads
// it and the pools, goes on at the first death, and ends with exit 1 at
// the second (seen failing with status.crashLoop not read, where the wait
// reads no pools and so never sees the first death: "restart --wait
// returned early: exit 1, ... timed out waiting for ... the rollout was
// at: RollingRestart=True: 1/1 nodes updated; on node-1 ...", after 2
// minutes, at runApp's own context: --timeout stands on the waiter's
// clock, which this test does not move).
func TestRestartWaitEndsWhenAFirstRevisionDiesYoung(t *testing.T) {
	ns := newNamespace(t)
	ag := newAppGroup(t, ns, "app", "5")
	target := "6-" + hash
	w := startWait(t, ns, "app")
	w.next(t)

	p := newPool(t, ag, "node-1", target)
	died := func(at time.Duration, again bool) {
		poolDiesYoung(t, p, target, at, again)
		setAppGroupStatus(t, ns, "app", func(ag *ferryv1.AppGroup, st *ferryv1.AppGroupStatus) {
			diedYoungRollup(ag, st, target, "node-1", 1)
			st.Conditions[1] = cond(ferryv1.ConditionRollingRestart, metav1.ConditionTrue, ferryv1.ReasonProvingRevision,
				"1/1 nodes updated; on node-1 a process of revision "+target+" died soon after it was ready "+
					"(exited with status 3 1.2s after it was ready), and none has lived 10s, the crash window, there yet; "+
					"nothing returns the node to an older revision (no older revision runs): its processes are "+contract.CrashLoopRespawned)
			st.CrashLoop = &ferryv1.CrashLoop{Revision: target, Nodes: []string{"node-1"}, NodeCount: 1,
				Reason: ferryv1.CrashLoopNoOlderRevision, Message: "no older revision runs"}
		})
	}
	r := w.diesTwice(t, died)
	assertContains(t, r.err,
		"error: crash loop: AppGroup "+ns+"/app: processes of revision "+target+" die soon after they are ready on node-1 "+
			"(exited with status 3 1.2s after it was ready)\n"+
			"    Traceback (most recent call last):\n    RuntimeError: no database\n",
		"\nNothing returns the node to an older revision (no older revision runs): its processes are respawned, with a growing backoff",
		"Fix the app, then roll again: kubectl ferry restart app -n "+ns,
	)
}

// TestRestartWaitHaltedByANodeThatCannotSpawn: a rollout halted by a node
// that cannot spawn the revision is followed while the halt may lift (a
// retried spawn that works); one that lifts rolls out, one that lasts past
// HaltGrace (an hour here, on the waiter's clock, moved on past it once
// the waiter has read the halt) ends the wait with exit 1 and the
// manager's reason.
func TestRestartWaitHaltedByANodeThatCannotSpawn(t *testing.T) {
	for _, lifts := range []bool{true, false} {
		ns := newNamespace(t)
		newAppGroup(t, ns, "app", "5")
		target := "6-" + hash
		halted := "Rollout of revision " + target + " halted at 1/2 nodes updated: it failed to spawn on node-2 " +
			"(the app failed to load), with no older process to keep serving"
		setAppGroupStatus(t, ns, "app", func(ag *ferryv1.AppGroup, st *ferryv1.AppGroupStatus) { rolledOut(ag, st, "5-"+hash, 2) })
		const grace = time.Hour
		w := startWaitGrace(t, grace, ns, "app", "--timeout", "24h")
		w.next(t)
		ag := setAppGroupStatus(t, ns, "app", func(ag *ferryv1.AppGroup, st *ferryv1.AppGroupStatus) {
			st.Revision = target
			st.Conditions[1] = cond(ferryv1.ConditionRollingRestart, metav1.ConditionFalse, ferryv1.ReasonRolloutHalted, halted)
		})
		if r := w.at(t, ag.ResourceVersion); !r.Halted {
			t.Fatalf("assessed %+v, want halted", r)
		}
		if lifts {
			setAppGroupStatus(t, ns, "app", func(ag *ferryv1.AppGroup, st *ferryv1.AppGroupStatus) { rolledOut(ag, st, target, 2) })
		} else {
			w.clock.advance(grace)
		}
		r := w.result(t)
		switch {
		case lifts && r.code != 0:
			t.Errorf("a halt that lifted: exit %d, stderr %q; want 0", r.code, r.err)
		case !lifts && (r.code != ExitFailure || !strings.Contains(r.err, "rollout halted: AppGroup "+ns+"/app: "+halted) ||
			!strings.Contains(r.err, "(for 1h0m0s)")):
			t.Errorf("a halt that lasted: exit %d, stderr %q; want 1 with the manager's reason", r.code, r.err)
		}
	}
}

// TestHaltClock: the halt grace runs from the first poll that reads the
// rollout halted for as long as the halted polls' counts show no progress,
// through polls that read it not halted (a proven target's retries read it
// complete or waiting for a wave), and starts again at a halted poll that
// shows progress: more nodes or processes updated than any halted poll
// before in the wait, or another target or set of nodes. A retry's counts,
// its spawning process and its node updated, are no progress, nor do they
// hide the next node's halt at the same counts. Seen failing with the
// clock reset at every poll not halted: "poll 4 (halted at 4s): lasted
// false, want true"; and with counts taken at every poll: "poll 4 (halted
// at 6s): lasted true, want false".
func TestHaltClock(t *testing.T) {
	const grace = 3 * time.Second
	// At a halt, node-2 of 2 runs none of the target (its retry's process
	// gone), node-1 both processes; while node-2 retries, its spawning
	// process counts as updated (and node-2, not counted here).
	halt := rolloutMark{revision: "6-a", total: 2, nodesUpdated: 1, processesUpdated: 2}
	retry := halt
	retry.processesUpdated = 3
	moved := halt
	moved.nodesUpdated, moved.processesUpdated = 2, 4
	onMore := halt
	onMore.total = 3
	respec := halt
	respec.revision = "6-b"
	// node-2 of 3 halts, one process a node; its retries count a node and
	// a process more, as many as node-3's halt once node-2 has recovered.
	halt2 := rolloutMark{revision: "6-a", total: 3, nodesUpdated: 1, processesUpdated: 1}
	retry2 := rolloutMark{revision: "6-a", total: 3, nodesUpdated: 2, processesUpdated: 2}
	halt3 := retry2
	type poll struct {
		at     time.Duration
		halted bool
		mark   rolloutMark
		lasted bool
	}
	tests := []struct {
		name  string
		polls []poll
	}{
		{"a halt that lasts", []poll{
			{0, true, halt, false}, {2 * time.Second, true, halt, false}, {3 * time.Second, true, halt, true},
		}},
		{"a halt that flips with retries", []poll{
			{0, false, retry, false}, {time.Second, true, halt, false}, {2 * time.Second, false, retry, false},
			{3 * time.Second, true, halt, false}, {4 * time.Second, true, halt, true},
		}},
		{"read restarting at the grace's end: the next halted poll ends it", []poll{
			{0, false, retry, false}, {time.Second, true, halt, false}, {5 * time.Second, false, retry, false},
			{6 * time.Second, true, halt, true},
		}},
		{"a retry's spawning process is no progress", []poll{
			{0, true, halt, false}, {time.Second, false, retry, false}, {2 * time.Second, true, halt, false},
			{4 * time.Second, false, retry, false}, {5 * time.Second, true, halt, true},
		}},
		{"a node updated in between starts it again", []poll{
			{0, true, halt, false}, {2 * time.Second, false, moved, false}, {3 * time.Second, true, moved, false},
			{5 * time.Second, true, moved, false}, {6 * time.Second, true, moved, true},
		}},
		{"another target starts it again", []poll{
			{0, true, halt, false}, {2 * time.Second, true, respec, false}, {4 * time.Second, true, respec, false},
			{5 * time.Second, true, respec, true},
		}},
		{"another set of nodes starts it again", []poll{
			{0, true, halt, false}, {2 * time.Second, true, onMore, false}, {4 * time.Second, true, onMore, false},
			{5 * time.Second, true, onMore, true},
		}},
		{"counts that fall and come back are no progress", []poll{
			{0, true, moved, false}, {time.Second, false, halt, false}, {2 * time.Second, false, moved, false},
			{3 * time.Second, true, moved, true},
		}},
		{"the next node's halt at a retry's counts starts it again", []poll{
			{0, true, halt2, false}, {time.Second, false, retry2, false}, {2 * time.Second, true, halt2, false},
			{3 * time.Second, false, retry2, false}, {6 * time.Second, true, halt3, false},
			{8 * time.Second, true, halt3, false}, {9 * time.Second, true, halt3, true},
		}},
	}
	start := time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var c haltClock
			for i, p := range tt.polls {
				what := "not halted"
				if p.halted {
					what = "halted"
				}
				if got := c.lasted(start.Add(p.at), p.halted, p.mark, grace); got != p.lasted {
					t.Fatalf("poll %d (%s at %s): lasted %t, want %t", i, what, p.at, got, p.lasted)
				}
			}
		})
	}
}

// TestRestartWaitEndsAHaltThatFlipsWithRetries: a rollout halted at a
// node that cannot spawn a target proven elsewhere, which the manager keeps
// no record of, reads the rollout complete with Ready False while the
// node's agent retries (its spawning process counted as updated) and
// RolloutHalted at each failure (provenHaltAt). The grace (3s) runs through
// the flips, the waiter's clock moved on a second after each flip is read,
// and the wait ends with exit 1 and the manager's reason, not at --timeout
// (24h) nor after more retries than a few (seen failing with the clock
// reset at every poll not halted: "the wait went on past 5 retries, the
// grace long over").
func TestRestartWaitEndsAHaltThatFlipsWithRetries(t *testing.T) {
	ns := newNamespace(t)
	newAppGroup(t, ns, "app", "5")
	target := "6-" + hash
	setAppGroupStatus(t, ns, "app", func(ag *ferryv1.AppGroup, st *ferryv1.AppGroupStatus) { rolledOut(ag, st, "5-"+hash, 2) })
	w := startWaitGrace(t, 3*time.Second, ns, "app", "--timeout", "24h")
	w.next(t)
	halt := provenHalt{target: target, node: "node-2", nodes: 2, updated: 1, perNode: 2}
	// The grace is over at the third halt, two retries in (a second moved
	// on at each flip): more retries than a few are a wait that goes on
	// past it, which --timeout, on the same clock, would not end for 24h.
	const maxRetries = 5
	var r result
	retries := 0
	for retrying := false; ; retrying = !retrying {
		ag := setAppGroupStatus(t, ns, "app", func(ag *ferryv1.AppGroup, st *ferryv1.AppGroupStatus) {
			halt.write(ag, st, retrying)
		})
		var done bool
		if r, done = w.atOrDone(t, ag.ResourceVersion); done {
			break
		}
		if retrying {
			if retries++; retries > maxRetries {
				t.Fatalf("the wait went on past %d retries, the grace long over", maxRetries)
			}
		}
		w.clock.advance(time.Second)
	}
	if r.code != ExitFailure || !strings.Contains(r.err, "rollout halted: AppGroup "+ns+"/app: "+halt.message()) ||
		!strings.Contains(r.err, "(for 3s)") {
		t.Fatalf("exit %d, stderr %q; want 1 with the manager's reason", r.code, r.err)
	}
	if retries == 0 {
		t.Errorf("the wait ended before it read a retry between halts: %q", r.out)
	}
}

// TestRestartWaitGivesTheNextNodesHaltItsGrace: a proven target halts at
// node-2 of 3 (a process a node) and flips with its agent's retries
// (provenHalt), each retry counting a node and a process more on the
// target than the halts; read retrying when the grace (an hour, on the
// waiter's clock) from the second halt is over, node-2 recovers, and node-3, given the target next,
// fails to spawn it, its agent's first spawn over between two polls. Its
// halt counts 2/3 nodes updated, as node-2's retries did and its halts did
// not: the rollout went on, so the wait goes on at node-3's first halted
// poll, and ends with exit 1 once node-3's halt has lasted the grace.
// (Seen failing with the counts taken at every poll: "the wait ended at a
// status where it should go on: ... halted at 2/3 nodes updated: it failed
// to spawn on node-3 ...".)
func TestRestartWaitGivesTheNextNodesHaltItsGrace(t *testing.T) {
	const grace = time.Hour
	ns := newNamespace(t)
	newAppGroup(t, ns, "app", "5", func(ag *ferryv1.AppGroup) { ag.Spec.Pool.MinProcesses = 1 })
	target := "6-" + hash
	setAppGroupStatus(t, ns, "app", func(ag *ferryv1.AppGroup, st *ferryv1.AppGroupStatus) { rolledOut(ag, st, "5-"+hash, 3) })
	w := startWaitGrace(t, grace, ns, "app", "--timeout", "24h")
	w.next(t)
	write := func(mutate func(ag *ferryv1.AppGroup, st *ferryv1.AppGroupStatus)) string {
		return setAppGroupStatus(t, ns, "app", mutate).ResourceVersion
	}
	onNode2 := provenHalt{target: target, node: "node-2", nodes: 3, updated: 1, perNode: 1}
	var rv string
	for _, retrying := range []bool{false, true, false, true} {
		rv = write(func(ag *ferryv1.AppGroup, st *ferryv1.AppGroupStatus) { onNode2.write(ag, st, retrying) })
		w.at(t, rv)
	}
	// The last retry is read once the grace from the halts is over: the
	// first read of it after the clock moved on may have read the clock
	// before; the second did not.
	w.clock.advance(grace)
	w.at(t, rv)
	w.at(t, rv)
	w.at(t, write(func(ag *ferryv1.AppGroup, st *ferryv1.AppGroupStatus) {
		rolledOut(ag, st, target, 3)
		st.ProvenRevision = target
		st.Nodes.Updated = 2
		st.Processes = ferryv1.ProcessCounts{Ready: 3, Updated: 2, Total: 3}
		st.ReadyProcesses = "3/3"
		st.Conditions[0] = cond(ferryv1.ConditionReady, metav1.ConditionTrue, ferryv1.ReasonProcessesReady,
			"3/3 nodes ready, 3/3 processes ready")
		st.Conditions[1] = cond(ferryv1.ConditionRollingRestart, metav1.ConditionTrue, ferryv1.ReasonWaitingForWave,
			"2/3 nodes updated; next: node-3")
	}))
	onNode3 := provenHalt{target: target, node: "node-3", nodes: 3, updated: 2, perNode: 1}
	if r := w.at(t, write(func(ag *ferryv1.AppGroup, st *ferryv1.AppGroupStatus) { onNode3.write(ag, st, false) })); !r.Halted {
		t.Fatalf("assessed %+v, want halted", r)
	}
	w.clock.advance(grace)
	r := w.result(t)
	if r.code != ExitFailure || !strings.Contains(r.err, "rollout halted: AppGroup "+ns+"/app: "+onNode3.message()) ||
		!strings.Contains(r.err, "(for 1h0m0s)") {
		t.Fatalf("exit %d, stderr %q; want 1 with the manager's reason", r.code, r.err)
	}
}

// provenHalt is a rollout of target, proven (status.provenRevision), halted
// at node, which cannot spawn it: of nodes selected, updated others run it
// (and are ready), the rest an older revision, each node perNode processes;
// the node waiting for its wave, if any, is the last, node-<nodes>.
type provenHalt struct {
	target, node            string
	nodes, updated, perNode int32
}

// write writes the status the manager writes of the halt (controllers'
// computeStatus, printed for such pools): at a failure, RolloutHalted, none
// of the target on node; retrying, the node's agent spawns one process of
// it again, and the manager reads the rollout as it does of a node done:
// counted updated (nodeCounts, processCounts), RolloutComplete, or
// WaitingForWave where a node waits for its wave (rollingRestartCondition),
// Ready False; not RestartingBlocking: the agent's Blocking restart was one
// round (agent/pool's blockingRestart), and its retries are scale spawns
// (scaleSpawn), its pool's RollingRestart False. The target proven, no
// halt is recorded (haltRecord), so nothing keeps the halt read between
// failures (keptFailing) where no other node fails.
func (h provenHalt) write(ag *ferryv1.AppGroup, st *ferryv1.AppGroupStatus, retrying bool) {
	rolledOut(ag, st, h.target, h.nodes)
	st.ProvenRevision = h.target
	others := h.nodes - 1
	spawning := int32(0)
	if retrying {
		spawning = 1
	}
	st.Nodes = ferryv1.NodeCounts{Ready: others, Updated: h.updated + spawning, Total: h.nodes}
	st.Processes = ferryv1.ProcessCounts{Ready: others * h.perNode, Updated: h.updated*h.perNode + spawning,
		Total: others*h.perNode + spawning}
	st.ReadyNodes = fmt.Sprintf("%d/%d", st.Nodes.Ready, st.Nodes.Total)
	st.ReadyProcesses = fmt.Sprintf("%d/%d", st.Processes.Ready, st.Processes.Total)
	st.Conditions[0] = cond(ferryv1.ConditionReady, metav1.ConditionFalse, ferryv1.ReasonProcessesNotReady,
		fmt.Sprintf("%d/%d nodes ready; not ready: %s (0 of %d processes ready, minProcesses is %d; spawns are failing: "+
			"the app failed to load)", others, h.nodes, h.node, spawning, ag.Spec.Pool.MinProcesses))
	switch {
	case !retrying:
		st.Conditions[1] = cond(ferryv1.ConditionRollingRestart, metav1.ConditionFalse, ferryv1.ReasonRolloutHalted, h.message())
	case st.Nodes.Updated < h.nodes:
		st.Conditions[1] = cond(ferryv1.ConditionRollingRestart, metav1.ConditionTrue, ferryv1.ReasonWaitingForWave,
			fmt.Sprintf("%d/%d nodes updated; next: node-%d, after %s rolled out", st.Nodes.Updated, h.nodes,
				h.nodes, h.node))
	default:
		st.Conditions[1] = cond(ferryv1.ConditionRollingRestart, metav1.ConditionFalse, ferryv1.ReasonRolloutComplete,
			fmt.Sprintf("Revision %s runs on %d/%d nodes", h.target, h.nodes, h.nodes))
	}
}

// message is RollingRestart's message of the halt.
func (h provenHalt) message() string {
	return fmt.Sprintf("Rollout of revision %s halted at %d/%d nodes updated: it failed to spawn on %s "+
		"(the app failed to load), with no older process to keep serving; its agent retries it with backoff, at most "+
		"a minute apart, and the rollout goes on once it starts there; or change the ferry.dev/revision annotation "+
		"or the app to start a new rollout", h.target, h.updated, h.nodes, h.node)
}

// TestRestartWaitTimesOut: the wait ends with exit 1 at --timeout, read
// from the flag (45m, not the default 30m) and measured on App.clock: it
// goes on a second before, at a poll that read the clock after it was moved
// on, and ends at the next poll or the one after a second more, not by
// runApp's own 2-minute context. (Seen failing with App.clock bypassed:
// "restart --wait did not return within 2 assessments"; and with --timeout
// not read: "restart --wait returned early ... timed out".)
func TestRestartWaitTimesOut(t *testing.T) {
	ns := newNamespace(t)
	newAppGroup(t, ns, "app", "")
	setAppGroupStatus(t, ns, "app", func(ag *ferryv1.AppGroup, st *ferryv1.AppGroupStatus) {
		rolledOut(ag, st, "1-"+hash, 2)
		st.Conditions[1] = cond(ferryv1.ConditionRollingRestart, metav1.ConditionTrue, ferryv1.ReasonRollingOut,
			"node 2/2 (node-2), process 3/4")
	})
	const timeout = 45 * time.Minute
	w := startWait(t, ns, "app", "--revision", "1", "--timeout", timeout.String())
	w.next(t)
	w.clock.advance(timeout - time.Second)
	// The first may have read the clock before it moved; the second did not.
	w.next(t)
	w.next(t)
	w.clock.advance(time.Second)
	r := w.resultWithin(t, 2)
	want := "timed out waiting for " + ns + "/app to roll out revision 1; the rollout was at: " +
		"RollingRestart=True: node 2/2 (node-2), process 3/4"
	if r.code != ExitFailure || !strings.Contains(r.err, want) {
		t.Errorf("exit %d, stderr %q; want 1 and %q", r.code, r.err, want)
	}
}

func TestRestartWaitSuperseded(t *testing.T) {
	ns := newNamespace(t)
	newAppGroup(t, ns, "app", "1")
	w := startWait(t, ns, "app")
	w.next(t)
	patch := []byte(`{"metadata":{"annotations":{"ferry.dev/revision":"hotfix"}}}`)
	if err := env.Client.Patch(context.Background(), &ferryv1.AppGroup{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "app"}},
		client.RawPatch(types.MergePatchType, patch)); err != nil {
		t.Fatal(err)
	}
	r := w.result(t)
	if want := `the rollout of revision 2 was superseded: ferry.dev/revision is now "hotfix"`; r.code != ExitFailure ||
		!strings.Contains(r.err, want) {
		t.Errorf("exit %d, stderr %q; want 1 and %q", r.code, r.err, want)
	}
}

// An API error while following the rollout: a transient one is retried
// until the timeout, which names it; a permanent one ends the wait. The
// errors are injected in front of the real API server.
func TestRestartWaitAPIErrors(t *testing.T) {
	ns := newNamespace(t)
	newAppGroup(t, ns, "app", "1")
	setAppGroupStatus(t, ns, "app", func(ag *ferryv1.AppGroup, st *ferryv1.AppGroupStatus) { rolledOut(ag, st, "0-"+hash, 2) })
	before := getAppGroup(t, ns, "app")
	setAppGroupStatus(t, ns, "app", func(ag *ferryv1.AppGroup, st *ferryv1.AppGroupStatus) { rolledOut(ag, st, "1-"+hash, 2) })

	unavailable := apierrors.NewServiceUnavailable("etcd is down")
	forbidden := apierrors.NewForbidden(schema.GroupResource{Group: "ferry.dev", Resource: "appgroups"}, "app", errors.New("no"))
	apiClient := newAPIClient(t)
	for _, tt := range []struct {
		name    string
		errs    []error // what the Gets return, in order; then the real answer
		timeout time.Duration
		wantErr string // "" for success
	}{
		{name: "transient errors are retried", errs: []error{unavailable, unavailable, unavailable}, timeout: time.Hour},
		{name: "a persistent one is named at the timeout", errs: slices.Repeat([]error{unavailable}, 1000),
			timeout: 5 * time.Second, wantErr: "timed out waiting for " + ns + "/app to roll out revision 1; " +
				"the rollout was at: the manager has not taken up revision 1 yet (status.revision is 0-" + hash + ") " +
				"(last error reading it: etcd is down)"},
		{name: "a permanent one ends the wait", errs: []error{forbidden}, timeout: time.Hour, wantErr: "is forbidden"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			// Each read takes a second on the wait's clock.
			clock := newFakeClock()
			var gets int
			c := interceptor.NewClient(apiClient, interceptor.Funcs{
				Get: func(ctx context.Context, c client.WithWatch, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
					gets++
					clock.advance(time.Second)
					if gets <= len(tt.errs) {
						return tt.errs[gets-1]
					}
					return c.Get(ctx, key, obj, opts...)
				},
			})
			a := &App{Out: io.Discard, Now: time.Now, PollInterval: 10 * time.Millisecond, clock: clock.Now}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			err := a.waitRollout(ctx, &clients{c: c, namespace: ns}, before.DeepCopy(), "1", time.Now(),
				clock.Now().Add(tt.timeout))
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("got %v, want success", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("got %v, want an error containing %q", err, tt.wantErr)
			case tt.wantErr == "" && gets != len(tt.errs)+1:
				t.Errorf("%d reads, want %d", gets, len(tt.errs)+1)
			}
		})
	}
}

// TestWaitRolloutEndsWithItsContext: a wait whose context ends before its
// deadline on App.clock (restart's context.WithTimeout of --timeout, on
// the real clock, or the caller's, on a signal) says how it ended: "timed
// out" at the context's deadline, "interrupted" once it was cancelled,
// whether the context ends between polls or in a read that fails with
// it, naming the last error reading the AppGroup. (Seen failing with
// timedOut false: "got interrupted waiting for ...; want an error
// containing \"timed out waiting for ...\"".)
func TestWaitRolloutEndsWithItsContext(t *testing.T) {
	ns := newNamespace(t)
	newAppGroup(t, ns, "app", "1")
	before := setAppGroupStatus(t, ns, "app", func(ag *ferryv1.AppGroup, st *ferryv1.AppGroupStatus) {
		rolledOut(ag, st, "0-"+hash, 2)
	})
	apiClient := newAPIClient(t)
	at := "to roll out revision 1; the rollout was at: the manager has not taken up revision 1 yet (status.revision is 0-" +
		hash + ")"
	lastErr := " (last error reading it: etcd is down)\n"
	for _, tt := range []struct {
		name string
		// ctx is the wait's context and how the test ends it, if not
		// already ended: in the second read, which fails with it.
		ctx func() (ctx context.Context, end func())
		// reads is how many reads the wait makes: the first fails with a
		// transient error, the second with the context.
		reads int
		want  string
	}{
		{name: "a context past its deadline", want: "timed out waiting for " + ns + "/app " + at + "\n",
			ctx: func() (context.Context, func()) {
				ctx, cancel := context.WithDeadline(context.Background(), time.Now().Add(-time.Minute))
				t.Cleanup(cancel)
				return ctx, nil
			}},
		{name: "a cancelled context", want: "interrupted waiting for " + ns + "/app " + at + "\n",
			ctx: func() (context.Context, func()) {
				ctx, cancel := context.WithCancel(context.Background())
				cancel()
				return ctx, nil
			}},
		{name: "a deadline reached in a failing read", reads: 2,
			want: "timed out waiting for " + ns + "/app " + at + lastErr,
			ctx: func() (context.Context, func()) {
				ctx := newExpiringContext()
				return ctx, ctx.expire
			}},
		{name: "cancelled in a failing read", reads: 2,
			want: "interrupted waiting for " + ns + "/app " + at + lastErr,
			ctx: func() (context.Context, func()) {
				ctx, cancel := context.WithCancel(context.Background())
				t.Cleanup(cancel)
				return ctx, cancel
			}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ctx, end := tt.ctx()
			var reads int
			c := interceptor.NewClient(apiClient, interceptor.Funcs{
				Get: func(ctx context.Context, _ client.WithWatch, _ client.ObjectKey, _ client.Object, _ ...client.GetOption) error {
					if reads++; reads == 1 {
						return apierrors.NewServiceUnavailable("etcd is down")
					}
					end()
					return ctx.Err()
				},
			})
			clock := newFakeClock()
			a := &App{Out: io.Discard, Now: time.Now, PollInterval: 10 * time.Millisecond, clock: clock.Now}
			err := a.waitRollout(ctx, &clients{c: c, namespace: ns}, before.DeepCopy(), "1", time.Now(),
				clock.Now().Add(24*time.Hour))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v; want an error containing %q", err, tt.want)
			}
			if reads != tt.reads {
				t.Errorf("%d reads, want %d", reads, tt.reads)
			}
		})
	}
}

// expiringContext is a context that reaches its deadline when the test
// expires it, not at a time the wait's first read might come after.
type expiringContext struct {
	context.Context
	done chan struct{}
	once sync.Once
}

func newExpiringContext() *expiringContext {
	return &expiringContext{Context: context.Background(), done: make(chan struct{})}
}

func (c *expiringContext) Done() <-chan struct{} { return c.done }

func (c *expiringContext) Err() error {
	select {
	case <-c.done:
		return context.DeadlineExceeded
	default:
		return nil
	}
}

func (c *expiringContext) expire() { c.once.Do(func() { close(c.done) }) }

// TestWaitRolloutKeepsThePoolsThroughAFailedList: where the wait reads the
// pools (readsPools: resistance off, the rollout going on), a list that
// fails keeps the pools of the last one that did not, for the assessments
// until the next, made at the next poll (listEveryPoll: not 2 s later, on
// the real clock, as before). (Seen failing with the list's result taken
// whole: "the assessment after the failed list read 0 pools, want 1".)
func TestWaitRolloutKeepsThePoolsThroughAFailedList(t *testing.T) {
	before := rollingOutWithAPool(t, newNamespace(t))
	var lists int
	c := interceptor.NewClient(newAPIClient(t), interceptor.Funcs{
		List: func(ctx context.Context, c client.WithWatch, list client.ObjectList, opts ...client.ListOption) error {
			if lists++; lists == 2 {
				return apierrors.NewServiceUnavailable("etcd is down")
			}
			return c.List(ctx, list, opts...)
		},
	})
	// The interceptor and the observer run in the wait's goroutine, this
	// one: lists is the count as of the assessment. The first assessment,
	// of before, follows no list; the second the first; the third the
	// failed one.
	var listedBefore, afterFailed = -1, -1
	assessFor(t, c, before, listEveryPoll, 3, func(_ *ferryv1.AppGroup, pools []ferryv1.ProcessPool) {
		switch lists {
		case 1:
			listedBefore = len(pools)
		case 2:
			afterFailed = len(pools)
		}
	})
	if listedBefore != 1 {
		t.Fatalf("the assessments after the first list read %d pools, want 1", listedBefore)
	}
	if afterFailed != 1 {
		t.Errorf("the assessment after the failed list read %d pools, want 1", afterFailed)
	}
}

// TestWaitRolloutListsThePoolsAtItsInterval: where the wait reads the
// pools (readsPools), it lists them at most every App.poolListEvery, on
// the real clock: at the first poll, then, an hour apart, not again over
// polls; listEveryPoll, as the waiter's tests set it, at every poll;
// unset, every poolListInterval (2 s), so not again over nine 10 ms
// polls, unless the machine stalled them past it: then at most once more
// per interval gone by (the row counts what the real clock allows, so a
// slow machine passes it, and a wait listing at every poll fails it).
// Between lists it assesses the pools it listed last: each assessment
// after the first, which no poll read, has the one pool.
func TestWaitRolloutListsThePoolsAtItsInterval(t *testing.T) {
	ns := newNamespace(t)
	before := rollingOutWithAPool(t, ns)
	apiClient := newAPIClient(t)
	// The wait polls (reads the AppGroup) after each assessment but the
	// last: the first assessment is of before, read by no poll.
	const assessments = 10
	for _, tt := range []struct {
		name  string
		every time.Duration
		lists int
	}{
		{"an hour apart", time.Hour, 1},
		{"at every poll", listEveryPoll, assessments - 1},
		{"unset: poolListInterval", 0, 1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var lists int
			var firstList time.Time
			var poolCounts []int
			c := interceptor.NewClient(apiClient, interceptor.Funcs{
				List: func(ctx context.Context, c client.WithWatch, list client.ObjectList, opts ...client.ListOption) error {
					if lists++; lists == 1 {
						firstList = time.Now()
					}
					return c.List(ctx, list, opts...)
				},
			})
			assessFor(t, c, before, tt.every, assessments, func(_ *ferryv1.AppGroup, pools []ferryv1.ProcessPool) {
				poolCounts = append(poolCounts, len(pools))
			})
			want := tt.lists
			if tt.every == 0 {
				want += int(time.Since(firstList) / poolListInterval)
			}
			if lists < 1 || lists > want || (tt.every != 0 && lists != want) {
				t.Errorf("%d lists over %d assessments, want %d", lists, assessments, want)
			}
			for i, n := range poolCounts[1:] {
				if n != 1 {
					t.Errorf("assessment %d of %d read %d pools, want the 1 listed (all: %v)", i+2, assessments, n, poolCounts)
					break
				}
			}
		})
	}
}

// rollingOutWithAPool is AppGroup app in ns, resistance off, rolling out
// revision 1 (the wait reads its pools: readsPools) with a pool of it on
// node-1, as written.
func rollingOutWithAPool(t *testing.T, ns string) *ferryv1.AppGroup {
	t.Helper()
	target := "1-" + hash
	newPool(t, newAppGroup(t, ns, "app", "1", notResisting), "node-1", target)
	return setAppGroupStatus(t, ns, "app", func(ag *ferryv1.AppGroup, st *ferryv1.AppGroupStatus) {
		rolledOut(ag, st, target, 2)
		st.Nodes.Updated = 1
		st.Conditions[1] = cond(ferryv1.ConditionRollingRestart, metav1.ConditionTrue, ferryv1.ReasonRollingOut,
			"node 2/2 (node-2), process 1/2")
	})
}

// newAPIClient is a client of the test API server of its own, for a test
// to intercept.
func newAPIClient(t *testing.T) client.WithWatch {
	t.Helper()
	c, err := client.NewWithWatch(env.Config, client.Options{Scheme: env.Scheme})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// assessFor runs the wait on before through c, polling every 10 ms and
// listing the pools at most every listEvery, for the given number of
// assessments, each handed to saw; then it interrupts the wait.
func assessFor(t *testing.T, c client.Client, before *ferryv1.AppGroup, listEvery time.Duration, assessments int,
	saw func(*ferryv1.AppGroup, []ferryv1.ProcessPool)) {
	t.Helper()
	if err := waitAssessing(c, before, listEvery, assessments, saw); err == nil || !strings.Contains(err.Error(), "interrupted waiting") {
		t.Fatalf("got %v, want the wait interrupted", err)
	}
}

// waitAssessing is assessFor's wait, returning how it ended: interrupted
// after the given number of assessments, or before them of itself.
func waitAssessing(c client.Client, before *ferryv1.AppGroup, listEvery time.Duration, assessments int,
	saw func(*ferryv1.AppGroup, []ferryv1.ProcessPool)) error {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	assessed := 0
	a := &App{Out: io.Discard, Now: time.Now, PollInterval: 10 * time.Millisecond, clock: newFakeClock().Now,
		poolListEvery: listEvery,
		observed: func(ag *ferryv1.AppGroup, pools []ferryv1.ProcessPool, _ rollout) {
			saw(ag, pools)
			if assessed++; assessed == assessments {
				cancel()
			}
		}}
	return a.waitRollout(ctx, &clients{c: c, namespace: before.Namespace}, before.DeepCopy(), "1", time.Now(),
		a.clock().Add(24*time.Hour))
}

// TestWaitRolloutEndsWhenTheAppGroupIsCreatedAgain: a poll that reads
// the AppGroup with another UID than the last (deleted and created again
// under its name between two polls) ends the wait, as one that finds it
// gone does, saying so and how to follow the new one's rollout: it is not
// the one waited for, and the earlier one's pools (which the new one does
// not own, and of which one dying young read as its crash loop) and halt
// (timed from the earlier one's polls, so a new halt could end the wait
// before its grace) are not the new one's. The AppGroup reads as created
// again, from a poll on, by its UID alone (the API server gives a real
// one's only on create); the new one's pool is on node-2, never read.
// (Seen failing with the wait going on, its pools dropped and listed
// again: "got interrupted waiting for ..., want the wait ended: deleted
// and created again".)
func TestWaitRolloutEndsWhenTheAppGroupIsCreatedAgain(t *testing.T) {
	ns := newNamespace(t)
	before := rollingOutWithAPool(t, ns)
	createdAgain := before.DeepCopy()
	createdAgain.UID = "created-again"
	newPool(t, createdAgain, "node-2", "1-"+hash)
	// The poll from which the AppGroup reads as created again, and the
	// assessments the test lets the wait make at most.
	const createdAgainAt, assessments = 4, 8
	var polls, lists int
	c := interceptor.NewClient(newAPIClient(t), interceptor.Funcs{
		Get: func(ctx context.Context, c client.WithWatch, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
			if err := c.Get(ctx, key, obj, opts...); err != nil {
				return err
			}
			if polls++; polls >= createdAgainAt {
				obj.SetUID(createdAgain.UID)
			}
			return nil
		},
		List: func(ctx context.Context, c client.WithWatch, list client.ObjectList, opts ...client.ListOption) error {
			lists++
			return c.List(ctx, list, opts...)
		},
	})
	var read []string
	err := waitAssessing(c, before, time.Hour, assessments, func(ag *ferryv1.AppGroup, pools []ferryv1.ProcessPool) {
		var nodes []string
		for _, p := range pools {
			nodes = append(nodes, p.Spec.NodeName)
		}
		read = append(read, fmt.Sprintf("%s: %v", ag.UID, nodes))
	})
	want := fmt.Sprintf("deleted: AppGroup %s/app was deleted and created again while waiting; see the new one's rollout: kubectl ferry restart app -n %s --revision 1 --wait",
		ns, ns)
	if err == nil || err.Error() != want || !errors.Is(err, ErrDeleted) {
		t.Fatalf("got %v, want the wait ended: %s", err, want)
	}
	// The first assessment is of before, read by no poll, with no pools;
	// the polls before the one of the AppGroup created again read its pool.
	wantRead := []string{fmt.Sprintf("%s: []", before.UID)}
	for range createdAgainAt - 1 {
		wantRead = append(wantRead, fmt.Sprintf("%s: [node-1]", before.UID))
	}
	if !slices.Equal(read, wantRead) {
		t.Errorf("the wait read %q, want %q", read, wantRead)
	}
	if lists != 1 {
		t.Errorf("%d lists, want 1: at the first poll", lists)
	}
}
