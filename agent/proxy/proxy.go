package proxy

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log"
	"math"
	"net"
	"net/http"
	"net/http/httputil"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/go-logr/logr"

	"github.com/ferry-dev/ferry/agent/pool"
)

// Options configure a proxy server.
type Options struct {
	// Name identifies the proxy's pool in logs and metrics.
	Name string
	// ReadHeaderTimeout bounds reading a request's headers (slow clients).
	// Default 10s.
	ReadHeaderTimeout time.Duration
	// IdleTimeout closes client keep-alive connections idle this long, or
	// up to an eighth (at most a second) longer: the front end moves a
	// busy connection's deadline once per that slack, not per request.
	// Default 120s.
	IdleTimeout time.Duration
	// MaxHeaderBytes bounds a request's headers; larger gets 431, and a
	// request line alone over it 414 (gorefusals.go).
	// Default 64 KiB.
	MaxHeaderBytes int
	// TrustForwardedFor appends the client address to the X-Forwarded-For
	// the client sent, passes on its X-Forwarded-Proto when it is one
	// field of http or https, and its X-Real-IP, X-Forwarded-Ssl, -Port,
	// -Prefix and -Scheme as they are, for agents behind a load balancer
	// that sets them (one that ends TLS says https). Default false: the
	// client's X-Forwarded-For and -Proto are replaced, the others dropped
	// (balancerField).
	TrustForwardedFor bool
	// SendTimeout is how long a write of a response to a client may make no
	// progress (the client reads none of it) before the connection is
	// closed, as nginx's send_timeout (send.go). Default 60s.
	SendTimeout time.Duration
	// RequestBodyTimeout is how long a client may go without sending any
	// of a request body (an idle time between reads, not a bound on the
	// whole body); then it gets 408 and its connection is closed. For a
	// body that streams to a worker (past the buffer limit, or with
	// buffering off) the worker's connection is closed too, freeing its
	// slot; when the worker had begun its answer, the client's connection
	// is closed without the 408. Default 60s.
	RequestBodyTimeout time.Duration
	// ResponseMemory bounds what the agent's proxies hold of buffered
	// responses (buffer.go) at once: past it, a response is relayed as it
	// is read. Shared by every proxy of an agent; nil: no bound.
	ResponseMemory *Budget
	// RequestDisk bounds what the agent's proxies hold of buffered request
	// bodies in files (spool.go) at once: past it, the rest of a body
	// streams to its worker as it comes (0: no body goes to a file). Shared
	// by every proxy of an agent; nil: no bound.
	RequestDisk *Budget
	// SpoolDir is where request bodies larger than SpoolMemory are
	// buffered, in files without a name (spool.go): the agents
	// give it a directory of their own (PrepareSpoolDir) under
	// --request-buffer-dir. Default: the system's temporary directory.
	SpoolDir string
	// Log is the proxy's logger.
	Log logr.Logger
	// Observer counts requests by status code. Optional.
	Observer Observer
}

// Observer is told of each finished request of its proxy (RequestDone),
// and first of a replay (RequestReplayed).
type Observer interface {
	RequestDone(code int, d time.Duration)
	// RequestReplayed: the request, which has just finished, was sent a
	// second time (staleConnError); called before its RequestDone.
	RequestReplayed()
}

// Router is what the proxy needs of a pool.
type Router interface {
	// Acquire gives a worker to a request of key (pool.KeyOf).
	Acquire(ctx context.Context, key pool.RequestKey) (*pool.Worker, error)
	// Release gives back the worker of a request that ended as outcome
	// says.
	Release(w *pool.Worker, outcome pool.Outcome)
	// Unreachable reports a worker whose socket refused a connection.
	Unreachable(w *pool.Worker)
	// DiedIn reports the method and path of a request whose worker's
	// process exited under it (the pool logs a request of death by them).
	DiedIn(w *pool.Worker, method, path string)
	// RequestBufferLimit is how much of a request's body to read before
	// the request queues (spool.go); 0: none, bodies stream.
	RequestBufferLimit() int64
	// ResponseBufferLimit is the largest response body to read whole from
	// the worker before it goes to the client (buffer.go); 0: none.
	ResponseBufferLimit() int64
	// MaxRequestTime is how long a worker may take to begin its answer to
	// a request (its last byte sent); 0: no bound.
	MaxRequestTime() time.Duration
	// Overran reports a worker that took longer than limit, the request's
	// MaxRequestTime, on the request to path: the pool kills it.
	Overran(w *pool.Worker, path string, limit time.Duration)
}

