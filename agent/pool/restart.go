package pool

import (
	"context"
	"errors"
	"maps"
	"strings"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ferry-dev/ferry/agent/spawn"
	ferryv1 "github.com/ferry-dev/ferry/api/v1alpha1"
	"github.com/ferry-dev/ferry/controllers/contract"
)

// Restart outcomes, as reported to the Observer and in logs.
const (
	OutcomeCompleted  = "completed"
	OutcomeWithErrors = "completed-with-errors"
	OutcomeResisting  = "resisting"
	OutcomeAborted    = "aborted"
)

// restartState is a restart under way.
type restartState struct {
	revision string
	// asked is Pool.asked when the restart started, or last took the
	// revision asked for: a rolling one as it rolls on (nextReplacement),
	// a blocking one as it spawns (blockingRestart).
	asked     int
	strategy  ferryv1.RestartStrategy
	done      int
	total     int
	failed    int
	replacing *Worker
	// replaced: replacing's replacement is ready; the step is done once
	// replacing has left the pool's table (stepDoneLocked).
	replaced bool
	skipped  map[int]bool // old workers left in place after a failed spawn (resistance off)
	errors   []ferryv1.SpawnError
}

// maxRestartErrors bounds the spawn errors a restart keeps for its summary.
const maxRestartErrors = 16

// RestartSummary is how the last restart ended.
type RestartSummary struct {
	Revision string                  `json:"revision"`
	Strategy ferryv1.RestartStrategy `json:"strategy"`
	Outcome  string                  `json:"outcome"`
	Replaced int                     `json:"replaced"`
	Total    int                     `json:"total"`
	Failed   int                     `json:"failed"`
	// Errors are the spawn errors met on the way (at most 16).
	Errors   []ferryv1.SpawnError `json:"errors,omitempty"`
	Finished metav1.Time          `json:"finished"`
}

// needsRestartLocked: some ready worker runs another revision than the
// target, and is not one the last restart to the target gave up on (with
// resistance off, those are not retried until the next revision). It may
// not start while a recycle is under way: both would replace workers.
func (p *Pool) needsRestartLocked() bool {
	return !p.recycling && p.restartFollowsLocked()
}

// restartFollowsLocked: a restart to the target is to start, now or once
// a recycle under way is over (needsRestartLocked).
func (p *Pool) restartFollowsLocked() bool {
	if p.closed || p.stopping || p.resisting != nil {
		return false
	}
	for _, w := range p.workers {
		if w.state != ferryv1.ProcessReady || w.Revision == p.cfg.Revision || w.replacing {
			continue
		}
		if p.givenUpFor == p.cfg.Revision && p.gaveUp[w.ID] {
			continue
		}
		return true
	}
	return false
}

func (p *Pool) startRestartLocked() {
	rs := &restartState{
		revision: p.cfg.Revision,
		asked:    p.asked,
		strategy: p.cfg.Template.Restart.Strategy,
		skipped:  map[int]bool{},
	}
	if rs.strategy == "" {
		rs.strategy = ferryv1.RestartRolling
	}
	rs.total = len(p.oldWorkersLocked(rs))
	p.restart, p.stepping = rs, rs
	p.notifyLocked()
	p.log.Info("Started restart", "strategy", rs.strategy, "revision", rs.revision, "processes", rs.total)
	if p.opts.Observer != nil {
		p.opts.Observer.RestartStarted(p.name, rs.strategy)
	}
	if rs.strategy == ferryv1.RestartBlocking {
		p.goBackground(func() { p.blockingRestart(rs) })
	} else {
		p.goBackground(func() { p.rollingRestart(rs) })
	}
}

// oldWorkersLocked lists the ready workers a restart to rs.revision still
// has to replace, oldest first.
func (p *Pool) oldWorkersLocked(rs *restartState) []*Worker {
	var old []*Worker
	for _, w := range p.workers {
		if w.state == ferryv1.ProcessReady && w.Revision != rs.revision && !rs.skipped[w.ID] && !w.replacing {
			old = append(old, w)
		}
	}
	return old
}

