package pool_test

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ferry-dev/ferry/agent/internal/agenttest"
	"github.com/ferry-dev/ferry/agent/pool"
	"github.com/ferry-dev/ferry/bench/loadgen"
	"github.com/ferry-dev/ferry/internal/testsupport"
)

// TestAbandonedRequestKeepsItsWorker: a client sends a request to a
// two-worker pool and goes away while its worker is at it (GET /gate,
// answered once the test opens the gate). The worker serves one request at
// a time and is at the abandoned one until it answers: the pool must hand
// it no other request, which would wait behind the abandoned one while the
// other worker is free. Two users keep asking for / for longer than the
// second the pool once held such a worker blindly (and then took it for
// free): every request is answered, by the other worker. Then the gate
// opens, the answer comes, and the worker is given back, unharmed.
func TestAbandonedRequestKeepsItsWorker(t *testing.T) {
	root, _ := filepath.Abs("testdata/bootdie")
	gate := gatePath(t)
	obs := &observer{}
	e := agenttest.Start(t, pool.Config{Name: "t/abandoned", Revision: "1",
		Template: agenttest.WSGIAt(root, 2, 2, env("GATE", gate))},
		agenttest.Options{Tick: 50 * time.Millisecond, Observer: obs})
	e.WaitFor(t, 30*time.Second, "two workers ready", agenttest.Ready(2))

	leaveAtGate(t, e, gate)
	held := busyPID(e.Pool.Status()) // the app has the request: its worker is busy
	if held == 0 {
		t.Fatalf("no worker busy once the app had the abandoned request: %+v", e.Pool.Status().Processes)
	}

	// Each request has loadgen's 10 s: one handed the held worker would
	// wait for the gate, which opens only after.
	res, err := loadgen.Run(context.Background(), loadgen.Config{URLs: []string{e.URL + "/"}, Clients: 2, Duration: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if rep := res.Report(); rep.Failed != 0 || rep.Requests == 0 {
		t.Errorf("%d of %d requests to / failed while the other worker was free (%v); want none: none may wait behind the abandoned request",
			rep.Failed, rep.Requests, rep.FirstFailure)
	}
	if busy := busyPID(e.Pool.Status()); busy != held {
		t.Errorf("with the abandoned request still at pid %d, the busy worker is %d; want it held until its answer", held, busy)
	}

	if err := os.WriteFile(gate, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	e.WaitFor(t, 30*time.Second, "the worker given back once its answer came", func(s pool.Status) bool {
		return busyPID(s) == 0 && agenttest.Ready(2)(s) && hasPID(s, held)
	})
	if obs.died.Load() != 0 || obs.overran.Load() != 0 {
		t.Errorf("%d workers died, %d overran; want none: the abandoned request was answered", obs.died.Load(), obs.overran.Load())
	}
}

// gatePath is a path for the app's GATE file (and GATE.reached), in a
// directory the worker's user may write to.
func gatePath(t *testing.T) string {
	return filepath.Join(testsupport.SharedDir(t), "gate")
}

// leaveAtGate sends GET /gate on a connection of its own, waits until the
// app is at it (GATE.reached), and closes the connection: the client goes
// away from a request its worker has. A client that closed at once could
// be seen gone before its request was sent (the proxy watches a waiting
// client from 50 ms on), and the request would never reach the app.
func leaveAtGate(t *testing.T, e *agenttest.Env, gate string) {
	t.Helper()
	c := agenttest.Send(t, strings.TrimPrefix(e.URL, "http://"), "GET /gate HTTP/1.1\r\nHost: t\r\n\r\n")
	defer func() { _ = c.Close() }()
	e.WaitFor(t, 30*time.Second, "the request in the app", func(pool.Status) bool { return reached(gate) })
}

// reached: the app has made file.reached (at /gate, GATE.reached): the
// request is in the app, not only counted; the pool counts a session as
// the proxy takes the worker, before the app has read the request.
func reached(file string) bool {
	_, err := os.Stat(file + ".reached")
	return err == nil
}

// busyPID is the pid of the one process serving a request; 0 for none.
func busyPID(s pool.Status) int32 {
	for _, p := range s.Processes {
		if p.Sessions > 0 {
			return p.PID
		}
	}
	return 0
}

func hasPID(s pool.Status, pid int32) bool {
	for _, p := range s.Processes {
		if p.PID == pid {
			return true
		}
	}
	return false
}

// TestAbandonedRequestStillHasMaxRequestTime: a request whose client went
// away is still held to maxRequestTime while its worker is at it: a
// worker stuck in it (the gate never opens) is killed and replaced, as
// for a client that waits, not left stuck with its slot taken for free.
func TestAbandonedRequestStillHasMaxRequestTime(t *testing.T) {
	root, _ := filepath.Abs("testdata/bootdie")
	gate := gatePath(t)
	tmpl := agenttest.WSGIAt(root, 1, 1, env("GATE", gate))
	tmpl.Pool.MaxRequestTime = &metav1.Duration{Duration: time.Second}
	obs := &observer{}
	e := agenttest.Start(t, pool.Config{Name: "t/abandonedstuck", Revision: "1", Template: tmpl},
		agenttest.Options{Tick: 50 * time.Millisecond, Observer: obs})
	first := e.WaitFor(t, 30*time.Second, "a worker ready", agenttest.Ready(1)).Processes[0].PID

	leaveAtGate(t, e, gate)
	e.WaitFor(t, 30*time.Second, "the stuck worker killed and replaced", func(s pool.Status) bool {
		return obs.overran.Load() == 1 && agenttest.Ready(1)(s) && !hasPID(s, first)
	})
	if code, _, err := fetch(e.URL + "/"); err != nil || code != http.StatusOK {
		t.Errorf("GET / after the replacement: %d %v, want 200", code, err)
	}
}
