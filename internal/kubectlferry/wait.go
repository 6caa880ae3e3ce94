package kubectlferry

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/duration"

	ferryv1 "github.com/ferry-dev/ferry/api/v1alpha1"
	"github.com/ferry-dev/ferry/controllers/contract"
)

// ErrResisting: the AppGroup resists the new revision: it failed to spawn
// on some node, whose old processes keep serving, and the rollout stopped.
var ErrResisting = errors.New("resisting deployment error")

// ErrHalted: the rollout of the new revision halted without a node
// resisting it: a node cannot spawn it and stays on it, its agent
// retrying (a blocking restart, or resistance off: older processes may
// still serve there), or has nothing older to serve with (an agent
// restarted mid-rollout, a new AppGroup).
var ErrHalted = errors.New("rollout halted")

// ErrIncomplete: the rollout reached every node, but some could not
// replace every process (resistDeploymentErrors false): those serve an
// older revision until the next one (RollingRestart RolloutIncomplete).
var ErrIncomplete = errors.New("rollout incomplete")

// ErrCrashLoop: the new revision's processes die soon after they are
// ready on some node, a second time, where nothing returns the node to an
// older revision (deployment errors not resisted: resistDeploymentErrors
// false, or a Blocking restart; the revision proven on another node; or
// no older revision to return to, a new AppGroup's first: the manager
// says which in status.crashLoop):
// its agent respawns them with backoff for as long as the revision is
// asked for, and the rollout neither goes on nor ends (RollingRestart
// stays True, halted by a node its agent retries the revision on, or
// complete with Ready not True).
var ErrCrashLoop = errors.New("crash loop")

// ErrNoNodes: the AppGroup selects no node, so nothing is rolled out.
var ErrNoNodes = errors.New("no node selected")

// ErrPortConflict: another AppGroup has the listen.port on some selected
// nodes, so the revision cannot reach them.
var ErrPortConflict = errors.New("port conflict")

// ErrDeleted: the AppGroup was deleted while waiting.
var ErrDeleted = errors.New("deleted")

// ErrSuperseded: the revision annotation changed again while waiting.
var ErrSuperseded = errors.New("superseded")

// rollout is where an AppGroup's rollout to one annotation value stands,
// as read from one status.
type rollout struct {
	// Done: the rollout is over; Err says how it ended (nil: success).
	Done bool
	Err  error
	// Halted: not over, but halted at a node that cannot spawn the
	// revision, which may lift itself; Err is the error to end the wait
	// with if it does not, and the rollout makes no progress, for
	// App.HaltGrace (haltClock).
	Halted bool
	// Progress says where it is, for progress lines and a timeout.
	Progress string
}