// rollingRestart replaces the old workers one at a time, as the seed
// describes: spawn Y and wait until it is ready; stop routing to X; let X
// finish its requests; SIGTERM X, SIGKILL after shutdownTimeout; Y takes
// X's place. The pool never holds more than its size plus one.
func (p *Pool) rollingRestart(rs *restartState) {
	outcome := OutcomeCompleted
	defer func() { p.finishRestart(rs, outcome) }()
	for {
		p.awaitHold(rs)
		x, y, ok := p.nextReplacement(rs)
		if !ok {
			outcome = p.restartOutcome(rs)
			return
		}
		err := p.spawn(y, SpawnRestart)
		if err == nil {
			if p.keepInstead(rs, x, y) {
				outcome = OutcomeResisting
				return
			}
			p.retire(context.Background(), x, "rolling restart")
			p.mu.Lock()
			stepDoneLocked(rs, x) // if x's exit has not done it
			p.notifyLocked()
			p.mu.Unlock()
			continue
		}
		if errors.Is(err, ErrClosed) {
			outcome = OutcomeAborted
			return
		}
		if errors.Is(err, errResisted) || errors.Is(err, errHeld) { // y was stopped before it served
			p.mu.Lock()
			p.keepOldLocked(rs, x)
			p.mu.Unlock()
			if errors.Is(err, errHeld) {
				continue // x is replaced after the hold, or kept by the return
			}
			outcome = OutcomeResisting
			return
		}
		if stop := p.handleRestartSpawnError(rs, x, y, err); stop {
			outcome = OutcomeResisting
			return
		}
	}
}

// restartOutcome is how a rolling restart with no worker left to replace
// ended.
func (p *Pool) restartOutcome(rs *restartState) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case p.closed || p.stopping:
		return OutcomeAborted
	case p.resisting != nil, p.orphanedLocked(rs):
		return OutcomeResisting // a young worker of the revision died (resistCrashLocked)
	case rs.failed > 0:
		return OutcomeWithErrors
	}
	return OutcomeCompleted
}

// keepInstead: y, x's replacement, is ready, but the pool resists its
// revision now (a worker of it died young, after y was made ready:
// resistCrashLocked). x stays, y goes, and the restart ends. Otherwise
// the step goes on: x is retired. (A y whose spawn completes once the
// pool resists is stopped before it serves: errResisted.)
func (p *Pool) keepInstead(rs *restartState, x, y *Worker) bool {
	p.mu.Lock()
	if p.resisting == nil && !p.orphanedLocked(rs) {
		rs.replaced = true
		p.mu.Unlock()
		return false
	}
	p.keepOldLocked(rs, x)
	p.mu.Unlock()
	p.retire(context.Background(), y, "deployment error resisted")
	return true
}

// orphanedLocked reports whether the pool came to resist rs's revision
// while rs's goroutine was in a step (resistCrashLocked, in standalone),
// resistance ended since or not: rs must end at its next look, as it does
// for a resistance it sees, without rolling on to a revision asked for
// meanwhile (the restart that one starts, once rs ended, does that).
func (p *Pool) orphanedLocked(rs *restartState) bool { return p.restart != rs }

// keepOldLocked ends the step that was to replace x, the pool resisting
// the revision of x's replacement: x serves on.
func (p *Pool) keepOldLocked(rs *restartState, x *Worker) {
	x.replacing = false
	rs.replacing = nil
	p.notifyLocked()
}

// nextReplacement picks the next old worker and registers its replacement;
// ok is false when none is left (or the pool stops or closed).
func (p *Pool) nextReplacement(rs *restartState) (x, y *Worker, ok bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed || p.stopping || p.resisting != nil || p.orphanedLocked(rs) {
		return nil, nil, false
	}
	if rs.asked != p.asked {
		// Another revision was asked for mid-way (a newer one, or in a
		// cluster the one the manager returned the node to), or this one
		// again after another (2, 1, 2): roll on to it. Its summary is of
		// that request alone: what was done and what failed before says
		// nothing of it, and the workers skipped before are tried again.
		p.log.Info("Restart continues to the revision asked for since", "from", rs.revision, "to", p.cfg.Revision)
		rs.revision, rs.asked = p.cfg.Revision, p.asked
		clear(rs.skipped)
		rs.done, rs.failed, rs.errors, rs.total = 0, 0, nil, 0
	}
	old := p.oldWorkersLocked(rs)
	if len(old) == 0 {
		return nil, nil, false
	}
	rs.total = rs.done + rs.failed + len(old) // the skipped too: each is one of the restart's
	x = old[0]
	x.replacing = true
	rs.replacing = x
	p.rolledFrom = rollingFrom{to: rs.revision, from: spawnable{revision: x.Revision, tmpl: x.tmpl}}
	y = p.addSpawningLocked(p.targetLocked()) // rs.revision is the target now
	p.notifyLocked()
	return x, y, true
}

