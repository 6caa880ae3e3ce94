package proxy_test

import (
	"bufio"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/ferry-dev/ferry/agent/internal/agenttest"
	"github.com/ferry-dev/ferry/agent/pool"
	"github.com/ferry-dev/ferry/agent/proxy"
)

// sessionsFreedWithin waits up to d for the pool's process to have no
// request left, and reports whether it got there.
func sessionsFreedWithin(e *agenttest.Env, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		s := e.Pool.Status()
		if len(s.Processes) == 1 && s.Processes[0].Sessions == 0 {
			return true
		}
		time.Sleep(20 * time.Millisecond)
	}
	return false
}

// TestClientGoneMidStreamFreesTheWorker: a client that goes away while a
// chunked response (server-sent events, a long poll) is idle between two
// chunks takes the request off its worker at once, on both servers: the
// worker's slot must not wait for the next chunk to fail to be written.
// net/http's path notices (its background read cancels the request's
// context); the front end stops watching the client before it streams a
// response that is not plain.
func TestClientGoneMidStreamFreesTheWorker(t *testing.T) {
	e := start(t, commandApp("sse"), proxy.Options{})
	addr := strings.TrimPrefix(e.URL, "http://")
	for _, tc := range []struct{ name, raw string }{
		{"net/http", "POST /sse HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\nx"},
		{"front end", "GET /sse HTTP/1.1\r\nHost: x\r\n\r\n"},
	} {
		name, raw := tc.name, tc.raw
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Write([]byte(raw)); err != nil {
			t.Fatal(err)
		}
		br := bufio.NewReader(c)
		for { // the head and the first event
			line, err := br.ReadString('\n')
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			if strings.HasPrefix(line, "data: 1") {
				break
			}
		}
		e.WaitFor(t, 5*time.Second, "the stream under way", func(s pool.Status) bool {
			return len(s.Processes) == 1 && s.Processes[0].Sessions == 1
		})
		_ = c.Close() // gone while the stream is idle
		if !sessionsFreedWithin(e, 5*time.Second) {
			t.Errorf("%s: the worker's slot is still held 5s after its client went away (the next chunk is due at 10s)", name)
		}
		e.WaitFor(t, 60*time.Second, "the slot back", func(s pool.Status) bool {
			return len(s.Processes) == 1 && s.Processes[0].Sessions == 0
		})
	}
}
