package proxy_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ferry-dev/ferry/agent/internal/agenttest"
	"github.com/ferry-dev/ferry/agent/pool"
	"github.com/ferry-dev/ferry/agent/proxy"
)

// TestGoServersOwnRefusals pins what docs/standalone.md ("When requests
// fail") says of the requests Go's HTTP server refuses before the proxy
// sees them: their bodies are Go's words, not "ferry:", and they are
// counted by their status (ferry_requests_total counts what the proxy's
// Observer is told), as the proxy's own answers are; a request line over
// --max-header-bytes, which Go answers 431 as a head over it, gets 414
// and a "ferry:" body. A request served before a refusal on the same
// connection is counted once, by its own status. A request whose lines
// end in a bare LF is served. Before, none of the refusals was counted,
// and the long request line got 431.
func TestGoServersOwnRefusals(t *testing.T) {
	codes := &codeLog{}
	e := start(t, agenttest.WSGI("hello-wsgi", 1, 1), proxy.Options{Observer: codes, MaxHeaderBytes: 4 << 10})
	addr := strings.TrimPrefix(e.URL, "http://")
	const goHead = "\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n"
	var want []int
	for _, tc := range []struct {
		name, raw, head, tail string // out begins with head and ends with tail
		counted               []int
	}{
		{"a space in the path", "GET /a b HTTP/1.1\r\nHost: x\r\n\r\n", "HTTP/1.1 400 ", goHead + "400 Bad Request", []int{400}},
		{"no Host", "GET / HTTP/1.1\r\n\r\n", "HTTP/1.1 400 ", goHead + "400 Bad Request: missing required Host header", []int{400}},
		{"two different lengths", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab", "HTTP/1.1 400 ", goHead + "400 Bad Request", []int{400}},
		{"an Expect other than 100-continue", "GET / HTTP/1.1\r\nHost: x\r\nExpect: something\r\n\r\n", "HTTP/1.1 417 ", "\r\n\r\n", []int{417}},
		{"a request line over --max-header-bytes", "GET /" + strings.Repeat("a", 8<<10) + " HTTP/1.1\r\nHost: x\r\n\r\n", "HTTP/1.1 414 Request URI Too Long\r\n",
			"\r\n\r\nferry: the URL is too long: the request line alone is over the 4096 bytes a request head may have here (--max-header-bytes)\n", []int{414}},
		{"a header field over --max-header-bytes", "GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("a", 8<<10) + "\r\n\r\n", "HTTP/1.1 431 ",
			goHead + "431 Request Header Fields Too Large", []int{431}},
		{"HTTP/3.0 in the request line", "GET / HTTP/3.0\r\nHost: x\r\n\r\n", "HTTP/1.1 505 ", goHead + "505 HTTP Version Not Supported: unsupported protocol version", []int{505}},
		{"a Transfer-Encoding other than chunked", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n", "HTTP/1.1 501 ",
			goHead + "Unsupported transfer encoding", []int{501}},
		{"garbage", "\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03garbage\r\n\r\n", "HTTP/1.1 400 ", goHead + "400 Bad Request", []int{400}},
		{"an HTTP/0.9 request line", "GET /\r\n\r\n", "HTTP/1.1 400 ", goHead + "400 Bad Request", []int{400}},
		{"lines ending in a bare LF", "GET / HTTP/1.1\nHost: x\nConnection: close\n\n", "HTTP/1.1 200 ", "", []int{200}},
		{"garbage after a request served", "GET / HTTP/1.0\r\nHost: x\r\nConnection: keep-alive\r\n\r\nhello there\r\n\r\n", "HTTP/1.0 200 ",
			"HTTP/1.1 400 Bad Request" + goHead + "400 Bad Request", []int{200, 400}},
	} {
		out, _ := rawExchangeClosed(t, addr, tc.raw, 30*time.Second)
		if !strings.HasPrefix(out, tc.head) || !strings.HasSuffix(out, tc.tail) {
			t.Errorf("%s: got %q, want %q… ending %q", tc.name, out, tc.head, tc.tail)
		}
		want = append(want, tc.counted...)
	}
	deadline := time.Now().Add(10 * time.Second) // only turns a miss into a failure: each is counted before its answer is written
	for len(codes.all()) < len(want) && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if got := codes.all(); !slices.Equal(got, want) {
		t.Errorf("requests counted by status, in the rows' order: %v, want %v", got, want)
	}
	resp, body := do(t, newRequest(t, "GET", e.URL+"/", nil))
	if resp.StatusCode != 200 {
		t.Errorf("a GET after them: %d %q", resp.StatusCode, body)
	}
	e.WaitFor(t, 10*time.Second, "only the GETs served given to the worker", func(s pool.Status) bool {
		return len(s.Processes) == 1 && s.Processes[0].Processed == 3
	})
}
