package pool

import (
	"fmt"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	ferryv1 "github.com/ferry-dev/ferry/api/v1alpha1"
	"github.com/ferry-dev/ferry/controllers/contract"
)

// Status is a snapshot of a pool, what `ferry-agent status` shows and what
// the agent reports in a ProcessPool's status.
type Status struct {
	Name         string                   `json:"name"`
	Revision     string                   `json:"revision"`
	Strategy     ferryv1.RestartStrategy  `json:"strategy"`
	MinProcesses int32                    `json:"minProcesses"`
	MaxProcesses int32                    `json:"maxProcesses"`
	QueueLength  int32                    `json:"queueLength"`
	Counts       ferryv1.ProcessCounts    `json:"counts"`
	Processes    []ferryv1.ProcessInfo    `json:"processes"`
	Restart      *ferryv1.RestartProgress `json:"restart,omitempty"`
	// Resisting is the deployment error the pool is frozen on.
	Resisting *ferryv1.SpawnError `json:"resisting,omitempty"`
	// ScalingError is the last failed scaling spawn while it backs off.
	ScalingError *ferryv1.SpawnError `json:"scalingError,omitempty"`
	// ScalingRetryAt is when the pool next spawns: the end of its backoff,
	// or of its hold for the manager's return (the crash window from the
	// second round of young deaths: nextSpawnLocked), whichever is later.
	ScalingRetryAt  *metav1.Time `json:"scalingRetryAt,omitempty"`
	ScalingFailures int          `json:"scalingFailures,omitempty"`
	// ScalingBlocked: ScalingError failed for no fault of its revision (a
	// port another program took, an env valueFrom the agent could not
	// read): the pool retries, and nothing is judged of the revision.
	ScalingBlocked bool                `json:"scalingBlocked,omitempty"`
	LastSpawnError *ferryv1.SpawnError `json:"lastSpawnError,omitempty"`
	// SpawnFailures is how many rounds of spawns of LastSpawnError's
	// revision have failed in a row, LastSpawnError of the last
	// (scalingState.rounds): not ScalingFailures, which counts each
	// process of a round; from 2 rounds of young deaths, a pool that
	// awaits the manager's return holds the revision's spawns for the
	// crash window from the second, once a loop (holdingLocked). The
	// rounds are of failed spawns and young deaths alike, and a spawn that
	// is ready is not one that worked: kept once ScalingError is cleared
	// between the failures of a loop, their replacements ready, until a
	// worker ready since the loop began lasts or serves until it is
	// recycled (scalingState.loopSince). 0 once the count starts over
	// (the loop ended so; a spawn worked after a need that passed; the
	// retries of failed spawns stopped by the pool, the need passed:
	// retriesGoneLocked; another revision; resistance), and while
	// LastSpawnError is a failure it leaves out (scalingState.last).
	// Beside a spawn blocked for no fault of the revision (ScalingBlocked)
	// it counts those in a row; they are no rounds of the revision's run,
	// which a young death after them starts at 1 (scalingState.fail).
	SpawnFailures int             `json:"spawnFailures,omitempty"`
	LastRestart   *RestartSummary `json:"lastRestart,omitempty"`
	// ResistDeploymentErrors is restart.resistDeploymentErrors as the
	// pool has it now: a reload may have turned it on since LastRestart
	// left processes behind, which it was off for.
	ResistDeploymentErrors bool `json:"resistDeploymentErrors"`
	// RevisionStarted: a process of Revision has been ready in this pool's
	// life. False while the pool boots its first processes of it, and
	// while its app cannot start (every spawn fails).
	RevisionStarted bool `json:"revisionStarted"`
	// RevisionLasted: a process of Revision has lived past crashWindow
	// from ready, or the revision has been steady for it, a worker of it
	// ready throughout and none dying or stopped as faulty (lastedLocked).
	RevisionLasted bool `json:"revisionLasted"`
}

// Status returns a snapshot of the pool.
func (p *Pool) Status() Status {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := Status{
		Name:            p.cfg.Name,
		Revision:        p.cfg.Revision,
		Strategy:        p.cfg.Template.Restart.Strategy,
		MinProcesses:    p.cfg.Template.Pool.MinProcesses,
		MaxProcesses:    p.cfg.Template.Pool.MaxProcesses,
		QueueLength:     int32(p.queue.n),
		Resisting:       p.resisting.DeepCopy(),
		LastSpawnError:  p.lastErr.DeepCopy(),
		LastRestart:     p.lastRestart.deepCopy(),
		RevisionStarted: p.started[p.cfg.Revision],
		RevisionLasted:  p.lasted[p.cfg.Revision],
		Processes:       make([]ferryv1.ProcessInfo, 0, len(p.workers)),
	}
	if p.lastErr != nil && p.lastErr == p.scaling.last {
		s.SpawnFailures = p.scaling.counted()
	}
	s.ResistDeploymentErrors = contract.ResistanceAsked(&p.cfg.Template.Restart)
	if p.scaling.err != nil {
		s.ScalingError = p.scaling.err.DeepCopy()
		s.ScalingRetryAt = &metav1.Time{Time: p.nextSpawnLocked(time.Now())}
		s.ScalingFailures = p.scaling.failures
		s.ScalingBlocked = p.scaling.blocked
	}
	for _, w := range p.workers {
		s.Processes = append(s.Processes, w.infoLocked(p.restart))
		s.Counts.Total++
		if w.state == ferryv1.ProcessReady {
			s.Counts.Ready++
		}
		if w.Revision == p.cfg.Revision {
			s.Counts.Updated++
		}
	}
	if rs := p.restart; rs != nil {
		s.Strategy = rs.strategy
		s.Restart = &ferryv1.RestartProgress{Revision: rs.revision, Done: int32(rs.done), Total: int32(rs.total)}
		if rs.replacing != nil {
			s.Restart.ReplacingPID = int32(rs.replacing.PID())
		}
	}
	return s
}

