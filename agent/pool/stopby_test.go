package pool_test

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ferry-dev/ferry/agent/internal/agenttest"
	"github.com/ferry-dev/ferry/agent/pool"
	ferryv1 "github.com/ferry-dev/ferry/api/v1alpha1"
	"github.com/ferry-dev/ferry/internal/testsupport"
)

// startHeld runs one worker of testdata/abrupt that ignores SIGTERM,
// taking concurrency requests at once, with shutdownTimeout and extra
// environment variables, logging to book, and sends it GET /hold, which
// it never answers. It returns the pool, the worker's pid and the
// request's answer to come, once the app has the request (it made
// HOLD_FILE.reached): a worker stopped before the proxy sent it would
// refuse the connection, and the request would go to another.
func startHeld(t *testing.T, book *agenttest.Logbook, concurrency int32, shutdownTimeout time.Duration,
	extra ...ferryv1.EnvVar) (*agenttest.Env, int, <-chan agenttest.Answer) {
	t.Helper()
	root, _ := filepath.Abs("testdata/abrupt")
	hold := filepath.Join(testsupport.SharedDir(t), "never")
	tmpl := agenttest.WSGIAt(root, 1, 1)
	tmpl.App = ferryv1.AppSpec{Type: ferryv1.AppTypeCommand, Root: root, Command: []string{"python3", "server.py"},
		Concurrency: concurrency, Env: append([]ferryv1.EnvVar{env("HOLD_FILE", hold),
			env("IGNORE_TERM", "1")}, extra...)}
	tmpl.Pool.ShutdownTimeout = &metav1.Duration{Duration: shutdownTimeout}
	e := agenttest.Start(t, pool.Config{Name: "t/held", Revision: "1", Template: tmpl}, agenttest.Options{Log: bookLogger(book)})
	pid := int(e.WaitFor(t, time.Minute, "a ready worker", agenttest.Ready(1)).Processes[0].PID)
	answer := agenttest.GetLater(e.URL + "/hold")
	e.WaitFor(t, time.Minute, "the request in the app", func(s pool.Status) bool {
		return reached(hold) && len(s.Processes) == 1 && s.Processes[0].Sessions == 1
	})
	return e, pid, answer
}

// cutWith checks that the request a got 502 saying the agent stopped the
// worker pid, followed by each of want.
func cutWith(t *testing.T, a agenttest.Answer, pid int, want ...string) {
	t.Helper()
	prefix := "ferry: the agent stopped the worker process (pid " + strconv.Itoa(pid) + ") "
	if a.Err != nil || a.Code != http.StatusBadGateway || !strings.HasPrefix(a.Body, prefix) {
		t.Fatalf("the cut request got %d %q (%v), want 502 %q...", a.Code, a.Body, a.Err, prefix)
	}
	for _, w := range want {
		if !strings.Contains(a.Body, w) {
			t.Errorf("the cut request got %q, want it to say %q", a.Body, w)
		}
	}
}

