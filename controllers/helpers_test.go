package controllers

import (
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	ferryv1 "github.com/ferry-dev/ferry/api/v1alpha1"
	"github.com/ferry-dev/ferry/controllers/contract"
)

// Builders for pools in the states the pure tests need.

var (
	t0         = time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	staleAfter = 40 * time.Second
)

type poolOpt func(*ferryv1.ProcessPool)

func testPool(node, revision string, opts ...poolOpt) *ferryv1.ProcessPool {
	p := &ferryv1.ProcessPool{
		// Made at t0 unless created says otherwise: a pool never
		// reported is young (not Unheard).
		ObjectMeta: metav1.ObjectMeta{Name: "blog-" + node, Namespace: "ns", CreationTimestamp: metav1.NewTime(t0)},
		Spec: ferryv1.ProcessPoolSpec{
			NodeName: node, AppGroup: "blog", Revision: revision,
			Template: ferryv1.AppTemplate{Pool: ferryv1.PoolSpec{MinProcesses: 2, MaxProcesses: 6}, Listen: ferryv1.ListenSpec{Port: 8080}},
		},
	}
	for _, o := range opts {
		o(p)
	}
	if p.Status.Processes == nil {
		p.Status.Processes = tableOf(p)
	}
	return p
}

// tableOf is a process table matching p's counts, as real agents send one
// with them: updated processes of status.observedRevision, the others of
// an older revision, the older ones ready first (a Rolling restart's old
// processes serve while the new ones boot), ready and else Spawning.
// Readers that judge by the table (contract.WhatServes) read what the
// counts say; a test that sets a table of its own keeps it, and noTable
// leaves a pool without one.
func tableOf(p *ferryv1.ProcessPool) []ferryv1.ProcessInfo {
	c := p.Status.ProcessCounts
	if c.Total == 0 {
		return nil
	}
	table := make([]ferryv1.ProcessInfo, 0, c.Total)
	for i := range c.Total {
		rev := p.Status.ObservedRevision
		if i < c.Total-c.Updated {
			rev = "0-older"
		}
		state := ferryv1.ProcessSpawning
		if i < c.Ready {
			state = ferryv1.ProcessReady
		}
		table = append(table, ferryv1.ProcessInfo{PID: 100 + i, Revision: rev, State: state})
	}
	return table
}

// noTable: the pool reports counts without a process table (an empty,
// not nil, table: testPool makes none for it).
func noTable(p *ferryv1.ProcessPool) { p.Status.Processes = []ferryv1.ProcessInfo{} }

// created sets the pool's creation to ago before t0.
func created(ago time.Duration) poolOpt {
	return func(p *ferryv1.ProcessPool) { p.CreationTimestamp = metav1.NewTime(t0.Add(-ago)) }
}

// reported sets a fresh heartbeat (at t0).
func reported(p *ferryv1.ProcessPool) { heartbeatAt(t0)(p) }

func heartbeatAt(t time.Time) poolOpt {
	return func(p *ferryv1.ProcessPool) { p.Status.HeartbeatTime = &metav1.Time{Time: t} }
}

func setCond(p *ferryv1.ProcessPool, typ string, status metav1.ConditionStatus, reason, msg string) {
	for i := range p.Status.Conditions {
		if p.Status.Conditions[i].Type == typ {
			p.Status.Conditions[i] = metav1.Condition{Type: typ, Status: status, Reason: reason, Message: msg}
			return
		}
	}
	p.Status.Conditions = append(p.Status.Conditions, metav1.Condition{Type: typ, Status: status, Reason: reason, Message: msg})
}

// rolledOut: n processes, all on spec.revision and ready, reported at t0.
func rolledOut(n int32) poolOpt {
	return func(p *ferryv1.ProcessPool) {
		reported(p)
		p.Status.ObservedRevision = p.Spec.Revision
		p.Status.ListenPort = p.Spec.Template.Listen.Port
		p.Status.ProcessCounts = ferryv1.ProcessCounts{Ready: n, Updated: n, Total: n}
		p.Status.Address = "192.0.2.2:8080"
		setCond(p, ferryv1.ConditionReady, metav1.ConditionTrue, ferryv1.ReasonProcessesReady, "")
		setCond(p, ferryv1.ConditionRollingRestart, metav1.ConditionFalse, ferryv1.ReasonRolloutComplete, "")
		setCond(p, ferryv1.ConditionResistingDeploymentError, metav1.ConditionFalse, ferryv1.ReasonNoDeploymentError, "")
	}
}

