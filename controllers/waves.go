package controllers

import (
	"cmp"
	"slices"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	ferryv1 "github.com/ferry-dev/ferry/api/v1alpha1"
	"github.com/ferry-dev/ferry/controllers/contract"
)

// poolReport is what the manager makes of one pool's status at one moment,
// relative to the AppGroup's target revision. assessPool computes it; the
// wave planner and the status roll-up both read it, so they cannot disagree
// on what "rolled out" or "stale" means.
type poolReport struct {
	// Node is the pool's node.
	Node string
	// Pool is the pool itself.
	Pool *ferryv1.ProcessPool
	// OnTarget: the pool has been given the target (spec.revision).
	OnTarget bool
	// Reported: the agent has reported at least once (heartbeatTime set).
	Reported bool
	// Stale: the last report is older than the staleness bound; nothing
	// below that depends on the report is then true, except Resisting,
	// ResistsTarget and SaidStopping, which keep what the agent last said
	// (a rollout halted by a node stays halted while that node is silent).
	Stale bool
	// Silence is how long ago the agent last showed it was alive: renewed
	// its node's Lease, or wrote this pool's status.
	Silence time.Duration
	// StaleIn is how long until the report turns stale, while it is not:
	// the bound less the silence since the later of the agent's last sign
	// and the start of the manager's contact with the API server. For a
	// pool never reported, how long until it is Unheard.
	StaleIn time.Duration
	// Unheard: the agent has never reported the pool, and nothing was
	// heard from it (no Lease renewed) for the staleness bound since the
	// pool was made, judged as Stale is (hearing): a node with no agent,
	// or one whose agent crashes before it reports. The waves treat it as
	// a silent node; Ready keeps it pending.
	Unheard bool
	// Ahead is how far the agent's clock is ahead of the manager's
	// (negative: behind), as far as the manager can tell: its report's
	// stamp less when the manager saw it written (signs.ahead), or, with
	// no such sighting, how far its last sign's stamp is ahead of now
	// (never negative). Times the agent stamps are judged with it
	// (settle).
	Ahead time.Duration
	// HasLease: the node's agent renews a Lease (its liveness is watched by
	// the lease watcher, not by requeues).
	HasLease bool
	// LeaseStale: HasLease, and the Lease was last renewed longer than the
	// staleness bound ago (judged as Stale is: hearing). A report newer
	// than it may still show the agent alive; where none came, no live
	// agent is there (deletingCondition).
	LeaseStale bool
	// LeaseIsLast: HasLease, and the Lease's renewal is the agent's last
	// sign, not a status written after it: the lease watcher's pass when
	// the Lease turns stale is then when the report does.
	LeaseIsLast bool
	// Ready: Ready=True and at least minProcesses processes ready.
	Ready bool
	// Serving: a recent report has a process ready and the proxy
	// listening, from an agent that is not stopping: the node takes
	// traffic, whether or not as many processes as minProcesses are
	// ready (raising it must not take every node out of the Service while
	// the new processes spawn). The EndpointSlice goes by it. It is
	// contract.ProxyServes on a recent report, as kubectl ferry judges it.
	Serving bool
	// SaidStopping: the agent's last report, recent or stale, says that
	// it is stopping (Ready=False, AgentStopping): a stale one is the last
	// word of an agent that stopped (staleMessage).
	SaidStopping bool
	// Stopping: SaidStopping, on a recent report: its processes count as
	// not ready, and the node's endpoint turns terminating (serving while
	// it has ready processes: its proxy serves out the drain delay).
	Stopping bool
	// ServesOn is the port the proxy still serves on while it cannot
	// listen on listen.port: the old one of a move whose new port is
	// taken (the agent reports its address there, with listenPort the
	// spec's): contract.ServesOnOldPort. 0 otherwise.
	ServesOn int32
	// Updated: every process runs spec.revision, and the agent neither
	// restarts nor resists.
	Updated bool
	// Incomplete: the agent finished its restart onto spec.revision but
	// could not replace some processes (resistDeploymentErrors is false:
	// RollingRestart=False, reason RolloutIncomplete).
	Incomplete bool
	// RolledOut: Updated, and every process is ready (at least
	// minProcesses); or Incomplete with at least minProcesses ready, since
	// with resistance off the rollout goes on past a node's failed spawns.
	// The next wave waits for this. An Incomplete pool counts for the
	// waves only: it did not run spec.revision rolled out (settled).
	RolledOut bool
	// SettlesIn: rolled out but for the crash window, while the target is
	// not proven: how long until the pool's restart finished, and its
	// youngest process of the target started, contract.CrashWindow ago
	// (settle). While other nodes wait for it RolledOut is false
	// meanwhile; while none does, RolledOut stays, but the pool neither
	// proves the target nor counts to its being rolled out everywhere
	// (settled).
	SettlesIn time.Duration
	// Restarting: a recent report has RollingRestart=True: the agent is
	// replacing processes, onto spec.revision, now.
	Restarting bool
	// Resisting: ResistingDeploymentError=True, for whichever revision.
	Resisting bool
	// ResistsTarget: Resisting, on the target, and the resisted spawn error
	// (when reported) is of the target.
	ResistsTarget bool
	// FailsTarget: on the target, not resisting, no process of the target
	// runs, and the agent reports that its spawns of the target fail
	// (ScalingError): the target cannot start there and has not served
	// there, with nothing older to resist with (its agent restarted mid-
	// rollout, or the node joined on a broken target). It halts the
	// rollout as resisting does.
	FailsTarget bool
	// Returned: not on the target, and marked as returned from it
	// (contract.ReturnedFromAnnotation): the manager returned it from the
	// target it could not spawn (returnsFromTarget). The halt is then
	// known from the pool itself, whatever the AppGroup's status says.
	Returned bool
}

