package proxy_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ferry-dev/ferry/agent/internal/agenttest"
	"github.com/ferry-dev/ferry/agent/pool"
	"github.com/ferry-dev/ferry/agent/proxy"
	ferryv1 "github.com/ferry-dev/ferry/api/v1alpha1"
	"github.com/ferry-dev/ferry/internal/testsupport"
)

// slowStream is a pool of two WSGI processes (testdata/slowstream), whose
// /stream sleeps between its chunks, each serving one request at a time;
// env is the app's.
func slowStream(env ...ferryv1.EnvVar) ferryv1.AppTemplate {
	_, file, _, _ := runtime.Caller(0)
	return agenttest.WSGIAt(filepath.Join(filepath.Dir(file), "testdata", "slowstream"), 2, 2, env...)
}

// midAnswer are the ways a streamed answer reaches a client: the front
// end's relay of a declared length too large to buffer (1 MiB chunks),
// its copy of a chunked answer, and net/http's (a request with a body).
var midAnswer = []struct{ name, raw string }{
	{"front end, plain", "GET /stream?n=3&d=3&size=1048576&cl=1 HTTP/1.1\r\nHost: x\r\n\r\n"},
	{"front end, chunked", "GET /stream?n=3&d=3 HTTP/1.1\r\nHost: x\r\n\r\n"},
	{"net/http", "POST /stream?n=3&d=3 HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\nx"},
}

// TestClientGoneMidAnswerKeepsItsWorker: a client that goes away partway
// through a streamed answer (its worker, serving one request at a time,
// sleeps between chunks) leaves the worker at it: the worker keeps its
// slot until the answer has ended, and the next request goes to the
// other process, not behind the rest of the abandoned answer. Before,
// the worker was given back at once and, the oldest, handed the next
// request, which waited for the stream to end. On every path. The WSGI
// loader, which finds the connection half-closed at the stream's next
// chunk, stops the stream there: 2 chunks of 3 (its iterable closed).
func TestClientGoneMidAnswerKeepsItsWorker(t *testing.T) {
	codes := &codeLog{}
	marks := testsupport.SharedDir(t)
	e := start(t, slowStream(ferryv1.EnvVar{Name: "MARKS", Value: marks}), proxy.Options{Observer: codes})
	for i, tc := range midAnswer {
		streamer := leaveMidAnswer(t, e, tc.raw)
		waitUntil(t, "the abandoned request ended", func() bool { return len(codes.all()) == 2*i+1 })
		resp, body := do(t, newRequest(t, http.MethodGet, e.URL+"/", nil))
		if resp.StatusCode != http.StatusOK || string(body) == streamer {
			t.Errorf("%s: GET / after the abandon: %d from pid %s; want 200 from the process not at the stream (%s)",
				tc.name, resp.StatusCode, body, streamer)
		}
		if n := sessionsOf(e, streamer); n != 1 {
			t.Errorf("%s: the streaming process %s has %d requests; want 1, its slot held until the stream ends", tc.name, streamer, n)
		}
		e.WaitFor(t, time.Minute, "the streaming process given back, alive", func(s pool.Status) bool {
			return len(s.Processes) == 2 && sessionsOf(e, streamer) == 0 && s.Processes[0].Sessions == 0 && s.Processes[1].Sessions == 0
		})
		closed := filepath.Join(marks, "closed")
		if sent, err := os.ReadFile(closed); err != nil || string(sent) != "2" {
			t.Errorf("%s: the stream's iterable was closed after %q chunks (%v); want 2 of 3, stopped once the proxy left", tc.name, sent, err)
		}
		if err := os.Remove(closed); err != nil {
			t.Fatal(err)
		}
	}
}

