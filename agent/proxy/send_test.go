package proxy_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ferry-dev/ferry/agent/pool"
	"github.com/ferry-dev/ferry/agent/proxy"
)

// TestSendTimeout: a client that reads none of a streaming response, and
// so holds its worker, is cut off, and the worker serves the next request
// (which, without the cut, would wait out the minute's queue timeout).
// A client that reads slowly, but reads, gets the whole of a buffered
// response far larger than the sockets hold, which the proxy writes in
// one go.
func TestSendTimeout(t *testing.T) {
	tmpl := recordApp() // one worker, one request at a time
	tmpl.Pool.QueueTimeout = &metav1.Duration{Duration: time.Minute}
	tmpl.Proxy.ResponseBufferLimit = quantity("32Mi")
	e := start(t, tmpl, proxy.Options{SendTimeout: 2 * time.Second})
	addr := strings.TrimPrefix(e.URL, "http://")

	const streamed = 64 << 20 // past the buffer limit, and the sockets' buffers
	stalled := dialSmallBuffer(t, addr)
	fmt.Fprintf(stalled, "GET /big?bytes=%d HTTP/1.1\r\nHost: x\r\n\r\n", streamed)
	if _, err := io.ReadFull(stalled, make([]byte, 1)); err != nil { // the worker streams: it is held
		t.Fatal(err)
	}
	resp, body := do(t, newRequest(t, http.MethodGet, e.URL+"/count", nil))
	if resp.StatusCode != 200 {
		t.Fatalf("the next request, queued behind a client that reads nothing: %d %q, want 200", resp.StatusCode, body)
	}
	n, _ := io.Copy(io.Discard, stalled) // what was in flight, then the close
	if n >= streamed {
		t.Errorf("the client that read nothing got its whole response (%d bytes)", n)
	}

	const buffered = 16 << 20
	// About 3 MB/s: 5 s in all, most of it with the proxy's write blocked.
	if got := readSlowly(t, addr, buffered, 64<<10, 20*time.Millisecond); got != buffered {
		t.Errorf("a client reading slowly got %d bytes of %d", got, buffered)
	}
}

// dialSmallBuffer connects with a 16 KiB receive buffer, so that a client
// that does not read blocks the proxy's writes soon.
func dialSmallBuffer(t *testing.T, addr string) net.Conn {
	t.Helper()
	d := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		if err := rc.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 16<<10)
		}); err != nil {
			return err
		}
		return serr
	}}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// TestSteadyReaderIsNotCutOff: a client that reads steadily but slowly (16
// KiB every 50 ms), with a SendTimeout shorter than the time the kernel
// takes to wake the proxy's blocked write (a third of a send buffer of up
// to 4 MiB), is taking its response: it gets all of it.
func TestSteadyReaderIsNotCutOff(t *testing.T) {
	tmpl := recordApp()
	tmpl.Proxy.ResponseBufferLimit = quantity("32Mi")
	e := start(t, tmpl, proxy.Options{SendTimeout: time.Second})
	const total = 4 << 20
	if got := readSlowly(t, strings.TrimPrefix(e.URL, "http://"), total, 16<<10, 50*time.Millisecond); got != total {
		t.Errorf("a client reading 320 KiB/s got %d bytes of %d", got, total)
	}
}

// TestSendTimeoutOnNetHTTPsPath: a request the front end hands to net/http
// (HTTP/1.0) whose client reads none of its streamed response is cut off
// too, and its worker serves the next request.
func TestSendTimeoutOnNetHTTPsPath(t *testing.T) {
	tmpl := recordApp()
	tmpl.Pool.QueueTimeout = &metav1.Duration{Duration: time.Minute}
	e := start(t, tmpl, proxy.Options{SendTimeout: time.Second})
	stalled := dialSmallBuffer(t, strings.TrimPrefix(e.URL, "http://"))
	fmt.Fprintf(stalled, "GET /big?bytes=%d HTTP/1.0\r\nHost: x\r\n\r\n", 64<<20)
	if _, err := io.ReadFull(stalled, make([]byte, 1)); err != nil {
		t.Fatal(err)
	}
	if resp, body := do(t, newRequest(t, http.MethodGet, e.URL+"/count", nil)); resp.StatusCode != 200 {
		t.Fatalf("the next request, queued behind a client that reads nothing: %d %q, want 200", resp.StatusCode, body)
	}
}

