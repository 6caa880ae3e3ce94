package controllers

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	ferryv1 "github.com/ferry-dev/ferry/api/v1alpha1"
	"github.com/ferry-dev/ferry/controllers/contract"
)

const (
	oldRev    = "1-abc"
	targetRev = "2-abc"
)

// crashWindow is the crash window as RollingRestart's messages say it:
// the agents' (contract.CrashWindow), whatever window settle is given.
var crashWindow = contract.CrashWindow.String()

// input builds a roll-up input over the selected nodes and their pools at
// t0, against targetRev.
func input(nodes []string, pools ...*ferryv1.ProcessPool) rollupInput {
	ag := &ferryv1.AppGroup{ObjectMeta: metav1.ObjectMeta{Name: "blog", Namespace: "ns", Generation: 3}}
	ag.Spec.Restart.Strategy = ferryv1.RestartRolling
	return rollupInput{
		AppGroup:   ag,
		Target:     targetRev,
		Nodes:      nodes,
		Reports:    byNode(assessAll(targetRev, pools...)),
		Now:        t0,
		StaleAfter: staleAfter,
		Clean:      true,
	}
}

// rolledOutBefore is in after the target ran rolled out on every node
// selected then (lastRolledOut).
func rolledOutBefore(in rollupInput) rollupInput {
	in.LastRolledOut = &ferryv1.RolledOutRevision{Revision: in.Target}
	return in
}

// provenIn is in after the target ran rolled out on some node
// (provenRevision).
func provenIn(in rollupInput) rollupInput {
	in.Proven = in.Target
	return in
}

// withRevisionErr is in with the annotation invalid (msg): after a valid
// revision, which stays the target, or never valid (no target).
func withRevisionErr(in rollupInput, msg string, neverValid bool) rollupInput {
	in.RevisionErr = errors.New(msg)
	if neverValid {
		in.Target = ""
	}
	return in
}

// withHalt is in with the status's record of a halt of the target by
// node, for reason, where the node kept serving an older revision.
func withHalt(in rollupInput, node, reason string) rollupInput {
	in.Halt = &ferryv1.HaltedRollout{Revision: in.Target, Node: node, Reason: reason, Resisted: true, Since: metav1.NewTime(t0)}
	return in
}

// silentPreviousPool is a pool on node being deleted, whose agent last
// reported a minute before t0.
func silentPreviousPool(node string) *ferryv1.ProcessPool {
	return testPool(node, oldRev, rolledOut(2), heartbeatAt(t0.Add(-time.Minute)), deleting)
}

// crashLoopInput is one node on the target, not proven, whose revision 1
// ran rolled out before (a return is there to make), its pool as opts
// leave it, after the pass's unstarted and settle; as edit leaves it.
func crashLoopInput(edit func(rollupInput) rollupInput, opts ...poolOpt) rollupInput {
	in := input([]string{"node-a"}, testPool("node-a", targetRev, append([]poolOpt{rolledOut(2)}, opts...)...))
	in.LastRolledOut = &ferryv1.RolledOutRevision{Revision: oldRev}
	unstarted(in.Reports)
	settle(in.Reports, t0, 10*time.Second)
	return looped(edit(in))
}

// recorded is in with the record of a halt that the pass keeps after a
// look at in's reports (haltRecord), with none before.
func recorded(in rollupInput) rollupInput {
	in = looped(in)
	in.Halt = haltRecord(in)
	return in
}

// alone: the pool runs one process (minProcesses 1).
func alone(p *ferryv1.ProcessPool) { p.Spec.Template.Pool.MinProcesses = 1 }

// diedAlone: a pool of one process whose process of spec.revision died
// soon after it was ready: none runs until its agent respawns it, with
// backoff (ScalingError, the crash as the last spawn error).
func diedAlone(p *ferryv1.ProcessPool) {
	alone(p)
	counts(0, 0, 0)(p)
	notReadyAtAll(p)
	crashedInWindow(p)
}

// bootsAlone: the replacement of diedAlone's process boots, not ready
// yet; the scaling error stands until it is.
func bootsAlone(p *ferryv1.ProcessPool) {
	diedAlone(p)
	counts(0, 1, 1)(p)
}

// readyAlone: the replacement of diedAlone's process is ready.
func readyAlone(p *ferryv1.ProcessPool) {
	alone(p)
	counts(1, 1, 1)(p)
	betweenDeaths(p)
}

// resistingNothing is in with spec.restart.resistDeploymentErrors false.
func resistingNothing(in rollupInput) rollupInput {
	in.AppGroup.Spec.Restart.ResistDeploymentErrors = new(bool)
	return in
}

// dyingYoung: a process of spec.revision died soon after it was ready,
// and its replacement boots (1 of 2 ready), as the agent reports a crash
// in the window: ScalingError, the crash as the last spawn error.
func dyingYoung(p *ferryv1.ProcessPool) {
	counts(1, 2, 2)(p)
	notReady(p)
	crashedInWindow(p)
}

// betweenDeaths: a process of spec.revision died soon after it was
// ready, and its replacement is ready: the agent ends the scaling error
// (a second ago), the crash stays the last spawn error.
func betweenDeaths(p *ferryv1.ProcessPool) {
	crashedInWindow(p)
	setCond(p, ferryv1.ConditionScalingError, metav1.ConditionFalse, ferryv1.ReasonSpawnsHealthy, "")
	meta.FindStatusCondition(p.Status.Conditions, ferryv1.ConditionScalingError).LastTransitionTime = metav1.NewTime(t0.Add(-time.Second))
}

// lasted: a process of spec.revision lived the crash window there.
func lasted(p *ferryv1.ProcessPool) { p.Status.LastedRevision = p.Spec.Revision }

type wantCond struct {
	status metav1.ConditionStatus
	reason string
	// message must contain each of these.
	message []string
}

func checkCond(t *testing.T, got metav1.Condition, want wantCond) {
	t.Helper()
	if got.Status != want.status || got.Reason != want.reason {
		t.Errorf("%s = %s/%s, want %s/%s (message %q)", got.Type, got.Status, got.Reason, want.status, want.reason, got.Message)
	}
	for _, m := range want.message {
		if !strings.Contains(got.Message, m) {
			t.Errorf("%s message %q lacks %q", got.Type, got.Message, m)
		}
	}
	if len(got.Message) > maxMessage {
		t.Errorf("%s message is %d bytes, over %d", got.Type, len(got.Message), maxMessage)
	}
}

