package pool_test

import (
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ferry-dev/ferry/agent/internal/agenttest"
	"github.com/ferry-dev/ferry/agent/pool"
	ferryv1 "github.com/ferry-dev/ferry/api/v1alpha1"
	"github.com/ferry-dev/ferry/bench/loadgen"
	"github.com/ferry-dev/ferry/controllers/contract"
)

// retriedUntil is what the conditions say of spawns that fail: the pool
// tries them again for as long as the revision is the one asked for.
const retriedUntil = "until one works or another revision is requested"

// TestRevisionThatBootsAndDiesInACluster: in a cluster (no
// ResistEarlyCrashes: the manager's crash window returns a node to what
// worked), a rolling restart to a revision whose processes are ready and
// then die goes through: each step waits only for its new process to be
// ready, so the restart replaces every old process and completes, with
// no step retried. Its processes then die: the pool spawns none of the
// revision for the manager's return, up to the crash window (none comes
// here), then respawns them with a backoff that grows to a minute and no
// further, for as long as the revision is the one asked for, as its
// ScalingError says. It never
// resists, never holds more than size+1 processes, and answers every
// request from a live process, or with 502 (the process died in it) or
// 503 (none is up: it backs off). Another revision ends it.
func TestRevisionThatBootsAndDiesInACluster(t *testing.T) {
	e, book, good, bad := startBootDie(t, "t/bootdie-cluster", false)
	old := pids(e.Pool.Status())
	stop := load(t, e.URL, 3)
	inv := watch(e)
	cfg := pool.Config{Name: "t/bootdie-cluster", Revision: "2", Template: bad}
	e.Pool.Update(cfg)

	done := e.WaitFor(t, time.Minute, "the restart over", func(s pool.Status) bool { return s.LastRestart != nil && s.Restart == nil })
	if lr := done.LastRestart; lr.Outcome != pool.OutcomeCompleted || lr.Replaced != 3 || lr.Total != 3 || lr.Failed != 0 {
		t.Errorf("last restart = %+v, want completed, 3 of 3 replaced: each step waits only for ready", *lr)
	}
	backoffs := crashBackoffs(t, book)
	if len(backoffs) < 2 || !slices.IsSorted(backoffs) {
		t.Errorf("backoffs after the crashes: %v, want them growing, up to a minute", backoffs)
	}
	failing := e.WaitFor(t, time.Minute, "a scaling error of revision 2", func(s pool.Status) bool { return s.ScalingError != nil })
	if se := failing.ScalingError; se.Revision != "2" || !contract.DiedAfterReadyIn(se.Reason) {
		t.Errorf("scaling error %+v, want revision 2's processes dying soon after they were ready (contract.DiedAfterReadyIn)", *se)
	}
	if wait := time.Until(failing.ScalingRetryAt.Time); wait > time.Minute {
		t.Errorf("next attempt in %s, want a minute at most", wait)
	}
	if c := condition(failing, ferryv1.ConditionScalingError); c.Status != metav1.ConditionTrue || !strings.Contains(c.Message, retriedUntil) {
		t.Errorf("ScalingError = %s %q, want True, saying it is retried %s", c.Status, c.Message, retriedUntil)
	}
	if failing.RevisionLasted || failing.LastSpawnError == nil || failing.LastSpawnError.Revision != "2" {
		t.Errorf("revision lasted %v, last spawn error %+v; want not lasted, revision 2's error", failing.RevisionLasted, failing.LastSpawnError)
	}
	for _, pid := range pids(failing) {
		if slices.Contains(old, pid) {
			t.Errorf("old pid %d is still in the pool: %v", pid, pids(failing))
		}
	}
	res := stop()
	inv.end()
	answeredByThePool(t, inv, res, http.StatusBadGateway, http.StatusServiceUnavailable)
	if inv.resisted {
		t.Error("the pool resisted: in a cluster, the manager returns the node instead")
	}

	cfg.Revision, cfg.Template = "3", good
	e.Pool.Update(cfg)
	fixed := e.WaitFor(t, time.Minute, "revision 3 serving", func(s pool.Status) bool { return agenttest.Ready(3)(s) && s.Revision == "3" })
	if fixed.ScalingError != nil {
		t.Errorf("revision 3 serves, yet the scaling error stays: %+v", *fixed.ScalingError)
	}
}

