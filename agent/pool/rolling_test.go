package pool_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ferry-dev/ferry/agent/internal/agenttest"
	"github.com/ferry-dev/ferry/agent/pool"
	ferryv1 "github.com/ferry-dev/ferry/api/v1alpha1"
	"github.com/ferry-dev/ferry/bench/loadgen"
	"github.com/ferry-dev/ferry/internal/testsupport"
)

func env(name, value string) ferryv1.EnvVar { return ferryv1.EnvVar{Name: name, Value: value} }

// load runs continuous keep-alive load against url until stop is called,
// which returns the result.
func load(t *testing.T, url string, clients int) (stop func() *loadgen.Result) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var res *loadgen.Result
	var err error
	done := make(chan struct{})
	go func() {
		defer close(done)
		res, err = loadgen.Run(ctx, loadgen.Config{URLs: []string{url + "/"}, Clients: clients, Timeout: time.Minute})
	}()
	// A test that fails before it calls stop must not leave the load
	// running into the tests after it (cleanups run last-in first-out:
	// before the pool's).
	t.Cleanup(func() { cancel(); <-done })
	return func() *loadgen.Result {
		cancel()
		<-done
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
}

// waitRequests waits until the pool's workers served n requests in all.
func waitRequests(t *testing.T, e *agenttest.Env, n int64) {
	t.Helper()
	e.WaitFor(t, time.Minute, "requests to flow", func(s pool.Status) bool {
		var total int64
		for _, p := range s.Processes {
			total += p.Processed
		}
		return total >= n
	})
}

// running counts s's processes that run: spawning (no pid yet), or whose
// process is neither gone nor a zombie (testsupport.Running). A worker
// found dead (it refused a connection: exited, not yet reaped) stays in
// the pool's list until its exit is handled, while its replacement is
// spawned at once; it holds nothing. Counted, three workers of a revision
// that dies together made a size-3 pool "hold 6" in one CI run.
func running(s pool.Status) int32 {
	var n int32
	for _, p := range s.Processes {
		if p.PID == 0 || testsupport.Running(int(p.PID)) {
			n++
		}
	}
	return n
}

func pids(s pool.Status) []int {
	var out []int
	for _, p := range s.Processes {
		out = append(out, int(p.PID))
	}
	slices.Sort(out)
	return out
}

// invariants samples the pool at every change of state while a test runs.
type invariants struct {
	mu       sync.Mutex
	minReady int32
	// maxLive is the most processes the pool held that run (running).
	maxLive    int32
	samples    int
	stop       chan struct{}
	done       chan struct{}
	sawRestart bool
	// marked counts the samples of a restart replacing a worker; badMark
	// says how the first wrong one marked it (passenger-status's "Rolling
	// restarting..." must be on that worker alone).
	marked  int
	badMark string
	// seen are the pids the samples showed; resisted, that one showed the
	// pool resisting.
	seen     map[int]bool
	resisted bool
}

func watch(e *agenttest.Env) *invariants {
	inv := &invariants{minReady: 1 << 30, stop: make(chan struct{}), done: make(chan struct{}), seen: map[int]bool{}}
	go func() {
		defer close(inv.done)
		for {
			ch := e.Pool.Changed()
			s := e.Pool.Status()
			inv.mu.Lock()
			inv.samples++
			inv.minReady = min(inv.minReady, s.Counts.Ready)
			inv.maxLive = max(inv.maxLive, running(s))
			inv.sawRestart = inv.sawRestart || s.Restart != nil
			inv.resisted = inv.resisted || s.Resisting != nil
			for _, pid := range pids(s) {
				if pid != 0 {
					inv.seen[pid] = true
				}
			}
			inv.checkMark(s)
			inv.mu.Unlock()
			select {
			case <-ch:
			case <-inv.stop:
				return
			}
		}
	}()
	return inv
}

