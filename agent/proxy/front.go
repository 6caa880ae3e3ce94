package proxy

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ferry-dev/ferry/agent/pool"
)

// The front end: the proxy's own HTTP/1.1 server for the requests most
// traffic is made of, in front of net/http's, which serves the rest.
//
// Go's server costs a request more than this proxy's whole forwarding
// path does: it parses every field into a map of canonical keys, starts a
// background read of the connection (a goroutine's wake-up and two
// syscalls) to notice a client that goes away, builds a context and a
// response writer, and copies the response's fields into a map of its own
// (docs/benchmarks.md, proxy overhead, has the profile). The front end
// reads a request head into a buffer of the connection's, checks it
// strictly (head.go), and writes it to the worker from that buffer.
//
// It takes an HTTP/1.1 request in origin-form without a body, upgrade,
// expectation or TE, whose head fits its buffer and whose lines all are
// well-formed. Anything else (a body, HTTP/1.0, a malformed line) is
// handed to net/http with the connection, bytes already read included:
// net/http serves that request and the rest of the connection exactly as
// it did before the front end existed, and rejects what it rejects. A
// connection never comes back from net/http.
//
// A client that goes away while its request waits (queued, or at a slow
// worker) is noticed as Go's server notices it, by reading the
// connection, but only once the request has waited watchAfter: the fast
// requests that make up most traffic pay nothing for it.

// frontBufferSize bounds a request head the front end takes; a longer one
// (big cookies) goes to net/http, which allows up to MaxHeaderBytes.
const frontBufferSize = 8 << 10

// watchAfter is how long a request waits for its response before the
// front end starts watching for its client to go away.
const watchAfter = 50 * time.Millisecond

// Connection states, for Shutdown: an idle connection is closed at once,
// an active one after its response, a new one after its first request (or
// when it sends none within ReadHeaderTimeout), as net/http treats them.
const (
	stateNew int32 = iota
	stateIdle
	stateActive
	stateClosed
)

// clientConn is one client connection the front end serves.
type clientConn struct {
	s      *Server
	conn   net.Conn
	sc     *sendConn // conn, whose writes it counts (nil when it is another kind)
	br     *bufio.Reader
	bw     *bufio.Writer
	ip     string // the client's, for X-Forwarded-For
	head   requestHead
	state  atomic.Int32
	ctx    context.Context // cancelled when the client goes away
	cancel context.CancelFunc
	// req is what the worker transport sees of each request: its method
	// (a response to HEAD has no body).
	req   *http.Request
	sess  *session
	resp  responseHead            // the worker's, when plain (relay.go)
	write func(*workerConn) error // cc.writeHead, bound once
	stop  func() bool             // cc.stopAbort, bound once
	// abort is how the watch cancels the request at a worker (writeHead,
	// stopAbort, clientGone): per connection, where context.AfterFunc
	// would cost an allocation and a map entry per request.
	abort struct {
		mu     sync.Mutex
		worker *workerConn
		gone   bool
	}
	// idleBy is the read deadline set for an idle wait (idleDeadline);
	// zero once another is set.
	idleBy time.Time
	// headBy is the deadline of the head being read (ReadHeaderTimeout),
	// which a handoff passes on; zero while waiting for a head.
	headBy time.Time
	// relayedAt is when the previous response was relayed (session.end),
	// the next idle deadline's start; zero: read the clock.
	relayedAt time.Time
	send      func() (sent, error) // cc.sendToWorker, bound once
	reply     replyWriter          // refusals and failures
	watch     watch
}

// watch is a connection's watch for its client going away while a
// request waits. On a busy connection (a request within watchAfter of
// the one before) its timer is not set and stopped per request, which
// cost two timer-heap updates each: it stays set, fires at most every
// watchAfter while requests keep coming, and each firing watches the
// request waiting since watchAfter or more, sets itself for the current
// request's remaining wait, or lets itself lapse on an idle connection.
// On a connection with sparser requests it is stopped after each, as a
// firing per request (a goroutine) would cost more than the stop.
type watch struct {
	timer    *time.Timer
	mu       sync.Mutex
	set      bool      // the timer is set, or its firing is under way
	waiting  bool      // a request waits for its response
	since    time.Time // when it began to
	busy     bool      // it began within watchAfter of the one before
	reading  bool      // watchClient reads the connection for it
	stopping bool      // disarmWatch ends that read
	done     chan struct{}
}

