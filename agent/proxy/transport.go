package proxy

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/ferry-dev/ferry/agent/pool"
)

// errNoReplay refuses Go's transport the replay of a request that was
// already (at least partly) sent to a worker.
var errNoReplay = errors.New("ferry: the request was already sent to a worker; not replaying it")

var errConnReset = syscall.ECONNRESET

type sessionKey struct{}

// session is one request's state on its way through the proxy. Sessions
// are pooled; the httptrace hooks are bound once per session.
type session struct {
	worker *pool.Worker
	// wrote: at least one byte of the request reached a worker's socket.
	// Set by the connection (in the transport's write goroutine), which may
	// still write after the request ended (a worker that answered before
	// reading the whole body): so the flag is allocated per request and
	// never pooled, and a late write marks a finished request only. The
	// pointer itself is atomic: Go's transport may dial for a request on
	// another goroutine that outlives it (and reads this after the session
	// went back to the pool).
	wrote atomic.Pointer[atomic.Bool]
	code  int
	trace httptrace.ClientTrace
}

var sessions = sync.Pool{New: func() any {
	s := &session{}
	// The transport hands this request a connection: from now on, bytes
	// written to it are this request's.
	s.trace.GotConn = func(info httptrace.GotConnInfo) {
		if c, ok := info.Conn.(*trackedConn); ok {
			c.wrote.Store(s.wrote.Load())
		}
	}
	return s
}}

func getSession() *session { return sessions.Get().(*session) }

func putSession(s *session) {
	s.worker, s.code = nil, 0
	s.wrote.Store(nil)
	sessions.Put(s)
}

func (s *session) sent() bool {
	w := s.wrote.Load()
	return w != nil && w.Load()
}

// trackedConn is a connection to a worker that tells the request using it
// when bytes actually left for the worker. Go's own hooks fire when
// headers reach a buffer, before a write that may still fail with EPIPE on
// a dead worker: that request was not sent, and may go elsewhere.
type trackedConn struct {
	net.Conn
	wrote atomic.Pointer[atomic.Bool]
}

func (c *trackedConn) Write(b []byte) (int, error) {
	n, err := c.Conn.Write(b)
	if n > 0 {
		if w := c.wrote.Load(); w != nil {
			w.Store(true)
		}
	}
	return n, err
}

// NewWorkerTransport returns the transport that carries requests to w: it
// dials w's socket, keeps as many idle connections as w takes requests at
// once (so a busy worker never pays for a new connection), and refuses to
// dial again for a request already sent (see errNoReplay).
func NewWorkerTransport(w *pool.Worker) http.RoundTripper {
	network, addr := w.Network(), w.Address()
	d := &net.Dialer{Timeout: 5 * time.Second}
	return &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			if s, ok := ctx.Value(sessionKey{}).(*session); ok && s.sent() {
				return nil, errNoReplay
			}
			c, err := d.DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			return &trackedConn{Conn: c}, nil
		},
		MaxIdleConnsPerHost: max(2, w.Capacity()),
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
		Proxy:               nil,
	}
}

// retryingTransport sends a request to the session's worker, and, if the
// connection failed before anything was sent, to another worker.
type retryingTransport struct {
	router Router
}

// maxAttempts bounds retries on other workers for one request.
const maxAttempts = 3

// noWorkerError: a retry found no other worker; err says why (the pool's
// refusal), and the proxy answers it as it answers a refusal.
type noWorkerError struct {
	first, err error
}

func (e *noWorkerError) Error() string {
	return e.first.Error() + "; no other worker: " + e.err.Error()
}

func (e *noWorkerError) Unwrap() error { return e.err }

func (t *retryingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	sess := req.Context().Value(sessionKey{}).(*session)
	// A failed dial makes Go's transport close the request body: keep the
	// real one open, and know whether any of it was read, so that a request
	// with a body can go to another worker too.
	var body *retryBody
	if req.Body != nil && req.Body != http.NoBody {
		body = &retryBody{ReadCloser: req.Body}
		r2 := *req
		r2.Body = body
		req = &r2
	}
	for attempt := 1; ; attempt++ {
		resp, err := sess.worker.Transport.RoundTrip(req)
		if err == nil || sess.sent() || attempt == maxAttempts || req.Context().Err() != nil ||
			(body != nil && body.read) {
			return resp, err
		}
		// Nothing reached the worker (it is gone, or its socket refused):
		// give the request to another one. Unreachable first, so that the
		// freed slot is not handed to the next request.
		var op *net.OpError
		if errors.As(err, &op) && op.Op == "dial" {
			t.router.Unreachable(sess.worker)
		}
		t.router.Release(sess.worker)
		next, aerr := t.router.Acquire(req.Context())
		if aerr != nil {
			sess.worker = nil // released already
			return nil, &noWorkerError{first: err, err: aerr}
		}
		sess.worker = next
		if body != nil {
			body.closed = false
		}
	}
}

// retryBody is a request body that survives a failed attempt: Close only
// marks it (the server closes the real body when the handler returns), and
// read says whether any byte went out, after which no retry is possible.
type retryBody struct {
	io.ReadCloser
	read, closed bool
}

func (b *retryBody) Read(p []byte) (int, error) {
	if b.closed {
		return 0, errors.New("ferry: read on a closed request body")
	}
	n, err := b.ReadCloser.Read(p)
	if n > 0 {
		b.read = true
	}
	return n, err
}

func (b *retryBody) Close() error {
	b.closed = true
	return nil
}

// bufferPool reuses ReverseProxy's 32 KiB copy buffers.
type bufferPool struct{}

var buffers = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

func (bufferPool) Get() []byte  { return *(buffers.Get().(*[]byte)) }
func (bufferPool) Put(b []byte) { buffers.Put(&b) }