// assessRollout reads one AppGroup's status against the annotation value
// restart set. It mirrors the standalone agent's restartOutcome
// (agent/standalone/wait.go) with the manager's roll-up in place of one
// pool's status: done when the manager has taken up the annotation
// (status.revision is "<annotation>-<hash>") and reconciled the current
// generation, RollingRestart is not True, Ready is True and every selected
// node, of at least one, runs the target; failed when the annotation was
// changed again, when ResistingDeploymentError is True for this target,
// when no node is selected, or when the rollout ended incomplete (some
// processes left on an older revision, RolloutIncomplete). A rollout
// halted otherwise (RolloutHalted: a node cannot spawn the revision) is
// Halted: waitRollout gives it a grace (haltClock). Where nothing returns
// a node from the revision, a rollout that halts, goes on, or ends with
// Ready not True while pools, of ag's pools, show its processes dying
// young a second time in a row (crashLoop) is failed at once.
func assessRollout(ag *ferryv1.AppGroup, pools []ferryv1.ProcessPool, annotation string) rollout {
	st := &ag.Status
	if current, ok := ag.Annotations[ferryv1.RevisionAnnotation]; !ok || current != annotation {
		now := "removed"
		if ok {
			now = fmt.Sprintf("%q", current)
		}
		return rollout{Done: true, Err: fmt.Errorf("%w: the rollout of revision %s was superseded: %s is now %s",
			ErrSuperseded, annotation, ferryv1.RevisionAnnotation, now)}
	}
	if !ag.DeletionTimestamp.IsZero() {
		return rollout{Done: true, Err: fmt.Errorf("%w: AppGroup %s/%s is being deleted", ErrDeleted, ag.Namespace, ag.Name)}
	}
	if !onRevision(st.Revision, annotation) {
		was := st.Revision
		if was == "" {
			was = "not set"
		}
		return rollout{Progress: fmt.Sprintf("the manager has not taken up revision %s yet (status.revision is %s)",
			annotation, was)}
	}
	rolling := meta.FindStatusCondition(st.Conditions, ferryv1.ConditionRollingRestart)
	if c := meta.FindStatusCondition(st.Conditions, ferryv1.ConditionResistingDeploymentError); c != nil &&
		c.Status == metav1.ConditionTrue && resistsTarget(c, rolling, st.Revision) {
		return rollout{Done: true, Err: fmt.Errorf("%w: AppGroup %s/%s resists revision %s: %s",
			ErrResisting, ag.Namespace, ag.Name, st.Revision, c.Message)}
	}
	crash := crashLoop(ag, pools)
	if rolling != nil && rolling.Reason == ferryv1.ReasonRolloutHalted {
		if crash != nil {
			// It lifts once the respawned processes are all ready, and
			// comes back when they die: no grace mends that.
			return rollout{Done: true, Err: crash}
		}
		return rollout{Halted: true, Progress: "halted: " + rolling.Message,
			Err: fmt.Errorf("%w: AppGroup %s/%s: %s", ErrHalted, ag.Namespace, ag.Name, rolling.Message)}
	}
	ready := meta.FindStatusCondition(st.Conditions, ferryv1.ConditionReady)
	if ready != nil && ready.Reason == ferryv1.ReasonNoNodes {
		return rollout{Done: true, Err: fmt.Errorf("%w: AppGroup %s/%s: %s; nothing is rolled out", ErrNoNodes,
			ag.Namespace, ag.Name, ready.Message)}
	}
	if ready != nil && ready.Reason == ferryv1.ReasonPortConflict {
		return rollout{Done: true, Err: fmt.Errorf("%w: AppGroup %s/%s: %s", ErrPortConflict, ag.Namespace, ag.Name, ready.Message)}
	}
	switch {
	case st.ObservedGeneration != ag.Generation:
		// generationLag is "" only for conditions that say the annotation
		// is invalid, which predate its valid value here.
		return rollout{Progress: cmp.Or(generationLag(ag),
			fmt.Sprintf("the manager has not reconciled generation %d yet", ag.Generation))}
	case rolling != nil && rolling.Status == metav1.ConditionFalse && rolling.Reason == ferryv1.ReasonRolloutIncomplete:
		// Final for this revision: the nodes left behind do not retry it.
		return rollout{Done: true, Err: fmt.Errorf("%w: AppGroup %s/%s: %s", ErrIncomplete, ag.Namespace, ag.Name, rolling.Message)}
	case crash != nil && rolling != nil && (rolling.Status == metav1.ConditionTrue ||
		rolling.Status == metav1.ConditionFalse && (ready == nil || ready.Status != metav1.ConditionTrue)):
		// The manager waits for the node's new processes to live the
		// crash window, which they never will; or, the revision proven,
		// counts the rollout complete while Ready says they die.
		return rollout{Done: true, Err: crash}
	case rolling != nil && rolling.Status != metav1.ConditionFalse:
		progress := fmt.Sprintf("RollingRestart=%s: %s", rolling.Status, rolling.Message)
		// A rollout waiting for a node whose agent is silent or stopping
		// says only where it stands: Ready says why it does not move.
		if ready != nil && ready.Status != metav1.ConditionTrue && rolling.Status == metav1.ConditionTrue {
			progress += fmt.Sprintf("; Ready=%s (%s): %s", ready.Status, ready.Reason, ready.Message)
		}
		return rollout{Progress: progress}
	case ready == nil:
		return rollout{Progress: "no Ready condition yet"}
	case ready.Status != metav1.ConditionTrue:
		return rollout{Progress: fmt.Sprintf("Ready=%s (%s): %s", ready.Status, ready.Reason, ready.Message)}
	case st.Nodes.Total == 0:
		return rollout{Progress: "no node is selected"}
	case st.Nodes.Updated != st.Nodes.Total:
		return rollout{Progress: fmt.Sprintf("%d/%d nodes updated", st.Nodes.Updated, st.Nodes.Total)}
	}
	return rollout{Done: true, Progress: fmt.Sprintf("revision %s runs on %d/%d nodes, %d/%d processes ready",
		st.Revision, st.Nodes.Updated, st.Nodes.Total, st.Processes.Ready, st.Processes.Total)}
}

