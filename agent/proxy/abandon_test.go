package proxy_test

import (
	"io"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ferry-dev/ferry/agent/internal/agenttest"
	"github.com/ferry-dev/ferry/agent/pool"
	"github.com/ferry-dev/ferry/agent/proxy"
	ferryv1 "github.com/ferry-dev/ferry/api/v1alpha1"
	"github.com/ferry-dev/ferry/internal/testsupport"
)

// TestAbandonedAfterAnInterimResponse: a client goes away from a request
// whose worker, serving one request at a time, sent an interim response
// (103 Early Hints) and is still at it. An interim response is no answer:
// the request is awaited as one whose worker sent nothing yet is
// (TestAbandonedRequestKeepsItsWorker in agent/pool), and the worker keeps
// its slot until its answer comes, not handed a request that would wait
// behind the abandoned one. Through the front end (HTTP/1.1), net/http
// (HTTP/1.0), and ReverseProxy's round trip (an upgrade, refused).
func TestAbandonedAfterAnInterimResponse(t *testing.T) {
	e, gate, codes := startHints(t)
	for i, req := range []string{
		"GET /gate HTTP/1.1\r\nHost: h\r\n\r\n",
		"GET /gate HTTP/1.0\r\nHost: h\r\n\r\n",
		"GET /gate HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n",
	} {
		leaveAtWorker(t, e, gate, req)
		e.WaitFor(t, 10*time.Second, "the client seen gone (499)", func(pool.Status) bool { return codes.count(499) == i+1 })
		if s := e.Pool.Status(); len(s.Processes) != 1 || s.Processes[0].Sessions != 1 {
			t.Fatalf("%q: with the abandoned request still at its worker: %+v; want its slot still taken until its answer",
				req, s.Processes)
		}
		if err := os.WriteFile(gate, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		e.WaitFor(t, 10*time.Second, "the worker given back once its answer came", func(s pool.Status) bool {
			return len(s.Processes) == 1 && s.Processes[0].Sessions == 0 && s.Processes[0].Processed == int64(i+1)
		})
		for _, f := range []string{gate, gate + ".reached"} {
			if err := os.Remove(f); err != nil {
				t.Fatal(err)
			}
		}
	}
	if resp, body := do(t, newRequest(t, http.MethodGet, e.URL+"/", nil)); resp.StatusCode != http.StatusOK {
		t.Errorf("GET / after: %d %q, want 200", resp.StatusCode, body)
	}
}

// TestAbandonedRequestIsHalfClosed: a client goes away from a request at a
// worker that serves one request at a time and watches for its client
// leaving, as a Go or Node server does (hints' /notice answers nothing
// until it reads the end of its connection). The proxy, which keeps the
// connection to await the answer, half-closes it as the client did: the
// worker notices, ends the request unanswered, and is given back, not
// held at a request nobody waits for. Through the front end (HTTP/1.1)
// and net/http (HTTP/1.0).
func TestAbandonedRequestIsHalfClosed(t *testing.T) {
	e, gate, codes := startHints(t)
	pid := e.Pool.Status().Processes[0].PID
	for i, req := range []string{
		"GET /notice HTTP/1.1\r\nHost: h\r\n\r\n",
		"GET /notice HTTP/1.0\r\nHost: h\r\n\r\n",
	} {
		leaveAtWorker(t, e, gate, req)
		e.WaitFor(t, 10*time.Second, "the worker to notice its client gone, and be given back", func(s pool.Status) bool {
			_, err := os.Stat(gate + ".noticed")
			return err == nil && codes.count(499) == i+1 && len(s.Processes) == 1 && s.Processes[0].Sessions == 0
		})
		for _, f := range []string{gate + ".reached", gate + ".noticed"} {
			if err := os.Remove(f); err != nil {
				t.Fatal(err)
			}
		}
	}
	if resp, body := do(t, newRequest(t, http.MethodGet, e.URL+"/", nil)); resp.StatusCode != http.StatusOK {
		t.Errorf("GET / after: %d %q, want 200", resp.StatusCode, body)
	}
	if s := e.Pool.Status(); len(s.Processes) != 1 || s.Processes[0].PID != pid {
		t.Errorf("processes after: %+v; want pid %d alone (it closed connections, it did not die)", s.Processes, pid)
	}
}

// startHints starts a pool of one hints worker (testdata/hints) that
// serves one request at a time, its files named after gate; codes logs
// the status of every request.
func startHints(t *testing.T) (e *agenttest.Env, gate string, codes *codeLog) {
	t.Helper()
	gate = filepath.Join(testsupport.SharedDir(t), "gate")
	tmpl := commandApp("hints", ferryv1.EnvVar{Name: "GATE", Value: gate})
	tmpl.App.Concurrency = 1
	codes = &codeLog{}
	return start(t, tmpl, proxy.Options{Observer: codes}), gate, codes
}

// leaveAtWorker sends req on a connection of its own, waits for the
// worker to be at it (GATE.reached made, its one slot taken), and closes
// the connection: the client goes away.
func leaveAtWorker(t *testing.T, e *agenttest.Env, gate, req string) {
	t.Helper()
	c, _ := dial(t, e)
	if _, err := io.WriteString(c, req); err != nil {
		t.Fatal(err)
	}
	e.WaitFor(t, 10*time.Second, "the worker at the request", func(s pool.Status) bool {
		_, err := os.Stat(gate + ".reached")
		return err == nil && len(s.Processes) == 1 && s.Processes[0].Sessions == 1
	})
	_ = c.Close()
}