// TestRequestCutAtThePoolsCloseNamesTheWaitItHad: a request at a worker
// as its pool closes with a deadline sooner than its shutdownTimeout (the
// agent's stop drained its proxy first) is told the wait it had, not the
// shutdownTimeout it did not get. Before, it read "at shutdownTimeout
// (5s) (agent shutdown)" after a second.
func TestRequestCutAtThePoolsCloseNamesTheWaitItHad(t *testing.T) {
	book := agenttest.NewLogbook(t)
	e, pid, answer := startHeld(t, book, 1, 5*time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	e.Pool.Close(ctx)
	a := <-answer
	cutWith(t, a, pid, "as its pool closed (the agent stopping, or the pool removed): its requests were not done within the ",
		" the pool's close left them (shutdownTimeout is 5s); the request was cut")
	// The wait it had is the close's deadline less the time taken to get
	// to the worker's stop (to 10ms): 1s, or less on a loaded machine.
	if d := waitHadIn(a.Body); d <= 0 || d > time.Second {
		t.Errorf("the cut request got %q, want the wait it had, at most the close's 1s", a.Body)
	}
	if strings.Contains(a.Body, "within shutdownTimeout") {
		t.Errorf("the cut request got %q, want the wait it had, not shutdownTimeout's", a.Body)
	}
	book.Check(t)
}

// TestRequestCutAtAPoolsCloseLeftNoWaitSaysSo: a request at a worker as
// its pool closes with its deadline already past (the agent's stop cut
// short) had no wait at all, and is told so. Before, it read "its
// requests were not done within the 0s the pool's close left them", and
// the close's log line "upTo -1s".
func TestRequestCutAtAPoolsCloseLeftNoWaitSaysSo(t *testing.T) {
	book := agenttest.NewLogbook(t)
	e, pid, answer := startHeld(t, book, 1, 5*time.Second)
	ctx, cancel := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel()
	e.Pool.Close(ctx)
	a := <-answer
	cutWith(t, a, pid, "as its pool closed (the agent stopping, or the pool removed): "+
		"the pool's close left its requests no time to be done (shutdownTimeout is 5s); the request was cut")
	if strings.Contains(a.Body, " 0s ") {
		t.Errorf("the cut request got %q, want no wait of 0s", a.Body)
	}
	// Nor does the log say it waits up to less than nothing.
	if v, _ := book.WaitFor(t, "Closing pool: waiting for the requests under way").Value("upTo"); v != "0s" {
		t.Errorf("the close's wait says upTo %#v, want \"0s\"", v)
	}
	book.Check(t)
}

// waitHadIn is the wait a cut request's body says the pool's close left
// its worker; 0 when it names none.
func waitHadIn(body string) time.Duration {
	m := regexp.MustCompile(`within the (\S+) the pool's close left them`).FindStringSubmatch(body)
	if m == nil {
		return 0
	}
	d, _ := time.ParseDuration(m[1])
	return d
}

// TestOtherRequestOfAnOverrunWorkerSaysAnotherOverran: a worker taking
// two requests at once is killed as one of them overruns maxRequestTime
// (as the proxy has the pool do); the other, cut, is told another request
// overran, not that it did. Before, it read "at maxRequestTime (30s)".
func TestOtherRequestOfAnOverrunWorkerSaysAnotherOverran(t *testing.T) {
	book := agenttest.NewLogbook(t)
	e, pid, answer := startHeld(t, book, 2, 5*time.Second)
	w, err := e.Pool.Acquire(context.Background(), 0)
	if err != nil {
		t.Fatal(err)
	}
	e.Pool.Overran(w, "/stuck", 30*time.Second)
	e.Pool.Release(w, pool.Unanswered)
	cutWith(t, <-answer, pid, "by killing it, as the answer to another request at it did not come, or did not end, "+
		"within maxRequestTime (30s); the request was cut")
	book.Check(t)
}

// TestRequestCutByADeathInTheSIGTERMGraceIsADeath: a worker that ignores
// SIGTERM, its request not done within shutdownTimeout at a rolling
// restart, is killed by another (as the kernel's OOM killer would) during
// the grace SIGTERM gives it: its request is told the worker died, not
// that the agent stopped it, and the failure's log says stoppedBy "no".
// Before, the stop set before SIGTERM stayed: "the agent stopped ... at
// shutdownTimeout (1s) (rolling restart)". The log says the exit was the
// worker's own, with its status. The SIGKILL comes once SIGTERM has (the
// probe): the pool reads whether the worker ignores SIGTERM just before
// it sends it, and a worker killed before that read cannot be said to
// ignore it (a SIGKILL sent at the "did not finish" line made the log say
// sigtermIgnored false in one CI run). However late the agent's reaper
// sees the death (past the end of the grace), it is the worker's own, and
// the pool logs no kill of it: with a 4 s sleep put in the reaper, the
// 502 said "the agent stopped the worker process ... for a rolling
// restart", and the pool logged "Killed worker that did not exit within
// shutdownTimeout", SIGKILL sent to a zombie, before the kill was judged
// by whether the process still ran (spawn.Process.Sent).
func TestRequestCutByADeathInTheSIGTERMGraceIsADeath(t *testing.T) {
	book := agenttest.NewLogbook(t)
	probe := filepath.Join(filepath.Dir(gatePath(t)), "sigterm-came") // a directory the worker (nobody) may write
	e, pid, answer := startHeld(t, book, 1, 3*time.Second, env("TERM_PROBE", probe))
	cfg := e.Pool.Config()
	cfg.Revision = "2"
	cfg.Template.App.Env = cfg.Template.App.Env[:2] // startHeld's own two: the new worker does not probe
	e.Pool.Update(cfg)
	waitForSIGTERM(t, probe)
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	cutByItsOwnExit(t, book, <-answer, pid, "signal: killed")
}

// TestRequestCutByAnExitOfItsOwnInTheSIGTERMGraceIsAnExit: a worker that
// ignores SIGTERM, its request not done within shutdownTimeout at a
// rolling restart, exits with a status of its own during the grace
// SIGTERM gives it (after the signal, before the SIGKILL): its request is
// told the worker exited, not that the agent stopped it, whose SIGTERM
// cannot have ended a process that ignores it, and the log says what
// happened. Before, an exit with a status after SIGTERM read as the
// agent's stop.
func TestRequestCutByAnExitOfItsOwnInTheSIGTERMGraceIsAnExit(t *testing.T) {
	book := agenttest.NewLogbook(t)
	dir := filepath.Dir(gatePath(t))
	probe, exit := filepath.Join(dir, "sigterm-came"), filepath.Join(dir, "exit")
	e, pid, answer := startHeld(t, book, 1, 5*time.Second, env("TERM_PROBE", probe), env("EXIT_FILE", exit))
	cfg := e.Pool.Config()
	cfg.Revision = "2"
	cfg.Template.App.Env = cfg.Template.App.Env[:2] // startHeld's own two: the new worker neither probes nor exits
	e.Pool.Update(cfg)
	waitForSIGTERM(t, probe)
	if err := os.WriteFile(exit, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	cutByItsOwnExit(t, book, <-answer, pid, "exit status 3")
}

// TestDeathInTheDrainWaitIsNoUnfinishedStop: a worker that dies while
// the agent waits for its requests at a rolling restart is a death, also
// when the agent's reaper sees it late (a loaded machine): the pool does
// not log that the worker did not finish its requests within its wait
// and that stopping it cuts them. Before, the wait's end asked only
// whether the reaper had seen the exit. Seen failing with a 4 s sleep in
// the reaper.
func TestDeathInTheDrainWaitIsNoUnfinishedStop(t *testing.T) {
	book := agenttest.NewLogbook(t)
	e, pid, answer := startHeld(t, book, 1, 3*time.Second)
	cfg := e.Pool.Config()
	cfg.Revision = "2"
	e.Pool.Update(cfg)
	e.WaitFor(t, time.Minute, "the revision 1 worker draining", func(s pool.Status) bool {
		return slices.ContainsFunc(s.Processes, func(p ferryv1.ProcessInfo) bool {
			return int(p.PID) == pid && p.State == ferryv1.ProcessDraining
		})
	})
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if a, want := <-answer, "ferry: the worker process (pid "+strconv.Itoa(pid)+") exited while handling this request"; a.Code != http.StatusBadGateway ||
		!strings.HasPrefix(a.Body, want) {
		t.Errorf("the request got %d %q (%v), want 502 %q", a.Code, a.Body, a.Err, want)
	}
	e.WaitFor(t, time.Minute, "revision 2 alone", func(s pool.Status) bool {
		return len(s.Processes) == 1 && s.Processes[0].Revision == "2" && s.Processes[0].State == ferryv1.ProcessReady
	})
	for _, l := range book.Find("Worker did not finish its requests") {
		if v, _ := l.Value("pid"); v == pid {
			t.Errorf("the pool logged %q (%v) for a worker that died in its wait", l.Msg, l.KVs)
		}
	}
	book.Check(t)
}

// cutByItsOwnExit checks that the request a, cut as the agent stopped
// its worker pid, was told the worker exited, not that the agent stopped
// it; that the failure's log says stoppedBy "no"; that the pool logged
// the exit as the worker's own, with status, and that it ignored SIGTERM
// (startHeld's workers do); and that it did not log a kill of it.
func cutByItsOwnExit(t *testing.T, book *agenttest.Logbook, a agenttest.Answer, pid int, status string) {
	t.Helper()
	if want := "ferry: the worker process (pid " + strconv.Itoa(pid) + ") exited while handling this request"; a.Code != http.StatusBadGateway ||
		!strings.HasPrefix(a.Body, want) {
		t.Errorf("the request got %d %q (%v), want 502 %q", a.Code, a.Body, a.Err, want)
	}
	if v, _ := book.WaitFor(t, "Request failed in a worker").Value("stoppedBy"); v != "no" {
		t.Errorf("the failure's log says stoppedBy %#v, want \"no\"", v)
	}
	line := book.WaitFor(t, "Worker exited of its own while the agent stopped it")
	if v, _ := line.Value("status"); v != status {
		t.Errorf("the exit's log says status %#v, want %q", v, status)
	}
	if v, _ := line.Value("sigtermIgnored"); v != true {
		t.Errorf("the exit's log says sigtermIgnored %#v, want true", v)
	}
	// Logged before the line above, had the agent killed it.
	for _, k := range book.Find("Killed worker") {
		if v, _ := k.Value("pid"); v == pid {
			t.Errorf("the pool logged %q (%v) for a worker that exited of its own before the agent's SIGKILL", k.Msg, k.KVs)
		}
	}
	book.Check(t)
}

// waitForSIGTERM waits until the probe file of a startHeld worker run
// with TERM_PROBE exists: the agent has sent its process group SIGTERM.
func waitForSIGTERM(t *testing.T, probe string) {
	t.Helper()
	testsupport.Eventually(t, time.Minute, "the worker's group to get SIGTERM", func() error {
		_, err := os.Stat(probe)
		return err
	})
}
