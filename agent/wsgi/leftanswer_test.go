package wsgi

import (
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// streamApp streams /stream?n=N: N chunks, 1.5 s apart (past LOOK_EVERY),
// and writes "closed" in its root, saying how many chunks it yielded, when
// the loader closes its iterable. /short and /long declare a
// Content-Length their bodies disagree with.
const streamApp = `
import os, time

def application(environ, start_response):
    path = environ["PATH_INFO"]
    if path == "/short":
        start_response("200 OK", [("Content-Length", "10")])
        return iter([b"hello"])
    if path == "/long":
        start_response("200 OK", [("Content-Length", "5")])
        return iter([b"hello", b" world"])
    n = int(environ["QUERY_STRING"].split("=")[1])
    start_response("200 OK", [("Content-Type", "text/plain")])
    return Stream(n)

class Stream:
    def __init__(self, n):
        self.n, self.sent = n, 0
    def __iter__(self):
        return self
    def __next__(self):
        if self.sent == self.n:
            raise StopIteration
        if self.sent:
            time.sleep(1.5)
        self.sent += 1
        return b"chunk\n"
    def close(self):
        with open("closed.tmp", "w") as f:
            f.write(str(self.sent))
        os.replace("closed.tmp", "closed")
`

// TestAbandonedStreamIsStopped: the proxy half-closes the connection of
// an answer whose client went away, and reads on until the loader closes
// it. A stream that would go on (100 chunks, 1.5 s apart) is stopped at
// its next chunk: its iterable is closed (PEP 3333), the loader says so,
// closes the connection, and serves the next one. A stream whose reader
// stays is not: it gets every chunk.
func TestAbandonedStreamIsStopped(t *testing.T) {
	root := t.TempDir()
	writeApp(t, root, streamApp)
	w := spawn(t, root)

	c := w.dial(t)
	if _, err := io.WriteString(c, "GET /stream?n=100 HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(c.br, &http.Request{Method: http.MethodGet})
	if err != nil {
		t.Fatal(err)
	}
	first := make([]byte, len("chunk\n"))
	if _, err := io.ReadFull(resp.Body, first); err != nil {
		t.Fatalf("the first chunk: %v", err)
	}
	if err := c.Conn.(*net.UnixConn).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	rest, err := io.ReadAll(resp.Body)
	if err == nil {
		t.Errorf("the abandoned stream ended whole (%d bytes more); want it cut short", len(rest))
	}
	c.expectEOF(t)
	sent, err := os.ReadFile(filepath.Join(root, "closed"))
	if n, _ := strconv.Atoi(string(sent)); err != nil || n < 1 || n >= 100 {
		t.Errorf("the iterable was closed after %q chunks (%v); want it closed partway", sent, err)
	}
	if !w.outputHas("ferry-wsgi: stopped the answer to GET /stream partway: its client went away") {
		t.Errorf("no line says the stream was stopped; output:\n%s", w.output.String())
	}

	resp, body := w.get(t, "/stream?n=3")
	if resp.StatusCode != http.StatusOK || body != strings.Repeat("chunk\n", 3) {
		t.Errorf("a stream whose reader stays: %d %q; want 200 and all 3 chunks", resp.StatusCode, body)
	}
}

// TestContentLengthMismatchIsLogged: a body shorter than the
// application's Content-Length, or longer, is cut off where it disagrees
// (the connection closed), and the loader says so: the request, the
// length declared and the bytes given.
func TestContentLengthMismatchIsLogged(t *testing.T) {
	root := t.TempDir()
	writeApp(t, root, streamApp)
	w := spawn(t, root)
	for _, tc := range []struct{ path, body, says string }{
		{"/short", "hello", "ferry-wsgi: the answer to GET /short gave 5 bytes, fewer than its Content-Length (10): "},
		{"/long", "hello", "ferry-wsgi: the answer to GET /long gave 11 bytes, more than its Content-Length (5): "},
	} {
		c := w.dial(t)
		if _, err := io.WriteString(c, "GET "+tc.path+" HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		resp, err := http.ReadResponse(c.br, &http.Request{Method: http.MethodGet})
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		if string(body) != tc.body {
			t.Errorf("%s: body %q, want %q", tc.path, body, tc.body)
		}
		c.expectEOF(t)
		if !w.outputHas(tc.says) {
			t.Errorf("%s: no line %q; output:\n%s", tc.path, tc.says, w.output.String())
		}
	}
}
