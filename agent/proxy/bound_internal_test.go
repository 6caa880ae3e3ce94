package proxy

import (
	"errors"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"testing"
	"time"
)

// TestABoundThatPassedBeforeTheHead: a request without a body whose
// maxRequestTime passed before its head was written (the dial, or the
// wait for a connection, took longer than the limit) is written all the
// same and overruns at its response's read, as when the head's write met
// no read deadline: it is the worker's overrun (504, the worker killed),
// not a request that reached no worker, which withRetries would hand to
// another one while the proxy counts it as this one's overrun. On a new
// connection and on a kept one (whose look at the worker's end comes with
// the write).
func TestABoundThatPassedBeforeTheHead(t *testing.T) {
	got := make(chan string, 4)
	addr := stubWorker(t, func(c net.Conn, req *http.Request) {
		got <- req.URL.Path
		if req.URL.Path == "/answer" {
			_, _ = c.Write([]byte("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"))
		} // else no answer: the worker is stuck
	})
	tr := &workerTransport{network: "tcp", addr: addr, maxIdle: 2}
	send := func(path string, now time.Time, limit time.Duration) error {
		return getThrough(tr, path, now, requestBound{limit: limit}, nil)
	}
	for _, kept := range []bool{false, true} {
		if kept {
			if err := send("/answer", time.Now(), 0); err != nil {
				t.Fatal(err)
			}
			<-got
			if len(tr.idle) != 1 {
				t.Fatalf("%d idle connections after an answer, want 1", len(tr.idle))
			}
		}
		err := send("/stuck", time.Now().Add(-time.Second), 100*time.Millisecond)
		var overran *overranError
		var notSent *notSentError
		if !errors.As(err, &overran) || errors.As(err, &notSent) {
			t.Fatalf("kept %v: %v (%T), want an overranError of a request that was sent", kept, err, err)
		}
		select {
		case p := <-got:
			if p != "/stuck" {
				t.Fatalf("kept %v: the worker got %s", kept, p)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("kept %v: the worker never got the request", kept)
		}
	}
}

// TestBufferedBodyBound: a buffered body's read is held to the head's
// deadline (boundBody). What the worker sent in time but the proxy read
// late (it sat in the socket past the deadline) is no overrun (readLate),
// and past the deadline more is waited for only while the body flows
// (lateStep): a body whose rest the worker sends well after it is an
// overrun, as is one the worker stalls in,
// told apart from a body cut short. Over TCP and a unix socket (a Command
// app's worker and a WSGI one), read as net/http's path reads it (the
// body of http.ReadResponse) and as the front end's does (the
// connection's buffer).
func TestBufferedBodyBound(t *testing.T) {
	const head = "HTTP/1.1 200 OK\r\nContent-Length: 65536\r\n\r\n"
	const limit = 100 * time.Millisecond
	cases := []struct {
		name      string
		sent      int           // body bytes the worker sends, then it stalls (or closes, when closes)
		closes    bool          // the worker closes after sent
		rest      time.Duration // the worker sends the rest of the body this long after the deadline
		readAfter time.Duration // the proxy's delay before reading the body
		want      string        // "", "overran" or "cut short"
	}{
		{"all of it, read on time", 65536, false, 0, 0, ""},
		{"all of it, read past the deadline", 65536, false, 0, 150 * time.Millisecond, ""},
		{"a stall", 1000, false, 0, 0, "overran"},
		{"a stall, read past the deadline", 1000, false, 0, 150 * time.Millisecond, "overran"},
		{"the rest after the deadline", 1000, false, 150 * time.Millisecond, 0, "overran"},
		// Past the deadline the late read takes what the socket holds,
		// then waits lateStep for more: the rest comes later than that.
		{"some read past the deadline, the rest far later", 20000, false, 300 * time.Millisecond, 150 * time.Millisecond, "overran"},
		{"the worker closes partway", 1000, true, 0, 0, "cut short"},
	}
	readers := map[string]func(c *workerConn, resp *http.Response) func(body []byte) (int, error){
		"net/http's body": func(_ *workerConn, resp *http.Response) func([]byte) (int, error) {
			return func(body []byte) (int, error) { return io.ReadFull(resp.Body, body) }
		},
		"the connection's buffer": func(c *workerConn, _ *http.Response) func([]byte) (int, error) {
			return func(body []byte) (int, error) { return io.ReadFull(c.br, body) }
		},
	}
	for network, pair := range socketPairs {
		for reader, readerOf := range readers {
			for _, tt := range cases {
				t.Run(network+"/"+reader+"/"+tt.name, func(t *testing.T) {
					t.Parallel()
					client, server := pair(t)
					deadline := time.Now().Add(limit)
					go func() {
						_, _ = server.Write(append([]byte(head), make([]byte, tt.sent)...))
						switch {
						case tt.closes:
							_ = server.Close()
						case tt.rest > 0:
							time.Sleep(time.Until(deadline.Add(tt.rest)))
							_, _ = server.Write(make([]byte, 65536-tt.sent))
						}
					}()
					c, resp := headIn(t, client, deadline, limit)
					time.Sleep(tt.readAfter) // the proxy's delay under test
					if c.headBound.IsZero() {
						t.Fatal("no bound for the body")
					}
					body := make([]byte, resp.ContentLength)
					read := 0
					readInto := readerOf(c, resp)
					err := c.readBody(func() error {
						n, err := readInto(body[read:])
						read += n
						return err
					})
					if !c.boundBy.IsZero() || c.late {
						t.Fatal("the body's bound outlived its read")
					}
					var overran *overranError
					var cut *cutShortError
					switch {
					case tt.want == "" && err != nil:
						t.Fatalf("%v after %d bytes, want the whole body", err, read)
					case tt.want == "overran" && (!errors.As(err, &overran) || !overran.body || overran.limit != limit):
						t.Fatalf("%v (%T) after %d bytes, want a body's overranError of %v", err, err, read, limit)
					case tt.want == "cut short" && !errors.As(err, &cut):
						t.Fatalf("%v (%T), want a cutShortError", err, err)
					}
				})
			}
		}
	}
}

// unixPair is a connected pair of unix stream socket connections.
func unixPair(t *testing.T) (local, peer net.Conn) {
	t.Helper()
	return connPair(t, "unix", filepath.Join(t.TempDir(), "s"))
}

// socketPairs are the connections a worker is reached by: TCP (a Command
// app) and a unix socket (a WSGI one).
var socketPairs = map[string]func(t *testing.T) (net.Conn, net.Conn){
	"tcp": func(t *testing.T) (net.Conn, net.Conn) {
		client, server := tcpPair(t)
		return client, server
	},
	"unix": unixPair,
}

// headIn reads a response head from client under a bound of limit ending
// at deadline, as the proxy does, and lifts the bound: the body is the
// caller's to read (readBody).
func headIn(t *testing.T, client net.Conn, deadline time.Time, limit time.Duration) (*workerConn, *http.Response) {
	t.Helper()
	c := newWorkerConn(client)
	c.headIn, c.boundLimit = false, limit
	c.bound(deadline)
	resp, err := http.ReadResponse(c.br, nil)
	if err != nil {
		t.Fatal(err)
	}
	c.unbound()
	return c, resp
}
