package proxy

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/ferry-dev/ferry/agent/pool"
)

// workerTransport carries requests to one worker over persistent
// connections, on the calling goroutine. Go's http.Transport runs a read
// and a write goroutine per connection and hands every request and
// response between them over channels; on a fast worker that hand-off,
// not the syscalls, was most of the proxy's CPU (BenchmarkRequest and
// the proxy benchmark in docs/benchmarks.md measure the difference).
//
// When nothing reached the worker (the dial failed, or the first write
// did), the error is a *notSentError and withRetries may give the request
// to another worker. Once a byte was written the request is the worker's,
// whatever happens to it (a request that crashed one worker must not be
// handed to the next), with one exception: a safe request (GET, HEAD,
// OPTIONS, TRACE, no body) on a kept connection that the worker closed
// before any byte of an answer came is a *staleConnError, and withRetries
// sends it once more, to the same worker on a new connection (replayed).
type workerTransport struct {
	network, addr string
	dialer        net.Dialer
	maxIdle       int

	// awaitsAbandoned: the worker serves one request at a time, and a
	// request its client abandons is still awaited (abandonedError).
	awaitsAbandoned bool

	mu     sync.Mutex
	idle   []*workerConn // most recently used last
	closed bool          // the worker is gone: keep nothing
}

// idleTimeout: an idle connection older than this is closed rather than
// reused (the worker may keep its end open longer; we do not need to).
const idleTimeout = 90 * time.Second

// aLongTimeAgo is a deadline that makes blocked reads and writes return.
var aLongTimeAgo = time.Unix(1, 0)

// NewWorkerTransport returns the transport that carries requests to w: it
// dials w's socket and keeps as many idle connections as w takes requests
// at once, so a busy worker never pays for a new connection.
func NewWorkerTransport(w *pool.Worker) http.RoundTripper {
	return &workerTransport{
		network: w.Network(), addr: w.Address(),
		dialer:  net.Dialer{Timeout: 5 * time.Second},
		maxIdle: max(2, w.Capacity()),
		// One that takes several at once is more than a WSGI process: it
		// may notice the connection closed and stop work no one awaits.
		awaitsAbandoned: w.Capacity() == 1,
	}
}

// notSentError: the request failed before any byte of it reached the
// worker, so it may go to another one.
type notSentError struct{ err error }

func (e *notSentError) Error() string { return e.err.Error() }
func (e *notSentError) Unwrap() error { return e.err }

// RoundTrip sends req, the outgoing request ReverseProxy made, on an idle
// or new connection and reads the response head. ReverseProxy uses it for
// upgrades; every other request takes Server.forward, which writes its
// head itself. A replay (the session in req's context is replaying) dials
// a new connection.
func (t *workerTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	hasBody := req.Body != nil && req.Body != http.NoBody
	sess, _ := req.Context().Value(sessionKey{}).(*session)
	var bound requestBound
	if sess != nil {
		// Up to the answer (101, or any other): the tunnel after a 101 is
		// not bound.
		bound = requestBound{limit: sess.maxRequestTime, afterBody: true}
	}
	return t.exchange(req, hasBody, func(c *workerConn) error { return c.writeRequest(req) }, sess != nil && sess.replaying, bound)
}

// exchange sends a request (write writes its head and body) and reads the
// response to it, on a new connection when fresh. The response body reads
// the connection, which goes back to the idle list when the body was read
// to its end and closed.
func (t *workerTransport) exchange(req *http.Request, hasBody bool, write func(*workerConn) error,
	fresh bool, bound requestBound) (*http.Response, error) {
	x, err := t.begin(req, hasBody, write, nil, time.Now(), fresh, bound)
	if err != nil {
		return nil, err
	}
	return x.receive()
}

// pending is a request written (or being written) to a worker, whose
// response is still to be read.
type pending struct {
	t     *workerTransport
	c     *workerConn
	req   *http.Request
	stop  func() bool // false once the request was cancelled (c is aborted)
	wrote bodyWrite   // the body writer's result; nil without a body
	safe  bool        // a safe method without a body: it may be replayed (staleConnError)
	// limit: the response head must come within this (maxRequestTime:
	// workerConn.bound), or the request overran; 0: no bound.
	limit time.Duration
}

// begin takes a connection and writes the request on it (beside the
// response read when it has a body). stop is the caller's own way to
// cancel the request (the front end's client watch), which returns false
// once the request was cancelled and keeps the connection from being
// aborted after it returned true; nil: the request's context cancels it.
// fresh: dial a new connection rather than reuse an idle one (a replay).
// bound is the request's maxRequestTime.
func (t *workerTransport) begin(req *http.Request, hasBody bool, write func(*workerConn) error, stop func() bool,
	now time.Time, fresh bool, bound requestBound) (pending, error) {
	for {
		// Without a body, the head's last write looks at a reused
		// connection itself (writeAwait), not get.
		c, err := t.get(req.Context(), now, fresh, !hasBody)
		if err != nil {
			return pending{}, &notSentError{err}
		}
		x, err := t.start(c, req, hasBody, write, stop, now, bound)
		if !errors.Is(err, errIdleGone) {
			return x, err
		}
		// The worker closed c while it was idle, and nothing was written
		// on it: the next idle connection, or a new one.
	}
}