func TestReadyCondition(t *testing.T) {
	ab := []string{"node-a", "node-b"}
	tests := []struct {
		name string
		in   rollupInput
		want wantCond
	}{
		{
			name: "every pool ready",
			in:   input(ab, testPool("node-a", targetRev, rolledOut(2)), testPool("node-b", targetRev, rolledOut(3))),
			want: wantCond{metav1.ConditionTrue, ferryv1.ReasonProcessesReady, []string{"2/2 nodes ready", "5/5 processes"}},
		},
		{
			name: "ready on an older revision still counts",
			in:   input(ab, testPool("node-a", oldRev, rolledOut(2)), testPool("node-b", targetRev, restarting(1, 2))),
			want: wantCond{metav1.ConditionTrue, ferryv1.ReasonProcessesReady, nil},
		},
		{
			name: "an invalid revision after a valid one: what runs is ready",
			in: withRevisionErr(input(ab, testPool("node-a", targetRev, rolledOut(2)), testPool("node-b", targetRev, rolledOut(2))),
				"annotation ferry.dev/revision is empty", false),
			want: wantCond{metav1.ConditionTrue, ferryv1.ReasonProcessesReady, []string{"2/2 nodes ready"}},
		},
		{
			name: "an invalid revision, and a node with nothing to start on",
			in: func() rollupInput {
				in := withRevisionErr(input(ab, testPool("node-a", targetRev, restarting(1, 2))),
					"annotation ferry.dev/revision is empty", false)
				in.Unserved = []string{"node-b"}
				return in
			}(),
			want: wantCond{metav1.ConditionFalse, ferryv1.ReasonInvalidRevision, []string{"No pool on node-b", "is empty"}},
		},
		{
			name: "an invalid revision, and two nodes with nothing to start on",
			in: func() rollupInput {
				in := withRevisionErr(input(ab), "annotation ferry.dev/revision is empty", false)
				in.Unserved = ab
				return in
			}(),
			want: wantCond{metav1.ConditionFalse, ferryv1.ReasonInvalidRevision, []string{
				"No pools on node-a and node-b: no node serves a revision to start them on, and annotation ferry.dev/revision is empty"}},
		},
		{
			// node-a serves: node-b's pool was made, or waits for its
			// old pool to drain; nothing is wrong with what it starts on.
			name: "an invalid revision, and a node whose pool is yet to report",
			in: withRevisionErr(input(ab, testPool("node-a", targetRev, rolledOut(2))),
				"annotation ferry.dev/revision is empty", false),
			want: wantCond{metav1.ConditionFalse, ferryv1.ReasonPoolsPending, []string{"node-b"}},
		},
		{
			name: "a revision never valid",
			in:   withRevisionErr(input(ab), "annotation ferry.dev/revision is empty", true),
			want: wantCond{metav1.ConditionFalse, ferryv1.ReasonInvalidRevision, []string{"is empty", "nothing is rolled out"}},
		},
		{
			name: "the agent's own word on why a pool is not ready",
			in: input(ab, testPool("node-a", targetRev, rolledOut(2)), testPool("node-b", targetRev, rolledOut(2), func(p *ferryv1.ProcessPool) {
				setCond(p, ferryv1.ConditionReady, metav1.ConditionFalse, ferryv1.ReasonListenFailed,
					"the proxy cannot listen: listen tcp 0.0.0.0:8080: bind: address already in use")
			})),
			// Only listening fails: the reason says so, and the one node
			// is named once.
			want: wantCond{metav1.ConditionFalse, ferryv1.ReasonListenFailed, []string{"1/2 nodes ready; not ready: node-b (the proxy cannot listen: listen tcp 0.0.0.0:8080: bind: address already in use)"}},
		},
		{
			// Its agent stops: its report, fresh, still counts its
			// processes, but they no longer take requests.
			name: "a node whose agent stops",
			in: input(ab, testPool("node-a", targetRev, rolledOut(2)), testPool("node-b", targetRev, rolledOut(2), func(p *ferryv1.ProcessPool) {
				setCond(p, ferryv1.ConditionReady, metav1.ConditionFalse, ferryv1.ReasonAgentStopping, "the agent on node-b is stopping: x")
			})),
			want: wantCond{metav1.ConditionFalse, ferryv1.ReasonProcessesNotReady, []string{"1/2 nodes ready; not ready: node-b (the agent on node-b is stopping: x)"}},
		},
		{
			name: "a node cannot listen and has too few processes ready",
			in: input(ab, testPool("node-a", targetRev, rolledOut(2)), testPool("node-b", targetRev, rolledOut(2), notReady, func(p *ferryv1.ProcessPool) {
				setCond(p, ferryv1.ConditionReady, metav1.ConditionFalse, ferryv1.ReasonListenFailed, "the proxy cannot listen: x")
			})),
			want: wantCond{metav1.ConditionFalse, ferryv1.ReasonProcessesNotReady, []string{"not ready: node-b (the proxy cannot listen: x)"}},
		},
		{
			name: "one node cannot listen, another has too few processes ready",
			in: input(ab, testPool("node-a", targetRev, rolledOut(2), notReady), testPool("node-b", targetRev, rolledOut(2), func(p *ferryv1.ProcessPool) {
				setCond(p, ferryv1.ConditionReady, metav1.ConditionFalse, ferryv1.ReasonListenFailed, "the proxy cannot listen: x")
			})),
			want: wantCond{metav1.ConditionFalse, ferryv1.ReasonProcessesNotReady, []string{"0/2 nodes ready; not ready: node-a and node-b (node-a: 1/2 processes ready"}},
		},
		{
			name: "no nodes",
			in: func() rollupInput {
				in := input(nil)
				in.AppGroup.Spec.NodeSelector = map[string]ferryv1.LabelValue{"web": "true"}
				return in
			}(),
			want: wantCond{metav1.ConditionFalse, ferryv1.ReasonNoNodes, []string{"spec.nodeSelector (web=true)",
				"kubectl label node NODE web=true", "or change spec.nodeSelector"}},
		},
		{
			name: "another AppGroup has the port on a node",
			in: func() rollupInput {
				in := input([]string{"node-a"}, testPool("node-a", targetRev, rolledOut(2)))
				in.AppGroup.Spec.Listen.Port = 8080
				in.PortLost = map[string]types.NamespacedName{"node-b": {Namespace: "shop", Name: "cart"}}
				return in
			}(),
			want: wantCond{metav1.ConditionFalse, ferryv1.ReasonPortConflict, []string{"listen.port 8080 is taken by AppGroup shop/cart on node-b (", "no pool there"}},
		},
		{
			name: "a node without a pool yet",
			in:   input(ab, testPool("node-a", targetRev, rolledOut(2))),
			want: wantCond{metav1.ConditionFalse, ferryv1.ReasonPoolsPending, []string{"node-b"}},
		},
		{
			name: "a pool never reported for longer than the bound",
			in:   input(ab, testPool("node-a", targetRev, rolledOut(2)), testPool("node-b", targetRev, created(time.Minute))),
			want: wantCond{metav1.ConditionFalse, ferryv1.ReasonPoolsPending, []string{
				"Waiting for the first report from the agent on node-b. " +
					"No agent has reported the pool on node-b in the 40s since it was made: is ferry-agent running there?"}},
		},
		{
			name: "a node whose previous pool still drains",
			in: func() rollupInput {
				in := input(ab, testPool("node-a", targetRev, rolledOut(2)))
				in.AwaitingDrain = []string{"node-b"}
				return in
			}(),
			want: wantCond{metav1.ConditionFalse, ferryv1.ReasonPoolsPending, []string{"drain the previous pool", "node-b", "the new pool is made after"}},
		},
		{
			name: "a node whose previous pool's agent is silent",
			in: func() rollupInput {
				in := input(ab, testPool("node-a", targetRev, rolledOut(2)))
				in.AwaitingDrain = []string{"node-b"}
				in.Undrained = assessAll(targetRev, silentPreviousPool("node-b"))
				return in
			}(),
			want: wantCond{metav1.ConditionFalse, ferryv1.ReasonPoolsPending, []string{
				"the new pool is made after. The previous pool on node-b does not drain: its agent has not reported since",
				"remove the ferry.dev/drain finalizer from ProcessPool ns/blog-node-b"}},
		},
		{
			name: "two nodes whose previous pools still drain, two pools yet to report",
			in: func() rollupInput {
				in := input([]string{"node-a", "node-b", "node-c", "node-d"}, testPool("node-a", targetRev), testPool("node-b", targetRev))
				in.AwaitingDrain = []string{"node-c", "node-d"}
				return in
			}(),
			want: wantCond{metav1.ConditionFalse, ferryv1.ReasonPoolsPending, []string{
				"Waiting for the first reports from the agents on node-a and node-b, and for the agents to drain the previous pools on node-c and node-d"}},
		},
		{
			name: "two nodes whose previous pools still drain",
			in: func() rollupInput {
				in := input(ab)
				in.AwaitingDrain = ab
				return in
			}(),
			want: wantCond{metav1.ConditionFalse, ferryv1.ReasonPoolsPending, []string{
				"Waiting for the agents to drain the previous pools (when the nodes were last selected) on node-a and node-b; the new pools are made after"}},
		},
		{
			name: "one node's pool yet to report, another's previous pool draining",
			in: func() rollupInput {
				in := input([]string{"node-a", "node-b", "node-c"}, testPool("node-a", targetRev, rolledOut(2)), testPool("node-b", targetRev))
				in.AwaitingDrain = []string{"node-c"}
				return in
			}(),
			want: wantCond{metav1.ConditionFalse, ferryv1.ReasonPoolsPending, []string{"first report from the agent on node-b", "drain the previous pool on node-c"}},
		},
		{
			name: "a pool that never reported",
			in:   input(ab, testPool("node-a", targetRev, rolledOut(2)), testPool("node-b", targetRev)),
			want: wantCond{metav1.ConditionFalse, ferryv1.ReasonPoolsPending, []string{"node-b"}},
		},
		{
			name: "a pool not ready",
			in:   input(ab, testPool("node-a", targetRev, rolledOut(2)), testPool("node-b", targetRev, rolledOut(2), notReady)),
			want: wantCond{metav1.ConditionFalse, ferryv1.ReasonProcessesNotReady, []string{"1/2 nodes ready", "not ready: node-b (1/2 processes ready, minProcesses 2)"}},
		},
		{
			name: "Ready True below minProcesses",
			in:   input(ab, testPool("node-a", targetRev, rolledOut(2)), testPool("node-b", targetRev, rolledOut(1))),
			want: wantCond{metav1.ConditionFalse, ferryv1.ReasonProcessesNotReady, []string{"node-b"}},
		},
		{
			name: "a stale report makes it Unknown, never a stale True",
			in:   input(ab, testPool("node-a", targetRev, rolledOut(2), heartbeatAt(t0.Add(-75*time.Second))), testPool("node-b", targetRev, rolledOut(2))),
			want: wantCond{metav1.ConditionUnknown, ferryv1.ReasonAgentNotReporting, []string{"The agent on node-a has not reported since 2026-05-01T11:58:45Z (more than 40s ago)"}},
		},
		{
			// Its last word, that it stopped, is kept once it is stale.
			name: "a stale report of an agent that stopped says it stopped",
			in: input(ab, testPool("node-a", targetRev, rolledOut(2), heartbeatAt(t0.Add(-75*time.Second)), agentStopping),
				testPool("node-b", targetRev, rolledOut(2))),
			want: wantCond{metav1.ConditionUnknown, ferryv1.ReasonAgentNotReporting, []string{"The agent on node-a stopped: " +
				"its last report, at 2026-05-01T11:58:45Z (more than 40s ago), said it was stopping, and it has not been heard since; " +
				"start it again, or unselect the node"}},
		},
		{
			name: "last seen is the later of the report and the Lease's renewal",
			in: func() rollupInput {
				in := input(ab, testPool("node-b", targetRev, rolledOut(2)))
				in.Reports["node-a"] = assessPool(testPool("node-a", targetRev, rolledOut(2), heartbeatAt(t0.Add(-time.Hour))),
					targetRev, t0, staleAfter, t0.Add(-75*time.Second), hearing{})
				return in
			}(),
			want: wantCond{metav1.ConditionUnknown, ferryv1.ReasonAgentNotReporting, []string{"The agent on node-a has not reported since 2026-05-01T11:58:45Z"}},
		},
		{
			name: "several silent agents",
			in:   input(ab, testPool("node-a", targetRev, rolledOut(2), heartbeatAt(t0.Add(-75*time.Second))), testPool("node-b", targetRev, rolledOut(2), heartbeatAt(t0.Add(-time.Hour)))),
			want: wantCond{metav1.ConditionUnknown, ferryv1.ReasonAgentNotReporting, []string{"The agents on node-a and node-b have not reported for more than 40s (node-a since 2026-05-01T11:58:45Z)"}},
		},
		{
			name: "a known False wins over Unknown",
			in:   input(ab, testPool("node-a", targetRev, rolledOut(2), heartbeatAt(t0.Add(-time.Hour))), testPool("node-b", targetRev, rolledOut(2), notReady)),
			want: wantCond{metav1.ConditionFalse, ferryv1.ReasonProcessesNotReady, []string{"0/2 nodes ready; not ready: node-b (",
				"The agent on node-a has not reported since 2026-05-01T11:00:00Z"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { checkCond(t, readyCondition(tt.in), tt.want) })
	}
}

func TestRollingRestartCondition(t *testing.T) {
	abc := []string{"node-a", "node-b", "node-c"}
	ab := abc[:2]
	// A Rolling restart with resistance off halted on node-a by a death
	// soon after ready, at its retries and between them.
	diedMidRestart := "Rollout of revision 2-abc halted at 0/3 nodes updated: it died on node-a soon after it was ready " +
		"(exited with status 1 1.2s after it was ready), older processes serving there meanwhile; " +
		"its agent retries it with backoff, at most a minute apart, and the rollout goes on once a process of it " +
		"lives " + crashWindow + ", the crash window, there; or change the ferry.dev/revision annotation or the app to start a new rollout"
	tests := []struct {
		name  string
		in    rollupInput
		want  wantCond
		exact string
	}{
		{
			name:  "complete",
			in:    input(abc, testPool("node-a", targetRev, rolledOut(2)), testPool("node-b", targetRev, rolledOut(2)), testPool("node-c", targetRev, rolledOut(2))),
			want:  wantCond{metav1.ConditionFalse, ferryv1.ReasonRolloutComplete, nil},
			exact: "Revision 2-abc runs on 3/3 nodes",
		},
		{
			// Its processes run, but no request reaches them: the
			// message must not read as all well (the Ready condition
			// has the agent's words).
			name: "complete, but a node's proxy cannot listen",
			in: input(abc, testPool("node-a", targetRev, rolledOut(2)), testPool("node-b", targetRev, rolledOut(2), func(p *ferryv1.ProcessPool) {
				setCond(p, ferryv1.ConditionReady, metav1.ConditionFalse, ferryv1.ReasonListenFailed,
					"the proxy cannot listen: listen tcp 0.0.0.0:9441: bind: address already in use")
			}), testPool("node-c", targetRev, rolledOut(2))),
			want:  wantCond{metav1.ConditionFalse, ferryv1.ReasonRolloutComplete, nil},
			exact: "Revision 2-abc runs on 3/3 nodes; the proxy on node-b cannot listen on listen.port, so it serves no request (see Ready)",
		},
		{
			name: "complete, but two nodes' proxies cannot listen",
			in: input(abc, testPool("node-a", targetRev, rolledOut(2)), testPool("node-b", targetRev, rolledOut(2), func(p *ferryv1.ProcessPool) {
				setCond(p, ferryv1.ConditionReady, metav1.ConditionFalse, ferryv1.ReasonListenFailed, "the proxy cannot listen: x")
			}), testPool("node-c", targetRev, rolledOut(2), func(p *ferryv1.ProcessPool) {
				setCond(p, ferryv1.ConditionReady, metav1.ConditionFalse, ferryv1.ReasonListenFailed, "the proxy cannot listen: x")
			})),
			want:  wantCond{metav1.ConditionFalse, ferryv1.ReasonRolloutComplete, nil},
			exact: "Revision 2-abc runs on 3/3 nodes; the proxies on node-b and node-c cannot listen on listen.port, so they serve no request (see Ready)",
		},
		{
			// A move from 7070 whose new port (listen.port) is taken on
			// node-b: it serves on 7070 until it is free.
			name: "complete, but a node's proxy serves on its old port",
			in: input(abc, testPool("node-a", targetRev, rolledOut(2)), testPool("node-b", targetRev, rolledOut(2), address("192.0.2.3:7070"), func(p *ferryv1.ProcessPool) {
				p.Spec.Template.Listen.Port = 8080
				setCond(p, ferryv1.ConditionReady, metav1.ConditionFalse, ferryv1.ReasonListenFailed,
					"the proxy cannot listen on port 8080 (bind: address already in use); it still serves on the old port 7070 until 8080 is free")
			}), testPool("node-c", targetRev, rolledOut(2))),
			want:  wantCond{metav1.ConditionFalse, ferryv1.ReasonRolloutComplete, nil},
			exact: "Revision 2-abc runs on 3/3 nodes; the proxy on node-b cannot listen on listen.port and serves on its old port until it can (see Ready)",
		},
		{
			name:  "second node rolling",
			in:    input(abc, testPool("node-a", targetRev, rolledOut(4)), testPool("node-b", targetRev, restarting(2, 4)), testPool("node-c", oldRev, rolledOut(4))),
			want:  wantCond{metav1.ConditionTrue, ferryv1.ReasonRollingOut, nil},
			exact: "node 2/3 (node-b), process 3/4; 1 node waits for its wave",
		},
		{
			// The step's spawn failed while a process of the target
			// serves: the agent retries it, as its ScalingError says.
			name: "second node rolling, its spawns failing",
			in: input(abc, testPool("node-a", targetRev, rolledOut(4)), testPool("node-b", targetRev, restarting(2, 4), spawnFailed("exited with status 1")),
				testPool("node-c", oldRev, rolledOut(4))),
			want: wantCond{metav1.ConditionTrue, ferryv1.ReasonRollingOut, nil},
			exact: "node 2/3 (node-b), process 3/4, its spawns failing (retried with backoff, at most a minute apart, " +
				"until one works or another revision is requested; see the pool's ScalingError); 1 node waits for its wave",
		},
		{
			// For no fault of the revision: the error says what to fix.
			name: "second node rolling, its spawns blocked",
			in: input(abc, testPool("node-a", targetRev, rolledOut(4)),
				testPool("node-b", targetRev, restarting(2, 4), spawnFailed("could not start: env S: the agent may not get Secrets ...; the agent tries again"), blocked),
				testPool("node-c", oldRev, rolledOut(4))),
			want:  wantCond{metav1.ConditionTrue, ferryv1.ReasonRollingOut, nil},
			exact: "node 2/3 (node-b), process 3/4, its spawns blocked: could not start: env S: the agent may not get Secrets ...; the agent tries again; 1 node waits for its wave",
		},
		{
			// Names as long as Kubernetes allows: the quoted error loses
			// its middle, never what to do at its end.
			name: "second node rolling, its spawns blocked on long names",
			in: input(abc, testPool("node-a", targetRev, rolledOut(4)),
				testPool("node-b", targetRev, restarting(2, 4), spawnFailed(fmt.Sprintf("could not start: env SECRET_KEY: the agent may not get "+
					"Secrets in namespace %s, so cannot read key \"SECRET_KEY\" of Secret %q: the chart's agent.secretEnv=true grants it "+
					"(docs/install.md, Who Ferry trusts); the agent tries again", strings.Repeat("n", 63), strings.Repeat("s", 253))), blocked),
				testPool("node-c", oldRev, rolledOut(4))),
			want: wantCond{metav1.ConditionTrue, ferryv1.ReasonRollingOut, []string{
				"node 2/3 (node-b), process 3/4, its spawns blocked: could not start: env SECRET_KEY: the agent may not get Secrets in namespace nnn",
				"...", "agent.secretEnv=true grants it (docs/install.md, Who Ferry trusts); the agent tries again; 1 node waits for its wave"}},
		},
		{
			// A spawn error of the revision before is no news of this one.
			name:  "second node rolling, spawns of another revision failed",
			in:    input(abc, testPool("node-a", targetRev, rolledOut(4)), testPool("node-b", targetRev, restarting(2, 4), spawnFailed("x"), spawnsOf(oldRev)), testPool("node-c", oldRev, rolledOut(4))),
			want:  wantCond{metav1.ConditionTrue, ferryv1.ReasonRollingOut, nil},
			exact: "node 2/3 (node-b), process 3/4; 1 node waits for its wave",
		},
		{
			name:  "last node rolling",
			in:    input(abc, testPool("node-a", targetRev, rolledOut(4)), testPool("node-b", targetRev, rolledOut(4)), testPool("node-c", targetRev, restarting(0, 4))),
			want:  wantCond{metav1.ConditionTrue, ferryv1.ReasonRollingOut, nil},
			exact: "node 3/3 (node-c), process 1/4",
		},
		{
			name:  "given the target, agent has not taken it up",
			in:    input(abc, testPool("node-a", targetRev, rolledOut(2), func(p *ferryv1.ProcessPool) { p.Status.ObservedRevision = oldRev }), testPool("node-b", oldRev, rolledOut(2)), testPool("node-c", oldRev, rolledOut(2))),
			want:  wantCond{metav1.ConditionTrue, ferryv1.ReasonRollingOut, nil},
			exact: "node 1/3 (node-a), waiting for its agent; 2 nodes wait for their wave",
		},
		{
			name:  "two nodes at once",
			in:    input(abc, testPool("node-a", targetRev, restarting(1, 2)), testPool("node-b", targetRev), testPool("node-c", oldRev, rolledOut(2))),
			want:  wantCond{metav1.ConditionTrue, ferryv1.ReasonRollingOut, nil},
			exact: "nodes 1-2/3 (node-a: process 2/2, node-b: waiting for its agent); 1 node waits for its wave",
		},
		{
			name: "a pool about to be created",
			in:   input(abc, testPool("node-a", targetRev, rolledOut(2)), testPool("node-b", targetRev, rolledOut(2))),
			want: wantCond{metav1.ConditionTrue, ferryv1.ReasonRollingOut, []string{"node 3/3 (node-c), creating its pool"}},
		},
		{
			// A silent node is not given the target (planWave): once the
			// others run it, only it stands between the rollout and its
			// end.
			name: "a silent node waits for its agent, the others rolled out",
			in: input(abc, testPool("node-a", oldRev, rolledOut(2), heartbeatAt(t0.Add(-time.Minute))),
				testPool("node-b", targetRev, rolledOut(2)), testPool("node-c", targetRev, rolledOut(2))),
			want: wantCond{metav1.ConditionUnknown, ferryv1.ReasonAgentNotReporting,
				[]string{"The agent on node-a has not reported since", "; not given revision 2-abc while silent: node-a, once heard again"}},
		},
		{
			name: "a node never heard from waits for its agent, the others rolled out",
			in: input(abc, testPool("node-a", oldRev, created(time.Minute)),
				testPool("node-b", targetRev, rolledOut(2)), testPool("node-c", targetRev, rolledOut(2))),
			want: wantCond{metav1.ConditionUnknown, ferryv1.ReasonAgentNotReporting,
				[]string{"No agent has reported the pool on node-a in the 40s since it was made: is ferry-agent running there?" +
					"; not given revision 2-abc while silent: node-a, once heard again"}},
		},
		{
			name: "a node given the target and never heard from, the others rolled out",
			in: input(abc, testPool("node-a", targetRev, created(time.Minute)),
				testPool("node-b", targetRev, rolledOut(2)), testPool("node-c", targetRev, rolledOut(2))),
			want: wantCond{metav1.ConditionUnknown, ferryv1.ReasonAgentNotReporting,
				[]string{"No agent has reported the pool on node-a in the 40s since it was made: is ferry-agent running there?"}},
		},
		{
			name: "a node given the target and never heard from is no node to wait for",
			in: input(abc, testPool("node-a", targetRev, created(time.Minute)),
				testPool("node-b", targetRev, rolledOut(2)), testPool("node-c", oldRev, rolledOut(2))),
			want: wantCond{metav1.ConditionTrue, ferryv1.ReasonWaitingForWave, []string{"1/3 nodes updated; next: node-c"}},
		},
		{
			name: "a silent node and one never heard from",
			in: input(abc, testPool("node-a", oldRev, created(time.Minute)), testPool("node-b", oldRev, rolledOut(2), heartbeatAt(t0.Add(-time.Minute))),
				testPool("node-c", targetRev, rolledOut(2))),
			want: wantCond{metav1.ConditionUnknown, ferryv1.ReasonAgentNotReporting,
				[]string{"The agent on node-b has not reported since", ". No agent has reported the pool on node-a in the 40s",
					"not given revision 2-abc while silent: node-a and node-b, once heard again"}},
		},
		{
			name: "a silent node is not counted waiting for its wave",
			in: input(abc, testPool("node-a", oldRev, rolledOut(2), heartbeatAt(t0.Add(-time.Minute))),
				testPool("node-b", targetRev, restarting(1, 2)), testPool("node-c", oldRev, rolledOut(2))),
			want:  wantCond{metav1.ConditionTrue, ferryv1.ReasonRollingOut, nil},
			exact: "node 1/3 (node-b), process 2/2; 1 node waits for its wave",
		},
		{
			// The target ran rolled out everywhere, then node-c was
			// selected: a join restarts nothing, and completes no
			// rollout when it reports (found by a walkthrough: it read
			// RollingOut, then recorded a second RolloutComplete while
			// node-c's processes still booted).
			name: "a node joins after the rollout, its pool about to be created",
			in: rolledOutBefore(input(abc, testPool("node-a", targetRev, rolledOut(2)),
				testPool("node-b", targetRev, rolledOut(2)))),
			want:  wantCond{metav1.ConditionFalse, ferryv1.ReasonRolloutComplete, nil},
			exact: "Revision 2-abc runs on 2/3 nodes; node-c joined, with no report from the agent yet (see Ready)",
		},
		{
			name: "a node selected again after the rollout, its previous pool draining",
			in: func() rollupInput {
				in := rolledOutBefore(input(abc, testPool("node-a", targetRev, rolledOut(2)), testPool("node-b", targetRev, rolledOut(2))))
				in.AwaitingDrain = []string{"node-c"}
				return in
			}(),
			want:  wantCond{metav1.ConditionFalse, ferryv1.ReasonRolloutComplete, nil},
			exact: "Revision 2-abc runs on 2/3 nodes; node-c joined again, and gets its pool once its previous one has drained (see Ready)",
		},
		{
			name: "a node selected again mid-rollout, its previous pool draining",
			in: func() rollupInput {
				in := input(abc, testPool("node-a", targetRev, rolledOut(2)), testPool("node-b", targetRev, rolledOut(2)))
				in.AwaitingDrain = []string{"node-c"}
				return in
			}(),
			want:  wantCond{metav1.ConditionTrue, ferryv1.ReasonRollingOut, nil},
			exact: "node 3/3 (node-c), waiting for its previous pool to drain",
		},
		{
			// Found by review: it waited for good, saying only that.
			name: "a node selected again mid-rollout, its previous pool's agent silent",
			in: func() rollupInput {
				in := input(abc, testPool("node-a", targetRev, rolledOut(2)), testPool("node-b", targetRev, rolledOut(2)))
				in.AwaitingDrain = []string{"node-c"}
				in.Undrained = assessAll(targetRev, silentPreviousPool("node-c"))
				return in
			}(),
			want: wantCond{metav1.ConditionTrue, ferryv1.ReasonRollingOut, nil},
			exact: "node 3/3 (node-c), waiting for its previous pool to drain. The previous pool on node-c does not drain: " +
				"its agent has not reported since 2026-05-01T11:59:00Z (more than 40s ago), and only an agent drains a pool. " +
				"Start ferry-agent there, delete Node node-c if the node is gone, or remove the ferry.dev/drain finalizer " +
				"from ProcessPool ns/blog-node-c to have the new pool made without draining",
		},
		{
			name: "two nodes selected again after the rollout, their previous pools never reported",
			in: func() rollupInput {
				in := rolledOutBefore(input([]string{"node-a", "node-b", "node-c", "node-d"},
					testPool("node-a", targetRev, rolledOut(2)), testPool("node-b", targetRev, rolledOut(2))))
				in.AwaitingDrain = []string{"node-c", "node-d"}
				in.Undrained = assessAll(targetRev, testPool("node-c", oldRev, created(time.Minute), deleting),
					testPool("node-d", oldRev, created(time.Minute), deleting))
				return in
			}(),
			want: wantCond{metav1.ConditionFalse, ferryv1.ReasonRolloutComplete, nil},
			exact: "Revision 2-abc runs on 2/4 nodes; node-c and node-d joined again, and get their pools once their previous ones " +
				"have drained (see Ready). The previous pools on node-c and node-d do not drain: their agents are silent " +
				"(node-c's has never reported it), and only an agent drains a pool. Start ferry-agent there, delete the Nodes " +
				"that are gone, or remove the ferry.dev/drain finalizer from their ProcessPools (such as ns/blog-node-c) " +
				"to have the new pools made without draining",
		},
		{
			name: "two nodes join after the rollout, one pool not reported yet",
			in: rolledOutBefore(input(abc, testPool("node-a", targetRev, rolledOut(2)),
				testPool("node-b", targetRev))),
			want:  wantCond{metav1.ConditionFalse, ferryv1.ReasonRolloutComplete, nil},
			exact: "Revision 2-abc runs on 1/3 nodes; node-b and node-c joined, with no report from their agents yet (see Ready)",
		},
		{
			// Once it reports, its processes booting on the proven
			// target, it counts as updated: still no rollout.
			name: "a joined node boots its processes",
			in: provenIn(rolledOutBefore(input(abc, testPool("node-a", targetRev, rolledOut(2)),
				testPool("node-b", targetRev, rolledOut(2)), testPool("node-c", targetRev, rolledOut(2), counts(0, 2, 2), notReadyAtAll)))),
			want:  wantCond{metav1.ConditionFalse, ferryv1.ReasonRolloutComplete, nil},
			exact: "Revision 2-abc runs on 3/3 nodes",
		},
		{
			// A new AppGroup: its pools boot their first processes, or
			// have none yet. Nothing runs the revision: it is not
			// rolled out (unstarted), whatever the pools' counts say.
			name: "first processes booting on a target not proven",
			in: func() rollupInput {
				in := input(abc, testPool("node-a", targetRev, rolledOut(2), counts(0, 2, 2), notReadyAtAll),
					testPool("node-b", targetRev, rolledOut(0), notReadyAtAll), testPool("node-c", targetRev, rolledOut(2)))
				unstarted(in.Reports)
				return in
			}(),
			want:  wantCond{metav1.ConditionTrue, ferryv1.ReasonRollingOut, nil},
			exact: "nodes 2-3/3 (node-a: starting its processes, 0/2 ready, node-b: no process of it running yet)",
		},
		{
			// Proven: a pool whose processes all crashed is no rollout
			// (Ready says it), so unstarted is not applied (scope.reports).
			name:  "processes crashed on a proven target",
			in:    provenIn(input(abc, testPool("node-a", targetRev, rolledOut(2), counts(0, 2, 2), notReadyAtAll), testPool("node-b", targetRev, rolledOut(2)), testPool("node-c", targetRev, rolledOut(2)))),
			want:  wantCond{metav1.ConditionFalse, ferryv1.ReasonRolloutComplete, nil},
			exact: "Revision 2-abc runs on 3/3 nodes",
		},
		{
			name: "blocking strategy",
			in: func() rollupInput {
				in := input(abc, testPool("node-a", targetRev, restartingBlocking(2, 2)), testPool("node-b", oldRev, rolledOut(2)), testPool("node-c", oldRev, rolledOut(2)))
				in.AppGroup.Spec.Restart.Strategy = ferryv1.RestartBlocking
				return in
			}(),
			want: wantCond{metav1.ConditionTrue, ferryv1.ReasonRestartingBlocking, []string{"node 1/3 (node-a)"}},
		},
		{
			name: "waiting for a node to be ready before the next wave",
			in:   input(abc, testPool("node-a", targetRev, rolledOut(3), counts(2, 3, 3)), testPool("node-b", oldRev, rolledOut(2)), testPool("node-c", oldRev, rolledOut(2))),
			want: wantCond{metav1.ConditionTrue, ferryv1.ReasonWaitingForWave, []string{"1/3 nodes updated", "next: node-b", "after node-a"}},
		},
		{
			name: "waiting for a node's new processes to live the crash window",
			in: func() rollupInput {
				in := input(abc, testPool("node-a", targetRev, rolledOut(2)), testPool("node-b", oldRev, rolledOut(2)), testPool("node-c", oldRev, rolledOut(2)))
				in.Reports["node-a"].Pool.Status.Conditions[1].LastTransitionTime = metav1.NewTime(t0.Add(-time.Second))
				settle(in.Reports, t0, 10*time.Second)
				return in
			}(),
			want: wantCond{metav1.ConditionTrue, ferryv1.ReasonWaitingForWave, []string{"1/3 nodes updated", "next: node-b",
				"after node-a rolled out (new processes on node-a must first live " + crashWindow + ", the crash window)"}},
		},
		{
			// The restart is over on every node, and nothing waits for
			// the wave: the new processes serve, they only have the crash
			// window to live. Not RestartingBlocking ("the app is down").
			name: "a blocking restart over, its new processes living the crash window",
			in: func() rollupInput {
				in := input(ab, testPool("node-a", targetRev, rolledOut(2)), testPool("node-b", targetRev, rolledOut(2)))
				in.AppGroup.Spec.Restart.Strategy = ferryv1.RestartBlocking
				for _, node := range ab {
					in.Reports[node].Pool.Status.Conditions[1].LastTransitionTime = metav1.NewTime(t0.Add(-time.Second))
				}
				settle(in.Reports, t0, 10*time.Second)
				return in
			}(),
			want:  wantCond{metav1.ConditionTrue, ferryv1.ReasonProvingRevision, nil},
			exact: "2/2 nodes updated (new processes on node-a and node-b must first live " + crashWindow + ", the crash window)",
		},
		{
			// The same phase for a rolling restart: nothing rolls any more.
			name: "a rolling restart over, a process dead young replaced on a target not proven",
			in: func() rollupInput {
				in := input(ab, testPool("node-a", targetRev, rolledOut(2), counts(1, 2, 2)), testPool("node-b", targetRev, rolledOut(2)))
				settle(in.Reports, t0, 10*time.Second)
				return in
			}(),
			want:  wantCond{metav1.ConditionTrue, ferryv1.ReasonProvingRevision, nil},
			exact: "2/2 nodes updated (new processes on node-a must first all be ready and live " + crashWindow + ", the crash window)",
		},
		{
			// Resistance off: nothing returns the node, its agent
			// respawns them with backoff, and the rollout neither goes
			// on nor ends. The message said only that the new processes
			// must first be ready and live the window, for ever.
			name: "resistance off, a target not proven dying young, one replaced",
			in:   crashLoopInput(resistingNothing, dyingYoung),
			want: wantCond{metav1.ConditionTrue, ferryv1.ReasonProvingRevision, nil},
			exact: "1/1 nodes updated; on node-a a process of revision 2-abc died soon after it was ready " +
				"(exited with status 1 1.2s after it was ready), and none has lived " + crashWindow + ", the crash window, there yet; " +
				"nothing returns the node to an older revision (resistDeploymentErrors is false): " +
				"its processes are respawned, with a growing backoff from the second round of deaths, until one lives " + crashWindow + " or another revision is requested",
		},
		{
			// Its replacement ready: the same message, or the status
			// would be written at each death and each replacement, and
			// read "must first live 10s" in between.
			name: "resistance off, a target not proven dying young, between two deaths",
			in:   crashLoopInput(resistingNothing, betweenDeaths),
			want: wantCond{metav1.ConditionTrue, ferryv1.ReasonProvingRevision, nil},
			exact: "1/1 nodes updated; on node-a a process of revision 2-abc died soon after it was ready " +
				"(exited with status 1 1.2s after it was ready), and none has lived " + crashWindow + ", the crash window, there yet; " +
				"nothing returns the node to an older revision (resistDeploymentErrors is false): " +
				"its processes are respawned, with a growing backoff from the second round of deaths, until one lives " + crashWindow + " or another revision is requested",
		},
		{
			name: "a Blocking restart over, a target not proven dying young",
			in: crashLoopInput(func(in rollupInput) rollupInput {
				in.AppGroup.Spec.Restart.Strategy = ferryv1.RestartBlocking
				return in
			}, dyingYoung),
			want: wantCond{metav1.ConditionTrue, ferryv1.ReasonProvingRevision, []string{
				"1/1 nodes updated; on node-a a process of revision 2-abc died soon after it was ready",
				"nothing returns the node to an older revision (a Blocking restart resists no deployment error): its processes are respawned"}},
		},
		{
			// A new AppGroup's first revision has nothing to return to.
			name: "a first revision dying young",
			in: func() rollupInput {
				in := input([]string{"node-a"}, testPool("node-a", targetRev, rolledOut(2), dyingYoung))
				settle(in.Reports, t0, 10*time.Second)
				return in
			}(),
			want: wantCond{metav1.ConditionTrue, ferryv1.ReasonProvingRevision, []string{
				"nothing returns the node to an older revision (no older revision runs)"}},
		},
		{
			// Resisted, the node is returned once none of the target's
			// processes runs there, and the rollout halts: not a loop.
			name:  "resisted, a target not proven dying young, with a revision to return to",
			in:    crashLoopInput(func(in rollupInput) rollupInput { return in }, dyingYoung),
			want:  wantCond{metav1.ConditionTrue, ferryv1.ReasonProvingRevision, nil},
			exact: "1/1 nodes updated (new processes on node-a must first all be ready and live " + crashWindow + ", the crash window)",
		},
		{
			// A process of it lived the window there: a death since is
			// no loop of a revision that never stays up.
			name:  "resistance off, a target that lasted on the node, dying young since",
			in:    crashLoopInput(resistingNothing, dyingYoung, lasted),
			want:  wantCond{metav1.ConditionTrue, ferryv1.ReasonProvingRevision, nil},
			exact: "1/1 nodes updated (new processes on node-a must first all be ready and live " + crashWindow + ", the crash window)",
		},
		{
			// The crash of an earlier revision is no news of this one.
			name:  "resistance off, a young death of another revision",
			in:    crashLoopInput(resistingNothing, dyingYoung, spawnsOf(oldRev)),
			want:  wantCond{metav1.ConditionTrue, ferryv1.ReasonProvingRevision, nil},
			exact: "1/1 nodes updated (new processes on node-a must first all be ready and live " + crashWindow + ", the crash window)",
		},
		{
			// Its wave waits on it for ever, too.
			name: "resistance off, the first wave dying young",
			in: func() rollupInput {
				in := resistingNothing(input(abc, testPool("node-a", targetRev, rolledOut(2), dyingYoung),
					testPool("node-b", oldRev, rolledOut(2)), testPool("node-c", oldRev, rolledOut(2))))
				settle(in.Reports, t0, 10*time.Second)
				return in
			}(),
			want: wantCond{metav1.ConditionTrue, ferryv1.ReasonWaitingForWave, nil},
			exact: "1/3 nodes updated; next: node-b, after node-a rolled out; on node-a a process of revision 2-abc died soon " +
				"after it was ready (exited with status 1 1.2s after it was ready), and none has lived " + crashWindow + ", the crash window, " +
				"there yet; nothing returns the node to an older revision (resistDeploymentErrors is false): " +
				"its processes are respawned, with a growing backoff from the second round of deaths, until one lives " + crashWindow + " or another revision is requested",
		},
		{
			// The nodes are listed, the first one's reason quoted; a node
			// still settling is said to settle.
			name: "resistance off, a wave of all the nodes, two dying young",
			in: func() rollupInput {
				in := resistingNothing(input(abc, testPool("node-a", targetRev, rolledOut(2), dyingYoung),
					testPool("node-b", targetRev, rolledOut(2), betweenDeaths), testPool("node-c", targetRev, rolledOut(2), counts(1, 2, 2))))
				settle(in.Reports, t0, 10*time.Second)
				return in
			}(),
			want: wantCond{metav1.ConditionTrue, ferryv1.ReasonProvingRevision, nil},
			exact: "3/3 nodes updated (new processes on node-c must first all be ready and live " + crashWindow + ", the crash window); " +
				"on node-a and node-b a process of revision 2-abc died soon after it was ready (node-a: exited with status 1 " +
				"1.2s after it was ready), and none has lived " + crashWindow + ", the crash window, there yet; nothing returns these nodes " +
				"to an older revision (resistDeploymentErrors is false): " +
				"their processes are respawned, with a growing backoff from the second round of deaths, until one lives " + crashWindow + " or another revision is requested",
		},
		{
			// Resisted, but proven on node-a: node-b stays on it, and
			// the rollout reads complete while Ready says node-b is not
			// ready. The message said only where the revision runs.
			name: "a proven target dying young on the last node",
			in: provenIn(input(ab, testPool("node-a", targetRev, rolledOut(2), lasted),
				testPool("node-b", targetRev, rolledOut(2), dyingYoung))),
			want: wantCond{metav1.ConditionFalse, ferryv1.ReasonRolloutComplete, nil},
			exact: "Revision 2-abc runs on 2/2 nodes; on node-b a process of revision 2-abc died soon after it was ready " +
				"(exited with status 1 1.2s after it was ready), and none has lived " + crashWindow + ", the crash window, there yet; " +
				"nothing returns the node to an older revision (revision 2-abc lasted on a node before: status.provenRevision): " +
				"its processes are respawned, with a growing backoff from the second round of deaths, until one lives " + crashWindow + " or another revision is requested",
		},
		{
			name: "a proven target dying young on the last node, between two deaths",
			in: provenIn(input(ab, testPool("node-a", targetRev, rolledOut(2), lasted),
				testPool("node-b", targetRev, rolledOut(2), betweenDeaths))),
			want: wantCond{metav1.ConditionFalse, ferryv1.ReasonRolloutComplete, nil},
			exact: "Revision 2-abc runs on 2/2 nodes; on node-b a process of revision 2-abc died soon after it was ready " +
				"(exited with status 1 1.2s after it was ready), and none has lived " + crashWindow + ", the crash window, there yet; " +
				"nothing returns the node to an older revision (revision 2-abc lasted on a node before: status.provenRevision): " +
				"its processes are respawned, with a growing backoff from the second round of deaths, until one lives " + crashWindow + " or another revision is requested",
		},
		{
			// What the rollout reads of a loop turns on the target being
			// proven, not on the setting (nor the strategy) that leaves
			// the node on it: complete, as resisted above, the loop said.
			name: "resistance off, a proven target dying young on the last node",
			in: provenIn(resistingNothing(input(ab, testPool("node-a", targetRev, rolledOut(2), lasted),
				testPool("node-b", targetRev, rolledOut(2), dyingYoung)))),
			want: wantCond{metav1.ConditionFalse, ferryv1.ReasonRolloutComplete, nil},
			exact: "Revision 2-abc runs on 2/2 nodes; on node-b a process of revision 2-abc died soon after it was ready " +
				"(exited with status 1 1.2s after it was ready), and none has lived " + crashWindow + ", the crash window, there yet; " +
				"nothing returns the node to an older revision (resistDeploymentErrors is false): " +
				"its processes are respawned, with a growing backoff from the second round of deaths, until one lives " + crashWindow + " or another revision is requested",
		},
		{
			name: "resistance off, a proven target dying young on node-b, a replacement booting, node-c waiting",
			in: provenIn(resistingNothing(input(abc, testPool("node-a", targetRev, rolledOut(2), lasted),
				testPool("node-b", targetRev, rolledOut(2), dyingYoung), testPool("node-c", oldRev, rolledOut(2))))),
			want: wantCond{metav1.ConditionTrue, ferryv1.ReasonWaitingForWave, []string{
				"2/3 nodes updated; next: node-c, after node-b rolled out; on node-b a process of revision 2-abc died soon",
				"(resistDeploymentErrors is false)"}},
		},
		{
			name: "a Blocking restart, a proven target dying young on the last node",
			in: func() rollupInput {
				in := provenIn(input(ab, testPool("node-a", targetRev, rolledOut(2), lasted),
					testPool("node-b", targetRev, rolledOut(2), dyingYoung)))
				in.AppGroup.Spec.Restart.Strategy = ferryv1.RestartBlocking
				return in
			}(),
			want: wantCond{metav1.ConditionFalse, ferryv1.ReasonRolloutComplete, []string{
				"Revision 2-abc runs on 2/2 nodes; on node-b a process of revision 2-abc died soon after it was ready",
				"(a Blocking restart resists no deployment error)"}},
		},
		{
			// Proven, a loop reads the same whatever the strategy: the
			// wave waits for the node while a replacement boots.
			name: "a Blocking restart, a proven target dying young on node-b, a replacement booting, node-c waiting",
			in: func() rollupInput {
				in := provenIn(input(abc, testPool("node-a", targetRev, rolledOut(2), lasted),
					testPool("node-b", targetRev, rolledOut(2), dyingYoung), testPool("node-c", oldRev, rolledOut(2))))
				in.AppGroup.Spec.Restart.Strategy = ferryv1.RestartBlocking
				return in
			}(),
			want: wantCond{metav1.ConditionTrue, ferryv1.ReasonWaitingForWave, nil},
			exact: "2/3 nodes updated; next: node-c, after node-b rolled out; on node-b a process of revision 2-abc died soon " +
				"after it was ready (exited with status 1 1.2s after it was ready), and none has lived " + crashWindow + ", the crash window, " +
				"there yet; nothing returns the node to an older revision (a Blocking restart resists no deployment error): " +
				"its processes are respawned, with a growing backoff from the second round of deaths, until one lives " + crashWindow + " or another revision is requested",
		},
		{
			// One process: its death leaves none of the target running,
			// and its agent reports the spawns failing (FailsTarget).
			// The loop read RolloutHalted then, "the rollout goes on
			// once it starts there", and ProvingRevision once the
			// replacement was ready: a flip and a RolloutHalted at each
			// death. It reads as between deaths, and no halt is
			// recorded (haltRecord).
			name: "resistance off, one process of a target not proven dead young, none running",
			in:   crashLoopInput(func(in rollupInput) rollupInput { return recorded(resistingNothing(in)) }, diedAlone),
			want: wantCond{metav1.ConditionTrue, ferryv1.ReasonProvingRevision, nil},
			exact: "1/1 nodes updated; on node-a a process of revision 2-abc died soon after it was ready " +
				"(exited with status 1 1.2s after it was ready), and none has lived " + crashWindow + ", the crash window, there yet; " +
				"nothing returns the node to an older revision (resistDeploymentErrors is false): " +
				"its processes are respawned, with a growing backoff from the second round of deaths, until one lives " + crashWindow + " or another revision is requested",
		},
		{
			name: "resistance off, one process of a target not proven dead young, its replacement booting",
			in:   crashLoopInput(func(in rollupInput) rollupInput { return recorded(resistingNothing(in)) }, bootsAlone),
			want: wantCond{metav1.ConditionTrue, ferryv1.ReasonProvingRevision, nil},
			exact: "1/1 nodes updated; on node-a a process of revision 2-abc died soon after it was ready " +
				"(exited with status 1 1.2s after it was ready), and none has lived " + crashWindow + ", the crash window, there yet; " +
				"nothing returns the node to an older revision (resistDeploymentErrors is false): " +
				"its processes are respawned, with a growing backoff from the second round of deaths, until one lives " + crashWindow + " or another revision is requested",
		},
		{
			name: "resistance off, one process of a target not proven dead young, its replacement ready",
			in:   crashLoopInput(func(in rollupInput) rollupInput { return recorded(resistingNothing(in)) }, readyAlone),
			want: wantCond{metav1.ConditionTrue, ferryv1.ReasonProvingRevision, nil},
			exact: "1/1 nodes updated; on node-a a process of revision 2-abc died soon after it was ready " +
				"(exited with status 1 1.2s after it was ready), and none has lived " + crashWindow + ", the crash window, there yet; " +
				"nothing returns the node to an older revision (resistDeploymentErrors is false): " +
				"its processes are respawned, with a growing backoff from the second round of deaths, until one lives " + crashWindow + " or another revision is requested",
		},
		{
			// A wave waits on it, and no halt holds the wave: a record
			// stood between deaths too (the node not rolled out).
			name: "resistance off, the first wave of one process dead young, none running",
			in: func() rollupInput {
				in := resistingNothing(input(abc, testPool("node-a", targetRev, rolledOut(1), diedAlone),
					testPool("node-b", oldRev, rolledOut(1)), testPool("node-c", oldRev, rolledOut(1))))
				unstarted(in.Reports)
				settle(in.Reports, t0, 10*time.Second)
				return recorded(in)
			}(),
			want: wantCond{metav1.ConditionTrue, ferryv1.ReasonWaitingForWave, nil},
			exact: "1/3 nodes updated; next: node-b, after node-a rolled out; on node-a a process of revision 2-abc died soon " +
				"after it was ready (exited with status 1 1.2s after it was ready), and none has lived " + crashWindow + ", the crash window, " +
				"there yet; nothing returns the node to an older revision (resistDeploymentErrors is false): " +
				"its processes are respawned, with a growing backoff from the second round of deaths, until one lives " + crashWindow + " or another revision is requested",
		},
		{
			name: "a proven target of one process dead young on the last node, none running",
			in: provenIn(input(ab, testPool("node-a", targetRev, rolledOut(1), lasted),
				testPool("node-b", targetRev, rolledOut(1), diedAlone))),
			want: wantCond{metav1.ConditionFalse, ferryv1.ReasonRolloutComplete, nil},
			exact: "Revision 2-abc runs on 2/2 nodes; on node-b a process of revision 2-abc died soon after it was ready " +
				"(exited with status 1 1.2s after it was ready), and none has lived " + crashWindow + ", the crash window, there yet; " +
				"nothing returns the node to an older revision (revision 2-abc lasted on a node before: status.provenRevision): " +
				"its processes are respawned, with a growing backoff from the second round of deaths, until one lives " + crashWindow + " or another revision is requested",
		},
		{
			// The wave waits for node-b (planWave), and says so, as where
			// the target is not proven: "next: node-c" alone left out
			// what it waits for.
			name: "a proven target of one process dead young on node-b, none running, node-c waiting",
			in: provenIn(input(abc, testPool("node-a", targetRev, rolledOut(1), alone, lasted),
				testPool("node-b", targetRev, rolledOut(1), diedAlone), testPool("node-c", oldRev, rolledOut(1), alone))),
			want: wantCond{metav1.ConditionTrue, ferryv1.ReasonWaitingForWave, nil},
			exact: "2/3 nodes updated; next: node-c, after node-b rolled out; on node-b a process of revision 2-abc died soon " +
				"after it was ready (exited with status 1 1.2s after it was ready), and none has lived " + crashWindow + ", the crash window, " +
				"there yet; nothing returns the node to an older revision (revision 2-abc lasted on a node before: " +
				"status.provenRevision): its processes are respawned, with a growing backoff from the second round of deaths, until one lives " + crashWindow + " or another revision is requested",
		},
		{
			name: "a proven target dying young on node-b, a replacement booting, node-c waiting",
			in: provenIn(input(abc, testPool("node-a", targetRev, rolledOut(2), lasted),
				testPool("node-b", targetRev, rolledOut(2), dyingYoung), testPool("node-c", oldRev, rolledOut(2)))),
			want: wantCond{metav1.ConditionTrue, ferryv1.ReasonWaitingForWave, []string{
				"2/3 nodes updated; next: node-c, after node-b rolled out; on node-b a process of revision 2-abc died soon"}},
		},
		{
			// Every process ready, the node rolled out (no crash window
			// for a proven target): the wave does not wait for it.
			name: "a proven target dying young on node-b, between two deaths, node-c waiting",
			in: provenIn(input(abc, testPool("node-a", targetRev, rolledOut(2), lasted),
				testPool("node-b", targetRev, rolledOut(2), betweenDeaths), testPool("node-c", oldRev, rolledOut(2)))),
			want: wantCond{metav1.ConditionTrue, ferryv1.ReasonWaitingForWave, []string{
				"2/3 nodes updated; next: node-c; on node-b a process of revision 2-abc died soon"}},
		},
		{
			// Mid-restart (old processes serve, and the halt says so), no
			// loop is said: the halt names the death, and what the rollout
			// waits for is not that a process starts (it did) but that one
			// lives.
			name: "resistance off, halted mid-restart by a death soon after ready",
			in: resistingNothing(input(abc, testPool("node-a", targetRev, restarting(0, 2), crashedInWindow),
				testPool("node-b", oldRev, rolledOut(2)), testPool("node-c", oldRev, rolledOut(2)))),
			want:  wantCond{metav1.ConditionFalse, ferryv1.ReasonRolloutHalted, nil},
			exact: diedMidRestart,
		},
		{
			// Between two retries a process of the target spawns beside
			// the two older ones that serve: the node is not failing, and
			// the halt is the remembered one. It reads as at the retries
			// (found by review: the older processes went unsaid between
			// them, and each flip was a status write and a new "Waiting:
			// halted" line of `restart --wait`).
			name: "resistance off, halted mid-restart by a death soon after ready, a retry spawning",
			in: func() rollupInput {
				in := resistingNothing(input(abc, testPool("node-a", targetRev, restarting(0, 2), crashedInWindow, counts(2, 1, 3),
					func(p *ferryv1.ProcessPool) {
						p.Status.Processes = []ferryv1.ProcessInfo{{PID: 1, Revision: oldRev, State: ferryv1.ProcessReady},
							{PID: 2, Revision: oldRev, State: ferryv1.ProcessReady}, {PID: 3, Revision: targetRev, State: ferryv1.ProcessSpawning}}
					}),
					testPool("node-b", oldRev, rolledOut(2)), testPool("node-c", oldRev, rolledOut(2))))
				in = withHalt(in, "node-a", "exited with status 1 1.2s after it was ready")
				in.Halt.Resisted = false
				return in
			}(),
			want:  wantCond{metav1.ConditionFalse, ferryv1.ReasonRolloutHalted, nil},
			exact: diedMidRestart,
		},
		{
			// The same from an agent that reports no process table: of
			// the two processes ready, one at most runs the target, so
			// the other is older (found by review: with one of the target
			// running, the counts were not read, and the message said no
			// older process served, as kubectl ferry status did not).
			// The pool's no-table report is on purpose (noTable):
			// testPool gives every other pool one matching its counts.
			name: "resistance off, halted mid-restart by a death soon after ready, a retry spawning, no process table",
			in: func() rollupInput {
				in := resistingNothing(input(abc, testPool("node-a", targetRev, restarting(0, 2), crashedInWindow, counts(2, 1, 3), noTable),
					testPool("node-b", oldRev, rolledOut(2)), testPool("node-c", oldRev, rolledOut(2))))
				in = withHalt(in, "node-a", "exited with status 1 1.2s after it was ready")
				in.Halt.Resisted = false
				return in
			}(),
			want:  wantCond{metav1.ConditionFalse, ferryv1.ReasonRolloutHalted, nil},
			exact: diedMidRestart,
		},
		{
			// Resisted, the node is returned once none of the target's
			// processes runs there: nothing retries it, and no process of
			// it is waited for.
			name: "resisted, halted mid-restart by a death soon after ready",
			in: input(abc, testPool("node-a", targetRev, restarting(0, 2), crashedInWindow),
				testPool("node-b", oldRev, rolledOut(2)), testPool("node-c", oldRev, rolledOut(2))),
			want: wantCond{metav1.ConditionFalse, ferryv1.ReasonRolloutHalted, nil},
			exact: "Rollout of revision 2-abc halted at 0/3 nodes updated: it died on node-a soon after it was ready " +
				"(exited with status 1 1.2s after it was ready), older processes serving there meanwhile; change the " +
				"ferry.dev/revision annotation or the app to start a new rollout",
		},
		{
			// A Blocking restart resists nothing, resistDeploymentErrors
			// left on: the node stays on the target, as with resistance
			// off, and the halt says its agent retries it: the same words
			// but that no older process serves there between its deaths
			// (the restart stopped them all before it spawned the target;
			// TestHaltReadsAlikeBetweenYoungDeaths), its counts those of
			// a restart over (0 of 0 updated) but for RollingRestart and
			// restartProgress. With none of it running, the restart is
			// at its very end: its agent reports that only in passing,
			// if at all (restartingBlocking).
			name: "a Blocking restart, its old processes stopped, halted mid-restart by a death soon after ready",
			in: func() rollupInput {
				in := input(abc, testPool("node-a", targetRev, restartingBlocking(0, 2), crashedInWindow),
					testPool("node-b", oldRev, rolledOut(2)), testPool("node-c", oldRev, rolledOut(2)))
				in.AppGroup.Spec.Restart.Strategy = ferryv1.RestartBlocking
				return in
			}(),
			want: wantCond{metav1.ConditionFalse, ferryv1.ReasonRolloutHalted, nil},
			exact: "Rollout of revision 2-abc halted at 0/3 nodes updated: it died on node-a soon after it was ready " +
				"(exited with status 1 1.2s after it was ready), with no older process to serve between its deaths; its agent retries it " +
				"with backoff, at most a minute apart, " +
				"and the rollout goes on once a process of it lives " + crashWindow + ", the crash window, there; " +
				"or change the ferry.dev/revision annotation or the app to start a new rollout",
		},
		{
			// One process of the target still boots there: the restart
			// goes on, and halts nothing.
			name: "a Blocking restart, its old processes stopped, a death soon after ready, one of it booting",
			in: func() rollupInput {
				in := input(abc, testPool("node-a", targetRev, restartingBlocking(1, 2), crashedInWindow),
					testPool("node-b", oldRev, rolledOut(2)), testPool("node-c", oldRev, rolledOut(2)))
				in.AppGroup.Spec.Restart.Strategy = ferryv1.RestartBlocking
				return in
			}(),
			want: wantCond{metav1.ConditionTrue, ferryv1.ReasonRestartingBlocking, []string{"node 1/3 (node-a)"}},
		},
		{
			// The strategy turned Blocking while the node's Rolling
			// restart was under way (the agent keeps the strategy it
			// started with), its old processes serving: the same halt.
			name: "Blocking now, a Rolling restart under way, halted mid-restart by a death soon after ready",
			in: func() rollupInput {
				in := input(abc, testPool("node-a", targetRev, restarting(0, 2), crashedInWindow),
					testPool("node-b", oldRev, rolledOut(2)), testPool("node-c", oldRev, rolledOut(2)))
				in.AppGroup.Spec.Restart.Strategy = ferryv1.RestartBlocking
				return in
			}(),
			want: wantCond{metav1.ConditionFalse, ferryv1.ReasonRolloutHalted, []string{
				"it died on node-a soon after it was ready (exited with status 1 1.2s after it was ready), older processes serving there meanwhile; " +
					"its agent retries it with backoff, at most a minute apart, and the rollout goes on once a process of it " +
					"lives " + crashWindow + ", the crash window, there; or change the ferry.dev/revision annotation"}},
		},
		{
			name: "a node that left processes behind (resistance off) does not hold the next wave",
			in:   input(abc, testPool("node-a", targetRev, incomplete(1, 2)), testPool("node-b", oldRev, rolledOut(2)), testPool("node-c", oldRev, rolledOut(2))),
			want: wantCond{metav1.ConditionTrue, ferryv1.ReasonWaitingForWave, []string{"0/3 nodes updated", "next: node-b"}},
		},
		{
			// Given the target, its agent stopped before it spawned: its
			// 0 of 0 processes are no start.
			name: "a node whose agent stopped mid-wave",
			in: func() rollupInput {
				in := input(ab, testPool("node-a", targetRev, rolledOut(0), agentStopping), testPool("node-b", oldRev, rolledOut(2)))
				unstarted(in.Reports) // the target is not proven
				return in
			}(),
			want: wantCond{metav1.ConditionTrue, ferryv1.ReasonRollingOut, nil},
			exact: "node 1/2 (node-a), its agent stopped (see Ready); the node goes on once its agent is back; " +
				"1 node waits for its wave",
		},
		{
			name: "a node on the target with no process yet",
			in: func() rollupInput {
				in := input(ab, testPool("node-a", targetRev, rolledOut(0)), testPool("node-b", oldRev, rolledOut(2)))
				unstarted(in.Reports)
				return in
			}(),
			want:  wantCond{metav1.ConditionTrue, ferryv1.ReasonRollingOut, nil},
			exact: "node 1/2 (node-a), no process of it running yet; 1 node waits for its wave",
		},
		{
			name: "a rollout that left processes behind says so",
			in: resistingNothing(input(abc, testPool("node-a", targetRev, incomplete(1, 2)), testPool("node-b", targetRev, rolledOut(2)),
				testPool("node-c", targetRev, rolledOut(2)))),
			want: wantCond{metav1.ConditionFalse, ferryv1.ReasonRolloutIncomplete, nil},
			exact: "Revision 2-abc runs on 2/3 nodes; on node-a some processes could not be replaced and keep serving an older " +
				"revision (resistDeploymentErrors is false); change the ferry.dev/revision annotation or the app to try again",
		},
		{
			// Turned on since, which does not take them back: the
			// restart was not resisted then (found by review: the
			// message read "is false" of a field now true).
			name: "a rollout that left processes behind, resistDeploymentErrors turned on since",
			in: func() rollupInput {
				in := input(abc, testPool("node-a", targetRev, incomplete(1, 2)), testPool("node-b", targetRev, rolledOut(2)),
					testPool("node-c", targetRev, rolledOut(2)))
				in.AppGroup.Spec.Restart.ResistDeploymentErrors = ptr.To(true)
				return in
			}(),
			want: wantCond{metav1.ConditionFalse, ferryv1.ReasonRolloutIncomplete, nil},
			exact: "Revision 2-abc runs on 2/3 nodes; on node-a some processes could not be replaced and keep serving an older " +
				"revision (resistDeploymentErrors was false when revision 2-abc rolled); change the ferry.dev/revision " +
				"annotation or the app to try again",
		},
		{
			name: "halted by resistance",
			in:   input(abc, testPool("node-a", targetRev, rolledOut(2)), testPool("node-b", targetRev, rolledOut(2), resists(targetRev, "x", "")), testPool("node-c", oldRev, rolledOut(2))),
			want: wantCond{metav1.ConditionFalse, ferryv1.ReasonRolloutHalted, []string{"2-abc halted", "1/3 nodes updated", "node-b", "ferry.dev/revision"}},
		},
		{
			name: "halted by a node that cannot spawn the target",
			in:   input(abc, testPool("node-a", targetRev, rolledOut(2)), testPool("node-b", targetRev, failsSpawns(targetRev, "the app failed to load")), testPool("node-c", oldRev, rolledOut(2))),
			want: wantCond{metav1.ConditionFalse, ferryv1.ReasonRolloutHalted, []string{"2-abc halted", "1/3 nodes updated",
				"it failed to spawn on node-b (the app failed to load), with no older process to keep serving", "ferry.dev/revision"}},
		},
		{
			// The agent counts a process that dies in its first seconds
			// as a failed spawn; the message says what happened.
			name: "halted by a node where the target dies soon after it is ready",
			in: input(abc, testPool("node-a", targetRev, rolledOut(2)), testPool("node-b", targetRev, failsSpawns(targetRev, "exited with status 1 1.2s after it was ready")),
				testPool("node-c", oldRev, rolledOut(2))),
			want: wantCond{metav1.ConditionFalse, ferryv1.ReasonRolloutHalted, []string{
				"it died on node-b soon after it was ready (exited with status 1 1.2s after it was ready)"}},
		},
		{
			// A new AppGroup: nothing older to return the nodes to, so
			// their agents go on trying.
			name: "halted by nodes that cannot spawn a first revision",
			in: input(abc, testPool("node-a", targetRev, failsSpawns(targetRev, "the app failed to load")), testPool("node-b", targetRev, failsSpawns(targetRev, "the app failed to load")),
				testPool("node-c", targetRev, failsSpawns(targetRev, "the app failed to load"))),
			want: wantCond{metav1.ConditionFalse, ferryv1.ReasonRolloutHalted, []string{"0/3 nodes updated", "it failed to spawn on node-a, node-b and node-c (the app failed to load)",
				"their agents retry it with backoff, at most a minute apart, and the rollout goes on once it starts there; or change the ferry.dev/revision annotation"}},
		},
		{
			// Between two retries a process of it spawns: the halt is the
			// remembered one, and still retried (found by review: the
			// message flipped at every retry).
			name: "halted by a first revision, a retry spawning",
			in: func() rollupInput {
				in := input(abc, testPool("node-a", targetRev, rolledOut(1), counts(0, 1, 1), notReadyAtAll, crashedInWindow),
					testPool("node-b", targetRev, failsSpawns(targetRev, "the app failed to load")),
					testPool("node-c", targetRev, failsSpawns(targetRev, "the app failed to load")))
				unstarted(in.Reports)
				in = withHalt(in, "node-a", "the app failed to load")
				in.Halt.Resisted = false
				return in
			}(),
			want: wantCond{metav1.ConditionFalse, ferryv1.ReasonRolloutHalted, []string{"it failed to spawn on node-b and node-c (the app failed to load)",
				"their agents retry it with backoff"}},
		},
		{
			name: "halted by a first revision remembered, a retry spawning on every node",
			in: func() rollupInput {
				in := input(abc, testPool("node-a", targetRev, rolledOut(1), counts(0, 1, 1), notReadyAtAll, crashedInWindow))
				unstarted(in.Reports)
				in.Nodes = []string{"node-a"}
				in = withHalt(in, "node-a", "the app failed to load")
				in.Halt.Resisted = false
				return in
			}(),
			want: wantCond{metav1.ConditionFalse, ferryv1.ReasonRolloutHalted, []string{"it failed to spawn on node-a",
				"; its agent retries it with backoff, at most a minute apart, and the rollout goes on once it starts there"}},
		},
		{
			// The retry's process is ready between two failures, the
			// other spawning: the target serves there, so the message
			// says nothing of older processes (found by review: it read
			// "with no older process to keep serving", as if nothing
			// served).
			name: "halted by a first revision remembered, a retry's process ready",
			in: func() rollupInput {
				in := input([]string{"node-a"}, testPool("node-a", targetRev, rolledOut(2), counts(1, 2, 2), notReady,
					spawnFailed("the app failed to load"), func(p *ferryv1.ProcessPool) {
						p.Status.Processes = []ferryv1.ProcessInfo{{PID: 1, Revision: targetRev, State: ferryv1.ProcessReady},
							{PID: 2, Revision: targetRev, State: ferryv1.ProcessSpawning}}
					}))
				in = withHalt(in, "node-a", "the app failed to load")
				in.Halt.Resisted = false
				return in
			}(),
			want: wantCond{metav1.ConditionFalse, ferryv1.ReasonRolloutHalted, nil},
			exact: "Rollout of revision 2-abc halted at 1/1 nodes updated: it failed to spawn on node-a (the app failed to load); " +
				"its agent retries it with backoff, at most a minute apart, and the rollout goes on once it starts there; " +
				"or change the ferry.dev/revision annotation or the app to start a new rollout",
		},
		{
			// Its agent silent, its last report's older processes are
			// not said to serve now (as kubectl ferry status does not),
			// nor its agent to retry it: it is not heard from, steady
			// while it is silent. (Seen failing before: "its agent
			// retries it with backoff".)
			name: "halted by a node remembered whose agent is silent, older processes in its last report",
			in: func() rollupInput {
				in := resistingNothing(input(abc, testPool("node-a", targetRev, restarting(1, 2), crashedInWindow,
					heartbeatAt(t0.Add(-time.Minute))),
					testPool("node-b", oldRev, rolledOut(2)), testPool("node-c", oldRev, rolledOut(2))))
				in = withHalt(in, "node-a", "exited with status 1 1.2s after it was ready")
				in.Halt.Resisted = false
				return in
			}(),
			want: wantCond{metav1.ConditionFalse, ferryv1.ReasonRolloutHalted, nil},
			exact: "Rollout of revision 2-abc halted at 0/3 nodes updated: it died on node-a soon after it was ready " +
				"(exited with status 1 1.2s after it was ready), whose agent is not heard from; " +
				"change the ferry.dev/revision annotation or the app to start a new rollout",
		},
		{
			// A proven target failing on the node that resisted it and
			// on another: the manager returns the first
			// (returnsFromTarget), only the other's agent retries
			// (found by review: both were counted, "their agents").
			name: "halted by a proven target failing where it was resisted and elsewhere",
			in: withHalt(provenIn(input(abc, testPool("node-a", targetRev, failsSpawns(targetRev, "the app failed to load")),
				testPool("node-b", targetRev, failsSpawns(targetRev, "the app failed to load")),
				testPool("node-c", oldRev, rolledOut(2)))), "node-a", "the app failed to load"),
			want: wantCond{metav1.ConditionFalse, ferryv1.ReasonRolloutHalted, []string{"it failed to spawn on node-a and node-b",
				"; its agent retries it with backoff, at most a minute apart, and the rollout goes on once it starts there"}},
		},
		{
			// The halt remembered was resisted, but no older revision
			// runs to return its node to: its agent retries (found by
			// review: a resisted halt was taken for a returned node).
			name: "halted by a resisted halt remembered, a retry spawning, nothing older",
			in: func() rollupInput {
				in := input(abc, testPool("node-a", targetRev, rolledOut(1), counts(0, 1, 1), notReadyAtAll, crashedInWindow))
				unstarted(in.Reports)
				in.Nodes = []string{"node-a"}
				return withHalt(in, "node-a", "the app failed to load")
			}(),
			want: wantCond{metav1.ConditionFalse, ferryv1.ReasonRolloutHalted, []string{"it failed to spawn on node-a",
				"; its agent retries it with backoff, at most a minute apart, and the rollout goes on once it starts there"}},
		},
		{
			name: "halted by a node that no longer shows it: gone",
			in: withHalt(input(abc, testPool("node-a", targetRev, rolledOut(2)), testPool("node-c", oldRev, rolledOut(2))),
				"node-d", "exited with status 1"),
			want: wantCond{metav1.ConditionFalse, ferryv1.ReasonRolloutHalted, []string{
				"2-abc halted", "1/3 nodes updated", "failed to spawn on node-d (exited with status 1), which is no longer selected", "ferry.dev/revision"}},
		},
		{
			name: "halted by a node that no longer shows it: back on the last revision rolled out",
			in: withHalt(input(abc, testPool("node-a", targetRev, rolledOut(2)), testPool("node-b", oldRev, rolledOut(2)), testPool("node-c", oldRev, rolledOut(2))),
				"node-b", "exited with status 1"),
			want: wantCond{metav1.ConditionFalse, ferryv1.ReasonRolloutHalted, []string{"it failed to spawn on node-b (exited with status 1), which now runs revision 1-abc"}},
		},
		{
			name: "halted by a node that no longer shows it, where it died soon after it was ready",
			in: withHalt(input(abc, testPool("node-a", targetRev, rolledOut(2)), testPool("node-b", oldRev, rolledOut(2)), testPool("node-c", oldRev, rolledOut(2))),
				"node-b", "exited with status 1 1.2s after it was ready"),
			want: wantCond{metav1.ConditionFalse, ferryv1.ReasonRolloutHalted, []string{
				"it died on node-b soon after it was ready (exited with status 1 1.2s after it was ready), which now runs revision 1-abc"}},
		},
		{
			name: "a halt of an earlier target is over",
			in: func() rollupInput {
				in := withHalt(input(abc, testPool("node-a", targetRev, rolledOut(2)), testPool("node-b", targetRev, rolledOut(2)), testPool("node-c", targetRev, rolledOut(2))),
					"node-b", "x")
				in.Halt.Revision = oldRev
				return in
			}(),
			want: wantCond{metav1.ConditionFalse, ferryv1.ReasonRolloutComplete, nil},
		},
		{
			name: "a silent pool on the target is Unknown",
			in:   input(abc, testPool("node-a", targetRev, rolledOut(2)), testPool("node-b", targetRev, rolledOut(2), heartbeatAt(t0.Add(-time.Minute))), testPool("node-c", targetRev, rolledOut(2))),
			want: wantCond{metav1.ConditionUnknown, ferryv1.ReasonAgentNotReporting, []string{"node-b"}},
		},
		{
			name: "nodes still waiting are known whatever the silent one says",
			in:   input(abc, testPool("node-a", targetRev, rolledOut(2), heartbeatAt(t0.Add(-time.Minute))), testPool("node-b", oldRev, rolledOut(2)), testPool("node-c", oldRev, rolledOut(2))),
			want: wantCond{metav1.ConditionTrue, ferryv1.ReasonWaitingForWave, []string{"after node-a"}},
		},
		{
			// Nothing was rolled out: not RolloutComplete.
			name:  "no nodes",
			in:    input(nil),
			want:  wantCond{metav1.ConditionFalse, ferryv1.ReasonNoNodes, nil},
			exact: "No node is selected, so there is nothing to roll out (see Ready)",
		},
		{
			// Nor with the port taken on every selected node.
			name: "the port taken on every selected node",
			in: func() rollupInput {
				in := input(nil)
				in.PortLost = map[string]types.NamespacedName{"node-a": {Namespace: "shop", Name: "cart"}}
				return in
			}(),
			want:  wantCond{metav1.ConditionFalse, ferryv1.ReasonPortConflict, nil},
			exact: "No node to roll: another AppGroup has listen.port on every selected node, so there is nothing to roll out (see Ready)",
		},
		{
			name: "never a valid revision",
			in:   withRevisionErr(input(abc), "bad", true),
			want: wantCond{metav1.ConditionUnknown, ferryv1.ReasonInvalidRevision, []string{"bad", "nothing is rolled out"}},
		},
		{
			name: "an invalid revision after a valid one: the last valid stays the target",
			in: withRevisionErr(input(abc, testPool("node-a", targetRev, rolledOut(2)), testPool("node-b", targetRev, rolledOut(2)),
				testPool("node-c", oldRev, rolledOut(2))), "annotation ferry.dev/revision is empty", false),
			want: wantCond{metav1.ConditionFalse, ferryv1.ReasonInvalidRevision, nil},
			exact: "annotation ferry.dev/revision is empty; revision 2-abc stays the target until it is fixed; " +
				"node-c, not on it yet, is given no revision until then",
		},
		{
			// Found by review: the message said only that the target
			// stays, with RESTARTING False, while the rollout stood still
			// at 1/3 nodes (no wave starts while the annotation is
			// invalid).
			name: "an invalid revision mid-rollout: the nodes not on the target are named",
			in: withRevisionErr(input(abc, testPool("node-a", targetRev, restarting(1, 2)), testPool("node-b", oldRev, rolledOut(2)),
				testPool("node-c", oldRev, rolledOut(2))), "annotation ferry.dev/revision is empty", false),
			want: wantCond{metav1.ConditionFalse, ferryv1.ReasonInvalidRevision, nil},
			exact: "annotation ferry.dev/revision is empty; revision 2-abc stays the target until it is fixed; " +
				"node-b and node-c, not on it yet, are given no revision until then",
		},
		{
			name: "an invalid revision once every node runs the target",
			in: withRevisionErr(input(abc, testPool("node-a", targetRev, rolledOut(2)), testPool("node-b", targetRev, rolledOut(2)),
				testPool("node-c", targetRev, rolledOut(2))), "annotation ferry.dev/revision is empty", false),
			want:  wantCond{metav1.ConditionFalse, ferryv1.ReasonInvalidRevision, nil},
			exact: "annotation ferry.dev/revision is empty; revision 2-abc stays the target until it is fixed",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := rollingRestartCondition(looped(tt.in))
			checkCond(t, got, tt.want)
			if tt.exact != "" && got.Message != tt.exact {
				t.Errorf("message %q, want %q", got.Message, tt.exact)
			}
		})
	}
}

func TestResistingCondition(t *testing.T) {
	traceback := "Traceback (most recent call last):\n" + strings.Repeat("  File \"/srv/blog/app.py\", line 1, in <module>\n", 100) +
		"ModuleNotFoundError: No module named 'flask'"
	ab := []string{"node-a", "node-b"}
	tests := []struct {
		name string
		in   rollupInput
		want wantCond
	}{
		{
			name: "nobody resists",
			in:   input(ab, testPool("node-a", targetRev, rolledOut(2)), testPool("node-b", targetRev, restarting(1, 2))),
			want: wantCond{metav1.ConditionFalse, ferryv1.ReasonNoDeploymentError, nil},
		},
		{
			name: "a node resists, with the end of the output",
			in:   input(ab, testPool("node-a", targetRev, rolledOut(2)), testPool("node-b", targetRev, rolledOut(2), resists(targetRev, "exited with status 1", traceback))),
			want: wantCond{metav1.ConditionTrue, ferryv1.ReasonSpawnFailed, []string{
				"node node-b", "revision 2-abc failed to spawn", "exited with status 1", "No module named 'flask'", "...",
			}},
		},
		{
			name: "a node resists a revision that died soon after it was ready",
			in: input(ab, testPool("node-a", targetRev, rolledOut(2)),
				testPool("node-b", targetRev, rolledOut(2), resists(targetRev, "exited with status 1 1.2s after it was ready", ""))),
			want: wantCond{metav1.ConditionTrue, ferryv1.ReasonSpawnFailed, []string{
				"node node-b: revision 2-abc died soon after it was ready (exited with status 1 1.2s after it was ready); the old processes keep serving",
			}},
		},
		{
			name: "the node that resisted a revision dying soon after it was ready is gone",
			in: withHalt(input(ab, testPool("node-a", oldRev, rolledOut(2)), testPool("node-b", oldRev, rolledOut(2))), "node-c",
				"exited with status 1 1.2s after it was ready"),
			want: wantCond{metav1.ConditionTrue, ferryv1.ReasonSpawnFailed, []string{
				"node node-c: revision 2-abc died soon after it was ready (exited with status 1 1.2s after it was ready), which is no longer selected"}},
		},
		{
			name: "two nodes resist",
			in:   input(ab, testPool("node-a", oldRev, rolledOut(2), resists(oldRev, "boom", "")), testPool("node-b", targetRev, rolledOut(2), resists(targetRev, "bang", ""))),
			want: wantCond{metav1.ConditionTrue, ferryv1.ReasonSpawnFailed, []string{"2 nodes resist (node-a and node-b)", "node node-a", "boom"}},
		},
		{
			name: "the agent set the condition without details",
			in: input(ab, testPool("node-a", targetRev, rolledOut(2), func(p *ferryv1.ProcessPool) {
				setCond(p, ferryv1.ConditionResistingDeploymentError, metav1.ConditionTrue, ferryv1.ReasonSpawnFailed, "spawn failed: no python")
			})),
			want: wantCond{metav1.ConditionTrue, ferryv1.ReasonSpawnFailed, []string{"node node-a: spawn failed: no python"}},
		},
		{
			name: "a silent agent might resist",
			in:   input(ab, testPool("node-a", targetRev, rolledOut(2), heartbeatAt(t0.Add(-time.Minute))), testPool("node-b", targetRev, rolledOut(2))),
			want: wantCond{metav1.ConditionUnknown, ferryv1.ReasonAgentNotReporting, []string{"node-a"}},
		},
		{
			name: "the node that resisted is gone: the AppGroup still resists",
			in:   withHalt(input(ab, testPool("node-a", oldRev, rolledOut(2)), testPool("node-b", oldRev, rolledOut(2))), "node-c", "exited with status 1"),
			want: wantCond{metav1.ConditionTrue, ferryv1.ReasonSpawnFailed, []string{
				"node node-c: revision 2-abc failed to spawn (exited with status 1), which is no longer selected", "no further node gets it"}},
		},
		{
			name: "the node that could not spawn the target returned to the last revision rolled out",
			in:   withHalt(input(ab, testPool("node-a", oldRev, rolledOut(2)), testPool("node-b", oldRev, rolledOut(2))), "node-b", "x"),
			want: wantCond{metav1.ConditionTrue, ferryv1.ReasonSpawnFailed, []string{"which now runs revision 1-abc"}},
		},
		{
			name: "a remembered halt that left its node with no process is no resistance",
			in: func() rollupInput {
				in := withHalt(input(ab, testPool("node-a", oldRev, rolledOut(2)), testPool("node-b", targetRev, failsSpawns(targetRev, "x"))), "node-b", "x")
				in.Halt.Resisted = false
				return in
			}(),
			want: wantCond{metav1.ConditionFalse, ferryv1.ReasonNoDeploymentError, nil},
		},
		{
			name: "a remembered resistance stays whatever resistDeploymentErrors says now",
			in: func() rollupInput {
				in := withHalt(input(ab, testPool("node-a", oldRev, rolledOut(2)), testPool("node-b", oldRev, rolledOut(2))), "node-c", "x")
				in.AppGroup.Spec.Restart.ResistDeploymentErrors = new(bool)
				return in
			}(),
			want: wantCond{metav1.ConditionTrue, ferryv1.ReasonSpawnFailed, []string{"node node-c"}},
		},
		{
			name: "a fresh resisting report wins over a silent agent",
			in:   input(ab, testPool("node-a", targetRev, rolledOut(2), heartbeatAt(t0.Add(-time.Minute))), testPool("node-b", targetRev, rolledOut(2), resists(targetRev, "x", ""))),
			want: wantCond{metav1.ConditionTrue, ferryv1.ReasonSpawnFailed, []string{"node-b"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { checkCond(t, resistingCondition(tt.in), tt.want) })
	}
}

func TestDeletingCondition(t *testing.T) {
	fresh := testPool("node-a", targetRev, rolledOut(2))
	silent := testPool("node-b", targetRev, rolledOut(2), heartbeatAt(t0.Add(-time.Minute)))
	unseen := testPool("node-c", targetRev, created(time.Minute))
	young := testPool("node-d", targetRev, created(time.Second))
	tests := []struct {
		name  string
		pools []*ferryv1.ProcessPool
		want  []string
	}{
		{"one agent to drain", []*ferryv1.ProcessPool{fresh}, []string{"Waiting for the agent on node-a to drain its pool"}},
		{"two, one silent", []*ferryv1.ProcessPool{silent, fresh}, []string{
			"Waiting for the agents on node-a and node-b to drain their pools",
			"The agent on node-b has not reported since 2026-05-01T11:59:00Z",
			"remove the ferry.dev/drain finalizer from ProcessPool ns/blog-node-b",
		}},
		{"one never reported, one just created", []*ferryv1.ProcessPool{young, unseen}, []string{
			"Waiting for the agents on node-c and node-d to drain their pools. " +
				"No agent has ever reported the pool on node-c (no agent renews a Lease there: is ferry-agent running?). " +
				"Such a pool is released",
			"remove the ferry.dev/drain finalizer from ProcessPool ns/blog-node-c",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := deletingCondition(assessAll(targetRev, tt.pools...), t0, staleAfter)
			checkCond(t, got, wantCond{metav1.ConditionFalse, ferryv1.ReasonDeleting, tt.want})
		})
	}

	// An agent that renews its node's Lease but never reported the pool
	// runs there: no guess that it does not. One whose Lease is a day old
	// does not (found by review).
	withLease := assessPool(unseen, targetRev, t0, staleAfter, t0, hearing{})
	got := deletingCondition([]poolReport{withLease}, t0, staleAfter)
	checkCond(t, got, wantCond{metav1.ConditionFalse, ferryv1.ReasonDeleting,
		[]string{"No agent has ever reported the pool on node-c. Such a pool is released"}})
	deadAgent := assessPool(unseen, targetRev, t0, staleAfter, t0.Add(-24*time.Hour), hearing{})
	got = deletingCondition([]poolReport{deadAgent}, t0, staleAfter)
	checkCond(t, got, wantCond{metav1.ConditionFalse, ferryv1.ReasonDeleting,
		[]string{"No agent has ever reported the pool on node-c (no agent renews a Lease there: is ferry-agent running?)"}})

	// The pass that names a young pool once it reaches the bound is due
	// then (found by review: nothing brought it).
	if d := deletingRequeue(assessAll(targetRev, young), t0, staleAfter); d != staleAfter {
		t.Errorf("requeue after %v, want %v (the young pool reaches the bound in %v, plus 1s)", d, staleAfter, staleAfter-time.Second)
	}
}

func TestCounts(t *testing.T) {
	in := input([]string{"node-a", "node-b", "node-c", "node-d", "node-e", "node-f"},
		testPool("node-a", targetRev, rolledOut(3)),                                    // 3 ready, 3 updated
		testPool("node-b", targetRev, restarting(1, 2)),                                // 2 ready, 1 updated
		testPool("node-c", oldRev, rolledOut(2)),                                       // ready, not updated: older revision
		testPool("node-d", targetRev, rolledOut(2), heartbeatAt(t0.Add(-time.Minute))), // stale: total only (and updated as last said)
		// node-e: no pool
		// node-f: its agent stops: total only, and updated as it says
		testPool("node-f", targetRev, rolledOut(2), func(p *ferryv1.ProcessPool) {
			setCond(p, ferryv1.ConditionReady, metav1.ConditionFalse, ferryv1.ReasonAgentStopping, "the agent on node-f is stopping")
		}),
	)
	st := computeStatus(in)
	if want := (ferryv1.ProcessCounts{Ready: 7, Updated: 8, Total: 11}); st.Processes != want {
		t.Errorf("processes %+v, want %+v", st.Processes, want)
	}
	if want := (ferryv1.NodeCounts{Ready: 3, Updated: 2, Total: 6}); st.Nodes != want {
		t.Errorf("nodes %+v, want %+v", st.Nodes, want)
	}
	if st.ReadyProcesses != "7/11" || st.ReadyNodes != "3/6" {
		t.Errorf("readyProcesses %q readyNodes %q, want 7/11 and 3/6", st.ReadyProcesses, st.ReadyNodes)
	}
	if st.Revision != targetRev {
		t.Errorf("revision %q, want %q", st.Revision, targetRev)
	}
}

// TestReadyProcessCounts: processes.ready (the READY column) counts the
// processes a request can reach: those of a node whose proxy cannot listen
// on listen.port, and serves on no older port, run but serve nothing.
func TestReadyProcessCounts(t *testing.T) {
	cannotListen := func(p *ferryv1.ProcessPool) {
		setCond(p, ferryv1.ConditionReady, metav1.ConditionFalse, ferryv1.ReasonListenFailed, "the proxy cannot listen: x")
	}
	tests := []struct {
		name string
		pool *ferryv1.ProcessPool
		want ferryv1.ProcessCounts
	}{
		{name: "rolled out", pool: testPool("node-a", targetRev, rolledOut(3)), want: ferryv1.ProcessCounts{Ready: 3, Updated: 3, Total: 3}},
		{name: "restarting", pool: testPool("node-a", targetRev, restarting(1, 2)), want: ferryv1.ProcessCounts{Ready: 2, Updated: 1, Total: 2}},
		{name: "too few ready", pool: testPool("node-a", targetRev, rolledOut(2), notReady), want: ferryv1.ProcessCounts{Ready: 1, Updated: 2, Total: 2}},
		{name: "no report yet", pool: testPool("node-a", targetRev)},
		{
			name: "its agent is silent",
			pool: testPool("node-a", targetRev, rolledOut(2), heartbeatAt(t0.Add(-time.Minute))),
			want: ferryv1.ProcessCounts{Updated: 2, Total: 2},
		},
		{
			name: "its agent stops",
			pool: testPool("node-a", targetRev, rolledOut(2), func(p *ferryv1.ProcessPool) {
				setCond(p, ferryv1.ConditionReady, metav1.ConditionFalse, ferryv1.ReasonAgentStopping, "x")
			}),
			want: ferryv1.ProcessCounts{Updated: 2, Total: 2},
		},
		{
			name: "its proxy cannot listen",
			pool: testPool("node-a", targetRev, rolledOut(2), cannotListen),
			want: ferryv1.ProcessCounts{Updated: 2, Total: 2},
		},
		{
			// It stays in the Service, on the old port's EndpointSlice.
			name: "its proxy cannot listen on a new listen.port and serves on the old one",
			pool: testPool("node-a", targetRev, rolledOut(2), address("192.0.2.2:7070"), cannotListen),
			want: ferryv1.ProcessCounts{Ready: 2, Updated: 2, Total: 2},
		},
		{
			name: "its proxy cannot listen, reported before its agent took up listen.port's move",
			pool: testPool("node-a", targetRev, rolledOut(2), address("192.0.2.2:7070"), cannotListen,
				func(p *ferryv1.ProcessPool) { p.Status.ListenPort = 7070 }),
			want: ferryv1.ProcessCounts{Updated: 2, Total: 2},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := computeStatus(input([]string{"node-a"}, tt.pool)).Processes; got != tt.want {
				t.Errorf("processes %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestComputeStatusConditionsAndGeneration(t *testing.T) {
	ready := func() rollupInput {
		return input([]string{"node-a"}, testPool("node-a", targetRev, rolledOut(2)))
	}
	earlier := metav1.NewTime(t0.Add(-time.Hour))

	// First pass: every condition is set, at t0, with the generation.
	st := computeStatus(ready())
	if len(st.Conditions) != 3 {
		t.Fatalf("conditions %+v, want Ready, RollingRestart, ResistingDeploymentError", st.Conditions)
	}
	for _, c := range st.Conditions {
		if !c.LastTransitionTime.Time.Equal(t0) || c.ObservedGeneration != 3 {
			t.Errorf("%s: lastTransitionTime %v generation %d, want %v and 3", c.Type, c.LastTransitionTime, c.ObservedGeneration, t0)
		}
	}
	if st.ObservedGeneration != 3 {
		t.Errorf("observedGeneration %d, want 3", st.ObservedGeneration)
	}

	// A later pass keeps lastTransitionTime where the status holds, moves
	// it where it flips.
	in := ready()
	in.AppGroup.Status.Conditions = []metav1.Condition{
		{Type: ferryv1.ConditionReady, Status: metav1.ConditionTrue, Reason: ferryv1.ReasonProcessesReady, LastTransitionTime: earlier},
		{Type: ferryv1.ConditionRollingRestart, Status: metav1.ConditionTrue, Reason: ferryv1.ReasonRollingOut, LastTransitionTime: earlier},
	}
	in.Now = t0.Add(10 * time.Second)
	st = computeStatus(in)
	if c := meta.FindStatusCondition(st.Conditions, ferryv1.ConditionReady); !c.LastTransitionTime.Equal(&earlier) {
		t.Errorf("Ready kept its status but lastTransitionTime moved to %v", c.LastTransitionTime)
	}
	if c := meta.FindStatusCondition(st.Conditions, ferryv1.ConditionRollingRestart); !c.LastTransitionTime.Time.Equal(in.Now) {
		t.Errorf("RollingRestart flipped but lastTransitionTime is %v, want %v", c.LastTransitionTime, in.Now)
	}

	// observedGeneration moves only after a clean pass.
	in = ready()
	in.AppGroup.Status.ObservedGeneration = 2
	in.Clean = false
	if st := computeStatus(in); st.ObservedGeneration != 2 {
		t.Errorf("unclean pass stamped observedGeneration %d", st.ObservedGeneration)
	}

	// The same input twice gives the same status: nothing to write.
	in = ready()
	in.AppGroup.Status = computeStatus(in)
	in.Now = t0.Add(5 * time.Second)
	if st := computeStatus(in); !equalStatus(st, in.AppGroup.Status) {
		t.Errorf("idle pass changed the status:\n%+v\n%+v", st, in.AppGroup.Status)
	}
}

func equalStatus(a, b ferryv1.AppGroupStatus) bool {
	if a.Revision != b.Revision || a.Processes != b.Processes || a.Nodes != b.Nodes || len(a.Conditions) != len(b.Conditions) {
		return false
	}
	for i := range a.Conditions {
		x, y := a.Conditions[i], b.Conditions[i]
		if x.Type != y.Type || x.Status != y.Status || x.Reason != y.Reason || x.Message != y.Message ||
			!x.LastTransitionTime.Equal(&y.LastTransitionTime) {
			return false
		}
	}
	return true
}

func TestNextStaleness(t *testing.T) {
	reports := byNode(assessAll(targetRev,
		testPool("a", targetRev, rolledOut(2), heartbeatAt(t0.Add(-10*time.Second))),
		testPool("b", targetRev, rolledOut(2), heartbeatAt(t0.Add(-30*time.Second))),
		testPool("c", targetRev, rolledOut(2), heartbeatAt(t0.Add(-time.Hour))), // already stale
		testPool("d", targetRev), // never reported
	))
	if got, want := nextStaleness(reports), 11*time.Second; got != want {
		t.Errorf("nextStaleness = %v, want %v", got, want)
	}
	// A pool never reported is due when it turns Unheard (the waves then
	// pass it over); once it is, nothing is due.
	if got, want := nextStaleness(byNode(assessAll(targetRev, testPool("d", targetRev, created(30*time.Second))))), 11*time.Second; got != want {
		t.Errorf("nextStaleness with a pool never reported = %v, want %v", got, want)
	}
	if got := nextStaleness(byNode(assessAll(targetRev, testPool("d", targetRev, created(time.Hour))))); got != 0 {
		t.Errorf("nextStaleness with a pool unheard = %v, want 0", got)
	}
	// A report from before an outage (within the bound of its start)
	// turns stale the bound after contact came back.
	late := map[string]poolReport{"c": assessPool(testPool("c", targetRev, rolledOut(2), heartbeatAt(t0.Add(-50*time.Second))),
		targetRev, t0, staleAfter, time.Time{}, hearing{since: t0.Add(-5 * time.Second), lost: t0.Add(-30 * time.Second)})}
	if got, want := nextStaleness(late), 36*time.Second; got != want {
		t.Errorf("nextStaleness after contact came back = %v, want %v", got, want)
	}
	// With a Lease: left to the lease watcher when the Lease is the last
	// sign; not when a report came after it.
	leased := func(heartbeat, renew time.Duration) map[string]poolReport {
		return map[string]poolReport{"e": assessPool(testPool("e", targetRev, rolledOut(2), heartbeatAt(t0.Add(heartbeat))),
			targetRev, t0, staleAfter, t0.Add(renew), hearing{})}
	}
	if got := nextStaleness(leased(-20*time.Second, -5*time.Second)); got != 0 {
		t.Errorf("nextStaleness with the Lease renewed last = %v, want 0 (the lease watcher's)", got)
	}
	if got, want := nextStaleness(leased(-5*time.Second, -20*time.Second)), 36*time.Second; got != want {
		t.Errorf("nextStaleness with a report after the Lease = %v, want %v", got, want)
	}
}

func TestOutputExcerptAndTruncate(t *testing.T) {
	if got := outputExcerpt("  short  ", 10); got != "short" {
		t.Errorf("outputExcerpt kept %q", got)
	}
	long := strings.Repeat("line\n", 200) + "Error: the end"
	got := outputExcerpt(long, 100)
	if len(got) > 103 || !strings.HasPrefix(got, "...line") || !strings.HasSuffix(got, "Error: the end") {
		t.Errorf("outputExcerpt = %q", got)
	}
	multibyte := strings.Repeat("é", 600)
	if got := truncate(multibyte, 101); len(got) > 101 || !strings.HasSuffix(got, "...") || !utf8Valid(got) {
		t.Errorf("truncate = %q", got)
	}
	if got := cutMiddle("short", 10); got != "short" {
		t.Errorf("cutMiddle cut what fits: %q", got)
	}
	if got := cutMiddle("what failed: a long middle: what to do", 27); got != "what failed:...: what to do" {
		t.Errorf("cutMiddle = %q, want its start and its end", got)
	}
	for n := 4; n <= 20; n++ {
		if got := cutMiddle(strings.Repeat("é", 10), n); len(got) > n || !utf8Valid(got) {
			t.Errorf("cutMiddle to %d bytes = %q (%d bytes)", n, got, len(got))
		}
	}
	if got := outputExcerpt(multibyte, 101); !utf8Valid(got) {
		t.Errorf("outputExcerpt cut a rune: %q", got)
	}
	if got := nodeList([]string{"a", "b", "c", "d", "e", "f", "g"}); got != "a, b, c, d, e and 2 more" {
		t.Errorf("nodeList = %q", got)
	}
}

func utf8Valid(s string) bool { return strings.ToValidUTF8(s, "\uFFFD") == s }

// TestNoHaltOnceRolledOutEverywhere: the target ran rolled out on every
// node (lastRolledOut) and nothing rolls; then one node's agent restarts
// and its spawns fail (a database down at boot). No rollout is halted:
// haltRecord records none, no node waits for the target, and Ready says
// what is wrong there. RollingRestart must not read RolloutHalted, nor a
// RolloutHalted warning be recorded (and counted in
// ferry_rollouts_halted_total).
func TestNoHaltOnceRolledOutEverywhere(t *testing.T) {
	abc := []string{"node-a", "node-b", "node-c"}
	done := input(abc, testPool("node-a", targetRev, rolledOut(2)), testPool("node-b", targetRev, rolledOut(2)), testPool("node-c", targetRev, rolledOut(2)))
	done.LastRolledOut = &ferryv1.RolledOutRevision{Revision: targetRev}
	done.Proven = targetRev
	before := computeStatus(done)

	in := input(abc, testPool("node-a", targetRev, failsSpawns(targetRev, "could not connect to server")),
		testPool("node-b", targetRev, rolledOut(2)), testPool("node-c", targetRev, rolledOut(2)))
	in.LastRolledOut, in.Proven = done.LastRolledOut, done.Proven
	if h := haltRecord(in); h != nil {
		t.Fatalf("haltRecord %+v", h)
	}
	in.AppGroup.Status = before
	cur := computeStatus(in)
	checkCond(t, *meta.FindStatusCondition(cur.Conditions, ferryv1.ConditionRollingRestart),
		wantCond{metav1.ConditionFalse, ferryv1.ReasonRolloutComplete, nil})
	checkCond(t, *meta.FindStatusCondition(cur.Conditions, ferryv1.ConditionReady),
		wantCond{metav1.ConditionFalse, ferryv1.ReasonProcessesNotReady, []string{"node-a"}})
	for _, ev := range statusEvents(in.AppGroup, &before, &cur, silenceSeen{}) {
		t.Errorf("event %s: %s", ev.Reason, ev.Note)
	}
}

// TestWaitingForWaveNamesTheNextNode: the node RollingRestart names next
// is the one planWave gives the target next: a node not ready goes before
// one that serves, whatever their names.
func TestWaitingForWaveNamesTheNextNode(t *testing.T) {
	abc := []string{"node-a", "node-b", "node-c"}
	in := input(abc, testPool("node-a", oldRev, rolledOut(2)), testPool("node-b", oldRev, rolledOut(2), notReady),
		testPool("node-c", targetRev, rolledOut(2), counts(1, 2, 2)))
	ordered := make([]poolReport, 0, len(abc))
	for _, n := range abc {
		ordered = append(ordered, in.Reports[n])
	}
	plan := planWave(ordered, 2, nil, false)
	if len(plan.Give) != 1 || plan.Give[0] != "node-b" {
		t.Fatalf("planWave gives %v, want [node-b]", plan.Give)
	}
	// One slot: node-c holds it; node-b is next.
	plan = planWave(ordered, 1, nil, false)
	if len(plan.Waiting) == 0 || plan.Waiting[0] != "node-b" {
		t.Fatalf("planWave waiting %v, want node-b first", plan.Waiting)
	}
	checkCond(t, rollingRestartCondition(in), wantCond{metav1.ConditionTrue, ferryv1.ReasonWaitingForWave, []string{"next: node-b"}})
}

// TestRestartingReasonIsTheAgents: while nodes restart, RollingRestart's
// reason says what restart their agents run (their pools' RollingRestart
// reason), not what the AppGroup asks for now: an agent keeps the
// strategy its restart began with. A node whose agent runs none yet will
// start the AppGroup's. One node's Blocking restart is enough: its app is
// down there meanwhile. (Seen failing before: a Rolling restart under way
// read RestartingBlocking once the AppGroup turned Blocking, and a
// Blocking one RollingOut once it turned Rolling.)
func TestRestartingReasonIsTheAgents(t *testing.T) {
	abc := []string{"node-a", "node-b", "node-c"}
	notTakenUp := func(p *ferryv1.ProcessPool) { p.Status.ObservedRevision = oldRev }
	tests := []struct {
		name     string
		strategy ferryv1.RestartStrategy
		pools    []*ferryv1.ProcessPool
		want     string
	}{
		// Each strategy's own restart under way: "blocking strategy" in
		// TestRollingRestartCondition, and TestHaltRecordOfACrashLoop.
		{"Blocking now, the Rolling restart begun before under way", ferryv1.RestartBlocking,
			[]*ferryv1.ProcessPool{testPool("node-a", targetRev, restarting(1, 2))}, ferryv1.ReasonRollingOut},
		{"Rolling now, the Blocking restart begun before under way", ferryv1.RestartRolling,
			[]*ferryv1.ProcessPool{testPool("node-a", targetRev, restartingBlocking(2, 2))}, ferryv1.ReasonRestartingBlocking},
		{"Blocking now, a Rolling restart onto the previous revision under way, the target not taken up yet", ferryv1.RestartBlocking,
			[]*ferryv1.ProcessPool{testPool("node-a", targetRev, restarting(1, 2), notTakenUp)}, ferryv1.ReasonRollingOut},
		{"Blocking, the target not taken up yet", ferryv1.RestartBlocking,
			[]*ferryv1.ProcessPool{testPool("node-a", targetRev, rolledOut(2), notTakenUp)}, ferryv1.ReasonRestartingBlocking},
		{"Rolling, the target not taken up yet", ferryv1.RestartRolling,
			[]*ferryv1.ProcessPool{testPool("node-a", targetRev, rolledOut(2), notTakenUp)}, ferryv1.ReasonRollingOut},
		{"Blocking, the node's pool not made yet", ferryv1.RestartBlocking, nil, ferryv1.ReasonRestartingBlocking},
		{"Rolling, the node's pool not made yet", ferryv1.RestartRolling, nil, ferryv1.ReasonRollingOut},
		{"Blocking now, one node's Rolling restart under way, another's not taken up yet", ferryv1.RestartBlocking,
			[]*ferryv1.ProcessPool{testPool("node-a", targetRev, restarting(1, 2)), testPool("node-b", targetRev, rolledOut(2), notTakenUp)},
			ferryv1.ReasonRestartingBlocking},
		{"Rolling now, one node's Rolling restart under way, another's Blocking one", ferryv1.RestartRolling,
			[]*ferryv1.ProcessPool{testPool("node-a", targetRev, restarting(1, 2)), testPool("node-b", targetRev, restartingBlocking(2, 2))},
			ferryv1.ReasonRestartingBlocking},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// The nodes after those given run the old revision, waiting
			// for their wave; with none given, node-a has no pool yet.
			pools := tt.pools
			for _, node := range abc[max(len(pools), 1):] {
				pools = append(pools, testPool(node, oldRev, rolledOut(2)))
			}
			in := input(abc, pools...)
			in.AppGroup.Spec.Restart.Strategy = tt.strategy
			c := rollingRestartCondition(in)
			if c.Status != metav1.ConditionTrue || c.Reason != tt.want {
				t.Errorf("RollingRestart = %s/%s (%s), want True/%s", c.Status, c.Reason, c.Message, tt.want)
			}
		})
	}
}

// TestHaltSaysWhatServesOnItsNodes: the halt's message says whether older
// processes serve on the nodes that cannot run the target, from their
// ready processes (by the process table, else the counts; none of the
// target runs there, so a ready process is an older one) on a node that
// takes requests, whatever the failure: a death soon after ready may
// leave older processes (a Rolling restart's, held) or none (a Blocking
// restart stopped them, or one process died), and a failed spawn may
// have older processes beside it (a restart with resistance off could
// not replace them). (Seen failing before: the message said "with no
// older process to keep serving" of every failed spawn, older processes
// serving or not, and nothing of a death soon after ready, none serving
// or not.)
func TestHaltSaysWhatServesOnItsNodes(t *testing.T) {
	abc := []string{"node-a", "node-b", "node-c"}
	const loadFailed, died = "(the app failed to load)", "(exited with status 1 1.2s after it was ready)"
	cannotLoad := failsSpawns(targetRev, "the app failed to load")
	// Every old process left serving by a restart with resistance off,
	// and a spawn of the target for the pool failing since.
	leftServing := func(p *ferryv1.ProcessPool) { cannotLoad(p); incomplete(2, 2)(p) }
	tests := []struct {
		name  string
		in    rollupInput
		words string
	}{
		{"cannot spawn it, nothing running there",
			input(abc, testPool("node-a", targetRev, cannotLoad)),
			"on node-a " + loadFailed + ", with no older process to keep serving;"},
		{"cannot spawn it, older processes left serving there by a restart with resistance off",
			resistingNothing(input(abc, testPool("node-a", targetRev, leftServing))),
			"on node-a " + loadFailed + ", older processes serving there meanwhile;"},
		// A Rolling restart's death soon after ready, older processes
		// serving, and a Blocking one's, none left: TestRollingRestartCondition.
		{"cannot spawn it, older processes left there, its agent stopping",
			resistingNothing(input(abc, testPool("node-a", targetRev, leftServing, agentStopping))),
			"on node-a " + loadFailed + ", with no older process to keep serving;"},
		{"cannot spawn it, older processes left there, its proxy unable to listen",
			resistingNothing(input(abc, testPool("node-a", targetRev, leftServing, func(p *ferryv1.ProcessPool) {
				setCond(p, ferryv1.ConditionReady, metav1.ConditionFalse, ferryv1.ReasonListenFailed, "the proxy cannot listen: x")
			}))),
			"on node-a " + loadFailed + ", with no older process to keep serving;"},
		{"died soon after ready, its one process, a revision to return to",
			input(abc, testPool("node-a", targetRev, rolledOut(1), diedAlone)),
			"on node-a soon after it was ready " + died + ", with no older process to keep serving;"},
		{"cannot spawn it on two nodes, nothing running on either",
			input(abc, testPool("node-a", targetRev, cannotLoad), testPool("node-b", targetRev, cannotLoad)),
			"on node-a and node-b " + loadFailed + ", with no older process to keep serving;"},
		{"died soon after ready on two nodes mid-way through their Rolling restarts, old processes serving on both",
			resistingNothing(input(abc, testPool("node-a", targetRev, restarting(0, 2), crashedInWindow),
				testPool("node-b", targetRev, restarting(0, 2), crashedInWindow))),
			"on node-a and node-b soon after it was ready " + died + ", older processes serving there meanwhile;"},
		{"cannot spawn it on two nodes, older processes serving on one",
			resistingNothing(input(abc, testPool("node-a", targetRev, leftServing), testPool("node-b", targetRev, cannotLoad))),
			"on node-a and node-b " + loadFailed + ", older processes serving meanwhile on node-a but none on node-b;"},
		// node-a between two tries, its agent sending no process table,
		// one of its two processes ready and one updated: whether the
		// ready one is older, the counts cannot tell, so only node-b is
		// said to have none. Its processes die young where node-b's
		// never start: each failure has its clause, and the remedy
		// names what each node waits for.
		{"two nodes, one whose counts cannot tell",
			resistingNothing(input(abc, testPool("node-a", targetRev, restarting(0, 2), crashedInWindow, counts(1, 1, 2), noTable),
				testPool("node-b", targetRev, cannotLoad))),
			"it died on node-a soon after it was ready " + died + "; it failed to spawn on node-b " + loadFailed +
				", with no older process to keep serving; their agents retry it with backoff, at most a minute apart, and the " +
				"rollout goes on once a process of it lives " + crashWindow + ", the crash window, on node-a and it starts on node-b;"},
		// node-b between two tries, one process of the target ready
		// there, its second failing to spawn: the note is not said of
		// it, so it names node-a.
		{"cannot spawn it on two nodes, a process of it serving on one",
			input(abc, testPool("node-a", targetRev, cannotLoad), testPool("node-b", targetRev, restartingBlocking(1, 2),
				counts(1, 1, 1), spawnFailed("the app failed to load"), func(p *ferryv1.ProcessPool) {
					p.Status.Processes = []ferryv1.ProcessInfo{{PID: 3, Revision: targetRev, State: ferryv1.ProcessReady}}
				})),
			"on node-a and node-b " + loadFailed + ", with no older process to keep serving on node-a;"},
		{"a death soon after ready on one node, a failed spawn on another, older processes serving on the first",
			resistingNothing(input(abc, testPool("node-a", targetRev, cannotLoad),
				testPool("node-b", targetRev, restarting(0, 2), crashedInWindow))),
			"it died on node-b soon after it was ready " + died + ", older processes serving there meanwhile; " +
				"it failed to spawn on node-a " + loadFailed + ", with no older process to keep serving;"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := tt.in
			for _, node := range abc {
				if _, ok := in.Reports[node]; !ok {
					in.Reports[node] = assessAll(targetRev, testPool(node, oldRev, rolledOut(2)))[0]
				}
			}
			in.Older = olderRuns(in) // as the pass finds it, the other nodes on an older revision
			wantHaltSaying(t, in, tt.words)
		})
	}
}

// TestHaltReadsAlikeBetweenYoungDeaths: a Blocking restart's processes
// of the target die young, none older left, and its agent retries them:
// its halt reads the same at a death (the node failing), while a retry
// spawns and while the retry's process is ready for its seconds (the
// halt remembered), so that the message is not written anew, nor a
// `restart --wait` line printed, at each turn; and it says no older
// process serves between the deaths, true at every turn, not that none
// keeps serving while the retry's process does; at a later death, whose
// reason tells another lifetime, it still quotes the death it recorded.
// (Seen failing before: every turn said "with no older process to keep
// serving", the retry's process ready or not; and a later death's
// message quoted that death's lifetime, "2.5s after it was ready".)
func TestHaltReadsAlikeBetweenYoungDeaths(t *testing.T) {
	abc := []string{"node-a", "node-b", "node-c"}
	blocking := func(pool *ferryv1.ProcessPool, halt *ferryv1.HaltedRollout) rollupInput {
		in := input(abc, pool, testPool("node-b", oldRev, rolledOut(2)), testPool("node-c", oldRev, rolledOut(2)))
		in.AppGroup.Spec.Restart.Strategy = ferryv1.RestartBlocking
		in.Halt = halt
		return looped(in)
	}
	// At the death, its halt recorded by the pass that sees it.
	death := recorded(blocking(testPool("node-a", targetRev, restartingBlocking(0, 2), crashedInWindow), nil))
	if death.Halt == nil || death.Halt.Resisted {
		t.Fatalf("the death recorded %+v, want a halt not resisted", death.Halt)
	}
	want := "Rollout of revision 2-abc halted at 0/3 nodes updated: it died on node-a soon after it was ready " +
		"(exited with status 1 1.2s after it was ready), with no older process to serve between its deaths; " +
		"its agent retries it with backoff, at most a minute apart, and the rollout goes on once a process of it lives " +
		crashWindow + ", the crash window, there; or change the ferry.dev/revision annotation or the app to start a new rollout"
	turns := []haltTurn{
		{"at the death", death},
		{"a retry spawning", blocking(testPool("node-a", targetRev, restartingBlocking(1, 2), crashedInWindow), death.Halt)},
		{"the retry's process ready", blocking(testPool("node-a", targetRev, restartingBlocking(1, 2), counts(1, 1, 1), betweenDeaths,
			func(p *ferryv1.ProcessPool) {
				p.Status.Processes = []ferryv1.ProcessInfo{{PID: 3, Revision: targetRev, State: ferryv1.ProcessReady}}
			}), death.Halt)},
		// The next death's reason has its own lifetime: the halt still
		// quotes the one it recorded.
		{"a second death, after another lifetime", blocking(testPool("node-a", targetRev, restartingBlocking(0, 2),
			spawnFailed("exited with status 1 2.5s after it was ready")), death.Halt)},
	}
	wantHaltAtEveryTurn(t, turns, want)
}

// TestHaltListsItsNodesAlikeBetweenRetries: on two nodes a Blocking
// restart's processes of the target die young, and their agents retry
// them, each at its own pace: whichever node is between two deaths (a
// retry spawning) while the other has just seen one, the halt names both
// nodes, and reads the same, so that it is not written anew, nor a
// `restart --wait` line printed, at each death. (Seen failing before:
// the node between deaths dropped out of the list, "on node-b" then "on
// node-a and node-b" then "on node-a".)
func TestHaltListsItsNodesAlikeBetweenRetries(t *testing.T) {
	abc := []string{"node-a", "node-b", "node-c"}
	dead := func(node string) *ferryv1.ProcessPool {
		return testPool(node, targetRev, restartingBlocking(0, 2), crashedInWindow)
	}
	retrying := func(node string) *ferryv1.ProcessPool {
		return testPool(node, targetRev, restartingBlocking(1, 2), crashedInWindow)
	}
	blocking := func(a, b *ferryv1.ProcessPool, halt *ferryv1.HaltedRollout) rollupInput {
		in := input(abc, a, b, testPool("node-c", oldRev, rolledOut(2)))
		in.AppGroup.Spec.Restart.Strategy = ferryv1.RestartBlocking
		in.Halt = halt
		return looped(in)
	}
	both := recorded(blocking(dead("node-a"), dead("node-b"), nil))
	if both.Halt == nil || both.Halt.Node != "node-a" {
		t.Fatalf("the deaths recorded %+v, want a halt on node-a", both.Halt)
	}
	want := "Rollout of revision 2-abc halted at 0/3 nodes updated: it died on node-a and node-b soon after it was ready " +
		"(exited with status 1 1.2s after it was ready), with no older process to serve between its deaths; " +
		"their agents retry it with backoff, at most a minute apart, and the rollout goes on once a process of it lives " +
		crashWindow + ", the crash window, there; or change the ferry.dev/revision annotation or the app to start a new rollout"
	wantHaltAtEveryTurn(t, []haltTurn{
		{"both dead", both},
		{"node-a retrying, node-b dead", blocking(retrying("node-a"), dead("node-b"), both.Halt)},
		{"node-a dead, node-b retrying", blocking(dead("node-a"), retrying("node-b"), both.Halt)},
		{"both retrying", blocking(retrying("node-a"), retrying("node-b"), both.Halt)},
	}, want)
}

// TestHaltQuotesItsOwnNode: the halt recorded on node-b, node-a (first
// by name) fails too, its processes dying young at each of its agent's
// retries, each death's reason with its own lifetime: the message quotes
// the halt's node, whose reason is the record's, so that it stays the
// same across node-a's deaths, not written anew, nor a `restart --wait`
// line printed, at each.
func TestHaltQuotesItsOwnNode(t *testing.T) {
	abc := []string{"node-a", "node-b", "node-c"}
	const died = "exited with status 1 1.2s after it was ready"
	blocking := func(a *ferryv1.ProcessPool) rollupInput {
		in := input(abc, a, testPool("node-b", targetRev, restartingBlocking(0, 2), crashedInWindow),
			testPool("node-c", oldRev, rolledOut(2)))
		in.AppGroup.Spec.Restart.Strategy = ferryv1.RestartBlocking
		in.Halt = &ferryv1.HaltedRollout{Revision: targetRev, Node: "node-b", Reason: died}
		return looped(in)
	}
	want := "Rollout of revision 2-abc halted at 0/3 nodes updated: it died on node-a and node-b soon after it was ready " +
		"(" + died + "), with no older process to serve between its deaths; " +
		"their agents retry it with backoff, at most a minute apart, and the rollout goes on once a process of it lives " +
		crashWindow + ", the crash window, there; or change the ferry.dev/revision annotation or the app to start a new rollout"
	wantHaltAtEveryTurn(t, []haltTurn{
		{"node-a dies 1.2s after ready", blocking(testPool("node-a", targetRev, restartingBlocking(0, 2), crashedInWindow))},
		{"node-a retrying", blocking(testPool("node-a", targetRev, restartingBlocking(1, 2), crashedInWindow))},
		{"node-a dies 2.5s after ready", blocking(testPool("node-a", targetRev, restartingBlocking(0, 2),
			spawnFailed("exited with status 1 2.5s after it was ready")))},
	}, want)
}

// TestHaltQuotesANodeBesideItsOwnAlike: the halt recorded on node-a, and
// node-b, beside it, dying young at each of its agent's retries, each
// death's reason with its own lifetime: the clause of node-b's failure,
// which the halt's node is not in, quotes node-b's death without its
// lifetime ("soon after it was ready"), so that the message stays the
// same across node-b's deaths, not written anew, nor a `restart --wait`
// line printed, at each, nor with what the agent adds to a death in a
// request (", while handling a request (...)"), which one death has and
// the next may not. So where node-a failed another way (the app failed
// to load) and where it now runs another revision. (Seen failing
// before: the message quoted "1.2s after it was ready", then "2.5s";
// and, a death in a request, its suffix too.)
func TestHaltQuotesANodeBesideItsOwnAlike(t *testing.T) {
	abc := []string{"node-a", "node-b", "node-c"}
	const quote = "it died on node-b soon after it was ready (exited with status 1 soon after it was ready)"
	for _, tt := range []struct {
		name string
		a    *ferryv1.ProcessPool
		halt string
	}{
		{"the halt's node fails to load it", testPool("node-a", targetRev, restartingBlocking(0, 2),
			spawnFailed("the app failed to load")), "the app failed to load"},
		{"the halt's node on another revision", testPool("node-a", oldRev, rolledOut(2)),
			"exited with status 1 1.2s after it was ready"},
	} {
		of := func(b *ferryv1.ProcessPool) rollupInput {
			in := input(abc, tt.a.DeepCopy(), b, testPool("node-c", oldRev, rolledOut(2)))
			in.AppGroup.Spec.Restart.Strategy = ferryv1.RestartBlocking
			in.Halt = &ferryv1.HaltedRollout{Revision: targetRev, Node: "node-a", Reason: tt.halt}
			return looped(in)
		}
		t.Run(tt.name, func(t *testing.T) {
			sameHaltAtEveryTurn(t, []haltTurn{
				{"node-b's first death", of(testPool("node-b", targetRev, restartingBlocking(0, 2), crashedInWindow))},
				{"node-b retrying", of(testPool("node-b", targetRev, restartingBlocking(1, 2), crashedInWindow))},
				{"node-b dies 2.5s after ready", of(testPool("node-b", targetRev, restartingBlocking(0, 2),
					spawnFailed("exited with status 1 2.5s after it was ready")))},
				{"node-b dies in a request", of(testPool("node-b", targetRev, restartingBlocking(0, 2),
					spawnFailed("exited with status 1 3.1s after it was ready"+
						", while handling a request (not the first death in a row, and no process of this revision has lived past the crash window yet)")))},
			}, quote)
		})
	}
}

// TestHaltListsANodeWhileItRetries: beside the halt's node, failing, a
// node between two of its agent's tries of the target is listed while
// it still fails so, and leaves the list when that ends: a process of it
// lasted there, the node rolled out, its agent fell silent, its last
// failure is of another revision, or its spawns are blocked for no fault
// of the target; a failed spawn's node, whose failure is not a death
// that may come again once its process is ready, once a spawn of it
// works (ScalingError False), blocked before or not. (Seen failing
// before: a node whose failed spawns had ended, a spawn working, stayed
// listed until one of its processes lasted.)
func TestHaltListsANodeWhileItRetries(t *testing.T) {
	abc := []string{"node-a", "node-b", "node-c"}
	const loadFailed, portTaken = "the app failed to load", "could not listen on port 3000: address already in use"
	spawnsWork := func(p *ferryv1.ProcessPool) {
		setCond(p, ferryv1.ConditionScalingError, metav1.ConditionFalse, ferryv1.ReasonSpawnsHealthy, "")
	}
	for _, tt := range []struct {
		name   string
		b      *ferryv1.ProcessPool
		listed bool
	}{
		{"dying young, a retry spawning", testPool("node-b", targetRev, restartingBlocking(1, 2), crashedInWindow), true},
		{"dying young, a retry's process ready", testPool("node-b", targetRev, restartingBlocking(1, 2), counts(1, 1, 1),
			betweenDeaths), true},
		{"failing to spawn, a retry spawning", testPool("node-b", targetRev, restartingBlocking(1, 2), spawnFailed(loadFailed)), true},
		{"a process of it lasted", testPool("node-b", targetRev, restartingBlocking(1, 2), crashedInWindow, lasted), false},
		{"rolled out", testPool("node-b", targetRev, rolledOut(2), betweenDeaths), false},
		{"its agent silent", testPool("node-b", targetRev, restartingBlocking(1, 2), crashedInWindow,
			heartbeatAt(t0.Add(-10*staleAfter))), false},
		{"its last failure of another revision", testPool("node-b", targetRev, restartingBlocking(1, 2), crashedInWindow,
			spawnsOf(oldRev)), false},
		{"its spawns blocked", testPool("node-b", targetRev, restartingBlocking(1, 2), spawnFailed(portTaken), blocked), false},
		{"its spawns blocked, then one working", testPool("node-b", targetRev, restartingBlocking(1, 2), spawnFailed(portTaken),
			spawnsWork), false},
		{"failing to spawn, then one working", testPool("node-b", targetRev, restartingBlocking(1, 2), spawnFailed(loadFailed),
			spawnsWork), false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			in := input(abc, testPool("node-a", targetRev, restartingBlocking(0, 2), crashedInWindow), tt.b,
				testPool("node-c", oldRev, rolledOut(2)))
			in.AppGroup.Spec.Restart.Strategy = ferryv1.RestartBlocking
			in.Halt = &ferryv1.HaltedRollout{Revision: targetRev, Node: "node-a", Reason: "exited with status 1 1.2s after it was ready"}
			in = looped(in)
			c := rollingRestartCondition(in)
			if c.Reason != ferryv1.ReasonRolloutHalted || strings.Contains(c.Message, "node-b") != tt.listed {
				t.Errorf("RollingRestart = %s/%s: %q, want RolloutHalted naming node-b: %v", c.Status, c.Reason, c.Message, tt.listed)
			}
		})
	}
}

// TestHaltListsItsNodesAlikeWhereItsOwnNodeLasts: the halt's node, on
// the target and heard from, is listed until it rolls out, a process of
// the target having lasted there or not; a halt whose node is no longer
// selected names none: either way, another node dying young at each of
// its agent's retries is named at its deaths and between them alike, and
// the message does not flip between that node and the halt's at each
// turn, nor change with the lifetime of each of its deaths. (Seen
// failing before: between node-b's deaths the message named the halt's
// node alone, at them node-b alone; and, the halt's node deselected, it
// quoted node-b's "1.2s after it was ready", then "2.5s"; and, the
// halt's node lasted, its remedy said of both nodes "once every process
// there runs it and is ready", where node-b, not lasted, needs a process
// of it to live the crash window.)
func TestHaltListsItsNodesAlikeWhereItsOwnNodeLasts(t *testing.T) {
	abc := []string{"node-a", "node-b", "node-c"}
	dead := testPool("node-b", targetRev, restartingBlocking(0, 2), crashedInWindow)
	retrying := testPool("node-b", targetRev, restartingBlocking(1, 2), crashedInWindow)
	deadAgain := testPool("node-b", targetRev, restartingBlocking(0, 2), spawnFailed("exited with status 1 2.5s after it was ready"))
	lastedThere := func(b *ferryv1.ProcessPool) rollupInput {
		in := input(abc, testPool("node-a", targetRev, restartingBlocking(1, 2), counts(1, 1, 1), betweenDeaths, lasted), b,
			testPool("node-c", oldRev, rolledOut(2)))
		in.Halt = &ferryv1.HaltedRollout{Revision: targetRev, Node: "node-a", Reason: "exited with status 1 1.2s after it was ready"}
		return in
	}
	deselected := func(b *ferryv1.ProcessPool) rollupInput {
		in := input([]string{"node-b", "node-c"}, b, testPool("node-c", oldRev, rolledOut(2)))
		in.Halt = &ferryv1.HaltedRollout{Revision: targetRev, Node: "node-a", Reason: "exited with status 1 1.2s after it was ready"}
		return in
	}
	for _, tt := range []struct {
		name   string
		of     func(*ferryv1.ProcessPool) rollupInput
		words  string
		remedy string
	}{
		// node-a lasted and node-b did not: each waits for its own.
		{"the halt's node lasted", lastedThere, "it died on node-a and node-b soon after it was ready",
			"their agents retry it with backoff, at most a minute apart, and the rollout goes on once a process of it lives " +
				crashWindow + ", the crash window, on node-b and every process on node-a runs it and is ready; or change"},
		{"the halt's node no longer selected", deselected, "it died on node-b soon after it was ready",
			"its agent retries it with backoff, at most a minute apart, and the rollout goes on once a process of it lives " +
				crashWindow + ", the crash window, there; or change"},
	} {
		blocking := func(b *ferryv1.ProcessPool) rollupInput {
			in := tt.of(b.DeepCopy())
			in.AppGroup.Spec.Restart.Strategy = ferryv1.RestartBlocking
			return looped(in)
		}
		t.Run(tt.name, func(t *testing.T) {
			sameHaltAtEveryTurn(t, []haltTurn{
				{"node-b's death", blocking(dead)},
				{"between its deaths", blocking(retrying)},
				{"its next, after another lifetime", blocking(deadAgain)},
			}, tt.words, tt.remedy)
		})
	}
}

// TestHaltSaysNothingOlderWhereTheTargetLasts: on the remembered halt's
// node, a process of the target lived the crash window (lastedRevision)
// and serves, its last spawn error still a young death: its processes no
// longer die young at every retry, so the halt says nothing of older
// processes there, as where any process of the target serves, not "with
// no older process to serve between its deaths" while a lasting one
// serves. (Seen failing before: diesYoungRetried read the last spawn
// error alone, and the message said so.)
func TestHaltSaysNothingOlderWhereTheTargetLasts(t *testing.T) {
	abc := []string{"node-a", "node-b", "node-c"}
	in := input(abc, testPool("node-a", targetRev, restartingBlocking(1, 2), counts(1, 1, 1), betweenDeaths, lasted,
		func(p *ferryv1.ProcessPool) {
			p.Status.Processes = []ferryv1.ProcessInfo{{PID: 3, Revision: targetRev, State: ferryv1.ProcessReady}}
		}), testPool("node-b", oldRev, rolledOut(2)), testPool("node-c", oldRev, rolledOut(2)))
	in.AppGroup.Spec.Restart.Strategy = ferryv1.RestartBlocking
	in.Halt = &ferryv1.HaltedRollout{Revision: targetRev, Node: "node-a", Reason: "exited with status 1 1.2s after it was ready"}
	in = looped(in)
	wantHaltSaying(t, in, "it died on node-a soon after it was ready (exited with status 1 1.2s after it was ready); ")
}

// TestHaltQuotesAProvenTargetsDeathsAlike: the target proven (it lived
// on node-c), no halt is recorded where it fails, so no record's reason
// keeps the message steady: on node-a, its Blocking restart under way,
// its processes die young at each of its agent's retries, each death's
// reason with its own lifetime, one of them in a request. The halt
// quotes node-a's deaths without their lifetime ("soon after it was
// ready"), as it quotes another node's beside a recorded halt, so that
// the message is the same at each death, not written anew, nor a
// `restart --wait` line printed, at each; so too where node-b fails to
// spawn it beside (the first of two clauses), and where node-a, dying
// young too, is quoted for both (one clause). (Seen failing before: the
// message quoted "1.2s after it was ready", then "2.5s", then "3.1s"
// and the request's suffix.)
func TestHaltQuotesAProvenTargetsDeathsAlike(t *testing.T) {
	abc := []string{"node-a", "node-b", "node-c"}
	deaths := []struct{ name, reason string }{
		{"dies 1.2s after ready", "exited with status 1 1.2s after it was ready"},
		{"dies 2.5s after ready", "exited with status 1 2.5s after it was ready"},
		{"dies in a request", "exited with status 1 3.1s after it was ready" +
			", while handling a request (not the first death in a row, and no process of this revision has lived past the crash window yet)"},
	}
	for _, tt := range []struct {
		name  string
		b     func(reason string) *ferryv1.ProcessPool
		words string
	}{
		{"node-b on an older revision", func(string) *ferryv1.ProcessPool { return testPool("node-b", oldRev, rolledOut(2)) },
			"it died on node-a soon after it was ready (exited with status 1 soon after it was ready)"},
		{"node-b failing to spawn it", func(string) *ferryv1.ProcessPool {
			return testPool("node-b", targetRev, restartingBlocking(0, 2), spawnFailed("the app failed to load"))
		}, "it died on node-a soon after it was ready (exited with status 1 soon after it was ready)"},
		{"node-b dying young alike", func(reason string) *ferryv1.ProcessPool {
			return testPool("node-b", targetRev, restartingBlocking(0, 2), spawnFailed(reason))
		}, "it died on node-a and node-b soon after it was ready (exited with status 1 soon after it was ready)"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var turns []haltTurn
			for _, d := range deaths {
				in := provenIn(input(abc, testPool("node-a", targetRev, restartingBlocking(0, 2), spawnFailed(d.reason)),
					tt.b(d.reason), testPool("node-c", targetRev, rolledOut(2), lasted)))
				in.AppGroup.Spec.Restart.Strategy = ferryv1.RestartBlocking
				turns = append(turns, haltTurn{"node-a " + d.name, recorded(in)})
			}
			if turns[0].in.Halt != nil {
				t.Fatalf("halt recorded %+v, want none: the target is proven", turns[0].in.Halt)
			}
			sameHaltAtEveryTurn(t, turns, tt.words)
		})
	}
}

// TestHaltQuotesANewKindOfFailure: a halt recorded where the target
// failed to spawn (the app failed to load) quotes its processes' death
// soon after ready once the node fails that way instead, its agent's
// retries loading it since, and then keeps quoting that first death,
// steady across deaths of that kind (each with its own lifetime) and
// between them; and quotes a failed spawn again when the node fails so
// again. The status's record of the halt takes the new reason, so that
// kubectl ferry status's header quotes it too. (Seen failing before:
// every turn quoted "the app failed to load", and said the rollout goes
// on once it starts there, which it did.)
func TestHaltQuotesANewKindOfFailure(t *testing.T) {
	abc := []string{"node-a", "node-b", "node-c"}
	// pass is a pass over node-a's pool, the halt as the pass before
	// left it, which it records anew.
	pass := func(halt *ferryv1.HaltedRollout, opts ...poolOpt) rollupInput {
		in := input(abc, testPool("node-a", targetRev, opts...),
			testPool("node-b", oldRev, rolledOut(2)), testPool("node-c", oldRev, rolledOut(2)))
		in.AppGroup.Spec.Restart.Strategy = ferryv1.RestartBlocking
		in.Halt = halt
		return recorded(in)
	}
	var (
		loadFailed = "Rollout of revision 2-abc halted at 0/3 nodes updated: it failed to spawn on node-a (the app failed to load), " +
			"with no older process to keep serving; its agent retries it with backoff, at most a minute apart, and the rollout " +
			"goes on once it starts there; or change the ferry.dev/revision annotation or the app to start a new rollout"
		died = "Rollout of revision 2-abc halted at 0/3 nodes updated: it died on node-a soon after it was ready " +
			"(exited with status 1 1.2s after it was ready), with no older process to serve between its deaths; " +
			"its agent retries it with backoff, at most a minute apart, and the rollout goes on once a process of it lives " +
			crashWindow + ", the crash window, there; or change the ferry.dev/revision annotation or the app to start a new rollout"
		diedBlocked = strings.Replace(died, "to serve between its deaths", "to keep serving", 1)
	)
	halt := (*ferryv1.HaltedRollout)(nil)
	for _, turn := range []struct {
		name string
		opts []poolOpt
		want string
	}{
		{"the app fails to load", []poolOpt{restartingBlocking(0, 2), spawnFailed("the app failed to load")}, loadFailed},
		{"a retry loads it, and it dies soon after ready", []poolOpt{restartingBlocking(0, 2), crashedInWindow}, died},
		{"a retry spawning", []poolOpt{restartingBlocking(1, 2), crashedInWindow}, died},
		// A spawn blocked for no fault of the revision says nothing of
		// whether it starts: the halt still quotes the death.
		{"a retry blocked, its port taken", []poolOpt{restartingBlocking(0, 2),
			spawnFailed("could not listen on port 3000: address already in use"), blocked}, diedBlocked},
		{"it dies again, after another lifetime", []poolOpt{restartingBlocking(0, 2),
			spawnFailed("exited with status 1 2.5s after it was ready")}, died},
		{"it fails to load again", []poolOpt{restartingBlocking(0, 2), spawnFailed("the app failed to load")}, loadFailed},
	} {
		in := pass(halt, turn.opts...)
		halt = in.Halt
		c := rollingRestartCondition(in)
		if c.Reason != ferryv1.ReasonRolloutHalted || c.Message != turn.want {
			t.Errorf("%s: RollingRestart = %s/%s:\n%q\nwant RolloutHalted:\n%q", turn.name, c.Status, c.Reason, c.Message, turn.want)
		}
		if halt == nil || !strings.Contains(turn.want, "("+halt.Reason+")") {
			t.Errorf("%s: the halt recorded %+v, want the reason the message quotes", turn.name, halt)
		}
	}
}

// TestHaltSaysNothingOlderWhereTheCountsCannotTell: on the remembered
// halt's node, mid-way through a Rolling restart whose processes of the
// target die young, an agent that sends no process table reports one of
// its two processes ready and one updated: the ready one may be the old
// one or the retry's, so the halt says nothing of older processes there,
// neither that they serve nor that none does. (Seen failing before: it
// said "with no older process to serve between its deaths".)
func TestHaltSaysNothingOlderWhereTheCountsCannotTell(t *testing.T) {
	abc := []string{"node-a", "node-b", "node-c"}
	in := resistingNothing(input(abc, testPool("node-a", targetRev, restarting(0, 2), crashedInWindow, counts(1, 1, 2), noTable),
		testPool("node-b", oldRev, rolledOut(2)), testPool("node-c", oldRev, rolledOut(2))))
	in = withHalt(in, "node-a", "exited with status 1 1.2s after it was ready")
	in.Halt.Resisted = false
	in = looped(in)
	wantHaltSaying(t, in, "it died on node-a soon after it was ready (exited with status 1 1.2s after it was ready); its agent retries it")
}

// TestHaltRemedyWhereTheTargetLasted: where a process of the target
// lived the crash window on the node its agent retries (lastedRevision),
// its last spawn error still a young death, the halt says the rollout
// goes on once every process there runs it and is ready, as the node then
// rolls out (settle waits no crash window there), not once one lives the
// crash window, which one did. Both where the node's retry serves (the
// halt remembered) and where none of it runs (the node failing). (Seen
// failing before: both said "once a process of it lives 10s, the crash
// window, there".)
func TestHaltRemedyWhereTheTargetLasted(t *testing.T) {
	abc := []string{"node-a", "node-b", "node-c"}
	const words = "its agent retries it with backoff, at most a minute apart, and the rollout goes on once every " +
		"process there runs it and is ready; or change"
	blocking := func(pool *ferryv1.ProcessPool) rollupInput {
		in := input(abc, pool, testPool("node-b", oldRev, rolledOut(2)), testPool("node-c", oldRev, rolledOut(2)))
		in.AppGroup.Spec.Restart.Strategy = ferryv1.RestartBlocking
		in.Halt = &ferryv1.HaltedRollout{Revision: targetRev, Node: "node-a", Reason: "exited with status 1 1.2s after it was ready"}
		return looped(in)
	}
	for _, tt := range []struct {
		name string
		in   rollupInput
	}{
		{"a retry's process ready", blocking(testPool("node-a", targetRev, restartingBlocking(1, 2), counts(1, 1, 1),
			betweenDeaths, lasted))},
		{"none of it running", blocking(testPool("node-a", targetRev, restartingBlocking(0, 2), crashedInWindow, lasted))},
	} {
		c := rollingRestartCondition(tt.in)
		if c.Reason != ferryv1.ReasonRolloutHalted || !strings.Contains(c.Message, words) {
			t.Errorf("%s: RollingRestart = %s/%s: %q, want RolloutHalted saying %q", tt.name, c.Status, c.Reason, c.Message, words)
		}
	}
}

// TestNameTakenMessage: the Service in the way is named, with what it
// costs and what to do. (It listed EndpointSlices too, saying the same of
// them: their endpoints go into another slice now, and Ready does not
// name them.)
func TestNameTakenMessage(t *testing.T) {
	for _, tt := range []struct {
		taken []nameTaken
		want  string
	}{
		{[]nameTaken{{"Service", "shop"}}, "Service shop is not this AppGroup's (the manager never takes over an object " +
			"it did not make), so no request reaches the pools through the AppGroup's Service: rename or delete that " +
			"Service, and the manager makes the AppGroup's own"},
	} {
		if got := nameTakenMessage(tt.taken); got != tt.want {
			t.Errorf("got  %q\nwant %q", got, tt.want)
		}
	}
}

// TestPoolNamesTaken: a node whose pool other ProcessPools keep from
// being made (both its names taken) reads NameTaken in Ready, naming the
// node, the ProcessPools and what to do; behind a Service taken too, after
// "The pools:". Before, Ready waited for the agent's first report there
// (PoolsPending), and only a WriteFailed event named them.
func TestPoolNamesTaken(t *testing.T) {
	a := poolNamesTaken{node: "node-a", names: []string{"blog-node-a", "blog-node-a-0123456789"}}
	b := poolNamesTaken{node: "node-b", names: []string{"blog-node-b", "blog-node-b-9876543210"}}
	one := "No pool on node-a: ProcessPools blog-node-a and blog-node-a-0123456789, the names it would have, are not this " +
		"AppGroup's (the manager never takes over an object it did not make): delete either, and the manager makes the AppGroup's own"
	for _, tt := range []struct {
		name  string
		taken []poolNamesTaken
		svc   []nameTaken
		want  string
	}{
		{"one node", []poolNamesTaken{a}, nil, one},
		{"two nodes", []poolNamesTaken{a, b}, nil, "No pools on node-a and node-b: the names each would have are other " +
			"ProcessPools' (the manager never takes over an object it did not make), on node-a ProcessPools blog-node-a and " +
			"blog-node-a-0123456789: delete either of each node's, and the manager makes the AppGroup's own"},
		{"and the Service", []poolNamesTaken{a}, []nameTaken{{"Service", "blog"}},
			nameTakenMessage([]nameTaken{{"Service", "blog"}}) + ". The pools: " + one},
	} {
		t.Run(tt.name, func(t *testing.T) {
			in := input([]string{"node-a", "node-b", "node-c"}, testPool("node-c", targetRev, rolledOut(2)))
			if len(tt.taken) == 1 {
				in.Nodes = []string{"node-a", "node-c"}
			}
			in.PoolTaken, in.Taken = tt.taken, tt.svc
			c := readyCondition(in)
			if c.Status != metav1.ConditionFalse || c.Reason != ferryv1.ReasonNameTaken || c.Message != tt.want {
				t.Errorf("Ready %s, %s, %q\nwant False, NameTaken, %q", c.Status, c.Reason, c.Message, tt.want)
			}
		})
	}
}

// TestTakenRecheckAfter: an AppGroup whose names are taken looks again
// after 10s at first, then after as long as they have been taken, at
// most 5 minutes apart.
func TestTakenRecheckAfter(t *testing.T) {
	for _, tt := range []struct{ takenFor, want time.Duration }{
		{0, 10 * time.Second},
		{3 * time.Second, 10 * time.Second},
		{10 * time.Second, 10 * time.Second},
		{25 * time.Second, 25 * time.Second},
		{2 * time.Minute, 2 * time.Minute},
		{5 * time.Minute, 5 * time.Minute},
		{3 * time.Hour, 5 * time.Minute},
	} {
		if got := takenRecheckAfter(t0.Add(-tt.takenFor), t0); got != tt.want {
			t.Errorf("taken for %v: looks again after %v, want %v", tt.takenFor, got, tt.want)
		}
	}
}

// TestAlsoTaken: behind a reason that ranks above NameTaken, Ready's
// message says which names are taken after "Also:", the Service's and
// the pools', whole even when the reason's own message is long, and
// splitTaken parts them again.
func TestAlsoTaken(t *testing.T) {
	svc := []nameTaken{{"Service", "shop"}}
	pool := []poolNamesTaken{{node: "node-a", names: []string{"shop-node-a", "shop-node-a-0123456789"}}}
	for _, tt := range []struct {
		name      string
		taken     []nameTaken
		poolTaken []poolNamesTaken
		want      string
	}{
		{"the Service", svc, nil, nameTakenMessage(svc)},
		{"a pool", nil, pool, poolNamesTakenMessage(pool)},
		{"both", svc, pool, nameTakenMessage(svc) + ". The pools: " + poolNamesTakenMessage(pool)},
	} {
		for _, own := range []string{"listen.port 8080 is taken by AppGroup shop/cart on node-b", strings.Repeat("x", 2*maxMessage)} {
			c := alsoTaken(metav1.Condition{Type: ferryv1.ConditionReady, Reason: ferryv1.ReasonPortConflict, Message: own}, tt.taken, tt.poolTaken)
			gotOwn, gotTaken := splitTaken(c)
			if len(c.Message) > maxMessage || gotTaken != tt.want || !strings.HasPrefix(own, strings.TrimSuffix(gotOwn, "...")) {
				t.Errorf("%s: message %q (%d bytes) parts into %q and %q", tt.name, c.Message, len(c.Message), gotOwn, gotTaken)
			}
		}
	}
	if c := alsoTaken(metav1.Condition{Reason: ferryv1.ReasonNoNodes, Message: "No node"}, nil, nil); c.Message != "No node" {
		t.Errorf("nothing taken: message %q", c.Message)
	}
	// listen.port taken on node-b, and node-a's pool names: Ready says
	// both, so that the user who frees the port is not met by NameTaken
	// next (found by review: it named the port alone).
	in := input([]string{"node-a", "node-c"}, testPool("node-c", targetRev, rolledOut(2)))
	in.PortLost = map[string]types.NamespacedName{"node-b": {Namespace: "shop", Name: "cart"}}
	in.PoolTaken = pool
	c := readyCondition(in)
	if _, gotTaken := splitTaken(c); c.Reason != ferryv1.ReasonPortConflict || gotTaken != poolNamesTakenMessage(pool) {
		t.Errorf("Ready %s: %q, want PortConflict, then %q", c.Reason, c.Message, takenAlso+poolNamesTakenMessage(pool))
	}
	// Another reason's message is not parted: it may quote an agent.
	if own, tk := splitTaken(metav1.Condition{Reason: ferryv1.ReasonProcessesNotReady, Message: "a" + takenAlso + "b"}); tk != "" || own != "a"+takenAlso+"b" {
		t.Errorf("ProcessesNotReady parted into %q and %q", own, tk)
	}
}

// TestTakenKinds: which kinds of names Ready says are taken is read back
// from Ready as readyCondition writes it, whatever its reason, and from
// nothing that only looks the same: a node with no pool for want of a
// revision ("No pool on node-b: no node serves ...") is no pool's names
// taken (NameTakenResolved said they were freed), nor is the pools' own
// message after the Service's.
func TestTakenKinds(t *testing.T) {
	svc := []nameTaken{{"Service", "blog"}}
	a := poolNamesTaken{node: "node-a", names: []string{"blog-node-a", "blog-node-a-0123456789"}}
	b := poolNamesTaken{node: "node-b", names: []string{"blog-node-b", "blog-node-b-9876543210"}}
	poolless := func(in *rollupInput) {
		in.Nodes = append(in.Nodes, "node-b")
		in.RevisionErr, in.Unserved = errors.New("revision annotation is empty"), []string{"node-b"}
	}
	for _, tt := range []struct {
		name           string
		fn             func(in *rollupInput)
		service, pools bool
	}{
		{"none", func(*rollupInput) {}, false, false},
		{"the Service", func(in *rollupInput) { in.Taken = svc }, true, false},
		{"a pool", func(in *rollupInput) { in.Nodes, in.PoolTaken = []string{"node-a", "node-c"}, []poolNamesTaken{a} }, false, true},
		{"two pools", func(in *rollupInput) {
			in.Nodes, in.PoolTaken = []string{"node-a", "node-b", "node-c"}, []poolNamesTaken{a, b}
		}, false, true},
		{"the Service and two pools", func(in *rollupInput) {
			in.Nodes, in.Taken, in.PoolTaken = []string{"node-a", "node-b", "node-c"}, svc, []poolNamesTaken{a, b}
		}, true, true},
		{"a node with no pool", poolless, false, false},
		{"the Service beside a node with no pool", func(in *rollupInput) { poolless(in); in.Taken = svc }, true, false},
		{"behind PortConflict", func(in *rollupInput) {
			in.PortLost = map[string]types.NamespacedName{"node-b": {Namespace: "shop", Name: "cart"}}
			in.Nodes, in.Taken, in.PoolTaken = []string{"node-a", "node-c"}, svc, []poolNamesTaken{a}
		}, true, true},
		{"behind NoNodes", func(in *rollupInput) { in.Nodes, in.Reports, in.Taken = nil, nil, svc }, true, false},
		{"behind InvalidRevision", func(in *rollupInput) {
			in.Target, in.RevisionErr = "", errors.New("revision annotation is empty")
			in.PoolTaken = []poolNamesTaken{a, b}
		}, false, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			in := input([]string{"node-c"}, testPool("node-c", targetRev, rolledOut(2)))
			tt.fn(&in)
			c := readyCondition(in)
			if service, pools := takenKinds(in.AppGroup, c); service != tt.service || pools != tt.pools {
				t.Errorf("Ready %s %q: Service's taken %v, pools' %v; want %v, %v", c.Reason, c.Message, service, pools, tt.service, tt.pools)
			}
		})
	}
	// An older manager's status that named an EndpointSlice names
	// neither kind.
	old := metav1.Condition{Reason: ferryv1.ReasonNameTaken, Message: nameTakenMessage([]nameTaken{{"EndpointSlice", "blog"}})}
	if service, pools := takenKinds(input(nil).AppGroup, old); service || pools {
		t.Errorf("an EndpointSlice named: Service's taken %v, pools' %v", service, pools)
	}
}

// TestNoNodesMessage: Ready's message with no node names the labels a node
// needs, in the selector's form and as kubectl label takes them.
func TestNoNodesMessage(t *testing.T) {
	tests := []struct {
		selector map[string]ferryv1.LabelValue
		want     string
	}{
		{nil, "No node matches spec.nodeSelector: it is empty and selects every node, and the cluster has none; " +
			"the app runs once a node joins"},
		{map[string]ferryv1.LabelValue{"web": "true"}, "No node matches spec.nodeSelector (web=true): label the nodes " +
			"to run the app on (kubectl label node NODE web=true), or change spec.nodeSelector"},
		{map[string]ferryv1.LabelValue{"zone": "a", "example.com/web": ""}, "No node matches spec.nodeSelector " +
			"(example.com/web=,zone=a): label the nodes to run the app on (kubectl label node NODE example.com/web= zone=a), " +
			"or change spec.nodeSelector"},
	}
	for _, tt := range tests {
		if got := noNodesMessage(tt.selector); got != tt.want {
			t.Errorf("noNodesMessage(%v) =\n%s\nwant\n%s", tt.selector, got, tt.want)
		}
	}
}

// TestUnlistedMessage: Ready names the nodes the Service leaves out, the
// first one's address and why, and what to set; a node listed, or whose
// pool has no address yet, is not named.
func TestUnlistedMessage(t *testing.T) {
	ab := []string{"node-a", "node-b"}
	pools := func(a, b string) []*ferryv1.ProcessPool {
		return []*ferryv1.ProcessPool{testPool("node-a", targetRev, rolledOut(2), address(a)),
			testPool("node-b", targetRev, rolledOut(2), address(b))}
	}
	one := func(why string) string {
		return ". Not behind the Service: node-b (its agent reports " + why +
			": set its --advertise-address, agent.advertiseAddress in the chart, to an IPv4 address of the node)"
	}
	for _, tc := range []struct{ a, b, want string }{
		{"192.0.2.2:8080", "192.0.2.3:8080", ""},
		{"192.0.2.2:8080", "", ""}, // no address yet
		{"192.0.2.2:8080", "0.0.0.0:8080", one("0.0.0.0, the unspecified address, which the API server takes in no EndpointSlice")},
		{"192.0.2.2:8080", "127.0.0.3:8080", one("127.0.0.3, a loopback address, which the API server takes in no EndpointSlice")},
		{"192.0.2.2:8080", "169.254.1.1:8080", one("169.254.1.1, a link-local address, which the API server takes in no EndpointSlice")},
		{"192.0.2.2:8080", "[2001:db8::9]:8080", one("2001:db8::9, an IPv6 address; Ferry lists IPv4 addresses only in the Service's EndpointSlices")},
		{"192.0.2.2:8080", ":8080", one(`":8080", not an IP address`)},
		{"192.0.2.2:8080", "node-b:8080", one(`"node-b:8080", not an IP address`)},
		{"0.0.0.0:8080", "127.0.0.3:8080", ". Not behind the Service: node-a and node-b (their agents report addresses it cannot list, " +
			"node-a's 0.0.0.0, the unspecified address, which the API server takes in no EndpointSlice: set each agent's " +
			"--advertise-address, agent.advertiseAddress in the chart, to an IPv4 address of its node)"},
	} {
		if got := unlistedMessage(input(ab, pools(tc.a, tc.b)...)); got != tc.want {
			t.Errorf("node-a at %q, node-b at %q:\n got %q\nwant %q", tc.a, tc.b, got, tc.want)
		}
	}
}

// TestCrashLoopStatus: status.crashLoop names the target, the nodes where
// it dies young with nothing to return them, and why nothing does
// (contract.NotReturnedWhy), from the first young death; nothing where
// the manager returns the node (resistance on, not proven, an older
// revision to return to), where a process lived the crash window, or
// where the last young death is another revision's. It reads the same
// at every turn of a loop, a death, a replacement booting, one ready, so
// that it costs no status write of its own (seen failing, before the
// field: every case but the nil ones read no crashLoop).
func TestCrashLoopStatus(t *testing.T) {
	noOlder := func(in rollupInput) rollupInput {
		in.LastRolledOut = nil
		return in
	}
	blocking := func(in rollupInput) rollupInput {
		in.AppGroup.Spec.Restart.Strategy = ferryv1.RestartBlocking
		return in
	}
	loop := func(reason, why string) *ferryv1.CrashLoop {
		return &ferryv1.CrashLoop{Revision: targetRev, Nodes: []string{"node-a"}, NodeCount: 1, Reason: reason, Message: why}
	}
	const (
		noOlderRuns = "no older revision runs"
		isOff       = "resistDeploymentErrors is false"
	)
	resistedHere := func(in rollupInput) rollupInput { return withHalt(provenIn(in), "node-a", "exited with status 1") }
	resistedThere := func(in rollupInput) rollupInput { return withHalt(provenIn(in), "node-b", "exited with status 1") }
	tests := []struct {
		name string
		in   rollupInput
		want *ferryv1.CrashLoop
	}{
		{"first revision, resistance on: nothing older", crashLoopInput(noOlder, dyingYoung), loop(ferryv1.CrashLoopNoOlderRevision, noOlderRuns)},
		{"first revision, one process dead, none running", crashLoopInput(noOlder, diedAlone), loop(ferryv1.CrashLoopNoOlderRevision, noOlderRuns)},
		{"resistance off", crashLoopInput(resistingNothing, dyingYoung), loop(ferryv1.CrashLoopResistanceOff, isOff)},
		{"Blocking", crashLoopInput(blocking, dyingYoung), loop(ferryv1.CrashLoopBlockingRestart, "a Blocking restart resists no deployment error")},
		{"proven, a process lived the crash window on the node", crashLoopInput(provenIn, dyingYoung, lasted), nil},
		{"proven, dying young on the node", crashLoopInput(provenIn, dyingYoung),
			loop(ferryv1.CrashLoopRevisionProven, "revision "+targetRev+" lasted on a node before: status.provenRevision")},
		// The manager returns a node that resisted the target even
		// once it is proven (returnsFromTarget): no loop names it.
		{"proven, the node resisted it: returned, no loop", crashLoopInput(resistedHere, diedAlone), nil},
		{"proven, the node resisted it, between deaths: no loop", crashLoopInput(resistedHere, dyingYoung), nil},
		{"proven, another node resisted it: this one stays", crashLoopInput(resistedThere, diedAlone),
			loop(ferryv1.CrashLoopRevisionProven, "revision "+targetRev+" lasted on a node before: status.provenRevision")},
		{"resistance on, an older revision to return to: returned, no loop", crashLoopInput(func(in rollupInput) rollupInput { return in }, dyingYoung), nil},
		{"a process lived the crash window", crashLoopInput(resistingNothing, dyingYoung, lasted), nil},
		{"the last young death is an older revision's", crashLoopInput(resistingNothing, dyingYoung, spawnsOf(oldRev)), nil},
		{"a failed spawn, not a young death", crashLoopInput(resistingNothing, spawnFailed("exited with status 1")), nil},
		{"its agent is silent: its word is not taken", crashLoopInput(resistingNothing, dyingYoung, heartbeatAt(t0.Add(-time.Minute))), nil},
		{"no valid revision ever", crashLoopInput(func(in rollupInput) rollupInput {
			return withRevisionErr(resistingNothing(in), "revision annotation is empty", true)
		}, dyingYoung), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := computeStatus(tt.in).CrashLoop
			if !equality.Semantic.DeepEqual(got, tt.want) {
				t.Errorf("status.crashLoop = %+v, want %+v", got, tt.want)
			}
		})
	}

	// One value at every turn of the loop: no write of its own.
	want := loop(ferryv1.CrashLoopResistanceOff, isOff)
	for _, opts := range [][]poolOpt{{diedAlone}, {bootsAlone}, {readyAlone}, {dyingYoung}, {betweenDeaths}} {
		if got := computeStatus(crashLoopInput(resistingNothing, opts...)).CrashLoop; !equality.Semantic.DeepEqual(got, want) {
			t.Errorf("status.crashLoop = %+v, want %+v at every turn", got, want)
		}
	}
}