// spawnsFail: the pool's agent reports that its spawns of revision fail
// (ScalingError, the last spawn error of revision), and backs them off;
// not for a cause outside the revision (ReasonSpawnBlocked: a port taken,
// a Secret the agent could not read), which says nothing of whether the
// revision starts: the agent retries until the cause passes.
func spawnsFail(st *ferryv1.ProcessPoolStatus, revision string) bool {
	c := spawnsBackOff(st, revision)
	return c != nil && c.Reason != ferryv1.ReasonSpawnBlocked
}

// spawnsBackOff is the pool's ScalingError condition when its agent backs
// off spawns of revision, for whatever cause (its reason says which);
// nil when it does not.
func spawnsBackOff(st *ferryv1.ProcessPoolStatus, revision string) *metav1.Condition {
	c := meta.FindStatusCondition(st.Conditions, ferryv1.ConditionScalingError)
	if c == nil || c.Status != metav1.ConditionTrue || st.LastSpawnError == nil || st.LastSpawnError.Revision != revision {
		return nil
	}
	return c
}

// settled: the pool runs the target rolled out, and has lived the crash
// window on it if the target was not proven (SettlesIn). Not an Incomplete
// pool: some of its processes, maybe all, still run an older revision, as
// the target could not spawn there; the rollout goes on past it
// (RolledOut), but it shows neither that the target runs (provenRevision)
// nor that it runs everywhere (lastRolledOut), and a node that joins must
// not be started on a target that may never have run.
func (r poolReport) settled() bool {
	return r.OnTarget && r.RolledOut && !r.Incomplete && r.SettlesIn == 0
}

// servesSpecReady: the pool serves spec.revision ready, which is then
// known to work there. Not while it resists (its processes of an older
// revision serve), nor when it is Incomplete: those it could not replace
// still run an older revision, whose app its spec no longer has, and
// spec.revision failed to spawn there, maybe every time.
func (r poolReport) servesSpecReady() bool { return r.Ready && !r.Resisting && !r.Incomplete }

// HaltsTarget: the pool resists the target or fails to spawn it; no
// further node gets the target while one does.
func (r poolReport) HaltsTarget() bool { return r.ResistsTarget || r.FailsTarget }