// errIdleGone: an idle connection taken for a request was closed by its
// worker (or has bytes nobody asked for), and nothing was written on it.
var errIdleGone = errors.New("the worker closed the idle connection")

// start writes the request on c (beside the response read when it has a
// body): begin's work once it has a connection.
func (t *workerTransport) start(c *workerConn, req *http.Request, hasBody bool, write func(*workerConn) error,
	stop func() bool, now time.Time, bound requestBound) (pending, error) {
	limit := bound.limit
	c.written.Store(false)
	c.headBound, c.boundLimit = time.Time{}, limit // nothing else holds c yet: no lock
	if limit > 0 {
		c.headIn = false
	}
	if stop == nil {
		stop = context.AfterFunc(req.Context(), c.abort)
	}
	x := pending{t: t, c: c, req: req, stop: stop, safe: !hasBody && safeMethod(req.Method), limit: limit}
	// afterBody: the clock starts at the body's last byte, but a worker
	// that reads none of it for limit (its socket full) is as stuck as one
	// that does not answer: each write to it must end within limit (the
	// client's pace, between writes, is not counted).
	afterBody := limit > 0 && hasBody && bound.afterBody
	if limit > 0 && !afterBody {
		c.bound(now.Add(limit))
	}
	if hasBody {
		// A worker may answer before it read the whole body (413, say) and
		// stop reading: the body is written beside the response read, as
		// Go's transport does, or both sides would wait for each other.
		x.wrote = make(bodyWrite, 1)
		go func() {
			if afterBody {
				c.writeLimit = limit
			}
			err := write(c)
			if afterBody {
				c.writeLimit = 0
				c.writeBound(time.Time{})
				switch {
				case err == nil:
					c.bound(time.Now().Add(limit))
				case errors.Is(err, os.ErrDeadlineExceeded):
					c.bound(time.Now()) // overran, unless the head came or the request was cancelled
				}
			}
			x.wrote <- err
		}()
		return x, nil
	}
	c.awaitAfter, c.mustPeek = c.rs.raw != nil, c.rs.raw != nil && c.reused
	err := write(c)
	c.awaitAfter, c.mustPeek = false, false
	if err != nil {
		return pending{}, x.failed(err, true)
	}
	return x, nil
}

// receive reads the response head; its body reads the connection.
func (x pending) receive() (*http.Response, error) {
	c := x.c
	resp, silent, unbegun, err := c.readResponse(x.req)
	if err != nil {
		if unbegun && x.abandoned() {
			return nil, &abandonedError{err: err, c: c, limit: x.limit}
		}
		return nil, x.failed(err, silent)
	}
	x.headCame()
	if resp.StatusCode == http.StatusSwitchingProtocols {
		// The connection is the upgraded protocol's now; ReverseProxy
		// closes it when either side ends or the request is cancelled.
		x.stop()
		resp.Body = &upgradedConn{c: c}
		return resp, nil
	}
	// Only the worker's side decides: a client's Connection: close (or
	// HTTP/1.0) is about the client's connection, not this one.
	resp.Body = &workerBody{rc: resp.Body, c: c, t: x.t, stop: x.stop, wrote: x.wrote, reuse: !resp.Close}
	return resp, nil
}

// failed closes the connection of an exchange that failed (silent: before
// any byte of an answer came) and says whether the request may go to
// another worker (*notSentError) or be replayed (*staleConnError).
func (x pending) failed(err error, silent bool) error {
	// safe: no body is being written, so written says whether it was sent.
	stale := silent && x.safe && x.c.reused && x.c.written.Load() && peerGone(err)
	overran := x.limit > 0 && errors.Is(err, os.ErrDeadlineExceeded) && x.c.overran(time.Now())
	err = x.c.fail(x.stop, err, x.wrote)
	switch {
	case overran:
		return &overranError{err: err, limit: x.limit}
	case stale:
		return &staleConnError{err}
	}
	return err
}

// abandonedError: the client went away (the request was cancelled) once
// the whole request had reached a worker that serves one request at a
// time (awaitsAbandoned), before any byte of its answer came (interim
// 1xx responses aside, which say the worker is at it). The worker
// is at the request still, as a WSGI process does not notice its client
// gone: c, kept open and no longer the request's (x.stop), is where its
// answer, or its death, will show. Server.fail hands it to
// awaitAbandoned, which owns c from then on.
type abandonedError struct {
	err   error
	c     *workerConn
	limit time.Duration // the request's maxRequestTime, which c's read deadline still holds it to
}

// isAbandoned: err is an abandonedError. A function of its own, as the
// target of errors.As escapes: declared in forward, it would be allocated
// on every request.
func isAbandoned(err error) bool {
	var a *abandonedError
	return errors.As(err, &a)
}

func (e *abandonedError) Error() string { return e.err.Error() }
func (e *abandonedError) Unwrap() error { return e.err }