// checkMark checks, while a restart replaces a worker, that exactly that
// worker, of an older revision, is marked as being replaced.
func (inv *invariants) checkMark(s pool.Status) {
	if s.Restart == nil || s.Restart.ReplacingPID == 0 {
		return
	}
	inv.marked++
	var marked []int32
	for _, p := range s.Processes {
		if p.Replacing {
			marked = append(marked, p.PID)
			if p.Revision == s.Restart.Revision && inv.badMark == "" {
				inv.badMark = fmt.Sprintf("pid %d of the new revision %s is marked", p.PID, p.Revision)
			}
		}
	}
	if inv.badMark == "" && (len(marked) != 1 || marked[0] != s.Restart.ReplacingPID) {
		inv.badMark = fmt.Sprintf("replacing pid %d, but marked %v", s.Restart.ReplacingPID, marked)
	}
}

func (inv *invariants) end() {
	close(inv.stop)
	<-inv.done
}

// strangers are the pids that answered requests of res but that no sample
// showed in the pool: none, when every answer came from one of its live
// processes, old or new.
func (inv *invariants) strangers(res *loadgen.Result) []int {
	var out []int
	for _, r := range res.Records {
		if r.OK() && !inv.seen[r.PID] && !slices.Contains(out, r.PID) {
			out = append(out, r.PID)
		}
	}
	return out
}

// TestRollingRestartUnderLoad is the seed's zero-downtime restart: 4
// workers of an app that takes 2 s to boot, replaced one at a time under
// 16 keep-alive clients. No request may fail, capacity may never drop below
// 4 ready workers, the pool may never hold more than 5, every answer comes
// from an old or a new worker, and no old worker is left.
func TestRollingRestartUnderLoad(t *testing.T) {
	tmpl := agenttest.WSGI("hello-wsgi", 4, 4, env("BOOT_DELAY", "2"), env("REQUEST_DELAY_MS", "5"))
	e := agenttest.Start(t, pool.Config{Name: "t/rolling", Revision: "1", Template: tmpl}, agenttest.Options{})
	before := e.WaitFor(t, 2*time.Minute, "4 ready workers", agenttest.Ready(4))
	oldPIDs := pids(before)

	stop := load(t, e.URL, 16)
	waitRequests(t, e, 200)
	inv := watch(e)
	e.Pool.Update(pool.Config{Name: "t/rolling", Revision: "2", Template: tmpl})
	after := e.WaitFor(t, 2*time.Minute, "4 ready workers on revision 2", func(s pool.Status) bool {
		return agenttest.Ready(4)(s) && s.Revision == "2" && s.LastRestart != nil
	})
	// Keep the load on a little longer so answers after the restart count.
	waitRequests(t, e, after.Processes[0].Processed+50)
	inv.end()
	res := stop()
	rep := res.Report()

	if rep.Failed != 0 {
		t.Errorf("%d requests failed during the rolling restart: %v (first: %v)", rep.Failed, rep.FailedByKind, rep.FirstFailure)
	}
	newPIDs := pids(after)
	for _, pid := range newPIDs {
		if slices.Contains(oldPIDs, pid) {
			t.Errorf("old pid %d still serves after the restart (old %v, new %v)", pid, oldPIDs, newPIDs)
		}
	}
	for _, r := range res.Records {
		if r.OK() && !slices.Contains(oldPIDs, r.PID) && !slices.Contains(newPIDs, r.PID) {
			t.Fatalf("a response came from pid %d, neither old %v nor new %v", r.PID, oldPIDs, newPIDs)
		}
	}
	if !inv.sawRestart {
		t.Error("no sample saw the restart under way")
	}
	if inv.minReady < 4 {
		t.Errorf("ready workers dropped to %d during the restart, want never below 4 (%d samples)", inv.minReady, inv.samples)
	}
	if inv.maxLive > 5 {
		t.Errorf("the pool held %d workers, want at most size+1 = 5", inv.maxLive)
	}
	if inv.marked == 0 || inv.badMark != "" {
		t.Errorf("the worker being replaced was marked wrong (%d samples replacing one): %s", inv.marked, inv.badMark)
	}
	if lr := after.LastRestart; lr.Outcome != pool.OutcomeCompleted || lr.Replaced != 4 || lr.Total != 4 {
		t.Errorf("last restart = %+v, want 4/4 replaced, completed", *lr)
	}
	for _, p := range after.Processes {
		if p.Revision != "2" {
			t.Errorf("pid %d runs revision %q, want 2", p.PID, p.Revision)
		}
	}
	t.Logf("requests %d, failed %d, longest gap %s, max latency %s, pids %v -> %v, %d samples",
		rep.Requests, rep.Failed, rep.LongestGap.Length, rep.MaxLatency, oldPIDs, newPIDs, inv.samples)
}

