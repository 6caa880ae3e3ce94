package proxy

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"
)

// TestAbandonedAsItsBodyEnds: a client goes away the moment its request's
// body has all reached a worker that serves one request at a time (a
// client that posts and leaves: net/http cancels the request once it read
// the body to its end): after the body's writer wrote the last byte,
// before it said so and, for a body that streamed, before it set
// maxRequestTime's deadline, which counts from that byte. The request is
// awaited all the same (abandonedError), and the wait is still held to
// maxRequestTime: a worker stuck in the request overruns (awaitAbandoned
// has the pool kill it), not hold its slot for good. The worker here
// never answers.
func TestAbandonedAsItsBodyEnds(t *testing.T) {
	addr := silentWorker(t)
	const limit = 200 * time.Millisecond
	for _, tc := range []struct {
		name      string
		afterBody bool // maxRequestTime counts from the body's last byte
	}{{"a body that streamed", true}, {"a body the proxy held", false}} {
		t.Run(tc.name, func(t *testing.T) {
			tr := &workerTransport{network: "tcp", addr: addr, maxIdle: 2, awaitsAbandoned: true}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			req := (&http.Request{Method: http.MethodPost}).WithContext(ctx)
			write := func(c *workerConn) error {
				_, _ = io.WriteString(c.bw, "POST /stuck HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\n\r\nx")
				if err := c.bw.Flush(); err != nil {
					return err
				}
				// The client goes away, its request all at the worker; its
				// cancel's abort (context.AfterFunc) runs before the writer
				// says it is done.
				cancel()
				for !c.cancelled() {
					runtime.Gosched()
				}
				return nil
			}
			_, err := tr.exchange(req, true, write, false, requestBound{limit: limit, afterBody: tc.afterBody})
			var abandoned *abandonedError
			if !errors.As(err, &abandoned) {
				t.Fatalf("%v (%T); want an abandonedError: the whole request reached the worker, which is still at it", err, err)
			}
			defer abandoned.c.Close()
			if abandoned.limit != limit {
				t.Errorf("limit %v, want %v", abandoned.limit, limit)
			}
			// Read as awaitAbandoned reads it.
			read := make(chan error, 1)
			go func() {
				_, _, _, err := abandoned.c.readResponse(&http.Request{Method: http.MethodPost})
				read <- err
			}()
			select {
			case err := <-read:
				if !errors.Is(err, os.ErrDeadlineExceeded) {
					t.Errorf("the awaited answer's read: %v; want it ended by maxRequestTime's deadline", err)
				}
			case <-time.After(50 * limit): // a guard: without a deadline the read would never end
				t.Errorf("the awaited answer's read had not ended %v after maxRequestTime (%v): it had no deadline, and a worker stuck in the abandoned request would hold its slot for good",
					50*limit, limit)
			}
		})
	}
}

// silentWorker is a worker on loopback that reads requests and never
// answers them; it returns its address.
func silentWorker(t *testing.T) string {
	return stubWorker(t, func(_ net.Conn, req *http.Request) { _, _ = io.Copy(io.Discard, req.Body) })
}

// stubWorker is a worker on loopback that reads the requests on each
// connection and hands each to answer, with its connection; it returns
// its address.
func stubWorker(t *testing.T, answer func(c net.Conn, req *http.Request)) string {
	return stubConns(t, func(c net.Conn) {
		defer c.Close()
		br := bufio.NewReader(c)
		for {
			req, err := http.ReadRequest(br)
			if err != nil {
				return
			}
			answer(c, req)
		}
	})
}

// stubConns listens on loopback and hands each connection to serve, on a
// goroutine of its own; it returns its address.
func stubConns(t *testing.T, serve func(c net.Conn)) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go serve(c)
		}
	}()
	return l.Addr().String()
}