// TestCrashLoopGoesWithDeletion: a deleted AppGroup's status names no
// crash loop: its pools drain, and nothing respawns.
func TestCrashLoopGoesWithDeletion(t *testing.T) {
	in := crashLoopInput(resistingNothing, dyingYoung)
	in.AppGroup.Status.CrashLoop = in.CrashLoop // as the last pass left it
	var pools []poolReport
	for _, r := range in.Reports {
		pools = append(pools, r)
	}
	if got := deletingStatus(in.AppGroup, pools, t0, staleAfter).CrashLoop; got != nil {
		t.Errorf("status.crashLoop = %+v while deleting, want none", *got)
	}
}

// TestCrashLoopNamesNoNodeTheManagerReturns: where none of the target
// runs on a node (diedAlone: FailsTarget), the manager returns the node
// (returnsFromTarget) exactly when status.crashLoop does not name it: one
// rule (contract.NotReturnedWhy), or kubectl ferry restart --wait would
// end in ErrCrashLoop, "nothing returns the node", on a node the manager
// returns (seen failing before: a node that resisted a proven target was
// named "revision R lasted on a node before").
func TestCrashLoopNamesNoNodeTheManagerReturns(t *testing.T) {
	restarts := map[string]func(rollupInput) rollupInput{
		"Rolling":        func(in rollupInput) rollupInput { return in },
		"resistance off": resistingNothing,
		"Blocking": func(in rollupInput) rollupInput {
			in.AppGroup.Spec.Restart.Strategy = ferryv1.RestartBlocking
			return in
		},
	}
	for name, restart := range restarts {
		for _, proven := range []bool{false, true} {
			for _, haltOn := range []string{"", "node-a", "node-b"} {
				in := crashLoopInput(func(in rollupInput) rollupInput {
					in = restart(in)
					if proven {
						in = provenIn(in)
					}
					if haltOn != "" {
						in = withHalt(in, haltOn, "exited with status 1")
					}
					return in
				}, diedAlone)
				r := in.Reports["node-a"]
				if !r.FailsTarget {
					t.Fatalf("%s: node-a does not fail the target: the case proves nothing", name)
				}
				returned := returnsFromTarget(in.AppGroup, r, proven, in.Halt)
				if named := loopsAt(in.CrashLoop, "node-a"); named == returned {
					t.Errorf("%s, proven %v, halt on %q: returnsFromTarget %v, status.crashLoop names the node %v",
						name, proven, haltOn, returned, named)
				}
			}
		}
	}
}

