package proxy

import (
	"errors"
	"io"
	"net/http"
	"os"
	"time"

	"github.com/ferry-dev/ferry/agent/pool"
)

// abandon deals with the worker of a request (method to path) whose
// client went away before the answer came (err). One that serves a
// request at a time and got the whole request is still at it: its answer
// is awaited off the request path (awaitAbandoned), and the worker is
// taken from the session, given back when the answer or the death came.
// Any other is given back by finish, after a death (the request of death
// whose client did not wait for the answer) is reported.
func (s *Server) abandon(method, path string, sess *session, err error) {
	w := sess.worker
	if w == nil {
		return
	}
	var abandoned *abandonedError
	if errors.As(err, &abandoned) {
		sess.worker = nil
		go s.awaitAbandoned(w, abandoned, method, path)
		return
	}
	if diedUnder(w, err) {
		s.router.DiedIn(w, method, path)
	}
}

// awaitAbandoned waits for w's answer to an abandoned request on its
// connection (abandonedError): when its head comes, the rest is drained
// as for a client gone partway through the answer (drainAbandoned); w
// is given back when it closed the connection unanswered, or when it
// died in the request, or is killed when maxRequestTime passed (as for a
// request whose client waits). Until then the pool
// hands w no other request: one would wait behind the abandoned request,
// which is still w's; and should that be a request of death, it would die
// with it and take the blame.
//
// The connection is half-closed first, as the client's was: a server that
// watches for its client leaving (Go's net/http, Node, a long poll) sees
// the end of the request stream and may stop at once, while a WSGI
// process looks only between the chunks of a streamed answer (its
// loader stops it there), and otherwise answers as before. A server that closes
// the connection then but works on (Node's default) is given back while
// still at it: the close is all the proxy can see.
func (s *Server) awaitAbandoned(w *pool.Worker, a *abandonedError, method, path string) {
	c := a.c
	c.closeWrite()
	_, _, _, err := c.readResponse(&http.Request{Method: method}) //nolint:bodyclose // drained, then closed
	if err == nil {
		s.drainAbandoned(w, c, method, path)
		return
	}
	_ = c.Close()
	s.settleAbandoned(w, err, a.limit, method, path, pool.Unanswered)
}

// settleAbandoned gives back w, whose abandoned request (method to path)
// was awaited until err: nil, its answer came; a deadline, maxRequestTime
// (limit) passed, and w is killed for path; else w is given back, after
// its death in the request, if it died, is reported.
func (s *Server) settleAbandoned(w *pool.Worker, err error, limit time.Duration, method, path string, outcome pool.Outcome) {
	switch {
	case err == nil:
	case limit > 0 && errors.Is(err, os.ErrDeadlineExceeded):
		s.router.Overran(w, path, limit)
		outcome = pool.Unanswered
	case diedUnder(w, err):
		s.router.DiedIn(w, method, path)
		outcome = pool.Unanswered
	}
	s.router.Release(w, outcome)
}

// A worker that serves one request at a time is at a request until its
// answer has ended, whether or not the client still reads it: a client
// that goes away partway through a streamed answer (a download, a long
// poll, server-sent events) leaves a WSGI process writing the rest, or
// sleeping between chunks. Given back at once, it would be handed the
// next request, which would wait behind the rest of the abandoned answer
// (or be blamed, and killed, when maxRequestTime ran out on it). So such
// a worker is taken from the session (leaveMidAnswer), and the rest of
// its answer read and dropped off the request path (drainAbandoned).

// closeAnswer closes resp's body when its request (method to path) ends:
// when the client left partway through it, from a worker still at it,
// the worker is taken from sess and the rest awaited (leaveMidAnswer).
// path is called then only: the front end's makes a string.
func (s *Server) closeAnswer(resp *http.Response, sess *session, method string, path func() string) {
	b, ok := resp.Body.(*workerBody)
	if !ok || sess.worker == nil || !b.leftMidAnswer() {
		_ = resp.Body.Close()
		return
	}
	b.closed = true
	s.leaveMidAnswer(sess, b.c, b.stop, method, path())
}

// leaveMidAnswer takes sess's worker, whose client left partway through
// its answer on c, from the session, and drains the rest of the answer
// off the request path (drainAbandoned). stop is the request's hold on c
// (takeFromRequest).
func (s *Server) leaveMidAnswer(sess *session, c *workerConn, stop func() bool, method, path string) {
	c.takeFromRequest(stop)
	c.closeWrite()
	w := sess.worker
	sess.worker = nil
	go s.drainAbandoned(w, c, method, path)
}

// drainAbandoned reads and drops the rest of an abandoned answer on c,
// half-closed as the client's was, until w closes the connection:
// at the end of the answer, when it reads the end of the request stream
// for its next request; earlier, when it notices the half-close (the
// WSGI loader looks between the chunks of a stream, and stops it). The
// framing is not followed: whatever w sends after the half-close is of
// no one's asking. maxRequestTime, counted from the abandon, bounds the
// drain: a worker still at it then is killed, for path, as one whose
// answer does not come is (a stream with no end, an app that does not
// notice its client gone); counted from the answer's head for a client
// gone before it (awaitAbandoned). Without maxRequestTime it is awaited
// as long as it takes, as an answer whose head has not come is.
func (s *Server) drainAbandoned(w *pool.Worker, c *workerConn, method, path string) {
	limit := c.boundLimit
	if limit > 0 {
		_ = c.SetReadDeadline(time.Now().Add(limit))
	}
	_, err := io.Copy(io.Discard, c.br)
	_ = c.Close()
	if err == nil {
		err = io.EOF // w closed the connection: it may have died in the answer (diedUnder)
	}
	s.settleAbandoned(w, err, limit, method, path, pool.Answered)
}