// Server is one AppGroup's proxy.
type Server struct {
	opts     Options
	router   Router
	rp       *httputil.ReverseProxy
	http     *http.Server
	inflight sync.WaitGroup
	// spoolFailedAt is when a body last could not go to a file, and
	// budgetSpentAt when one last found RequestDisk spent (UnixNano).
	spoolFailedAt, budgetSpentAt atomic.Int64
	// queueFull and queueTimedOut log the pool's refusals (refuse).
	queueFull, queueTimedOut refusals

	// The front end (front.go): its connections, and net/http's share.
	closing   atomic.Bool
	mu        sync.Mutex
	listeners []net.Listener
	handoff   *handoffListener
	handedOff atomic.Int64 // connections given to net/http (tests read it)
	conns     map[*clientConn]struct{}
	connsIdle chan struct{} // closed when the last connection is gone

	// The send watchdog (send.go) and the connections it looks at.
	sendMu   sync.Mutex
	sending  map[*sendConn]struct{} // nil while no watchdog runs
	sendDone bool                   // Shutdown: no watchdog starts again
}

// New returns a proxy for router.
func New(router Router, opts Options) *Server {
	if opts.ReadHeaderTimeout <= 0 {
		opts.ReadHeaderTimeout = 10 * time.Second
	}
	if opts.IdleTimeout <= 0 {
		opts.IdleTimeout = 120 * time.Second
	}
	if opts.SpoolDir == "" {
		opts.SpoolDir = os.TempDir()
	}
	if opts.RequestBodyTimeout <= 0 {
		opts.RequestBodyTimeout = 60 * time.Second
	}
	if opts.MaxHeaderBytes <= 0 {
		opts.MaxHeaderBytes = 64 << 10
	}
	if opts.SendTimeout <= 0 {
		opts.SendTimeout = 60 * time.Second
	}
	s := &Server{opts: opts, router: router}
	s.rp = &httputil.ReverseProxy{
		Rewrite:        s.rewrite,
		Transport:      &retryingTransport{router: router},
		ErrorHandler:   s.proxyError,
		ModifyResponse: s.recordStatus,
		ErrorLog:       log.New(io.Discard, "", 0),
		BufferPool:     bufferPool{},
	}
	s.http = &http.Server{
		Handler:           s,
		ReadHeaderTimeout: opts.ReadHeaderTimeout,
		IdleTimeout:       opts.IdleTimeout,
		MaxHeaderBytes:    opts.MaxHeaderBytes,
		ErrorLog:          log.New(logWriter{opts.Log}, "", 0),
		// OPTIONS * comes to ServeHTTP (serverOptions), which closes its
		// connection after a chunked one, or an HTTP/1.0 one with a
		// Transfer-Encoding, as after any other.
		DisableGeneralOptionsHandler: true,
		ConnContext:                  handedConn,
		ConnState:                    s.connState, // Go's own refusals, counted (gorefusals.go)
	}
	return s
}

// handedConnKey keys the connection the front end handed to net/http
// (a *prefixConn) in the contexts of its requests.
type handedConnKey struct{}

// handedConn puts c, when the front end handed it over, in the context
// of its requests (http10Kept reads what it saw).
func handedConn(ctx context.Context, c net.Conn) context.Context {
	if pc, ok := c.(*prefixConn); ok {
		return context.WithValue(ctx, handedConnKey{}, pc)
	}
	return ctx
}

