package proxy

import (
	"bufio"
	"errors"
	"io"
	"net/http"
	"net/http/httputil"
	"net/textproto"
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
// as for a client gone partway through the answer, to the end its
// framing says (drainAbandoned); w
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
	resp, _, _, err := c.readResponse(&http.Request{Method: method}) //nolint:bodyclose // drained, then closed
	if err == nil {
		s.drainAbandoned(w, c, restOfBody(resp, resp.Body, c.br, false), method, path)
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
	s.leaveMidAnswer(sess, b.c, b.stop, restOfBody(resp, b.rc, b.c.br, b.failed), method, path())
}

// leaveMidAnswer takes sess's worker, whose client left partway through
// its answer on c, from the session, and drains the rest of the answer
// (rest) off the request path (drainAbandoned). stop is the request's
// hold on c (takeFromRequest).
func (s *Server) leaveMidAnswer(sess *session, c *workerConn, stop func() bool, rest answerRest, method, path string) {
	c.takeFromRequest(stop)
	c.closeWrite()
	w := sess.worker
	sess.worker = nil
	go s.drainAbandoned(w, c, rest, method, path)
}

// answerRest reads the rest of an abandoned answer and drops it. nil: the
// answer ended where its framing says (its length, its last chunk);
// io.EOF or io.ErrUnexpectedEOF: the worker closed the connection, at the
// end of an answer that has no framing (no length, not chunked: the close
// ends it) or before the end of one that has; any other error is the
// read's (maxRequestTime's deadline).
type answerRest func() error

// restOfBody is the answerRest of resp, whose body (http.ReadResponse's,
// which follows the framing) has been read from br up to where the client
// left; failed: a read of it failed (the request's cancel ended a read
// that waited: workerBody.failed). A chunked body whose read failed is
// read on from br by dropChunks: http.ReadResponse's chunked reader keeps
// its error, and gives nothing more.
func restOfBody(resp *http.Response, body io.Reader, br *bufio.Reader, failed bool) answerRest {
	chunked := len(resp.TransferEncoding) > 0
	if chunked && failed {
		return func() error { return dropChunks(br) }
	}
	framed := chunked || body == http.NoBody || resp.ContentLength >= 0
	return func() error { return dropRest(body, framed) }
}

// dropRest reads body to its end and drops it: framed, the end is the
// framing's (nil); else it is the worker's close (io.EOF).
func dropRest(body io.Reader, framed bool) error {
	_, err := io.Copy(io.Discard, body)
	if err == nil && !framed {
		return io.EOF
	}
	return err
}

// dropChunks reads and drops the rest of a chunked body from br, where a
// read of it failed, as dropRest does. A client's leaving is noticed
// (the watch's abort) while the proxy waits for the worker's next bytes:
// between two chunks, as a stream that sleeps between them is, br is at a
// chunk's start, and the framing is followed from there to the last chunk
// and the trailers. Where the read stopped partway through a chunk (its
// size line, its bytes, the CRLF after them), what follows is no chunk's
// start, which the chunked reader finds at once (or later: the framing
// breaks), and the rest is read to the worker's close, as for an answer
// without framing. (A chunk's bytes that happen to read as chunks down to
// a last one would end the drain early: the worker, given back while
// still at the answer, meets the closed connection at its next write.)
func dropChunks(br *bufio.Reader) error {
	_, err := io.Copy(io.Discard, httputil.NewChunkedReader(br))
	if err == nil {
		_, err = textproto.NewReader(br).ReadMIMEHeader() // the trailers, and the empty line that ends them
	}
	if err == nil || errors.Is(err, os.ErrDeadlineExceeded) || peerGone(err) {
		return err
	}
	return dropRest(br, false) // the framing lost
}

// restOfLength is the answerRest of an answer of a declared length whose
// last n bytes are still to come on br (the front end's relay): short of
// n, io.EOF.
func restOfLength(br io.Reader, n int64) answerRest {
	return func() error {
		_, err := io.CopyN(io.Discard, br, n)
		return err
	}
}

// drainAbandoned reads and drops the rest of an abandoned answer on c,
// half-closed as the client's was (rest), and gives w back once the
// answer ended.
//
// An answer whose framing tells its end (a length, a last chunk: most)
// ends there: w is done with the request and is given back at once, c
// closed. Not kept: the half-close shut c's writing side, so it can carry
// no other request, and the half-close is worth more than a kept
// connection (one dial): a server that watches for its client leaving
// (Go's net/http, Node, the WSGI loader between the chunks of a stream)
// stops work no one awaits. Nor is w given back only when it closes c: a
// server that keeps its connection open past the end of an answer and
// ignores the half-close (it waits for its next request until its own
// idle timeout) would be held until then, and with maxRequestTime killed
// as one whose answer did not end. Whatever w sends after the end is of
// no one's asking, and is not read. Nor does an answer ended whole wait
// reapWait to tell a death from a close, as every answer did when the
// drain went on to the close: w did not die in the request, and should it
// exit after, its pool sees that exit as any other.
//
// An answer without framing (no length, not chunked) ends where w closes
// c, and so does one w cuts short (the WSGI loader stops a stream at its
// next chunk once it sees the half-close): that close is all there is to
// see, and a process killed closes its connections a moment before it
// is reaped, so it still waits up to reapWait to tell a death from a
// close (diedUnder): w is given back then, or reported dead in path.
//
// maxRequestTime, counted from the abandon, bounds the drain: a worker
// still at it then is killed, for path, as one whose answer does not
// come is (a stream with no end, an app that does not notice its client
// gone); counted from the answer's head for a client gone before it
// (awaitAbandoned). Without maxRequestTime it is awaited as long as it
// takes, as an answer whose head has not come is.
func (s *Server) drainAbandoned(w *pool.Worker, c *workerConn, rest answerRest, method, path string) {
	limit := c.boundLimit
	if limit > 0 {
		_ = c.SetReadDeadline(time.Now().Add(limit))
	}
	err := rest()
	_ = c.Close()
	s.settleAbandoned(w, err, limit, method, path, pool.Answered)
}
