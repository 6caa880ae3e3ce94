package pool_test

import (
	"context"
	"io"
	"net/http"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ferry-dev/ferry/agent/internal/agenttest"
	"github.com/ferry-dev/ferry/agent/pool"
	ferryv1 "github.com/ferry-dev/ferry/api/v1alpha1"
	"github.com/ferry-dev/ferry/internal/testsupport"
)

func httpGet(t *testing.T, url string) (*http.Response, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

// busyWorker waits until some worker is serving a request and returns it.
func busyWorker(t *testing.T, e *agenttest.Env) ferryv1.ProcessInfo {
	t.Helper()
	var busy ferryv1.ProcessInfo
	e.WaitFor(t, time.Minute, "a busy worker", func(s pool.Status) bool {
		for _, p := range s.Processes {
			if p.State == ferryv1.ProcessReady && p.Sessions > 0 {
				busy = p
				return true
			}
		}
		return false
	})
	return busy
}

// TestKilledWorkerUnderLoad: SIGKILL a busy worker under load. At most
// the request it was serving fails, with a 502 (none, when it had just
// answered and the proxy retried the next on another worker: the status
// that showed it busy is a moment old); every other request succeeds; a
// replacement restores the pool. TestKilledWorkerAnswers502WithClearBody
// shows the 502 itself.
func TestKilledWorkerUnderLoad(t *testing.T) {
	tmpl := agenttest.WSGI("hello-wsgi", 4, 4, env("REQUEST_DELAY_MS", "30"))
	e := agenttest.Start(t, pool.Config{Name: "t/kill", Revision: "1", Template: tmpl}, agenttest.Options{})
	e.WaitFor(t, time.Minute, "4 ready workers", agenttest.Ready(4))
	stop := load(t, e.URL, 16)
	waitRequests(t, e, 200)
	victim := busyWorker(t, e)
	if err := syscall.Kill(int(victim.PID), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	after := e.WaitFor(t, time.Minute, "a replacement", func(s pool.Status) bool {
		return agenttest.Ready(4)(s) && !slices.Contains(pids(s), int(victim.PID))
	})
	waitRequests(t, e, after.Processes[0].Processed+100)
	rep := stop().Report()
	if rep.Failed > 1 || rep.Failed != rep.FailedByKind["status-5xx"] {
		t.Fatalf("failed requests = %d %v, want at most the killed worker's one request, as a 5xx (first: %v)",
			rep.Failed, rep.FailedByKind, rep.FirstFailure)
	}
}

// TestKilledWorkerAnswers502WithClearBody checks what the client of the
// killed worker's request gets. The request is at /gate, which the test
// never opens, and the worker is killed once the app has reached it
// (GATE.reached): the pool counts a session when the proxy takes the
// worker, before the request is sent, and a worker killed before that
// refuses the connection; the proxy then gives the request to its
// replacement, as it should.
func TestKilledWorkerAnswers502WithClearBody(t *testing.T) {
	root, _ := filepath.Abs("testdata/bootdie")
	gate := gatePath(t)
	tmpl := agenttest.WSGIAt(root, 1, 1, env("GATE", gate))
	e := agenttest.Start(t, pool.Config{Name: "t/kill502", Revision: "1", Template: tmpl}, agenttest.Options{})
	e.WaitFor(t, time.Minute, "1 ready worker", agenttest.Ready(1))
	got := agenttest.GetLater(e.URL + "/gate")
	victim := e.WaitFor(t, time.Minute, "the request in the app", func(s pool.Status) bool {
		return reached(gate) && len(s.Processes) == 1 && s.Processes[0].Sessions == 1
	}).Processes[0]
	if err := syscall.Kill(int(victim.PID), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	a := testsupport.Receive(t, 2*time.Minute, "the killed worker's request answered", got)
	want := "the worker process (pid " + strconv.Itoa(int(victim.PID)) + ") exited while handling this request"
	if a.Code != http.StatusBadGateway || !strings.Contains(a.Body, want) {
		t.Fatalf("got %d %q (%v), want 502 saying %q", a.Code, a.Body, a.Err, want)
	}
	e.WaitFor(t, time.Minute, "a replacement", func(s pool.Status) bool {
		return agenttest.Ready(1)(s) && s.Processes[0].PID != victim.PID
	})
	if resp, _ := httpGet(t, e.URL+"/"); resp.StatusCode != http.StatusOK {
		t.Errorf("after the replacement: %d", resp.StatusCode)
	}
}

// TestQueueOverflowAndTimeout: beyond maxRequestQueueSize the answer is 503
// with Retry-After at once; a request that waits past queueTimeout gets 504.
func TestQueueOverflowAndTimeout(t *testing.T) {
	tmpl := agenttest.WSGI("hello-wsgi", 1, 1)
	tmpl.Pool.MaxRequestQueueSize = 2
	// Long enough that the overflow request comes while both still wait,
	// on a loaded machine too; shorter than the slow request.
	tmpl.Pool.QueueTimeout = &metav1.Duration{Duration: 6 * time.Second}
	e := agenttest.Start(t, pool.Config{Name: "t/queue", Revision: "1", Template: tmpl}, agenttest.Options{})
	e.WaitFor(t, time.Minute, "1 ready worker", agenttest.Ready(1))

	// One request occupies the only worker for 10 s; two wait in the queue.
	var wg sync.WaitGroup
	codes := make([]int, 3)
	for i := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, _ := httpGet(t, e.URL+"/slow?ms=10000")
			codes[i] = resp.StatusCode
		}()
		if i == 0 {
			busyWorker(t, e)
		}
	}
	e.WaitFor(t, time.Minute, "2 queued requests", func(s pool.Status) bool { return s.QueueLength == 2 })
	resp, body := httpGet(t, e.URL+"/")
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" ||
		!strings.Contains(body, "too many requests are waiting") {
		t.Errorf("overflow: got %d Retry-After=%q %q, want 503 with Retry-After", resp.StatusCode,
			resp.Header.Get("Retry-After"), body)
	}
	wg.Wait()
	slices.Sort(codes)
	if want := []int{200, 504, 504}; !slices.Equal(codes, want) {
		t.Errorf("the busy and queued requests got %v, want %v (the queued ones time out after 6s)", codes, want)
	}
}

// TestScalesUpUnderLoadAndDownWhenIdle: queued requests grow the pool to
// maxProcesses; idle workers are stopped down to minProcesses.
func TestScalesUpUnderLoadAndDownWhenIdle(t *testing.T) {
	tmpl := agenttest.WSGI("hello-wsgi", 1, 3, env("REQUEST_DELAY_MS", "20"))
	tmpl.Pool.IdleTimeout = &metav1.Duration{Duration: time.Second}
	e := agenttest.Start(t, pool.Config{Name: "t/scale", Revision: "1", Template: tmpl},
		agenttest.Options{Tick: 100 * time.Millisecond})
	e.WaitFor(t, time.Minute, "1 ready worker", agenttest.Ready(1))
	stop := load(t, e.URL, 8)
	peak := e.WaitFor(t, time.Minute, "3 ready workers", agenttest.Ready(3))
	rep := stop().Report()
	if rep.Failed != 0 {
		t.Errorf("%d requests failed while scaling up", rep.Failed)
	}
	if peak.Counts.Total > 3 {
		t.Errorf("pool grew to %d, above maxProcesses 3", peak.Counts.Total)
	}
	e.WaitFor(t, time.Minute, "idle workers stopped down to 1", agenttest.Ready(1))
}

// TestLoweredMaxIsEnforced: lowering maxProcesses below the pool's size
// stops the workers above it (they finish their requests first), under
// load and with no failed request; a restart after does not bring them
// back. A lifecycle audit found them kept, and every restart replacing
// them.
func TestLoweredMaxIsEnforced(t *testing.T) {
	tmpl := agenttest.WSGI("hello-wsgi", 3, 3, env("REQUEST_DELAY_MS", "5"))
	e := agenttest.Start(t, pool.Config{Name: "t/lower", Revision: "1", Template: tmpl},
		agenttest.Options{Tick: 50 * time.Millisecond})
	e.WaitFor(t, time.Minute, "3 ready workers", agenttest.Ready(3))
	stop := load(t, e.URL, 4)
	lower := tmpl
	lower.Pool.MinProcesses, lower.Pool.MaxProcesses = 1, 1
	e.Pool.Update(pool.Config{Name: "t/lower", Revision: "1", Template: lower})
	e.WaitFor(t, time.Minute, "1 worker", func(s pool.Status) bool { return s.Counts.Total == 1 && s.Counts.Ready == 1 })
	e.Pool.Update(pool.Config{Name: "t/lower", Revision: "2", Template: lower})
	done := e.WaitFor(t, time.Minute, "the restart to 2", func(s pool.Status) bool {
		return s.Restart == nil && s.LastRestart != nil && s.LastRestart.Revision == "2"
	})
	if rep := stop().Report(); rep.Failed != 0 {
		t.Errorf("%d requests failed", rep.Failed)
	}
	if lr := done.LastRestart; lr.Total != 1 || done.Counts.Total != 1 {
		t.Errorf("the restart replaced %d of %d, and left %d workers; want 1", lr.Replaced, lr.Total, done.Counts.Total)
	}
}

// TestRecycling: a worker is replaced (replacement first, no failed
// request) after maxRequestsPerProcess requests, and above memoryLimit.
func TestRecycling(t *testing.T) {
	t.Run("maxRequestsPerProcess", func(t *testing.T) {
		tmpl := agenttest.WSGI("hello-wsgi", 1, 1)
		tmpl.Pool.MaxRequestsPerProcess = 50
		e := agenttest.Start(t, pool.Config{Name: "t/maxreq", Revision: "1", Template: tmpl}, agenttest.Options{})
		first := e.WaitFor(t, time.Minute, "1 ready worker", agenttest.Ready(1)).Processes[0].PID
		stop := load(t, e.URL, 4)
		// Until the replacement has answered some of the load: stopping
		// as soon as it is ready could end the load before its first answer.
		e.WaitFor(t, time.Minute, "a recycled worker serving", func(s pool.Status) bool {
			return agenttest.Ready(1)(s) && s.Processes[0].PID != first && s.Processes[0].Processed >= 10
		})
		rep := stop().Report()
		if rep.Failed != 0 {
			t.Errorf("%d requests failed across the recycling", rep.Failed)
		}
		if len(rep.PIDs) < 2 {
			t.Errorf("answers came from %v, want the first worker and its replacement", rep.PIDs)
		}
	})
	// A worker that grows past the limit within its first requests is
	// recycled, and the log says once that a limit below the app's warm
	// size replaces every process after a few requests (before, each
	// recycling said only "recycling it").
	t.Run("memoryLimit", func(t *testing.T) {
		e, book := startMemoryLimited(t, "t/mem", "64Mi", agenttest.Options{Tick: 100 * time.Millisecond})
		pid := e.WaitFor(t, time.Minute, "1 ready worker", agenttest.Ready(1)).Processes[0].PID
		for range 2 {
			if resp, _ := httpGet(t, e.URL+"/alloc?mb=100"); resp.StatusCode != http.StatusOK {
				t.Fatalf("/alloc: %d", resp.StatusCode)
			}
			was := pid
			pid = e.WaitFor(t, time.Minute, "a recycled worker", func(s pool.Status) bool {
				return agenttest.Ready(1)(s) && s.Processes[0].PID != was
			}).Processes[0].PID
		}
		if resp, _ := httpGet(t, e.URL+"/"); resp.StatusCode != http.StatusOK {
			t.Errorf("after recycling: %d", resp.StatusCode)
		}
		recycled := book.WaitForN(t, "Worker is above memoryLimit; recycling it", 2)
		// 0 when the sample came while the request was still at it.
		if n, _ := recycled[0].Value("processed"); n != int64(0) && n != int64(1) {
			t.Errorf("the recycling says processed=%v, want its one request (or 0)", n)
		}
		if n := len(book.Find("Worker grew above memoryLimit within its first requests")); n != 1 {
			t.Errorf("logged %d times that workers grow past memoryLimit soon after they start, want once", n)
		}
	})
	// A memoryLimit below what the app needs to start: a worker above it
	// as soon as it is ready is as large as its replacement would be.
	// Before, the pool recycled a fresh worker at every sample (12 in 12 s
	// at 5Mi), saying only "recycling it" each time.
	t.Run("memoryLimit below the start size", func(t *testing.T) {
		e, book := startMemoryLimited(t, "t/memstart", "2Mi", agenttest.Options{Tick: 50 * time.Millisecond})
		first := e.WaitFor(t, time.Minute, "1 ready worker", agenttest.Ready(1)).Processes[0].PID
		book.WaitFor(t, "Worker was above memoryLimit as soon as it was ready")
		time.Sleep(time.Second) // 20 samples
		if s := e.Pool.Status(); !agenttest.Ready(1)(s) || s.Processes[0].PID != first {
			t.Fatalf("a worker that served nothing was recycled for memoryLimit: %+v", s.Processes)
		}
		// Nor once it has served requests.
		for range 3 {
			if resp, _ := httpGet(t, e.URL+"/"); resp.StatusCode != http.StatusOK {
				t.Fatalf("GET /: %d", resp.StatusCode)
			}
		}
		time.Sleep(time.Second)
		if s := e.Pool.Status(); !agenttest.Ready(1)(s) || s.Processes[0].PID != first {
			t.Fatalf("a worker that started above memoryLimit was recycled after its requests: %+v", s.Processes)
		}
		if n := len(book.Find("Worker was above memoryLimit as soon as")); n != 1 {
			t.Errorf("logged %d times that the app starts above memoryLimit, want once", n)
		}
	})
	// But one that then leaks is: left for good, it grew without bound
	// and memoryLimit did nothing. Once it is past twice its size when
	// ready it is recycled, and the note says where that bound is.
	t.Run("memoryLimit below the start size, leaking", func(t *testing.T) {
		e, book := startMemoryLimited(t, "t/memleak", "2Mi", agenttest.Options{Tick: 50 * time.Millisecond})
		first := e.WaitFor(t, time.Minute, "1 ready worker", agenttest.Ready(1)).Processes[0].PID
		note := book.WaitFor(t, "Worker was above memoryLimit as soon as it was ready")
		v, _ := note.Value("rssWhenReady")
		start, _ := v.(int64)
		if start <= 0 {
			t.Fatalf("the note says rssWhenReady=%v, want the worker's size", v)
		}
		if b, _ := note.Value("bound"); b != 2*start {
			t.Errorf("the note says bound=%v, want twice rssWhenReady (%d)", b, 2*start)
		}
		// A leak to well past twice the start size, in steps, as a leak grows.
		for range 4 {
			if resp, _ := httpGet(t, e.URL+"/alloc?mb="+strconv.FormatInt(start>>20/2+8, 10)); resp.StatusCode != http.StatusOK {
				t.Fatalf("/alloc: %d", resp.StatusCode)
			}
		}
		e.WaitFor(t, 30*time.Second, "the leaking worker recycled", func(s pool.Status) bool {
			return agenttest.Ready(1)(s) && s.Processes[0].PID != first
		})
		book.WaitFor(t, "Worker that was above memoryLimit as soon as it was ready has grown past twice that size; recycling it")
		if resp, _ := httpGet(t, e.URL+"/"); resp.StatusCode != http.StatusOK {
			t.Errorf("after recycling: %d", resp.StatusCode)
		}
	})
}

// TestRecyclingWorkerYieldsToAFreeOne: a worker flagged for a recycle
// takes no request while its replacement boots and another ready worker
// has a free slot. Before, the oldest idle worker took every request
// whether or not it was leaving: walk5's leak ran to 17x its memoryLimit
// at the worker being recycled, its neighbour idle.
func TestRecyclingWorkerYieldsToAFreeOne(t *testing.T) {
	cases := []struct {
		name string
		set  func(*ferryv1.AppTemplate)
		flag string // the requests that get the oldest worker flagged
		n    int
	}{
		// More than the 5 requests the other gets after, or it would be flagged too.
		{"maxRequestsPerProcess", func(tmpl *ferryv1.AppTemplate) { tmpl.Pool.MaxRequestsPerProcess = 8 }, "/", 8},
		{"memoryLimit", func(tmpl *ferryv1.AppTemplate) {
			l := resource.MustParse("64Mi")
			tmpl.Pool.MemoryLimit = &l
		}, "/alloc?mb=100", 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tmpl := agenttest.WSGI("hello-wsgi", 2, 2, env("BOOT_DELAY", "2")) // the replacement boots for 2s
			c.set(&tmpl)
			e := agenttest.Start(t, pool.Config{Name: "t/yield", Revision: "1", Template: tmpl},
				agenttest.Options{Tick: 100 * time.Millisecond})
			e.WaitFor(t, time.Minute, "2 ready workers", agenttest.Ready(2))
			var flagged string
			// The proxy gives a worker back once the answer went out: the
			// next request of a client may come before. Each request here is
			// sent when the pool has both workers free.
			idle := func() {
				e.WaitFor(t, time.Minute, "no request at any worker", func(s pool.Status) bool {
					return !slices.ContainsFunc(s.Processes, func(p ferryv1.ProcessInfo) bool { return p.Sessions > 0 })
				})
			}
			for range c.n { // both idle: the oldest takes them
				idle()
				resp, _ := httpGet(t, e.URL+c.flag)
				if resp.StatusCode != http.StatusOK || flagged != "" && resp.Header.Get("X-Pid") != flagged {
					t.Fatalf("GET %s: %d from pid %s, want 200 from the oldest worker", c.flag, resp.StatusCode, resp.Header.Get("X-Pid"))
				}
				flagged = resp.Header.Get("X-Pid")
			}
			s := e.WaitFor(t, time.Minute, "the recycle under way", func(s pool.Status) bool { return s.Counts.Total == 3 })
			// No restart runs: the recycled worker is not "Rolling restarting...".
			if i := slices.IndexFunc(s.Processes, func(p ferryv1.ProcessInfo) bool { return strconv.Itoa(int(p.PID)) == flagged }); i < 0 ||
				s.Processes[i].Replacing || s.Restart != nil {
				t.Errorf("while pid %s is recycled: %+v (restart %+v), want it listed, not replacing, and no restart", flagged, s.Processes, s.Restart)
			}
			for range 5 {
				idle()
				resp, _ := httpGet(t, e.URL+"/")
				if got := resp.Header.Get("X-Pid"); resp.StatusCode != http.StatusOK || got == flagged {
					t.Fatalf("GET / while pid %s is recycled, another idle: %d from pid %s, want 200 from the other",
						flagged, resp.StatusCode, got)
				}
			}
			e.WaitFor(t, time.Minute, "the recycled worker gone", func(s pool.Status) bool {
				return agenttest.Ready(2)(s) && !slices.ContainsFunc(s.Processes, func(p ferryv1.ProcessInfo) bool {
					return strconv.Itoa(int(p.PID)) == flagged
				})
			})
		})
	}
}