// abandoned reports whether the request, whose answer's read failed, was
// cancelled after all of it reached the worker, which is then still to be
// awaited (abandonedError): its connection is taken from the request
// (stop) and its cancel's deadlines lifted (keep). A body that failed
// never reached the worker whole: the connection is then closed as for
// any failure. Its writer's word is waited for: the cancel may have come
// as it wrote the body's last byte, before it said so (and set
// maxRequestTime's deadline, which keep restores); and it is soon had, as
// c is aborted (abort's deadline fails the writes to come), and a client
// gone sends no more of a body (net/http cancels a request only once its
// body was read to its end).
func (x pending) abandoned() bool {
	if !x.t.awaitsAbandoned || !x.c.cancelled() {
		return false
	}
	if _, err := x.wrote.result(true); err != nil {
		return false
	}
	x.c.takeFromRequest(x.stop)
	return true
}

// bodyWrite carries the result of a request body's writer, which writes
// beside the response read (start); nil when the request has no body.
type bodyWrite chan error

// result is the writer's result, which stays for the next look: ended is
// false while the writer is still at it (when wait is false; wait waits
// for it). Without a body (nil) there is no writer: ended, nil.
func (w bodyWrite) result(wait bool) (ended bool, err error) {
	if w == nil {
		return true, nil
	}
	if wait {
		err = <-w
	} else {
		select {
		case err = <-w:
		default:
			return false, nil
		}
	}
	w <- err
	return true, err
}

// headCame ends the bound on the wait for the response head: a body the
// client gets as it comes, which a slow client may hold up, is not bound
// (one the proxy buffers is: boundBody).
func (x pending) headCame() {
	if x.limit > 0 {
		x.c.unbound()
	}
}

// requestBound is a request's maxRequestTime: its worker must begin the
// answer within limit (0: no bound) of the request's first byte, or, when
// afterBody, of its last; and finish it by then when the proxy buffers its
// body (boundBody). afterBody is for a body that streams from the
// client, which the client's pace must not count against the worker; a
// body the proxy holds whole counts from the start, as a stuck worker
// may read none of it (the write would block, and the clock never start).
type requestBound struct {
	limit     time.Duration
	afterBody bool
}

// overranError: the worker sent no response head within maxRequestTime of
// the request, or (body) not the whole of a body the proxy buffers. The
// proxy answers 504 and the pool kills the worker (Router.Overran).
type overranError struct {
	err   error
	limit time.Duration // the request's maxRequestTime
	body  bool          // the head came, the whole body did not
}

func (e *overranError) Error() string { return e.err.Error() }
func (e *overranError) Unwrap() error { return e.err }

// staleConnError: a kept connection failed under a safe request before any
// byte of an answer came: the worker closed it in the instant between
// open's peek and the write (it closes idle connections on its own
// schedule), or it died of, or refused, the request. withRetries replays
// the request once, on a new connection to the same worker: that finds the
// first case out, and in the others fails again without handing the
// request to another worker.
type staleConnError struct{ err error }

func (e *staleConnError) Error() string { return e.err.Error() }
func (e *staleConnError) Unwrap() error { return e.err }

// safeMethod: RFC 9110's safe methods, which Go's transport also replays
// on a kept connection that failed.
func safeMethod(m string) bool {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace:
		return true
	}
	return false
}

// done ends an exchange whose response was read to its end by other means
// than receive's body (relay.go): c goes back to the idle list when the
// worker keeps it and nothing cancelled the request, else it is closed.
func (x pending) done(reuse bool, now time.Time) {
	if reuse && x.stop() && x.c.br.Buffered() == 0 {
		x.t.put(x.c, now)
		return
	}
	x.stop()
	_ = x.c.Close()
}

// CloseIdleConnections closes the idle connections, and makes the
// transport close every connection still in use when its request ends:
// the pool calls it when the worker is gone.
func (t *workerTransport) CloseIdleConnections() {
	t.mu.Lock()
	idle := t.idle
	t.idle, t.closed = nil, true
	t.mu.Unlock()
	for _, c := range idle {
		_ = c.Close()
	}
}

// get returns the most recently used idle connection that is still open,
// or dials a new one (always, when fresh). peekLater: the caller looks
// whether the worker closed an idle connection itself (writeAwait).
func (t *workerTransport) get(ctx context.Context, now time.Time, fresh, peekLater bool) (*workerConn, error) {
	for !fresh {
		t.mu.Lock()
		n := len(t.idle)
		if n == 0 {
			t.mu.Unlock()
			break
		}
		c := t.idle[n-1]
		t.idle[n-1] = nil
		t.idle = t.idle[:n-1]
		t.mu.Unlock()
		if now.Sub(c.idleSince) < idleTimeout && (peekLater || c.open()) {
			c.reused = true
			return c, nil
		}
		_ = c.Close()
	}
	conn, err := t.dialer.DialContext(ctx, t.network, t.addr)
	if err != nil {
		return nil, err
	}
	return newWorkerConn(conn), nil
}