// assessPool reads one pool's status at now. A report is stale when the
// agent has shown no sign of life for staleAfter: neither renewed its
// node's Lease (leaseRenew, by the agent's clock, zero when it has none)
// nor written the pool's status (heartbeatTime). Both are timed by when
// the manager saw them (heard.signs, which records them), not by the
// agent's clock; a silence the manager could not have heard through
// either, an API server outage, is not counted (hearing.from).
func assessPool(pool *ferryv1.ProcessPool, target string, now time.Time, staleAfter time.Duration,
	leaseRenew time.Time, heard hearing) poolReport {
	st := &pool.Status
	r := poolReport{
		Node:     pool.Spec.NodeName,
		Pool:     pool,
		OnTarget: target != "" && pool.Spec.Revision == target,
		Reported: st.HeartbeatTime != nil,
	}
	leaseSeen := heard.leaseSeen(pool.Spec.NodeName, leaseRenew)
	reportSeen := heard.reportSeen(pool)
	r.HasLease = !leaseRenew.IsZero()
	r.LeaseStale = r.HasLease && now.Sub(heard.from(leaseSeen, staleAfter)) > staleAfter
	r.LeaseIsLast = r.HasLease && (!r.Reported || !reportSeen.After(leaseSeen))
	// The agent's clock ahead of the manager's, for the times in its
	// status (settle): what the stamps show of it.
	r.Ahead = max(leaseRenew.Sub(now), 0)
	if st.HeartbeatTime != nil {
		r.Ahead = max(st.HeartbeatTime.Sub(now), r.Ahead)
	}
	if ahead, ok := heard.signs.ahead(reportSign(pool.Namespace, pool.Name)); ok {
		r.Ahead = ahead
	}
	// The agent's last sign: its report, or its Lease's renewal, or for a
	// pool it never reported, the pool's making (no sign is expected
	// before it).
	last := pool.CreationTimestamp.Time
	if r.Reported {
		last = reportSeen
	}
	if leaseSeen.After(last) {
		last = leaseSeen
	}
	unheard := max(now.Sub(heard.from(last, staleAfter)), 0)
	if unheard <= staleAfter {
		r.StaleIn = staleAfter - unheard
	}
	if r.Reported {
		r.Silence = max(now.Sub(last), 0)
		r.Stale = unheard > staleAfter
	} else {
		r.Unheard = unheard > staleAfter
	}
	r.Resisting = r.Reported && meta.IsStatusConditionTrue(st.Conditions, ferryv1.ConditionResistingDeploymentError)
	r.ResistsTarget = r.Resisting && r.OnTarget &&
		(st.DeploymentError == nil || st.DeploymentError.Revision == target)
	r.Returned = !r.OnTarget && target != "" && pool.Annotations[contract.ReturnedFromAnnotation] == target
	ready := meta.FindStatusCondition(st.Conditions, ferryv1.ConditionReady)
	r.SaidStopping = r.Reported && ready != nil && ready.Reason == ferryv1.ReasonAgentStopping
	if !r.Reported || r.Stale {
		return r
	}
	c := st.ProcessCounts
	minProcesses := max(pool.Spec.Template.Pool.MinProcesses, 1)
	r.Ready = ready != nil && ready.Status == metav1.ConditionTrue && c.Ready >= minProcesses
	r.ServesOn = contract.ServesOnOldPort(pool)
	// A stopping agent's proxy takes no new connections once its drain
	// delay is over: its node leaves the Service's ready endpoints at once
	// (the delay covers the load balancers' lag), not once its Lease goes
	// stale.
	r.Stopping = r.SaidStopping
	r.Serving = contract.ProxyServes(pool)
	r.Updated = st.ObservedRevision == pool.Spec.Revision &&
		c.Updated == c.Total &&
		!meta.IsStatusConditionTrue(st.Conditions, ferryv1.ConditionRollingRestart) &&
		!r.Resisting
	rr := meta.FindStatusCondition(st.Conditions, ferryv1.ConditionRollingRestart)
	r.Restarting = rr != nil && rr.Status == metav1.ConditionTrue
	r.Incomplete = st.ObservedRevision == pool.Spec.Revision && !r.Updated && !r.Resisting &&
		rr != nil && rr.Status == metav1.ConditionFalse && rr.Reason == ferryv1.ReasonRolloutIncomplete
	r.RolledOut = (r.Updated && c.Ready == c.Total || r.Incomplete) && c.Ready >= minProcesses
	r.FailsTarget = r.OnTarget && !r.Resisting && st.ObservedRevision == pool.Spec.Revision && c.Updated == 0 &&
		spawnsFail(st, target)
	// None of its processes runs another revision, but none runs at all.
	r.Updated = r.Updated && !r.FailsTarget
	return r
}

