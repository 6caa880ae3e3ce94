package proxy

import (
	"bufio"
	"net/http"
	"strings"
	"testing"
)

// TestEmptyAnswerHoldsNoHead: an answer without a body (to HEAD, a 204, a
// length of 0) reads none from its worker, so its head is not held
// (holdHead, a timer and four allocations); one with a body, chunked or
// of a length, is (found by review: every HEAD and empty answer on
// net/http's path set and stopped a timer).
func TestEmptyAnswerHoldsNoHead(t *testing.T) {
	for _, tc := range []struct {
		method, head string
		held         bool
	}{
		{http.MethodHead, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n", false},
		{http.MethodGet, "HTTP/1.1 204 No Content\r\n\r\n", false},
		{http.MethodGet, "HTTP/1.1 304 Not Modified\r\n\r\n", false},
		{http.MethodGet, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", false},
		{http.MethodGet, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n", true},
		{http.MethodGet, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", true},
	} {
		req := &http.Request{Method: tc.method}
		resp, err := http.ReadResponse(bufio.NewReader(strings.NewReader(tc.head)), req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body = &workerBody{rc: resp.Body} // as receive wraps it
		if got := streams(resp); got != tc.held {
			t.Errorf("%s %q: held %v, want %v", tc.method, tc.head, got, tc.held)
		}
	}
}