// abandonedMidAnswer: an answer on c that stopped before its end, where
// its read failed (readFailed) or did not, was left by its client while
// its worker, one that serves a request at a time (awaitsAbandoned), is
// still at it (Server.leaveMidAnswer): the read did not fail (the client
// could not be written to, or the body was closed early), or failed only
// because the request was cancelled (its client went away). A read that
// failed on its own is the worker's failure. The front end's relay
// (relayEnded) and a response body (workerBody.leftMidAnswer) ask it.
func (t *workerTransport) abandonedMidAnswer(c *workerConn, readFailed bool) bool {
	return t.awaitsAbandoned && (!readFailed || c.cancelled())
}

// put keeps c for the next request, or closes it when enough are idle.
func (t *workerTransport) put(c *workerConn, now time.Time) {
	c.idleSince = now
	t.mu.Lock()
	if !t.closed && len(t.idle) < t.maxIdle {
		t.idle = append(t.idle, c)
		t.mu.Unlock()
		return
	}
	t.mu.Unlock()
	_ = c.Close()
}

// workerConn is one connection to a worker, with its buffers.
type workerConn struct {
	net.Conn
	rs      *rawSocket       // its reads and writes; rs.raw is nil when it has no file descriptor
	peekFn  func(fd uintptr) // c.peek, made once
	peekBuf [1]byte
	peeked  bool             // peek's answer: open and quiet
	lr      io.LimitedReader // under br: bounds a response head while it is read
	br      *bufio.Reader
	bw      *bufio.Writer
	written atomic.Bool // a byte of the current request reached the socket
	// writeLimit bounds each write of a body that streams (begin's body
	// writer alone sets and reads it): writeBound.
	writeLimit time.Duration
	reused     bool // it carried a request before this one
	idleSince  time.Time
	// awaitAfter: the request has no body, and its head's last write
	// waits for the answer (writeAwait), which awaitFn (c.await, made
	// once) does with aw.
	// mustPeek: it is a reused connection whose worker may have closed
	// it, which the await looks at first (open), not get.
	awaitAfter bool
	mustPeek   bool
	awaitFn    func(fd uintptr) bool
	aw         awaitState

	// The read deadlines of maxRequestTime (bound) and of a cancelled
	// request (abort), which a body writer and the client's watch may set
	// beside the response read: boundBy is the bound's deadline, zero when
	// none holds; headIn, the response head came (no bound from then on);
	// aborted, the request was cancelled (no deadline lifts that); kept,
	// c was taken from its request for an abandoned answer (keep), and
	// no abort touches it from then on.
	deadlineMu sync.Mutex
	boundBy    time.Time
	headIn     bool
	aborted    bool
	kept       bool
	// headBound is the deadline the head had (boundBy before unbound), and
	// boundLimit the request's maxRequestTime: a body the proxy buffers is
	// held to them (boundBody).
	headBound  time.Time
	boundLimit time.Duration
	// late: a buffered body's deadline passed, and its reader takes what
	// has reached the socket, and more only while it flows (readLate,
	// readLateStep; readBody's goroutine alone sets these, and reads
	// through them). lateFlowing: the last late read brought bytes;
	// lateUntil: no late read waits past it.
	late, lateFlowing bool
	lateUntil         time.Time
	// pause, while a body read through c is copied to a client, is the
	// client's writer: what it holds goes out when the worker pauses
	// (readOrFlush); pauseHolds: only once the pause lasted headWait.
	// The copy sets and clears them, on its goroutine.
	pause      http.Flusher
	pauseHolds bool
	hold       pauseHold
	// pauseDue: when the holds of this answer's pauses end, headWait
	// after its first (zero: none yet; newAnswer clears it). One due for
	// all of them, so that a worker that sends its answer in small pieces
	// less than headWait apart has it go out headWait after it first
	// paused, not once the client's buffer is full.
	pauseDue time.Time
}

func newWorkerConn(conn net.Conn) *workerConn {
	c := &workerConn{Conn: conn, rs: newRawSocket(conn)}
	if c.rs.raw != nil {
		c.peekFn, c.awaitFn = c.peek, c.await
	}
	c.lr = io.LimitedReader{R: c, N: math.MaxInt64}
	c.br = bufio.NewReader(&c.lr)
	c.bw = bufio.NewWriter(c)
	return c
}

// Read reads the connection with raw system calls (rawSocket) when it can:
// the response's reader and an upgrade's tunnel read through it. Past a
// buffered body's deadline it takes what is there, and waits for more only
// while the body flows (readLateStep).
func (c *workerConn) Read(p []byte) (int, error) {
	switch {
	case c.late:
		return c.readLateStep(p)
	case c.pause != nil:
		return c.readOrFlush(p)
	}
	return c.rs.Read(p)
}

