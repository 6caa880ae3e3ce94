package proxy_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/ferry-dev/ferry/agent/internal/agenttest"
	"github.com/ferry-dev/ferry/agent/metrics"
	"github.com/ferry-dev/ferry/agent/pool"
	"github.com/ferry-dev/ferry/agent/proxy"
)

// TestMaxRequestTimeKillsAStuckWorker: a worker that sends no answer
// within maxRequestTime is killed and replaced (the pool is at
// minProcesses), and its client gets 504, on both servers' paths (a GET
// the front end serves, a POST with a body net/http's server does), whose
// body says it was killed and no more: a replacement follows the pool's
// scaling, none in a pool above minProcesses with nothing queued. The
// kill is no crash: no scaling error, no backoff. An answer within the
// limit keeps its worker.
func TestMaxRequestTimeKillsAStuckWorker(t *testing.T) {
	tmpl := agenttest.WSGI("hello-wsgi", 1, 1)
	tmpl.Pool.MaxRequestTime = &metav1.Duration{Duration: time.Second}
	m := metrics.New()
	cfg := pool.Config{Name: "t/overrun", Revision: "1", Template: tmpl}
	e := agenttest.Start(t, cfg, agenttest.Options{Observer: m})
	e.WaitFor(t, time.Minute, "a ready worker", agenttest.Ready(1))

	resp, body := do(t, newRequest(t, "GET", e.URL+"/slow?ms=300", nil))
	if resp.StatusCode != 200 || pidOfWorker(t, e) != resp.Header.Get("X-Pid") {
		t.Fatalf("an answer within maxRequestTime: %d %q from pid %s, worker %s", resp.StatusCode, body,
			resp.Header.Get("X-Pid"), pidOfWorker(t, e))
	}

	for _, req := range []*http.Request{
		newRequest(t, "GET", e.URL+"/slow?ms=60000", nil),
		newRequest(t, "POST", e.URL+"/slow?ms=60000", strings.NewReader("a body")),
		// Held whole by the proxy, and more than the socket takes: the
		// stuck worker reads none of it, and the clock must run all the
		// same.
		newRequest(t, "POST", e.URL+"/slow?ms=60000", bytes.NewReader(make([]byte, 8<<20))),
	} {
		stuck := pidOfWorker(t, e)
		resp, body := do(t, req)
		// It promises no replacement: one follows the pool's scaling.
		want := "ferry: the worker process (pid " + stuck + ") did not answer within maxRequestTime (1s); it was killed\n"
		if resp.StatusCode != http.StatusGatewayTimeout || string(body) != want {
			t.Fatalf("%s of a stuck worker: %d %q, want 504 %q", req.Method, resp.StatusCode, body, want)
		}
		waitGone(t, stuck)
		s := e.WaitFor(t, time.Minute, "a replacement", agenttest.Ready(1))
		if got := pidOfWorker(t, e); got == stuck {
			t.Fatalf("the stuck worker %s still serves", stuck)
		}
		if s.ScalingError != nil || s.ScalingRetryAt != nil || s.LastSpawnError != nil {
			t.Errorf("a killed stuck worker counted as a failure: %+v", s)
		}
		resp, body = do(t, newRequest(t, "GET", e.URL+"/", nil))
		if resp.StatusCode != 200 {
			t.Fatalf("after the kill: %d %q", resp.StatusCode, body)
		}
	}
	if n := counter(t, m, "ferry_workers_overran_total"); n != 3 {
		t.Errorf("ferry_workers_overran_total = %v, want 3", n)
	}
}

