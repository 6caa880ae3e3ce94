package proxy_test

import (
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ferry-dev/ferry/agent/internal/agenttest"
	"github.com/ferry-dev/ferry/agent/pool"
	"github.com/ferry-dev/ferry/agent/proxy"
)

// TestNotForwardProxyNorHTTP2: CONNECT (Ferry is no forward proxy: an app
// answering 200 would read to the client as a tunnel opened) gets 405,
// and h2c's prior-knowledge preface (PRI * HTTP/2.0, which Go's server
// hands its handler) gets 505, both from the proxy itself with the
// connection closed: neither reaches a worker. Each counts as its code.
func TestNotForwardProxyNorHTTP2(t *testing.T) {
	codes := &codeLog{}
	e := start(t, agenttest.WSGI("hello-wsgi", 1, 1), proxy.Options{Observer: codes})
	addr := strings.TrimPrefix(e.URL, "http://")
	for _, tc := range []struct {
		raw  string
		code int
	}{
		{"CONNECT evil:443 HTTP/1.1\r\nHost: evil:443\r\n\r\n", http.StatusMethodNotAllowed},
		{"CONNECT /echo HTTP/1.1\r\nHost: x\r\n\r\n", http.StatusMethodNotAllowed}, // origin-form: the front end's
		{"CONNECT evil:443 HTTP/1.1\r\nHost: evil:443\r\nContent-Length: 3\r\n\r\nabc", http.StatusMethodNotAllowed},
		{"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", http.StatusHTTPVersionNotSupported},
	} {
		out, closed := rawExchangeClosed(t, addr, tc.raw, 30*time.Second)
		if !strings.HasPrefix(out, "HTTP/1.1 "+strconv.Itoa(tc.code)+" ") || !closed {
			t.Errorf("%q: got %q (closed %t), want %d and the connection closed", firstLine(tc.raw), out, closed, tc.code)
		}
	}
	if s := e.Pool.Status(); len(s.Processes) != 1 || s.Processes[0].Processed != 0 {
		t.Errorf("the worker was given requests: %+v, want none", s.Processes)
	}
	if codes.count(http.StatusMethodNotAllowed) != 3 || codes.count(http.StatusHTTPVersionNotSupported) != 1 {
		t.Errorf("requests counted by status: %v, want three 405 and one 505", codes.all())
	}
	resp, body := do(t, newRequest(t, http.MethodGet, e.URL+"/", nil))
	if resp.StatusCode != http.StatusOK {
		t.Errorf("a GET after them: %d %q", resp.StatusCode, body)
	}
	e.WaitFor(t, 10*time.Second, "the GET counted", func(s pool.Status) bool {
		return len(s.Processes) == 1 && s.Processes[0].Processed == 1
	})
}
