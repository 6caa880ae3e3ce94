package proxy

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ferry-dev/ferry/agent/pool"
)

// forward is the request path for every request but upgrades: the
// request head is written straight from the client's request onto the
// worker's connection, and the response head's fields go to the client as
// they were parsed. ReverseProxy, which upgrades still take, clones the
// request and its headers, strips hop-by-hop fields from the copies and
// sorts them to write them out; on a fast worker that was a fifth of the
// agent's CPU per request. What it guarantees is the same (doc.go), and
// TestHopByHopHeadersNeverReachTheWorker and the conformance tests hold
// both paths to it.
// held: r's body is in the proxy's buffer whole, so maxRequestTime counts
// from its first byte, not its last (a stuck worker may read none of it).
func (s *Server) forward(rw http.ResponseWriter, r *http.Request, sess *session, held bool) {
	var body *retryBody
	var idle *idleBody // the body streams from the client as the worker takes it
	if hasBody(r) {
		src := r.Body
		if !held {
			// A client that stalls in it must not hold the worker for ever.
			idle = s.idleBound(rw, r.Body)
			defer idle.handlerDone()
			src = idle
		}
		body = &retryBody{ReadCloser: src}
		// The worker's answer may come while the body still streams in (an
		// early 413, say): the server must not hold it back to read the
		// rest of the body first, as it does by default.
		_ = http.NewResponseController(rw).EnableFullDuplex()
	}
	write := func(c *workerConn) error {
		err := s.writeRequest(c.bw, r, body)
		if body != nil && body.err() != nil {
			// The client's body failed (a malformed chunk, the client
			// gone): the worker will not get the rest, and must not keep
			// this exchange, and its slot, waiting for it.
			c.abort()
		}
		return err
	}
	resp, err := withRetries(s.router, r.Context(), sess, body, func() (*http.Response, error) {
		t, ok := sess.worker.Transport.(*workerTransport)
		if !ok {
			return nil, errors.New("ferry: the worker has no proxy transport")
		}
		return t.exchange(r, body != nil, write, sess.replaying, requestBound{
			limit: s.router.MaxRequestTime(), afterBody: body != nil && !held})
	})
	switch {
	case err != nil && isAbandoned(err):
		// The whole body reached the worker, which is still at the
		// request: fail hands its connection on to be awaited
		// (awaitAbandoned), which no other answer here would.
		s.fail(rw, r.Context(), r.Method, r.URL.Path, sess, err)
		return
	case err != nil && idle.timedOut():
		s.stalledBody(rw, r, sess)
		return
	case err != nil && body != nil && body.err() != nil && r.Context().Err() == nil:
		rw.Header().Set("Connection", "close") // what follows on it is not a request
		sess.code = plain(rw, http.StatusBadRequest, "ferry: the request body could not be read: "+body.err().Error())
		return
	case err != nil:
		s.fail(rw, r.Context(), r.Method, r.URL.Path, sess, err)
		return
	}
	sess.outcome = pool.Answered // the head came (fail and answerCut may yet say otherwise)
	defer s.closeAnswer(resp, sess, r.Method, func() string { return r.URL.Path })
	if resp.StatusCode == http.StatusSwitchingProtocols { // this request asked for no upgrade
		s.fail(rw, r.Context(), r.Method, r.URL.Path, sess, errors.New("the worker switched protocols unasked"))
		return
	}
	if err := s.bufferResponse(resp, sess, s.router.ResponseBufferLimit()); err != nil {
		s.fail(rw, r.Context(), r.Method, r.URL.Path, sess, err)
		return
	}
	if err := respond(rw, resp, sess); err != nil {
		var failed *answerError
		worker := errors.As(err, &failed)
		switch {
		case worker && failed.early && idle.timedOut():
			s.stalledBody(rw, r, sess)
			return
		case worker && failed.early: // nothing was written: answered as a worker failing before its head is
			s.fail(rw, r.Context(), r.Method, r.URL.Path, sess, &cutShortError{failed.err})
			return
		case idle.timedOut():
			s.bodyStalled(r, sess, "connection closed")
		case worker && r.Context().Err() == nil:
			s.answerCut(r.Method, r.URL.Path, sess, failed.err)
			// What net/http still holds goes out: the client sees the
			// answer cut short, not an empty reply.
			_ = http.NewResponseController(rw).Flush()
		}
		// The client went away, or the worker did mid-body: the client
		// must see a cut-short response, not a complete one.
		panic(http.ErrAbortHandler)
	}
}