// framingKept: r may keep its connection, as far as its framing goes:
// an HTTP/1.0 one as http10Kept says, an HTTP/1.1 one unless a
// Transfer-Encoding line folded into the field before it came on the
// connection (encodingSpotter): net/http took none from it and went by
// the length, or none, where a balancer in front that took the fold for
// a field of its own sent a chunked body, whose rest would be read as the
// next request. Over TLS (not handed over) it is not looked for.
func framingKept(r *http.Request) bool {
	if !r.ProtoAtLeast(1, 1) {
		return http10Kept(r)
	}
	pc, ok := r.Context().Value(handedConnKey{}).(*prefixConn)
	return !ok || !pc.encoding.folded.Load()
}

// http10Kept: the HTTP/1.0 request r may keep its connection, as far as
// its framing goes: no Transfer-Encoding field came on the connection so
// far (encodingSpotter), so r's body was none, or the length it declared.
// A connection the front end did not hand over (TLS, which it does not
// read) is never kept after an HTTP/1.0 request. Nor is one whose request
// asks for close beside keep-alive (r.Close): Go's server, seeing the
// keep-alive and a length in the response, would keep it and read what
// the client sends after, which a balancer in front that heeded the close
// may not have meant as a request.
func http10Kept(r *http.Request) bool {
	pc, ok := r.Context().Value(handedConnKey{}).(*prefixConn)
	return ok && !r.Close && !pc.encoding.seen.Load()
}

// Serve accepts connections on l until Shutdown: the front end serves
// them, and hands net/http those it does not take (front.go). Like
// net/http's, it closes l when it returns, also when Shutdown came first:
// a listener left open would hold its port, and queue connections nobody
// accepts.
func (s *Server) Serve(l net.Listener) error {
	s.mu.Lock()
	if s.closing.Load() {
		s.mu.Unlock()
		_ = l.Close()
		return nil
	}
	s.listeners = append(s.listeners, l)
	if s.handoff == nil {
		s.handoff = newHandoffListener(l.Addr())
		go func() { _ = s.http.Serve(s.handoff) }()
	}
	s.mu.Unlock()
	var delay time.Duration
	for {
		c, err := l.Accept()
		switch {
		case err == nil:
			delay = 0
			if _, ok := c.(*tls.Conn); !ok { // net/http must see a TLS connection as one
				c = s.watchSend(c)
			}
			go s.serveFront(c)
		case s.closing.Load():
			return nil
		case temporary(err): // out of file descriptors, say: as net/http does
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			s.opts.Log.Error(err, "Accept failed; retrying", "in", delay)
			time.Sleep(delay)
		default:
			_ = l.Close()
			return err
		}
	}
}

func temporary(err error) bool {
	var t interface{ Temporary() bool }
	return errors.As(err, &t) && t.Temporary()
}

// Shutdown stops accepting, closes idle connections, then waits for
// in-flight requests (upgraded connections included) to finish, within ctx.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closing.Store(true)
	for _, l := range s.listeners {
		_ = l.Close()
	}
	handoff := s.handoff
	s.mu.Unlock()
	// Both servers drain at once: the front end's idle connections close
	// now, not after net/http's active ones are done.
	s.http.SetKeepAlivesEnabled(false)
	front := make(chan error, 1)
	go func() { front <- s.drainFront(ctx) }()
	err := errors.Join(s.http.Shutdown(ctx), <-front)
	if handoff != nil {
		_ = handoff.Close()
	}
	done := make(chan struct{})
	go func() {
		s.inflight.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
		err = errors.Join(err, fmt.Errorf("requests still in flight: %w", ctx.Err()))
	}
	s.stopSendWatchdog()
	return err
}