// stepDoneLocked ends the step that replaced x, once x is gone: in the
// same snapshot that no longer lists x, no worker is marked as being
// replaced and the step counts done (passenger-status's "Rolling
// restarting..." is never on a process that has left). Called at x's exit
// and after its retire; the first call counts.
func stepDoneLocked(rs *restartState, x *Worker) {
	if rs == nil || rs.replacing != x || !rs.replaced {
		return
	}
	x.replacing = false
	rs.done++
	rs.replacing, rs.replaced = nil, false
}

// handleRestartSpawnError decides what the failed spawn of y, x's
// replacement, means. It reports whether the restart must stop
// (resistance).
func (p *Pool) handleRestartSpawnError(rs *restartState, x, y *Worker, err error) (stop bool) {
	target := y.Revision
	p.mu.Lock()
	x.replacing = false
	rs.replacing = nil
	newer := p.cfg.Revision
	moved := newer != target
	proven := p.readyOfRevisionLocked(target) > 0
	machine := notTheRevisions(err) // the spawn failed for no fault of the revision
	resist := contract.ResistanceAsked(&p.cfg.Template.Restart)
	if resist && !moved && !proven && !machine {
		// Decided and done under one lock: a revision asked for in between
		// would find nothing to end, and the pool would resist a revision
		// nobody wants any more.
		p.enterResistanceLocked(target, err, spawnable{revision: x.Revision, tmpl: x.tmpl})
	}
	p.mu.Unlock()

	switch {
	case moved:
		// The failure is of a revision nobody wants any more; logged and
		// counted all the same (the seed: all errors of a rolling restart
		// are logged). Whether this restart rolls on to the newer one
		// (nextReplacement) or ends (orphaned, stopping) is decided next.
		p.recordSpawnError(target, err)
		if p.opts.Observer != nil {
			p.opts.Observer.SpawnFailed(p.name, SpawnRestart)
		}
		p.log.Error(err, "Could not replace worker with a revision no longer asked for",
			"pid", x.PID(), "revision", target, "newer", newer)
		return false
	case proven, machine:
		// The revision already serves, or its spawn failed for a cause of
		// the machine's: a scaling error (out of memory, say), not a broken
		// deployment. Back off, then try this step again.
		p.recordScalingError(y, err, SpawnRestart)
		p.waitBackoff(target)
		return false
	case resist:
		p.reportResisting(target, err)
		return true
	default:
		p.recordSpawnError(target, err)
		p.mu.Lock()
		if p.scaling.err != nil && p.scaling.err.Revision == target {
			// The backoff of an earlier try of this step, blocked (a Secret
			// not read, since granted): this failure is the app's own and
			// ends the step; the blocked one no longer holds anything.
			p.scaling = scalingState{}
		}
		rs.skipped[x.ID] = true
		rs.failed++
		if len(rs.errors) < maxRestartErrors {
			rs.errors = append(rs.errors, *p.lastErr)
		}
		p.mu.Unlock()
		if p.opts.Observer != nil {
			p.opts.Observer.SpawnFailed(p.name, SpawnRestart)
		}
		p.log.Error(err, "Could not replace worker; it keeps serving the old revision", "pid", x.PID(),
			"revision", target)
		return false
	}
}

// notTheRevisions: err is a spawn's that failed for no fault of the app's
// revision (spawn.Error.NotTheRevisions: other sockets took its worker's
// ports, or its env valueFrom could not be read).
func notTheRevisions(err error) bool {
	var se *spawn.Error
	return errors.As(err, &se) && se.NotTheRevisions()
}