// TestAbandonedStreamOverrunsMaxRequestTime: a stream abandoned partway
// that does not end within maxRequestTime of the abandon has its worker
// killed, blamed on the stream's path; the next request goes to the other
// process meanwhile. Before, the worker was given back at once, the next
// request (GET /) waited behind the stream, got 504, and the kill was
// blamed on "/".
func TestAbandonedStreamOverrunsMaxRequestTime(t *testing.T) {
	codes := &codeLog{}
	book := agenttest.NewLogbook(t)
	log := book.Logger()
	tmpl := slowStream()
	tmpl.Pool.MaxRequestTime = &metav1.Duration{Duration: 2 * time.Second}
	e := agenttest.Start(t, pool.Config{Name: "t/overstream", Revision: "1", Template: tmpl},
		agenttest.Options{Log: &log, Proxy: proxy.Options{Observer: codes}})
	e.WaitFor(t, time.Minute, "ready workers", agenttest.Ready(2))
	streamer := leaveMidAnswer(t, e, "GET /stream?n=3&d=60 HTTP/1.1\r\nHost: x\r\n\r\n")
	waitUntil(t, "the abandoned request ended", func() bool { return len(codes.all()) == 1 })
	resp, body := do(t, newRequest(t, http.MethodGet, e.URL+"/", nil))
	if resp.StatusCode != http.StatusOK || string(body) == streamer {
		t.Errorf("GET / after the abandon: %d %q; want 200 from the process not at the stream (%s)", resp.StatusCode, body, streamer)
	}
	l := book.WaitFor(t, "Killing worker")
	p, _ := l.Value("path")
	w, _ := l.Value("pid")
	if p != "/stream" || fmt.Sprint(w) != streamer {
		t.Errorf("log line %q %v: want the kill of pid %s, blamed on /stream", l.Msg, l.KVs, streamer)
	}
	waitGone(t, streamer)
}

// leaveMidAnswer sends raw on a connection of its own, reads the head of
// the answer, and closes the connection (the client goes away while the
// worker sleeps between chunks). It returns the pid of the process at the
// request.
func leaveMidAnswer(t *testing.T, e *agenttest.Env, raw string) string {
	t.Helper()
	c, err := net.Dial("tcp", strings.TrimPrefix(e.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte(raw)); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("%q: the answer's head: %v", raw, err)
		}
		if line == "\r\n" {
			break
		}
	}
	s := e.WaitFor(t, 10*time.Second, "the stream under way", func(s pool.Status) bool {
		return len(s.Processes) == 2 && s.Processes[0].Sessions+s.Processes[1].Sessions == 1
	})
	for _, p := range s.Processes {
		if p.Sessions == 1 {
			return strconv.Itoa(int(p.PID))
		}
	}
	panic("unreachable")
}

// sessionsOf is how many requests the process pid has; -1 when it is not
// the pool's.
func sessionsOf(e *agenttest.Env, pid string) int {
	for _, p := range e.Pool.Status().Processes {
		if strconv.Itoa(int(p.PID)) == pid {
			return int(p.Sessions)
		}
	}
	return -1
}