// TestAbortAfterKeepDoesNothing: a connection taken from its request for
// an abandoned answer (keep) is no request's any more, and the request's
// cancel (abort) may still come after keep: context.AfterFunc's stop
// returns false once abort has begun, before abort took deadlineMu (a
// client gone with a reset, whose write failed as its context was
// cancelled). That late abort must not set its deadline in the past, or
// the drain of the answer would fail at once: the worker, still at the
// answer, given back (or, with maxRequestTime, killed as overrun).
func TestAbortAfterKeepDoesNothing(t *testing.T) {
	conn, worker := connPair(t, "tcp", "127.0.0.1:0")
	c := &workerConn{Conn: conn, br: bufio.NewReader(conn)}

	c.keep()
	_ = c.SetReadDeadline(time.Now().Add(time.Minute)) // the drain begins: drainAbandoned's maxRequestTime
	c.abort()                                          // late: after keep
	if c.cancelled() {
		t.Error("an abort after keep marked the connection cancelled")
	}
	// Written first: a read whose deadline has passed fails even with
	// bytes waiting, so this read tells the two apart without a sleep.
	if _, err := io.WriteString(worker, "rest of the answer"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.br.ReadByte(); err != nil {
		t.Errorf("reading the rest of the answer after a late abort: %v; want it read", err)
	}
}

// TestAnswerRestEndsAtItsFraming: the rest of an abandoned answer is read
// to where its framing ends it (nil: the worker's answer ended whole, and
// it is given back with no wait to tell a death from a close), and only
// an answer without framing, or one cut short, ends at the worker's close
// (io.EOF, io.ErrUnexpectedEOF: diedUnder waits reapWait). What follows
// the end is not read. A chunked body whose read failed where the client
// left (the cancel's deadline: "|" in raw), which spoils
// http.ReadResponse's reader, is followed again from a chunk's start;
// partway through a chunk, it is read to the close.
func TestAnswerRestEndsAtItsFraming(t *testing.T) {
	const after = "HTTP/1.1 200 OK\r\n" // what the worker sends after the answer: no one's asking
	const chunks = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n"
	for _, tc := range []struct {
		name, method, raw string
		want              error
	}{
		{"a length", http.MethodGet, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhe|llo" + after, nil},
		{"a length, cut short", http.MethodGet, "HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nhe|llo", io.ErrUnexpectedEOF},
		{"chunked", http.MethodGet, chunks + "0\r\n\r\n" + after, nil},
		{"chunked, cut short", http.MethodGet, chunks, io.ErrUnexpectedEOF},
		{"chunked, failed between chunks", http.MethodGet, chunks + "|3\r\nbye\r\n0\r\nX-T: 1\r\n\r\n" + after, nil},
		{"chunked, failed between chunks, cut short", http.MethodGet, chunks + "|3\r\nby", io.ErrUnexpectedEOF},
		{"chunked, failed partway through a chunk", http.MethodGet, chunks + "3\r\nb|ye\r\n0\r\n\r\n" + after, io.EOF},
		{"no body (HEAD)", http.MethodHead, "HTTP/1.1 200 OK\r\n\r\n" + after, nil},
		{"no body (204)", http.MethodGet, "HTTP/1.1 204 No Content\r\n\r\n" + after, nil},
		{"ended by the close", http.MethodGet, "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nhello", io.EOF},
	} {
		src := io.Reader(strings.NewReader(tc.raw))
		before, rest, failed := strings.Cut(tc.raw, "|")
		if failed {
			src = io.MultiReader(strings.NewReader(before), &failOnce{}, strings.NewReader(rest))
		}
		br := bufio.NewReader(src)
		resp, err := http.ReadResponse(br, &http.Request{Method: tc.method})
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if failed {
			if _, err := io.Copy(io.Discard, resp.Body); !errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatalf("%s: reading up to the cancel: %v", tc.name, err)
			}
		}
		if err := restOfBody(resp, resp.Body, br, failed)(); !errors.Is(err, tc.want) || err != nil && tc.want == nil {
			t.Errorf("%s: the rest ended with %v; want %v", tc.name, err, tc.want)
		}
		if left, _ := io.ReadAll(br); tc.want == nil && strings.HasSuffix(tc.raw, after) && string(left) != after {
			t.Errorf("%s: %q left unread; want %q, what follows the answer", tc.name, left, after)
		}
	}
	for _, tc := range []struct {
		name string
		rest string
		want error
	}{{"a length", "hello" + after, nil}, {"a length, cut short", "hel", io.EOF}} {
		br := bufio.NewReader(strings.NewReader(tc.rest))
		if err := restOfLength(br, 5)(); !errors.Is(err, tc.want) || err != nil && tc.want == nil {
			t.Errorf("relayed, %s: the rest ended with %v; want %v", tc.name, err, tc.want)
		}
		if left, _ := io.ReadAll(br); strings.HasSuffix(tc.rest, after) && string(left) != after {
			t.Errorf("relayed, %s: %q left unread; want %q, what follows the answer", tc.name, left, after)
		}
	}
}

// failOnce fails its first read as a cancelled request's does (abort's
// deadline), then ends: the next reader of an io.MultiReader goes on.
type failOnce struct{ failed bool }

func (f *failOnce) Read([]byte) (int, error) {
	if f.failed {
		return 0, io.EOF
	}
	f.failed = true
	return 0, os.ErrDeadlineExceeded
}
