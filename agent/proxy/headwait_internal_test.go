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

// TestBodyInHoldsNoHead: an answer whose body's first read returns at
// once, as it is in the connection's buffer already (some of it, or all
// of it when chunked: a chunked read goes on to the next chunk), does not
// hold its head for it (a timer and four allocations per small chunked
// answer, found by review); one whose read may wait for its worker does.
func TestBodyInHoldsNoHead(t *testing.T) {
	const chunked = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
	for _, tc := range []struct {
		raw  string
		held bool
	}{
		{chunked + "5\r\nhello\r\n0\r\n\r\n", false},
		{chunked + "5;a=b\r\nhello\r\n6 \r\n world\r\n0\r\nX-T: v\r\n\r\n", false},
		{chunked + "0\r\n\r\n", false},
		{chunked, true},
		{chunked + "5\r\nhel", true},
		{chunked + "5\r\nhello", true},
		{chunked + "5\r\nhello\r", true},
		{chunked + "5\r\nhello\r\n", true},
		{chunked + "5\r\nhello\r\n3\r\n", true}, // a read would wait for the second chunk's bytes
		{chunked + "5\r\nhello\r\n0\r\nX-T: v\r\n", true},
		{chunked + "zz\r\nhello\r\n0\r\n\r\n", true},
		{chunked + "5\r\nhello\r\n0\r\nX-T: v\nX-U: w\r\n\r\n", false},
		{chunked + "5\r\nhello\r\n0\r\n\n", true}, // net/http's reader waits for a CRLF, or a CRLF CRLF
		{chunked + "5\r\nhello\r\n0\r\nX-T: v\n\n", true},
		{chunked + "5\r\nhello\r\n0\r\nX-T: v\n\r\n", true},
		{"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nsome", false},
		{"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n", true},
	} {
		br := bufio.NewReader(strings.NewReader(tc.raw))
		resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodGet})
		if err != nil {
			t.Fatal(err)
		}
		resp.Body = &workerBody{rc: resp.Body, c: &workerConn{br: br}}
		if got := holdsHead(resp); got != tc.held {
			t.Errorf("%q: held %v, want %v", tc.raw, got, tc.held)
		}
	}
}

func TestChunkSize(t *testing.T) {
	for line, want := range map[string]int64{
		"0": 0, "5": 5, "1a": 26, "FF;x=y": 255, "10 \r": 16, "fffffffffffffff": 1<<60 - 1,
		"": -1, "x": -1, "0x5": -1, "-1": -1, "1000000000000000": -1, " 5": -1,
	} {
		got := int64(-1)
		if n, ok := chunkSize([]byte(line)); ok {
			got = int64(n)
		}
		if got != want {
			t.Errorf("chunkSize(%q) = %d, want %d (-1: not a size)", line, got, want)
		}
	}
}