// unstarted takes Updated from the pools on a target not yet proven that
// run it on every process but have none of it ready: they boot their first
// processes of it, or are about to learn that they cannot spawn it
// (FailsTarget). The rollout has not reached them yet: counted done, a new
// AppGroup whose app cannot start would read RolloutComplete on every node
// just before it halts. A pool whose processes crashed soon after they
// were ready (in the crash window, so the target is not proven yet) reads
// as starting them again, which it is; its rollout's events are not
// recorded twice (rolloutSeen). Once the target is proven, a pool with
// none ready is left as it is: its processes crashed, its agent
// restarted, and Ready says so.
func unstarted(reports map[string]poolReport) {
	for node, r := range reports {
		if r.OnTarget && r.Updated && r.Pool.Status.ProcessCounts.Ready == 0 {
			r.Updated = false
			reports[node] = r
		}
	}
}

// settle holds back RolledOut of the pools on a target not yet proven
// while other nodes wait for it, until their new processes have lived
// window (contract.CrashWindow): an app that boots and then dies crashes
// within it, and the next wave must not get it meanwhile. A crash then
// makes the pool fail the target (FailsTarget), which halts the rollout
// and returns the node to what worked. Pools whose processes all started
// long ago and whose restart ended long ago are not held. The start is
// stamped by the agent's clock: it is judged by that clock (Ahead), or an
// agent an hour ahead would hold the rollout for an hour, and one 45 s
// behind would pass the window 45 s early. A report the manager saw late
// makes the agent's clock read further behind than it is, so the window
// ends later, never sooner.
//
// When no node waits (one node, or maxConcurrentNodes as many as the
// nodes), no rollout is held, but a young pool does not prove the target
// (settled) nor count to its being rolled out everywhere: one that boots
// and then dies on every node in the window still halts there and returns
// them to what worked.
func settle(reports map[string]poolReport, now time.Time, window time.Duration) {
	if window <= 0 {
		return
	}
	waiting := false
	for _, r := range reports {
		waiting = waiting || !r.OnTarget
	}
	for node, r := range reports {
		if !r.OnTarget || !r.RolledOut || r.Pool.Status.LastedRevision == r.Pool.Spec.Revision {
			// Not rolled out; or its agent says a process of the target
			// lived the window, or the target served it through with no
			// death (lastedRevision): under load with recycling no
			// process may live the window,
			// and one measured from the youngest start would never end.
			continue
		}
		if d := settledAt(r.Pool).Add(window).Sub(now.Add(r.Ahead)); d > 0 {
			r.SettlesIn, r.RolledOut = d, !waiting
			reports[node] = r
		}
	}
}

// settledAt is when the pool's processes of its revision began their
// crash window: the latest of its restart's end (RollingRestart's last
// transition), its youngest such process's start, and ScalingError's last
// transition. The agent's window runs from a process's ready, which the
// status does not show: a process's start is its spawn, and a replacement
// for a crashed one that boots for longer than the window would count as
// having lived it once ready. Its ready ends the scaling error the crash
// raised, which is the transition.
func settledAt(p *ferryv1.ProcessPool) time.Time {
	var at time.Time
	for _, typ := range []string{ferryv1.ConditionRollingRestart, ferryv1.ConditionScalingError} {
		if c := meta.FindStatusCondition(p.Status.Conditions, typ); c != nil && c.LastTransitionTime.After(at) {
			at = c.LastTransitionTime.Time
		}
	}
	for _, proc := range p.Status.Processes {
		if proc.Revision == p.Spec.Revision && proc.StartedAt.After(at) {
			at = proc.StartedAt.Time
		}
	}
	return at
}

// nextSettle is how long until the first held pool settles (plus a little,
// so that the pass then finds it settled); 0 when none is held.
func nextSettle(reports map[string]poolReport) time.Duration {
	var next time.Duration
	for _, r := range reports {
		if d := r.SettlesIn + 100*time.Millisecond; r.SettlesIn > 0 && (next == 0 || d < next) {
			next = d
		}
	}
	return next
}