// stalledBody answers a request whose client stopped sending the body
// that streamed to its worker (idleBody) before any of an answer was
// written: the client's failed read cancelled r's context, but it is
// there still, and is told.
func (s *Server) stalledBody(rw http.ResponseWriter, r *http.Request, sess *session) {
	s.bodyStalled(r, sess, "408")
	rw.Header().Set("Connection", "close") // what follows on it is not a request
	sess.code = plain(rw, http.StatusRequestTimeout, "ferry: the request body did not arrive in time")
}

// answerError: a worker's answer failed after its head came (err, the
// read of its body); early: before the body's first byte, when nothing
// of the answer was written to the client.
type answerError struct {
	err   error
	early bool
}

func (e *answerError) Error() string { return e.err.Error() }
func (e *answerError) Unwrap() error { return e.err }

// answerCut logs a worker that failed partway through an answer the
// client was given part of, whose connection is closed: the client sees
// the answer cut short. A worker whose connection ended may be dying (a
// request of death midway through its answer): its exit is waited for,
// as fail waits for it, so that Release finds the process gone with the
// request at it. Given back before its reaping, the dead worker would
// pass for free, be handed the next request (which it refuses), and its
// death be taken as no request's: a crash soon after ready.
func (s *Server) answerCut(method, path string, sess *session, err error) {
	if w := sess.worker; w != nil && peerGone(err) && w.ExitsWithin(reapWait) {
		sess.outcome = pool.Unanswered
		s.router.DiedIn(w, method, path)
	}
	s.opts.Log.Info("Request failed in a worker partway through its answer; the client got it cut short, its connection closed",
		"pid", pidOf(sess), "error", err.Error(), "path", pool.LoggedPath(path), "stoppedBy", stoppedBy(sess))
}

// bodyStalled logs a request ended because its client stopped sending the
// body that streamed to its worker; answer is what the client got.
func (s *Server) bodyStalled(r *http.Request, sess *session, answer string) {
	s.opts.Log.Info("Request body stalled: the client sent none of it for --request-body-timeout; the request was ended and its worker's connection closed",
		"pid", pidOf(sess), "path", pool.LoggedPath(r.URL.Path), "requestBodyTimeout", s.opts.RequestBodyTimeout.String(), "answer", answer)
}

// idleBody is a request body that streams from the client to a worker
// (past requestBufferLimit, or with buffering off): the worker waits for
// it, holding its slot, so each read must bring something within
// RequestBodyTimeout (an idle timeout, as nginx's client_body_timeout,
// not a bound on the whole body). A read that does not fails with
// os.ErrDeadlineExceeded, which ends the request (forward). The deadline
// is the client connection's: once the body was read to its end it is
// lifted, as net/http then reads the connection to notice the client
// going away, and after the handler returned (handlerDone) it is left
// alone, as net/http may be reading the next request by then while the
// body's writer still runs.
type idleBody struct {
	io.ReadCloser
	rc      *http.ResponseController
	timeout time.Duration
	mu      sync.Mutex
	by      time.Time // the deadline of the read under way
	reading bool
	stalled bool // a read failed at its deadline
	done    bool // the handler returned
}

func (s *Server) idleBound(rw http.ResponseWriter, body io.ReadCloser) *idleBody {
	return &idleBody{ReadCloser: body, rc: http.NewResponseController(rw), timeout: s.opts.RequestBodyTimeout}
}

func (b *idleBody) Read(p []byte) (int, error) {
	b.mu.Lock()
	b.by, b.reading = time.Now().Add(b.timeout), true
	b.deadline(b.by)
	b.mu.Unlock()
	n, err := b.ReadCloser.Read(p)
	b.mu.Lock()
	b.reading = false
	switch err {
	case nil:
	case io.EOF:
		b.deadline(time.Time{})
	default: // nothing more is read from this client (spool's reason)
		b.stalled = b.stalled || errors.Is(err, os.ErrDeadlineExceeded)
		b.deadline(time.Now())
	}
	b.mu.Unlock()
	return n, err
}

