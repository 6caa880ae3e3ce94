package proxy

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/ferry-dev/ferry/agent/pool"
)

// retryingTransport sends a request to the session's worker, and, if
// nothing of it reached that worker, to another one, or replays it once to
// the same worker (withRetries).
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
	// A failed attempt closes the request body: keep the real one open,
	// and know whether any of it was read, so that a request with a body
	// can go to another worker too.
	var body *retryBody
	if req.Body != nil && req.Body != http.NoBody {
		body = &retryBody{ReadCloser: req.Body}
		r2 := *req
		r2.Body = body
		req = &r2
	}
	return withRetries(t.router, req.Context(), sess, body, func() (*http.Response, error) {
		return sess.worker.Transport.RoundTrip(req)
	})
}

// withRetries runs send on the session's worker and, while nothing of the
// request reached a worker, on another one (maxAttempts in all). A safe
// request whose kept connection went stale is replayed once, to the same
// worker on a new connection (staleConnError); after a replay nothing is
// retried.
func withRetries[R any](router Router, ctx context.Context, sess *session, body *retryBody,
	send func() (R, error)) (R, error) {
	var stale error // the failure the request was replayed after
	for attempt := 1; ; attempt++ {
		resp, err := send()
		if err == nil {
			return resp, nil
		}
		if stale != nil {
			return resp, afterReplay(router, sess, stale, err)
		}
		var staleConn *staleConnError // on the heap (errors.As): declared only on failure
		if errors.As(err, &staleConn) && ctx.Err() == nil && !sess.worker.Exited() {
			stale, sess.replaying = staleConn.err, true
			continue
		}
		var notSent *notSentError
		if !errors.As(err, &notSent) || attempt == maxAttempts || ctx.Err() != nil || (body != nil && body.read) {
			return resp, err
		}
		// Nothing reached the worker (it is gone, or its socket refused):
		// give the request to another one. Unreachable first, so that the
		// freed slot is not handed to the next request.
		if refused(err) {
			router.Unreachable(sess.worker)
		}
		router.Release(sess.worker, pool.Unanswered)
		next, aerr := router.Acquire(ctx, sess.key)
		if aerr != nil {
			sess.worker = nil // released already
			var none R
			return none, &noWorkerError{first: err, err: aerr}
		}
		sess.worker = next
		if body != nil {
			body.closed = false
		}
	}
}

// afterReplay is the error of a replayed request that failed again. A
// replay that reached nothing found the worker gone or refusing, most
// likely because of this request: the request goes to no other worker, and
// is answered for its first failure, whose 502 says whether the worker
// exited.
func afterReplay(router Router, sess *session, first, err error) error {
	var notSent *notSentError
	if !errors.As(err, &notSent) {
		return err
	}
	if refused(err) {
		router.Unreachable(sess.worker)
	}
	return first
}

// refused: the worker's socket is there no more, or takes no connection:
// the worker is unreachable (not a timeout, nor a shortage of local ports,
// which say nothing about the worker).
func refused(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial" &&
		(errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ENOENT))
}

// retryBody is a request body that survives a failed attempt: Close only
// marks it (the server closes the real body when the handler returns), and
// read says whether any byte went out, after which no retry is possible.
// failure is the client's side failing (a malformed chunk, a client gone),
// read by the handler while the writer may still run.
type retryBody struct {
	io.ReadCloser
	read, closed bool
	failure      atomic.Pointer[error]
}

// err is the client's failure, if its body failed.
func (b *retryBody) err() error {
	if e := b.failure.Load(); e != nil {
		return *e
	}
	return nil
}

func (b *retryBody) Read(p []byte) (int, error) {
	if b.closed {
		return 0, errors.New("ferry: read on a closed request body")
	}
	n, err := b.ReadCloser.Read(p)
	if n > 0 {
		b.read = true
	}
	if err != nil && err != io.EOF {
		b.failure.Store(&err)
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