// startMemoryLimited starts a pool of one hello-wsgi worker whose
// memoryLimit is limit, with o's options, and returns the book its log
// goes to.
func startMemoryLimited(t *testing.T, name, limit string, o agenttest.Options) (*agenttest.Env, *agenttest.Logbook) {
	t.Helper()
	tmpl := agenttest.WSGI("hello-wsgi", 1, 1)
	l := resource.MustParse(limit)
	tmpl.Pool.MemoryLimit = &l
	book := agenttest.NewLogbook(t)
	log := book.Logger()
	o.Log = &log
	return agenttest.Start(t, pool.Config{Name: name, Revision: "1", Template: tmpl}, o), book
}

// TestMemoryLimitBelowStartSizeUnderLoad: a memoryLimit below what the app
// needs to start must not recycle a fresh process at every sample under
// traffic either (each replacement serves a request within milliseconds),
// and the log must say once that the limit is below the start size.
func TestMemoryLimitBelowStartSizeUnderLoad(t *testing.T) {
	obs := &observer{}
	e, book := startMemoryLimited(t, "t/memload", "2Mi", agenttest.Options{Tick: 50 * time.Millisecond, Observer: obs})
	e.WaitFor(t, time.Minute, "1 ready worker", agenttest.Ready(1))
	stop := load(t, e.URL, 2)
	before := obs.spawns.Load()
	time.Sleep(3 * time.Second) // 60 samples
	stop()
	if n := obs.spawns.Load() - before; n > 1 {
		t.Errorf("%d workers spawned in 3 s under load for a memoryLimit below the app's start size; "+
			"logged the limit below the start size %d times", n, len(book.Find("Worker was above memoryLimit as soon as")))
	}
}

