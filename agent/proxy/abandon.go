package proxy

import (
	"errors"
	"net/http"
	"os"

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
// connection (abandonedError), and gives w back when its head came (w is
// serving; what remains of the answer is dropped with the connection,
// which w notices at its next write), when w closed the connection
// unanswered, when w died in the request, or when maxRequestTime passed
// (w is killed, as for a request whose client waits). Until then the pool
// hands w no other request: one would wait behind the abandoned request,
// which is still w's; and should that be a request of death, it would die
// with it and take the blame.
//
// The connection is half-closed first, as the client's was: a server that
// watches for its client leaving (Go's net/http, Node, a long poll) sees
// the end of the request stream and may stop at once, while a WSGI
// process, which does not look, answers as before. A server that closes
// the connection then but works on (Node's default) is given back while
// still at it: the close is all the proxy can see.
func (s *Server) awaitAbandoned(w *pool.Worker, a *abandonedError, method, path string) {
	c := a.c
	c.closeWrite()
	_, _, _, err := c.readResponse(&http.Request{Method: method}) //nolint:bodyclose // the connection is closed
	_ = c.Close()
	outcome := pool.Unanswered
	switch {
	case err == nil:
		outcome = pool.Answered
	case a.limit > 0 && errors.Is(err, os.ErrDeadlineExceeded):
		s.router.Overran(w, path, a.limit)
	case diedUnder(w, err):
		s.router.DiedIn(w, method, path)
	}
	s.router.Release(w, outcome)
}
