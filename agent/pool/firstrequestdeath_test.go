package pool_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/funcr"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ferry-dev/ferry/agent/internal/agenttest"
	"github.com/ferry-dev/ferry/agent/pool"
	ferryv1 "github.com/ferry-dev/ferry/api/v1alpha1"
	"github.com/ferry-dev/ferry/bench/loadgen"
	"github.com/ferry-dev/ferry/internal/testsupport"
)

// A revision that loads, is ready, and dies on its first request (the
// day-2 walk's os._exit(7) in application), rolled out under load. The
// old processes are retired as soon as the new ones are ready, before any
// has served; the new ones then die in their first requests. What a
// client sees until the node serves the old revision again must be at
// most the requests the dying processes were handling (502): no request
// may be refused with 503 for want of a process.

// TestDiesOnFirstRequestReturnedNodeFailsNoRequest: in a cluster
// (ResistEarlyCrashes off), the manager returns the node to the old
// revision (NodeReturned) once the pool reports the new one failing:
// here, a stand-in manager does, by asking for revision 1 again. Once
// its workers die young the pool awaits that return: it makes no worker
// of revision 2 ready (each would take a waiting request and die in it:
// a 502 more), and a rolling restart still under way replaces no more
// old workers.
func TestDiesOnFirstRequestReturnedNodeFailsNoRequest(t *testing.T) {
	e, book, good, bad := startDiesOnRequest(t, "t/firstreq-returned", false)
	stop := load(t, e.URL, 3)
	waitRequests(t, e, 100)
	returned := standInManager(t, e, "2", pool.Config{Name: "t/firstreq-returned", Revision: "1", Template: good})
	e.Pool.Update(pool.Config{Name: "t/firstreq-returned", Revision: "2", Template: bad})
	select {
	case <-returned:
	case <-time.After(2 * time.Minute):
		t.Fatalf("the pool did not report within 2m what the manager returns a node on (FailsTarget); status: %+v", e.Pool.Status())
	}
	backOnRevision1(t, e)
	res := stop()
	noRequestRefused(t, res)
	ready := noSpawnOfRevisionOnceHeld(t, book, "2")
	failed := 0
	for _, r := range res.Records {
		if !r.OK() {
			failed++
		}
	}
	if failed > ready {
		t.Errorf("%d requests failed, more than the %d workers of revision 2 made ready: each dies in its one request", failed, ready)
	}
}

// TestDiesOnFirstRequestOfAProvenRevisionIsNotHeld: of a revision the
// manager holds proven (it ran rolled out on another node), no return
// comes (returnsFromTarget): the pool backs off and respawns it, as for
// any crash loop, rather than hold its spawns.
func TestDiesOnFirstRequestOfAProvenRevisionIsNotHeld(t *testing.T) {
	e, book, _, bad := startDiesOnRequest(t, "t/firstreq-proven", false)
	stop := load(t, e.URL, 3)
	waitRequests(t, e, 100)
	e.Pool.Update(pool.Config{Name: "t/firstreq-proven", Revision: "2", Template: bad, Proven: true})
	book.WaitFor(t, "Worker crashed soon after it was ready, as good as a failed spawn")
	testsupport.Eventually(t, 2*time.Minute, "a worker of revision 2 spawned after the first crash", func() error {
		if n := spawnedAfter(book, logCrashed, "2"); n == 0 {
			return errors.New("none yet")
		}
		return nil
	})
	stop()
	if l := book.Find(logHeld); len(l) > 0 {
		t.Errorf("the pool held the spawns of revision 2, proven: %+v", l[0])
	}
}

// TestAProvenMarkEndsTheHold: a revision the manager comes to hold
// proven while the pool holds its spawns for a return (another node of the
// wave proved it meanwhile: no return will come) is held no more: its
// next spawn is its backoff's, not the hold's end. Found by review: the
// hold, stored in the backoff, outlived the mark, and requests were
// refused until then.
func TestAProvenMarkEndsTheHold(t *testing.T) {
	e, book, _, bad := startDiesOnRequest(t, "t/firstreq-provenlater", false)
	stop := load(t, e.URL, 3)
	waitRequests(t, e, 100)
	cfg := pool.Config{Name: "t/firstreq-provenlater", Revision: "2", Template: bad}
	e.Pool.Update(cfg)
	book.WaitFor(t, logHeld)
	stop() // no more deaths: the backoff stays as the hold found it
	held := e.Pool.Status()
	cfg.Proven = true
	e.Pool.Update(cfg)
	after := e.Pool.Status()
	if held.ScalingRetryAt == nil || after.ScalingRetryAt == nil || !after.ScalingRetryAt.Before(held.ScalingRetryAt) {
		t.Errorf("next attempt at %v while held, %v once proven: want it earlier, the hold over", held.ScalingRetryAt, after.ScalingRetryAt)
	}
}

