package cluster

import (
	"errors"
	"fmt"
	"math"
	"net"
	"strconv"
	"syscall"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ferry-dev/ferry/agent/pool"
	ferryv1 "github.com/ferry-dev/ferry/api/v1alpha1"
)

// listening is where a pool's proxy listens, as its status tells it.
type listening struct {
	port int32 // the spec's listen.port
	err  error // why port cannot be opened; nil: the proxy serves on it
	// old is the port moved from, still served while port cannot be
	// opened; 0: none is.
	old int32
	// agentUse is what of the agent's own serves on port ("metrics
	// endpoint"); "": nothing does.
	agentUse string
	// holder is the agent's own pool that holds port, when held.
	holder portUse
	held   bool
}

// serving is the port the proxy serves on: the old one while the new one
// is taken, else the spec's (also while nothing serves: an address on
// another port than the spec's then always means the old one serves).
func (l listening) serving() int32 {
	if l.err != nil && l.old != 0 {
		return l.old
	}
	return l.port
}

// failure is the Ready condition's message while the port cannot be
// opened: whether the node serves nothing, or still serves on the old
// port. (The manager reads the first form's error after its prefix.)
func (l listening) failure() string {
	why := l.err.Error() + l.advice()
	if l.old == 0 {
		return "the proxy cannot listen: " + why
	}
	return fmt.Sprintf("the proxy cannot listen on port %d (%s); it still serves on the old port %d until %d is free",
		l.port, why, l.old, l.port)
}

// advice says, when the port is taken, whose it is and what to do: the
// bind error alone names neither.
func (l listening) advice() string {
	switch {
	case !errors.Is(l.err, syscall.EADDRINUSE):
		return ""
	case l.agentUse != "":
		return fmt.Sprintf("; port %d is this agent's own %s: choose another listen.port", l.port, l.agentUse)
	case l.held:
		return "; " + l.holder.advice(l.port)
	}
	return fmt.Sprintf("; another process on the node holds port %d: free it, or choose another listen.port", l.port)
}

// desiredStatus computes a ProcessPool's status from the pool's snapshot,
// on top of the status the API has (current): conditions keep their
// LastTransitionTime while their status does not change. The address is
// where the proxy serves, on host; listenPort the port it was given (the
// manager reads the address as of it). Pure.
func desiredStatus(current ferryv1.ProcessPoolStatus, generation int64, s pool.Status, host string,
	l listening, now time.Time) ferryv1.ProcessPoolStatus {
	out := ferryv1.ProcessPoolStatus{
		ObservedGeneration: generation,
		Address:            net.JoinHostPort(host, strconv.Itoa(int(l.serving()))),
		ListenPort:         l.port,
		ObservedRevision:   s.Revision,
		ProcessCounts:      s.Counts,
		ReadyProcesses:     ratio(s.Counts.Ready, s.Counts.Total),
		QueueLength:        s.QueueLength,
		Processes:          s.Processes,
		RestartProgress:    s.Restart,
		DeploymentError:    s.Resisting,
		LastSpawnError:     s.LastSpawnError,
		SpawnFailures:      int32(s.SpawnFailures),
		HeartbeatTime:      &metav1.Time{Time: now},
		Conditions:         append([]metav1.Condition(nil), current.Conditions...),
	}
	if s.RevisionLasted {
		out.LastedRevision = s.Revision
	}
	if len(out.Processes) > 512 {
		out.Processes = out.Processes[:512]
	}
	for _, c := range s.Conditions(now) {
		if c.Type == ferryv1.ConditionReady && l.err != nil {
			// False even while the old port serves: the manager must
			// know that the spec's port is not served here.
			c.Status, c.Reason, c.Message = metav1.ConditionFalse, ferryv1.ReasonListenFailed, l.failure()
		}
		c.ObservedGeneration = generation
		// Whole seconds, as the API stores it: the next status is computed
		// on top of the stored one, and a transition time that lost its
		// nanoseconds on the way must not read as a change worth a write.
		c.LastTransitionTime = metav1.NewTime(now.Truncate(time.Second))
		meta.SetStatusCondition(&out.Conditions, c)
	}
	return out
}