// ServeHTTP queues the request for a worker and forwards it.
func (s *Server) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	s.inflight.Add(1)
	defer s.inflight.Done()
	served(r)
	sess := getSession()
	sess.start = time.Now()
	defer putSession(sess)
	defer abortIfGone(sess)
	if r.Method == http.MethodConnect || r.ProtoMajor != 1 {
		notServed(rw, r, sess)
		s.observe(sess.code, sess)
		return
	}
	if len(r.TransferEncoding) > 0 || !framingKept(r) {
		// net/http dropped a Content-Length beside the encoding, and the
		// front end sees only the heads it reads whole (badFraming: not
		// one past its buffer, nor the rest of a connection it handed
		// on): after a chunked request, the connection is not trusted
		// with another (RFC 9112, 6.1). Nor after an HTTP/1.0 one with a
		// Transfer-Encoding: net/http dropped it unread, leaving no trace
		// of it in r (only the connection's bytes show it: http10Kept),
		// and went by its length, or none: a balancer in front that went
		// by the encoding sent a body whose rest would be read as the
		// next request. Nor after any request once a folded one came.
		rw.Header().Set("Connection", "close")
	}
	if r.Method == http.MethodOptions && r.RequestURI == "*" {
		serverOptions(rw, sess)
		s.observe(sess.code, sess)
		return
	}
	if !targetServed(r) {
		sess.code = plain(rw, http.StatusBadRequest, "ferry: the request target is neither a path nor an absolute URL")
		s.observe(sess.code, sess)
		return
	}

	held := false // the whole body is in the proxy's buffer
	if limit := s.router.RequestBufferLimit(); limit > 0 && hasBody(r) && !isUpgrade(r) {
		buffered, sp, ok := s.buffer(rw, r, limit, sess)
		defer sp.close()
		if !ok {
			return
		}
		r, held = buffered, sp != nil && sp.rest == nil
	}
	sess.key = pool.KeyOf(r.Method, r.RequestURI)
	w, err := s.router.Acquire(r.Context(), sess.key)
	if err != nil {
		s.refuse(rw, r.Context(), sess, err)
		s.observe(sess.code, sess)
		return
	}
	sess.worker = w
	// Deferred, and registered after putSession so it runs first: when the
	// client goes away mid-response, ReverseProxy panics with
	// http.ErrAbortHandler, and the worker's slot must still come back.
	defer s.finish(sess)
	if isUpgrade(r) {
		sess.maxRequestTime = s.router.MaxRequestTime()
		s.rp.ServeHTTP(rw, r.WithContext(context.WithValue(r.Context(), sessionKey{}, sess)))
		return
	}
	s.forward(rw, r, sess, held)
}

// notServed answers, itself, what no worker is given: CONNECT, 405 (Ferry
// is no forward proxy, and an app's 200 would read to the client as a
// tunnel opened), and h2c's prior-knowledge preface, "PRI * HTTP/2.0",
// which net/http hands its handler (for a handler that would take over
// the connection), 505. The connection is closed: what the client sends
// next (a tunnel's bytes, HTTP/2 frames) is no request.
func notServed(rw http.ResponseWriter, r *http.Request, sess *session) {
	rw.Header().Set("Connection", "close")
	if r.Method == http.MethodConnect {
		sess.code = plain(rw, http.StatusMethodNotAllowed, "ferry: CONNECT is not served here: this is no forward proxy")
		return
	}
	sess.code = plain(rw, http.StatusHTTPVersionNotSupported, "ferry: only HTTP/1.x is served here")
}

// serverOptions answers OPTIONS *, a question about the server, not a
// resource of the app's, as net/http would: 200, without a body. It is
// answered here, not by net/http's own handler, because that one kept the
// connection after a chunked or HTTP/1.0 request, and what a balancer in
// front sent as its body was read as the next request.
func serverOptions(rw http.ResponseWriter, sess *session) {
	rw.Header().Set("Content-Length", "0")
	rw.WriteHeader(http.StatusOK)
	sess.code = http.StatusOK
}

// targetServed: r's target is a path (origin-form) or an absolute URL
// with a host (absolute-form), the forms RFC 9112 (3.2) has a server take
// for any method but CONNECT and OPTIONS. net/http also hands on "*"
// (asterisk-form, for OPTIONS only: serverOptions answers OPTIONS *) and a
// scheme with no "//" after it ("GET host:80", which authority-form is
// for CONNECT only), which would reach the worker as "GET *" or "GET 80":
// nginx answers both 400, as this does.
func targetServed(r *http.Request) bool {
	uri := r.RequestURI
	return len(uri) > 0 && uri[0] == '/' || r.URL.Opaque == "" && r.URL.Host != ""
}