// TestCrashLoopStatusCutsItsNodes: status.crashLoop names at most
// MaxCrashLoopNodes nodes (its MaxItems), nodeCount counting them all;
// the manager itself reads the whole loop (loopsOn).
func TestCrashLoopStatusCutsItsNodes(t *testing.T) {
	n := ferryv1.MaxCrashLoopNodes + 3
	var nodes []string
	var pools []*ferryv1.ProcessPool
	for i := range n {
		node := fmt.Sprintf("node-%03d", i)
		nodes = append(nodes, node)
		pools = append(pools, testPool(node, targetRev, rolledOut(2), dyingYoung))
	}
	in := input(nodes, pools...)
	in.LastRolledOut = &ferryv1.RolledOutRevision{Revision: oldRev}
	unstarted(in.Reports)
	settle(in.Reports, t0, 10*time.Second)
	in = looped(resistingNothing(in))
	if in.CrashLoop == nil || len(in.CrashLoop.Nodes) != n {
		t.Fatalf("the manager's loop = %+v, want all %d nodes", in.CrashLoop, n)
	}
	got := computeStatus(in).CrashLoop
	if got == nil || len(got.Nodes) != ferryv1.MaxCrashLoopNodes || got.NodeCount != int32(n) ||
		got.Nodes[0] != nodes[0] || got.Nodes[len(got.Nodes)-1] != nodes[ferryv1.MaxCrashLoopNodes-1] {
		t.Fatalf("status.crashLoop = %+v, want the first %d of %d nodes, nodeCount %d", got, ferryv1.MaxCrashLoopNodes, n, n)
	}
	if len(in.CrashLoop.Nodes) != n {
		t.Errorf("publishing the loop cut the manager's own: %d nodes", len(in.CrashLoop.Nodes))
	}
}