// TestBlockingRestart: the Blocking strategy stops every worker and spawns
// anew; requests wait in the queue meanwhile and none fails.
func TestBlockingRestart(t *testing.T) {
	tmpl := agenttest.WSGI("hello-wsgi", 2, 2, env("BOOT_DELAY", "1"))
	tmpl.Restart.Strategy = ferryv1.RestartBlocking
	e := agenttest.Start(t, pool.Config{Name: "t/blocking", Revision: "1", Template: tmpl}, agenttest.Options{})
	before := pids(e.WaitFor(t, time.Minute, "2 ready workers", agenttest.Ready(2)))
	stop := load(t, e.URL, 4)
	waitRequests(t, e, 50)
	inv := watch(e)
	e.Pool.Update(pool.Config{Name: "t/blocking", Revision: "2", Template: tmpl})
	after := e.WaitFor(t, time.Minute, "2 ready workers on revision 2", func(s pool.Status) bool {
		return agenttest.Ready(2)(s) && s.LastRestart != nil
	})
	waitRequests(t, e, after.Processes[0].Processed+20)
	inv.end()
	rep := stop().Report()
	if rep.Failed != 0 {
		t.Errorf("%d requests failed in a blocking restart: %v", rep.Failed, rep.FailedByKind)
	}
	if inv.minReady != 0 {
		t.Errorf("a blocking restart kept %d workers serving; it stops them all", inv.minReady)
	}
	for _, pid := range pids(after) {
		if slices.Contains(before, pid) {
			t.Errorf("old pid %d survived", pid)
		}
	}
	if lr := after.LastRestart; lr.Strategy != ferryv1.RestartBlocking || lr.Outcome != pool.OutcomeCompleted ||
		lr.Replaced != 2 || lr.Total != 2 || lr.Failed != 0 {
		t.Errorf("last restart %+v, want a blocking one completed, 2 of 2 replaced", *lr)
	}
	t.Logf("blocking restart: longest gap %s (the boot time), max latency %s", rep.LongestGap.Length, rep.MaxLatency)
}

// TestBlockingRestartToARevisionAskedForMidWay: a revision asked for while
// a blocking restart stops the old workers is what it spawns, and its
// summary is of that revision: the restart serves the newest request, as
// a rolling one does once it rolls on (a summary of a revision asked for
// again since the restart last looked is not written: finishRestart).
// Its log line says so: 3 is what it spawned, not a revision asked for
// again since (askedAgain false), as it would say were the restart's
// last look (rs.asked) not taken as it spawns.
func TestBlockingRestartToARevisionAskedForMidWay(t *testing.T) {
	gate := gatePath(t)
	root, _ := filepath.Abs("testdata/bootdie")
	tmpl := agenttest.WSGIAt(root, 1, 1, env("GATE", gate))
	tmpl.Restart.Strategy = ferryv1.RestartBlocking
	book := agenttest.NewLogbook(t)
	log := book.Logger()
	e := agenttest.Start(t, pool.Config{Name: "t/blockingmid", Revision: "1", Template: tmpl}, agenttest.Options{Log: &log})
	e.WaitFor(t, time.Minute, "1 ready worker", agenttest.Ready(1))
	held := agenttest.GetLater(e.URL + "/gate") // the old worker's stop waits for it
	e.WaitFor(t, 30*time.Second, "the request in the app", func(pool.Status) bool { return reached(gate) })
	e.Pool.Update(pool.Config{Name: "t/blockingmid", Revision: "2", Template: tmpl})
	e.WaitFor(t, 30*time.Second, "the blocking restart under way", func(s pool.Status) bool { return s.Restart != nil })
	e.Pool.Update(pool.Config{Name: "t/blockingmid", Revision: "3", Template: tmpl})
	touch(t, gate)
	if a := <-held; a.Err != nil || a.Code != http.StatusOK {
		t.Fatalf("the request held through the restart: %d %v, want 200", a.Code, a.Err)
	}
	done := e.WaitFor(t, 30*time.Second, "the restart's summary", func(s pool.Status) bool {
		return s.Restart == nil && s.LastRestart != nil
	})
	if lr := done.LastRestart; lr.Revision != "3" || lr.Outcome != pool.OutcomeCompleted || lr.Replaced != 1 || lr.Total != 1 {
		t.Errorf("last restart %+v, want revision 3's, completed, 1 of 1", *lr)
	}
	if len(done.Processes) != 1 || done.Processes[0].Revision != "3" {
		t.Errorf("processes %v at the restart's end, want one of revision 3", brief(done))
	}
	finished := book.WaitFor(t, "Finished restart")
	again, _ := finished.Value("askedAgain")
	left, _ := finished.Value("summaryLeftToNextRestart")
	if rev, _ := finished.Value("revision"); rev != "3" || again != false || left != false {
		t.Errorf("Finished restart says revision %v, askedAgain %v, summaryLeftToNextRestart %v; want 3, false, false: %v",
			rev, again, left, finished.KVs)
	}
}