// readOrFlush reads as Read does, but when the worker has sent nothing
// more yet, what the client's writer (c.pause) holds goes out first: a
// worker that sent its head and a few KiB, then works on the rest for
// seconds, has its client get them meanwhile, as nginx sends what it has
// as it comes. Asked "would the read wait?" by the read itself (rawSocket's
// noWait: the read(2) that says EAGAIN is the one a waiting read makes
// anyway), so a worker that keeps up costs no system call more, and the
// client's buffer still goes out full; one that pauses costs the flush's
// write(2) and a second read(2) before the wait. With pauseHolds (none
// of the answer reached the client yet) the flush waits until headWait
// after the answer's first pause (c.hold: a timer made once per
// connection; pauseDue), as a head alone waits for its body: a worker
// that sends a few bytes and fails at once gets its client a 502 naming
// it, not a head and the bytes cut short. On a connection without a file
// descriptor the read waits, unflushed. It is under the body's readers
// (bufio, net/http's chunked reader, which keeps any error it meets for
// good), so errWouldWait never reaches them.
func (c *workerConn) readOrFlush(p []byte) (int, error) {
	c.rs.noWait = true
	n, err := c.rs.Read(p)
	c.rs.noWait = false
	if !errors.Is(err, errWouldWait) {
		return n, err
	}
	if c.pauseHolds {
		now := time.Now()
		if c.pauseDue.IsZero() {
			c.pauseDue = now.Add(headWait)
		}
		if now.Before(c.pauseDue) {
			c.hold.begin(c.pause, c.pauseDue, c.pauseDue.Sub(now))
			defer c.hold.end() // also if the read panics: the writer is the caller's again
			return c.rs.Read(p)
		}
	}
	c.pause.Flush()
	return c.rs.Read(p)
}

// newAnswer says the next reads through c are of another answer: its
// pauses' holds start anew (pauseDue).
func (c *workerConn) newAnswer() {
	c.pauseDue = time.Time{}
}

// flushOnPause makes c's reads send what f holds when the worker pauses,
// holding it for headWait while unsent (nothing of the answer reached
// the client); nil f ends that.
func (c *workerConn) flushOnPause(f http.Flusher, unsent bool) {
	c.pause, c.pauseHolds = f, unsent
}

// flushingBody is the connection under resp's body, read from its worker
// as it comes, for a copy to set its pause on; nil for a body in memory.
func flushingBody(resp *http.Response) *workerConn {
	if b, ok := resp.Body.(*workerBody); ok {
		return b.c
	}
	return nil
}

// clientBuffer is the front end's writer to its client, as c.pause: its
// error stays the writer's, for the next Write to say the client left.
type clientBuffer bufio.Writer

func (b *clientBuffer) Flush() { _ = (*bufio.Writer)(b).Flush() }

// lateStep is how long a late read of a buffered body waits for more once
// the socket is empty, if the read before it brought bytes: a worker that
// wrote the body in time may still be blocked in that write, on the
// proxy's own late reading of a body larger than the socket's buffer, and
// refills the socket as soon as it is read. lateGrace caps the late reads
// of one body.
const (
	lateStep  = 50 * time.Millisecond
	lateGrace = time.Second
)

// readLateStep takes what the socket holds now (rawSocket.ReadNow); when it
// holds nothing but the last late read brought something, it waits up to
// lateStep for the next bytes, within lateGrace: a body that flows is read
// to its end, one that stalls is an overrun within lateStep.
func (c *workerConn) readLateStep(p []byte) (int, error) {
	n, err := c.rs.ReadNow(p)
	if n > 0 || !errors.Is(err, os.ErrDeadlineExceeded) || !c.lateFlowing || !c.waitLate() {
		c.lateFlowing = n > 0
		return n, err
	}
	n, err = c.rs.Read(p)
	c.lateFlowing = n > 0
	return n, err
}

// waitLate sets the read deadline lateStep on (not past lateUntil); false
// when lateUntil has passed or the request was cancelled (abort's deadline
// stays).
func (c *workerConn) waitLate() bool {
	c.deadlineMu.Lock()
	defer c.deadlineMu.Unlock()
	now := time.Now()
	if c.aborted || !now.Before(c.lateUntil) {
		return false
	}
	by := now.Add(lateStep)
	if by.After(c.lateUntil) {
		by = c.lateUntil
	}
	_ = c.SetReadDeadline(by)
	return true
}

// Write is the buffered writer's way out: it notes that bytes left.
func (c *workerConn) Write(p []byte) (int, error) {
	if c.awaitAfter {
		// A head without a body that comes in one write waits for its
		// answer there (a blank line ends a head, and nothing follows
		// it). One that comes in parts (longer than the buffer, or
		// flushed before a long field) is written plainly, after the look
		// the await would have made.
		c.awaitAfter = false
		if bytes.HasSuffix(p, headEnding) {
			return c.writeAwait(p)
		}
		return c.writeLooked(p)
	}
	return c.write(p)
}

// writeLooked writes p plainly, after the look at a reused connection
// that the await would have made (open): nothing is written on one its
// worker closed (errIdleGone).
func (c *workerConn) writeLooked(p []byte) (int, error) {
	if c.mustPeek {
		c.mustPeek = false
		if !c.open() {
			return 0, errIdleGone
		}
	}
	return c.write(p)
}