// TestCrashLoopOutlivesAnInvalidAnnotation: while the revision annotation
// is invalid, the revision that stays the target still loops, and
// scope.remember still derives the loop (status.crashLoop, RollingRestart's
// note), though it neither proves the target nor records a halt then
// (seen failing with the loop derived only for a valid annotation:
// status.crashLoop went, the loop going on).
func TestCrashLoopOutlivesAnInvalidAnnotation(t *testing.T) {
	ag := &ferryv1.AppGroup{}
	ag.Spec.Restart.ResistDeploymentErrors = ptr.To(false)
	s := &scope{ag: ag, target: targetRev, now: t0, settle: 10 * time.Second, nodes: []string{"node-a"},
		pools:    map[string]*ferryv1.ProcessPool{"node-a": testPool("node-a", targetRev, rolledOut(2), dyingYoung)},
		lastGood: &ferryv1.RolledOutRevision{Revision: oldRev}}
	want := &ferryv1.CrashLoop{Revision: targetRev, Nodes: []string{"node-a"}, NodeCount: 1,
		Reason: ferryv1.CrashLoopResistanceOff, Message: "resistDeploymentErrors is false"}
	s.remember(s.reports(staleAfter))
	if !equality.Semantic.DeepEqual(s.loop, want) {
		t.Fatalf("the annotation valid: loop = %+v, want %+v", s.loop, want)
	}
	halt := s.halt.DeepCopy()

	// The annotation turns invalid: the target stays, and so does its loop.
	s.revisionErr = errors.New("revision annotation is not a valid revision")
	s.remember(s.reports(staleAfter))
	if !equality.Semantic.DeepEqual(s.loop, want) {
		t.Errorf("the annotation invalid: loop = %+v, want %+v", s.loop, want)
	}
	if !equality.Semantic.DeepEqual(s.halt, halt) {
		t.Errorf("the annotation invalid: halt = %+v, want it kept as %+v", s.halt, halt)
	}
	in := s.input(s.reports(staleAfter))
	in.StaleAfter = staleAfter
	if got := computeStatus(in).CrashLoop; !equality.Semantic.DeepEqual(got, want) {
		t.Errorf("the annotation invalid: status.crashLoop = %+v, want %+v", got, want)
	}
}

