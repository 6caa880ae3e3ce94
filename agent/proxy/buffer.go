package proxy

import (
	"bytes"
	"io"
	"net/http"
	"time"
)

// Response buffering. A WSGI process serves one request at a time, and a
// response relayed as it is read holds it until the client has taken
// what the kernel could not buffer: a slow client holds a process. A
// response body of a declared length up to the app's ResponseBufferLimit
// is therefore read whole first, the worker given back (its connection to
// the idle list, its slot to the pool), and only then written to the
// client, as Passenger does. A body already in the worker connection's
// buffer with its head, as most small ones are, needs none of this: it is
// relayed as before, at no cost. A chunked body is a stream (server-sent
// events, say) and is never held back.

// relayBuffered relays the plain response in cc.resp (relay.go) whose
// body is not all in x's buffer yet: it reads the body whole, ends the
// exchange and gives the worker back, then writes the response to the
// client. A worker that fails mid-body gets the client a 502, and one that
// stalls in it past maxRequestTime a 504 (boundBody): nothing was written
// yet.
func (cc *clientConn) relayBuffered(x pending, clock func() time.Time) (clientOK bool) {
	h, br := &cc.resp, x.c.br
	raw := bytes.Clone(h.raw) // out of br's buffer, which reading the body reuses
	_, _ = br.Discard(len(h.raw))
	h.raw = raw
	body := make([]byte, h.length)
	read := 0
	err := x.c.readBody(func() error {
		n, err := io.ReadFull(br, body[read:])
		read += n
		return err
	})
	now := time.Now()
	x.done(err == nil && !h.close, now)
	if err != nil {
		cc.s.fail(&cc.reply, cc.ctx, cc.req.Method, cc.path(), cc.sess, err)
		cc.s.giveBack(cc.sess)
		return cc.sendReply(now)
	}
	cc.s.giveBack(cc.sess)
	keep := cc.writeResponseHead(clock)
	_, err = cc.bw.Write(body)
	clientOK = err == nil && cc.bw.Flush() == nil && keep
	// The end is when the client has it: the request's time, and where
	// the client's idle time starts, however long a slow client took.
	cc.sess.end = time.Now()
	return clientOK
}

// cutShortError: the worker's answer ended before the length it declared
// (its head came, then part of its body).
type cutShortError struct{ err error }

func (e *cutShortError) Error() string { return "the answer was cut short: " + e.err.Error() }
func (e *cutShortError) Unwrap() error { return e.err }

// bufferResponse reads resp's body whole when it has a declared length up
// to limit, and gives the worker back; resp's body is then the copy. The
// error is the worker's, failing mid-body or overrunning maxRequestTime
// (boundBody); nothing went to the client.
func (s *Server) bufferResponse(resp *http.Response, sess *session, limit int64) error {
	n := resp.ContentLength
	if resp.Request != nil && resp.Request.Method == http.MethodHead || !s.buffers(sess, n, limit) { // a HEAD's has none
		return nil
	}
	buf := bytes.NewBuffer(make([]byte, 0, n+bytes.MinRead))
	wb, _ := resp.Body.(*workerBody)
	// To its end, so that the connection is kept; short of n is
	// io.ErrUnexpectedEOF (http.ReadResponse's body).
	read := func() error {
		_, err := buf.ReadFrom(resp.Body)
		return err
	}
	var err error
	if wb != nil {
		err = wb.c.readBody(read) // unbound before Close gives the connection to another request
	} else if err = read(); err != nil {
		err = &cutShortError{err}
	}
	_ = resp.Body.Close()
	if err != nil {
		return err
	}
	resp.Body = io.NopCloser(buf)
	s.giveBack(sess)
	return nil
}

// buffers reports whether a response body of length n, up to limit, is to
// be buffered, and takes it from the agent's memory budget for the
// session (finish gives it back).
func (s *Server) buffers(sess *session, n, limit int64) bool {
	if n <= 0 || n > limit || !s.opts.ResponseMemory.take(n) {
		return false
	}
	sess.held = n
	return true
}

// giveBack releases the session's worker before the response is
// written, its answer come (or failed: sess.outcome says): finish will
// not.
func (s *Server) giveBack(sess *session) {
	if sess.worker != nil {
		s.router.Release(sess.worker, sess.outcome)
		sess.worker = nil
	}
}