// TestUpgradedConnections: an upgraded connection whose client sends but
// never reads is cut off; one idle for many SendTimeouts is not.
func TestUpgradedConnections(t *testing.T) {
	upgrade := func(t *testing.T, c net.Conn) *bufio.Reader {
		t.Helper()
		fmt.Fprintf(c, "GET /chat HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
		br := bufio.NewReader(c)
		if resp, err := http.ReadResponse(br, nil); err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
			t.Fatalf("upgrade: %v %v", resp, err)
		}
		return br
	}
	t.Run("reading nothing", func(t *testing.T) {
		e := start(t, commandApp("upgrade"), proxy.Options{SendTimeout: time.Second})
		c := dialSmallBuffer(t, strings.TrimPrefix(e.URL, "http://"))
		upgrade(t, c)
		done := make(chan error, 1)
		go func() {
			line := strings.Repeat("x", 1023) + "\n"
			for {
				if _, err := io.WriteString(c, line); err != nil {
					done <- err
					return
				}
			}
		}()
		select {
		case <-done: // the proxy closed the connection
		case <-time.After(30 * time.Second):
			t.Fatal("an upgraded client that reads none of its echoes was never cut off")
		}
	})
	t.Run("idle", func(t *testing.T) {
		e := start(t, commandApp("upgrade"), proxy.Options{SendTimeout: 100 * time.Millisecond})
		c := dialSmallBuffer(t, strings.TrimPrefix(e.URL, "http://"))
		br := upgrade(t, c)
		for i := range 3 {
			fmt.Fprintf(c, "hello %d\n", i)
			_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
			if line, err := br.ReadString('\n'); err != nil || line != fmt.Sprintf("echo: hello %d\n", i) {
				t.Fatalf("after %d idle seconds: %q %v", i, line, err)
			}
			time.Sleep(time.Second)
		}
	})
}

// TestSendTimeoutOutlivesAShutdownThatGaveUp: a Shutdown that gives up
// while a client that reads nothing holds a write leaves the watchdog to
// cut it off, which frees its worker.
func TestSendTimeoutOutlivesAShutdownThatGaveUp(t *testing.T) {
	e := start(t, recordApp(), proxy.Options{SendTimeout: time.Second})
	stalled := dialSmallBuffer(t, strings.TrimPrefix(e.URL, "http://"))
	fmt.Fprintf(stalled, "GET /big?bytes=%d HTTP/1.1\r\nHost: x\r\n\r\n", 64<<20)
	if _, err := io.ReadFull(stalled, make([]byte, 1)); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if err := e.Proxy.Shutdown(ctx); err == nil {
		t.Fatal("Shutdown finished with a client holding a write: the test proves nothing")
	}
	e.WaitFor(t, time.Minute, "the worker freed", func(s pool.Status) bool {
		return len(s.Processes) == 1 && s.Processes[0].Sessions == 0
	})
}

// readSlowly asks the record app for size bytes on a connection with a
// small receive buffer, reads them a piece at a time with a pause after
// each, and returns how many came before the end or an error.
func readSlowly(t *testing.T, addr string, size, piece int, pause time.Duration) int {
	t.Helper()
	c := dialSmallBuffer(t, addr)
	fmt.Fprintf(c, "GET /big?bytes=%d HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", size)
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	got, buf := 0, make([]byte, piece)
	for {
		k, err := io.ReadFull(resp.Body, buf)
		got += k
		if err != nil {
			return got
		}
		time.Sleep(pause)
	}
}