// TestCrashLoopNamesNoNodeResistingIt: a node whose young death of a
// proven target it resists (its old processes serve on) halts the
// rollout, and the pass that records that halt as resisted reads the loop
// again from it (scope.remember): the node is in no crash loop "nothing
// returns" (seen failing with the loop read only from the halt the pass
// started with: status.crashLoop named it, RevisionProven).
func TestCrashLoopNamesNoNodeResistingIt(t *testing.T) {
	const death = "exited with status 1 1.2s after it was ready"
	ag := &ferryv1.AppGroup{}
	s := &scope{ag: ag, target: targetRev, now: t0, settle: 10 * time.Second, nodes: []string{"node-a"},
		pools: map[string]*ferryv1.ProcessPool{"node-a": testPool("node-a", targetRev, rolledOut(2), dyingYoung,
			resists(targetRev, death, ""))},
		lastGood: &ferryv1.RolledOutRevision{Revision: oldRev}, proven: targetRev}
	reports := s.reports(staleAfter)
	if r := reports["node-a"]; !r.ResistsTarget {
		t.Fatalf("node-a does not resist the target: the case proves nothing (%+v)", r)
	}
	s.remember(reports)
	if !contract.ResistedOn(s.halt, "node-a", targetRev) {
		t.Fatalf("halt = %+v, want node-a's, resisted", s.halt)
	}
	if s.loop != nil {
		t.Errorf("loop = %+v, want none: node-a resists the target", s.loop)
	}
}

