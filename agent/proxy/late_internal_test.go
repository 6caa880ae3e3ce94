package proxy

import (
	"errors"
	"io"
	"strconv"
	"testing"
	"time"
)

// TestLargeBodySentInTimeReadLate: the worker writes its head and its
// whole body at once, well within maxRequestTime; the proxy (a busy node,
// a GC pause) starts reading the body only past the deadline. A body
// larger than the socket's buffers keeps the worker's write blocked on the
// proxy's own pace: past the deadline it flows, and is served, not taken
// for an overrun (found by review: the late reads took what the socket
// held and no more).
func TestLargeBodySentInTimeReadLate(t *testing.T) {
	const limit = 300 * time.Millisecond
	for _, size := range []int{64 << 10, 1 << 20, 16 << 20} {
		for network, pair := range socketPairs {
			t.Run(network+"/"+strconv.Itoa(size), func(t *testing.T) {
				client, server := pair(t)
				head := "HTTP/1.1 200 OK\r\nContent-Length: " + strconv.Itoa(size) + "\r\n\r\n"
				// Made before the clock starts: under -race, making and
				// copying 16 MiB takes 60-130 ms, and the write annotates
				// all of it before its first byte (the head) leaves.
				msg := append([]byte(head), make([]byte, size)...)
				deadline := time.Now().Add(limit)
				wrote := make(chan time.Duration, 1)
				go func() {
					_, _ = server.Write(msg) // at once, at t=0
					wrote <- time.Until(deadline)
				}()
				c, resp := headIn(t, client, deadline, limit)
				time.Sleep(time.Until(deadline) + 50*time.Millisecond) // the proxy is slow: the delay under test
				body := make([]byte, size)
				read := 0
				err := c.readBody(func() error {
					n, err := io.ReadFull(resp.Body, body[read:])
					read += n
					return err
				})
				var overran *overranError
				if errors.As(err, &overran) {
					t.Errorf("overran after %d of %d bytes; the worker began its single write %v before the deadline", read, size, limit)
				} else if err != nil {
					t.Errorf("%v", err)
				}
				_ = client.Close()
				left := <-wrote
				t.Logf("worker's write returned %v before the deadline (negative: after)", left)
			})
		}
	}
}