var headEnding = []byte("\r\n\r\n")

func (c *workerConn) write(p []byte) (int, error) {
	if c.writeLimit > 0 {
		c.writeBound(time.Now().Add(c.writeLimit))
	}
	n, err := c.rs.Write(p)
	if n > 0 {
		c.written.Store(true)
	}
	return n, err
}

// awaitState is what writeAwait's callback did: the bytes to write, how
// many it wrote, the write's error, and whether it ran at all (the Read
// returns before it when a deadline passed or the connection is closed).
type awaitState struct {
	p    []byte
	n    int
	err  error
	ran  bool
	gone bool // the look found the connection closed or not quiet: nothing was written
}

// writeAwait writes the head of a request without a body and waits until
// the worker's answer can be read, both in one RawConn.Read: the read
// that follows finds the answer, where a read right after the write would
// find nothing yet (EAGAIN) and cost a system call before its wait, one
// of the four a request cost on the worker's side (peek, write, and two
// reads; BenchmarkRequest's rw-syscalls/op counts them).
//
// RawConn.Read forgets a readiness that came before it began (the
// poller's reset), so whatever could make the connection readable must
// happen after that: the write, or an answer that came between a write
// and a wait begun after it would be waited for until the deadline, and
// the look at a reused connection (peek), or a close that came between a
// look and the Read would be forgotten too, and the request wait for an
// answer that never comes. A worker answers only what it was sent, so
// nothing else can. The wait's own error (a deadline, abort, Close) is
// left to that read, which meets it again.
func (c *workerConn) writeAwait(p []byte) (int, error) {
	c.aw = awaitState{p: p}
	_ = c.rs.raw.Read(c.awaitFn) // its error is left to what follows: the plain write (!ran), or the read of the answer
	aw := c.aw
	c.aw = awaitState{}
	switch {
	case !aw.ran:
		// The Read failed before its callback ran (a read deadline passed,
		// c is closed, or the poller saw an error on it): the head goes
		// out as it would without the await, plainly after the look, and
		// fails or not as that does. The Read's error would misclassify
		// the request: maxRequestTime's bound, a read deadline that a
		// slow dial may have passed already, never stopped a head's write
		// (the request would be both one that reached no worker, which
		// withRetries hands to another, and this worker's overrun); an
		// abort's deadline stops the plain write too.
		return c.writeLooked(p)
	case aw.gone:
		return 0, errIdleGone
	case aw.err != nil:
		return aw.n, &net.OpError{Op: "write", Net: c.LocalAddr().Network(), Source: c.LocalAddr(), Addr: c.RemoteAddr(),
			Err: os.NewSyscallError("write", aw.err)}
	case aw.n < len(p): // the socket is full: the plain write waits for room
		n, err := c.write(p[aw.n:])
		return aw.n + n, err
	}
	return aw.n, nil
}

// await is writeAwait's callback: its first call looks at a reused
// connection and writes (neither blocks, the socket being non-blocking),
// and asks for the wait when all was written; the next, after the wait,
// ends it. The write is a raw one, as rawSocket's.
func (c *workerConn) await(fd uintptr) bool {
	if c.aw.ran {
		return true
	}
	c.aw.ran = true
	if c.mustPeek {
		// After the Read's reset, so that a close that comes after
		// the look ends the wait.
		c.mustPeek = false
		if c.peek(fd); !c.peeked {
			c.aw.gone = true
			return true
		}
	}
	n, err := rawWrite(fd, c.aw.p)
	switch {
	case err == syscall.EAGAIN:
		return true
	case err != 0:
		c.aw.err = err
		return true
	}
	if n > 0 {
		c.aw.n = n
		c.written.Store(true)
	}
	return n < len(c.aw.p)
}

func (c *workerConn) abort() {
	c.deadlineMu.Lock()
	if !c.kept {
		c.aborted = true
		_ = c.SetDeadline(aLongTimeAgo)
	}
	c.deadlineMu.Unlock()
}

// cancelled: abort was called.
func (c *workerConn) cancelled() bool {
	c.deadlineMu.Lock()
	defer c.deadlineMu.Unlock()
	return c.aborted
}

// keep lifts abort's deadlines from c, whose request was abandoned but
// whose answer is still awaited (abandonedError, leaveMidAnswer);
// maxRequestTime's bound on the head, when one holds, is its read
// deadline again. An abort that comes after keep does nothing: the
// request's stop returns false once its abort has begun, which may then
// not yet have taken deadlineMu (a client gone with a reset, whose write
// failed as its context was cancelled), and c is no request's any more.
func (c *workerConn) keep() {
	c.deadlineMu.Lock()
	c.aborted, c.kept = false, true
	_ = c.SetWriteDeadline(time.Time{})
	_ = c.SetReadDeadline(c.boundBy)
	c.deadlineMu.Unlock()
}

// takeFromRequest takes c from its request for an abandoned answer
// (abandoned, leaveMidAnswer): stop ends the request's hold on c, and
// keep lifts an abort that came and makes any later one do nothing.
func (c *workerConn) takeFromRequest(stop func() bool) {
	stop()
	c.keep()
}