var (
	readers = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, frontBufferSize) }}
	writers = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, 4<<10) }}
)

func newClientConn(s *Server, c net.Conn) *clientConn {
	cc := &clientConn{s: s, conn: c}
	cc.sc, _ = c.(*sendConn)
	cc.br = readers.Get().(*bufio.Reader)
	cc.br.Reset(c)
	cc.bw = writers.Get().(*bufio.Writer)
	cc.bw.Reset(c)
	if ip, _, err := net.SplitHostPort(c.RemoteAddr().String()); err == nil {
		cc.ip = ip
	}
	cc.ctx, cc.cancel = context.WithCancel(context.Background())
	cc.req = &http.Request{} // its context is never cancelled: the watch aborts the worker's connection
	cc.write, cc.send, cc.stop = cc.writeHead, cc.sendToWorker, cc.stopAbort
	cc.watch.done = make(chan struct{}, 1)
	cc.watch.timer = time.AfterFunc(time.Hour, cc.watchClient)
	cc.watch.timer.Stop()
	return cc
}

// release returns cc's buffers; the connection is closed or net/http's.
func (cc *clientConn) release() {
	cc.cancel()
	cc.watch.timer.Stop()
	cc.br.Reset(nil)
	readers.Put(cc.br)
	cc.bw.Reset(nil)
	writers.Put(cc.bw)
}

// serveFront serves c until it closes, or hands it to net/http.
func (s *Server) serveFront(c net.Conn) {
	if _, ok := c.(*tls.Conn); ok {
		s.handoff.give(c)
		return
	}
	cc := newClientConn(s, c)
	if !s.track(cc, true) {
		_ = c.Close()
		cc.release()
		return
	}
	defer s.track(cc, false)
	defer s.recoverFront(cc)
	for first := true; ; first = false {
		take, handoff := cc.readHead(first)
		switch {
		case handoff:
			prefix := cc.buffered()
			if why := badFraming(prefix); why != "" {
				s.refuseFraming(cc, why)
				return
			}
			s.handedOff.Add(1)
			cc.release()
			s.handoff.give(&prefixConn{Conn: c, s: s, prefix: prefix, headBy: cc.headBy})
			return
		case !take || !s.serveRequest(cc) || !cc.state.CompareAndSwap(stateActive, stateIdle) || s.closing.Load():
			_ = c.Close()
			cc.release()
			return
		}
	}
}

// badFraming says why the head at the start of b, as far as b holds it,
// is refused ("" when it is not): it has both a Content-Length and a
// Transfer-Encoding field, it is HTTP/1.0 with a Transfer-Encoding, or
// it begins with an empty line.
//
// The first is a smuggling attempt as often as not: a server or balancer
// in front that went by the length sent what the proxy would read as the
// next request. net/http goes by the encoding and keeps the connection;
// RFC 9112 (6.1) has the server reject it or close the connection after
// it, and the front end, which sees the head before net/http does,
// rejects it, as nginx does. The second is the same desync the other way:
// net/http drops an HTTP/1.0 request's Transfer-Encoding unread, reads
// the body by its length (none: empty), and may keep the connection for
// the next request, which would begin with the chunks a balancer in front
// sent as the body; RFC 9112 (6.1) has the framing taken as faulty, and
// nginx answers 400. Lines may end in a bare LF, as net/http takes them.
// An empty line where the request line should be is refused too: readHead
// skipped as many as a client sends (emptyLines).
func badFraming(b []byte) string {
	var length, encoding, http10 bool
	first := true
	for line := range bytes.Lines(b) {
		line = bytes.TrimRight(line, "\r\n")
		if first { // the request line
			if len(line) == 0 { // readHead skipped maxEmptyLines before it
				return "ferry: too many empty lines before the request line"
			}
			http10, first = bytes.HasSuffix(line, []byte(" HTTP/1.0")), false
			continue
		}
		name, _, ok := bytes.Cut(line, []byte{':'})
		switch {
		case len(name) == 0 && !ok: // the blank line: the head ends
			return ""
		case asciiEqualFold(name, "content-length"):
			length = true
		case asciiEqualFold(name, "transfer-encoding"):
			encoding = true
		}
		switch {
		case length && encoding:
			return "ferry: a request may not have both Content-Length and Transfer-Encoding"
		case http10 && encoding:
			return "ferry: an HTTP/1.0 request may not have a Transfer-Encoding"
		}
	}
	return ""
}