// TestCloseTakesOneShutdownTimeout: a pool that closes with a worker stuck
// in a request (which a WSGI worker finishes before it heeds SIGTERM)
// kills it within one shutdownTimeout in all, its request cut. Before, the
// wait for its request and the wait for its exit after SIGTERM each took
// the whole timeout: the agent's stop took twice what its grace period is
// sized for. What shows it is not a clock reading but the request's fate:
// it would end half a timeout after the first wait, so a second wait sees
// it answered and the worker exit of itself on SIGTERM, while one timeout
// in all SIGKILLs the worker right after SIGTERM, the request unanswered.
// (The half timeout either side leaves room for a slow machine; the only
// clock assert is the hang guard.)
func TestCloseTakesOneShutdownTimeout(t *testing.T) {
	const timeout = 4 * time.Second
	book := agenttest.NewLogbook(t)
	tmpl := agenttest.WSGI("hello-wsgi", 1, 1)
	tmpl.Pool.ShutdownTimeout = &metav1.Duration{Duration: timeout}
	e := agenttest.Start(t, pool.Config{Name: "t/close", Revision: "1", Template: tmpl},
		agenttest.Options{Log: bookLogger(book)})
	e.WaitFor(t, time.Minute, "1 ready worker", agenttest.Ready(1))
	answered := make(chan string, 1)
	go func() {
		resp, err := http.Get(e.URL + "/slow?ms=" + strconv.Itoa(int(timeout.Milliseconds()*3/2)))
		if err != nil {
			answered <- err.Error()
			return
		}
		_ = resp.Body.Close()
		answered <- resp.Status
	}()
	stuck := busyWorker(t, e)

	closed := make(chan struct{})
	go func() {
		defer close(closed)
		e.Pool.Close(context.Background())
	}()
	select {
	case <-closed:
	case <-time.After(time.Minute):
		t.Fatal("Close did not return within a minute")
	}
	if got := <-answered; got == "200 OK" {
		t.Errorf("the request still running at the end of shutdownTimeout was answered (%s): its worker had a second wait", got)
	} else {
		t.Logf("the request still running at the end of shutdownTimeout: %s", got)
	}
	if n := len(book.Find("Killed worker that did not exit within shutdownTimeout")); n != 1 {
		t.Errorf("%d workers killed, want the stuck one", n)
	}
	if err := syscall.Kill(int(stuck.PID), 0); err == nil {
		t.Errorf("worker %d still runs after Close", stuck.PID)
	}
}