// TestBlockingRestartSummaryKeptWhenAskedAgain: a blocking restart whose
// spawn fails, its revision asked for again (2, 1, 2) after it spawned
// but before it wrote its summary (restartEnding, between the two), still
// writes that summary: no restart follows (the restart stopped every old
// worker; the pool respawns the failed one as the revision), so it is the
// only summary the new request gets, and its failed spawn is what restart
// --wait reports. Before, the summary was left to a restart that never
// came: none was written, and the failure was lost.
func TestBlockingRestartSummaryKeptWhenAskedAgain(t *testing.T) {
	// Spawn 1 is revision 1's worker; every spawn after it fails: 2 is
	// the restart's, the respawns of revision 1 or 2 after it fail too,
	// so no worker of another revision is ever ready to restart.
	tmpl := flaky(t, 1, 1, "", env("FAIL_FROM", "2"))
	tmpl.Restart.Strategy = ferryv1.RestartBlocking
	done := restartAskedAgainAtItsEnd(t, "t/blockingagain", tmpl, 1)
	lr := done.LastRestart
	if lr == nil {
		t.Fatalf("no last restart once the blocking restart to 2, asked for again as it ended, is over "+
			"(processes %v): its failed spawn is lost", brief(done))
	}
	if lr.Revision != "2" || lr.Strategy != ferryv1.RestartBlocking || lr.Outcome != pool.OutcomeWithErrors ||
		lr.Replaced != 0 || lr.Total != 1 || lr.Failed != 1 || len(lr.Errors) != 1 ||
		!strings.Contains(lr.Errors[0].Reason, "RuntimeError") {
		t.Errorf("last restart = %+v, want revision 2's blocking one, completed with errors: 0 of 1 replaced, "+
			"1 failed, its RuntimeError kept", *lr)
	}
}

// TestRollingRestartSummaryKeptWhenAskedAgain: a rolling restart that
// replaced every worker, its revision asked for again (2, 1, 2) after its
// last look but before it wrote its summary, still writes it: every
// worker runs the revision, no restart follows, and the request's
// outcome is that one's. Before, no summary was written.
func TestRollingRestartSummaryKeptWhenAskedAgain(t *testing.T) {
	done := restartAskedAgainAtItsEnd(t, "t/rollingagain", flaky(t, 2, 2, ""), 2)
	lr := done.LastRestart
	if lr == nil {
		t.Fatalf("no last restart once the rolling restart to 2, asked for again as it ended, is over "+
			"(processes %v)", brief(done))
	}
	if lr.Revision != "2" || lr.Outcome != pool.OutcomeCompleted || lr.Replaced != 2 || lr.Total != 2 || lr.Failed != 0 {
		t.Errorf("last restart = %+v, want revision 2's, completed, 2 of 2 replaced", *lr)
	}
	if done.Counts.Updated != 2 || done.Counts.Ready != 2 {
		t.Errorf("counts %+v at the restart's end, want both workers ready on revision 2", done.Counts)
	}
}