// refuseFraming answers a request badFraming refused 400, saying why, and
// closes its connection: nothing after it on the connection can be
// trusted to be a request.
func (s *Server) refuseFraming(cc *clientConn, why string) {
	_ = cc.conn.SetWriteDeadline(time.Now().Add(time.Second))
	_, _ = cc.conn.Write(closingAnswer(http.StatusBadRequest, why))
	// Closed with the client's bytes unread, the connection would be
	// reset, and the answer might be lost with it: half-close, and give
	// the client a moment to read and close, as net/http does.
	if cw, ok := cc.conn.(interface{ CloseWrite() error }); ok && cw.CloseWrite() == nil {
		_ = cc.conn.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
		_, _ = io.Copy(io.Discard, io.LimitReader(cc.conn, 256<<10))
	}
	_ = cc.conn.Close()
	cc.release()
	if s.opts.Observer != nil {
		s.opts.Observer.RequestDone(http.StatusBadRequest, 0)
	}
}

// readHead waits for a request and reads its head. take: the front end
// serves it (cc.head); handoff: net/http gets the connection; neither:
// the connection is done (closed by the client, timed out, shut down).
func (cc *clientConn) readHead(first bool) (take, handoff bool) {
	o := &cc.s.opts
	if first {
		cc.headBy = time.Now().Add(o.ReadHeaderTimeout)
		_ = cc.conn.SetReadDeadline(cc.headBy)
	} else {
		cc.headBy = time.Time{}
		now := cc.relayedAt
		if now.IsZero() {
			now = time.Now()
		}
		cc.relayedAt = time.Time{}
		cc.idleDeadline(o.IdleTimeout, now)
	}
	from := stateIdle
	if first {
		from = stateNew
	}
	if _, err := cc.br.Peek(1); err != nil || !cc.state.CompareAndSwap(from, stateActive) {
		return false, false
	}
	limit := min(o.MaxHeaderBytes, cc.br.Size())
	deadline := first
	for {
		buf, _ := cc.br.Peek(cc.br.Buffered())
		skip := emptyLines(buf) // skipped whichever server serves the request
		n := headEnd(buf[skip:])
		switch {
		case n > limit, n < 0, n == 0 && len(buf) >= limit:
			_, _ = cc.br.Discard(skip)
			return false, true
		case n > 0:
			cc.head.reset()
			cc.head.raw = append(cc.head.raw, buf[skip:skip+n]...)
			_, _ = cc.br.Discard(skip)
			if !parseHead(&cc.head, o.TrustForwardedFor) {
				return false, true // the head is still unread: net/http reads it all
			}
			_, _ = cc.br.Discard(n)
			return true, false
		}
		if !deadline { // the head comes in pieces: it has ReadHeaderTimeout
			cc.idleBy, cc.headBy = time.Time{}, time.Now().Add(o.ReadHeaderTimeout)
			_ = cc.conn.SetReadDeadline(cc.headBy)
			deadline = true
		}
		if _, err := cc.br.Peek(len(buf) + 1); err != nil {
			return false, false
		}
	}
}

// idleDeadline lets the connection wait for its next request at least
// timeout, and at most timeout plus a slack of up to a second: the
// deadline is moved once per slack, not per request, since each move
// updates the runtime's timer heap.
func (cc *clientConn) idleDeadline(timeout time.Duration, now time.Time) {
	if cc.idleBy.Sub(now) >= timeout {
		return
	}
	cc.idleBy = now.Add(timeout).Add(min(timeout/8, time.Second)) // a Duration sum could wrap; Time.Add does not
	_ = cc.conn.SetReadDeadline(cc.idleBy)
}

// recoverFront keeps a panic while serving one connection from taking the
// agent, and every app it serves, down: the connection is closed, as
// net/http does with a panicking handler's.
func (s *Server) recoverFront(cc *clientConn) {
	v := recover()
	if v == nil {
		return
	}
	cc.disarmWatch() // its goroutine may be reading cc.br
	if err, ok := v.(error); !ok || !errors.Is(err, http.ErrAbortHandler) {
		s.opts.Log.Error(fmt.Errorf("%v", v), "Panic serving a request; its connection is closed", "stack", string(debug.Stack()))
	}
	_ = cc.conn.Close()
	cc.release()
}

// buffered copies what was read and not used.
func (cc *clientConn) buffered() []byte {
	b, _ := cc.br.Peek(cc.br.Buffered())
	return append([]byte(nil), b...)
}