// crashLoop is ErrCrashLoop's error when nothing returns ag's nodes from
// the target (notReturned) and some of pools, on the target (and on a node
// status.crashLoop takes in, when it names the loop: stayRule.of), show a
// second round of young deaths of its processes in a row (lastSpawnError
// a young death of the target, as contract.YoungDeathOf reads one, and
// spawnFailures, the agent's count of rounds, at least 2: processes
// started together that die together are one round, not backed off)
// while none of them has lived the crash window there (lastedRevision):
// their agents respawn them with backoff, and the manager's rollout waits
// for that window forever, or counts a proven target complete with Ready
// not True.
// A first death is not one, though the manager names the loop from it: the
// agent does not hold its replacement (agent/pool's holdingLocked: a
// passing fault must not cost a node its revision), and a process of the
// revision may live the window. It names the revision, the nodes, and the first one's reason and
// output (the pools', which status.crashLoop does not carry), as the
// standalone agent's restartOutcome does of its pool. nil otherwise.
//
// The pools' ScalingError is not read: it is False between deaths, once
// the replacement is ready (agent/pool's spawnWorkedLocked), which a
// poll may be all it sees of a loop; spawnFailures keeps its count then.
// Nor is anything remembered across polls: one status says it all, so a
// wait started after the first death ends at the second, and two deaths
// within the second lastSpawnError.time is stamped in count as two when
// the second was a replacement for the first (processes that die
// together are one round, spawnFailures 1).
//
// An agent older than spawnFailures reports none: its pools never read as
// a crash loop, and the wait goes on to --timeout, as it did before it
// read the pools; it never ends on a first death. No fallback on
// lastSpawnError.time: that is what told a second death from a first
// before, missing both cases above and keeping state in the client, and
// the field comes in the same version (0.1.0, unreleased) as the wait's
// reading of young deaths, so no agent the fallback would serve shipped.
//
// Only the pools the manager keeps are read (contract.KeptPools, as the
// halt header does): one being deleted beside the node's own, or a lost
// creation race's second pool, dying young read as the node's crash loop.
func crashLoop(ag *ferryv1.AppGroup, pools []ferryv1.ProcessPool) error {
	target := ag.Status.Revision
	stays := notReturned(ag)
	if !stays.any() {
		// The manager returns such a node and halts: ResistingDeploymentError.
		return nil
	}
	var nodes []string
	var first *ferryv1.SpawnError
	var why string
	kept := contract.KeptPools(contract.PoolPointers(pools))
	for i := range pools {
		if kept[pools[i].Spec.NodeName] != &pools[i] {
			// Being deleted, or a lost creation race's second pool: the
			// manager deletes it, and its deaths are not the node's.
			continue
		}
		st := &pools[i].Status
		e := st.LastSpawnError
		if pools[i].Spec.Revision != target || st.ObservedRevision != target ||
			!contract.DiesYoungAgain(e, target, int(st.SpawnFailures), st.LastedRevision == target) {
			continue
		}
		reason, message := stays.of(pools[i].Spec.NodeName)
		if reason == "" {
			continue
		}
		nodes = append(nodes, pools[i].Spec.NodeName)
		if first == nil {
			first, why = e, message
		}
	}
	if first == nil {
		return nil
	}
	reason := first.Reason
	if len(nodes) > 1 {
		reason = "on " + nodes[0] + ": " + reason
	}
	msg := fmt.Sprintf("AppGroup %s/%s: processes of revision %s die soon after they are ready on %s (%s)",
		ag.Namespace, ag.Name, target, nodeList(nodes), reason)
	if out := strings.TrimSpace(first.Output); out != "" {
		msg += "\n    " + strings.ReplaceAll(contract.LastLines(out, 5), "\n", "\n    ")
	}
	// The manager's words (RollingRestart's crash note), of these nodes.
	clause := contract.CrashLoopClause(len(nodes), why)
	return fmt.Errorf("%w: %s\n%s", ErrCrashLoop, msg, strings.ToUpper(clause[:1])+clause[1:])
}

// stayRule says, node by node, why nothing returns ag's nodes from the
// target to an older revision (notReturned).
type stayRule struct {
	ag *ferryv1.AppGroup
	// loop is status.crashLoop when it names the target.
	loop *ferryv1.CrashLoop
}