// restartAskedAgainAtItsEnd starts the pool name on revision 1 of tmpl,
// waits for its ready workers, and asks for revision 2; as that restart,
// rolling or blocking as tmpl says, is about to write its summary
// (restartEnding), revision 2 is asked for again (1, then 2), once. It
// returns the pool's status once the restart is over, for the caller to
// check the summary it wrote.
func restartAskedAgainAtItsEnd(t *testing.T, name string, tmpl ferryv1.AppTemplate, ready int32) pool.Status {
	t.Helper()
	kind := "rolling"
	if tmpl.Restart.Strategy == ferryv1.RestartBlocking {
		kind = "blocking"
	}
	readyWorkers := fmt.Sprintf("%d ready workers", ready)
	if ready == 1 {
		readyWorkers = "1 ready worker"
	}
	var e *agenttest.Env
	asked := make(chan struct{})
	var once sync.Once
	pool.SetRestartEnding(t, func() {
		once.Do(func() {
			e.Pool.Update(pool.Config{Name: name, Revision: "1", Template: tmpl})
			e.Pool.Update(pool.Config{Name: name, Revision: "2", Template: tmpl})
			close(asked)
		})
	})
	e = agenttest.Start(t, pool.Config{Name: name, Revision: "1", Template: tmpl}, agenttest.Options{})
	e.WaitFor(t, time.Minute, readyWorkers, agenttest.Ready(ready))
	e.Pool.Update(pool.Config{Name: name, Revision: "2", Template: tmpl})
	select {
	case <-asked:
	case <-time.After(time.Minute):
		t.Fatalf("the %s restart did not reach its end in a minute", kind)
	}
	return e.WaitFor(t, 30*time.Second, "the restart over", func(s pool.Status) bool { return s.Restart == nil })
}

// TestRestartWaitsForARecycle: a new revision asked for while a worker is
// being recycled (its replacement still booting) does not start a second
// replacement of the same worker: the pool never holds more than size+1,
// and every worker ends on the new revision.
func TestRestartWaitsForARecycle(t *testing.T) {
	tmpl := agenttest.WSGI("hello-wsgi", 2, 2, env("BOOT_DELAY", "1"))
	tmpl.Pool.MaxRequestsPerProcess = 3
	e := agenttest.Start(t, pool.Config{Name: "t/recycle-restart", Revision: "1", Template: tmpl}, agenttest.Options{})
	e.WaitFor(t, time.Minute, "2 ready workers", agenttest.Ready(2))
	inv := watch(e)
	for range 3 { // the oldest worker takes them all and is flagged
		if resp, _ := httpGet(t, e.URL+"/"); resp.StatusCode != 200 {
			t.Fatal(resp.Status)
		}
	}
	e.WaitFor(t, time.Minute, "the recycle under way", func(s pool.Status) bool { return s.Counts.Total == 3 })
	e.Pool.Update(pool.Config{Name: "t/recycle-restart", Revision: "2", Template: tmpl})
	final := e.WaitFor(t, 2*time.Minute, "2 workers on revision 2", func(s pool.Status) bool {
		return agenttest.Ready(2)(s) && s.Revision == "2"
	})
	inv.end()
	if inv.maxLive > 3 {
		t.Errorf("the pool held %d workers, want at most size+1 = 3", inv.maxLive)
	}
	for _, p := range final.Processes {
		if p.Revision != "2" {
			t.Errorf("pid %d left on revision %s", p.PID, p.Revision)
		}
	}
}