// buffer reads r's body before it queues (spool.go), and answers a body
// that failed: false then.
func (s *Server) buffer(rw http.ResponseWriter, r *http.Request, limit int64, sess *session) (*http.Request, *spooled, bool) {
	buffered, sp, err := s.spool(rw, r, limit)
	if err == nil {
		return buffered, sp, true
	}
	rw.Header().Set("Connection", "close") // what follows on it is not a request
	switch {
	case errors.Is(err, os.ErrDeadlineExceeded):
		sess.code = plain(rw, http.StatusRequestTimeout, "ferry: the request body did not arrive in time")
	case peerGone(err):
		sess.clientGone() // mid-body
	default: // a malformed body
		sess.code = plain(rw, http.StatusBadRequest, "ferry: the request body could not be read: "+err.Error())
	}
	s.observe(sess.code, sess)
	return nil, nil, false
}

// abortIfGone closes, without an answer, the connection of a request the
// proxy found its client gone for: net/http would send an empty 200 for a
// handler that wrote nothing, which a client that only half-closed would
// read. (An app's own 499 is relayed.) A panic already under way goes on.
func abortIfGone(sess *session) {
	if v := recover(); v != nil {
		panic(v)
	}
	if sess.gone {
		panic(http.ErrAbortHandler)
	}
}

// finish releases the request's worker and counts the request.
func (s *Server) finish(sess *session) {
	if sess.worker != nil { // nil when a retry found no other worker, or given back early
		s.router.Release(sess.worker, sess.outcome)
	}
	s.opts.ResponseMemory.give(sess.held)
	code := sess.code
	if code == 0 {
		code = 499 // the response was cut short (client gone, or the copy failed)
	}
	s.observe(code, sess)
}

// observe counts the session's request, which ended at sess.end or now.
func (s *Server) observe(code int, sess *session) {
	if s.opts.Observer == nil {
		return
	}
	end := sess.end
	if end.IsZero() {
		end = time.Now()
	}
	if sess.replaying {
		s.opts.Observer.RequestReplayed()
	}
	s.opts.Observer.RequestDone(code, end.Sub(sess.start))
}

func (s *Server) rewrite(pr *httputil.ProxyRequest) {
	pr.Out.URL.Scheme = "http"
	pr.Out.URL.Host = "worker"
	pr.Out.Host = pr.In.Host
	if s.opts.TrustForwardedFor {
		if v := pr.In.Header["X-Forwarded-For"]; v != nil {
			pr.Out.Header["X-Forwarded-For"] = v
		}
	}
	pr.SetXForwarded()
	if v, ok := s.balancerProto(pr.In.Header); ok {
		pr.Out.Header.Set("X-Forwarded-Proto", v)
	}
	for k := range pr.Out.Header {
		if (balancerField(k) && !s.opts.TrustForwardedFor) || underscoreForwardingKey(k) {
			delete(pr.Out.Header, k)
		}
	}
}

// retryAfter is the Retry-After of a request refused for err, an
// unavailable pool: the seconds until its next spawn (the end of its
// backoff, which doubles up to a minute), at least 1; 5 when the
// error does not say.
func retryAfter(err error, now time.Time) string {
	var u *pool.UnavailableError
	if !errors.As(err, &u) || u.RetryAt.IsZero() {
		return "5"
	}
	secs := int64(math.Ceil(u.RetryAt.Sub(now).Seconds()))
	return strconv.FormatInt(max(secs, 1), 10)
}