// restarting: observed spec.revision, done of total old processes
// replaced; every process ready.
func restarting(done, total int32) poolOpt {
	return func(p *ferryv1.ProcessPool) {
		rolledOut(total)(p)
		p.Status.ProcessCounts.Updated = done
		p.Status.RestartProgress = &ferryv1.RestartProgress{Revision: p.Spec.Revision, Done: done, Total: total}
		setCond(p, ferryv1.ConditionRollingRestart, metav1.ConditionTrue, ferryv1.ReasonRollingOut, "")
	}
}

// restartingBlocking: the agent's Blocking restart onto spec.revision is
// under way: it stopped every old process before it spawned spawns new
// ones, of which running are left (booting: none is ready), the others
// dead (RollingRestart RestartingBlocking, restartProgress 0 of spawns
// done, Ready False). restarting's shape is a Rolling restart's instead,
// its old processes serving. The counts are those of a restart over
// (updated = total), as they are once a Blocking restart has stopped its
// old processes: of what the manager reads, RollingRestart says whether
// the node still restarts (restartOver), restartProgress only how far
// (nodeProgress). running 0 is a state the agent reports only in
// passing: a spawn in flight runs (Spawning), and the restart ends once
// none is in flight, so only a status written between the last spawn's
// failure and the restart's end shows it.
func restartingBlocking(running, spawns int32) poolOpt {
	return func(p *ferryv1.ProcessPool) {
		restarting(0, spawns)(p)
		counts(0, running, running)(p)
		notReadyAtAll(p)
		setCond(p, ferryv1.ConditionRollingRestart, metav1.ConditionTrue, ferryv1.ReasonRestartingBlocking, "")
	}
}

// counts overrides the process counts.
func counts(ready, updated, total int32) poolOpt {
	return func(p *ferryv1.ProcessPool) {
		p.Status.ProcessCounts = ferryv1.ProcessCounts{Ready: ready, Updated: updated, Total: total}
	}
}

func notReady(p *ferryv1.ProcessPool) {
	setCond(p, ferryv1.ConditionReady, metav1.ConditionFalse, ferryv1.ReasonProcessesNotReady, "")
	p.Status.ProcessCounts.Ready = 1
}

// notReadyAtAll: Ready=False, no process ready (counts as they are).
func notReadyAtAll(p *ferryv1.ProcessPool) {
	setCond(p, ferryv1.ConditionReady, metav1.ConditionFalse, ferryv1.ReasonProcessesNotReady, "")
	p.Status.ProcessCounts.Ready = 0
}

// crashedInWindow: the pool's processes of spec.revision crashed soon
// after they were ready, as the agent reports it: ScalingError, the crash
// as the last spawn error.
func crashedInWindow(p *ferryv1.ProcessPool) {
	spawnFailed("exited with status 1 1.2s after it was ready")(p)
}

// spawnFailed: a spawn of spec.revision failed for reason, and the agent
// backs them off (ScalingError); the counts are left as they are.
func spawnFailed(reason string) poolOpt {
	return func(p *ferryv1.ProcessPool) {
		p.Status.LastSpawnError = &ferryv1.SpawnError{Revision: p.Spec.Revision, Reason: reason, Time: metav1.Time{Time: t0}}
		setCond(p, ferryv1.ConditionScalingError, metav1.ConditionTrue, ferryv1.ReasonSpawnBackoff, "")
	}
}

// blocked: the pool's failing spawns fail for no fault of their revision
// (ReasonSpawnBlocked: a port taken, a Secret the agent could not read).
func blocked(p *ferryv1.ProcessPool) {
	c := meta.FindStatusCondition(p.Status.Conditions, ferryv1.ConditionScalingError)
	setCond(p, ferryv1.ConditionScalingError, metav1.ConditionTrue, ferryv1.ReasonSpawnBlocked, c.Message)
}

// spawnsOf makes the last spawn error one of revision.
func spawnsOf(revision string) poolOpt {
	return func(p *ferryv1.ProcessPool) { p.Status.LastSpawnError.Revision = revision }
}

