package controllers

import (
	"cmp"
	"maps"
	"slices"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	clocktesting "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"

	ferryv1 "github.com/ferry-dev/ferry/api/v1alpha1"
)

func TestAssessPool(t *testing.T) {
	const target = "2-abc"
	tests := []struct {
		name  string
		pool  *ferryv1.ProcessPool
		lease time.Time  // the node's agent Lease renewal, zero for none
		heard hearing    // the manager's contact with the API server
		want  poolReport // Node, Pool, Silence, StaleIn, LeaseIsLast and Serving are not compared (TestNextStaleness, TestDesiredEndpoints)
	}{
		{
			name: "never reported",
			pool: testPool("a", target),
			want: poolReport{OnTarget: true},
		},
		{
			name: "never reported, for longer than the bound",
			pool: testPool("a", target, created(time.Minute)),
			want: poolReport{OnTarget: true, Unheard: true},
		},
		{
			// Its agent runs: the pool is about to be reported.
			name:  "never reported, for longer than the bound, the agent's Lease renewed",
			pool:  testPool("a", target, created(time.Minute)),
			lease: t0.Add(-time.Second),
			want:  poolReport{OnTarget: true, HasLease: true},
		},
		{
			name:  "never reported, for longer than the bound, the agent's Lease stale",
			pool:  testPool("a", target, created(time.Minute)),
			lease: t0.Add(-time.Minute),
			want:  poolReport{OnTarget: true, Unheard: true, HasLease: true, LeaseStale: true},
		},
		{
			// The manager could not have heard it (hearing.from).
			name:  "never reported, made before an outage",
			pool:  testPool("a", target, created(time.Minute)),
			heard: hearing{since: t0.Add(-5 * time.Second), lost: t0.Add(-30 * time.Second)},
			want:  poolReport{OnTarget: true},
		},
		{
			name: "rolled out",
			pool: testPool("a", target, rolledOut(2)),
			want: poolReport{OnTarget: true, Reported: true, Ready: true, Updated: true, RolledOut: true},
		},
		{
			name: "rolled out on an older revision",
			pool: testPool("a", "1-abc", rolledOut(2)),
			want: poolReport{Reported: true, Ready: true, Updated: true, RolledOut: true},
		},
		{
			name: "returned from the target it could not spawn",
			pool: testPool("a", "1-abc", rolledOut(2), returnedFrom(target, "x")),
			want: poolReport{Reported: true, Ready: true, Updated: true, RolledOut: true, Returned: true},
		},
		{
			name: "restarting",
			pool: testPool("a", target, restarting(1, 2)),
			want: poolReport{OnTarget: true, Reported: true, Ready: true, Restarting: true},
		},
		{
			name: "restart finished with processes left behind (resistance off)",
			pool: testPool("a", target, incomplete(1, 2)),
			want: poolReport{OnTarget: true, Reported: true, Ready: true, Incomplete: true, RolledOut: true},
		},
		{
			name: "agent has not taken the revision up yet",
			pool: testPool("a", target, rolledOut(2), func(p *ferryv1.ProcessPool) { p.Status.ObservedRevision = "1-abc" }),
			want: poolReport{OnTarget: true, Reported: true, Ready: true},
		},
		{
			name: "updated but one process still spawning",
			pool: testPool("a", target, rolledOut(3), counts(2, 3, 3)),
			want: poolReport{OnTarget: true, Reported: true, Ready: true, Updated: true},
		},
		{
			name: "Ready True but below minProcesses",
			pool: testPool("a", target, rolledOut(1)),
			want: poolReport{OnTarget: true, Reported: true, Updated: true},
		},
		{
			name: "no processes at all",
			pool: testPool("a", target, rolledOut(0)),
			want: poolReport{OnTarget: true, Reported: true, Updated: true},
		},
		{
			name: "stale",
			pool: testPool("a", target, rolledOut(2), heartbeatAt(t0.Add(-41*time.Second))),
			want: poolReport{OnTarget: true, Reported: true, Stale: true},
		},
		{
			name: "exactly at the bound is not stale",
			pool: testPool("a", target, rolledOut(2), heartbeatAt(t0.Add(-40*time.Second))),
			want: poolReport{OnTarget: true, Reported: true, Ready: true, Updated: true, RolledOut: true},
		},
		{
			name: "resisting the target",
			pool: testPool("a", target, rolledOut(2), resists(target, "exited with status 1", "")),
			want: poolReport{OnTarget: true, Reported: true, Ready: true, Resisting: true, ResistsTarget: true},
		},
		{
			name: "stale and resisting the target keeps resisting",
			pool: testPool("a", target, rolledOut(2), resists(target, "x", ""), heartbeatAt(t0.Add(-time.Hour))),
			want: poolReport{OnTarget: true, Reported: true, Stale: true, Resisting: true, ResistsTarget: true},
		},
		{
			name: "resisting an older revision",
			pool: testPool("a", "1-abc", rolledOut(2), resists("1-abc", "x", "")),
			want: poolReport{Reported: true, Ready: true, Resisting: true},
		},
		{
			name: "on the target but the error reported is of an older revision",
			pool: testPool("a", target, rolledOut(2), resists("1-abc", "x", "")),
			want: poolReport{OnTarget: true, Reported: true, Ready: true, Resisting: true},
		},
		{
			name: "failing to spawn the target with nothing running",
			pool: testPool("a", target, failsSpawns(target, "exited with status 1")),
			want: poolReport{OnTarget: true, Reported: true, FailsTarget: true},
		},
		{
			name: "a failed scale-up of the target while it serves is not failing the target",
			pool: testPool("a", target, failsSpawns(target, "out of memory"), counts(2, 2, 2)),
			want: poolReport{OnTarget: true, Reported: true, Updated: true, RolledOut: true},
		},
		{
			// The target's spawns fail (SpawnBackoff) with none of it
			// running, old processes serving: held against the target.
			name: "failing to spawn the target mid-restart",
			pool: testPool("a", target, restarting(0, 2), spawnFailed("exited with status 1")),
			want: poolReport{OnTarget: true, Reported: true, Ready: true, Restarting: true, FailsTarget: true},
		},
		{
			// A Secret the agent may not read: the agent retries the step,
			// the old processes serve, nothing is known of the revision.
			name: "spawns of the target blocked mid-restart are not failing it",
			pool: testPool("a", target, restarting(0, 2), spawnFailed("env SECRET_KEY: the agent may not get Secrets"), blocked),
			want: poolReport{OnTarget: true, Reported: true, Ready: true, Restarting: true},
		},
		{
			name: "spawns of the target blocked with nothing running are not failing it",
			pool: testPool("a", target, failsSpawns(target, "env SECRET_KEY: could not read Secret"), blocked),
			want: poolReport{OnTarget: true, Reported: true, Updated: true},
		},
		{
			name: "failing to spawn an older revision is not failing the target",
			pool: testPool("a", target, failsSpawns("1-abc", "x")),
			want: poolReport{OnTarget: true, Reported: true, Updated: true},
		},
		{
			name:  "an old report is not stale while the node's agent renews its lease",
			pool:  testPool("a", target, rolledOut(2), heartbeatAt(t0.Add(-time.Hour))),
			lease: t0.Add(-5 * time.Second),
			want:  poolReport{OnTarget: true, Reported: true, Ready: true, Updated: true, RolledOut: true, HasLease: true},
		},
		{
			name:  "stale when the lease is not renewed either",
			pool:  testPool("a", target, rolledOut(2), heartbeatAt(t0.Add(-time.Hour))),
			lease: t0.Add(-time.Minute),
			want:  poolReport{OnTarget: true, Reported: true, Stale: true, HasLease: true, LeaseStale: true},
		},
		{
			name:  "silent over the manager's own outage is not stale",
			pool:  testPool("a", target, rolledOut(2), heartbeatAt(t0.Add(-time.Hour))),
			lease: t0.Add(-70 * time.Second),
			heard: hearing{since: t0.Add(-10 * time.Second), lost: t0.Add(-60 * time.Second)},
			want:  poolReport{OnTarget: true, Reported: true, Ready: true, Updated: true, RolledOut: true, HasLease: true},
		},
		{
			name:  "silent for the bound since contact came back is stale",
			pool:  testPool("a", target, rolledOut(2), heartbeatAt(t0.Add(-time.Hour))),
			lease: t0.Add(-70 * time.Second),
			heard: hearing{since: t0.Add(-41 * time.Second), lost: t0.Add(-60 * time.Second)},
			want:  poolReport{OnTarget: true, Reported: true, Stale: true, HasLease: true, LeaseStale: true},
		},
		{
			name:  "silent past the bound before the outage began stays stale",
			pool:  testPool("a", target, rolledOut(2), heartbeatAt(t0.Add(-10*time.Minute))),
			lease: t0.Add(-10 * time.Minute),
			heard: hearing{since: t0.Add(-5 * time.Second), lost: t0.Add(-7 * time.Second)},
			want:  poolReport{OnTarget: true, Reported: true, Stale: true, HasLease: true, LeaseStale: true},
		},
		{
			name: "no outage seen, status not vouching: a manager just started judges as it finds",
			pool: testPool("a", target, rolledOut(2), heartbeatAt(t0.Add(-time.Minute))),
			want: poolReport{OnTarget: true, Reported: true, Stale: true},
		},
		{
			name:  "status vouching: a new leader counts from its start",
			pool:  testPool("a", target, rolledOut(2), heartbeatAt(t0.Add(-time.Hour))),
			lease: t0.Add(-time.Minute),
			heard: hearing{began: t0.Add(-10 * time.Second), vouched: true},
			want:  poolReport{OnTarget: true, Reported: true, Ready: true, Updated: true, RolledOut: true, HasLease: true},
		},
		{
			name:  "status vouching: stale the bound after the new leader's start",
			pool:  testPool("a", target, rolledOut(2), heartbeatAt(t0.Add(-time.Hour))),
			lease: t0.Add(-time.Minute),
			heard: hearing{began: t0.Add(-41 * time.Second), vouched: true},
			want:  poolReport{OnTarget: true, Reported: true, Stale: true, HasLease: true, LeaseStale: true},
		},
		{
			name: "cannot listen on listen.port",
			pool: testPool("a", target, rolledOut(2), func(p *ferryv1.ProcessPool) {
				setCond(p, ferryv1.ConditionReady, metav1.ConditionFalse, ferryv1.ReasonListenFailed, "bind: address already in use")
			}),
			want: poolReport{OnTarget: true, Reported: true, Updated: true, RolledOut: true},
		},
		{
			// A spec change since (a new revision, deletion) that kept
			// the port changes nothing (found by review).
			name: "cannot listen on a new listen.port, serves on the old one, a newer generation",
			pool: testPool("a", target, rolledOut(2), address("192.0.2.2:7070"), func(p *ferryv1.ProcessPool) {
				p.Generation, p.Status.ObservedGeneration = 3, 2
				setCond(p, ferryv1.ConditionReady, metav1.ConditionFalse, ferryv1.ReasonListenFailed, "bind: address already in use")
			}),
			want: poolReport{OnTarget: true, Reported: true, Updated: true, RolledOut: true, ServesOn: 7070},
		},
		{
			name: "cannot listen on a new listen.port, serves on the old one",
			pool: testPool("a", target, rolledOut(2), address("192.0.2.2:7070"), func(p *ferryv1.ProcessPool) {
				setCond(p, ferryv1.ConditionReady, metav1.ConditionFalse, ferryv1.ReasonListenFailed, "bind: address already in use")
			}),
			want: poolReport{OnTarget: true, Reported: true, Updated: true, RolledOut: true, ServesOn: 7070},
		},
		{
			// Written before listen.port moved from 7070, which another
			// program holds: nothing of this pool serves there.
			name: "cannot listen, reported before the agent took up listen.port's move",
			pool: testPool("a", target, rolledOut(2), address("192.0.2.2:7070"), func(p *ferryv1.ProcessPool) {
				p.Status.ListenPort = 7070
				setCond(p, ferryv1.ConditionReady, metav1.ConditionFalse, ferryv1.ReasonListenFailed, "bind: address already in use")
			}),
			want: poolReport{OnTarget: true, Reported: true, Updated: true, RolledOut: true},
		},
		{
			name: "its agent stopping",
			pool: testPool("a", target, rolledOut(2), agentStopping),
			want: poolReport{OnTarget: true, Reported: true, Updated: true, RolledOut: true, SaidStopping: true, Stopping: true},
		},
		{
			// Its last word, kept for Ready's message (staleMessage).
			name: "its agent said it was stopping, and is stale",
			pool: testPool("a", target, rolledOut(2), agentStopping, heartbeatAt(t0.Add(-time.Minute))),
			want: poolReport{OnTarget: true, Reported: true, Stale: true, SaidStopping: true},
		},
		{
			name:  "a recent report is not stale whatever the lease says",
			pool:  testPool("a", target, rolledOut(2)),
			lease: t0.Add(-time.Hour),
			want:  poolReport{OnTarget: true, Reported: true, Ready: true, Updated: true, RolledOut: true, HasLease: true, LeaseStale: true},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := assessPool(tt.pool, target, t0, staleAfter, tt.lease, tt.heard)
			got.Node, got.Pool, got.Silence, got.StaleIn, got.LeaseIsLast, got.Serving = "", nil, 0, 0, false, false
			if got != tt.want {
				t.Errorf("assessPool:\n got %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

// TestStoppingAgentKeepsItsPlaceInTheWave: api.md, maxConcurrentNodes:
// "One whose agent stops or falls silent after it got the revision keeps
// its place in the wave until it is heard again, as a canary would: the
// revision may be what stopped it, so no other node gets it meanwhile".
// A stopping agent's first report (Ready False, AgentStopping) still
// lists its processes ready, as they are while its proxy serves out the
// drain delay: the next node waited only once the report went stale
// (found by the manager's seed review).
func TestStoppingAgentKeepsItsPlaceInTheWave(t *testing.T) {
	reports := assessAll(targetRev,
		testPool("a", targetRev, rolledOut(2), agentStopping),
		testPool("b", oldRev, rolledOut(2)),
	)
	plan := planWave(reports, 1, nil, true)
	if len(plan.Give) > 0 || !slices.Equal(plan.Rolling, []string{"a"}) {
		t.Errorf("the agent on a stops, yet the plan gives %v the target (rolling %v): a keeps its place until heard again",
			plan.Give, plan.Rolling)
	}
}

func TestPlanWave(t *testing.T) {
	const old, target = "1-abc", "2-abc"
	oneNotReadyOneUnreported := []*ferryv1.ProcessPool{
		testPool("a", old, rolledOut(2)),
		testPool("b", old, rolledOut(2)),
		testPool("c", old, rolledOut(2), notReady),
		testPool("d", old), // never reported
	}
	tests := []struct {
		name          string
		pools         []*ferryv1.ProcessPool
		max           int32
		give, waiting []string
		rolling       []string
		halt          *ferryv1.HaltedRollout // the status's record
		halted        bool
		proven        bool // the target ran rolled out on a node
	}{
		{
			name:  "every pool on the target and rolled out",
			pools: []*ferryv1.ProcessPool{testPool("a", target, rolledOut(2)), testPool("b", target, rolledOut(2))},
			max:   1,
		},
		{
			name:    "one at a time starts with the first node by name",
			pools:   []*ferryv1.ProcessPool{testPool("c", old, rolledOut(2)), testPool("a", old, rolledOut(2)), testPool("b", old, rolledOut(2))},
			max:     1,
			give:    []string{"a"},
			waiting: []string{"b", "c"},
		},
		{
			name:    "the next node waits while one rolls",
			pools:   []*ferryv1.ProcessPool{testPool("a", target, restarting(1, 2)), testPool("b", old, rolledOut(2)), testPool("c", old, rolledOut(2))},
			max:     1,
			rolling: []string{"a"},
			waiting: []string{"b", "c"},
		},
		{
			name:    "a pool given the target but not yet reporting on it rolls",
			pools:   []*ferryv1.ProcessPool{testPool("a", target, rolledOut(2), func(p *ferryv1.ProcessPool) { p.Status.ObservedRevision = old }), testPool("b", old, rolledOut(2))},
			max:     1,
			rolling: []string{"a"},
			waiting: []string{"b"},
		},
		{
			name:    "the next node goes once the previous rolled out",
			pools:   []*ferryv1.ProcessPool{testPool("a", target, rolledOut(2)), testPool("b", old, rolledOut(2)), testPool("c", old, rolledOut(2))},
			max:     1,
			give:    []string{"b"},
			waiting: []string{"c"},
		},
		{
			name:    "updated but not every process ready still rolls",
			pools:   []*ferryv1.ProcessPool{testPool("a", target, rolledOut(3), counts(2, 3, 3)), testPool("b", old, rolledOut(2))},
			max:     1,
			rolling: []string{"a"},
			waiting: []string{"b"},
		},
		{
			name:    "two at a time",
			pools:   []*ferryv1.ProcessPool{testPool("a", old, rolledOut(2)), testPool("b", old, rolledOut(2)), testPool("c", old, rolledOut(2))},
			max:     2,
			give:    []string{"a", "b"},
			waiting: []string{"c"},
		},
		{
			name:    "two at a time refills one slot",
			pools:   []*ferryv1.ProcessPool{testPool("a", target, rolledOut(2)), testPool("b", target, restarting(1, 2)), testPool("c", old, rolledOut(2)), testPool("d", old, rolledOut(2))},
			max:     2,
			give:    []string{"c"},
			rolling: []string{"b"},
			waiting: []string{"d"},
		},
		{
			name:  "more slots than nodes",
			pools: []*ferryv1.ProcessPool{testPool("a", old, rolledOut(2)), testPool("b", old, rolledOut(2))},
			max:   10,
			give:  []string{"a", "b"},
		},
		{
			name:    "maxConcurrentNodes below 1 counts as 1",
			pools:   []*ferryv1.ProcessPool{testPool("a", old, rolledOut(2)), testPool("b", old, rolledOut(2))},
			max:     0,
			give:    []string{"a"},
			waiting: []string{"b"},
		},
		{
			name:    "a pool resisting the target halts the rollout",
			pools:   []*ferryv1.ProcessPool{testPool("a", target, resists(target, "x", "")), testPool("b", old, rolledOut(2)), testPool("c", old, rolledOut(2))},
			max:     5,
			rolling: []string{"a"},
			waiting: []string{"b", "c"},
			halted:  true,
		},
		{
			name:    "a pool that cannot spawn the target at all halts the rollout",
			pools:   []*ferryv1.ProcessPool{testPool("a", target, failsSpawns(target, "x")), testPool("b", old, rolledOut(2)), testPool("c", old, rolledOut(2))},
			max:     5,
			rolling: []string{"a"},
			waiting: []string{"b", "c"},
			halted:  true,
		},
		{
			name:    "a recorded halt holds when its node is gone",
			pools:   []*ferryv1.ProcessPool{testPool("a", target, rolledOut(2)), testPool("c", old, rolledOut(2))},
			halt:    &ferryv1.HaltedRollout{Revision: target, Node: "b"},
			max:     5,
			waiting: []string{"c"},
			halted:  true,
		},
		{
			name:    "a recorded halt holds when its node returned to an older revision",
			pools:   []*ferryv1.ProcessPool{testPool("b", old, rolledOut(2)), testPool("c", old, rolledOut(2))},
			halt:    &ferryv1.HaltedRollout{Revision: target, Node: "b"},
			max:     5,
			waiting: []string{"b", "c"},
			halted:  true,
		},
		{
			name:  "a halt recorded for an earlier target is over",
			pools: []*ferryv1.ProcessPool{testPool("b", old, rolledOut(2)), testPool("c", old, rolledOut(2))},
			halt:  &ferryv1.HaltedRollout{Revision: old, Node: "b"},
			max:   5,
			give:  []string{"b", "c"},
		},
		{
			name:    "a silent pool that last resisted still halts",
			pools:   []*ferryv1.ProcessPool{testPool("a", target, resists(target, "x", ""), heartbeatAt(t0.Add(-time.Hour))), testPool("b", old, rolledOut(2))},
			max:     5,
			rolling: []string{"a"},
			waiting: []string{"b"},
			halted:  true,
		},
		{
			name: "a new target goes first to the pool resisting the old one",
			pools: []*ferryv1.ProcessPool{
				testPool("a", old, rolledOut(2)),
				testPool("b", old, rolledOut(2), resists(old, "x", "")),
				testPool("c", "0-abc", rolledOut(2)),
			},
			max:     1,
			give:    []string{"b"},
			waiting: []string{"a", "c"},
		},
		{
			name:    "then to pools not ready, then by name",
			pools:   oneNotReadyOneUnreported,
			max:     2,
			give:    []string{"c", "d"},
			waiting: []string{"a", "b"},
			proven:  true,
		},
		{
			// A node that joined mid-rollout starts on the revision that
			// works (newPoolRevision); given the unproven target before
			// it runs anything, it would have nothing to resist with.
			name:    "a pool not reported yet waits while the target is not proven, without a slot",
			pools:   oneNotReadyOneUnreported,
			max:     2,
			give:    []string{"c", "a"},
			waiting: []string{"d", "b"},
		},
		{
			// A dead node still selected held every rollout at its first
			// wave: not ready, it got the target first, then held its
			// slot for as long as it was silent (found in a walkthrough).
			name: "a silent pool takes no slot and holds no node back",
			pools: []*ferryv1.ProcessPool{
				testPool("a", old, rolledOut(2), heartbeatAt(t0.Add(-time.Minute))), // stale
				testPool("b", old, rolledOut(2)),
				testPool("c", old, rolledOut(2)),
			},
			max:     1,
			give:    []string{"b"},
			waiting: []string{"a", "c"},
		},
		{
			// A node whose agent never reported (none runs there, or it
			// crashes before it reports) held every rollout as a silent
			// one did (found by review).
			name: "a pool never reported within the bound takes no slot either",
			pools: []*ferryv1.ProcessPool{
				testPool("a", old, created(time.Minute)),
				testPool("b", old, rolledOut(2)),
				testPool("c", old, rolledOut(2)),
			},
			max:     1,
			give:    []string{"b"},
			waiting: []string{"a", "c"},
		},
		{
			// Given the target while young (an AppGroup changed just
			// after it was made), never heard from since: it ran nothing
			// of it, and would hold its slot for good.
			name: "a pool given the target and never reported within the bound holds no slot",
			pools: []*ferryv1.ProcessPool{
				testPool("a", target, created(time.Minute)),
				testPool("b", old, rolledOut(2)),
				testPool("c", old, rolledOut(2)),
			},
			max:     1,
			give:    []string{"b"},
			waiting: []string{"c"},
		},
		{
			name:    "a pool given the target and not reported yet holds its slot",
			pools:   []*ferryv1.ProcessPool{testPool("a", target, created(time.Second)), testPool("b", old, rolledOut(2))},
			max:     1,
			rolling: []string{"a"},
			waiting: []string{"b"},
		},
		{
			name:    "a silent pool is not given the target when it is the last",
			pools:   []*ferryv1.ProcessPool{testPool("a", old, rolledOut(2), heartbeatAt(t0.Add(-time.Minute))), testPool("b", target, rolledOut(2))},
			max:     1,
			waiting: []string{"a"},
		},
		{
			name:    "a silent pool restarting onto an earlier target waits too",
			pools:   []*ferryv1.ProcessPool{testPool("a", old, restarting(1, 2), heartbeatAt(t0.Add(-time.Minute))), testPool("b", old, rolledOut(2))},
			max:     1,
			give:    []string{"b"},
			waiting: []string{"a"},
		},
		{
			name:    "a silent pool on the target holds its slot",
			pools:   []*ferryv1.ProcessPool{testPool("a", target, rolledOut(2), heartbeatAt(t0.Add(-time.Minute))), testPool("b", old, rolledOut(2))},
			max:     1,
			rolling: []string{"a"},
			waiting: []string{"b"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reports := assessAll(target, tt.pools...)
			slices.SortFunc(reports, func(a, b poolReport) int { return cmp.Compare(a.Node, b.Node) })
			plan := planWave(reports, tt.max, haltRecord(haltInput(tt.halt, target, reports, nil, false)), tt.proven)
			if !slices.Equal(plan.Give, tt.give) {
				t.Errorf("give %v, want %v", plan.Give, tt.give)
			}
			if !slices.Equal(plan.Waiting, tt.waiting) {
				t.Errorf("waiting %v, want %v", plan.Waiting, tt.waiting)
			}
			if !slices.Equal(plan.Rolling, tt.rolling) {
				t.Errorf("rolling %v, want %v", plan.Rolling, tt.rolling)
			}
			if plan.Halted() != tt.halted {
				t.Errorf("halted %v, want %v", plan.Halted(), tt.halted)
			}
		})
	}
}

func TestHaltRecord(t *testing.T) {
	const old, target = "1-abc", "2-abc"
	earlier := lastTransition(t0.Add(-time.Hour))
	kept := &ferryv1.HaltedRollout{Revision: target, Node: "b", Reason: "exited with status 1", Resisted: true, Since: earlier}
	failed := &ferryv1.HaltedRollout{Revision: target, Node: "b", Reason: "exited with status 1", Since: earlier}
	now := func(node, reason string, resisted bool) *ferryv1.HaltedRollout {
		return &ferryv1.HaltedRollout{Revision: target, Node: node, Reason: reason, Resisted: resisted, Since: lastTransition(t0)}
	}
	// scalingFails: spawns of the target fail while its processes serve
	// (resistance off: a restart that replaced nothing), RolledOut and
	// FailsTarget at once.
	scalingFails := func(p *ferryv1.ProcessPool) {
		incomplete(2, 2)(p)
		p.Status.LastSpawnError = &ferryv1.SpawnError{Revision: target, Reason: "boom", Time: metav1.Time{Time: t0}}
		setCond(p, ferryv1.ConditionScalingError, metav1.ConditionTrue, ferryv1.ReasonSpawnBackoff, "boom")
	}
	tests := []struct {
		name  string
		prev  *ferryv1.HaltedRollout
		pools []*ferryv1.ProcessPool
		last  string // lastRolledOut's revision, "" for none
		want  *ferryv1.HaltedRollout
	}{
		{"nothing halts", nil, []*ferryv1.ProcessPool{testPool("a", target, rolledOut(2)), testPool("b", old, rolledOut(2))}, "", nil},
		{
			"a pool resists the target: its node and error, from now",
			nil,
			[]*ferryv1.ProcessPool{testPool("a", target, rolledOut(2)), testPool("b", target, resists(target, "exited with status 1", "Traceback"))},
			"", now("b", "exited with status 1", true),
		},
		{
			"a pool cannot spawn a target that runs nowhere",
			nil,
			[]*ferryv1.ProcessPool{testPool("c", target, failsSpawns(target, "not ready within startTimeout (90s)"))},
			"", now("c", "not ready within startTimeout (90s)", false),
		},
		{
			"a pool cannot spawn a target rolled out on another node: a scaling error, no halt to remember",
			nil,
			[]*ferryv1.ProcessPool{testPool("a", target, rolledOut(2)), testPool("b", target, failsSpawns(target, "database down"))},
			"", nil,
		},
		{
			"a pool returned from the target it could not spawn: the record comes back from the pool (a status write lost)",
			nil,
			[]*ferryv1.ProcessPool{testPool("b", old, rolledOut(2), returnedFrom(target, "exited with status 1"))},
			"", now("b", "exited with status 1", true),
		},
		{"a pool resisting an older revision does not halt the target", nil, []*ferryv1.ProcessPool{testPool("b", old, resists(old, "x", ""))}, "", nil},
		{
			"a pool off the target whose last spawn of it failed, not returned by the manager (a revert to a revision that once failed a spawn there)",
			nil,
			[]*ferryv1.ProcessPool{testPool("b", old, rolledOut(2), func(p *ferryv1.ProcessPool) {
				p.Status.LastSpawnError = &ferryv1.SpawnError{Revision: target, Reason: "memory", Time: metav1.Time{Time: t0}}
			})},
			"", nil,
		},
		{"the record outlives its node", kept, []*ferryv1.ProcessPool{testPool("a", target, rolledOut(2))}, "", kept},
		{"the record outlives its node's return to an older revision", kept, []*ferryv1.ProcessPool{testPool("b", old, rolledOut(2))}, "", kept},
		{"the record keeps its time while the node still resists", kept, []*ferryv1.ProcessPool{testPool("b", target, resists(target, "other", ""))}, "", kept},
		{"... and while it still cannot spawn, its old processes serving", failed, []*ferryv1.ProcessPool{testPool("b", target, scalingFails)}, "", failed},
		{
			"a record of a node left without processes turns to resistance when it is returned",
			failed,
			[]*ferryv1.ProcessPool{testPool("b", old, rolledOut(2), returnedFrom(target, "exited with status 1"))},
			"", &ferryv1.HaltedRollout{Revision: target, Node: "b", Reason: "exited with status 1", Resisted: true, Since: earlier},
		},
		{"the record ends when its node runs the target", kept, []*ferryv1.ProcessPool{testPool("b", target, rolledOut(2))}, "", nil},
		{"the record ends when every node runs the target", kept, []*ferryv1.ProcessPool{testPool("a", target, rolledOut(2))}, target, nil},
		{
			"... unless another node halts it",
			kept,
			[]*ferryv1.ProcessPool{testPool("b", target, rolledOut(2)), testPool("c", target, resists(target, "y", ""))},
			"", now("c", "y", true),
		},
		{"a record of an earlier target ends", &ferryv1.HaltedRollout{Revision: old, Node: "b"}, []*ferryv1.ProcessPool{testPool("b", old, rolledOut(2))}, "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reports := assessAll(target, tt.pools...)
			var last *ferryv1.RolledOutRevision
			if tt.last != "" {
				last = &ferryv1.RolledOutRevision{Revision: tt.last}
			}
			got := haltRecord(haltInput(tt.prev, target, reports, last, runsRolledOut(byNode(reports))))
			if !equality.Semantic.DeepEqual(got, tt.want) {
				t.Errorf("haltRecord = %+v, want %+v", got, tt.want)
			}
		})
	}
	t.Run("a pool cannot spawn a target proven earlier: no halt to remember", func(t *testing.T) {
		// It rolled out on a, whose agent restarted with the database down.
		reports := assessAll(target, testPool("a", target, failsSpawns(target, "database down")), testPool("b", target, restarting(0, 2)))
		if got := haltRecord(haltInput(nil, target, reports, nil, true)); got != nil {
			t.Errorf("haltRecord = %+v, want none", got)
		}
	})
}

// TestHaltRecordOfACrashLoop: a node where the target dies young with
// nothing to return it, its restart over, is no halt to record or keep
// (the loop sortRollout reads): one process of it dead leaves none
// running, which read as failing the target, and the record stood from
// that death until the node rolled out, naming the node as the halt once
// it was deselected. Where something returns the node, or its restart is
// still under way (its old processes serving, or none after a Blocking
// restart stopped them), the halt is recorded as before.
func TestHaltRecordOfACrashLoop(t *testing.T) {
	const died = "exited with status 1 1.2s after it was ready"
	earlier := lastTransition(t0.Add(-time.Hour))
	recorded := func(node, reason string, resisted bool, since metav1.Time) *ferryv1.HaltedRollout {
		return &ferryv1.HaltedRollout{Revision: targetRev, Node: node, Reason: reason, Resisted: resisted, Since: since}
	}
	// on is in over pools of nodes a and b (b only where given), revision
	// 1 rolled out before, the record so far prev, after the pass's
	// unstarted and settle; edited by edits.
	on := func(prev *ferryv1.HaltedRollout, a, b *ferryv1.ProcessPool, edits ...func(rollupInput) rollupInput) rollupInput {
		pools := []*ferryv1.ProcessPool{a}
		if b != nil {
			pools = append(pools, b)
		}
		in := input(nodesOf(assessAll(targetRev, pools...)), pools...)
		in.LastRolledOut, in.Halt = &ferryv1.RolledOutRevision{Revision: oldRev}, prev
		for _, edit := range edits {
			in = edit(in)
		}
		if in.Proven != in.Target {
			unstarted(in.Reports)
			settle(in.Reports, t0, 10*time.Second)
		}
		return looped(in)
	}
	blocking := func(in rollupInput) rollupInput {
		in.AppGroup.Spec.Restart.Strategy = ferryv1.RestartBlocking
		return in
	}
	first := func(in rollupInput) rollupInput {
		in.LastRolledOut = nil
		return in
	}
	deadAlone := func(node string) *ferryv1.ProcessPool { return testPool(node, targetRev, rolledOut(1), diedAlone) }
	tests := []struct {
		name string
		in   rollupInput
		want *ferryv1.HaltedRollout
	}{
		{"resistance off, one process dead young, none running: a loop, no halt", on(nil, deadAlone("a"), nil, resistingNothing), nil},
		{"a Blocking restart, one process dead young: no halt", on(nil, deadAlone("a"), nil, blocking), nil},
		{"a first revision, one process dead young: nothing to return to, no halt", on(nil, deadAlone("a"), nil, first), nil},
		{
			"resistance off, a wave waiting, one process dead young: no halt",
			on(nil, deadAlone("a"), testPool("b", oldRev, rolledOut(1)), resistingNothing), nil,
		},
		{
			"resistance off, a record of the node ends once it loops",
			on(recorded("a", died, false, earlier), deadAlone("a"), nil, resistingNothing), nil,
		},
		{
			"resistance off, a record of the node ends once it loops, whatever it said",
			on(recorded("a", "not ready within startTimeout (90s)", false, earlier), deadAlone("a"), nil, resistingNothing), nil,
		},
		{
			// Not rolled out while the wave waits for it (settle): the
			// record stood until a process of it lived the window.
			"resistance off, a wave waiting, a record of the node ends between two deaths",
			on(recorded("a", died, false, earlier), testPool("a", targetRev, rolledOut(1), readyAlone),
				testPool("b", oldRev, rolledOut(1)), resistingNothing), nil,
		},
		{
			"a proven target, a record of a node looping on it ends",
			on(recorded("b", died, false, earlier), testPool("a", targetRev, rolledOut(1)), deadAlone("b"), provenIn), nil,
		},
		{
			"resistance off, a record of the node looping ends, and another node that cannot spawn it halts",
			on(recorded("a", died, false, earlier), deadAlone("a"),
				testPool("b", targetRev, failsSpawns(targetRev, "not ready within startTimeout (90s)")), resistingNothing),
			recorded("b", "not ready within startTimeout (90s)", false, lastTransition(t0)),
		},
		{
			"resistance off, a record of a node that resisted is kept while it loops",
			on(recorded("a", died, true, earlier), deadAlone("a"), nil, resistingNothing), recorded("a", died, true, earlier),
		},
		{
			// Returned, as resistance promises: the halt it always was.
			"resisted, one process dead young with a revision to return to: halted",
			on(nil, deadAlone("a"), nil), recorded("a", died, false, lastTransition(t0)),
		},
		{
			"resistance off, mid-restart, its old processes serving: halted",
			on(nil, testPool("a", targetRev, restarting(0, 2), crashedInWindow), nil, resistingNothing),
			recorded("a", died, false, lastTransition(t0)),
		},
		{
			// FailsTarget needs none of the target counted updated there.
			"resistance off, mid-restart, a process of it updated there: no halt",
			on(nil, testPool("a", targetRev, restarting(1, 2), crashedInWindow), nil, resistingNothing), nil,
		},
		{
			// A proven target only backs off: no deployment error to
			// record, though the node reads as failing it (below).
			"resistance off, a proven target, mid-restart, its old processes serving: no record",
			on(nil, testPool("a", targetRev, rolledOut(1)), testPool("b", targetRev, restarting(0, 2), crashedInWindow),
				resistingNothing, provenIn), nil,
		},
		// A Blocking restart resists nothing, whatever
		// resistDeploymentErrors says (left on here, its default): its
		// mid-restart young death reads as one with resistance off, a
		// halt, with no older process serving there: the restart stopped
		// them all before it spawned the target. haltRecord reads the
		// strategy only through the crash loop (contract.NotReturnedWhy),
		// and a node mid-restart halts as no loop (loopsOn) whatever it
		// is; mid-restart, though its counts read as a restart over
		// (updated = total = 0): RollingRestart says it is not, which
		// is what the manager reads (restartOver). With none of it
		// running, the restart is at its very end (restartingBlocking):
		// its agent reports that only in passing, if at all.
		{
			"a Blocking restart, mid-restart, its old processes stopped, none of it running: halted",
			on(nil, testPool("a", targetRev, restartingBlocking(0, 2), crashedInWindow), nil, blocking),
			recorded("a", died, false, lastTransition(t0)),
		},
		{
			"a Blocking restart, mid-restart, its old processes stopped, one of it booting: no halt",
			on(nil, testPool("a", targetRev, restartingBlocking(1, 2), crashedInWindow), nil, blocking), nil,
		},
		{
			"a Blocking restart, a proven target, mid-restart, its old processes stopped, none of it running: no record",
			on(nil, testPool("a", targetRev, rolledOut(1)), testPool("b", targetRev, restartingBlocking(0, 2), crashedInWindow),
				blocking, provenIn), nil,
		},
		// The strategy turned Blocking while the node's Rolling restart
		// was under way (the agent keeps the strategy it started with),
		// its old processes serving: the same, the strategy read from
		// the AppGroup.
		{
			"Blocking now, a Rolling restart under way, its old processes serving, none of it running: halted",
			on(nil, testPool("a", targetRev, restarting(0, 2), crashedInWindow), nil, blocking),
			recorded("a", died, false, lastTransition(t0)),
		},
		{
			"Blocking now, a Rolling restart under way, a process of it updated there: no halt",
			on(nil, testPool("a", targetRev, restarting(1, 2), crashedInWindow), nil, blocking), nil,
		},
		{
			"Blocking now, a proven target, a Rolling restart under way, its old processes serving: no record",
			on(nil, testPool("a", targetRev, rolledOut(1)), testPool("b", targetRev, restarting(0, 2), crashedInWindow),
				blocking, provenIn), nil,
		},
		{
			"resistance off, a process of it lasted there before: halted",
			on(nil, testPool("a", targetRev, rolledOut(1), diedAlone, lasted), nil, resistingNothing),
			recorded("a", died, false, lastTransition(t0)),
		},
		{
			"resistance off, cannot spawn it at all: halted",
			on(nil, testPool("a", targetRev, failsSpawns(targetRev, "exited with status 1")), nil, resistingNothing),
			recorded("a", "exited with status 1", false, lastTransition(t0)),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := haltRecord(tt.in); !equality.Semantic.DeepEqual(got, tt.want) {
				t.Errorf("haltRecord = %+v, want %+v", got, tt.want)
			}
		})
	}
	// What RollingRestart reads mid-restart, the record as the pass keeps
	// it: a halt without a record for a proven target, none once a
	// process of the target is updated there.
	reads := []struct {
		name string
		in   rollupInput
		want string
	}{
		{
			"resistance off, mid-restart, a process of it updated there: rolling out",
			on(nil, testPool("a", targetRev, restarting(1, 2), crashedInWindow), nil, resistingNothing), ferryv1.ReasonRollingOut,
		},
		{
			"resistance off, a proven target, mid-restart, its old processes serving: halted",
			on(nil, testPool("a", targetRev, rolledOut(1)), testPool("b", targetRev, restarting(0, 2), crashedInWindow),
				resistingNothing, provenIn), ferryv1.ReasonRolloutHalted,
		},
		{
			// What the strategy changes here: the reason while a node
			// restarts, as its agent says (its pool's RollingRestart).
			"a Blocking restart, mid-restart, its old processes stopped, one of it booting: restarting, blocking",
			on(nil, testPool("a", targetRev, restartingBlocking(1, 2), crashedInWindow), nil, blocking), ferryv1.ReasonRestartingBlocking,
		},
		{
			"a Blocking restart, a proven target, mid-restart, its old processes stopped, none of it running: halted",
			on(nil, testPool("a", targetRev, rolledOut(1)), testPool("b", targetRev, restartingBlocking(0, 2), crashedInWindow),
				blocking, provenIn), ferryv1.ReasonRolloutHalted,
		},
		{
			// The agent runs the Rolling restart it began: not said to
			// be a Blocking one, its old processes serving.
			"Blocking now, a Rolling restart under way, a process of it updated there: rolling out",
			on(nil, testPool("a", targetRev, restarting(1, 2), crashedInWindow), nil, blocking), ferryv1.ReasonRollingOut,
		},
		{
			"Blocking now, a proven target, a Rolling restart under way, its old processes serving: halted",
			on(nil, testPool("a", targetRev, rolledOut(1)), testPool("b", targetRev, restarting(0, 2), crashedInWindow),
				blocking, provenIn), ferryv1.ReasonRolloutHalted,
		},
	}
	for _, tt := range reads {
		t.Run(tt.name, func(t *testing.T) {
			in := tt.in
			in.Halt = haltRecord(in)
			st := computeStatus(looped(in))
			if c := meta.FindStatusCondition(st.Conditions, ferryv1.ConditionRollingRestart); c == nil || c.Reason != tt.want {
				t.Errorf("RollingRestart = %+v, want reason %s", c, tt.want)
			}
			if st.HaltedRollout != nil {
				t.Errorf("status.haltedRollout = %+v, want none", st.HaltedRollout)
			}
		})
	}
}

func TestLastRolledOut(t *testing.T) {
	const old, target = "1-abc", "2-abc"
	withRoot := func(root string) poolOpt {
		return func(p *ferryv1.ProcessPool) { p.Spec.Template.App.Root = root }
	}
	prev := &ferryv1.RolledOutRevision{Revision: old, App: ferryv1.AppSpec{Root: "/srv/old"}}
	tests := []struct {
		name  string
		nodes []string
		pools []*ferryv1.ProcessPool
		want  *ferryv1.RolledOutRevision
	}{
		{"every node rolled out on the target: it and its app", []string{"a", "b"},
			[]*ferryv1.ProcessPool{testPool("a", target, rolledOut(2), withRoot("/srv/new")), testPool("b", target, rolledOut(2), withRoot("/srv/new"))},
			&ferryv1.RolledOutRevision{Revision: target, App: ferryv1.AppSpec{Root: "/srv/new"}}},
		{"one node still restarting", []string{"a", "b"},
			[]*ferryv1.ProcessPool{testPool("a", target, rolledOut(2)), testPool("b", target, restarting(1, 2))}, prev},
		{"one node resisting", []string{"a", "b"},
			[]*ferryv1.ProcessPool{testPool("a", target, rolledOut(2)), testPool("b", target, resists(target, "x", ""))}, prev},
		{"one selected node without its pool yet", []string{"a", "b"},
			[]*ferryv1.ProcessPool{testPool("a", target, rolledOut(2))}, prev},
		{"one node left processes behind on an older revision (resistance off)", []string{"a", "b"},
			[]*ferryv1.ProcessPool{testPool("a", target, rolledOut(2)), testPool("b", target, incomplete(1, 2))}, prev},
		{"one node silent", []string{"a"},
			[]*ferryv1.ProcessPool{testPool("a", target, rolledOut(2), heartbeatAt(t0.Add(-time.Hour)))}, prev},
		{"no node selected", nil, nil, prev},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := lastRolledOut(prev, target, tt.nodes, byNode(assessAll(target, tt.pools...)))
			if !equality.Semantic.DeepEqual(got, tt.want) {
				t.Errorf("lastRolledOut = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestReturnsFromTarget(t *testing.T) {
	const target = "2-abc"
	failing := testPool("b", target, failsSpawns(target, "x"))
	resistOff := &ferryv1.AppGroup{}
	resistOff.Spec.Restart.ResistDeploymentErrors = ptr.To(false)
	blocking := &ferryv1.AppGroup{}
	blocking.Spec.Restart.Strategy = ferryv1.RestartBlocking
	resistedHere := &ferryv1.HaltedRollout{Revision: target, Node: "b", Resisted: true}
	tests := []struct {
		name   string
		ag     *ferryv1.AppGroup
		pool   *ferryv1.ProcessPool
		proven bool
		halt   *ferryv1.HaltedRollout
		want   bool
	}{
		{"cannot spawn a target that never ran: back", &ferryv1.AppGroup{}, failing, false, nil, true},
		{"resisting: stays, its old processes serve", &ferryv1.AppGroup{}, testPool("b", target, resists(target, "x", "")), false, resistedHere, false},
		{"the target ran rolled out on a node: stays and retries", &ferryv1.AppGroup{}, failing, true, nil, false},
		{"... unless this node resisted it before (its agent restarted)", &ferryv1.AppGroup{}, failing, true, resistedHere, true},
		{"... not when another node resisted it", &ferryv1.AppGroup{}, failing, true, &ferryv1.HaltedRollout{Revision: target, Node: "c", Resisted: true}, false},
		{"resistance off: stays and retries", resistOff, failing, false, nil, false},
		{"Blocking restarts give resistance up", blocking, failing, false, nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := assessAll(target, tt.pool)[0]
			if got := returnsFromTarget(tt.ag, r, tt.proven, tt.halt); got != tt.want {
				t.Errorf("returnsFromTarget = %v, want %v", got, tt.want)
			}
		})
	}
}

// TestNewTargetMidRestartKeepsOneNodeRolling: maxConcurrentNodes 1.
// Revision B rolled out on a and is rolling on b when the user reverts
// (or fixes forward): the target changes while b is mid-restart. The
// next wave must not start another node while b still restarts onto the
// superseded revision: b should get the new target first (it restarts
// anyway), or hold the slot. Giving it to a leaves two nodes restarting
// at once, and b finishing a rollout the user abandoned.
func TestNewTargetMidRestartKeepsOneNodeRolling(t *testing.T) {
	const revA, revB = "1-abc", "2-abc"
	reports := assessAll(revA,
		testPool("a", revB, rolledOut(2)),
		testPool("b", revB, restarting(1, 2)),
		testPool("c", revA, rolledOut(2)),
	)
	plan := planWave(reports, 1, nil, false)
	restartingNow := len(plan.Give) + len(plan.Rolling)
	if !slices.Contains(plan.Give, "b") {
		restartingNow++ // b goes on restarting onto the revision the user left
	}
	if restartingNow > 1 {
		t.Errorf("plan gives %v (rolling %v, waiting %v) while b is still restarting onto %s: %d nodes restart at once, want at most 1",
			plan.Give, plan.Rolling, plan.Waiting, revB, restartingNow)
	}
}

// TestUnstarted: on a target not yet proven, a pool with none of it ready
// has not started it.
func TestUnstarted(t *testing.T) {
	tests := []struct {
		name    string
		pool    *ferryv1.ProcessPool
		updated bool
	}{
		{"no process yet", testPool("a", targetRev, rolledOut(0), notReadyAtAll), false},
		{"first processes booting", testPool("a", targetRev, rolledOut(2), counts(0, 2, 2), notReadyAtAll), false},
		{"one ready of two", testPool("a", targetRev, rolledOut(2), counts(1, 2, 2), notReady), true},
		{"rolled out", testPool("a", targetRev, rolledOut(2)), true},
		// Not on the target: an older revision's pool is not the
		// rollout's to judge.
		{"an older revision's, none ready", testPool("a", oldRev, rolledOut(2), counts(0, 2, 2), notReadyAtAll), true},
		// The status shows no sign that a process of it was ever ready:
		// starting again (its events are not recorded twice: rolloutSeen).
		{"crashed soon after ready, respawning", testPool("a", targetRev, rolledOut(2), counts(0, 2, 2), notReadyAtAll, crashedInWindow), false},
		// A first start that keeps failing (the walkthrough's broken app):
		// a spawning process does not count the node updated.
		{"spawns failing, one spawning", testPool("a", targetRev, rolledOut(1), counts(0, 1, 1), notReadyAtAll, crashedInWindow), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reports := byNode(assessAll(targetRev, tt.pool))
			unstarted(reports)
			if got := reports["a"].Updated; got != tt.updated {
				t.Errorf("Updated = %v, want %v", got, tt.updated)
			}
		})
	}
}

// TestSettle: while a target is not proven and other nodes wait for it, a
// node rolled out onto it counts as such only once its restart ended, and
// its youngest process of the target started, the crash window ago.
func TestSettle(t *testing.T) {
	const window = 10 * time.Second
	finished := func(ago time.Duration) poolOpt {
		return func(p *ferryv1.ProcessPool) {
			for i := range p.Status.Conditions {
				if p.Status.Conditions[i].Type == ferryv1.ConditionRollingRestart {
					p.Status.Conditions[i].LastTransitionTime = metav1.NewTime(t0.Add(-ago))
				}
			}
		}
	}
	process := func(revision string, ago time.Duration) poolOpt {
		return func(p *ferryv1.ProcessPool) {
			p.Status.Processes = append(p.Status.Processes, ferryv1.ProcessInfo{
				PID: int32(len(p.Status.Processes) + 100), Revision: revision, State: ferryv1.ProcessReady,
				StartedAt: metav1.NewTime(t0.Add(-ago))})
		}
	}
	waiting := testPool("b", oldRev, rolledOut(2))
	tests := []struct {
		name      string
		pools     []*ferryv1.ProcessPool
		window    time.Duration
		rolledOut bool
		settlesIn time.Duration
	}{
		{"restart just ended", []*ferryv1.ProcessPool{
			testPool("a", targetRev, rolledOut(2), finished(3*time.Second), process(targetRev, 5*time.Second)), waiting,
		}, window, false, 7 * time.Second},
		{"a process replaced since (a crash)", []*ferryv1.ProcessPool{
			testPool("a", targetRev, rolledOut(2), finished(time.Minute), process(targetRev, time.Minute), process(targetRev, 2*time.Second)), waiting,
		}, window, false, 8 * time.Second},
		// Recycled under load faster than the window: the youngest
		// process is always young, and the window measured from it never
		// ended (found by review); the agent says the revision lasted.
		{"young processes, but the agent says the revision lasted", []*ferryv1.ProcessPool{
			testPool("a", targetRev, rolledOut(2), finished(time.Minute), process(targetRev, 2*time.Second), process(targetRev, time.Second),
				func(p *ferryv1.ProcessPool) { p.Status.LastedRevision = targetRev }), waiting,
		}, window, true, 0},
		{"lasted an older revision only", []*ferryv1.ProcessPool{
			testPool("a", targetRev, rolledOut(2), finished(time.Minute), process(targetRev, 2*time.Second),
				func(p *ferryv1.ProcessPool) { p.Status.LastedRevision = oldRev }), waiting,
		}, window, false, 8 * time.Second},
		{"lived the window", []*ferryv1.ProcessPool{
			testPool("a", targetRev, rolledOut(2), finished(11*time.Second), process(targetRev, 12*time.Second)), waiting,
		}, window, true, 0},
		{"an older revision's young process does not count", []*ferryv1.ProcessPool{
			testPool("a", targetRev, rolledOut(2), finished(11*time.Second), process(targetRev, 12*time.Second), process(oldRev, time.Second)), waiting,
		}, window, true, 0},
		{"no node waits: not held, but still to live the window (TestSettleInOneWave)", []*ferryv1.ProcessPool{
			testPool("a", targetRev, rolledOut(2), finished(time.Second)),
		}, window, true, 9 * time.Second},
		{"settling off", []*ferryv1.ProcessPool{
			testPool("a", targetRev, rolledOut(2), finished(time.Second)), waiting,
		}, -1, true, 0},
		// The agent stamps its times by its own clock, an hour ahead of
		// the manager's: by that clock (its report is an hour ahead too)
		// the processes have lived the window, or have 7 s left, not an
		// hour and 7 s.
		{"an agent's clock ahead: lived the window by it", []*ferryv1.ProcessPool{
			testPool("a", targetRev, rolledOut(2), finished(11*time.Second-time.Hour), process(targetRev, 12*time.Second-time.Hour),
				heartbeatAt(t0.Add(time.Hour))), waiting,
		}, window, true, 0},
		{"an agent's clock ahead: still young by it", []*ferryv1.ProcessPool{
			testPool("a", targetRev, rolledOut(2), finished(3*time.Second-time.Hour), process(targetRev, 5*time.Second-time.Hour),
				heartbeatAt(t0.Add(time.Hour))), waiting,
		}, window, false, 7 * time.Second},
		// A process crashed after the restart; its replacement was
		// spawned 12 s ago and booted for 10 s: ready, which ended the
		// scaling error the crash raised, 2 s ago. The agent's crash
		// window runs from ready: 8 s left, not none.
		{"a replacement slow to boot: from its recovery", []*ferryv1.ProcessPool{
			testPool("a", targetRev, rolledOut(2), finished(time.Minute), process(targetRev, 12*time.Second),
				func(p *ferryv1.ProcessPool) {
					setCond(p, ferryv1.ConditionScalingError, metav1.ConditionFalse, ferryv1.ReasonSpawnsHealthy, "")
					for i := range p.Status.Conditions {
						if p.Status.Conditions[i].Type == ferryv1.ConditionScalingError {
							p.Status.Conditions[i].LastTransitionTime = metav1.NewTime(t0.Add(-2 * time.Second))
						}
					}
				}), waiting,
		}, window, false, 8 * time.Second},
		{"still restarting: not rolled out anyway", []*ferryv1.ProcessPool{
			testPool("a", targetRev, restarting(1, 2)), waiting,
		}, window, false, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reports := byNode(assessAll(targetRev, tt.pools...))
			settle(reports, t0, tt.window)
			r := reports["a"]
			if r.RolledOut != tt.rolledOut || r.SettlesIn != tt.settlesIn {
				t.Errorf("RolledOut %v SettlesIn %v, want %v %v", r.RolledOut, r.SettlesIn, tt.rolledOut, tt.settlesIn)
			}
			if b, ok := reports["b"]; ok && !b.RolledOut {
				t.Error("the waiting node's own report was changed")
			}
			want := time.Duration(0)
			if tt.settlesIn > 0 {
				want = tt.settlesIn + 100*time.Millisecond
			}
			if got := nextSettle(reports); got != want {
				t.Errorf("nextSettle = %v, want %v", got, want)
			}
		})
	}
}

// TestSettleByAClockBehind: an agent whose clock is 45 s behind the
// manager's ended its restart 3 s ago by the manager's clock, 48 s ago by
// its own. The manager saw its report written (signs): its processes are
// still young, with 7 s of the window left, not past it.
func TestSettleByAClockBehind(t *testing.T) {
	const behind = 45 * time.Second
	p := testPool("a", targetRev, rolledOut(2), heartbeatAt(t0.Add(-behind)), func(p *ferryv1.ProcessPool) {
		for i := range p.Status.Conditions {
			if p.Status.Conditions[i].Type == ferryv1.ConditionRollingRestart {
				p.Status.Conditions[i].LastTransitionTime = metav1.NewTime(t0.Add(-3*time.Second - behind))
			}
		}
		p.Status.Processes = []ferryv1.ProcessInfo{{PID: 100, Revision: targetRev, State: ferryv1.ProcessReady,
			StartedAt: metav1.NewTime(t0.Add(-5*time.Second - behind))}}
	})
	signs := newSigns(clocktesting.NewFakePassiveClock(t0))
	signs.saw(reportSign(p.Namespace, p.Name), t0.Add(-time.Hour))
	signs.saw(reportSign(p.Namespace, p.Name), t0.Add(-behind)) // written now
	reports := byNode([]poolReport{
		assessPool(p, targetRev, t0, staleAfter, time.Time{}, hearing{signs: signs}),
		assessPool(testPool("b", oldRev, rolledOut(2)), targetRev, t0, staleAfter, time.Time{}, hearing{}),
	})
	settle(reports, t0, 10*time.Second)
	if r := reports["a"]; r.RolledOut || r.SettlesIn != 7*time.Second {
		t.Errorf("RolledOut %v SettlesIn %v, want false 7s: the window judged by a clock 45 s behind", r.RolledOut, r.SettlesIn)
	}
}

// TestSettleInOneWave: when every node takes an unproven target in one
// wave (one node, or maxConcurrentNodes as many as the nodes), nobody waits
// and no rollout is held, yet the target is neither proven nor rolled out
// everywhere until its processes have lived the crash window: one that
// boots and then dies on every node still returns them to what worked.
func TestSettleInOneWave(t *testing.T) {
	young := func(p *ferryv1.ProcessPool) {
		for i := range p.Status.Conditions {
			if p.Status.Conditions[i].Type == ferryv1.ConditionRollingRestart {
				p.Status.Conditions[i].LastTransitionTime = metav1.NewTime(t0.Add(-3 * time.Second))
			}
		}
	}
	last := &ferryv1.RolledOutRevision{Revision: oldRev, App: ferryv1.AppSpec{Root: "/srv/old"}}
	newScope := func(now time.Time, pools ...*ferryv1.ProcessPool) *scope {
		s := &scope{ag: &ferryv1.AppGroup{}, target: targetRev, now: now, settle: 10 * time.Second,
			pools: map[string]*ferryv1.ProcessPool{}, lastGood: last.DeepCopy(), proven: oldRev}
		for _, p := range pools {
			s.nodes = append(s.nodes, p.Spec.NodeName)
			s.pools[p.Spec.NodeName] = p
		}
		return s
	}

	s := newScope(t0, testPool("a", targetRev, rolledOut(2), young), testPool("b", targetRev, rolledOut(2), young))
	reports := s.reports(staleAfter)
	if !reports["a"].RolledOut || !reports["b"].RolledOut {
		t.Error("nobody waits: nothing to hold the rollout for")
	}
	s.remember(reports)
	if s.targetProven() || s.lastGood.Revision != oldRev {
		t.Fatalf("processes 3 s old: proven %q, last rolled out %q; want neither the target", s.proven, s.lastGood.Revision)
	}
	if d := nextSettle(reports); d != 7*time.Second+100*time.Millisecond {
		t.Errorf("nextSettle = %v, want 7.1s (to prove the target then)", d)
	}

	// They die: the target halts and the nodes return to what worked.
	s = newScope(t0.Add(5*time.Second), testPool("a", targetRev, failsSpawns(targetRev, "boom")),
		testPool("b", targetRev, failsSpawns(targetRev, "boom")))
	s.remember(s.reports(staleAfter))
	if s.halt == nil {
		t.Error("the target that died within the window halts nothing")
	}
	if !returnsFromTarget(s.ag, s.reports(staleAfter)["a"], s.targetProven(), s.halt) {
		t.Error("node a stays on the target that died within the window")
	}

	// They live: proven, and rolled out everywhere.
	s = newScope(t0.Add(8*time.Second), testPool("a", targetRev, rolledOut(2), young), testPool("b", targetRev, rolledOut(2), young))
	s.remember(s.reports(staleAfter))
	if !s.targetProven() || s.lastGood.Revision != targetRev {
		t.Errorf("processes 11 s old: proven %q, last rolled out %q; want the target", s.proven, s.lastGood.Revision)
	}
}

// TestHaltReasonOfAReturnedPoolWhoseAgentRestarted: a pool returned from
// the target whose agent restarted since (its lastSpawnError gone) has no
// spawn error to give; the message of its False ResistingDeploymentError
// ("No deployment error is being resisted", as the agent writes it) is no
// reason for the halt (found by review).
func TestHaltReasonOfAReturnedPoolWhoseAgentRestarted(t *testing.T) {
	p := testPool("b", oldRev, rolledOut(2), returnedFrom(targetRev, "exited with status 1"), func(p *ferryv1.ProcessPool) {
		p.Status.LastSpawnError = nil
		setCond(p, ferryv1.ConditionResistingDeploymentError, metav1.ConditionFalse, ferryv1.ReasonNoDeploymentError,
			"No deployment error is being resisted")
	})
	reports := assessAll(targetRev, p)
	got := haltRecord(haltInput(nil, targetRev, reports, nil, false))
	if got == nil {
		t.Fatal("no halt record")
	}
	if got.Reason != "" {
		t.Errorf("halt reason %q: the message of a False condition, not a spawn error", got.Reason)
	}
}

// TestIncompleteRolloutOfATargetThatNeverRanProvesNothing: with
// resistDeploymentErrors false, a target none of whose processes could
// spawn anywhere ends RolloutIncomplete on every node, each node still
// serving the old revision's processes. The target never ran, so it is
// not proven (api.md: provenRevision is "the target once it has run,
// rolled out, on some node"; install.md: "before it ran on some node with
// every process ready and lived the crash window there") and not the last
// revision rolled out ("the last revision that ran, rolled out, on every
// selected node"). A node that joins then starts on what works
// (lastRolledOut), not on a revision that cannot spawn, with nothing
// older to serve.
func TestIncompleteRolloutOfATargetThatNeverRanProvesNothing(t *testing.T) {
	last := &ferryv1.RolledOutRevision{Revision: oldRev, App: ferryv1.AppSpec{Root: "/srv/old"}}
	// Both processes left on the old revision; the restart ended a minute
	// ago, well past the crash window.
	neverRan := func(node string) *ferryv1.ProcessPool {
		return testPool(node, targetRev, incomplete(2, 2), func(p *ferryv1.ProcessPool) {
			for i := range p.Status.Conditions {
				p.Status.Conditions[i].LastTransitionTime = metav1.NewTime(t0.Add(-time.Minute))
			}
			for i := range 2 {
				p.Status.Processes = append(p.Status.Processes, ferryv1.ProcessInfo{PID: int32(100 + i), Revision: oldRev,
					State: ferryv1.ProcessReady, StartedAt: metav1.NewTime(t0.Add(-time.Hour))})
			}
			p.Status.LastSpawnError = &ferryv1.SpawnError{Revision: targetRev, Reason: "exited with status 1", Time: metav1.NewTime(t0.Add(-time.Minute))}
		})
	}
	ag := &ferryv1.AppGroup{}
	ag.Spec.Restart.ResistDeploymentErrors = ptr.To(false)
	s := &scope{ag: ag, target: targetRev, now: t0, settle: 10 * time.Second,
		pools: map[string]*ferryv1.ProcessPool{}, lastGood: last.DeepCopy(), proven: oldRev}
	for _, p := range []*ferryv1.ProcessPool{neverRan("a"), neverRan("b")} {
		s.nodes = append(s.nodes, p.Spec.NodeName)
		s.pools[p.Spec.NodeName] = p
	}
	reports := s.reports(staleAfter)
	// The rollout went on past both nodes.
	if plan := planWave(slices.Collect(maps.Values(reports)), 1, nil, false); len(plan.Rolling) > 0 {
		t.Errorf("nodes %v still roll: a node that left processes behind does not hold the rollout", plan.Rolling)
	}
	s.remember(reports)
	if s.targetProven() {
		t.Errorf("provenRevision = %s: no process of it ever ran on any node", s.proven)
	}
	if s.lastGood.Revision != oldRev {
		t.Errorf("lastRolledOut = %s, want %s: no process of %s ever ran on any node", s.lastGood.Revision, oldRev, targetRev)
	}
	// Node c joins now.
	s.nodes = append(s.nodes, "c")
	if rev, _ := newPoolRevision(ag, s.target, s.nodes, reports, s.halt != nil, s.targetProven(), s.lastGood); rev != oldRev {
		t.Errorf("a node that joins starts on %s, which no node could spawn (it has nothing older to serve), want %s", rev, oldRev)
	}
}

// TestFallbackIsNotARevisionThatNeverRan: the fallback is "the revision
// another node serves ready, else status.lastRolledOut" (install.md): what
// a node returned from a halted target, or one that joins before the
// target is proven, starts on, so that it serves what works. A node whose
// previous rollout (resistDeploymentErrors false) ended RolloutIncomplete
// with none of its processes replaced has that revision in its spec, but
// serves the one before it: its spec revision never ran there, and is no
// fallback.
func TestFallbackIsNotARevisionThatNeverRan(t *testing.T) {
	const older, broken, target = "0-abc", "1-abc", "2-abc"
	last := &ferryv1.RolledOutRevision{Revision: older, App: ferryv1.AppSpec{Root: "/srv/older"}}
	// Node a: the rollout of broken ended incomplete there, both its
	// processes still of older; node b returned from target (its agent
	// restarted while it resisted), nothing running yet.
	a := testPool("a", broken, incomplete(2, 2), func(p *ferryv1.ProcessPool) {
		p.Spec.Template.App.Root = "/srv/broken"
		for i := range 2 {
			p.Status.Processes = append(p.Status.Processes, ferryv1.ProcessInfo{PID: int32(100 + i), Revision: older,
				State: ferryv1.ProcessReady, StartedAt: metav1.NewTime(t0.Add(-time.Hour))})
		}
		p.Status.LastSpawnError = &ferryv1.SpawnError{Revision: broken, Reason: "exited with status 1", Time: metav1.NewTime(t0.Add(-time.Hour))}
	})
	b := testPool("b", target, failsSpawns(target, "exited with status 1"))
	reports := byNode(assessAll(target, a, b))
	rev, app, ok := fallback([]string{"a", "b"}, reports, last, target)
	if !ok || rev != older || app.Root != "/srv/older" {
		t.Errorf("fallback = %s (root %s), ok %v; want %s (root /srv/older): no process of %s ever ran on node a, which serves %s",
			rev, app.Root, ok, older, broken, older)
	}
}