// reportResisting logs and counts the deployment error err of revision
// that made the pool resist.
func (p *Pool) reportResisting(revision string, err error) {
	if p.opts.Observer != nil {
		p.opts.Observer.SpawnFailed(p.name, SpawnRestart)
	}
	p.log.Error(err, "Resisting deployment error: the old processes keep serving until a new revision is requested",
		"revision", revision)
}

// waitBackoff sleeps out a scaling backoff, or a hold for the manager's
// return (nextSpawnLocked), waking early if the pool stops or closes, or
// the target revision changes.
func (p *Pool) waitBackoff(target string) {
	for {
		p.mu.Lock()
		until, closed, moved := p.nextSpawnLocked(time.Now()), p.closed || p.stopping, p.cfg.Revision != target
		ch := p.changed
		p.mu.Unlock()
		d := time.Until(until)
		if closed || moved || d <= 0 {
			return
		}
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-ch:
		}
		t.Stop()
	}
}

// awaitHold waits while the pool holds the spawns of rs's revision for
// the manager's return from it (holdsLocked): the old workers not yet
// replaced serve on, and the return (a new revision asked for: the
// restart rolls on to it, and they run it already) or the hold's end
// ends the wait.
func (p *Pool) awaitHold(rs *restartState) {
	p.mu.Lock()
	held, target := p.holdsLocked(rs.revision, time.Now()), rs.revision
	p.mu.Unlock()
	if held {
		p.waitBackoff(target)
	}
}

// blockingRestart stops every old worker at once, then spawns anew;
// requests queue in the proxy meanwhile. It exists for parity with
// Passenger's default restart.
func (p *Pool) blockingRestart(rs *restartState) {
	outcome := OutcomeCompleted
	defer func() { p.finishRestart(rs, outcome) }()

	p.mu.Lock()
	old := p.oldWorkersLocked(rs)
	for _, w := range old {
		p.drainLocked(w)
	}
	size := max(len(old), int(p.cfg.Template.Pool.MinProcesses))
	p.notifyLocked()
	p.mu.Unlock()

	var wg sync.WaitGroup
	for _, w := range old {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p.retire(context.Background(), w, "blocking restart")
		}()
	}
	wg.Wait()

	p.mu.Lock()
	live := 0
	for _, w := range p.workers {
		if w.state == ferryv1.ProcessReady || w.state == ferryv1.ProcessSpawning {
			live++
		}
	}
	// What spawns now is the revision asked for now, labelled so: one
	// asked for while the old workers stopped is not another restart.
	rs.revision, rs.asked = p.cfg.Revision, p.asked
	var spawns []*Worker
	for range size - live {
		spawns = append(spawns, p.addSpawningLocked(p.targetLocked()))
	}
	// Its summary counts these: what it stopped is gone whatever they do,
	// and minProcesses may ask for more than it stopped.
	rs.total = len(spawns)
	p.notifyLocked()
	p.mu.Unlock()

	errs := make([]error, len(spawns))
	for i, w := range spawns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = p.spawn(w, SpawnRestart)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		switch {
		case err == nil:
		case errors.Is(err, ErrClosed):
			outcome = OutcomeAborted
		default:
			outcome = OutcomeWithErrors
			p.recordScalingError(spawns[i], err, SpawnRestart)
		}
	}
	p.mu.Lock()
	rs.done, rs.failed = blockingCounts(rs, errs)
	p.mu.Unlock()
}

// blockingCounts is what a blocking restart's summary says of its
// spawns' errors (nil: spawned; rs.total is their number): a spawn that
// worked replaced, one that failed could not, its error kept
// (rs.errors). A spawn the pool's close cut is neither.
func blockingCounts(rs *restartState, errs []error) (replaced, failed int) {
	for _, err := range errs {
		switch {
		case err == nil:
			replaced++
		case errors.Is(err, ErrClosed):
		default:
			failed++
			if len(rs.errors) < maxRestartErrors {
				rs.errors = append(rs.errors, *spawnError(rs.revision, err))
			}
		}
	}
	return replaced, failed
}

// restartEnding, when set (tests only; nil in production), is called as
// a restart ends, before finishRestart takes the pool's lock: a revision
// asked for there comes after the restart's last look (rs.asked).
var restartEnding func()

