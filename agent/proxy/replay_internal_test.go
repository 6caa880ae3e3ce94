package proxy

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"testing"
	"time"
)

// keptServer answers the first request on each connection; on the next it
// writes second (when empty, nothing: a silent close) and closes the
// connection.
func keptServer(t *testing.T, second string) string {
	return stubConns(t, func(c net.Conn) { serveTwice(c, second) })
}

func serveTwice(c net.Conn, second string) {
	defer c.Close()
	br := bufio.NewReader(c)
	for i := 0; ; i++ {
		req, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		_ = req.Body.Close()
		if i > 0 {
			_, _ = c.Write([]byte(second))
			return
		}
		_, _ = c.Write([]byte("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"))
	}
}

// TestStaleOnlyWhenSilent: a safe request failing on a kept connection is
// a staleConnError (which withRetries replays) only when no byte of a
// response came, read by receive alone (net/http's path) or after a Peek,
// as the front end's peekPlain does first.
func TestStaleOnlyWhenSilent(t *testing.T) {
	for _, tc := range []struct {
		name, second string
		peek         bool
		stale        bool
	}{
		{"silent", "", false, true},
		{"silent after a failed peek", "", true, true},
		{"part of a head", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n", false, false},
		{"part of a head, peeked", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n", true, false},
		{"an interim response", "HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n", false, false},
		{"an interim response, peeked", "HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n", true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr := &workerTransport{network: "tcp", addr: keptServer(t, tc.second), maxIdle: 2}
			get := func() error {
				return getThrough(tr, "/", time.Now(), requestBound{}, func(x pending) {
					if tc.peek {
						_, _ = x.c.br.Peek(1)
					}
				})
			}
			if err := get(); err != nil {
				t.Fatal(err)
			}
			err := get() // on the kept connection, which fails
			var stale *staleConnError
			if err == nil || errors.As(err, &stale) != tc.stale {
				t.Errorf("on the kept connection: %v (%T), want a staleConnError: %v", err, err, tc.stale)
			}
		})
	}
}

// getThrough sends a GET of path through tr (begun at now, bound by
// bound), lets before look at it once it is written, and reads the answer
// to its end.
func getThrough(tr *workerTransport, path string, now time.Time, bound requestBound, before func(pending)) error {
	req, _ := http.NewRequest(http.MethodGet, "http://x"+path, nil)
	x, err := tr.begin(req, false, func(c *workerConn) error { return c.writeRequest(req) }, nil, now, false, bound)
	if err != nil {
		return err
	}
	if before != nil {
		before(x)
	}
	resp, err := x.receive()
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.Body.Close()
}
