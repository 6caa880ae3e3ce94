package pool_test

import (
	"context"
	"net/http"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/go-logr/logr"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	ferryv1 "github.com/ferry-dev/ferry/api/v1alpha1"

	"github.com/ferry-dev/ferry/agent/internal/agenttest"
	"github.com/ferry-dev/ferry/agent/pool"
)

// bookLogger is a pool's logger as agent/cluster gives it: named "pool".
func bookLogger(b *agenttest.Logbook) *logr.Logger {
	l := b.Logger().WithValues("pool", "t/logs")
	return &l
}

// TestLogLines: the pool's lines and its workers' output name the pool
// once, with the key its caller gave, and carry durations as "30s", not as
// numbers.
func TestLogLines(t *testing.T) {
	t.Run("a spawn and an overrun", func(t *testing.T) {
		book := agenttest.NewLogbook(t)
		tmpl := agenttest.WSGI("hello-wsgi", 1, 1)
		e := agenttest.Start(t, pool.Config{Name: "t/logs", Revision: "1", Template: tmpl},
			agenttest.Options{Log: bookLogger(book)})
		e.WaitFor(t, time.Minute, "1 ready worker", agenttest.Ready(1))
		w, err := e.Pool.Acquire(context.Background(), 0)
		if err != nil {
			t.Fatal(err)
		}
		e.Pool.Overran(w, "/stuck", 30*time.Second)
		if by := w.StoppedBy(); !strings.HasSuffix(by, "within maxRequestTime (30s)") {
			t.Errorf("StoppedBy after an overrun = %q, want it to end \"within maxRequestTime (30s)\"", by)
		}
		e.Pool.Release(w, pool.Answered)
		killing := book.WaitFor(t, "Killing worker")
		if want := "or the rest of one whose client left)"; !strings.HasSuffix(killing.Msg, want) {
			t.Errorf("the kill says %q; want it to cover an abandoned answer that did not end (%q)", killing.Msg, want)
		}
		if v, _ := killing.Value("maxRequestTime"); v != "30s" {
			t.Errorf("maxRequestTime logged as %#v, want \"30s\"", v)
		}
		if _, n := book.WaitFor(t, "Spawned worker").Value("pool"); n != 1 {
			t.Errorf("Spawned worker names the pool %d times, want once", n)
		}
		book.Check(t)
	})
	t.Run("a failed spawn and its output", func(t *testing.T) {
		book := agenttest.NewLogbook(t)
		tmpl := agenttest.WSGI("broken-wsgi", 1, 1)
		agenttest.Start(t, pool.Config{Name: "t/logs", Revision: "1", Template: tmpl}, agenttest.Options{Log: bookLogger(book)})
		out := book.WaitFor(t, "Worker output")
		if v, n := out.Value("pool"); n != 1 || v != "t/logs" {
			t.Errorf("a worker's output names the pool %d times (%v), want once: %v", n, v, out.KVs)
		}
		book.WaitFor(t, "Spawn failed")
		book.Check(t)
	})
	t.Run("shutdownTimeout", func(t *testing.T) {
		e, book := startWithASlowRequest(t, 500*time.Millisecond)
		busyWorker(t, e)
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		e.Pool.Close(ctx)
		// The wait is said as it begins: an agent's stop is otherwise
		// silent until the pool ends, up to shutdownTimeout later.
		waiting := book.WaitFor(t, "Closing pool: waiting for the requests under way")
		if v, _ := waiting.Value("requests"); v != 1 {
			t.Errorf("the close's wait says %#v requests, want 1: %v", v, waiting.KVs)
		}
		if v, _ := waiting.Value("upTo"); v != "500ms" {
			t.Errorf("the close's wait says upTo %#v, want the shutdownTimeout, \"500ms\": %v", v, waiting.KVs)
		}
		cut := book.WaitFor(t, "Worker did not finish its requests")
		if v, _ := cut.Value("timeout"); v != "500ms" {
			t.Errorf("timeout logged as %#v, want \"500ms\"", v)
		}
		// What was cut (walk5 F4: the line said nothing of it): one
		// request, at the worker since before the 500ms wait began.
		if v, _ := cut.Value("requests"); v != 1 {
			t.Errorf("requests logged as %#v, want 1: %v", v, cut.KVs)
		}
		if v, _ := cut.Value("busyFor"); !atLeast(v, 500*time.Millisecond) {
			t.Errorf("busyFor logged as %#v, want the request's age, at least the 500ms wait: %v", v, cut.KVs)
		}
		if v, _ := cut.Value("reason"); v != "agent shutdown" {
			t.Errorf("reason logged as %#v, want \"agent shutdown\"", v)
		}
		book.Check(t)
	})
}