// notReturned is the rule by which nothing returns ag's nodes from the
// target to an older revision. status.crashLoop says it, the manager's
// word, when it names the target: its reason, and the nodes where it
// crash-loops. Absent, it is a manager older than that field, or one that
// names no loop (yet): the wait then works out why itself, as it did
// before the field, from the restart spec, status.provenRevision and
// status.haltedRollout (contract.NotReturnedWhy, the manager's rule, node
// by node: a node that resisted the target is returned even once it is
// proven), a fallback kept so that such a manager's loops still end the
// wait. The status does not say whether an older revision runs to return
// a node to, so the fallback takes it that one does: a first revision's
// loop ends the wait only through status.crashLoop (with such a manager
// it runs to --timeout, as before).
func notReturned(ag *ferryv1.AppGroup) stayRule {
	rule := stayRule{ag: ag}
	if l := ag.Status.CrashLoop; l != nil && l.Revision == ag.Status.Revision {
		rule.loop = l
	}
	return rule
}

// any: nothing returns some node, one that did not resist the target.
func (s stayRule) any() bool {
	if s.loop != nil {
		return true
	}
	reason, _ := s.derived("")
	return reason != ""
}

// of is why nothing returns node (a reason, CrashLoop's constants, and
// its message), "" when the manager returns it, or status.crashLoop does
// not take it in. A node past the field's cut (nodeCount more than the
// nodes it names) is not named: it takes the loop's words, as the nodes
// named do, unless it resisted the target (status.haltedRollout), which
// the manager may return instead.
func (s stayRule) of(node string) (reason, message string) {
	l := s.loop
	switch {
	case l == nil:
		return s.derived(node)
	case slices.Contains(l.Nodes, node):
		return l.Reason, l.Message
	case int(l.NodeCount) > len(l.Nodes) && !contract.ResistedOn(s.ag.Status.HaltedRollout, node, l.Revision):
		return l.Reason, l.Message
	}
	return "", ""
}

// derived is contract.NotReturnedWhy of node, an older revision taken to
// run.
func (s stayRule) derived(node string) (reason, message string) {
	st := &s.ag.Status
	return contract.NotReturnedWhy(&s.ag.Spec.Restart, st.Revision, st.ProvenRevision == st.Revision,
		contract.ResistedOn(st.HaltedRollout, node, st.Revision), true)
}

// nodeList lists nodes as the manager's messages do: "a, b and c", at
// most five, then "and N more".
var nodeList = contract.NodeList

// resistsTarget tells whether a True ResistingDeploymentError is about
// target, not a revision some node still resists from before: the manager
// halts the rollout (RollingRestart reason RolloutHalted) only when a pool
// resists the target, and names the failed revision in the message.
func resistsTarget(resisting, rolling *metav1.Condition, target string) bool {
	if rolling != nil && rolling.Reason == ferryv1.ReasonRolloutHalted {
		return true
	}
	return strings.Contains(resisting.Message, "revision "+target+" ")
}