// refuse answers a request that got no worker; sess.code says how.
func (s *Server) refuse(rw http.ResponseWriter, ctx context.Context, sess *session, err error) {
	switch {
	case errors.Is(err, pool.ErrQueueFull):
		s.queueFull.note(s.opts.Log, "Requests refused with 503: maxRequestQueueSize requests already wait for a worker process; raise maxProcesses (or maxRequestQueueSize, for a short burst), or add nodes")
		rw.Header().Set("Retry-After", "1")
		sess.code = plain(rw, http.StatusServiceUnavailable, "ferry: too many requests are waiting for a worker process; try again shortly")
	case errors.Is(err, pool.ErrQueueTimeout):
		s.queueTimedOut.note(s.opts.Log, "Requests answered 504: no worker process became free for them within queueTimeout; the processes are too few or too slow for the load")
		sess.code = plain(rw, http.StatusGatewayTimeout, "ferry: no worker process became free within the queue timeout")
	case errors.Is(err, pool.ErrUnavailable):
		rw.Header().Set("Retry-After", retryAfter(err, time.Now()))
		sess.code = plain(rw, http.StatusServiceUnavailable, "ferry: the application has no running process: its processes fail to start, or die soon after, and are retried with backoff; the agent's status and log say why")
	case errors.Is(err, pool.ErrClosed):
		rw.Header().Set("Retry-After", "1")
		sess.code = plain(rw, http.StatusServiceUnavailable, "ferry: this agent is shutting down")
	case ctx.Err() != nil:
		sess.clientGone() // while queued
	default:
		s.opts.Log.Error(err, "Could not route request")
		sess.code = plain(rw, http.StatusInternalServerError, "ferry: internal error routing the request")
	}
}

// proxyError is ReverseProxy's way to fail.
func (s *Server) proxyError(rw http.ResponseWriter, r *http.Request, err error) {
	sess, _ := r.Context().Value(sessionKey{}).(*session)
	if sess == nil {
		sess = &session{}
	}
	s.fail(rw, r.Context(), r.Method, r.URL.Path, sess, err)
}

// fail answers a request whose worker failed it: no answer, whatever of
// its head came.
func (s *Server) fail(rw http.ResponseWriter, ctx context.Context, method, path string, sess *session, err error) {
	sess.outcome = pool.Unanswered
	var overran *overranError
	if errors.As(err, &overran) && sess.worker != nil {
		s.overran(rw, ctx, path, sess, overran)
		return
	}
	if ctx.Err() != nil {
		s.abandon(method, path, sess, err)
		sess.clientGone()
		return
	}
	// A retry that found no other worker: answer as a refusal would.
	var noWorker *noWorkerError
	if errors.As(err, &noWorker) {
		s.refuse(rw, ctx, sess, noWorker.err)
		return
	}
	msg := fmt.Sprintf("ferry: error talking to the worker process: %v", err)
	var cut *cutShortError
	if w := sess.worker; w != nil {
		pid := strconv.Itoa(w.PID())
		switch {
		case diedUnder(w, err):
			msg = diedMessage(w.StoppedBy(), pid)
			s.router.DiedIn(w, method, path)
		case peerGone(err) && errors.As(err, &cut):
			msg = "ferry: the worker process (pid " + pid + ") closed the connection partway through its answer"
		case peerGone(err):
			msg = "ferry: the worker process (pid " + pid + ") closed the connection without answering"
		default:
			msg = "ferry: error talking to the worker process (pid " + pid + "): " + err.Error()
		}
	}
	s.opts.Log.Info("Request failed in a worker", "pid", pidOf(sess), "error", err.Error(), "path", pool.LoggedPath(path),
		"stoppedBy", stoppedBy(sess))
	sess.code = plain(rw, http.StatusBadGateway, msg)
}

// overran answers a request its worker gave no answer within
// maxRequestTime, and has the pool kill the worker, whose request may go
// on for ever: whether or not the client is still there to be answered.
// The body promises no replacement: one follows the pool's scaling
// (pool.Overran), none in a pool above minProcesses with nothing queued.
func (s *Server) overran(rw http.ResponseWriter, ctx context.Context, path string, sess *session, e *overranError) {
	w := sess.worker
	s.router.Overran(w, path, e.limit)
	if ctx.Err() != nil {
		sess.clientGone()
		return
	}
	what := "did not answer"
	if e.body {
		what = "did not finish its answer"
	}
	sess.code = plain(rw, http.StatusGatewayTimeout, "ferry: the worker process (pid "+strconv.Itoa(w.PID())+") "+what+
		" within maxRequestTime ("+e.limit.String()+"); it was killed")
}

// diedMessage is the 502 for a request whose worker (pid) exited under
// it: cut by the agent's own stop when by (pool.Worker.StoppedBy) says
// so, else a death.
func diedMessage(by, pid string) string {
	if by != "" {
		return "ferry: the agent stopped the worker process (pid " + pid + ") " + by + "; the request was cut"
	}
	return "ferry: the worker process (pid " + pid + ") exited while handling this request"
}

