package proxy_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ferry-dev/ferry/agent/internal/agenttest"
	"github.com/ferry-dev/ferry/agent/pool"
	"github.com/ferry-dev/ferry/agent/proxy"
)

// dialSlowReader connects to e with a small receive buffer, as a client on
// a slow network is to the proxy: what it does not read stays in the
// proxy's socket.
func dialSlowReader(t *testing.T, addr string) (net.Conn, *bufio.Reader) {
	t.Helper()
	d := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		err := rc.Control(func(fd uintptr) { serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
		if err != nil {
			return err
		}
		return serr
	}}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c, bufio.NewReader(c)
}

// TestSlowReaderHoldsNoProcess: while a client has not read a large
// response, the app's only process serves others; the client still gets
// every byte, on the front end's path (HTTP/1.1) and on net/http's (1.0).
func TestSlowReaderHoldsNoProcess(t *testing.T) {
	tmpl := recordApp()
	tmpl.Proxy.ResponseBufferLimit = quantity("32Mi")
	e := start(t, tmpl, proxy.Options{})
	const size = 16 << 20 // beyond what the kernel buffers between proxy and client
	for _, proto := range []string{"HTTP/1.1", "HTTP/1.0"} {
		c, br := dialSlowReader(t, strings.TrimPrefix(e.URL, "http://"))
		fmt.Fprintf(c, "GET /big?bytes=%d %s\r\nHost: x\r\n\r\n", size, proto)
		e.WaitFor(t, 30*time.Second, "the process free again", func(s pool.Status) bool {
			return len(s.Processes) == 1 && s.Processes[0].Sessions == 0 && s.Processes[0].Processed >= 1
		})
		requestsSeen(t, e.URL) // the only process answers while the client has not read
		_ = c.SetReadDeadline(time.Now().Add(time.Minute))
		resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodGet})
		if err != nil {
			t.Fatalf("%s: %v", proto, err)
		}
		n, err := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || n != size || err != nil {
			t.Errorf("%s: %d, %d bytes (%v), want 200 and %d", proto, resp.StatusCode, n, err, size)
		}
		c.Close()
	}
}

// TestWorkerDyingMidBodyGets502: a buffered response whose process dies
// mid-body has not reached the client: it gets a 502 naming the process,
// not a response cut short; HEAD, with no body, is not mistaken for one.
func TestWorkerDyingMidBodyGets502(t *testing.T) {
	e := start(t, recordApp(), proxy.Options{})
	pid := e.Pool.Status().Processes[0].PID
	for i, proto := range []string{"HTTP/1.1", "HTTP/1.0"} {
		if i > 0 {
			pid = waitReplacement(t, e, pid)
		}
		out := rawExchange(t, strings.TrimPrefix(e.URL, "http://"), "GET /die?bytes=200000 "+proto+"\r\nHost: x\r\nConnection: close\r\n\r\n", 30*time.Second)
		want := fmt.Sprintf("the worker process (pid %d) exited while handling this request", pid)
		if !strings.HasPrefix(out, proto+" 502") && !strings.HasPrefix(out, "HTTP/1.1 502") || !strings.Contains(out, want) {
			t.Errorf("%s: got %.200q, want a 502 saying %q", proto, out, want)
		}
	}
	waitReplacement(t, e, pid)
	resp, body := do(t, newRequest(t, http.MethodHead, e.URL+"/big?bytes=200000", nil))
	if resp.StatusCode != 200 || resp.ContentLength != 200000 || len(body) != 0 {
		t.Errorf("HEAD: %d, length %d, %d bytes of body; want 200, 200000 and none", resp.StatusCode, resp.ContentLength, len(body))
	}
}