// noSpawnOfRevisionOnceHeld checks that the pool held the spawns of
// revision for the manager's return (from its second round of young
// crashes: the first round's replacements are not held), and made no
// worker of it ready after that; it returns how many it made ready in all.
func noSpawnOfRevisionOnceHeld(t *testing.T, book *agenttest.Logbook, revision string) (ready int) {
	t.Helper()
	if len(book.Find(logHeld)) == 0 {
		t.Errorf("no %q line: the pool never held the spawns of revision %s", logHeld, revision)
	}
	if n := spawnedAfter(book, logHeld, revision); n > 0 {
		t.Errorf("%d workers of revision %s made ready once the pool held its spawns for the manager's return", n, revision)
	}
	return spawnedAfter(book, "", revision)
}

// spawnedAfter counts the workers of revision made ready after the first
// line that begins with prefix ("": from the first line).
func spawnedAfter(book *agenttest.Logbook, prefix, revision string) int {
	n, seen := 0, prefix == ""
	for _, e := range book.Find("") {
		seen = seen || strings.HasPrefix(e.Msg, prefix)
		if v, _ := e.Value("revision"); seen && e.Msg == "Spawned worker" && v == revision {
			n++
		}
	}
	return n
}

// managerRoundTrip is how long the manager's return takes on the local
// stack once the agent reports a pool failing its revision: the report's
// write, the manager's pass and its patch of the pool's spec, the agent's
// watch; about a second. The stand-in takes as long, so that the pool
// has as wide a window to bridge as in a cluster.
const managerRoundTrip = time.Second

// reportCoalesce is the agent's reporter's wait after a change before it
// reads the pool's status (agent/cluster's coalesce): a state that lasts
// less may never be written, nor seen by the manager.
const reportCoalesce = 100 * time.Millisecond

// standInManager stands in for the agent's reporter and the manager:
// once the pool's status, read as the reporter reads it (reported), shows
// what the manager returns a node on (failsTarget of target), it asks for
// back managerRoundTrip later, as the manager's return does
// (returnsFromTarget: an AppGroup that resists deployment errors, a
// target that has run on no node yet). The channel is closed once it has.
func standInManager(t *testing.T, e *agenttest.Env, target string, back pool.Config) <-chan struct{} {
	returned, stopped := make(chan struct{}), make(chan struct{})
	ctx := t.Context()
	t.Cleanup(func() { <-stopped })
	go func() {
		defer close(stopped)
		if !reported(ctx, e, func(s pool.Status) bool { return failsTarget(s, target) }) {
			return
		}
		t.Logf("%s the pool reports it fails revision %s: returning it to %s", time.Now().Format("15:04:05.000"),
			target, back.Revision)
		if !pause(ctx, managerRoundTrip) {
			return
		}
		e.Pool.Update(back)
		close(returned)
	}()
	return returned
}

// reported waits until the pool's status, read as the agent's reporter
// reads it (at each change, once coalesced), satisfies cond; false if
// ctx ends first.
func reported(ctx context.Context, e *agenttest.Env, cond func(pool.Status) bool) bool {
	for {
		ch := e.Pool.Changed()
		if cond(e.Pool.Status()) {
			return true
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return false
		}
		if !pause(ctx, reportCoalesce) {
			return false
		}
	}
}