// closeWrite half-closes c (shutdown of its write side): the worker reads
// the end of the stream, as from a client that went away, and may still
// answer. TCP and unix connections can; any other kind is left as it is.
func (c *workerConn) closeWrite() {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
	}
}

// bound makes the response head's read fail at by (maxRequestTime), unless
// the head came already. A cancelled request keeps abort's deadline, but
// the bound is noted all the same: a request abandoned at its worker is
// awaited under it (keep), and a body's writer may set it (afterBody)
// after the cancel came.
func (c *workerConn) bound(by time.Time) {
	c.deadlineMu.Lock()
	if !c.headIn {
		c.boundBy = by
		if !c.aborted {
			_ = c.SetReadDeadline(by)
		}
	}
	c.deadlineMu.Unlock()
}

// writeBound makes a write of the request's body fail at by (zero: lifts
// it once the body was written), unless the request was cancelled
// (abort's deadline stays).
func (c *workerConn) writeBound(by time.Time) {
	c.deadlineMu.Lock()
	if !c.aborted {
		_ = c.SetWriteDeadline(by)
	}
	c.deadlineMu.Unlock()
}

// unbound lifts bound's deadline once the response head came (or a
// buffered body: boundBody).
func (c *workerConn) unbound() {
	c.deadlineMu.Lock()
	c.headIn = true
	if !c.boundBy.IsZero() {
		c.headBound = c.boundBy
		if !c.aborted {
			_ = c.SetReadDeadline(time.Time{})
		}
	}
	c.boundBy = time.Time{}
	c.deadlineMu.Unlock()
}

// boundBody holds the read of a response body that the proxy buffers
// (read whole before the client gets any of it) to the deadline the head
// had: no client paces such a body, so a worker that stalls in it is as
// stuck as one that sends no head. unbound lifts it once the body is in.
// It returns false when the request had no bound (or was cancelled).
func (c *workerConn) boundBody() bool {
	c.deadlineMu.Lock()
	defer c.deadlineMu.Unlock()
	if c.aborted || c.headBound.IsZero() {
		return false
	}
	c.boundBy = c.headBound
	_ = c.SetReadDeadline(c.boundBy)
	return true
}

// readBody reads a buffered body with read, which goes on where it
// stopped when called again, under boundBody's deadline, and lifts the
// deadline before the caller gives the connection back. Past the
// deadline, read goes on once more taking what has reached the socket,
// and more only while it flows (readLate): what the worker sent in time
// but the proxy was slow to read (a large body, a busy node) is no
// overrun, but a body that stalls is. Its error is bodyError's.
func (c *workerConn) readBody(read func() error) error {
	bound := c.boundBody()
	err := read()
	if bound && errors.Is(err, os.ErrDeadlineExceeded) && c.readLate() {
		err = read()
		c.late, c.lateFlowing = false, false
	}
	if err != nil {
		err = c.bodyError(err) // before unbound, which forgets the deadline
	}
	if bound {
		c.unbound()
	}
	return err
}

// readLate makes the connection's reads take what the socket holds
// (readLateStep), until readBody is done: a read past a deadline fails
// even with bytes there, and a later deadline alone would wait for bytes
// the worker sends after the limit. What reached the socket between the
// deadline and the proxy's look is taken too (nothing tells it apart),
// and what follows while it flows, for lateGrace at most; a body that
// stalls is an overrun. False when boundBody's deadline was not what
// ended the read (the request was cancelled).
func (c *workerConn) readLate() bool {
	c.deadlineMu.Lock()
	defer c.deadlineMu.Unlock()
	if c.aborted || c.boundBy.IsZero() {
		return false
	}
	c.late, c.lateFlowing, c.lateUntil = true, false, time.Now().Add(lateGrace)
	return true
}

// bodyError is the error of a buffered body's read that failed (err):
// an overrun of boundBody's deadline, or a body cut short.
func (c *workerConn) bodyError(err error) error {
	if errors.Is(err, os.ErrDeadlineExceeded) && c.overran(time.Now()) {
		return &overranError{err: err, limit: c.boundLimit, body: true}
	}
	return &cutShortError{err}
}

// overran: bound's deadline, not a cancellation, ended the read.
func (c *workerConn) overran(now time.Time) bool {
	c.deadlineMu.Lock()
	defer c.deadlineMu.Unlock()
	return !c.aborted && !c.boundBy.IsZero() && !now.Before(c.boundBy)
}

func (c *workerConn) writeRequest(req *http.Request) error {
	if err := req.Write(c.bw); err != nil {
		return err
	}
	return c.bw.Flush()
}

// maxResponseHead bounds a response head (interim ones included), as Go's
// transport does: one broken app must not exhaust the agent's memory.
const maxResponseHead = 10 << 20

// maxInterim bounds the interim responses read past before the final one.
const maxInterim = 5