// crashBackoffs reads the backoff of each step of "Worker crashed soon
// after it was ready" lines (the first line of each: the crashes of a
// round share its step, and back off what is left of it) until one backs
// off a minute, the bound. The crashes that hold the revision's spawns
// for the manager's return (holdFor, from the second round) are no step
// of it, and hold no longer than the crash window; they are all of one
// step, the hold's (once a loop: a hold per round would show at the
// third).
func crashBackoffs(t *testing.T, book *agenttest.Logbook) []time.Duration {
	t.Helper()
	var out []time.Duration
	last, holdStep := 0, 0
	for n := 1; len(out) == 0 || out[len(out)-1] < time.Minute; n++ {
		if n > 40 {
			t.Fatalf("40 crashes backed off %v, none a minute", out)
		}
		l := book.WaitForN(t, logCrashed, n)[n-1]
		if v, found := l.Value("holdFor"); found > 0 {
			if d, err := time.ParseDuration(v.(string)); err != nil || d > 10*time.Second {
				t.Fatalf("a crash held spawns for %v (%v); want a hold of the crash window (10s) at most", v, err)
			}
			step, _ := l.Value("step")
			if holdStep == 0 {
				holdStep = step.(int)
			} else if step.(int) != holdStep {
				t.Errorf("a crash of step %v held spawns again, after the hold of step %d: want one hold a loop", step, holdStep)
			}
			continue
		}
		v, _ := l.Value("backoff")
		d, err := time.ParseDuration(v.(string))
		if err != nil || d > time.Minute {
			t.Fatalf("a crash backed off %v (%v), want a duration of a minute at most", v, err)
		}
		if step, _ := l.Value("step"); step.(int) > last {
			last = step.(int)
			out = append(out, d)
		}
	}
	return out
}

// answeredByThePool checks that every answer to res came from a process
// the pool showed, and that every failure has one of the statuses given.
func answeredByThePool(t *testing.T, inv *invariants, res *loadgen.Result, failures ...int) {
	t.Helper()
	if s := inv.strangers(res); len(s) > 0 {
		t.Errorf("answers came from pids %v, which the pool never showed", s)
	}
	for _, r := range res.Records {
		if !r.OK() && !slices.Contains(failures, r.Status) {
			t.Fatalf("a request failed as %s (status %d, %q), want only %v", r.Kind, r.Status, r.Err, failures)
		}
	}
	if inv.maxLive > 4 {
		t.Errorf("the pool held %d processes, want at most size+1 = 4", inv.maxLive)
	}
}