// serveRequest queues cc.head's request for a worker, forwards it, and
// reports whether the connection may carry another request.
func (s *Server) serveRequest(cc *clientConn) bool {
	s.inflight.Add(1)
	defer s.inflight.Done()
	sess := getSession()
	sess.start = time.Now()
	defer putSession(sess)
	cc.sess = sess
	cc.req.Method = methodString(cc.head.method.of(cc.head.raw))
	cc.armWatch(sess.start)
	sess.key = pool.KeyOfBytes(cc.req.Method, cc.head.target.of(cc.head.raw))
	w, err := s.router.Acquire(cc.ctx, sess.key)
	if err != nil {
		cc.disarmWatch()
		s.refuse(&cc.reply, cc.ctx, sess, err)
		s.observe(sess.code, sess)
		return cc.sendReply(time.Now())
	}
	sess.worker = w
	defer s.finish(sess)
	out, err := withRetries(s.router, cc.ctx, sess, nil, cc.send)
	switch {
	case err != nil:
		cc.disarmWatch()
		s.fail(&cc.reply, cc.ctx, cc.req.Method, cc.path(), sess, err)
		return cc.sendReply(time.Now())
	case out.relayed:
		cc.disarmWatch()
		cc.relayedAt = sess.end
		return out.keep
	}
	resp := out.resp
	defer s.closeAnswer(resp, sess, cc.req.Method, cc.path)
	if resp.StatusCode == http.StatusSwitchingProtocols { // this request asked for no upgrade
		cc.disarmWatch()
		s.fail(&cc.reply, cc.ctx, cc.req.Method, cc.path(), sess, errors.New("the worker switched protocols unasked"))
		return cc.sendReply(time.Now())
	}
	if err := s.bufferResponse(resp, sess, s.router.ResponseBufferLimit()); err != nil {
		cc.disarmWatch()
		s.fail(&cc.reply, cc.ctx, cc.req.Method, cc.path(), sess, err)
		return cc.sendReply(time.Now())
	}
	sess.code = resp.StatusCode
	// The watch goes on while the body streams (a chunked response may
	// idle between chunks: server-sent events, a long poll): a client
	// that goes away takes the request off its worker at once, as on
	// net/http's path, not at the next chunk's failed write.
	keep, failed := cc.respond(resp, time.Now())
	cc.disarmWatch()
	if failed != nil { // nothing of the answer reached the client
		s.fail(&cc.reply, cc.ctx, cc.req.Method, cc.path(), sess, failed)
		return cc.sendReply(time.Now())
	}
	return keep
}

// sentBytes counts the bytes the client's socket took (sendConn): none
// of a response reached the client while it stays the same.
func (cc *clientConn) sentBytes() uint64 {
	if cc.sc == nil {
		return 0
	}
	return cc.sc.progress.Load()
}

// noneSent: the client's socket has taken nothing of the answer since it
// had taken since bytes (sentBytes); false where that is not counted, as
// then nothing can be taken back.
func (cc *clientConn) noneSent(since uint64) bool {
	return cc.sc != nil && cc.sentBytes() == since
}

// answerFailed deals with a worker that failed (err) after its response
// head, which is in cc.bw, since the client's socket had taken since
// bytes (sentBytes). When none of the answer reached the client, the
// answer is dropped, and true says the client is to be answered as for a
// worker that failed before its head (a 502 naming it); else the answer is
// cut short (what the buffer holds goes out, and the connection is then
// closed), and the failure logged. A client gone is neither.
func (cc *clientConn) answerFailed(err error, since uint64) bool {
	switch {
	case cc.ctx.Err() != nil:
		return false
	case cc.noneSent(since):
		cc.bw.Reset(cc.conn)
		return true
	}
	cc.s.answerCut(cc.req.Method, cc.path(), cc.sess, err)
	_ = cc.bw.Flush()
	return false
}

// sent is what became of a request sent to a worker: its response, or,
// when that was plain, relayed to the client already (relay.go).
type sent struct {
	resp    *http.Response // when not relayed
	relayed bool
	keep    bool // relayed, and the connection may carry another request
}