// infoLocked is w's entry in a status; rs is the restart under way, if
// any. Replacing is for the process rs's step replaces (Passenger's
// "Rolling restarting..."), not for one a recycle replaces, which is
// marked replacing too (w.replacing), for the pool's counts.
func (w *Worker) infoLocked(rs *restartState) ferryv1.ProcessInfo {
	info := ferryv1.ProcessInfo{
		PID:         int32(w.PID()),
		Revision:    w.Revision,
		State:       w.state,
		Replacing:   rs != nil && rs.replacing == w,
		Sessions:    int32(w.sessions),
		Processed:   w.processed,
		StartedAt:   metav1.Time{Time: w.startedAt},
		CPUPercent:  w.stats.cpuPercent,
		MemoryBytes: w.stats.rssBytes,
	}
	if w.processed > 0 {
		info.LastUsed = &metav1.Time{Time: w.lastUsed}
	}
	return info
}

// Conditions derives the pool's conditions from a snapshot: Ready,
// RollingRestart, ResistingDeploymentError and ScalingError. Messages
// depend on the snapshot only, so an unchanged pool gives unchanged
// conditions. LastTransitionTime is left for the caller
// (meta.SetStatusCondition keeps it when a status does not change).
func (s Status) Conditions(_ time.Time) []metav1.Condition {
	return []metav1.Condition{s.readyCondition(), s.restartCondition(), s.resistingCondition(), s.scalingCondition()}
}

func (s Status) readyCondition() metav1.Condition {
	c := metav1.Condition{Type: ferryv1.ConditionReady}
	if s.Counts.Ready >= s.MinProcesses && s.Counts.Ready > 0 {
		c.Status, c.Reason = metav1.ConditionTrue, ferryv1.ReasonProcessesReady
		c.Message = fmt.Sprintf("%d of %d processes ready (minProcesses %d)", s.Counts.Ready, s.Counts.Total, s.MinProcesses)
		return c
	}
	c.Status, c.Reason = metav1.ConditionFalse, ferryv1.ReasonProcessesNotReady
	c.Message = fmt.Sprintf("%d of %d processes ready, minProcesses is %d", s.Counts.Ready, s.Counts.Total, s.MinProcesses)
	if s.ScalingError != nil {
		c.Message += "; spawns are failing: " + s.ScalingError.Reason
	}
	return c
}