// haltRecord is what the AppGroup's status keeps of a halted rollout
// after a look at in.Reports, in.Halt being what it kept so far:
//
//   - in.Halt while it still applies: the target is its revision, and its
//     node does not run the revision rolled out (it is gone, returned to
//     an older revision, or still halts it), nor, unless it resisted,
//     crash-loops on it (loopsOn), and not every selected node runs it
//     (in.LastRolledOut is not the target);
//   - else the first node that resists the target, was returned from it,
//     or cannot spawn it with nothing older while it is not proven (has
//     never run rolled out on a node: in.Proven), unless it crash-loops
//     on it; a proven revision only backs off there: a scaling error, a
//     database down at boot, is no deployment error;
//   - else nothing.
//
// The record is what makes a halt outlive the node that caused it. A
// crash loop nothing returns its node from, its restart over (loopsOn),
// is no halt: the death of its one process leaves none of the target
// running (FailsTarget) until the replacement is ready, but the loop goes
// on either way, and the next wave waits for the node as for any not
// rolled out (planWave). Recorded at a death, the halt read "Halted
// rollout" until the node rolled out, and, the node deselected meanwhile,
// held every other node for good ("which is no longer selected"), where
// deselected between two deaths it held none.
func haltRecord(in rollupInput) *ferryv1.HaltedRollout {
	prev, target := in.Halt, in.Target
	if target == "" || in.LastRolledOut != nil && in.LastRolledOut.Revision == target {
		return nil
	}
	if prev != nil && prev.Revision == target {
		r, ok := in.Reports[prev.Node]
		if !ok || !r.OnTarget || !r.RolledOut || r.HaltsTarget() {
			switch {
			case ok && !prev.Resisted && (r.ResistsTarget || r.Returned):
				kept := *prev
				kept.Resisted = true
				return &kept
			case !ok || prev.Resisted || !loopsOn(in.CrashLoop, r):
				return failedAnotherWay(prev, r)
			}
		}
	}
	proven := in.Proven == target
	for _, node := range in.Nodes {
		r, ok := in.Reports[node]
		if ok && (r.ResistsTarget || r.Returned || r.FailsTarget && !proven && !loopsOn(in.CrashLoop, r)) {
			return &ferryv1.HaltedRollout{Revision: target, Node: node, Reason: haltReason(r),
				Resisted: r.ResistsTarget || r.Returned, Since: lastTransition(in.Now)}
		}
	}
	return nil
}

// failedAnotherWay is prev, a halt kept, with the reason of its node's
// last failure of the target where that is of another kind than prev's:
// a death soon after ready where the halt recorded a failed spawn, or the
// reverse (contract.DiedAfterReadyIn). The halt's message quotes the
// record (failureReason) and judges by it what the rollout waits for
// (waitOn): "failed to spawn ... once it starts there" of an app that
// now starts and dies was false. Not of a failure of the same kind: each
// young death's reason has its own lifetime, and the record, so the
// message, stays that of the first, steady across the deaths. Nor of a
// halt resisted (its node retries nothing), or a node off the target. A
// failed spawn is taken only while the agent says the revision's spawns
// fail (spawnsFail): one blocked for no fault of the revision (a port
// taken, a valueFrom it could not read: ReasonSpawnBlocked), its last
// spawn error of the revision all the same, says nothing of whether the
// app starts, and "failed to spawn (address already in use)" replaced
// the death that halted it. A young death is always one of the app's.
func failedAnotherWay(prev *ferryv1.HaltedRollout, r poolReport) *ferryv1.HaltedRollout {
	if prev.Resisted || r.Pool == nil || !r.OnTarget {
		return prev
	}
	e := r.Pool.Status.LastSpawnError
	if e == nil || e.Revision != prev.Revision || contract.DiedAfterReadyIn(e.Reason) == contract.DiedAfterReadyIn(prev.Reason) {
		return prev
	}
	if !contract.DiedAfterReadyIn(e.Reason) && !spawnsFail(&r.Pool.Status, prev.Revision) {
		return prev
	}
	kept := *prev
	kept.Reason = truncate(e.Reason, 1024)
	return &kept
}

// runsRolledOut: some pool runs the target rolled out (and lived the
// crash window on it: settled).
func runsRolledOut(reports map[string]poolReport) bool {
	for _, r := range reports {
		if r.settled() {
			return true
		}
	}
	return false
}