// sendToWorker sends the request to the session's worker. A plain
// response (relay.go) is relayed to the client at once; any other is
// returned.
func (cc *clientConn) sendToWorker() (sent, error) {
	t, ok := cc.sess.worker.Transport.(*workerTransport)
	if !ok {
		return sent{}, errors.New("ferry: the worker has no proxy transport")
	}
	x, err := t.begin(cc.req, false, cc.write, cc.stop, time.Now(), cc.sess.replaying, // not sess.start: the queue may have been long
		requestBound{limit: cc.s.router.MaxRequestTime()})
	if err != nil {
		return sent{}, err
	}
	if cc.req.Method == http.MethodHead || !cc.peekPlain(x.c.br) {
		resp, err := x.receive() //nolint:bodyclose // serveRequest closes it
		if err == nil {
			cc.sess.outcome = pool.Answered // (fail may yet say otherwise)
		}
		return sent{resp: resp}, err
	}
	x.headCame()
	cc.sess.outcome = pool.Answered // (answerCut may yet say otherwise)
	cc.sess.code = cc.resp.code
	if cc.resp.bodyPending(x.c.br) && cc.s.buffers(cc.sess, cc.resp.length, cc.s.router.ResponseBufferLimit()) {
		return sent{relayed: true, keep: cc.relayBuffered(x, time.Now)}, nil // buffer.go
	}
	since := cc.sentBytes()
	keep, workerOK, clientLeft, werr := cc.relay(x.c.br, x.c, time.Now)
	cc.sess.end = time.Now()
	cc.relayEnded(x, workerOK, clientLeft, werr)
	if werr != nil && cc.answerFailed(werr, since) {
		return sent{}, &cutShortError{werr} // answered as a worker failing before its head is
	}
	cc.s.giveBack(cc.sess)
	return sent{relayed: true, keep: cc.bw.Flush() == nil && keep}, nil
}

// relayEnded ends the exchange x once its plain response was relayed
// (relay's results): x's connection goes back to the idle list, or is
// closed; or, when the client left partway through the answer of a
// worker still at it (it could not be written to, or its watch cancelled
// the request), the worker is taken from the session and the rest of its
// answer awaited (leaveMidAnswer).
func (cc *clientConn) relayEnded(x pending, workerOK, clientLeft bool, werr error) {
	if (clientLeft || werr != nil) && x.t.abandonedMidAnswer(x.c, werr != nil) {
		cc.s.leaveMidAnswer(cc.sess, x.c, x.stop, restOfLength(x.c.br, cc.resp.left), cc.req.Method, cc.path())
		return
	}
	x.done(workerOK, cc.sess.end)
}

// writeHead writes the request to the worker on c, which the client's
// watch aborts from now on if the client goes away.
func (cc *clientConn) writeHead(c *workerConn) error {
	cc.abort.mu.Lock()
	if cc.abort.gone {
		cc.abort.mu.Unlock()
		return errClientGone
	}
	cc.abort.worker = c
	cc.abort.mu.Unlock()
	return cc.head.writeHead(c.bw, cc.ip)
}

var errClientGone = errors.New("the client went away")

// stopAbort ends the watch's hold on the request's worker connection,
// which may go back to the idle list after it: false when the client went
// away (the connection was aborted).
func (cc *clientConn) stopAbort() bool {
	cc.abort.mu.Lock()
	defer cc.abort.mu.Unlock()
	cc.abort.worker = nil
	return !cc.abort.gone
}

// clientGone cancels the request of a client that went away: out of the
// queue (ctx), off its worker (the connection is aborted).
func (cc *clientConn) clientGone() {
	cc.abort.mu.Lock()
	defer cc.abort.mu.Unlock()
	cc.abort.gone = true
	cc.cancel()
	if c := cc.abort.worker; c != nil {
		c.abort()
	}
}

// path is the request's path, for a log line.
func (cc *clientConn) path() string {
	t := cc.head.target.of(cc.head.raw)
	if i := bytes.IndexByte(t, '?'); i >= 0 {
		t = t[:i]
	}
	return string(t)
}

// keepAlive: the connection may carry another request after this one.
func (cc *clientConn) keepAlive() bool {
	return !cc.head.close && !cc.s.closing.Load() && cc.ctx.Err() == nil
}

// armWatch starts the wait, begun at start, after which the client is
// watched.
func (cc *clientConn) armWatch(start time.Time) {
	w := &cc.watch
	w.mu.Lock()
	w.busy = start.Sub(w.since) < watchAfter
	w.waiting, w.since = true, start
	if !w.set {
		w.set = true
		w.timer.Reset(watchAfter)
	}
	w.mu.Unlock()
}