// finishRestart ends rs and writes its summary. A revision asked for since
// rs last looked (rs.asked) came after the restart's last step: what it
// gave up on is no longer given up (Update cleared it: a new request
// tries every worker again), so that is not written. Nor is the summary
// of a revision asked for again meanwhile (2, 1, 2) when a restart to it
// follows (workers left on another revision, those given up on among
// them): that restart's summary is the new request's (Update dropped the
// one before for the same reason). When none follows (every worker runs
// the revision: a blocking restart's spawns, failed or not, are all of
// it), rs's summary is the only one the request gets, and is written:
// without it the failed spawns' errors, which restart --wait reports,
// would be lost.
func (p *Pool) finishRestart(rs *restartState, outcome string) {
	if restartEnding != nil {
		restartEnding()
	}
	p.mu.Lock()
	askedSince := rs.asked != p.asked
	// The pool may have come to resist mid-step and cleared it
	// (orphanedLocked); no newer restart begins before stepping is clear.
	if p.restart == rs {
		p.restart = nil
	}
	if p.stepping == rs {
		p.stepping = nil
	}
	if outcome != OutcomeAborted && outcome != OutcomeResisting && !askedSince {
		p.givenUpFor, p.gaveUp = rs.revision, maps.Clone(rs.skipped)
	}
	if outcome == OutcomeResisting && len(rs.errors) < maxRestartErrors && p.resisting != nil {
		rs.errors = append(rs.errors, *p.resisting)
	}
	askedAgain := askedSince && rs.revision == p.cfg.Revision
	// Decided under the lock that clears rs: no other restart starts
	// before (reconcile waits for stepping to clear), so whether one will
	// is what the workers say now.
	leftToNext := askedAgain && p.restartFollowsLocked()
	if !leftToNext {
		p.lastRestart = &RestartSummary{Revision: rs.revision, Strategy: rs.strategy, Outcome: outcome,
			Replaced: rs.done, Total: rs.total, Failed: rs.failed, Errors: rs.errors, Finished: metav1.Now()}
	}
	p.notifyLocked()
	p.mu.Unlock()
	p.log.Info("Finished restart", "outcome", outcome, "revision", rs.revision, "replaced", rs.done,
		"of", rs.total, "failed", rs.failed, "askedAgain", askedAgain, "summaryLeftToNextRestart", leftToNext)
	if p.opts.Observer != nil {
		p.opts.Observer.RestartFinished(p.name, outcome)
	}
	p.kickSupervisor()
}

// enterResistanceLocked freezes the pool on a deployment error: the old
// workers keep serving, nothing of the new revision is spawned and nothing
// is idle-cleaned until a new revision. from, the revision of the old
// worker the failed spawn was to replace, is what the pool falls back on
// should the old workers all be gone (decide).
func (p *Pool) enterResistanceLocked(revision string, err error, from spawnable) {
	se := spawnError(revision, err)
	p.resisting = se
	p.lastErr = se
	p.resistFrom = from
	// The scaling error and backoff of the revision (a restart step
	// retried while a process of it served, the crash of one) go with
	// it: nothing spawns it now, so nothing would clear them, and the
	// backoff would hold up the spawns of the revision resisted from.
	p.scaling = scalingState{}
	// One snapshot must never show a restart under way and resisting.
	p.restart = nil
	p.notifyLocked()
}

func (p *Pool) recordSpawnError(revision string, err error) {
	p.mu.Lock()
	p.lastErr = spawnError(revision, err)
	p.notifyLocked()
	p.mu.Unlock()
}

func (p *Pool) readyOfRevisionLocked(revision string) int {
	n := 0
	for _, w := range p.workers {
		if w.state == ferryv1.ProcessReady && w.Revision == revision {
			n++
		}
	}
	return n
}

// spawnError turns a spawn failure into the API's record of it.
func spawnError(revision string, err error) *ferryv1.SpawnError {
	se := &ferryv1.SpawnError{Revision: revision, Reason: err.Error(), Time: metav1.Now()}
	var e *spawn.Error
	if errors.As(err, &e) {
		se.Reason, se.Output = e.Reason, e.Output
	}
	se.Reason = truncate(firstLine(se.Reason), 1024)
	if len(se.Output) > 4096 {
		se.Output = se.Output[len(se.Output)-4096:]
	}
	return se
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}