// waitRollout follows ag until its rollout to annotation is over, ctx is
// done, deadline (--timeout's, on App.clock) has come, or the AppGroup
// disappears. It prints a line whenever the progress changes and a
// summary on success, dated from start (on App.Now).
func (a *App) waitRollout(ctx context.Context, cl *clients, ag *ferryv1.AppGroup, annotation string,
	start, deadline time.Time) error {
	interval := a.PollInterval
	if interval <= 0 {
		interval = DefaultPollInterval
	}
	grace := a.HaltGrace
	if grace <= 0 {
		grace = DefaultHaltGrace
	}
	listEvery := a.poolListEvery
	if listEvery <= 0 {
		listEvery = poolListInterval
	}
	name := ag.Namespace + "/" + ag.Name
	var last string
	var lastErr error
	var listed time.Time
	var halt haltClock
	var pools []ferryv1.ProcessPool
	for {
		r := assessRollout(ag, pools, annotation)
		// Elapsed time, as --timeout's: not a.Now, which dates output.
		now := a.elapsedNow()
		if halt.lasted(now, r.Halted, markOf(&ag.Status), grace) {
			r.Done = true
		}
		if a.observed != nil {
			a.observed(ag, pools, r)
		}
		switch {
		case r.Done && r.Err == nil:
			fmt.Fprintf(a.Out, "Rolled out %s: %s, in %s\n", name, r.Progress,
				duration.HumanDuration(a.now().Sub(start)))
			return nil
		case r.Done && errors.Is(r.Err, ErrResisting):
			return fmt.Errorf("%w\nThe old processes keep serving. Fix the app, then roll again: kubectl ferry restart %s -n %s",
				r.Err, ag.Name, ag.Namespace)
		case r.Done && errors.Is(r.Err, ErrIncomplete):
			return fmt.Errorf("%w\nThe processes not replaced keep serving the older revision. Fix the app, then roll again: kubectl ferry restart %s -n %s",
				r.Err, ag.Name, ag.Namespace)
		case r.Done && errors.Is(r.Err, ErrCrashLoop):
			return fmt.Errorf("%w\nFix the app, then roll again: kubectl ferry restart %s -n %s", r.Err, ag.Name, ag.Namespace)
		case r.Done && errors.Is(r.Err, ErrHalted):
			return fmt.Errorf("%w (for %s)\nFix the app, then roll again: kubectl ferry restart %s -n %s", r.Err,
				grace, ag.Name, ag.Namespace)
		case r.Done:
			return r.Err
		case r.Progress != last:
			fmt.Fprintf(a.Out, "Waiting: %s\n", r.Progress)
			last = r.Progress
		}
		if !now.Before(deadline) {
			return waitAborted(true, ag, annotation, last, lastErr)
		}
		select {
		case <-ctx.Done():
			return waitAborted(timedOut(ctx), ag, annotation, last, lastErr)
		case <-time.After(interval):
		}
		next, err := cl.getAppGroup(ctx, ag.Name)
		switch {
		case err == nil:
			if next.UID != ag.UID {
				return createdAgain(next)
			}
			ag, lastErr = next, nil
			switch {
			case !readsPools(ag, annotation):
				pools = nil
			case time.Since(listed) >= listEvery:
				// Not an error of the wait's: one that lasts (no right to
				// list them) leaves the wait as it was without them, and a
				// passing one keeps the last list read, where nil would
				// lose a crash loop's first death until the next.
				if listedPools, err := cl.listPools(ctx, ag); err == nil {
					pools = listedPools
				}
				listed = time.Now()
			}
		case ctx.Err() != nil:
			return waitAborted(timedOut(ctx), ag, annotation, last, lastErr)
		case isFatal(err):
			return err
		default:
			// The API server may be restarting: keep trying until the
			// timeout, which reports the error if it persists.
			lastErr = err
		}
	}
}

// createdAgain is the error of a wait whose AppGroup, read as ag, has
// another UID than at the last poll: deleted and created again under its
// name, it ends the wait as a poll that finds it gone does. The rollout
// waited for was the earlier one's; the new one's is another, which the
// earlier one's pools and halt (haltClock, timed from its polls) do not
// tell. restart --revision of its own annotation follows it without
// rolling it again; with none, status shows it.
func createdAgain(ag *ferryv1.AppGroup) error {
	follow := fmt.Sprintf("kubectl ferry status %s -n %s", ag.Name, ag.Namespace)
	if revision := ag.Annotations[ferryv1.RevisionAnnotation]; revision != "" {
		follow = fmt.Sprintf("kubectl ferry restart %s -n %s --revision %s --wait", ag.Name, ag.Namespace, revision)
	}
	return fmt.Errorf("%w: AppGroup %s/%s was deleted and created again while waiting; see the new one's rollout: %s",
		ErrDeleted, ag.Namespace, ag.Name, follow)
}

// haltClock times a halted rollout for App.HaltGrace: from the first
// poll that reads it halted, for as long as the rollout makes no progress
// (rolloutMark), through polls that read it not halted. A target proven
// on a node leaves the manager no record of its halt there, so while the
// node's agent retries it, where no other node fails, the manager reads
// the node as done (RolloutComplete, or WaitingForWave, with Ready False)
// and, at each failure, RolloutHalted again: timed from each of those, the
// halt never lasted the grace, and the wait ran to --timeout. Progress is
// judged by the halted polls alone: a retry's spawning process and its
// node count as updated while it spawns, so a retry reads further than the
// halt, as far as the next node's halt may once the node has recovered,
// which then read as no progress and ended the wait at its first poll.
// A halted poll past the furthest halted one restarts the clock.
type haltClock struct {
	// since is when the halt being timed was first read; zero when none is.
	since time.Time
	// furthest is the furthest the halted polls have read the rollout in
	// this wait.
	furthest rolloutMark
}