// disarmWatch stops watching the client: before the response is written,
// and before the connection is read again.
func (cc *clientConn) disarmWatch() {
	w := &cc.watch
	w.mu.Lock()
	w.waiting = false
	if !w.reading {
		if w.set && !w.busy && w.timer.Stop() {
			w.set = false
		}
		w.mu.Unlock()
		return // the request did not wait long enough to be watched
	}
	w.stopping = true
	_ = cc.conn.SetReadDeadline(aLongTimeAgo) // ends watchClient's read
	cc.idleBy = time.Time{}
	w.mu.Unlock()
	<-w.done
	w.mu.Lock()
	w.reading, w.stopping = false, false
	w.mu.Unlock()
}

// watchClient is the watch timer's firing. Once a request has waited
// watchAfter it reads the connection: the client sends nothing more until
// it has the response (or sends its next request, pipelined), so a read
// that fails means it went away, and its request is cancelled: out of the
// queue, or off its worker.
func (cc *clientConn) watchClient() {
	w := &cc.watch
	w.mu.Lock()
	if !w.waiting {
		w.set = false // idle: armWatch sets the timer again
		w.mu.Unlock()
		return
	}
	if left := watchAfter - time.Since(w.since); left > 0 {
		w.timer.Reset(left) // a later request than the one it was set for
		w.mu.Unlock()
		return
	}
	w.set, w.reading = false, true
	_ = cc.conn.SetReadDeadline(time.Time{}) // the wait may be long
	w.mu.Unlock()
	_, err := cc.br.Peek(1)
	w.mu.Lock()
	gone := err != nil && !w.stopping
	w.mu.Unlock()
	if gone {
		cc.clientGone()
	}
	w.done <- struct{}{}
}

// methodString returns the common methods without allocating.
func methodString(m []byte) string {
	switch string(m) {
	case http.MethodGet:
		return http.MethodGet
	case http.MethodHead:
		return http.MethodHead
	case http.MethodPost:
		return http.MethodPost
	case http.MethodPut:
		return http.MethodPut
	case http.MethodDelete:
		return http.MethodDelete
	case http.MethodOptions:
		return http.MethodOptions
	case http.MethodPatch:
		return http.MethodPatch
	}
	return string(m)
}

// track adds or removes a front-end connection; false once shutting down.
func (s *Server) track(cc *clientConn, add bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !add {
		delete(s.conns, cc)
		if len(s.conns) == 0 && s.connsIdle != nil {
			close(s.connsIdle)
			s.connsIdle = nil
		}
		return true
	}
	if s.closing.Load() {
		return false
	}
	if s.conns == nil {
		s.conns = make(map[*clientConn]struct{})
	}
	s.conns[cc] = struct{}{}
	return true
}

// closeIdleFront closes the front end's idle connections and returns a
// channel closed when no connection is left.
func (s *Server) closeIdleFront() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	for cc := range s.conns {
		if cc.state.CompareAndSwap(stateIdle, stateClosed) {
			_ = cc.conn.Close()
		}
	}
	done := make(chan struct{})
	if len(s.conns) == 0 {
		close(done)
	} else {
		s.connsIdle = done
	}
	return done
}

// handoffListener is net/http's listener: the connections the front end
// gives it.
type handoffListener struct {
	addr  net.Addr
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
}

func newHandoffListener(addr net.Addr) *handoffListener {
	return &handoffListener{addr: addr, conns: make(chan net.Conn), done: make(chan struct{})}
}