// TestRollingRestartDrainsBeforeSignalling: the old worker finishes the
// request it holds before it is signalled. The app dies at SIGTERM on the
// spot (Python's default, as many servers do), unlike hello-wsgi, whose
// loader finishes its request on SIGTERM and so would hide a pool that
// signals at once: here only the pool's drain saves the request.
func TestRollingRestartDrainsBeforeSignalling(t *testing.T) {
	hold := filepath.Join(testsupport.SharedDir(t), "release") // the app makes release.reached there
	root, _ := filepath.Abs("testdata/abrupt")
	tmpl := agenttest.WSGIAt(root, 1, 1)
	tmpl.App = ferryv1.AppSpec{Type: ferryv1.AppTypeCommand, Root: root, Command: []string{"python3", "server.py"},
		Concurrency: 1, Env: []ferryv1.EnvVar{env("HOLD_FILE", hold)}}
	e := agenttest.Start(t, pool.Config{Name: "t/abrupt", Revision: "1", Template: tmpl}, agenttest.Options{})
	oldPID := fmt.Sprint(e.WaitFor(t, time.Minute, "1 ready worker", agenttest.Ready(1)).Processes[0].PID)

	held := agenttest.GetLater(e.URL + "/hold")
	e.WaitFor(t, time.Minute, "the request held by the worker", func(s pool.Status) bool {
		return len(s.Processes) == 1 && s.Processes[0].Sessions == 1
	})
	e.Pool.Update(pool.Config{Name: "t/abrupt", Revision: "2", Template: tmpl})
	oldState := func(s pool.Status) ferryv1.ProcessState {
		for _, p := range s.Processes {
			if fmt.Sprint(p.PID) == oldPID {
				return p.State
			}
		}
		return "" // gone
	}
	e.WaitFor(t, time.Minute, "the old worker draining (or gone)", func(s pool.Status) bool {
		st := oldState(s)
		return st == ferryv1.ProcessDraining || st == ""
	})
	// A pool that signalled without waiting would do so at once; the
	// absence of that needs a moment to pass. Meanwhile the worker must
	// still be there, draining.
	time.Sleep(time.Second)
	if st := oldState(e.Pool.Status()); st != ferryv1.ProcessDraining {
		t.Errorf("the old worker, holding a request, is %q, want Draining until the request is done", st)
	}
	if err := os.WriteFile(hold, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if a := <-held; a.Err != nil || a.Code != http.StatusOK || a.Header.Get("X-Pid") != oldPID {
		t.Errorf("the request the old worker held when the restart began: %d from pid %q (%v), want 200 from pid %s",
			a.Code, a.Header.Get("X-Pid"), a.Err, oldPID)
	}
	after := e.WaitFor(t, time.Minute, "revision 2 alone", func(s pool.Status) bool {
		return agenttest.Ready(1)(s) && s.Revision == "2" && s.LastRestart != nil
	})
	if lr := after.LastRestart; lr.Outcome != pool.OutcomeCompleted || lr.Replaced != 1 {
		t.Errorf("last restart = %+v, want 1 replaced, completed", *lr)
	}
}

// TestStoppingPoolRollsNoMore: a pool about to close (its ProcessPool
// deleted, its agent stopping: Stopping) ends a rolling restart under way
// once its step in progress is over, aborted, instead of replacing every
// worker through its drain delay and its proxy's drain: what it spawned
// would serve no one for long, and each step held the stop up. It keeps
// serving with what it has.
func TestStoppingPoolRollsNoMore(t *testing.T) {
	tmpl := agenttest.WSGI("hello-wsgi", 3, 3, env("BOOT_DELAY", "1"))
	e := agenttest.Start(t, pool.Config{Name: "t/stopping", Revision: "1", Template: tmpl}, agenttest.Options{})
	e.WaitFor(t, 2*time.Minute, "3 ready workers", agenttest.Ready(3))
	e.Pool.Update(pool.Config{Name: "t/stopping", Revision: "2", Template: tmpl})
	e.WaitFor(t, time.Minute, "the first replacement spawning", func(s pool.Status) bool {
		return s.Restart != nil && spawning(s) > 0
	})
	e.Pool.Stopping()
	after := e.WaitFor(t, 2*time.Minute, "the restart over", func(s pool.Status) bool {
		return s.LastRestart != nil && s.Restart == nil && spawning(s) == 0
	})
	if lr := after.LastRestart; lr.Outcome != pool.OutcomeAborted || lr.Replaced > 1 {
		t.Errorf("last restart = %+v, want aborted after the step under way (at most 1 replaced)", *lr)
	}
	var old int
	for _, p := range after.Processes {
		if p.Revision == "1" {
			old++
		}
	}
	if old < 2 || len(after.Processes) != 3 {
		t.Errorf("processes after the stop began: %d, %d of revision 1; want 3, at least 2 of them not replaced", len(after.Processes), old)
	}
	if resp, _ := httpGet(t, e.URL+"/"); resp.StatusCode != http.StatusOK {
		t.Errorf("a request to the stopping pool: %d, want it served", resp.StatusCode)
	}
}

func spawning(s pool.Status) int {
	n := 0
	for _, p := range s.Processes {
		if p.State == ferryv1.ProcessSpawning {
			n++
		}
	}
	return n
}

// TestRollingRestartKillsAnOldWorkerPastShutdownTimeout: the seed's
// restart waits for the old worker's requests and then for its exit; a
// worker stuck in a request (its WSGI loader finishes a request before it
// heeds SIGTERM) bounds neither wait for ever: after shutdownTimeout it
// is signalled, after another it is killed, and the restart completes.
// The stuck request is at /gate, which the test never opens, and the
// restart begins once the app has reached it (GATE.reached): the pool
// counts a session when the proxy takes the worker, before the app has
// read the request.
func TestRollingRestartKillsAnOldWorkerPastShutdownTimeout(t *testing.T) {
	root, _ := filepath.Abs("testdata/bootdie")
	gate := gatePath(t)
	tmpl := agenttest.WSGIAt(root, 1, 1, env("GATE", gate))
	tmpl.Pool.ShutdownTimeout = &metav1.Duration{Duration: time.Second}
	book := agenttest.NewLogbook(t)
	log := book.Logger()
	e := agenttest.Start(t, pool.Config{Name: "t/stuck", Revision: "1", Template: tmpl}, agenttest.Options{Log: &log})
	old := e.WaitFor(t, time.Minute, "1 ready worker", agenttest.Ready(1)).Processes[0].PID
	answered := agenttest.GetLater(e.URL + "/gate")
	e.WaitFor(t, time.Minute, "the request stuck in the app", func(s pool.Status) bool {
		return reached(gate) && len(s.Processes) == 1 && s.Processes[0].Sessions == 1
	})
	e.Pool.Update(pool.Config{Name: "t/stuck", Revision: "2", Template: tmpl})
	after := e.WaitFor(t, time.Minute, "the restart over", func(s pool.Status) bool {
		return s.LastRestart != nil && s.Restart == nil
	})
	if lr := after.LastRestart; lr.Outcome != pool.OutcomeCompleted || lr.Replaced != 1 {
		t.Errorf("last restart = %+v, want 1 of 1 replaced, completed", *lr)
	}
	if !agenttest.Ready(1)(after) || after.Processes[0].PID == old || after.Processes[0].Revision != "2" {
		t.Errorf("processes after the restart: %+v, want one new worker of revision 2", after.Processes)
	}
	if err := syscall.Kill(int(old), 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("the old worker (pid %d) still exists after the restart: %v", old, err)
	}
	book.WaitFor(t, "Worker did not finish its requests within the wait it had")
	book.WaitFor(t, "Killed worker that did not exit within shutdownTimeout")
	if a := testsupport.Receive(t, 2*time.Minute, "the stuck request answered", answered); a.Code != http.StatusBadGateway {
		t.Errorf("the stuck request got %d (%v), want 502: its worker was killed", a.Code, a.Err)
	}
	if resp, _ := httpGet(t, e.URL+"/"); resp.StatusCode != http.StatusOK {
		t.Errorf("GET / after the restart: %d", resp.StatusCode)
	}
}

// TestRollingRestartReplacesAGrownPool: a restart replaces every process
// the pool has, those traffic added above minProcesses too, not
// minProcesses of them; none of the load fails.
func TestRollingRestartReplacesAGrownPool(t *testing.T) {
	tmpl := agenttest.WSGI("hello-wsgi", 1, 3, env("REQUEST_DELAY_MS", "20"))
	e := agenttest.Start(t, pool.Config{Name: "t/grown", Revision: "1", Template: tmpl}, agenttest.Options{})
	stop := load(t, e.URL, 8)
	e.WaitFor(t, time.Minute, "3 ready workers", agenttest.Ready(3))
	e.Pool.Update(pool.Config{Name: "t/grown", Revision: "2", Template: tmpl})
	after := e.WaitFor(t, time.Minute, "the restart over", func(s pool.Status) bool {
		return s.LastRestart != nil && s.Restart == nil
	})
	if rep := stop().Report(); rep.Failed != 0 {
		t.Errorf("%d requests failed: %v", rep.Failed, rep.FailedByKind)
	}
	if lr := after.LastRestart; lr.Outcome != pool.OutcomeCompleted || lr.Replaced != 3 || lr.Total != 3 {
		t.Errorf("last restart = %+v, want 3 of 3 replaced", *lr)
	}
	if after.Counts.Updated != after.Counts.Total || after.Counts.Ready != 3 {
		t.Errorf("counts after the restart: %+v, want 3 ready, all on revision 2", after.Counts)
	}
}
