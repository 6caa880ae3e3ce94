package proxy

import (
	"bufio"
	"time"
)

// The front end relays a plain worker response itself: a final status
// (not 101, 204 or 304) to a request other than HEAD, framed by one
// Content-Length, without Transfer-Encoding, Trailer or a Connection field
// naming other fields, and whose head fits the connection's buffer. That
// is what most apps answer most requests with; parsing it into an
// http.Response (a map of canonical keys, a string per value) cost the
// front end a fifth of its CPU. Any other response is read with
// http.ReadResponse and written by respond (reply.go), as before.

// responseHead is a plain response head: spans of raw, which is the worker
// connection's buffer (valid until it is read further).
type responseHead struct {
	raw    []byte
	code   int
	length int64
	left   int64 // what relay left of the body unread when it stopped short
	close  bool  // Connection: close: the worker does not keep the connection
	date   bool
	fields []span // passed on
}

// peekPlain waits for the worker's response and reports whether its head
// is plain (cc.resp); it reads nothing the fallback would miss.
func (cc *clientConn) peekPlain(br *bufio.Reader) bool {
	if _, err := br.Peek(1); err != nil {
		return false // http.ReadResponse meets the error again, and says it
	}
	for {
		buf, _ := br.Peek(br.Buffered())
		n := headEnd(buf)
		if n > 0 {
			cc.resp.raw = buf[:n]
			return parseResponseHead(&cc.resp)
		}
		if n < 0 || len(buf) == br.Size() {
			return false
		}
		if _, err := br.Peek(len(buf) + 1); err != nil {
			return false
		}
	}
}

// parseResponseHead parses h.raw and reports whether it is plain.
func parseResponseHead(h *responseHead) bool {
	raw := h.raw
	h.fields, h.close, h.date, h.length = h.fields[:0], false, false, -1
	line, rest, ok := cutLine(raw, 0)
	if !ok {
		return false
	}
	b := line.of(raw)
	const proto = "HTTP/1.1 "
	if len(b) < len(proto)+3 || string(b[:len(proto)]) != proto || len(b) > len(proto)+3 && b[len(proto)+3] != ' ' {
		return false
	}
	var code int64
	if !parseLength(b[len(proto):len(proto)+3], &code) || code < 200 || code > 599 || code == 204 || code == 304 {
		return false
	}
	h.code = int(code)
	for {
		var l span
		l, rest, ok = cutLine(raw, rest)
		if !ok {
			return false
		}
		if l.start == l.end {
			return h.length >= 0
		}
		f, ok := parseField(raw, l)
		if !ok {
			return false
		}
		switch responseFieldKind(f.name(raw)) {
		case fieldPlain:
			h.fields = append(h.fields, f)
		case fieldDate:
			h.fields = append(h.fields, f)
			h.date = true
		case fieldContentLength:
			if h.length >= 0 || !parseLength(f.val(raw), &h.length) {
				return false // two, or not a number: http.ReadResponse decides
			}
		case fieldConnection:
			closing, ok := connectionClose(f.val(raw))
			if !ok {
				return false
			}
			h.close = h.close || closing
		case fieldDropped:
		default:
			return false
		}
	}
}

func parseLength(v []byte, n *int64) bool {
	if len(v) == 0 || len(v) > 18 {
		return false
	}
	var x int64
	for _, c := range v {
		if c < '0' || c > '9' {
			return false
		}
		x = x*10 + int64(c-'0')
	}
	*n = x
	return true
}

// relay writes the plain response in cc.resp to the client's buffer and
// copies its body from br; clock is read only if the worker sent no Date.
// The head waits for the body's first bytes up to headWait (holdHead), as
// a streamed one does (copyFramed).
// What the buffer holds goes out whenever the worker pauses (awaitBody);
// c is the worker connection under br (nil: no such flushes).
// The caller flushes what is left in the buffer, once it gave the worker
// back: a response that fits there holds no worker while a client that
// does not read keeps it from its socket. keep: the client's connection
// may carry another request (after that flush); workerOK: the worker's
// response was read to its end, and the worker keeps the connection;
// clientLeft: the client could not be written to, and the worker's body
// was left partway (leaveMidAnswer); werr: the read that failed when the
// worker's body ended short. When either is set, h.left is how much of
// the body is unread.
func (cc *clientConn) relay(br *bufio.Reader, c *workerConn, clock func() time.Time) (keep, workerOK, clientLeft bool, werr error) {
	h, bw, since := &cc.resp, cc.bw, cc.sentBytes()
	keep = cc.writeResponseHead(clock)
	_, _ = br.Discard(len(h.raw)) // h.raw is br's buffer: written out first
	h.raw = nil
	if c != nil {
		c.newAnswer()
	}
	var held *heldHead
	if h.length > 0 && br.Buffered() == 0 { // the head waits for the body's first bytes up to headWait
		held = holdHead(func() { _ = bw.Flush() }) // an error stays bw's
		defer held.release()                       // also if a read panics: bw goes back to a pool
	}
	for n := h.length; n > 0; {
		if br.Buffered() == 0 {
			err := cc.awaitBody(br, c, held == nil, since)
			if held != nil {
				held.release()
				held = nil
			}
			if err != nil {
				h.left = n
				return false, false, false, err // the worker went away mid-body (answerFailed), or the request was cancelled
			}
		}
		k := int(min(n, int64(br.Buffered())))
		p, _ := br.Peek(k)
		if _, err := bw.Write(p); err != nil {
			h.left = n // p is still br's
			return false, false, true, nil
		}
		_, _ = br.Discard(k)
		n -= int64(k)
	}
	return keep, !h.close, false, nil
}

// awaitBody waits for more of the worker's body in br (br.Peek). When the
// worker has sent nothing more yet, what the client's buffer holds goes
// out first (workerConn.readOrFlush), once the pause lasted headWait
// while none of the answer reached the client's socket since it had
// taken since bytes (sentBytes); not while holdHead's timer owns the
// buffer (flush false), nor when it holds nothing, which would cost a
// read(2) for no write.
func (cc *clientConn) awaitBody(br *bufio.Reader, c *workerConn, flush bool, since uint64) error {
	if !flush || c == nil || cc.bw.Buffered() == 0 {
		_, err := br.Peek(1)
		return err
	}
	c.flushOnPause((*clientBuffer)(cc.bw), cc.noneSent(since))
	defer c.flushOnPause(nil, false) // also if the read panics: cc.bw goes back to a pool
	_, err := br.Peek(1)
	return err
}

// writeResponseHead writes the head of the plain response in cc.resp to
// the client's buffer, and reports whether the client's connection is
// kept.
func (cc *clientConn) writeResponseHead(clock func() time.Time) (keep bool) {
	h, bw, w := &cc.resp, cc.bw, head{cc.bw}
	keep = cc.keepAlive()
	w.status(h.code)
	for _, f := range h.fields {
		writeField(bw, f.name(h.raw), f.val(h.raw))
	}
	if !h.date {
		w.field("Date", httpDate(clock()))
	}
	w.length(h.length)
	w.end(keep)
	return keep
}

// bodyPending: the plain response's body is not all in br yet (the head
// still is).
func (h *responseHead) bodyPending(br *bufio.Reader) bool {
	return h.length > int64(br.Buffered()-len(h.raw))
}