// TestCrashLoopNamesTheNodeOfAResistedHaltReleased: the pass that
// releases a resisted halt (its node runs the proven target rolled out
// again, between two young deaths) reads the loop again from the new
// record too (scope.remember): the node is no longer returned from the
// target, so the loop names it, RevisionProven, in that very pass (seen
// failing with the loop read only from the halt the pass started with:
// no loop while the halt was gone).
func TestCrashLoopNamesTheNodeOfAResistedHaltReleased(t *testing.T) {
	s := &scope{ag: &ferryv1.AppGroup{}, target: targetRev, now: t0, settle: 10 * time.Second, nodes: []string{"node-a", "node-b"},
		pools: map[string]*ferryv1.ProcessPool{
			"node-a": testPool("node-a", targetRev, rolledOut(2), betweenDeaths),
			"node-b": testPool("node-b", oldRev, rolledOut(2)),
		},
		lastGood: &ferryv1.RolledOutRevision{Revision: oldRev}, proven: targetRev,
		halt: &ferryv1.HaltedRollout{Revision: targetRev, Node: "node-a", Resisted: true, Since: metav1.NewTime(t0)}}
	reports := s.reports(staleAfter)
	if r := reports["node-a"]; !r.RolledOut || r.HaltsTarget() {
		t.Fatalf("node-a does not run the target rolled out: the case proves nothing (%+v)", r)
	}
	s.remember(reports)
	if s.halt != nil {
		t.Fatalf("halt = %+v, want it released", s.halt)
	}
	if s.loop == nil || len(s.loop.Nodes) != 1 || s.loop.Nodes[0] != "node-a" || s.loop.Reason != ferryv1.CrashLoopRevisionProven {
		t.Errorf("loop = %+v, want node-a's, %s", s.loop, ferryv1.CrashLoopRevisionProven)
	}
}