// TestWorkerCuttingItsAnswerShortGets502: a buffered response whose
// process closes the connection partway through its body, and lives on,
// gets the client a 502 that says so, on both servers' paths: not that
// the process did not answer, which would send its operator looking for
// the wrong fault.
func TestWorkerCuttingItsAnswerShortGets502(t *testing.T) {
	e := start(t, recordApp(), proxy.Options{})
	pid := e.Pool.Status().Processes[0].PID
	want := fmt.Sprintf("the worker process (pid %d) closed the connection partway through its answer", pid)
	for _, proto := range []string{"HTTP/1.1", "HTTP/1.0"} {
		out := rawExchange(t, strings.TrimPrefix(e.URL, "http://"), "GET /short?bytes=200000 "+proto+"\r\nHost: x\r\nConnection: close\r\n\r\n", 30*time.Second)
		if !strings.HasPrefix(out, proto+" 502") && !strings.HasPrefix(out, "HTTP/1.1 502") || !strings.Contains(out, want) {
			t.Errorf("%s: got %.200q, want a 502 saying %q", proto, out, want)
		}
	}
}

// waitReplacement waits for the one process that replaced died, and
// returns its pid: the one that died may still be listed, ready.
func waitReplacement(t *testing.T, e *agenttest.Env, died int32) int32 {
	t.Helper()
	e.WaitFor(t, time.Minute, "a replacement ready", func(s pool.Status) bool {
		return s.Counts.Ready == 1 && len(s.Processes) == 1 && s.Processes[0].PID != died
	})
	return e.Pool.Status().Processes[0].PID
}

// TestSlowWriteIsNotIdleTime: a client that takes longer than the idle
// timeout to read a buffered response was not idle: its next request on
// the connection is served.
func TestSlowWriteIsNotIdleTime(t *testing.T) {
	tmpl := recordApp()
	tmpl.Proxy.ResponseBufferLimit = quantity("32Mi")
	idle := 500 * time.Millisecond
	e := start(t, tmpl, proxy.Options{IdleTimeout: idle})
	c, br := dialSlowReader(t, strings.TrimPrefix(e.URL, "http://"))
	const size = 16 << 20
	fmt.Fprintf(c, "GET /big?bytes=%d HTTP/1.1\r\nHost: x\r\n\r\n", size)
	time.Sleep(3 * idle) // the client reads nothing for a while, then all of it
	_ = c.SetReadDeadline(time.Now().Add(time.Minute))
	resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodGet})
	if err != nil {
		t.Fatal(err)
	}
	if n, err := io.Copy(io.Discard, resp.Body); n != size || err != nil {
		t.Fatalf("%d bytes (%v), want %d", n, err, size)
	}
	resp.Body.Close()
	fmt.Fprintf(c, "GET /count HTTP/1.1\r\nHost: x\r\n\r\n")
	resp, err = http.ReadResponse(br, &http.Request{Method: http.MethodGet})
	if err != nil {
		t.Fatalf("the next request on the connection: %v (closed as idle while the response was being read?)", err)
	}
	resp.Body.Close()
}

// TestResponseMemoryIsGivenBack: what buffered responses take of the
// agent's memory budget comes back when they are written, by either path;
// a response the budget cannot hold is relayed, whole.
func TestResponseMemoryIsGivenBack(t *testing.T) {
	const budget = 300_000
	mem := proxy.NewBudget(budget)
	e := start(t, recordApp(), proxy.Options{ResponseMemory: mem})
	addr := strings.TrimPrefix(e.URL, "http://")
	for _, size := range []int{200_000, 400_000} { // within the budget, and past it
		for _, proto := range []string{"HTTP/1.1", "HTTP/1.0"} {
			out := rawExchange(t, addr, fmt.Sprintf("GET /big?bytes=%d %s\r\nHost: x\r\nConnection: close\r\n\r\n", size, proto), 30*time.Second)
			if _, body, _ := strings.Cut(out, "\r\n\r\n"); len(body) != size {
				t.Errorf("%s, %d bytes: %d arrived", proto, size, len(body))
			}
			waitUntil(t, "the budget given back", func() bool { return mem.Left() == budget })
		}
	}
}
