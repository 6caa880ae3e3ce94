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
// and writes "stopped" in its root, saying how many chunks it yielded,
// when the loader closes its iterable before its end. /write?n=N writes
// them with PEP 3333's write() instead, and writes "stopped", saying how
// many it wrote, if write() raises an OSError; /writeiter?n=N too, but
// from inside the iterable it returns (a generator that writes each chunk
// with write() and yields nothing). /closeraises?n=N yields them from a
// generator that raises RuntimeError("cleanup failed") when closed.
// /short and /long declare a Content-Length their bodies disagree with.
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
    write = start_response("200 OK", [("Content-Type", "text/plain")])
    if path == "/write":
        for _ in writing(write, n):
            pass
        return []
    if path == "/writeiter":
        return writing(write, n)
    if path == "/closeraises":
        return raising(n)
    return Stream(n)

def writing(write, n):
    for i in range(n):
        if i:
            time.sleep(1.5)
        try:
            write(b"chunk\n")
        except OSError:
            mark("stopped", str(i))
            raise
        yield b""

def mark(name, text):
    with open(name + ".tmp", "w") as f:
        f.write(text)
    os.replace(name + ".tmp", name)

def raising(n):
    try:
        for i in range(n):
            if i:
                time.sleep(1.5)
            yield b"chunk\n"
    except GeneratorExit:
        raise RuntimeError("cleanup failed")

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
        if self.sent < self.n:
            mark("stopped", str(self.sent))
`

// TestAbandonedStreamIsStopped: the proxy half-closes the connection of
// an answer whose client went away, and reads on until the loader closes
// it. A stream that would go on (10 chunks, 1.5 s apart) is stopped at its
// next chunk: a streamed iterable is closed (PEP 3333); an application
// that writes its answer with PEP 3333's write() in a loop of its own
// has write() raise (an OSError, which PEP 3333 allows), and so does one
// whose iterable calls write(). The loader says which, closes the
// connection, and serves the next one. (Before, the last read "the
// application's iterable is closed", as if the loader had stopped it.) A stream whose
// reader stays is not stopped: it gets every chunk. Before, write() never
// raised: such a loop wrote to its end for no one.
func TestAbandonedStreamIsStopped(t *testing.T) {
	root := t.TempDir()
	writeApp(t, root, streamApp)
	w := spawn(t, root)
	for _, tc := range []struct{ path, how string }{
		{"/stream", "the application's iterable is closed"},
		{"/write", "its write() raised an OSError (Abandoned) in the application"},
		{"/writeiter", "its write() raised an OSError (Abandoned) in the application's iterable, which let it through; the iterable is closed"},
	} {
		leaveAfterFirstChunk(t, w, tc.path+"?n=10")
		stopped := filepath.Join(root, "stopped")
		sent, err := os.ReadFile(stopped)
		if n, _ := strconv.Atoi(string(sent)); err != nil || n < 1 || n >= 10 {
			t.Errorf("%s: the app was stopped after %q chunks (%v); want it stopped partway", tc.path, sent, err)
		}
		says := "ferry-wsgi: stopped the answer to GET " + tc.path + " partway: its client went away (the proxy closed the connection); " + tc.how + "\n"
		w.expectOutput(t, says)
		if err := os.Remove(stopped); err != nil {
			t.Fatal(err)
		}
		resp, body := w.get(t, tc.path+"?n=3")
		if resp.StatusCode != http.StatusOK || body != strings.Repeat("chunk\n", 3) {
			t.Errorf("%s: a stream whose reader stays: %d %q; want 200 and all 3 chunks", tc.path, resp.StatusCode, body)
		}
	}
}

// leaveAfterFirstChunk asks w for path, a stream of chunk lines, reads
// the first, and half-closes the connection as the proxy does when the
// client went away: the rest must be cut short (not end whole), and the
// connection closed.
func leaveAfterFirstChunk(t *testing.T, w *worker, path string) {
	t.Helper()
	c := w.dial(t)
	if _, err := io.WriteString(c, "GET "+path+" HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(c.br, &http.Request{Method: http.MethodGet})
	if err != nil {
		t.Fatal(err)
	}
	first := make([]byte, len("chunk\n"))
	if _, err := io.ReadFull(resp.Body, first); err != nil {
		t.Fatalf("%s: the first chunk: %v", path, err)
	}
	if err := c.Conn.(*net.UnixConn).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	if rest, err := io.ReadAll(resp.Body); err == nil {
		t.Errorf("%s: the abandoned stream ended whole (%d bytes more); want it cut short", path, len(rest))
	}
	c.expectEOF(t)
}

// TestStoppedStreamWhoseCloseRaises: a stream stopped because its client
// went away, whose generator raises as it is closed, has both said, in
// order: the line that the answer was stopped, then the close's error
// and traceback. Before, the close's traceback took the stop line's place.
func TestStoppedStreamWhoseCloseRaises(t *testing.T) {
	root := t.TempDir()
	writeApp(t, root, streamApp)
	w := spawn(t, root)
	leaveAfterFirstChunk(t, w, "/closeraises?n=10")
	lines := []string{
		"ferry-wsgi: stopped the answer to GET /closeraises partway: its client went away (the proxy closed the connection); the application's iterable is closed\n",
		"ferry-wsgi: error closing the iterable of the stopped answer to GET /closeraises?n=10\n",
		"RuntimeError: cleanup failed\n",
	}
	w.expectOutput(t, lines[2])
	out, at := w.output.String(), -1
	for _, l := range lines {
		i := strings.Index(out, l)
		if i <= at {
			t.Errorf("%q is not after the line before it (at %d, want after %d); output:\n%s", l, i, at, out)
		}
		at = i
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
		w.expectOutput(t, tc.says)
	}
}
