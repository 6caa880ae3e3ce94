package proxy

import (
	"net"
	"net/http"
	"strconv"
)

// Go's own refusals. net/http answers some requests itself, before the
// proxy's handler runs: a malformed request line or field, no Host, two
// different Content-Lengths (400), a head over MaxHeaderBytes (431), an
// Expect other than 100-continue (417), a version it does not serve
// (505), a Transfer-Encoding it does not know (501). It writes each
// straight to the connection, which for one the front end handed over is
// a prefixConn: there the write is spotted (one made before the handler
// took a request: served) and counted by its status, as the proxy's own
// answers are. net/http answers a request line over MaxHeaderBytes as a
// head over it (431); the prefixConn tells them apart (no LF came since
// the connection's last answer ended: lineEnded) and answers the first
// 414 (URI Too Long), as nginx does. (A request pipelined after another
// is in net/http's buffer before that one's answer ends: were its head,
// not its line, over the limit in one field line that has no LF, it
// would be answered 414 too.) A connection served over TLS is not handed
// over: Go's refusals there are neither counted nor told apart.

// connState is net/http's ConnState hook: until the handler takes a
// request (served), what is written on c is a refusal: from the start,
// after an answer ended (idle: a next request line begins), and once a
// request's bytes came (active). A request net/http had read ahead with
// the one before (pipelined) makes it no active: it was read then.
func (s *Server) connState(c net.Conn, state http.ConnState) {
	pc, ok := c.(*prefixConn)
	if !ok {
		return
	}
	switch state {
	case http.StateNew, http.StateActive:
		pc.unserved.Store(true)
	case http.StateIdle:
		pc.unserved.Store(true)
		pc.lineEnded = false
	}
}

// served: the proxy's handler took r; what is written on its connection
// is the handler's answer.
func served(r *http.Request) {
	if pc, ok := r.Context().Value(handedConnKey{}).(*prefixConn); ok {
		pc.unserved.Store(false)
	}
}

// Write writes to the client; net/http's own refusal is counted first
// (refused).
func (c *prefixConn) Write(p []byte) (int, error) {
	if c.unserved.Load() {
		return c.refused(p)
	}
	return c.Conn.Write(p)
}

// refused writes p, net/http's refusal of a request, once counted by its
// status; a 431 to a request line that alone is over MaxHeaderBytes is
// answered 414 instead.
func (c *prefixConn) refused(p []byte) (int, error) {
	c.unserved.Store(false)
	code := refusalCode(p)
	answer := p
	if code == http.StatusRequestHeaderFieldsTooLarge && !c.lineEnded {
		code = http.StatusRequestURITooLong
		answer = closingAnswer(code, "ferry: the URL is too long: the request line alone is over the "+
			strconv.Itoa(c.s.opts.MaxHeaderBytes)+" bytes a request head may have here (--max-header-bytes)")
	}
	if code != 0 && c.s.opts.Observer != nil {
		c.s.opts.Observer.RequestDone(code, 0)
	}
	if _, err := c.Conn.Write(answer); err != nil {
		return 0, err
	}
	return len(p), nil
}

// refusalCode is the status of the response p begins (as net/http writes
// its refusals: "HTTP/1.1 NNN ..."), 0 when it begins none.
func refusalCode(p []byte) int {
	const proto = "HTTP/1.1 "
	if len(p) < len(proto)+4 || string(p[:len(proto)]) != proto || p[len(proto)+3] != ' ' {
		return 0
	}
	var code int64
	if !parseLength(p[len(proto):len(proto)+3], &code) || code < 100 {
		return 0
	}
	return int(code)
}

// closingAnswer is a whole response of code with the text why, after
// which the connection closes.
func closingAnswer(code int, why string) []byte {
	return []byte("HTTP/1.1 " + strconv.Itoa(code) + " " + http.StatusText(code) +
		"\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\nContent-Length: " +
		strconv.Itoa(len(why)+1) + "\r\n\r\n" + why + "\n")
}