// lasted takes in one poll, at now, that read the rollout halted or not
// and at mark, and says whether the halt has now lasted grace: only a
// poll that reads it halted ends the wait, with the manager's words of
// the halt, and only one counts toward progress.
func (c *haltClock) lasted(now time.Time, halted bool, mark rolloutMark, grace time.Duration) bool {
	if !halted {
		return false
	}
	if c.furthest.passedBy(mark) {
		c.since = time.Time{}
	}
	c.furthest = c.furthest.upTo(mark)
	if c.since.IsZero() {
		c.since = now
		return false
	}
	return now.Sub(c.since) >= grace
}

// rolloutMark is how far a rollout has got, by the counts of its status
// at a halted poll: the manager's own, the same at each failure of a
// node's retries, where RollingRestart's reason flips with them.
type rolloutMark struct {
	// revision and total are the rollout the counts are of: another target
	// (a spec change) or another set of nodes is another rollout.
	revision string
	total    int32
	// nodesUpdated and processesUpdated: status.nodes.updated and
	// status.processes.updated.
	nodesUpdated, processesUpdated int32
}

func markOf(st *ferryv1.AppGroupStatus) rolloutMark {
	return rolloutMark{revision: st.Revision, total: st.Nodes.Total,
		nodesUpdated: st.Nodes.Updated, processesUpdated: st.Processes.Updated}
}

// passedBy: mark is of another rollout than m, or it has more nodes or
// processes on the target than m. Not fewer: a node leaves nodes.updated
// while its agent restarts, so counts that fall and come back are no
// progress; only a count past the furthest is.
func (m rolloutMark) passedBy(mark rolloutMark) bool {
	return mark.revision != m.revision || mark.total != m.total ||
		mark.nodesUpdated > m.nodesUpdated || mark.processesUpdated > m.processesUpdated
}

// upTo is the furthest of m and mark, mark's alone when it is of another
// rollout.
func (m rolloutMark) upTo(mark rolloutMark) rolloutMark {
	if mark.revision != m.revision || mark.total != m.total {
		return mark
	}
	mark.nodesUpdated = max(m.nodesUpdated, mark.nodesUpdated)
	mark.processesUpdated = max(m.processesUpdated, mark.processesUpdated)
	return mark
}

// poolListInterval is how often, at most, restart --wait lists the pools
// (readsPools), unless a test sets App.poolListEvery: a young death stays
// in a pool's lastSpawnError until the next, and a crash loop is seen as
// well every few seconds as every poll, for a fraction of the API
// server's load in a large AppGroup.
const poolListInterval = 2 * time.Second

// readsPools: the pools may tell what ag's status does not, that the
// target's processes die young a second time with nothing to return
// their node (crashLoop): nothing does (notReturned); and the manager has
// taken up annotation and goes on with the rollout, halted it, or ended
// it with Ready not True.
func readsPools(ag *ferryv1.AppGroup, annotation string) bool {
	st := &ag.Status
	if !notReturned(ag).any() || !onRevision(st.Revision, annotation) {
		return false
	}
	c := meta.FindStatusCondition(st.Conditions, ferryv1.ConditionRollingRestart)
	if c == nil {
		return false
	}
	return c.Status == metav1.ConditionTrue || c.Reason == ferryv1.ReasonRolloutHalted ||
		c.Status == metav1.ConditionFalse && !meta.IsStatusConditionTrue(st.Conditions, ferryv1.ConditionReady)
}

// isFatal: an error polling will not outlast.
func isFatal(err error) bool {
	return apierrors.IsForbidden(err) || apierrors.IsUnauthorized(err) || meta.IsNoMatchError(err) ||
		apierrors.IsNotFound(err)
}

// timedOut: ctx ended at its deadline, not cancelled.
func timedOut(ctx context.Context) bool { return errors.Is(ctx.Err(), context.DeadlineExceeded) }

// waitAborted is the error of a wait that ended before the rollout did:
// at --timeout (atDeadline), or interrupted.
func waitAborted(atDeadline bool, ag *ferryv1.AppGroup, annotation, progress string, lastErr error) error {
	what := "interrupted"
	if atDeadline {
		what = "timed out"
	}
	msg := fmt.Sprintf("%s waiting for %s/%s to roll out revision %s; the rollout was at: %s",
		what, ag.Namespace, ag.Name, annotation, progress)
	if lastErr != nil {
		msg += fmt.Sprintf(" (last error reading it: %v)", lastErr)
	}
	msg += fmt.Sprintf("\nThe rollout itself goes on: kubectl ferry status %s -n %s", ag.Name, ag.Namespace)
	return errors.New(msg)
}