// deadline sets the client connection's read deadline, unless the handler
// returned. Under b.mu.
func (b *idleBody) deadline(t time.Time) {
	if !b.done {
		_ = b.rc.SetReadDeadline(t)
	}
}

// timedOut reports whether the client sent nothing of the body for the
// timeout: a read failed at its deadline, or one is past it still. The
// second is the handler's view while the body's writer, on its own
// goroutine, has yet to see its read fail: net/http cancels the request's
// context within that read, so the exchange with the worker may fail first.
// False for nil (a body the proxy holds).
func (b *idleBody) timedOut() bool {
	if b == nil {
		return false
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.stalled || (b.reading && !time.Now().Before(b.by))
}

// handlerDone: the connection is net/http's again.
func (b *idleBody) handlerDone() {
	b.mu.Lock()
	b.done = true
	b.mu.Unlock()
}

// writeRequest writes r's head, as the worker should see it, and its body.
func (s *Server) writeRequest(bw *bufio.Writer, r *http.Request, body *retryBody) error {
	h := head{bw}
	h.str(r.Method)
	h.str(" ")
	if uri := r.RequestURI; len(uri) > 0 && uri[0] == '/' {
		h.str(uri)
	} else { // absolute-form or "*": the worker gets origin-form
		h.str(r.URL.RequestURI())
	}
	h.str(" HTTP/1.1\r\n")
	h.field("Host", r.Host)
	conn := r.Header["Connection"]
	for k, vv := range r.Header {
		if hopByHop(k) || forwardedField(k) || (balancerField(k) && !s.opts.TrustForwardedFor) ||
			underscoreForwardingKey(k) || k == "Content-Length" || k == "Expect" || listed(conn, k) {
			continue // Expect: the proxy met it (net/http's 100 Continue as the body is read), as nginx does
		}
		for _, v := range vv {
			h.field(k, v)
		}
	}
	if hasToken(r.Header["Te"], "trailers") {
		h.field("Te", "trailers")
	}
	s.writeForwarded(h, r)
	chunked := body != nil && r.ContentLength < 0
	switch {
	case chunked:
		h.field("Transfer-Encoding", "chunked")
		if declared := keptTrailers(r.Trailer, conn); len(declared) > 0 {
			h.field("Trailer", strings.Join(declared, ", "))
		}
	case body != nil:
		h.length(r.ContentLength)
	case r.Method != http.MethodGet && r.Method != http.MethodHead:
		h.field("Content-Length", "0") // as Go's client says it: many servers want it
	}
	h.str("\r\n")
	if body == nil {
		return bw.Flush()
	}
	return writeBody(bw, r, body, chunked)
}

// writeForwarded sets X-Forwarded-For (the client address, after the
// client's own value only when it is trusted), -Host and -Proto.
func (s *Server) writeForwarded(h head, r *http.Request) {
	if ip, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		h.str("X-Forwarded-For: ")
		if s.opts.TrustForwardedFor {
			for _, prior := range r.Header["X-Forwarded-For"] {
				h.str(prior)
				h.str(", ")
			}
		}
		h.str(ip)
		h.str("\r\n")
	}
	h.field("X-Forwarded-Host", r.Host)
	switch v, ok := s.balancerProto(r.Header); {
	case ok:
		h.field("X-Forwarded-Proto", v)
	case r.TLS != nil:
		h.field("X-Forwarded-Proto", "https")
	default:
		h.field("X-Forwarded-Proto", "http")
	}
}

// trustedProto: a trusted load balancer's X-Forwarded-Proto is passed on
// when it is one of these, so that an app behind a balancer that ends TLS
// knows its requests came over https (and does not redirect them to it
// forever). Anything else, or more than one, gets the proxy's own.
func trustedProto(v []byte) bool {
	return asciiEqualFold(v, "https") || asciiEqualFold(v, "http")
}