// pause waits d; false if ctx ends first.
func pause(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// failsTarget is the manager's FailsTarget (assessPool,
// controllers/waves.go) of the report the agent writes from s
// (agent/cluster's desiredStatus): on target, not resisting, no process
// of it, and its spawns fail (ScalingError, the last spawn error of it).
func failsTarget(s pool.Status, target string) bool {
	conds := s.Conditions(time.Now())
	return s.Revision == target && !meta.IsStatusConditionTrue(conds, ferryv1.ConditionResistingDeploymentError) &&
		s.Counts.Updated == 0 && meta.IsStatusConditionTrue(conds, ferryv1.ConditionScalingError) &&
		s.LastSpawnError != nil && s.LastSpawnError.Revision == target
}

// TestDiesOnFirstRequestNotReturnedIsRefusedAgain: the wait for a return
// is bounded. With no return (a manager away), the pool spawns the
// revision again once the crash window from its second round of crashes
// (the hold's) has passed, holds no later round (crashBackoffs checks
// that, in TestRevisionThatBootsAndDiesInACluster), and a request is
// refused with 503 while it backs off, rather than queue until
// queueTimeout.
func TestDiesOnFirstRequestNotReturnedIsRefusedAgain(t *testing.T) {
	e, _, _, bad := startDiesOnRequest(t, "t/firstreq-kept", false)
	bad.Pool.QueueTimeout = &metav1.Duration{Duration: 10 * time.Minute}
	e.Pool.Update(pool.Config{Name: "t/firstreq-kept", Revision: "2", Template: bad})
	client := &http.Client{Timeout: 5 * time.Minute}
	testsupport.Eventually(t, 2*time.Minute, "a request refused with 503", func() error {
		res, err := client.Get(e.URL + "/")
		if err != nil {
			return err
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != http.StatusServiceUnavailable {
			return fmt.Errorf("%d %q", res.StatusCode, body)
		}
		return nil
	})
}

// TestDiesOnFirstRequestResistedFailsNoRequest: standalone
// (ResistEarlyCrashes on), the pool resists the revision at its second
// death and spawns the old one.
func TestDiesOnFirstRequestResistedFailsNoRequest(t *testing.T) {
	e, _, _, bad := startDiesOnRequest(t, "t/firstreq-resisted", true)
	stop := load(t, e.URL, 3)
	waitRequests(t, e, 100)
	e.Pool.Update(pool.Config{Name: "t/firstreq-resisted", Revision: "2", Template: bad})
	e.WaitFor(t, time.Minute, "resistance to 2", func(s pool.Status) bool { return s.Resisting != nil })
	backOnRevision1(t, e)
	noRequestRefused(t, stop())
}

// startDiesOnRequest runs three workers of testdata/bootdie as revision
// 1, logging with timestamps to the test and to book, and returns its
// template, good, and bad, whose processes are ready and die in every
// request.
func startDiesOnRequest(t *testing.T, name string, resist bool) (e *agenttest.Env, book *agenttest.Logbook, good, bad ferryv1.AppTemplate) {
	t.Helper()
	root, _ := filepath.Abs("testdata/bootdie")
	flag := dieFlag(t)
	if err := os.WriteFile(flag, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	good = agenttest.WSGIAt(root, 3, 3)
	bad = agenttest.WSGIAt(root, 3, 3, env("DIE_IN_REQUEST_IF_EXISTS", flag))
	book = agenttest.NewLogbook(t)
	log := book.Over(stampedLogger(t))
	e = agenttest.Start(t, pool.Config{Name: name, Revision: "1", Template: good},
		agenttest.Options{Tick: 50 * time.Millisecond, ResistEarlyCrashes: resist, Log: &log})
	e.WaitFor(t, time.Minute, "3 ready workers", agenttest.Ready(3))
	return e, book, good, bad
}

// stampedLogger logs to t with the time of each line: the sequence of
// retirements, deaths and spawns is what the test shows.
func stampedLogger(t *testing.T) logr.Logger {
	return funcr.New(func(prefix, args string) { t.Log(prefix, args) },
		funcr.Options{LogTimestamp: true, TimestampFormat: "15:04:05.000"})
}

func backOnRevision1(t *testing.T, e *agenttest.Env) {
	t.Helper()
	e.WaitFor(t, time.Minute, "3 ready workers of revision 1", func(s pool.Status) bool {
		return s.Counts.Ready == 3 && !slices.ContainsFunc(s.Processes, func(p ferryv1.ProcessInfo) bool { return p.Revision != "1" })
	})
	waitRequests(t, e, 100)
}

// noRequestRefused fails for every request that got another answer than
// 200 or 502 (the one a process died in), and logs all non-200 ones.
func noRequestRefused(t *testing.T, res *loadgen.Result) {
	t.Helper()
	by := map[int]int{}
	var first, last time.Duration
	for _, r := range res.Records {
		if r.OK() {
			continue
		}
		by[r.Status]++
		if first == 0 {
			first = r.Start
		}
		last = r.End
	}
	t.Logf("%d requests; not 200, by status: %v, from %s to %s after the load began (%s)", len(res.Records), by,
		res.Start.Add(first).Format("15:04:05.000"), res.Start.Add(last).Format("15:04:05.000"), (last - first).Round(time.Millisecond))
	for status, n := range by {
		if status != 502 {
			t.Errorf("%d requests failed with status %d, want none but the 502s of the requests the dying processes were handling", n, status)
		}
	}
}