// TestClientGoneBeforeAStreamKeepsItsWorker: a client that goes away
// before its answer began (its worker, serving one request at a time, is
// at it still: awaitAbandoned) leaves the worker its slot past the
// answer's head, until the whole answer has ended: a stream that begins
// after the client left (once the test opens its gate) and sleeps
// between chunks holds it, and the next request goes to the other
// process. Before, the worker was given back as the head came, and
// handed the next request, which waited behind the rest of the stream.
// The client leaves once the app has the request (MARKS/reached): the
// pool counts a session as the proxy takes the worker, before the
// request is sent, and a client gone before that leaves nothing at the
// worker to wait for.
func TestClientGoneBeforeAStreamKeepsItsWorker(t *testing.T) {
	codes := &codeLog{}
	marks := testsupport.SharedDir(t)
	e := start(t, slowStream(ferryv1.EnvVar{Name: "MARKS", Value: marks}), proxy.Options{Observer: codes})
	c, err := net.Dial("tcp", strings.TrimPrefix(e.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write([]byte("GET /stream?n=3&d=3&gate=1 HTTP/1.1\r\nHost: x\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	s := e.WaitFor(t, 10*time.Second, "the stream's worker at it", func(s pool.Status) bool {
		return exists(filepath.Join(marks, "reached")) && len(s.Processes) == 2 && s.Processes[0].Sessions+s.Processes[1].Sessions == 1
	})
	_ = c.Close()
	streamer := strconv.Itoa(int(s.Processes[0].PID))
	if s.Processes[1].Sessions == 1 {
		streamer = strconv.Itoa(int(s.Processes[1].PID))
	}
	waitUntil(t, "the client seen gone (499)", func() bool { return codes.count(499) == 1 })
	if err := os.WriteFile(filepath.Join(marks, "gate"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the stream begun", func() bool {
		_, err := os.Stat(filepath.Join(marks, "began"))
		return err == nil
	})
	resp, body := do(t, newRequest(t, http.MethodGet, e.URL+"/", nil))
	if resp.StatusCode != http.StatusOK || string(body) == streamer {
		t.Errorf("GET / once the abandoned stream began: %d from pid %s; want 200 from the process not at the stream (%s)",
			resp.StatusCode, body, streamer)
	}
	if n := sessionsOf(e, streamer); n != 1 {
		t.Errorf("the streaming process %s has %d requests; want 1, its slot held until the stream ends", streamer, n)
	}
	e.WaitFor(t, time.Minute, "the streaming process given back, alive", func(s pool.Status) bool {
		return len(s.Processes) == 2 && sessionsOf(e, streamer) == 0 && s.Processes[0].Sessions == 0 && s.Processes[1].Sessions == 0
	})
}

// TestAbandonedAnswerEndsAtItsFraming: an abandoned answer (its client
// gone partway through it, or before it began) is over where its framing
// says, at its length or its last chunk, not at its worker's close. The
// worker here, a Command server that serves one request at a time, keeps
// its connections open past an answer and ignores the half-close
// (testdata/keepidle, idle for 10 minutes): it is given back, alive, as
// its answer ends. Before, the proxy read on until the worker closed the
// connection: the worker was held until its own idle close (with
// maxRequestTime, killed as one whose answer did not end). On every path.
func TestAbandonedAnswerEndsAtItsFraming(t *testing.T) {
	gate := filepath.Join(testsupport.SharedDir(t), "gate")
	tmpl := commandApp("keepidle", ferryv1.EnvVar{Name: "GATE", Value: gate})
	tmpl.App.Concurrency = 1
	codes := &codeLog{}
	e := start(t, tmpl, proxy.Options{Observer: codes})
	pid := e.Pool.Status().Processes[0].PID
	for i, tc := range []struct {
		name, raw string
		midAnswer bool // the client reads the answer's head before it leaves
	}{
		{"front end, plain", "GET /stream?n=2097152&cl=1 HTTP/1.1\r\nHost: x\r\n\r\n", true}, // past the response buffer limit
		{"front end, chunked", "GET /stream?n=2097152 HTTP/1.1\r\nHost: x\r\n\r\n", true},
		{"net/http", "POST /stream?n=2097152 HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\nx", true},
		{"before the head", "GET /late HTTP/1.1\r\nHost: x\r\n\r\n", false},
	} {
		c, br := dial(t, e)
		if _, err := io.WriteString(c, tc.raw); err != nil {
			t.Fatal(err)
		}
		waitUntil(t, tc.name+": the worker at the answer", func() bool { return exists(gate + ".reached") })
		if tc.midAnswer {
			if resp, err := http.ReadResponse(br, nil); err != nil || resp.StatusCode != http.StatusOK {
				t.Fatalf("%s: the answer's head: %v %v", tc.name, resp, err)
			}
		}
		_ = c.Close()
		waitUntil(t, tc.name+": the request ended", func() bool { return len(codes.all()) == i+1 })
		if n := sessionsOf(e, strconv.Itoa(int(pid))); n != 1 {
			t.Errorf("%s: the worker has %d requests while its abandoned answer goes on; want 1", tc.name, n)
		}
		if err := os.WriteFile(gate, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		e.WaitFor(t, 30*time.Second, tc.name+": the worker given back as its answer ended, the connection still open",
			func(s pool.Status) bool { return len(s.Processes) == 1 && s.Processes[0].Sessions == 0 })
		waitUntil(t, tc.name+": the worker done with the answer", func() bool { return exists(gate + ".ended") })
		for _, f := range []string{gate, gate + ".reached", gate + ".ended"} {
			if err := os.Remove(f); err != nil {
				t.Fatal(err)
			}
		}
	}
	resp, body := do(t, newRequest(t, http.MethodGet, e.URL+"/", nil))
	if want := strconv.Itoa(int(pid)) + "\n"; resp.StatusCode != http.StatusOK || string(body) != want {
		t.Errorf("GET / after: %d %q; want 200 %q, from the same process", resp.StatusCode, body, want)
	}
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
