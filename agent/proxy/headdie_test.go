package proxy_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ferry-dev/ferry/agent/internal/agenttest"
	"github.com/ferry-dev/ferry/agent/pool"
	"github.com/ferry-dev/ferry/agent/proxy"
)

// TestWorkerFailingAfterItsHead: a worker that sends its response head
// and fails before any of its body came (it exits, sends a malformed
// chunk) gets the client the 502 naming it that a worker failing before
// its head does, on both servers' paths, not an empty reply; so does, on
// the front end's, one that fails with part of a body the proxy does not
// buffer still in the proxy's own buffer (nothing reached the client's
// socket). One that fails once bytes went out has the client's connection
// cut, the response short of its end (net/http's path, which cannot take
// back what it holds, sends that out first). Either way the agent logs
// the failure with the pid and path. Before, the client got nothing at
// all (curl: Empty reply from server), and nothing was logged.
// The head is held for a minute here: a worker's exit that a loaded
// machine delays past the proxy's 100ms would send the head alone, and
// the client get it cut short instead (a CI run saw it: 'GET /die:
// unexpected EOF'). What a head held 100ms does for a quiet stream is
// TestQuietStreamShowsItsHead's.
func TestWorkerFailingAfterItsHead(t *testing.T) {
	proxy.HoldHeadsFor(t, time.Minute)
	codes := &codeLog{}
	book := agenttest.NewLogbook(t)
	log := book.Logger()
	tmpl := commandApp("headdie")
	e := agenttest.Start(t, pool.Config{Name: "t/headdie", Revision: "1", Template: tmpl},
		agenttest.Options{Log: &log, Proxy: proxy.Options{Observer: codes}})
	e.WaitFor(t, time.Minute, "a ready worker", agenttest.Ready(1))
	addr := strings.TrimPrefix(e.URL, "http://")
	requests := 0
	for _, method := range []string{http.MethodGet, http.MethodPost} { // the front end's, net/http's
		for _, tc := range []struct {
			path, says string
			dies       bool
		}{
			{"/die", ") exited while handling this request", true},
			{"/badchunk", "): ", false},
			{"/cut", ") closed the connection partway through its answer", false},
		} {
			if tc.path == "/cut" && method == http.MethodPost {
				continue // below
			}
			requests++
			pid := pidOfWorker(t, e)
			req := newRequest(t, method, e.URL+tc.path, nil)
			if method == http.MethodPost {
				req.Body, req.ContentLength = io.NopCloser(strings.NewReader("x")), 1
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Errorf("%s %s: %v, want a 502", method, tc.path, err)
				continue
			}
			body := readBody(t, resp)
			if resp.StatusCode != http.StatusBadGateway || !strings.Contains(string(body), "(pid "+pid+tc.says) {
				t.Errorf("%s %s: %d %q, want 502 naming pid %s (%q)", method, tc.path, resp.StatusCode, body, pid, tc.says)
			}
			waitUntil(t, "the request counted", func() bool { return len(codes.all()) == requests })
			if n := codes.count(http.StatusBadGateway); n != requests {
				t.Errorf("%s %s: %d requests counted as 502, want %d (%v)", method, tc.path, n, requests, codes.all())
			}
			logged(t, book, tc.path, pid, requests)
			if tc.dies {
				waitReplaced(t, e, pid)
			}
		}
	}
	for _, raw := range []string{
		"GET /sent HTTP/1.1\r\nHost: x\r\n\r\n",
		"POST /sent HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\nx",
		"POST /cut HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\nx",
	} {
		requests++
		pid := pidOfWorker(t, e)
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.WriteString(c, raw); err != nil {
			t.Fatal(err)
		}
		_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatalf("%s: %v, want the head that went out", firstLine(raw), err)
		}
		n, err := io.Copy(io.Discard, resp.Body)
		c.Close()
		if resp.StatusCode != http.StatusOK || n < 1 || err == nil {
			t.Errorf("%s: %d, %d bytes, %v; want 200 and some of the body, cut short", firstLine(raw), resp.StatusCode, n, err)
		}
		logged(t, book, strings.Fields(raw)[1], pid, requests)
	}
	// The path is the client's, of any length the head allows: the log
	// line has it cut.
	requests++
	long := "/badchunk/" + strings.Repeat("a", 1000)
	resp, err := http.Get(e.URL + long)
	if err != nil {
		t.Fatal(err)
	}
	readBody(t, resp)
	logged(t, book, long[:200]+"...", pidOfWorker(t, e), requests)
	waitUntil(t, "the requests counted", func() bool { return len(codes.all()) == requests })
	if n := codes.count(http.StatusOK); n != 3 {
		t.Errorf("%d cut-short answers counted as the 200 sent, want 3 (%v)", n, codes.all())
	}
}

// logged waits for the n-th "Request failed in a worker" line and checks
// it names path and pid.
func logged(t *testing.T, book *agenttest.Logbook, path, pid string, n int) {
	t.Helper()
	l := book.WaitForN(t, "Request failed in a worker", n)[n-1]
	p, _ := l.Value("path")
	w, _ := l.Value("pid")
	if p != path || fmt.Sprint(w) != pid {
		t.Errorf("log line %q %v: want path %s and pid %s", l.Msg, l.KVs, path, pid)
	}
}

// waitReplaced waits for the pool's one process to be a ready one other
// than pid, which died.
func waitReplaced(t *testing.T, e *agenttest.Env, pid string) {
	t.Helper()
	waitGone(t, pid)
	e.WaitFor(t, time.Minute, "a replacement", func(s pool.Status) bool {
		return agenttest.Ready(1)(s) && fmt.Sprint(s.Processes[0].PID) != pid
	})
}
