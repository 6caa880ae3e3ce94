package proxy

import (
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// respond writes the worker's response to the front end's client, as
// respond does through net/http: end-to-end fields, a Date when the worker
// sent none, the body framed by its length or chunked (flushed as it
// comes), trailers. It reports whether the connection may carry another
// request: not after a cut-short response. A worker that fails before any
// of its answer reached the client (answerFailed) has it dropped: failed
// is then the error to answer the client with.
func (cc *clientConn) respond(resp *http.Response, now time.Time) (keep bool, failed error) {
	bw, w := cc.bw, head{cc.bw}
	since := cc.sentBytes()
	keep = cc.keepAlive()
	code := resp.StatusCode
	bodyAllowed := code >= 200 && code != http.StatusNoContent && code != http.StatusNotModified &&
		cc.req.Method != http.MethodHead
	w.status(code)
	conn := resp.Header["Connection"]
	date := false
	for k, vv := range resp.Header {
		if hopByHop(k) || listed(conn, k) || (bodyAllowed && k == "Content-Length") ||
			!isToken(k) || suppressed(code, k) {
			continue // as net/http's server writes a response
		}
		date = date || k == "Date"
		for _, v := range vv {
			w.field(k, v)
		}
	}
	if !date {
		w.field("Date", httpDate(now))
	}
	chunked := bodyAllowed && resp.ContentLength < 0
	switch {
	case chunked:
		w.str("Transfer-Encoding: chunked\r\n")
		if declared := keptTrailers(resp.Trailer, conn); len(declared) > 0 {
			w.field("Trailer", strings.Join(declared, ", "))
		}
	case bodyAllowed:
		w.length(resp.ContentLength)
	}
	w.end(keep)
	if bodyAllowed {
		if err := cc.copyFramed(resp, chunked, since); err != nil {
			// The client must see a cut-short response, not a complete one.
			var werr *answerError
			if errors.As(err, &werr) && cc.answerFailed(werr.err, since) {
				return false, &cutShortError{werr.err}
			}
			return false, nil
		}
	}
	return bw.Flush() == nil && keep, nil
}

// suppressed: fields net/http's server leaves out of a 204 or 304 response
// (a length there would frame a body that is not sent).
func suppressed(code int, k string) bool {
	switch code {
	case http.StatusNoContent:
		return k == "Content-Length" || k == "Transfer-Encoding"
	case http.StatusNotModified:
		return k == "Content-Length" || k == "Transfer-Encoding" || k == "Content-Type"
	}
	return false
}

// copyFramed copies the body to the client's buffer: as it is when its
// length is known (the buffer goes out when full, at the end, and
// whenever the worker pauses: awaitBody says when), else chunk by chunk,
// each flushed as it comes (streams, server-sent events), then the
// trailers. A failed read of the worker's body is an *answerError. The
// head, in the buffer, waits for the body's first bytes up to headWait
// (holdHead); since is what the client's socket had taken before it.
func (cc *clientConn) copyFramed(resp *http.Response, chunked bool, since uint64) error {
	bw := cc.bw
	buf := buffers.Get().(*[]byte)
	defer buffers.Put(buf)
	var held *heldHead
	if holdsHead(resp) {
		held = holdHead(func() { _ = bw.Flush() }) // an error stays bw's
		defer held.release()                       // also if a read panics: bw goes back to a pool
	}
	wc := flushingBody(resp)
	if wc != nil {
		wc.newAnswer()
	}
	for {
		if wc != nil && held == nil && bw.Buffered() > 0 { // not while holdHead's timer owns bw
			wc.flushOnPause((*clientBuffer)(bw), cc.noneSent(since))
		}
		n, rerr := resp.Body.Read(*buf)
		if wc != nil {
			wc.flushOnPause(nil, false)
		}
		if held != nil {
			held.release()
			held = nil
		}
		if n > 0 {
			var err error
			if chunked {
				_, _ = bw.Write(strconv.AppendInt(bw.AvailableBuffer(), int64(n), 16))
				_, _ = bw.WriteString("\r\n")
				_, _ = bw.Write((*buf)[:n])
				_, _ = bw.WriteString("\r\n")
				err = bw.Flush()
			} else {
				_, err = bw.Write((*buf)[:n])
			}
			if err != nil {
				return err
			}
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return &answerError{err: rerr}
		}
	}
	if !chunked {
		return nil
	}
	_, _ = bw.WriteString("0\r\n")
	for k, vv := range resp.Trailer { // complete now the body was read
		if !trailerKept(k, resp.Header["Connection"]) {
			continue
		}
		for _, v := range vv {
			head{bw}.field(k, v)
		}
	}
	_, err := bw.WriteString("\r\n")
	return err
}

// sendReply writes the refusal or failure in cc.reply, if there is one to
// write (none when the client went away), and reports whether the
// connection may carry another request.
func (cc *clientConn) sendReply(now time.Time) bool {
	r := &cc.reply
	defer r.reset()
	if r.code == 0 {
		return false
	}
	keep := cc.keepAlive() && r.h.Get("Connection") != "close"
	bw, w := cc.bw, head{cc.bw}
	w.status(r.code)
	for k, vv := range r.h {
		for _, v := range vv {
			if k != "Connection" {
				w.field(k, v)
			}
		}
	}
	w.field("Date", httpDate(now))
	w.length(int64(len(r.body)))
	w.end(keep)
	if cc.req.Method != http.MethodHead { // its length is said, its body is not sent
		_, _ = bw.Write(r.body)
	}
	return bw.Flush() == nil && keep
}

// replyWriter collects a refusal or a failure written the way the
// net/http path writes it (refuse, fail), for sendReply.
type replyWriter struct {
	h    http.Header
	code int
	body []byte
}

func (w *replyWriter) Header() http.Header {
	if w.h == nil {
		w.h = http.Header{}
	}
	return w.h
}

func (w *replyWriter) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
}

func (w *replyWriter) Write(p []byte) (int, error) {
	w.WriteHeader(http.StatusOK)
	w.body = append(w.body, p...)
	return len(p), nil
}

func (w *replyWriter) reset() {
	clear(w.h)
	w.code, w.body = 0, w.body[:0]
}

// httpDate is now in http.TimeFormat, formatted once a second.
func httpDate(now time.Time) string {
	sec := now.Unix()
	if d := lastDate.Load(); d != nil && d.sec == sec {
		return d.text
	}
	d := &formattedDate{sec: sec, text: now.UTC().Format(http.TimeFormat)}
	lastDate.Store(d)
	return d.text
}

type formattedDate struct {
	sec  int64
	text string
}

var lastDate atomic.Pointer[formattedDate]