func (s Status) restartCondition() metav1.Condition {
	c := metav1.Condition{Type: ferryv1.ConditionRollingRestart}
	switch {
	case s.Resisting != nil:
		c.Status, c.Reason = metav1.ConditionFalse, ferryv1.ReasonRolloutHalted
		c.Message = fmt.Sprintf("rollout to revision %s halted by a deployment error", s.Resisting.Revision)
	case s.Restart != nil && s.Strategy == ferryv1.RestartBlocking:
		c.Status, c.Reason = metav1.ConditionTrue, ferryv1.ReasonRestartingBlocking
		c.Message = fmt.Sprintf("blocking restart to revision %s", s.Restart.Revision)
	case s.Restart != nil:
		c.Status, c.Reason = metav1.ConditionTrue, ferryv1.ReasonRollingOut
		c.Message = fmt.Sprintf("process %d/%d", min(s.Restart.Done+1, s.Restart.Total), s.Restart.Total)
		if s.Restart.ReplacingPID != 0 {
			c.Message += fmt.Sprintf(", replacing pid %d", s.Restart.ReplacingPID)
		}
		c.Message += ", to revision " + s.Restart.Revision
		if e := s.ScalingError; e != nil && e.Revision == s.Restart.Revision {
			// A step's spawn that failed while a process of the revision
			// serves is retried (restart.go), the old process serving on.
			c.Message += "; its spawns fail (see ScalingError), " + contract.SpawnsRetried
		}
	case s.LastRestart != nil && s.LastRestart.Revision == s.Revision && s.LastRestart.Failed > 0 &&
		s.Counts.Updated < s.Counts.Total:
		c.Status, c.Reason = metav1.ConditionFalse, ferryv1.ReasonRolloutIncomplete
		c.Message = fmt.Sprintf("%d of %d processes could not be replaced and keep serving an older revision (%s)",
			s.Counts.Total-s.Counts.Updated, s.Counts.Total, contract.NotResisted(s.ResistDeploymentErrors, s.LastRestart.Revision))
		if len(s.LastRestart.Errors) > 0 {
			c.Message += ": " + s.LastRestart.Errors[0].Reason
		}
	case !s.RevisionStarted && s.failsToStart() && s.ScalingBlocked:
		// Nothing is known of the revision yet: what blocks it is not its.
		c.Status, c.Reason = metav1.ConditionFalse, ferryv1.ReasonRolloutComplete
		c.Message = fmt.Sprintf("no process of revision %s has been ready yet: its spawns are blocked for no fault "+
			"of the revision (see ScalingError), %s", s.Revision, contract.SpawnsRetried)
	case !s.RevisionStarted && s.failsToStart():
		// Nothing older to resist with: the revision has never run here.
		c.Status, c.Reason = metav1.ConditionFalse, ferryv1.ReasonRolloutHalted
		c.Message = fmt.Sprintf("revision %s cannot start: no process of it has been ready, and its spawns fail "+
			"(retried with backoff; see ScalingError)", s.Revision)
	case !s.RevisionStarted:
		// Not restarting either: the pool boots its first processes.
		c.Status, c.Reason = metav1.ConditionFalse, ferryv1.ReasonRolloutComplete
		c.Message = fmt.Sprintf("no process of revision %s has been ready yet", s.Revision)
		if n := s.spawning(); n > 0 {
			c.Message += fmt.Sprintf(" (%d spawning)", n)
		}
	default:
		c.Status, c.Reason = metav1.ConditionFalse, ferryv1.ReasonRolloutComplete
		c.Message = fmt.Sprintf("%d of %d processes on revision %s", s.Counts.Updated, s.Counts.Total, s.Revision)
	}
	return c
}

// failsToStart: spawns of the pool's revision fail and back off.
func (s Status) failsToStart() bool {
	return s.ScalingError != nil && s.ScalingError.Revision == s.Revision
}

// spawning counts the processes of the pool's revision being spawned.
func (s Status) spawning() int {
	n := 0
	for _, p := range s.Processes {
		if p.Revision == s.Revision && p.State == ferryv1.ProcessSpawning {
			n++
		}
	}
	return n
}

func (s Status) resistingCondition() metav1.Condition {
	c := metav1.Condition{Type: ferryv1.ConditionResistingDeploymentError}
	if s.Resisting == nil {
		c.Status, c.Reason, c.Message = metav1.ConditionFalse, ferryv1.ReasonNoDeploymentError, "No deployment error is being resisted"
		return c
	}
	c.Status, c.Reason = metav1.ConditionTrue, ferryv1.ReasonSpawnFailed
	c.Message = contract.ResistingMessage(s.Resisting.Revision, s.Resisting.Reason)
	if out := excerpt(s.Resisting.Output, 600); out != "" {
		c.Message += "\n" + out
	}
	return c
}

func (s Status) scalingCondition() metav1.Condition {
	c := metav1.Condition{Type: ferryv1.ConditionScalingError}
	if s.ScalingError == nil {
		c.Status, c.Reason, c.Message = metav1.ConditionFalse, ferryv1.ReasonSpawnsHealthy, "No spawn is failing"
		return c
	}
	c.Status, c.Reason = metav1.ConditionTrue, ferryv1.ReasonSpawnBackoff
	if s.ScalingBlocked {
		c.Reason = ferryv1.ReasonSpawnBlocked
	}
	c.Message = fmt.Sprintf("spawn of revision %s failed %d time(s)", s.ScalingError.Revision, max(1, s.ScalingFailures))
	if !s.RevisionStarted && s.failsToStart() {
		c.Message += ", and no process of it has been ready yet"
	}
	c.Message += ": " + s.ScalingError.Reason
	if s.ScalingRetryAt != nil {
		// A time, not a countdown: the message must not change by itself.
		c.Message += "; next attempt at " + s.ScalingRetryAt.UTC().Format(time.TimeOnly) + " UTC"
	}
	c.Message += "; " + contract.SpawnsRetried
	return c
}

// excerpt keeps the end of s (where a traceback says what went wrong),
// within n bytes, on whole lines.
func excerpt(s string, n int) string {
	s = strings.TrimSpace(s)
	if len(s) <= n {
		return s
	}
	s = s[len(s)-n:]
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[i+1:]
	}
	return "..." + "\n" + s
}

func (r *RestartSummary) deepCopy() *RestartSummary {
	if r == nil {
		return nil
	}
	c := *r
	c.Errors = append([]ferryv1.SpawnError(nil), r.Errors...)
	return &c
}