// stoppedBy is, for the log, why the agent stopped sess's worker with
// requests at it, or "no" when it did not.
func stoppedBy(sess *session) string {
	if sess == nil || sess.worker == nil {
		return "no"
	}
	// Read once (it may change until the process has exited; from then it
	// is fixed, so the 502's words, read after the exit, and this agree).
	if by := sess.worker.StoppedBy(); by != "" {
		return by
	}
	return "no"
}

func pidOf(sess *session) int {
	if sess == nil || sess.worker == nil {
		return 0
	}
	return sess.worker.PID()
}

// diedUnder: w's process exited under the request that failed with err:
// found exited, or its connection ended (a process killed closes it a
// moment before it is reaped) and it exits within reapWait.
func diedUnder(w *pool.Worker, err error) bool {
	return w.Exited() || peerGone(err) && w.ExitsWithin(reapWait)
}

// reapWait is how long a 502 waits to learn whether the worker that closed
// its connection died: one killed closes it a moment before it is a
// zombie. Once it is one, its reaping is waited for however long it takes
// (spawn.Process.ExitsWithin).
const reapWait = 250 * time.Millisecond

// peerGone: the error is the other side of the connection vanishing (the
// worker's, or the client's while its body was read).
func peerGone(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

type sessionKey struct{}

// session is one request's state on its way through the proxy; pooled.
type session struct {
	worker *pool.Worker
	code   int
	// start is when the request came; end, when its response was relayed
	// (relay.go, buffer.go), else zero and observe reads the clock. The reading at
	// the end serves the metrics, the worker connection's idle time and
	// the client's next idle deadline, where each had its own: a reading
	// costs about 70 ns here.
	start, end time.Time
	// gone: the proxy found the client gone (clientGone).
	gone bool
	// held is what its buffered response takes of ResponseMemory.
	held int64
	// replaying: the request goes to its worker a second time, on a new
	// connection (staleConnError).
	replaying bool
	// maxRequestTime is an upgrade's bound on the wait for its answer
	// (ReverseProxy's round trip reads it here; other requests are given
	// theirs directly).
	maxRequestTime time.Duration
	// key is the request's, for the pool (pool.KeyOf): a retry acquires
	// its next worker with it.
	key pool.RequestKey
	// outcome is how the request ended at its worker, for Release: the
	// zero value, Unanswered, until the worker's answer head is read
	// (forward, sendToWorker, recordStatus); fail and answerCut take it
	// back for an answer that failed after its head.
	outcome pool.Outcome
}

var sessions = sync.Pool{New: func() any { return &session{} }}

// clientGone records that the proxy found the client gone: counted as 499,
// answered nothing (abortIfGone; the front end's sendReply sends nothing
// for a reply never written).
func (sess *session) clientGone() { sess.code, sess.gone = 499, true }

func getSession() *session { return sessions.Get().(*session) }

func putSession(s *session) {
	*s = session{}
	sessions.Put(s)
}

func plain(rw http.ResponseWriter, code int, msg string) int {
	h := rw.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	rw.WriteHeader(code)
	_, _ = io.WriteString(rw, msg+"\n")
	return code
}

// recordStatus is ReverseProxy's ModifyResponse (upgrades' path): it
// records the worker's answer, and has a tunnel after a 101 log its cut
// (upgradedConn.end).
func (s *Server) recordStatus(resp *http.Response) error {
	sess, ok := resp.Request.Context().Value(sessionKey{}).(*session)
	if !ok {
		return nil
	}
	sess.code, sess.outcome = resp.StatusCode, pool.Answered
	if u, ok := resp.Body.(*upgradedConn); ok {
		u.watch(s.opts.Log, sess.worker, resp.Request.URL.Path)
	}
	return nil
}

// logWriter turns http.Server's error log lines into logr entries.
type logWriter struct{ log logr.Logger }

func (w logWriter) Write(p []byte) (int, error) {
	w.log.V(1).Info("HTTP server message", "message", string(p))
	return len(p), nil
}