func (l *handoffListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *handoffListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

func (l *handoffListener) Addr() net.Addr { return l.addr }

func (l *handoffListener) give(c net.Conn) {
	select {
	case l.conns <- c:
	case <-l.done: // net/http was shut down: say so
		_ = c.SetWriteDeadline(time.Now().Add(time.Second))
		_, _ = io.WriteString(c, shuttingDown)
		_ = c.Close()
	}
}

// shuttingDown answers a request net/http can no longer take.
const shuttingDown = "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\n" +
	"Retry-After: 1\r\nContent-Length: 35\r\nConnection: close\r\n\r\nferry: this agent is shutting down\n"

// prefixConn is a connection whose first bytes were already read.
type prefixConn struct {
	net.Conn
	s      *Server
	prefix []byte
	// headBy is the front end's deadline for the head it hands over (zero
	// when it was waiting for none).
	headBy time.Time
	// encoding spots a Transfer-Encoding field in what net/http reads,
	// which it drops from an HTTP/1.0 request without a trace
	// (http10Kept).
	encoding encodingSpotter
	// unserved: a request's bytes came, and the proxy's handler has not
	// taken it: a write now is net/http's own refusal (gorefusals.go).
	// lineEnded: an LF came since the last answer ended (net/http's
	// reads, one at a time; its ConnState hook resets it).
	unserved  atomic.Bool
	lineEnded bool
}

// SetReadDeadline holds net/http's first deadline, its ReadHeaderTimeout
// for the head the front end hands over, to the front end's own for that
// head: a head that trickles in and grows too big for the front end has
// ReadHeaderTimeout once, not once on each server. net/http sets it in
// its connection's goroutine before any other, so no lock is needed; it
// does so because its ReadHeaderTimeout is never zero (New defaults it):
// were it zero, the first deadline would be the one after the head, which
// this must not shorten.
func (c *prefixConn) SetReadDeadline(t time.Time) error {
	if by := c.headBy; !by.IsZero() {
		c.headBy = time.Time{}
		if t.IsZero() || t.After(by) {
			t = by
		}
	}
	return c.Conn.SetReadDeadline(t)
}

func (c *prefixConn) Read(p []byte) (int, error) {
	var n int
	var err error
	if len(c.prefix) > 0 {
		n = copy(p, c.prefix)
		c.prefix = c.prefix[n:]
	} else {
		n, err = c.Conn.Read(p)
	}
	c.encoding.scan(p[:n])
	if !c.lineEnded {
		c.lineEnded = bytes.IndexByte(p[:n], '\n') >= 0
	}
	return n, err
}

// encodingSpotter watches the bytes of a connection net/http serves for
// a line that begins "Transfer-Encoding:" (any case; lines end in a CRLF
// or a bare LF, as net/http reads them), after spaces or tabs too: an
// obs-fold, which net/http takes as the line before's, but a balancer in
// front may take as a field of its own, and send a chunked body by it.
// net/http drops an HTTP/1.0
// request's Transfer-Encoding unread and leaves no trace of it in the
// request, so ServeHTTP cannot tell from the request whether a balancer
// in front sent it a chunked body, whose chunks would be read as the next
// request were the connection kept. net/http reads a head whole before
// its handler runs, so a request's own field has been seen by then; a
// match in a body, or in a pipelined head read ahead, only closes a
// connection that could have been kept. Reads are net/http's, one at a
// time (its background read included); seen is read by the handler.
//
// A folded one is noted apart (folded): net/http takes no encoding from
// it, of an HTTP/1.1 request either, and goes by the length beside it.
type encodingSpotter struct {
	matched  int  // how much of encodingLine the bytes read so far end with
	indented bool // the line matched so far began with an obs-fold's indent
	seen     atomic.Bool
	folded   atomic.Bool
}

const encodingLine = "\ntransfer-encoding:"

// scan goes through the bytes just read: from one LF to the next at
// memchr's speed, comparing only the bytes after each.
func (s *encodingSpotter) scan(b []byte) {
	m := s.matched
	for len(b) > 0 {
		if m == 0 {
			i := bytes.IndexByte(b, '\n')
			if i < 0 {
				break
			}
			b, m = b[i+1:], 1
			continue
		}
		c := b[0]
		if m == 1 && (c == ' ' || c == '\t') { // an obs-fold's indent
			b, s.indented = b[1:], true
			continue
		}
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != encodingLine[m] {
			m, s.indented = 0, false // b[0] is looked at again: it may be an LF
			continue
		}
		b, m = b[1:], m+1
		if m == len(encodingLine) {
			s.seen.Store(true)
			if s.indented {
				s.folded.Store(true)
			}
			m, s.indented = 0, false
		}
	}
	s.matched = m
}

// drainFront closes the front end's idle connections until none is left
// (an active one closes after its response), within ctx.
func (s *Server) drainFront(ctx context.Context) error {
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-s.closeIdleFront():
			return nil
		case <-ctx.Done():
			return fmt.Errorf("connections still open: %w", ctx.Err())
		case <-tick.C: // a connection that was active may be idle now
		}
	}
}

// CloseWrite lets net/http half-close the connection before it closes it,
// as it does with its own, so that a client's last response is not lost
// to a reset.
func (c *prefixConn) CloseWrite() error { return closeWrite(c.Conn) }