// balancerProto is the client's X-Forwarded-Proto when it is trusted and
// one field that trustedProto takes (net/http's paths; the front end's is
// parseHead's).
func (s *Server) balancerProto(h http.Header) (string, bool) {
	v := h["X-Forwarded-Proto"]
	if !s.opts.TrustForwardedFor || len(v) != 1 || !trustedProto([]byte(v[0])) {
		return "", false
	}
	return v[0], true
}

// writeBody streams the body to the worker as it comes: each read from
// the client is written out at once (a worker may answer early, 401 or
// 413, while a slow client uploads), chunked when its length is unknown.
// A small body arrives with its head and leaves with it in one write.
func writeBody(bw *bufio.Writer, r *http.Request, body *retryBody, chunked bool) error {
	buf := buffers.Get().(*[]byte)
	defer buffers.Put(buf)
	var cw io.WriteCloser
	if chunked {
		cw = httputil.NewChunkedWriter(bw)
	}
	left := r.ContentLength
	for {
		p := *buf
		if !chunked && int64(len(p)) > left {
			p = p[:left]
		}
		n, rerr := body.Read(p)
		if n > 0 {
			var err error
			if chunked {
				_, err = cw.Write(p[:n])
			} else {
				_, err = bw.Write(p[:n])
				left -= int64(n)
			}
			if err == nil {
				err = bw.Flush()
			}
			if err != nil {
				return err
			}
		}
		switch {
		case !chunked && left == 0:
			return nil
		case errors.Is(rerr, io.EOF) && !chunked:
			return io.ErrUnexpectedEOF
		case errors.Is(rerr, io.EOF):
			return endChunks(bw, cw, r.Trailer, r.Header["Connection"])
		case rerr != nil:
			return rerr
		}
	}
}

// endChunks writes the last chunk and the trailers (complete once the body
// was read to its end); conn is the head's Connection field.
func endChunks(bw *bufio.Writer, cw io.WriteCloser, trailer http.Header, conn []string) error {
	if err := cw.Close(); err != nil {
		return err
	}
	h := head{bw}
	for k, vv := range trailer {
		if !trailerKept(k, conn) {
			continue
		}
		for _, v := range vv {
			h.field(k, v)
		}
	}
	h.str("\r\n")
	return bw.Flush()
}

// respond copies the worker's response to the client: end-to-end header
// fields, status, body (flushed as it comes when its length is unknown:
// streams, server-sent events), trailers. The head is written once the
// body's first bytes (or its end) came, or headWait passed without them
// (holdHead), so that a worker that fails before them (it exits after its
// head, sends a malformed chunk) leaves nothing written, and is answered
// as one that fails before its head (an *answerError, early). Any other
// error is a body cut short (the client gone, or the worker mid-body: an
// *answerError): the caller must not let the response end as a complete
// one.
func respond(rw http.ResponseWriter, resp *http.Response, sess *session) error {
	buf := buffers.Get().(*[]byte)
	defer buffers.Put(buf)
	h := rw.Header()
	conn := resp.Header["Connection"]
	for k, vv := range resp.Header {
		if !hopByHop(k) && !listed(conn, k) {
			h[k] = vv
		}
	}
	if _, ok := resp.Header["Content-Type"]; !ok {
		h["Content-Type"] = nil // the worker's to say: net/http must not sniff one
	}
	declared := keptTrailers(resp.Trailer, conn)
	if len(declared) > 0 {
		h["Trailer"] = []string{strings.Join(declared, ", ")}
	}
	n, rerr, sent := firstRead(rw, resp, *buf)
	if n == 0 && !errors.Is(rerr, io.EOF) && !sent {
		return &answerError{err: rerr, early: true}
	}
	if !sent {
		rw.WriteHeader(resp.StatusCode)
	}
	sess.code = resp.StatusCode
	if err := copyBody(rw, resp.Body, flushingBody(resp), *buf, n, rerr, resp.ContentLength < 0); err != nil {
		return err
	}
	for k, vv := range resp.Trailer { // complete now the body was read
		if !trailerKept(k, conn) {
			continue
		}
		if !slices.Contains(declared, k) {
			k = http.TrailerPrefix + k
		}
		h[k] = vv
	}
	return nil
}