// TestEveryDeathInARequestSaysSo: each death of a worker in a request is
// logged as one, the first of a run (taken as its request's; its pool of
// one, at minProcesses, replaces it) and the second (counted as a crash of
// its app, backed off) alike, each with its exit status and output.
// Before, the second said "Worker exited unexpectedly", as a death between
// requests does: its cause was only in the error line before it; and the
// first said "replacing it", a replacement a pool above minProcesses with
// no request queued does not make. The counted deaths' error lines say
// "backing off" only where the pool waits: the first round (the second
// death) backs off none ("not backing off"), the second round (the third)
// backs off 1s; before, both said "backing off", the first beside
// "backoff": "0s".
func TestEveryDeathInARequestSaysSo(t *testing.T) {
	book := agenttest.NewLogbook(t)
	root, _ := filepath.Abs("testdata/bootdie")
	tmpl := agenttest.WSGIAt(root, 1, 1)
	e := agenttest.Start(t, pool.Config{Name: "t/logs", Revision: "1", Template: tmpl},
		agenttest.Options{Log: bookLogger(book), Tick: 50 * time.Millisecond})
	first := e.WaitFor(t, time.Minute, "1 ready worker", agenttest.Ready(1)).Processes[0].PID
	if code, _ := get(t, e.URL+"/crash"); code != http.StatusBadGateway {
		t.Fatalf("GET /crash = %d, want 502", code)
	}
	e.WaitFor(t, time.Minute, "the first death's replacement", func(s pool.Status) bool {
		return agenttest.Ready(1)(s) && s.Processes[0].PID != first
	})
	// Another path: not a request of death, which the pool would excuse.
	if code, _ := get(t, e.URL+"/crash/other"); code != http.StatusBadGateway {
		t.Fatalf("GET /crash/other = %d, want 502", code)
	}
	deaths := book.WaitForN(t, "Worker exited ", 2) // not the transition line, "Worker exited"
	want := []string{
		"Worker exited while handling a request; taken as the request's, not counted as a crash of its app",
		"Worker exited while handling a request; counted as a crash of its app, not of the request",
	}
	for i, l := range deaths {
		if i >= len(want) || l.Msg != want[i] {
			t.Errorf("death %d logged %q, want %q", i+1, l.Msg, want[min(i, len(want)-1)])
		}
		if v, _ := l.Value("status"); v == nil || v == "" {
			t.Errorf("death %d logged without its exit status: %v", i+1, l.KVs)
		}
	}
	// The second, counted, is of the first round of young deaths, which
	// backs off none: the line says so, not "backing off" beside "0s".
	checkCrashLine(t, book.WaitFor(t, "Worker crashed soon after it was ready"),
		"Worker crashed soon after it was ready, as good as a failed spawn; not backing off", "0s")
	if len(deaths) < 2 {
		t.Fatalf("%d deaths logged, want 2", len(deaths))
	}
	second := deaths[1]
	e.WaitFor(t, time.Minute, "the second death's replacement", func(s pool.Status) bool {
		return agenttest.Ready(1)(s) && s.Processes[0].PID != first && int(s.Processes[0].PID) != pidOf(second)
	})
	// The third, another path again, is the second round: it backs off.
	if code, _ := get(t, e.URL+"/crash/third"); code != http.StatusBadGateway {
		t.Fatalf("GET /crash/third = %d, want 502", code)
	}
	crashes := book.WaitForN(t, "Worker crashed soon after it was ready", 2)
	checkCrashLine(t, crashes[1], "Worker crashed soon after it was ready, as good as a failed spawn; backing off", "1s")
	book.Check(t)
}

// checkCrashLine checks a young death's error line: its words and the
// backoff it says.
func checkCrashLine(t *testing.T, l agenttest.LogEntry, msg, backoff string) {
	t.Helper()
	if v, _ := l.Value("backoff"); l.Msg != msg || v != backoff {
		t.Errorf("a young death logged %q with backoff %#v, want %q with %q: %v", l.Msg, v, msg, backoff, l.KVs)
	}
}

