package proxy

import (
	"context"
	"errors"
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
	// Set by the connection (in the transport's write goroutine).
	wrote atomic.Bool
	code  int
	trace httptrace.ClientTrace
}

var sessions = sync.Pool{New: func() any {
	s := &session{}
	// The transport hands this request a connection: from now on, bytes
	// written to it are this request's.
	s.trace.GotConn = func(info httptrace.GotConnInfo) {
		if c, ok := info.Conn.(*trackedConn); ok {
			c.sess.Store(s)
		}
	}
	return s
}}

func getSession() *session { return sessions.Get().(*session) }

func putSession(s *session) {
	s.worker, s.code = nil, 0
	s.wrote.Store(false)
	sessions.Put(s)
}

// trackedConn is a connection to a worker that tells the request using it
// when bytes actually left for the worker. Go's own hooks fire when
// headers reach a buffer, before a write that may still fail with EPIPE on
// a dead worker: that request was not sent, and may go elsewhere.
type trackedConn struct {
	net.Conn
	sess atomic.Pointer[session]
}

func (c *trackedConn) Write(b []byte) (int, error) {
	n, err := c.Conn.Write(b)
	if n > 0 {
		if s := c.sess.Load(); s != nil {
			s.wrote.Store(true)
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
			if s, ok := ctx.Value(sessionKey{}).(*session); ok && s.wrote.Load() {
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

func (t *retryingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	sess := req.Context().Value(sessionKey{}).(*session)
	for attempt := 1; ; attempt++ {
		resp, err := sess.worker.Transport.RoundTrip(req)
		if err == nil || sess.wrote.Load() || attempt == maxAttempts || req.Context().Err() != nil {
			return resp, err
		}
		// Nothing reached the worker (it is gone, or its socket refused):
		// give the request to another one.
		t.router.Release(sess.worker)
		var op *net.OpError
		if errors.As(err, &op) && op.Op == "dial" {
			t.router.Unreachable(sess.worker)
		}
		next, aerr := t.router.Acquire(req.Context())
		if aerr != nil {
			// Keep the session's worker valid for the caller's Release.
			sess.worker = nil
			return nil, errors.Join(err, aerr)
		}
		sess.worker = next
	}
}

// bufferPool reuses ReverseProxy's 32 KiB copy buffers.
type bufferPool struct{}

var buffers = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

func (bufferPool) Get() []byte  { return *(buffers.Get().(*[]byte)) }
func (bufferPool) Put(b []byte) { buffers.Put(&b) }