// resists: the pool resists a failed spawn of revision.
func resists(revision, reason, output string) poolOpt {
	return func(p *ferryv1.ProcessPool) {
		if p.Status.HeartbeatTime == nil {
			reported(p)
		}
		p.Status.ObservedRevision = p.Spec.Revision
		p.Status.DeploymentError = &ferryv1.SpawnError{Revision: revision, Reason: reason, Output: output, Time: metav1.Time{Time: t0}}
		setCond(p, ferryv1.ConditionResistingDeploymentError, metav1.ConditionTrue, ferryv1.ReasonSpawnFailed, reason)
		setCond(p, ferryv1.ConditionRollingRestart, metav1.ConditionFalse, ferryv1.ReasonRolloutHalted, "")
	}
}

// failsSpawns: the pool's spawns of revision fail (ScalingError), and no
// process runs at all: an agent that restarted on a broken revision.
func failsSpawns(revision, reason string) poolOpt {
	return func(p *ferryv1.ProcessPool) {
		rolledOut(0)(p)
		p.Status.LastSpawnError = &ferryv1.SpawnError{Revision: revision, Reason: reason, Time: metav1.Time{Time: t0}}
		setCond(p, ferryv1.ConditionReady, metav1.ConditionFalse, ferryv1.ReasonProcessesNotReady, "")
		setCond(p, ferryv1.ConditionScalingError, metav1.ConditionTrue, ferryv1.ReasonSpawnBackoff, reason)
	}
}

func address(a string) poolOpt { return func(p *ferryv1.ProcessPool) { p.Status.Address = a } }

func deleting(p *ferryv1.ProcessPool) { p.DeletionTimestamp = &metav1.Time{Time: t0} }

// assessAll assesses pools at t0 against target, in the given order.
func assessAll(target string, pools ...*ferryv1.ProcessPool) []poolReport {
	out := make([]poolReport, 0, len(pools))
	for _, p := range pools {
		out = append(out, assessPool(p, target, t0, staleAfter, time.Time{}, hearing{}))
	}
	return out
}

// returnedFrom: the manager returned the pool from revision, which it
// could not spawn (reason).
func returnedFrom(revision, reason string) poolOpt {
	return func(p *ferryv1.ProcessPool) {
		metav1.SetMetaDataAnnotation(&p.ObjectMeta, contract.ReturnedFromAnnotation, revision)
		p.Status.LastSpawnError = &ferryv1.SpawnError{Revision: revision, Reason: reason, Time: metav1.Time{Time: t0}}
	}
}

// haltInput is what haltRecord reads of reports of target: the record
// so far (prev), the nodes of the reports selected, in their order, the
// last revision rolled out everywhere (last: nil for none), and the target
// proven or not; deployment errors resisted, as by default.
func haltInput(prev *ferryv1.HaltedRollout, target string, reports []poolReport, last *ferryv1.RolledOutRevision, proven bool) rollupInput {
	in := rollupInput{AppGroup: &ferryv1.AppGroup{}, Target: target, Nodes: nodesOf(reports), Reports: byNode(reports),
		Halt: prev, LastRolledOut: last, Now: t0}
	if proven {
		in.Proven = target
	}
	return looped(in)
}

// looped is in with whether an older revision runs (olderRuns) and its
// crash loop (crashLoopOf) derived from the rest of it, as the pass
// derives them once (scope.remember): a test that edits an input after
// looped calls it again. An input that reaches crashLoopOf, retriedOf or
// nodeStaysWhy goes through it (or scope.input): built by hand, its Older
// reads false, as if nothing older ran to return a node to.
func looped(in rollupInput) rollupInput {
	in.Older = olderRuns(in)
	in.CrashLoop = crashLoopOf(in)
	return in
}

// nodesOf lists the reports' nodes, in order.
func nodesOf(reports []poolReport) []string {
	nodes := make([]string, 0, len(reports))
	for _, r := range reports {
		nodes = append(nodes, r.Node)
	}
	return nodes
}

// agentStopping: the pool's agent said it is stopping (Ready, AgentStopping).
func agentStopping(p *ferryv1.ProcessPool) {
	setCond(p, ferryv1.ConditionReady, metav1.ConditionFalse, ferryv1.ReasonAgentStopping, "the agent on "+p.Spec.NodeName+" is stopping")
}

// incomplete: the agent finished its restart onto spec.revision but could
// not replace `left` of total processes (resistDeploymentErrors false).
func incomplete(left, total int32) poolOpt {
	return func(p *ferryv1.ProcessPool) {
		rolledOut(total)(p)
		p.Status.ProcessCounts.Updated = total - left
		setCond(p, ferryv1.ConditionRollingRestart, metav1.ConditionFalse, ferryv1.ReasonRolloutIncomplete, "")
	}
}