// haltReason is the spawn error of a pool that halts the target.
func haltReason(r poolReport) string {
	st := &r.Pool.Status
	switch {
	case r.ResistsTarget && st.DeploymentError != nil:
		return truncate(st.DeploymentError.Reason, 1024)
	case r.FailsTarget && st.LastSpawnError != nil:
		return truncate(st.LastSpawnError.Reason, 1024)
	case r.Returned && st.LastSpawnError != nil && st.LastSpawnError.Revision == r.Pool.Annotations[contract.ReturnedFromAnnotation]:
		return truncate(st.LastSpawnError.Reason, 1024)
	}
	// Only a True condition's message says why (a False one says that
	// nothing is resisted).
	if c := meta.FindStatusCondition(st.Conditions, ferryv1.ConditionResistingDeploymentError); c != nil &&
		c.Status == metav1.ConditionTrue {
		return truncate(contract.ResistedReason(c.Message), 1024)
	}
	return ""
}

// lastRolledOut is the revision the status remembers as the last rolled
// out everywhere: the target with its app once every selected node reports
// it rolled out (and lived the crash window on it: settled), else prev.
func lastRolledOut(prev *ferryv1.RolledOutRevision, target string, nodes []string, reports map[string]poolReport) *ferryv1.RolledOutRevision {
	if target == "" || len(nodes) == 0 || prev != nil && prev.Revision == target {
		return prev
	}
	for _, node := range nodes {
		if r, ok := reports[node]; !ok || !r.settled() {
			return prev
		}
	}
	return &ferryv1.RolledOutRevision{Revision: target, App: *reports[nodes[0]].Pool.Spec.Template.App.DeepCopy()}
}

// fallback is the revision, with its app, that a node starts on while the
// rollout of the target is halted: that of the first node serving an
// earlier revision ready (the newest evidence of what works), else the
// last revision rolled out everywhere; ok is false when neither exists.
func fallback(nodes []string, reports map[string]poolReport, last *ferryv1.RolledOutRevision, target string) (string, ferryv1.AppSpec, bool) {
	for _, node := range nodes {
		if r, ok := reports[node]; ok && !r.OnTarget && r.servesSpecReady() {
			return r.Pool.Spec.Revision, *r.Pool.Spec.Template.App.DeepCopy(), true
		}
	}
	if last != nil && last.Revision != target {
		return last.Revision, *last.App.DeepCopy(), true
	}
	return "", ferryv1.AppSpec{}, false
}

// returnsFromTarget: the pool cannot spawn the target and has nothing
// older to serve (its agent restarted while resisting, or it joined on the
// target), and the AppGroup resists deployment errors; the target either
// never ran rolled out on a node (not proven), or is the one this very
// node resisted (halt): the pool goes back to the fallback revision, so
// that the node serves what works, as resistance promises. A node that
// cannot spawn a proven target it never resisted (a database down at
// boot), resistance off, or a Blocking restart (which gives resistance
// up): the node stays on the target and its agent retries.
//
// The rule is contract.NotReturnedWhy's, which crashLoopOf reads too (a
// node it returns is in no crash loop); an older revision is taken to run,
// as planRollout looks for it (fallback).
func returnsFromTarget(ag *ferryv1.AppGroup, r poolReport, proven bool, halt *ferryv1.HaltedRollout) bool {
	if !r.FailsTarget {
		return false
	}
	revision := r.Pool.Spec.Revision
	reason, _ := contract.NotReturnedWhy(&ag.Spec.Restart, revision, proven, contract.ResistedOn(halt, r.Node, revision), true)
	return reason == ""
}

// wavePlan is what planWave decided.
type wavePlan struct {
	// Give are the nodes whose pools get the target now, in order.
	Give []string
	// Rolling are the nodes on the target that have not rolled out yet,
	// before Give.
	Rolling []string
	// Waiting are the nodes not on the target that wait for a later wave.
	Waiting []string
	// Halting are the nodes resisting the target or failing to spawn it
	// (poolReport.HaltsTarget), or the node of the status's record of the
	// halt when none does any more. When there are any, the rollout is
	// halted: nobody gets the target.
	Halting []string
}

// Halted is true when a pool resists the target or fails to spawn it.
func (p wavePlan) Halted() bool { return len(p.Halting) > 0 }