// firstRead reads the body's first bytes into buf, and reports whether
// the head went out before them, headWait after the read began.
func firstRead(rw http.ResponseWriter, resp *http.Response, buf []byte) (n int, rerr error, sent bool) {
	if holdsHead(resp) {
		held := holdHead(func() {
			rw.WriteHeader(resp.StatusCode)
			_ = http.NewResponseController(rw).Flush()
		})
		defer func() { sent = held.release() }() // also if a read panics: rw is done with then
	}
	n, rerr = resp.Body.Read(buf)
	for n == 0 && rerr == nil {
		n, rerr = resp.Body.Read(buf)
	}
	return n, rerr, sent
}

// copyBody writes the body's first piece (buf[:n], read with rerr) and
// the rest of it, reading into buf; a failed read is an *answerError.
// flush: each piece is flushed as it comes (a body without a length);
// else what net/http holds goes out whenever the worker pauses (wc, the
// connection under body: workerConn.readOrFlush; nil for one in memory).
func copyBody(rw http.ResponseWriter, body io.Reader, wc *workerConn, buf []byte, n int, rerr error, flush bool) error {
	f, _ := rw.(http.Flusher)
	if wc != nil && !flush && f != nil {
		// Flushed on every pause, not held: net/http's buffers are not
		// seen, and what they hold goes out also when the worker fails.
		wc.flushOnPause(f, false)
		defer wc.flushOnPause(nil, false)
	}
	for {
		if n > 0 {
			if _, err := rw.Write(buf[:n]); err != nil {
				return err
			}
			if flush && f != nil {
				f.Flush()
			}
		}
		if rerr == io.EOF {
			return nil
		}
		if rerr != nil {
			return &answerError{err: rerr}
		}
		n, rerr = body.Read(buf)
	}
}

// head writes a message head: a bufio.Writer keeps its first error and
// Flush returns it, so the writes need no check of their own.
type head struct{ w *bufio.Writer }

func (h head) str(s string) { _, _ = h.w.WriteString(s) }

func (h head) field(k, v string) { writeField(h.w, k, v) }

// writeField writes "k: v\r\n" with one call of w where it fits w's free
// buffer, as a head's fields almost always do: four calls per field were
// a tenth of the front end's own instructions per request. Generic, for
// names and values that are raw bytes (spans of a parsed head) as well as
// strings; head.field is its string form.
func writeField[K, V string | []byte](w *bufio.Writer, k K, v V) {
	if w.Available() < len(k)+len(v)+4 {
		_ = w.Flush() // an error stays w's; a field longer than w's buffer costs the appends an allocation
	}
	b := w.AvailableBuffer()
	b = append(b, k...)
	b = append(b, ':', ' ')
	b = append(b, v...)
	b = append(b, '\r', '\n')
	_, _ = w.Write(b)
}

func (h head) length(n int64) {
	h.str("Content-Length: ")
	_, _ = h.w.Write(strconv.AppendInt(h.w.AvailableBuffer(), n, 10))
	h.str("\r\n")
}

// status writes a response's status line, the reason as net/http says it.
func (h head) status(code int) {
	h.str("HTTP/1.1 ")
	_, _ = h.w.Write(strconv.AppendInt(h.w.AvailableBuffer(), int64(code), 10))
	if text := http.StatusText(code); text != "" {
		h.str(" ")
		h.str(text)
	} else {
		h.str(" status code ")
		_, _ = h.w.Write(strconv.AppendInt(h.w.AvailableBuffer(), int64(code), 10))
	}
	h.str("\r\n")
}

// end ends a response head, closing the connection after it unless keep.
func (h head) end(keep bool) {
	if !keep {
		h.str("Connection: close\r\n")
	}
	h.str("\r\n")
}

// hopByHop: the fields RFC 9110 §7.6.1 says are for one connection only
// (Te is written again when it asks for trailers).
func hopByHop(k string) bool {
	switch k {
	case "Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate", "Proxy-Authorization",
		"Te", "Trailer", "Transfer-Encoding", "Upgrade":
		return true
	}
	return false
}