// readResponse reads the final response head: interim 1xx responses
// (100 Continue, 103 Early Hints) are read past and not passed on, 101 is
// final. How far it got when it failed: silent, before any byte of a
// response came; unbegun, before any byte of the final one (interim ones
// may have come: the worker is still at the request, as when silent).
func (c *workerConn) readResponse(req *http.Request) (resp *http.Response, silent, unbegun bool, err error) {
	silent = c.br.Buffered() == 0
	c.lr.N = maxResponseHead
	defer func() { c.lr.N = math.MaxInt64 }()
	for range maxInterim + 1 {
		// Nothing of this response came if br holds nothing now and lr
		// gives no byte more before the read fails.
		empty, left := c.br.Buffered() == 0, c.lr.N
		resp, err = http.ReadResponse(c.br, req)
		switch {
		case err != nil && c.lr.N <= 0:
			return nil, false, false, fmt.Errorf("the response head is longer than %d bytes", maxResponseHead)
		case err != nil:
			return nil, silent && c.lr.N == maxResponseHead, empty && c.lr.N == left, err
		case resp.StatusCode < 100:
			return nil, false, false, fmt.Errorf("malformed response status %d", resp.StatusCode)
		case resp.StatusCode >= 200 || resp.StatusCode == http.StatusSwitchingProtocols:
			return resp, false, false, nil
		}
	}
	return nil, false, false, fmt.Errorf("more than %d interim (1xx) responses", maxInterim)
}

// fail closes c after a failed exchange and says whether the request may
// be retried. A body still being written (its client is slow) counts as
// sent: the retry would need the body the writer is still reading.
func (c *workerConn) fail(stop func() bool, err error, wrote bodyWrite) error {
	stop()
	_ = c.Close()
	ended, _ := wrote.result(false) // the writer's error: the read's says more
	if !ended || c.written.Load() {
		return err
	}
	return &notSentError{err}
}

// open reports whether the worker still has its end of an idle connection
// open and has sent nothing unasked: a worker closes idle connections on
// its own schedule (keep-alive timeouts, restarts), and a request written
// to such a connection would be lost. One non-blocking peek per reuse,
// made here for a request with a body (or a head written in parts), and
// by writeAwait's callback for the rest.
func (c *workerConn) open() bool {
	if c.rs.raw == nil {
		return true
	}
	c.peeked = false
	return c.rs.raw.Control(c.peekFn) == nil && c.peeked
}

// peek is the look at an idle socket. open runs it under RawConn.Control,
// not Read: the peek never waits, so it needs neither the read lock nor
// the poller (whose readiness Read would reset); await runs it under the
// Read it waits in, after that reset. Being a method value made once per
// connection, it costs no allocation per reuse. It cannot
// block (MSG_DONTWAIT), so it is a raw system call: the runtime need not
// be told. x/sys numbers it: Go's syscall has no recvfrom on linux/386,
// where it is a system call of its own since Linux 4.3. EAGAIN is the
// only answer of an open, quiet connection; EOF (0), a byte, or any error
// says it cannot carry a request.
func (c *workerConn) peek(fd uintptr) {
	_, _, errno := unix.RawSyscall6(unix.SYS_RECVFROM, fd, uintptr(unsafe.Pointer(&c.peekBuf[0])), 1,
		unix.MSG_PEEK|unix.MSG_DONTWAIT, 0, 0)
	c.peeked = errno == unix.EAGAIN
}

// workerBody is a response body that returns its connection to the idle
// list when it was read to the end, and closes it otherwise (a client that
// went away mid-response: draining the rest could take forever).
type workerBody struct {
	rc     io.ReadCloser
	c      *workerConn
	t      *workerTransport
	stop   func() bool
	wrote  bodyWrite
	reuse  bool
	eof    bool
	failed bool // a read failed: the worker's doing, unless the request was cancelled
	closed bool
}

func (b *workerBody) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	switch err {
	case nil:
	case io.EOF:
		b.eof = true
	default:
		b.failed = true
	}
	return n, err
}

// leftMidAnswer: the body is closed before its end though its worker, one
// that serves a request at a time (awaitsAbandoned), did not fail it: its
// client went away (or could not be written to), and the worker is still
// at the answer (Server.closeAnswer). A request body still being written
// (or whose write failed) is not: c is then closed, as before.
func (b *workerBody) leftMidAnswer() bool {
	if b.closed || b.eof || b.rc == http.NoBody || !b.t.abandonedMidAnswer(b.c, b.failed) {
		return false
	}
	ended, err := b.wrote.result(false)
	return ended && err == nil
}

func (b *workerBody) Close() error {
	if b.closed { // the connection may be another request's by now
		return nil
	}
	b.closed = true
	// stop is false when the request was cancelled: the deadline is spent.
	reuse := b.reuse && (b.eof || b.rc == http.NoBody) && b.stop()
	if reuse {
		ended, err := b.wrote.result(false) // not ended: the worker answered before it read the whole body
		reuse = ended && err == nil
	}
	if reuse && b.c.br.Buffered() == 0 {
		b.t.put(b.c, time.Now())
		return nil
	}
	b.stop()
	return b.c.Close()
}
