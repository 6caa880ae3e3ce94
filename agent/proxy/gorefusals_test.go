package proxy_test

import (
	"strings"
	"testing"
	"time"

	"github.com/ferry-dev/ferry/agent/internal/agenttest"
	"github.com/ferry-dev/ferry/agent/pool"
	"github.com/ferry-dev/ferry/agent/proxy"
)

// TestGoServersOwnRefusals pins what docs/standalone.md ("When requests
// fail") says of the requests Go's HTTP server refuses before the proxy
// sees them: their bodies are Go's words, not "ferry:", and they are not
// counted (ferry_requests_total counts what the proxy's Observer is told).
// Should the proxy come to answer one of these itself, this test says the
// doc's second table must change.
func TestGoServersOwnRefusals(t *testing.T) {
	codes := &codeLog{}
	e := start(t, agenttest.WSGI("hello-wsgi", 1, 1), proxy.Options{Observer: codes, MaxHeaderBytes: 4 << 10})
	addr := strings.TrimPrefix(e.URL, "http://")
	for _, tc := range []struct {
		name, raw, head, body string
	}{
		{"a space in the path", "GET /a b HTTP/1.1\r\nHost: x\r\n\r\n", "HTTP/1.1 400 ", "400 Bad Request"},
		{"no Host", "GET / HTTP/1.1\r\n\r\n", "HTTP/1.1 400 ", "400 Bad Request: missing required Host header"},
		{"two different lengths", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab", "HTTP/1.1 400 ", "400 Bad Request"},
		{"an Expect other than 100-continue", "GET / HTTP/1.1\r\nHost: x\r\nExpect: something\r\n\r\n", "HTTP/1.1 417 ", ""},
		{"a URL over --max-header-bytes", "GET /" + strings.Repeat("a", 8<<10) + " HTTP/1.1\r\nHost: x\r\n\r\n", "HTTP/1.1 431 ",
			"431 Request Header Fields Too Large"},
		{"HTTP/3.0 in the request line", "GET / HTTP/3.0\r\nHost: x\r\n\r\n", "HTTP/1.1 505 ", "505 HTTP Version Not Supported: unsupported protocol version"},
	} {
		out, _ := rawExchangeClosed(t, addr, tc.raw, 30*time.Second)
		head, body, _ := strings.Cut(out, "\r\n\r\n")
		if !strings.HasPrefix(head, tc.head) || body != tc.body {
			t.Errorf("%s: got %q with body %q, want %q… with body %q", tc.name, firstLine(out), body, tc.head, tc.body)
		}
	}
	if got := codes.all(); len(got) != 0 {
		t.Errorf("requests counted by status: %v, want none (Go's server answered them)", got)
	}
	resp, body := do(t, newRequest(t, "GET", e.URL+"/", nil))
	if resp.StatusCode != 200 {
		t.Errorf("a GET after them: %d %q", resp.StatusCode, body)
	}
	e.WaitFor(t, 10*time.Second, "only the GET given to the worker", func(s pool.Status) bool {
		return len(s.Processes) == 1 && s.Processes[0].Processed == 1
	})
}