func ratio(a, b int32) string {
	return strconv.Itoa(int(a)) + "/" + strconv.Itoa(int(b))
}

// stateChanged reports whether two statuses differ in anything but the
// figures that move all the time (heartbeat, CPU, memory, request
// counters, last use, queue length): those go out at the heartbeat rate,
// everything else at once.
func stateChanged(a, b ferryv1.ProcessPoolStatus) bool {
	return !equality.Semantic.DeepEqual(stateOf(a), stateOf(b))
}

func stateOf(s ferryv1.ProcessPoolStatus) ferryv1.ProcessPoolStatus {
	s.HeartbeatTime = nil
	s.QueueLength = 0
	procs := make([]ferryv1.ProcessInfo, len(s.Processes))
	for i, p := range s.Processes {
		procs[i] = ferryv1.ProcessInfo{PID: p.PID, Revision: p.Revision, State: p.State, Replacing: p.Replacing,
			StartedAt: p.StartedAt}
	}
	s.Processes = procs
	conds := make([]metav1.Condition, len(s.Conditions))
	for i, c := range s.Conditions {
		c.LastTransitionTime = metav1.Time{}
		conds[i] = c
	}
	s.Conditions = conds
	if s.LastSpawnError != nil {
		e := *s.LastSpawnError
		e.Time = metav1.Time{Time: e.Time.Truncate(time.Second)}
		s.LastSpawnError = &e
	}
	return s
}

// writeDue says whether the reporter writes desired now, last having been
// written sinceWrite ago (written is false before the first write): at
// once on a change of state; after statsInterval when only the figures
// moved; after reportInterval when nothing did. Like the kubelet's node
// status, an unchanged report is not rewritten at the stats rate: a node
// with hundreds of idle pools would otherwise keep the API server busy
// saying nothing, and the node's Lease already says its agent is alive.
func writeDue(written bool, last, desired ferryv1.ProcessPoolStatus, sinceWrite, statsInterval, reportInterval time.Duration) bool {
	switch {
	case !written || stateChanged(last, desired) || sinceWrite >= reportInterval:
		return true
	case sinceWrite >= statsInterval:
		return figuresChanged(last, desired)
	}
	return false
}

// figuresChanged reports whether two statuses differ in anything but the
// heartbeat.
func figuresChanged(a, b ferryv1.ProcessPoolStatus) bool {
	a.HeartbeatTime, b.HeartbeatTime = nil, nil
	return !equality.Semantic.DeepEqual(a, b)
}

// patchBase is the object a status write is diffed against: the cached
// pool, but with the status this reporter last stored (stored) when it did.
// The agent is the pool status's only writer, so the API holds what it
// last wrote, while the cache may not show it yet under load; a merge patch
// from a stale base leaves out what the stale base and the new status
// share. Seen at a thousand AppGroups: a restart's progress, written, then
// cleared against a cache that had not seen it written, stayed in the API
// (and the rollout with it) until the next unchanged-status write.
func patchBase(cached *ferryv1.ProcessPool, last ferryv1.ProcessPoolStatus, stored bool) *ferryv1.ProcessPool {
	base := cached.DeepCopy()
	if stored {
		base.Status = *last.DeepCopy()
	}
	return base
}

// never is an untilListen of nextWake's when no port waits to be tried.
const never = time.Duration(math.MaxInt64)

// nextWake is how long the reporter sleeps unless the pool changes: the
// backoff after a failed write; else until the figures are due again, one
// stats interval after the last write, or one from now when they were due
// and had not moved (not at once: nothing would have moved since); no
// longer than untilListen, when a port that could not be opened is due to
// be tried again (a taken port must not wait out a long stats interval);
// never less than the coalescing delay.
func nextWake(sinceWrite, stats, backoff, untilListen time.Duration) time.Duration {
	wait := backoff
	if wait <= 0 {
		wait = stats - sinceWrite
		if wait <= 0 {
			wait = stats
		}
	}
	return max(min(wait, untilListen), coalesce)
}