// forwardedField: what the proxy sets itself; the client's values are
// dropped (X-Forwarded-For and -Proto are kept only when trusted:
// writeForwarded).
func forwardedField(k string) bool {
	switch k {
	case "Forwarded", "X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto":
		return true
	}
	return false
}

// balancerField: a field in which a proxy in front tells the app about
// the client or the address it used (its IP, its scheme, port or path
// prefix), which frameworks take on trust (Rack's scheme and port,
// Werkzeug's ProxyFix, Django's USE_X_FORWARDED_PORT, X-Real-IP in many
// apps). From a client they are lies the app cannot tell from a
// balancer's word: passed on only with TrustForwardedFor (as the front
// end does: fieldBalancer, TestFieldKindOf).
func balancerField(k string) bool {
	switch k {
	case "X-Real-Ip", "X-Forwarded-Ssl", "X-Forwarded-Port", "X-Forwarded-Prefix", "X-Forwarded-Scheme":
		return true
	}
	return false
}

// underscoreForwardingKey is underscoreForwarding for a header key.
func underscoreForwardingKey(k string) bool {
	return strings.IndexByte(k, '_') >= 0 && underscoreForwarding([]byte(k))
}

// trailerKept: a trailer field the other end may get, of a request (its
// worker) or a response (its client); conn is the message head's
// Connection field, whose fields are the connection's in a trailer too.
// RFC 9110 (6.5.1) keeps out of trailers what must be known before the
// content: its framing, routing, request modifiers, authentication,
// response control and content handling. Go's server and client take any
// field in a trailer, and a peer that merges trailers into the head (as
// some servers, frameworks and caches do) would take such a field for
// the head's: a second Content-Length or Host, a Transfer-Encoding, an
// X-Forwarded-For the proxy drops from the head, a Range or If-None-Match
// applied to a request the worker already answered, a Set-Cookie or
// Cache-Control the app never meant its answer to carry. None of these
// is passed on, nor anything the head's rules drop.
func trailerKept(k string, conn []string) bool {
	switch k {
	case "Content-Length", "Content-Type", "Content-Encoding", "Content-Range", "Content-Language", // framing, content handling
		"Content-Location", "Content-Disposition",
		"Host", "Max-Forwards", "Location", // routing
		"Range", "If-Range", "If-Match", "If-None-Match", "If-Modified-Since", "If-Unmodified-Since", // request modifiers
		"Expect", "Accept", "Accept-Charset", "Accept-Encoding", "Accept-Language",
		"Authorization", "Www-Authenticate", "Cookie", "Set-Cookie", // authentication, state
		"Cache-Control", "Pragma", "Expires", "Age", "Date", "Vary", "Etag", "Last-Modified", // response control
		"Retry-After", "Warning", "Allow", "Accept-Ranges":
		return false
	}
	return !hopByHop(k) && !listed(conn, k) && !forwardedField(k) && !balancerField(k) && !underscoreForwardingKey(k)
}

// keptTrailers is the names of h's fields trailerKept keeps.
func keptTrailers(h http.Header, conn []string) []string {
	var ks []string
	for k := range h {
		if trailerKept(k, conn) {
			ks = append(ks, k)
		}
	}
	return ks
}

// listed reports whether the Connection field values name k.
func listed(conn []string, k string) bool {
	return len(conn) > 0 && hasToken(conn, k)
}

// hasToken reports whether a comma-separated field value names tok.
func hasToken(values []string, tok string) bool {
	for _, v := range values {
		for v != "" {
			var t string
			t, v, _ = strings.Cut(v, ",")
			if strings.EqualFold(strings.TrimSpace(t), tok) {
				return true
			}
		}
	}
	return false
}

// hasBody: r has a body, of a declared length or chunked.
func hasBody(r *http.Request) bool {
	return r.Body != nil && r.Body != http.NoBody && r.ContentLength != 0
}

// isUpgrade: the client asks to switch protocols (WebSocket, say).
func isUpgrade(r *http.Request) bool {
	return len(r.Header["Upgrade"]) > 0 && hasToken(r.Header["Connection"], "upgrade")
}