// TestCrashLoopReasonIsTheFirstNodes: status.crashLoop.reason is its
// first node's, and its nodes' may differ, as its API doc says: with a
// proven target and no older revision running, the node whose resistance
// the halt records stays for want of one (NoOlderRevision), another for
// the target being proven (RevisionProven).
func TestCrashLoopReasonIsTheFirstNodes(t *testing.T) {
	const death = "exited with status 1 1.2s after it was ready"
	in := input([]string{"node-a", "node-b"},
		testPool("node-a", targetRev, rolledOut(2), dyingYoung, resists(targetRev, death, "")),
		testPool("node-b", targetRev, rolledOut(2), dyingYoung))
	unstarted(in.Reports)
	settle(in.Reports, t0, 10*time.Second)
	in = looped(withHalt(provenIn(in), "node-a", death))
	if in.Older {
		t.Fatal("an older revision runs: the case proves nothing")
	}
	if in.CrashLoop == nil || len(in.CrashLoop.Nodes) != 2 || in.CrashLoop.Reason != ferryv1.CrashLoopNoOlderRevision {
		t.Fatalf("loop = %+v, want node-a and node-b, node-a's reason %s", in.CrashLoop, ferryv1.CrashLoopNoOlderRevision)
	}
	if reason, _ := nodeStaysWhy(in, "node-b"); reason != ferryv1.CrashLoopRevisionProven {
		t.Errorf("node-b's reason = %q, want %s", reason, ferryv1.CrashLoopRevisionProven)
	}
}

// haltTurn is a turn of a halt (a death, a retry between two) as a
// pass finds it: name says which.
type haltTurn struct {
	name string
	in   rollupInput
}

// sameHaltAtEveryTurn fails unless RollingRestart, as each of turns
// makes it, is RolloutHalted with a message holding every one of words,
// the same message at every turn as at the first, so that it is not
// written anew, nor a `restart --wait` line printed, at each. It returns
// the first turn's message.
func sameHaltAtEveryTurn(t *testing.T, turns []haltTurn, words ...string) string {
	t.Helper()
	var first string
	for i, turn := range turns {
		c := rollingRestartCondition(turn.in)
		if c.Reason != ferryv1.ReasonRolloutHalted {
			t.Errorf("%s: RollingRestart = %s/%s: %q, want RolloutHalted", turn.name, c.Status, c.Reason, c.Message)
		}
		for _, w := range words {
			if !strings.Contains(c.Message, w) {
				t.Errorf("%s: RollingRestart's message %q, want it saying %q", turn.name, c.Message, w)
			}
		}
		if i == 0 {
			first = c.Message
		} else if c.Message != first {
			t.Errorf("%s: RollingRestart's message\n%q\nat %s:\n%q", turn.name, c.Message, turns[0].name, first)
		}
	}
	return first
}

// wantHaltAtEveryTurn fails unless RollingRestart, as each of turns
// makes it, is RolloutHalted with the message want.
func wantHaltAtEveryTurn(t *testing.T, turns []haltTurn, want string) {
	t.Helper()
	if got := sameHaltAtEveryTurn(t, turns); got != want {
		t.Errorf("RollingRestart's message\n%q\nwant:\n%q", got, want)
	}
}

// wantHaltSaying fails unless RollingRestart, as in makes it, is
// RolloutHalted with a message holding words.
func wantHaltSaying(t *testing.T, in rollupInput, words string) {
	t.Helper()
	c := rollingRestartCondition(in)
	if c.Reason != ferryv1.ReasonRolloutHalted || !strings.Contains(c.Message, words) {
		t.Errorf("RollingRestart = %s/%s: %q, want RolloutHalted saying %q", c.Status, c.Reason, c.Message, words)
	}
}

// TestNodesUpdatedAlikeThroughACrashLoop: node-a's one process of the
// target dies young, and its agent respawns it, nothing returning the
// node (a crash loop: a Blocking restart, so too with resistance off),
// while beside it node-b halts the rollout, failing to spawn it, and
// where nothing halts it. At a death none of the target runs there
// (FailsTarget), yet the loop reads as between deaths at every turn
// (sortRollout), RollingRestart's count among it: status.nodes.updated
// counts the node so too, the same at the death, while the replacement
// boots and once it is ready, as RollingRestart's count is. (Seen
// failing before: 0 at each death, 1 once the replacement booted, the
// message saying 1 throughout: the status, `kubectl ferry status` and
// `restart --wait`'s "nodes updated" moved at each death.)
func TestNodesUpdatedAlikeThroughACrashLoop(t *testing.T) {
	abc := []string{"node-a", "node-b", "node-c"}
	for _, tt := range []struct {
		name string
		b    *ferryv1.ProcessPool
		edit func(rollupInput) rollupInput
	}{
		{"a halt on node-b, a Blocking restart", testPool("node-b", targetRev, restartingBlocking(0, 1), spawnFailed("the app failed to load")),
			func(in rollupInput) rollupInput {
				in.AppGroup.Spec.Restart.Strategy = ferryv1.RestartBlocking
				return in
			}},
		{"nothing halting, resistance off", testPool("node-b", oldRev, rolledOut(1), alone), resistingNothing},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var counts []int32
			for _, turn := range []struct {
				name string
				a    poolOpt
			}{{"at a death", diedAlone}, {"the replacement booting", bootsAlone}, {"the replacement ready", readyAlone}, {"at the next death", diedAlone}} {
				in := tt.edit(input(abc, testPool("node-a", targetRev, rolledOut(1), turn.a), tt.b.DeepCopy(),
					testPool("node-c", oldRev, rolledOut(1), alone)))
				unstarted(in.Reports)
				in = recorded(in)
				if !loopsAt(in.CrashLoop, "node-a") {
					t.Fatalf("%s: crash loop %+v, want one on node-a", turn.name, in.CrashLoop)
				}
				st := computeStatus(in)
				c := condition(&st, ferryv1.ConditionRollingRestart)
				if !strings.Contains(c.Message, fmt.Sprintf("%d/3 nodes updated", st.Nodes.Updated)) {
					t.Errorf("%s: nodes.updated %d, RollingRestart: %s", turn.name, st.Nodes.Updated, c.Message)
				}
				counts = append(counts, st.Nodes.Updated)
			}
			if slices.Min(counts) != slices.Max(counts) {
				t.Errorf("nodes.updated at each turn: %v, want one count", counts)
			}
		})
	}
}

// TestNodesUpdatedIsRollingRestartsCount: status.nodes.updated
// (nodeCounts) counts the nodes RollingRestart's message counts updated
// (sortRollout), through a crash loop (at a death that leaves none of a
// pool of one running, its replacement booting, then ready), a halt
// recorded (a Blocking restart's young death, a failed spawn beside it),
// and a proven target's young deaths (no record: a node's death, read as
// halted; beside a node dying young too, or failing to spawn), so that
// the status, `kubectl ferry status` and `restart --wait` count as the
// message does. A proven target's young deaths in two shapes: in the
// Blocking round (young: RollingRestart RestartingBlocking, the round's
// other spawn booting or not), and its retries after that round, which
// the agent makes as scale spawns (retried: no restart, the pool's
// RollingRestart False, a retry booting or not; agent/pool's
// blockingRestart ends the round, and scaleSpawn retries), which the
// manager reads as a crash loop (a Blocking restart stays), not a halt.
// (An unproven target's retries follow a halt recorded in the round,
// which these inputs, recorded from scratch, do not hold.)
func TestNodesUpdatedIsRollingRestartsCount(t *testing.T) {
	abc := []string{"node-a", "node-b", "node-c"}
	blocking := func(in rollupInput) rollupInput {
		in.AppGroup.Spec.Restart.Strategy = ferryv1.RestartBlocking
		return in
	}
	loop := func(a poolOpt, b *ferryv1.ProcessPool) rollupInput {
		in := blocking(input(abc, testPool("node-a", targetRev, rolledOut(1), a), b,
			testPool("node-c", oldRev, rolledOut(1), alone)))
		unstarted(in.Reports)
		return in
	}
	failsToLoad := func(node string) *ferryv1.ProcessPool {
		return testPool(node, targetRev, restartingBlocking(0, 2), spawnFailed("the app failed to load"))
	}
	young := func(running int32) *ferryv1.ProcessPool {
		return testPool("node-a", targetRev, restartingBlocking(running, 2), crashedInWindow)
	}
	retried := func(node string, running int32) *ferryv1.ProcessPool {
		return testPool(node, targetRev, rolledOut(2), counts(0, running, running), notReadyAtAll, crashedInWindow)
	}
	provenC := testPool("node-c", targetRev, rolledOut(2), lasted)
	type fixture struct {
		name string
		in   rollupInput
	}
	var fixtures []fixture
	for _, turn := range []struct {
		name string
		a    poolOpt
	}{{"at a death", diedAlone}, {"the replacement booting", bootsAlone}, {"the replacement ready", readyAlone}} {
		fixtures = append(fixtures,
			fixture{"crash loop " + turn.name, loop(turn.a, testPool("node-b", oldRev, rolledOut(1), alone))},
			fixture{"crash loop beside a halt " + turn.name, loop(turn.a, failsToLoad("node-b"))},
			fixture{"proven crash loop " + turn.name, provenIn(loop(turn.a, testPool("node-b", targetRev, rolledOut(1), alone, lasted)))})
	}
	for _, running := range []int32{0, 1} {
		which := fmt.Sprintf(" (%d running)", running)
		fixtures = append(fixtures,
			fixture{"halt of a young death" + which, blocking(input(abc, young(running),
				testPool("node-b", oldRev, rolledOut(2)), testPool("node-c", oldRev, rolledOut(2))))},
			fixture{"halt of a young death and a failed spawn" + which, blocking(input(abc, young(running),
				failsToLoad("node-b"), testPool("node-c", oldRev, rolledOut(2))))},
			fixture{"proven young death" + which, provenIn(blocking(input(abc, young(running),
				testPool("node-b", oldRev, rolledOut(2)), provenC.DeepCopy())))},
			fixture{"proven young deaths on two nodes" + which, provenIn(blocking(input(abc, young(running),
				testPool("node-b", targetRev, restartingBlocking(0, 2), crashedInWindow), provenC.DeepCopy())))},
			fixture{"proven young death and a failed spawn" + which, provenIn(blocking(input(abc, young(running),
				failsToLoad("node-b"), provenC.DeepCopy())))},
			fixture{"proven young death, retried" + which, provenIn(blocking(input(abc, retried("node-a", running),
				testPool("node-b", oldRev, rolledOut(2)), provenC.DeepCopy())))},
			fixture{"proven young deaths on two nodes, retried" + which, provenIn(blocking(input(abc,
				retried("node-a", running), retried("node-b", 0), provenC.DeepCopy())))},
			fixture{"proven young death, retried, and a failed spawn" + which, provenIn(blocking(input(abc,
				retried("node-a", running), failsToLoad("node-b"), provenC.DeepCopy())))})
	}
	for _, f := range fixtures {
		in := recorded(f.in)
		if got, want := nodeCounts(in).Updated, int32(sortRollout(in).updated); got != want {
			t.Errorf("%s: nodes.updated %d, RollingRestart counts %d (%s)", f.name, got, want, rollingRestartCondition(in).Message)
		}
	}
}
