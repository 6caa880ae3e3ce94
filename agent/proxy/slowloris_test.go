package proxy_test

import (
	"io"
	"strings"
	"testing"
	"time"

	"github.com/ferry-dev/ferry/agent/proxy"
)

// TestTricklingHeadIsCutAsAWhole: a head that trickles in a byte every
// 100 ms, each byte well within ReadHeaderTimeout of the one before, is
// cut once ReadHeaderTimeout has passed since it began, long before it
// would end: on a new connection, and on a kept one after a request
// (slowloris). The front end reads these heads, which fit its buffer
// (TestTricklingHeadHasOneReadHeaderTimeout trickles one past it). None
// reaches the worker, and the pool's only process serves other clients
// meanwhile.
func TestTricklingHeadIsCutAsAWhole(t *testing.T) {
	tmpl := commandApp("seen")
	tmpl.App.Concurrency = 1
	e := start(t, tmpl, proxy.Options{ReadHeaderTimeout: 2 * time.Second})
	const pad = 200 // 20 s of bytes: ten ReadHeaderTimeouts
	for _, kept := range []bool{false, true} {
		c, br := dial(t, e)
		if kept {
			if _, err := io.WriteString(c, "GET /first HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
				t.Fatal(err)
			}
			if resp, body := readResponse(t, br, "GET"); resp.StatusCode != 200 {
				t.Fatalf("the first request: %d %q", resp.StatusCode, body)
			}
		}
		closed := make(chan struct{})
		go func() {
			_ = c.SetReadDeadline(time.Now().Add(time.Minute))
			_, _ = io.Copy(io.Discard, br)
			close(closed)
		}()
		head := "GET /trickled HTTP/1.1\r\nHost: x\r\nX-Pad: " + strings.Repeat("p", pad) + "\r\n\r\n"
		tick := time.NewTicker(100 * time.Millisecond)
		sent := 0
	trickle:
		for ; sent < len(head); sent++ {
			select {
			case <-closed:
				break trickle
			case <-tick.C:
			}
			if _, err := io.WriteString(c, head[sent:sent+1]); err != nil {
				break
			}
			if sent == 10 { // the process is free for others meanwhile
				if seen := requestsKept(t, e.URL); len(seen) > 1 || kept != (len(seen) == 1) {
					t.Errorf("kept %t: while the head trickles the worker had %v", kept, seen)
				}
			}
		}
		tick.Stop()
		select {
		case <-closed:
		case <-time.After(time.Minute):
			t.Fatalf("kept %t: the trickling head was never cut", kept)
		}
		if sent >= len(head) {
			t.Errorf("kept %t: the whole head (%d bytes at 100 ms) went out before the connection was cut", kept, sent)
		}
		for _, r := range requestsKept(t, e.URL) {
			if r.Line != "GET /first HTTP/1.1" {
				t.Errorf("kept %t: the worker got %q", kept, r.Line)
			}
		}
		c.Close()
	}
}
