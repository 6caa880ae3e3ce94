package proxy

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"slices"
	"strconv"
	"strings"
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
func (s *Server) forward(rw http.ResponseWriter, r *http.Request, sess *session) {
	var body *retryBody
	if r.Body != nil && r.Body != http.NoBody && r.ContentLength != 0 {
		body = &retryBody{ReadCloser: r.Body}
	}
	write := func(c *workerConn) error { return s.writeRequest(c.bw, r, body) }
	resp, err := withRetries(s.router, r.Context(), sess, body, func() (*http.Response, error) {
		t, ok := sess.worker.Transport.(*workerTransport)
		if !ok {
			return nil, errors.New("ferry: the worker has no proxy transport")
		}
		return t.exchange(r, body != nil, write)
	})
	if err != nil {
		s.fail(rw, r, sess, err)
		return
	}
	defer resp.Body.Close()
	respond(rw, resp, sess)
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
		if hopByHop(k) || forwardedField(k) || k == "Content-Length" || listed(conn, k) {
			continue
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
		if len(r.Trailer) > 0 {
			h.field("Trailer", strings.Join(keys(r.Trailer), ", "))
		}
	case body != nil:
		h.str("Content-Length: ")
		_, _ = bw.Write(strconv.AppendInt(bw.AvailableBuffer(), r.ContentLength, 10))
		h.str("\r\n")
	case r.Method != http.MethodGet && r.Method != http.MethodHead:
		h.field("Content-Length", "0") // as Go's client says it: many servers want it
	}
	h.str("\r\n")
	if body == nil {
		return bw.Flush()
	}
	if err := writeBody(bw, r, body, chunked); err != nil {
		return err
	}
	return bw.Flush()
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
	if r.TLS != nil {
		h.field("X-Forwarded-Proto", "https")
	} else {
		h.field("X-Forwarded-Proto", "http")
	}
}

func writeBody(bw *bufio.Writer, r *http.Request, body *retryBody, chunked bool) error {
	buf := buffers.Get().(*[]byte)
	defer buffers.Put(buf)
	if !chunked {
		n, err := io.CopyBuffer(bw, io.LimitReader(body, r.ContentLength), *buf)
		if err == nil && n < r.ContentLength {
			err = io.ErrUnexpectedEOF
		}
		return err
	}
	cw := httputil.NewChunkedWriter(bw)
	if _, err := io.CopyBuffer(cw, body, *buf); err != nil {
		return err
	}
	if err := cw.Close(); err != nil { // the last chunk; trailers follow
		return err
	}
	h := head{bw}
	for k, vv := range r.Trailer { // complete once the body was read to its end
		for _, v := range vv {
			h.field(k, v)
		}
	}
	h.str("\r\n")
	return nil // Flush says whether it all went out
}

// respond copies the worker's response to the client: end-to-end header
// fields, status, body (flushed as it comes when its length is unknown:
// streams, server-sent events), trailers.
func respond(rw http.ResponseWriter, resp *http.Response, sess *session) {
	h := rw.Header()
	conn := resp.Header["Connection"]
	for k, vv := range resp.Header {
		if !hopByHop(k) && !listed(conn, k) {
			h[k] = vv
		}
	}
	var declared []string
	if len(resp.Trailer) > 0 {
		declared = keys(resp.Trailer)
		h["Trailer"] = []string{strings.Join(declared, ", ")}
	}
	rw.WriteHeader(resp.StatusCode)
	sess.code = resp.StatusCode
	if err := copyBody(rw, resp.Body, resp.ContentLength < 0); err != nil {
		// The client went away, or the worker did mid-body: the client
		// must see a cut-short response, not a complete one.
		panic(http.ErrAbortHandler)
	}
	for k, vv := range resp.Trailer { // complete now the body was read
		if !slices.Contains(declared, k) {
			k = http.TrailerPrefix + k
		}
		h[k] = vv
	}
}

func copyBody(rw http.ResponseWriter, body io.Reader, flush bool) error {
	buf := buffers.Get().(*[]byte)
	defer buffers.Put(buf)
	f, _ := rw.(http.Flusher)
	for {
		n, rerr := body.Read(*buf)
		if n > 0 {
			if _, err := rw.Write((*buf)[:n]); err != nil {
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
			return rerr
		}
	}
}

// head writes a message head: a bufio.Writer keeps its first error and
// Flush returns it, so the writes need no check of their own.
type head struct{ w *bufio.Writer }

func (h head) str(s string) { _, _ = h.w.WriteString(s) }

func (h head) field(k, v string) {
	h.str(k)
	h.str(": ")
	h.str(v)
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
// dropped (X-Forwarded-For is kept only when trusted: writeForwarded).
func forwardedField(k string) bool {
	switch k {
	case "Forwarded", "X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto":
		return true
	}
	return false
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

// isUpgrade: the client asks to switch protocols (WebSocket, say).
func isUpgrade(r *http.Request) bool {
	return len(r.Header["Upgrade"]) > 0 && hasToken(r.Header["Connection"], "upgrade")
}

func keys(h http.Header) []string {
	ks := make([]string, 0, len(h))
	for k := range h {
		ks = append(ks, k)
	}
	return ks
}