// planWave decides which pools get the target now. reports are the pools of
// the selected nodes, assessed against the target.
//
//   - A pool "rolls" from when it gets the target until it reports rolled
//     out on it; at most maxConcurrent pools roll at a time.
//   - When any pool resists the target (its report may be stale: a silent
//     canary is no better than a failed one), or cannot spawn it at all,
//     or halt records that one did, nobody else gets it.
//   - Among the pools waiting, those resisting (an earlier revision) or not
//     ready go first, as the new revision cannot make them worse; then by
//     node name, so the order is deterministic.
//   - A pool whose agent is silent (stale), or never reported it within
//     the staleness bound (unheard), waits without a slot, and holds no
//     other node back: it gets the target once its agent is heard
//     again. One silent after it got the target holds its slot: a canary
//     gone silent is no better than a failed one; one never heard from
//     does not (it never ran the target).
//   - A pool still restarting onto an earlier target gets the new one at
//     once, even past maxConcurrent: it restarts anyway, and should not
//     finish rolling out a revision the user has left.
//   - While the target is not proven, a pool whose agent has not reported
//     it yet waits, without a slot: it runs nothing yet, and given a
//     target that cannot start, it would have no older process to resist
//     with. This is a node that joined mid-rollout, started on the
//     fallback (newPoolRevision): it is given the target in its turn once
//     its agent reports it. Once the target is proven, a new node's pool
//     is created on it directly.
func planWave(reports []poolReport, maxConcurrent int32, halt *ferryv1.HaltedRollout, proven bool) wavePlan {
	var plan wavePlan
	var candidates []poolReport
	for _, r := range reports {
		switch {
		case r.HaltsTarget():
			plan.Halting = append(plan.Halting, r.Node)
			if !r.RolledOut {
				plan.Rolling = append(plan.Rolling, r.Node)
			}
		case r.OnTarget:
			// One given the target before its agent ever reported, and
			// unheard since, ran nothing of it: nothing is learnt by
			// waiting for it, and it would hold its slot for good. One
			// whose agent stops keeps its place, as one gone silent does
			// (not RolledOut, stale): its first report of the stop still
			// shows its processes ready, while its proxy serves out the
			// drain delay, but the revision may be what stops it.
			if (!r.RolledOut || r.Stopping) && !r.Unheard {
				plan.Rolling = append(plan.Rolling, r.Node)
			}
		default:
			candidates = append(candidates, r)
		}
	}
	if len(plan.Halting) == 0 && halt != nil {
		plan.Halting = []string{halt.Node}
	}
	slices.SortStableFunc(candidates, waveOrder)
	slots := 0
	if !plan.Halted() {
		slots = max(int(maxConcurrent), 1) - len(plan.Rolling)
	}
	for _, c := range candidates {
		switch {
		case c.Stale || c.Unheard || !c.Reported && !proven:
			// Its agent is silent: it could not act on the target, and
			// given it, it would hold a slot for as long as it stays
			// silent (a dead node still selected would hold every
			// rollout at its first wave). It gets the target once heard
			// again, first in line (not ready: waveOrder). Or it runs
			// nothing yet, and the target is not proven.
			plan.Waiting = append(plan.Waiting, c.Node)
		case slots > 0 || !plan.Halted() && c.Restarting:
			plan.Give = append(plan.Give, c.Node)
			slots--
		default:
			plan.Waiting = append(plan.Waiting, c.Node)
		}
	}
	return plan
}

// waveOrder is the order in which pools waiting for the target get it
// (planWave): those resisting, not ready or still restarting (onto a
// revision that is no longer the target, so that no other node starts
// meanwhile) first, then by node name.
func waveOrder(a, b poolReport) int {
	troubled := func(r poolReport) bool { return r.Resisting || !r.Ready || r.Restarting }
	if ta, tb := troubled(a), troubled(b); ta != tb {
		if ta {
			return -1
		}
		return 1
	}
	return cmp.Compare(a.Node, b.Node)
}

// lastTransition is now truncated to what the API keeps of a
// metav1.Time, so a condition written and read back compares equal.
func lastTransition(now time.Time) metav1.Time {
	return metav1.NewTime(now.Truncate(time.Second))
}
