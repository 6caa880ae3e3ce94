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

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ferry-dev/ferry/agent/proxy"
)

// TestSendTimeout: a client that reads none of a streaming response holds
// its worker only until SendTimeout passes with no byte written to it;
// then its connection is closed and the worker serves the next request.
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
	slow := dialSmallBuffer(t, addr)
	fmt.Fprintf(slow, "GET /big?bytes=%d HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", buffered)
	br := bufio.NewReader(slow)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	got, chunk := 0, make([]byte, 64<<10)
	for {
		k, err := io.ReadFull(resp.Body, chunk)
		got += k
		if err != nil {
			break
		}
		time.Sleep(20 * time.Millisecond) // about 3 MB/s: 5 s in all, most of it with the proxy's write blocked
	}
	if got != buffered {
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