// TestMaxRequestTimeDoesNotBoundTheBody: a response whose head came in
// time is not cut however long its body takes (a slow client's pace, or
// the app's, must never get a worker killed).
func TestMaxRequestTimeDoesNotBoundTheBody(t *testing.T) {
	_, file, _, _ := runtime.Caller(0)
	// 200 chunks of 64 KiB, 10 ms apart: at least 2 s.
	tmpl := agenttest.WSGIAt(filepath.Join(filepath.Dir(file), "testdata", "stream"), 1, 1)
	tmpl.Pool.MaxRequestTime = &metav1.Duration{Duration: time.Second}
	e := start(t, tmpl, proxy.Options{})
	before := pidOfWorker(t, e)
	resp, err := http.Get(e.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	n, err := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || n != 200*65536 || err != nil {
		t.Fatalf("a body longer than maxRequestTime: %d, %d bytes, %v (want 200 and the whole body)", resp.StatusCode, n, err)
	}
	if after := pidOfWorker(t, e); after != before {
		t.Fatalf("worker %s replaced by %s", before, after)
	}
}

// TestMaxRequestTimeBoundsABufferedBody: a response body the proxy reads
// whole before the client gets it (a declared length within
// responseBufferLimit) is paced by the worker alone, so a worker that
// stalls in it is killed at maxRequestTime as one that sends no head, on
// both servers' paths; the client gets 504, not a body cut short. So is
// one that finishes the body a little after the limit (the rest comes
// 150 ms late): past it the proxy takes what had come, and waits for
// nothing more. With response buffering off the same body goes to the
// client as it comes, and the clock stops at its head.
func TestMaxRequestTimeBoundsABufferedBody(t *testing.T) {
	_, file, _, _ := runtime.Caller(0)
	app := filepath.Join(filepath.Dir(file), "testdata", "stallbody")
	whole := strings.Repeat("x", 100) + strings.Repeat("y", 900)
	tmpl := agenttest.WSGIAt(app, 1, 1)
	tmpl.Pool.MaxRequestTime = &metav1.Duration{Duration: time.Second}
	m := metrics.New()
	e := agenttest.Start(t, pool.Config{Name: "t/stallbody", Revision: "1", Template: tmpl}, agenttest.Options{Observer: m})
	e.WaitFor(t, time.Minute, "a ready worker", agenttest.Ready(1))

	pid := pidOfWorker(t, e)
	if resp, body := do(t, newRequest(t, "GET", e.URL+"/?ms=300", nil)); resp.StatusCode != 200 || string(body) != whole ||
		pidOfWorker(t, e) != pid {
		t.Fatalf("a body within maxRequestTime: %d %q (%d bytes), worker %s then %s", resp.StatusCode, body, len(body), pid, pidOfWorker(t, e))
	}
	for _, req := range []*http.Request{
		newRequest(t, "GET", e.URL+"/?ms=60000", nil),
		newRequest(t, "POST", e.URL+"/?ms=60000", strings.NewReader("a body")),
		newRequest(t, "GET", e.URL+"/?ms=1150", nil),
		newRequest(t, "POST", e.URL+"/?ms=1150", strings.NewReader("a body")),
	} {
		stuck := pidOfWorker(t, e)
		resp, body := do(t, req)
		if resp.StatusCode != http.StatusGatewayTimeout || !strings.Contains(string(body), "(pid "+stuck+") did not finish its answer within maxRequestTime (1s)") {
			t.Fatalf("%s %s of a worker stalled in its body: %d %q, want 504 naming pid %s", req.Method, req.URL.RawQuery, resp.StatusCode, body, stuck)
		}
		waitGone(t, stuck)
		e.WaitFor(t, time.Minute, "a replacement", agenttest.Ready(1))
	}
	if n := counter(t, m, "ferry_workers_overran_total"); n != 4 {
		t.Errorf("ferry_workers_overran_total = %v, want 4", n)
	}

	unbuffered := agenttest.WSGIAt(app, 1, 1)
	unbuffered.Pool.MaxRequestTime = &metav1.Duration{Duration: time.Second}
	unbuffered.Proxy.ResponseBufferLimit = ptr.To(resource.MustParse("0"))
	e = start(t, unbuffered, proxy.Options{})
	pid = pidOfWorker(t, e)
	if resp, body := do(t, newRequest(t, "GET", e.URL+"/?ms=2000", nil)); resp.StatusCode != 200 || string(body) != whole ||
		pidOfWorker(t, e) != pid {
		t.Fatalf("an unbuffered body longer than maxRequestTime: %d (%d bytes), worker %s then %s", resp.StatusCode, len(body), pid, pidOfWorker(t, e))
	}
}

// TestMaxRequestTimeWaitsForAStreamingBody: a body that streams to the
// worker (buffering off) comes at the client's pace, which must not get
// the worker killed: the clock starts once the body is all written.
func TestMaxRequestTimeWaitsForAStreamingBody(t *testing.T) {
	tmpl := agenttest.WSGI("hello-wsgi", 1, 1)
	tmpl.Pool.MaxRequestTime = &metav1.Duration{Duration: time.Second}
	tmpl.Proxy.RequestBuffering = ptr.To(false)
	e := start(t, tmpl, proxy.Options{})
	before := pidOfWorker(t, e)
	pr, pw := io.Pipe()
	go func() {
		for range 5 { // 2.5 s in all
			time.Sleep(500 * time.Millisecond)
			if _, err := pw.Write([]byte("slow ")); err != nil {
				return
			}
		}
		pw.Close()
	}()
	resp, body := do(t, newRequest(t, "POST", e.URL+"/echo", pr))
	if resp.StatusCode != 200 || string(body) != strings.Repeat("slow ", 5) {
		t.Fatalf("a slow upload: %d %q, want 200 and its body", resp.StatusCode, body)
	}
	if after := pidOfWorker(t, e); after != before {
		t.Fatalf("worker %s replaced by %s", before, after)
	}
}

// TestMaxRequestTimeKillsAWorkerThatReadsNoneOfAStreamingBody: a body
// that streams (buffering off, or one the proxy could not hold because
// --request-buffer-disk is spent) to a stuck worker that reads none of it
// blocks the write once the socket is full: the clock, which waits for
// the body's last byte, must not wait for ever, or the client hangs and
// the worker is never killed.
func TestMaxRequestTimeKillsAWorkerThatReadsNoneOfAStreamingBody(t *testing.T) {
	for name, opts := range map[string]struct {
		buffering *bool
		proxy     proxy.Options
	}{
		"buffering off":  {buffering: ptr.To(false)},
		"no disk budget": {proxy: proxy.Options{SpoolDir: t.TempDir(), RequestDisk: proxy.NewBudget(0)}},
	} {
		t.Run(name, func(t *testing.T) {
			tmpl := agenttest.WSGI("hello-wsgi", 1, 1)
			tmpl.Pool.MaxRequestTime = &metav1.Duration{Duration: time.Second}
			tmpl.Proxy.RequestBuffering = opts.buffering
			e := start(t, tmpl, opts.proxy)
			stuck := pidOfWorker(t, e)
			client := &http.Client{Timeout: 20 * time.Second} // the worker sleeps 60 s
			resp, err := client.Do(newRequest(t, "POST", e.URL+"/slow?ms=60000", bytes.NewReader(make([]byte, 8<<20))))
			if err != nil {
				t.Fatalf("a streaming body to a stuck worker: %v, want 504", err)
			}
			body := readBody(t, resp)
			if resp.StatusCode != http.StatusGatewayTimeout || !strings.Contains(string(body), "(pid "+stuck+") did not answer within maxRequestTime (1s)") {
				t.Fatalf("a streaming body to a stuck worker: %d %q, want 504 naming pid %s", resp.StatusCode, body, stuck)
			}
			waitGone(t, stuck)
		})
	}
}

// TestMaxRequestTimeBoundsAnUpgradeUntilItsAnswer: a request that asks
// for an upgrade, to a stuck worker, gets 504 and the worker is killed;
// an upgrade that was answered (101) tunnels on past the limit.
func TestMaxRequestTimeBoundsAnUpgradeUntilItsAnswer(t *testing.T) {
	stuck := agenttest.WSGI("hello-wsgi", 1, 1)
	stuck.Pool.MaxRequestTime = &metav1.Duration{Duration: time.Second}
	e := start(t, stuck, proxy.Options{})
	pid := pidOfWorker(t, e)
	req := newRequest(t, "GET", e.URL+"/slow?ms=60000", nil)
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", "websocket")
	resp, body := do(t, req)
	if resp.StatusCode != http.StatusGatewayTimeout || !strings.Contains(string(body), "(pid "+pid+") did not answer within maxRequestTime (1s)") {
		t.Fatalf("an upgrade to a stuck worker: %d %q, want 504 naming pid %s", resp.StatusCode, body, pid)
	}
	waitGone(t, pid)

	tunnel := commandApp("upgrade")
	tunnel.Pool.MaxRequestTime = &metav1.Duration{Duration: time.Second}
	e = start(t, tunnel, proxy.Options{})
	pid = pidOfWorker(t, e)
	c, br, _ := upgradeToEcho(t, e, "")
	time.Sleep(1500 * time.Millisecond) // past maxRequestTime, the tunnel idle
	fmt.Fprint(c, "still there\n")
	if line, err := br.ReadString('\n'); err != nil || line != "echo: still there\n" {
		t.Fatalf("the tunnel after maxRequestTime: %q %v", line, err)
	}
	if after := pidOfWorker(t, e); after != pid {
		t.Fatalf("worker %s replaced by %s", pid, after)
	}
}

// pidOfWorker is the pid of the pool's one worker.
func pidOfWorker(t *testing.T, e *agenttest.Env) string {
	t.Helper()
	s := e.Pool.Status()
	if len(s.Processes) != 1 {
		t.Fatalf("want one process: %+v", s.Processes)
	}
	return strconv.Itoa(int(s.Processes[0].PID))
}

// waitGone waits for the process pid to be gone (the pool reaps it).
func waitGone(t *testing.T, pid string) {
	t.Helper()
	n, err := strconv.Atoi(pid)
	if err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if err := syscall.Kill(n, 0); errors.Is(err, syscall.ESRCH) {
			return
		}
	}
	t.Fatalf("process %s still runs", pid)
}

// counter is the value of the counter name (one series) in m.
func counter(t *testing.T, m *metrics.Metrics, name string) float64 {
	t.Helper()
	families, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() == name && len(f.GetMetric()) == 1 {
			return f.GetMetric()[0].GetCounter().GetValue()
		}
	}
	return 0
}