// TestRestartStepRetriedWhileTheRevisionServes: a step whose spawn fails
// while a process of the new revision serves is a scaling error, not a
// deployment error: the old process stays, and the step is retried with a
// growing backoff for as long as the revision is the one asked for, which
// RollingRestart and ScalingError say. Another revision ends it.
func TestRestartStepRetriedWhileTheRevisionServes(t *testing.T) {
	good := flaky(t, 3, 3, "")
	bad := flaky(t, 3, 3, "", env("FAIL_FROM", "2")) // its first spawn works, no other
	book := agenttest.NewLogbook(t)
	log := book.Logger()
	cfg := pool.Config{Name: "t/stepretried", Revision: "1", Template: good}
	e := agenttest.Start(t, cfg, agenttest.Options{Tick: 50 * time.Millisecond, Log: &log})
	e.WaitFor(t, time.Minute, "3 ready workers", agenttest.Ready(3))
	stop := load(t, e.URL, 3)
	inv := watch(e)
	cfg.Revision, cfg.Template = "2", bad
	e.Pool.Update(cfg)

	var backoffs []string
	for _, l := range book.WaitForN(t, "Spawn failed; backing off", 3) {
		kind, _ := l.Value("kind")
		backoff, _ := l.Value("backoff")
		if kind != pool.SpawnRestart {
			t.Errorf("a %v spawn failed, want only the restart's", kind)
		}
		backoffs = append(backoffs, backoff.(string))
	}
	if !slices.Equal(backoffs[:3], []string{"1s", "2s", "4s"}) {
		t.Errorf("the step backed off %v, want 1s, 2s, 4s", backoffs)
	}
	s := e.WaitFor(t, time.Minute, "the third failure reported", func(s pool.Status) bool { return s.ScalingFailures >= 3 })
	if s.Restart == nil || s.Restart.Done != 1 || s.Resisting != nil || s.Counts.Ready != 3 || s.Counts.Updated != 1 {
		t.Errorf("restart %+v, resisting %+v, counts %+v; want the restart at 1 of 3, not resisting, 2 old and 1 new serving",
			s.Restart, s.Resisting, s.Counts)
	}
	if c := condition(s, ferryv1.ConditionRollingRestart); c.Status != metav1.ConditionTrue || !strings.Contains(c.Message, retriedUntil) {
		t.Errorf("RollingRestart = %s %q, want True, saying its spawns are retried %s", c.Status, c.Message, retriedUntil)
	}
	res := stop()
	inv.end()
	answeredByThePool(t, inv, res)

	cfg.Revision, cfg.Template = "3", good
	e.Pool.Update(cfg)
	fixed := e.WaitFor(t, time.Minute, "revision 3 rolled out", func(s pool.Status) bool {
		return agenttest.Ready(3)(s) && s.LastRestart != nil && s.LastRestart.Revision == "3"
	})
	if fixed.ScalingError != nil || fixed.LastRestart.Outcome != pool.OutcomeCompleted {
		t.Errorf("after revision 3: scaling error %+v, last restart %+v; want none, completed", fixed.ScalingError, *fixed.LastRestart)
	}
}

// TestRestartStepOfARevisionThatServesThenDies: a step whose spawn fails
// while the revision's first process serves is retried (a scaling
// error); once that process has died too, the next failure is a
// deployment error after all, and the pool resists it. Its scaling error
// goes then: nothing will spawn the resisted revision again, so nothing
// would clear it, and its backoff would hold up the replacements of the
// revision resisted from.
func TestRestartStepOfARevisionThatServesThenDies(t *testing.T) {
	good := flaky(t, 3, 3, "")
	bad := flaky(t, 3, 3, "", env("FAIL_FROM", "2"), env("DIE_AFTER", "3"))
	cfg := pool.Config{Name: "t/stepdies", Revision: "1", Template: good}
	e := agenttest.Start(t, cfg, agenttest.Options{Tick: 50 * time.Millisecond})
	e.WaitFor(t, time.Minute, "3 ready workers", agenttest.Ready(3))
	stop := load(t, e.URL, 3)
	inv := watch(e)
	cfg.Revision, cfg.Template = "2", bad
	e.Pool.Update(cfg)

	retried := e.WaitFor(t, time.Minute, "the step retried", func(s pool.Status) bool { return s.ScalingError != nil })
	if retried.Restart == nil || retried.Resisting != nil || retried.ScalingError.Revision != "2" {
		t.Errorf("restart %+v, resisting %+v, scaling error %+v; want the restart retrying revision 2's step",
			retried.Restart, retried.Resisting, retried.ScalingError)
	}
	back := e.WaitFor(t, time.Minute, "resistance, 3 ready of revision 1", func(s pool.Status) bool {
		return s.Resisting != nil && s.Counts.Ready == 3 && s.Counts.Total == 3 &&
			!slices.ContainsFunc(s.Processes, func(p ferryv1.ProcessInfo) bool { return p.Revision != "1" })
	})
	if back.Resisting.Revision != "2" || back.ScalingError != nil {
		t.Errorf("resisting %+v, scaling error %+v; want revision 2 resisted, no scaling error", *back.Resisting, back.ScalingError)
	}
	if lr := back.LastRestart; lr == nil || lr.Outcome != pool.OutcomeResisting || lr.Replaced != 1 {
		t.Errorf("last restart = %+v, want resisting after 1 replaced", lr)
	}
	res := stop()
	inv.end()
	answeredByThePool(t, inv, res, http.StatusBadGateway)
}