// pidOf is the pid a worker's line names.
func pidOf(l agenttest.LogEntry) int {
	v, _ := l.Value("pid")
	pid, _ := v.(int)
	return pid
}

// TestKillLogNamesTheWaitUsed: a worker that ignores SIGTERM, idle as its
// pool closes past the close's deadline, gets exitGrace (1s) to exit, not
// its shutdownTimeout (5s); the kill's log says the wait it got. Before,
// it said "timeout":"5s".
func TestKillLogNamesTheWaitUsed(t *testing.T) {
	book := agenttest.NewLogbook(t)
	root, _ := filepath.Abs("testdata/abrupt")
	tmpl := agenttest.WSGIAt(root, 1, 1)
	tmpl.App = ferryv1.AppSpec{Type: ferryv1.AppTypeCommand, Root: root, Command: []string{"python3", "server.py"},
		Concurrency: 1, Env: []ferryv1.EnvVar{env("IGNORE_TERM", "1")}}
	tmpl.Pool.ShutdownTimeout = &metav1.Duration{Duration: 5 * time.Second}
	e := agenttest.Start(t, pool.Config{Name: "t/logs", Revision: "1", Template: tmpl},
		agenttest.Options{Log: bookLogger(book)})
	e.WaitFor(t, time.Minute, "1 ready worker", agenttest.Ready(1))
	ctx, cancel := context.WithDeadline(context.Background(), time.Now()) // the close's deadline is past
	defer cancel()
	e.Pool.Close(ctx)
	killed := book.WaitFor(t, "Killed worker that did not exit within shutdownTimeout")
	if v, _ := killed.Value("timeout"); v != "1s" {
		t.Errorf("the kill logs timeout %#v, want \"1s\", the wait the worker got (exitGrace): %v", v, killed.KVs)
	}
	if v, _ := killed.Value("shutdownTimeout"); v != "5s" {
		t.Errorf("the kill logs shutdownTimeout %#v, want \"5s\"", v)
	}
	book.Check(t)
}

// atLeast: v is a duration's text of at least d.
func atLeast(v any, d time.Duration) bool {
	s, _ := v.(string)
	got, err := time.ParseDuration(s)
	return err == nil && got >= d
}

// TestDeathWhileThePoolClosesIsReplacedByNone: a worker that dies in its
// request while the pool closes (waiting for its requests under way) is
// logged as a death in a request, but not as replaced: a closed pool
// spawns nothing. Before, the line said "Worker exited while handling a
// request; replacing it".
func TestDeathWhileThePoolClosesIsReplacedByNone(t *testing.T) {
	e, book := startWithASlowRequest(t, 30*time.Second)
	busy := busyWorker(t, e)
	closed := make(chan struct{})
	go func() {
		defer close(closed)
		e.Pool.Close(context.Background())
	}()
	book.WaitFor(t, "Closing pool: waiting for the requests under way")
	if err := syscall.Kill(int(busy.PID), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	death := book.WaitFor(t, "Worker exited ") // not the transition line, "Worker exited"
	if want := "Worker exited while handling a request"; death.Msg != want {
		t.Errorf("a death in a request while the pool closed logged %q, want %q", death.Msg, want)
	}
	select {
	case <-closed:
	case <-time.After(time.Minute):
		t.Fatal("the pool did not close within a minute of its worker's death")
	}
	if n := len(book.Find("Spawned worker")); n != 1 {
		t.Errorf("%d workers spawned, want the first only", n)
	}
	book.Check(t)
}

// startWithASlowRequest starts a one-worker pool whose shutdownTimeout is
// shutdown, logging to the book it returns, and sends it a 20 s request
// (not waited for: busyWorker finds the worker serving it).
func startWithASlowRequest(t *testing.T, shutdown time.Duration) (*agenttest.Env, *agenttest.Logbook) {
	t.Helper()
	book := agenttest.NewLogbook(t)
	tmpl := agenttest.WSGI("hello-wsgi", 1, 1)
	tmpl.Pool.ShutdownTimeout = &metav1.Duration{Duration: shutdown}
	e := agenttest.Start(t, pool.Config{Name: "t/logs", Revision: "1", Template: tmpl},
		agenttest.Options{Log: bookLogger(book)})
	e.WaitFor(t, time.Minute, "1 ready worker", agenttest.Ready(1))
	go func() {
		if resp, err := http.Get(e.URL + "/slow?ms=20000"); err == nil {
			resp.Body.Close()
		}
	}()
	return e, book
}
