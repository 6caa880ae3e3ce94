package proxy_test

import (
	"bufio"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ferry-dev/ferry/agent/proxy"
)

// seenRequest is a request as the seen app (testdata/seen) read it.
type seenRequest struct {
	Line     string      `json:"line"`
	Fields   [][2]string `json:"fields"`
	Body     string      `json:"body"`
	Trailers [][2]string `json:"trailers"`
}

// field is the values of the request's fields named name, in order.
func (r seenRequest) field(name string) []string {
	var vs []string
	for _, f := range r.Fields {
		if strings.EqualFold(f[0], name) {
			vs = append(vs, f[1])
		}
	}
	return vs
}

// requestsKept is what the seen app was sent since the last call.
func requestsKept(t *testing.T, url string) []seenRequest {
	t.Helper()
	client := &http.Client{Timeout: 30 * time.Second}
	resp, err := client.Get(url + "/seen")
	if err != nil {
		t.Fatal(err)
	}
	var got []seenRequest
	if err := json.Unmarshal(readBody(t, resp), &got); err != nil {
		t.Fatal(err)
	}
	return got
}

// statuses reads the responses in out, in order, as a client would.
func statuses(out string) []int {
	var codes []int
	br := bufio.NewReader(strings.NewReader(out))
	for {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			return codes
		}
		codes = append(codes, resp.StatusCode)
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
}

// TestParserDifferential sends malformed and ambiguous requests over TCP
// and checks both ends: what the client is answered (and whether its
// connection carries the request after it, "GET /last", which closes it),
// and what the worker is sent. The worker never gets two requests where
// the client meant one, nor one the client's bytes did not make, nor a
// field the proxy drops; a request whose framing is in doubt is refused
// with its connection closed.
//
// Where RFC 9112 leaves a choice, the proxy makes Go's server's (whose
// path serves every head the front end does not take): two equal
// Content-Lengths are one, a list of them is refused; an obs-fold and a
// bare LF ending a line are taken (the fold read as a space, but one
// that begins "Transfer-Encoding:" closes the connection), a bare CR
// is refused; a chunk size with whitespace after it is taken (the body
// reaches the worker framed anew, so no reader after the proxy sees it);
// "HTTP/1.2" is read as 1.1; "OPTIONS *" is answered 200 by the proxy
// itself, as by Go's server, and closes its connection after a chunked one, or
// an HTTP/1.0 one with a Transfer-Encoding, as any request does. It refuses what nginx refuses beyond that: an HTTP/1.0 request
// with a Transfer-Encoding, and a target that is neither a path nor an
// absolute URL (asterisk-form but for OPTIONS, authority-form but for
// CONNECT). Trailers pass, but none that RFC 9110 (6.5.1) keeps out of
// them.
func TestParserDifferential(t *testing.T) {
	tmpl := commandApp("seen")
	tmpl.App.Concurrency = 1
	e := start(t, tmpl, proxy.Options{})
	addr := strings.TrimPrefix(e.URL, "http://")
	const last = "GET /last HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
	const post = "POST /a HTTP/1.1\r\nHost: x\r\n"
	const chunked = post + "Transfer-Encoding: chunked\r\n"
	const smuggled = "GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n"
	pathOnly := []string{"POST /a HTTP/1.1", "GET /last HTTP/1.1"}
	getOnly := []string{"GET /a HTTP/1.1", "GET /last HTTP/1.1"}
	none := []string(nil)
	refused := func(code int) []int { return []int{code} }
	both := []int{200, 200}
	for _, tc := range []struct {
		name  string
		raw   string
		codes []int    // the answers, in order
		lines []string // the request lines the worker got, in order
		check func(t *testing.T, seen []seenRequest)
	}{
		// Content-Length.
		{"two equal lengths", post + "Content-Length: 5\r\nContent-Length: 5\r\n\r\nhello" + last, both, pathOnly, bodyIs("hello")},
		{"two lengths that differ", post + "Content-Length: 5\r\nContent-Length: 6\r\n\r\nhello!" + last, refused(400), none, nil},
		{"a list of lengths", post + "Content-Length: 5, 5\r\n\r\nhello" + last, refused(400), none, nil},
		{"length +5", post + "Content-Length: +5\r\n\r\nhello" + last, refused(400), none, nil},
		{"length -1", post + "Content-Length: -1\r\n\r\nhello" + last, refused(400), none, nil},
		{"length with spaces", post + "Content-Length:  5 \r\n\r\nhello" + last, both, pathOnly, bodyIs("hello")},
		{"length 0x5", post + "Content-Length: 0x5\r\n\r\nhello" + last, refused(400), none, nil},
		{"length past int64", post + "Content-Length: 99999999999999999999\r\n\r\nhello" + last, refused(400), none, nil},
		{"empty length", post + "Content-Length: \r\n\r\nhello" + last, refused(400), none, nil},
		{"length 0 on the front end", "GET /a HTTP/1.1\r\nHost: x\r\nContent-Length: 00\r\n\r\n" + last, both, getOnly, nil},
		{"a GET with a body", "GET /a HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello" + last, both, getOnly, bodyIs("hello")},
		{"no length", post + "\r\n" + last, both, pathOnly, bodyIs("")},
		// Transfer-Encoding.
		{"chunked, identity", post + "Transfer-Encoding: chunked, identity\r\n\r\n5\r\nhello\r\n0\r\n\r\n" + last, refused(501), none, nil},
		{"gzip, chunked", post + "Transfer-Encoding: gzip, chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n" + last, refused(501), none, nil},
		{"chunked twice", chunked + "Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n" + last, refused(501), none, nil},
		{"chunked, chunked", post + "Transfer-Encoding: chunked, chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n" + last, refused(501), none, nil},
		{"Chunked", post + "Transfer-Encoding: Chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n" + last, []int{200}, []string{"POST /a HTTP/1.1"}, bodyIs("hello")},
		{"xchunked", post + "Transfer-Encoding: xchunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n" + last, refused(501), none, nil},
		{"identity", post + "Transfer-Encoding: identity\r\n\r\nhello" + last, refused(501), none, nil},
		{"an HTTP/1.0 request chunked", "POST /a HTTP/1.0\r\nHost: x\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n" +
			"5\r\nhello\r\n0\r\n\r\n" + last, refused(400), none, nil},
		{"an HTTP/1.0 request chunked, after a handoff", post + "Content-Length: 5\r\n\r\nhello" +
			"POST /b HTTP/1.0\r\nHost: x\r\nConnection: keep-alive\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n" +
			"25\r\n" + smuggled + "\r\n0\r\n\r\n" + last, both, []string{"POST /a HTTP/1.1", "POST /b HTTP/1.1"}, nil},
		{"an HTTP/1.0 request chunked without a length, after a handoff", post + "Content-Length: 5\r\n\r\nhello" +
			"POST /b HTTP/1.0\r\nHost: x\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n" +
			"25\r\n" + smuggled + "\r\n0\r\n\r\n" + last, both, []string{"POST /a HTTP/1.1", "POST /b HTTP/1.1"}, nil},
		{"an HTTP/1.0 request chunked, its head past the front end's buffer", "POST /a HTTP/1.0\r\nHost: x\r\nConnection: keep-alive\r\n" +
			"X-Pad: " + strings.Repeat("p", 9000) + "\r\nTransfer-Encoding: chunked\r\n\r\n" +
			"25\r\n" + smuggled + "\r\n0\r\n\r\n" + last, []int{200}, []string{"POST /a HTTP/1.1"}, bodyIs("")},
		// HTTP/1.0 keep-alive: kept but after a Transfer-Encoding.
		{"an HTTP/1.0 GET kept alive", "GET /a HTTP/1.0\r\nHost: x\r\nConnection: keep-alive\r\n\r\n" + last, both, getOnly, nil},
		{"an HTTP/1.0 POST kept alive, its length declared", "POST /a HTTP/1.0\r\nHost: x\r\nConnection: keep-alive\r\n" +
			"Content-Length: 5\r\n\r\nhello" + last, both, pathOnly, bodyIs("hello")},
		{"an HTTP/1.0 GET kept alive, after a handoff", post + "Content-Length: 5\r\n\r\nhello" +
			"GET /b HTTP/1.0\r\nHost: x\r\nConnection: keep-alive\r\n\r\n" + last, []int{200, 200, 200},
			[]string{"POST /a HTTP/1.1", "GET /b HTTP/1.1", "GET /last HTTP/1.1"}, nil},
		{"an HTTP/1.0 GET kept alive, its head past the front end's buffer", "GET /a HTTP/1.0\r\nHost: x\r\nConnection: keep-alive\r\n" +
			"X-Pad: " + strings.Repeat("p", 9000) + "\r\n\r\n" + last, both, getOnly, nil},
		{"an HTTP/1.0 GET kept alive, bare LF line ends", "GET /a HTTP/1.0\nHost: x\nConnection: keep-alive\n\n" + last, both, getOnly, nil},
		{"an HTTP/1.0 request chunked in lower case, after a handoff", post + "Content-Length: 5\r\n\r\nhello" +
			"POST /b HTTP/1.0\r\nHost: x\r\nConnection: keep-alive\r\ntransfer-encoding: chunked\r\n\r\n" +
			"25\r\n" + smuggled + "\r\n0\r\n\r\n" + last, both, []string{"POST /a HTTP/1.1", "POST /b HTTP/1.1"}, nil},
		{"an HTTP/1.0 request chunked, bare LF line ends, after a handoff", post + "Content-Length: 5\r\n\r\nhello" +
			"POST /b HTTP/1.0\nHost: x\nConnection: keep-alive\nTRANSFER-ENCODING: chunked\n\n" +
			"25\r\n" + smuggled + "\r\n0\r\n\r\n" + last, both, []string{"POST /a HTTP/1.1", "POST /b HTTP/1.1"}, nil},
		{"an HTTP/1.0 request chunked, its head past the front end's buffer, after a kept HTTP/1.0 one",
			"GET /a HTTP/1.0\r\nHost: x\r\nConnection: keep-alive\r\n\r\n" +
				"POST /b HTTP/1.0\r\nHost: x\r\nConnection: keep-alive\r\nX-Pad: " + strings.Repeat("p", 9000) +
				"\r\nTransfer-Encoding: chunked\r\n\r\n25\r\n" + smuggled + "\r\n0\r\n\r\n" + last,
			both, []string{"GET /a HTTP/1.1", "POST /b HTTP/1.1"}, nil},
		{"an HTTP/1.0 request chunked in an obs-fold, after a handoff", post + "Content-Length: 5\r\n\r\nhello" +
			"POST /b HTTP/1.0\r\nHost: x\r\nConnection: keep-alive\r\nContent-Length: 4\r\nX-A: a\r\n Transfer-Encoding: chunked\r\n\r\n" +
			"25\r\n" + smuggled + "\r\n0\r\n\r\n" + last, []int{200}, []string{"POST /a HTTP/1.1"}, nil}, // read with the first, which closes
		{"an HTTP/1.0 request chunked in a tab fold, its head past the front end's buffer", "POST /a HTTP/1.0\r\nHost: x\r\nConnection: keep-alive\r\n" +
			"Content-Length: 4\r\nX-Pad: " + strings.Repeat("p", 9000) + "\r\n\t \tTRANSFER-ENCODING:chunked\r\n\r\n" +
			"25\r\n" + smuggled + "\r\n0\r\n\r\n" + last, []int{200}, []string{"POST /a HTTP/1.1"}, bodyIs("25\r\n")},
		{"a request chunked in an obs-fold beside a length", post + "Content-Length: 4\r\nX-A: a\r\n Transfer-Encoding: chunked\r\n\r\n" +
			"25\r\n" + smuggled + "\r\n0\r\n\r\n" + last, []int{200}, []string{"POST /a HTTP/1.1"}, bodyIs("25\r\n")},
		{"a request chunked in an obs-fold beside a length, after a handoff", post + "Content-Length: 5\r\n\r\nhello" +
			"POST /b HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nX-A: a\r\n\tTransfer-Encoding: chunked\r\n\r\n" +
			"25\r\n" + smuggled + "\r\n0\r\n\r\n" + last, []int{200}, []string{"POST /a HTTP/1.1"}, nil}, // read with the first, which closes
		{"an HTTP/1.0 request chunked right after its request line, after a handoff", post + "Content-Length: 5\r\n\r\nhello" +
			"POST /b HTTP/1.0\r\nTransfer-Encoding: chunked\r\nHost: x\r\nConnection: keep-alive\r\n\r\n" +
			"25\r\n" + smuggled + "\r\n0\r\n\r\n" + last, both, []string{"POST /a HTTP/1.1", "POST /b HTTP/1.1"}, nil},
		{"an HTTP/1.0 request chunked, pipelined before another", "POST /a HTTP/1.0\r\nHost: x\r\nConnection: keep-alive\r\n" +
			"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /b HTTP/1.0\r\nHost: x\r\nConnection: keep-alive\r\n\r\n" + last,
			refused(400), none, nil},
		{"an HTTP/1.0 request asking for keep-alive and close", "GET /a HTTP/1.0\r\nHost: x\r\nConnection: keep-alive, close\r\n\r\n" + last,
			[]int{200}, []string{"GET /a HTTP/1.1"}, nil},
		{"HTTP/1.1 and 1.0 requests mixed, after a handoff", post + "Content-Length: 5\r\n\r\nhello" +
			"GET /b HTTP/1.0\r\nHost: x\r\nConnection: keep-alive\r\n\r\nPOST /c HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n" +
			"GET /d HTTP/1.0\r\nHost: x\r\nConnection: keep-alive\r\n\r\n" + last, []int{200, 200, 200, 200, 200},
			[]string{"POST /a HTTP/1.1", "GET /b HTTP/1.1", "POST /c HTTP/1.1", "GET /d HTTP/1.1", "GET /last HTTP/1.1"}, nil},
		{"an HTTP/1.0 request after a chunked HTTP/1.1 one", chunked + "\r\n0\r\n\r\n" +
			"GET /b HTTP/1.0\r\nHost: x\r\nConnection: keep-alive\r\n\r\n" + last, []int{200}, []string{"POST /a HTTP/1.1"}, nil},
		{"CR CR LF before a request", "\r\r\nGET /a HTTP/1.1\r\nHost: x\r\n\r\n" + last, refused(400), none, nil},
		{"OPTIONS * chunked", "OPTIONS * HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + last,
			[]int{200}, none, nil},
		{"OPTIONS * in HTTP/1.0 chunked, after a handoff", post + "Content-Length: 5\r\n\r\nhello" +
			"OPTIONS * HTTP/1.0\r\nHost: x\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n" +
			"25\r\n" + smuggled + "\r\n0\r\n\r\n" + last, both, []string{"POST /a HTTP/1.1"}, nil},
		// Empty lines before a request line (RFC 9112, 2.2): a few are skipped.
		{"an empty line after a POST body", post + "Content-Length: 5\r\n\r\nhello\r\n" + last, both, pathOnly, bodyIs("hello")},
		{"an empty line after a POST without a body", post + "Content-Length: 0\r\n\r\n\r\n" + last, both, pathOnly, bodyIs("")},
		{"an empty line between pipelined requests", "GET /a HTTP/1.1\r\nHost: x\r\n\r\n\r\n" + last, both, getOnly, nil},
		{"empty lines before the first request", "\r\n\n\r\n\nGET /a HTTP/1.1\r\nHost: x\r\n\r\n" + last, both, getOnly, nil},
		{"an empty line before an HTTP/1.0 request", "\r\nGET /a HTTP/1.0\r\nHost: x\r\nConnection: keep-alive\r\n\r\n" + last,
			both, getOnly, nil},
		{"an empty line before a chunked HTTP/1.0 request", "\r\nPOST /a HTTP/1.0\r\nHost: x\r\nConnection: keep-alive\r\n" +
			"Transfer-Encoding: chunked\r\n\r\n25\r\n" + smuggled + "\r\n0\r\n\r\n" + last, refused(400), none, nil},
		{"an empty line before a request with two framings", "\r\n" + chunked + "Content-Length: 4\r\n\r\n25\r\n" + smuggled +
			"\r\n0\r\n\r\n" + last, refused(400), none, nil},
		{"five empty lines", strings.Repeat("\r\n", 5) + "GET /a HTTP/1.1\r\nHost: x\r\n\r\n" + last, refused(400), none, nil},
		{"a flood of empty lines", strings.Repeat("\r\n", 10000) + "GET /a HTTP/1.1\r\nHost: x\r\n\r\n" + last, refused(400), none, nil},
		{"a bare CR before a request", "\rGET /a HTTP/1.1\r\nHost: x\r\n\r\n" + last, refused(400), none, nil},
		{"an empty line after a GET with a body", "GET /a HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello\r\n" + last,
			[]int{200, 400}, []string{"GET /a HTTP/1.1"}, bodyIs("hello")}, // net/http's: it skips them after a POST only
		// Chunks.
		{"chunk size past int64", chunked + "\r\n10000000000000005\r\nhello\r\n0\r\n\r\n" + last, refused(400), none, nil},
		{"space before a chunk size", chunked + "\r\n 5\r\nhello\r\n0\r\n\r\n" + last, refused(400), none, nil},
		{"space after a chunk size", chunked + "\r\n5 \r\nhello\r\n0\r\n\r\n" + last, []int{200}, []string{"POST /a HTTP/1.1"}, bodyIs("hello")},
		{"chunk size 0x5", chunked + "\r\n0x5\r\nhello\r\n0\r\n\r\n" + last, refused(400), none, nil},
		{"chunk extension", chunked + "\r\n5;a=b\r\nhello\r\n0\r\n\r\n" + last, []int{200}, []string{"POST /a HTTP/1.1"}, bodyIs("hello")},
		{"chunk extension ending in a bare LF", chunked + "\r\n5;a=b\nhello\r\n0\r\n\r\n" + last, refused(400), none, nil},
		{"chunk extension quoting a CRLF", chunked + "\r\n5;a=\"x\r\ny\"\r\nhello\r\n0\r\n\r\n" + last, refused(400), none, nil},
		{"no CRLF after chunk data", chunked + "\r\n5\r\nhelloXX0\r\n\r\n" + last, refused(400), none, nil},
		{"a bare LF after chunk data", chunked + "\r\n5\r\nhello\n0\r\n\r\n" + last, refused(400), none, nil},
		{"chunk size lines ending in bare LFs", chunked + "\r\n5\nhello\r\n0\n\n" + last, refused(400), none, nil},
		// Trailers.
		{"trailers naming framing and routing", chunked + "Trailer: X-T\r\n\r\n5\r\nhello\r\n0\r\nContent-Length: 50\r\n" +
			"Transfer-Encoding: chunked\r\nHost: evil\r\nX-Forwarded-For: 6.6.6.6\r\nX-T: v\r\n\r\n" + last,
			[]int{200}, []string{"POST /a HTTP/1.1"}, onlyTrailer("X-T")},
		{"trailers naming request modifiers, credentials and a field Connection names", chunked + "Connection: X-Hop\r\n" +
			"Trailer: X-T\r\n\r\n5\r\nhello\r\n0\r\nRange: bytes=0-1\r\nIf-None-Match: *\r\nIf-Modified-Since: x\r\n" +
			"Cache-Control: no-cache\r\nAccept: x/y\r\nCookie: a=b\r\nX-Hop: 1\r\nX-T: v\r\n\r\n" + last,
			[]int{200}, []string{"POST /a HTTP/1.1"}, onlyTrailer("X-T")},
		{"a declared Content-Length trailer", chunked + "Trailer: Content-Length\r\n\r\n5\r\nhello\r\n0\r\nContent-Length: 50\r\n\r\n" + last,
			refused(400), none, nil},
		// The head's lines.
		{"bare LF line ends", "GET /a HTTP/1.1\nHost: x\n\n" + last, both, getOnly, nil},
		{"a bare CR", "GET /a HTTP/1.1\rHost: x\r\n\r\n" + last, refused(400), none, nil},
		{"a bare CR in a value", "GET /a HTTP/1.1\r\nHost: x\r\nX-A: a\rb\r\n\r\n" + last, refused(400), none, nil},
		{"obs-fold", "GET /a HTTP/1.1\r\nHost: x\r\nX-A: a\r\n b\r\n\r\n" + last, both, getOnly, fieldIs("X-A", "a b")},
		{"obs-fold with a tab", "GET /a HTTP/1.1\r\nHost: x\r\nX-A: a\r\n\tb\r\n\r\n" + last, both, getOnly, fieldIs("X-A", "a b")},
		{"obs-fold after Content-Length", post + "Content-Length: 5\r\n 6\r\n\r\nhello!" + last, refused(400), none, nil},
		{"space before the colon", "GET /a HTTP/1.1\r\nHost: x\r\nX-A : a\r\n\r\n" + last, refused(400), none, nil},
		{"space before the colon of Content-Length", post + "Content-Length : 5\r\n\r\nhello" + last, refused(400), none, nil},
		{"NUL in a value", "GET /a HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\n\r\n" + last, refused(400), none, nil},
		{"a control character in a value", "GET /a HTTP/1.1\r\nHost: x\r\nX-A: a\x01b\r\n\r\n" + last, refused(400), none, nil},
		{"NUL in the target", "GET /a\x00b HTTP/1.1\r\nHost: x\r\n\r\n" + last, refused(400), none, nil},
		{"a control character in the target", "GET /a\x01b HTTP/1.1\r\nHost: x\r\n\r\n" + last, refused(400), none, nil},
		{"an empty field name", "GET /a HTTP/1.1\r\nHost: x\r\n: a\r\n\r\n" + last, refused(400), none, nil},
		// The target.
		{"absolute-form naming another host", "GET http://other.example/a HTTP/1.1\r\nHost: x\r\n\r\n" + last, both, getOnly,
			fieldIs("Host", "other.example")},
		{"asterisk-form with GET", "GET * HTTP/1.1\r\nHost: x\r\n\r\n" + last, []int{400, 200}, []string{"GET /last HTTP/1.1"}, nil},
		{"asterisk-form with OPTIONS", "OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n" + last, both, []string{"GET /last HTTP/1.1"}, nil},
		{"asterisk-form with GET, chunked", "GET * HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + last,
			refused(400), none, nil},
		{"authority-form with GET", "GET x:80 HTTP/1.1\r\nHost: x\r\n\r\n" + last, []int{400, 200}, []string{"GET /last HTTP/1.1"}, nil},
		// Host.
		{"no Host in HTTP/1.1", "GET /a HTTP/1.1\r\n\r\n" + last, refused(400), none, nil},
		{"two Hosts", "GET /a HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n" + last, refused(400), none, nil},
		// The request line.
		{"h2c's preface", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + last, refused(505), none, nil},
		{"HTTP/0.9", "GET /\r\n\r\n" + last, refused(400), none, nil},
		{"HTTP/1.2", "GET /a HTTP/1.2\r\nHost: x\r\n\r\n" + last, both, getOnly, nil},
		{"HTTP/2.0", "GET /a HTTP/2.0\r\nHost: x\r\n\r\n" + last, refused(505), none, nil},
		{"a lower-case version", "GET /a http/1.1\r\nHost: x\r\n\r\n" + last, refused(400), none, nil},
		{"a lower-case method", "get /a HTTP/1.1\r\nHost: x\r\n\r\n" + last, both, []string{"get /a HTTP/1.1", "GET /last HTTP/1.1"}, nil},
		{"two spaces", "GET  /a HTTP/1.1\r\nHost: x\r\n\r\n" + last, refused(400), none, nil},
		{"a long method", strings.Repeat("G", 10000) + " /a HTTP/1.1\r\nHost: x\r\n\r\n" + last,
			[]int{501, 200}, []string{"GET /last HTTP/1.1"}, nil}, // the worker's 501: an unknown method, if a long one
	} {
		t.Run(tc.name, func(t *testing.T) {
			_ = requestsKept(t, e.URL)
			out, closed := rawExchangeClosed(t, addr, tc.raw, 30*time.Second)
			seen := requestsKept(t, e.URL)
			var lines []string
			for _, r := range seen {
				lines = append(lines, r.Line)
			}
			if codes := statuses(out); !slices.Equal(codes, tc.codes) || !closed {
				t.Errorf("answered %v (closed %t), want %v and the connection closed: %q", codes, closed, tc.codes, out)
			}
			if !slices.Equal(lines, tc.lines) {
				t.Errorf("the worker got %q, want %q", lines, tc.lines)
			}
			for _, r := range seen {
				if len(r.field("Host")) != 1 || len(r.field("Content-Length"))+len(r.field("Transfer-Encoding")) > 1 {
					t.Errorf("the worker got %q with fields %q", r.Line, r.Fields)
				}
			}
			if tc.check != nil && len(seen) > 0 {
				tc.check(t, seen)
			}
		})
	}
}

func bodyIs(want string) func(*testing.T, []seenRequest) {
	return func(t *testing.T, seen []seenRequest) {
		if seen[0].Body != want {
			t.Errorf("the worker got the body %q, want %q", seen[0].Body, want)
		}
	}
}

func fieldIs(name, want string) func(*testing.T, []seenRequest) {
	return func(t *testing.T, seen []seenRequest) {
		if got := seen[0].field(name); len(got) != 1 || got[0] != want {
			t.Errorf("the worker got %s %q, want %q", name, got, want)
		}
	}
}

// onlyTrailer: the worker got the body whole, and of its trailers only
// name, declared in its head as the only one.
func onlyTrailer(name string) func(*testing.T, []seenRequest) {
	return func(t *testing.T, seen []seenRequest) {
		r := seen[0]
		if r.Body != "hello" || len(r.Trailers) != 1 || r.Trailers[0][0] != name || !slices.Equal(r.field("Trailer"), []string{name}) {
			t.Errorf("the worker got the body %q, trailers %q and fields %q; want hello and the trailer %s alone",
				r.Body, r.Trailers, r.Fields, name)
		}
	}
}

// TestHTTP10KeepAlive: an HTTP/1.0 client that asks for keep-alive (ab -k)
// keeps its connection, request after request, with a body of a declared
// length or none, until a request whose head carries a Transfer-Encoding
// (which net/http drops from an HTTP/1.0 request without a trace): that
// one is answered and its connection closed, and its chunks reach no
// worker as a request. On the second connection the front end serves an
// HTTP/1.1 request first, then gets the chunked HTTP/1.0 head in pieces
// that end in bare LFs, so that it hands the connection to net/http
// before the Transfer-Encoding line has come.
func TestHTTP10KeepAlive(t *testing.T) {
	tmpl := commandApp("seen")
	tmpl.App.Concurrency = 1
	e := start(t, tmpl, proxy.Options{})
	addr := strings.TrimPrefix(e.URL, "http://")
	const chunkedTail = "Transfer-Encoding: chunked\n\n25\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n\r\n0\r\n\r\n"
	const keep = "Host: x\r\nConnection: keep-alive\r\n"
	for _, tc := range []struct {
		name  string
		kept  [][]string // requests answered with the connection kept, each in the pieces it is written in
		last  []string   // the chunked HTTP/1.0 request, in pieces
		lines []string   // what the worker gets
	}{
		{"on net/http's path", [][]string{
			{"GET /0 HTTP/1.0\r\n" + keep + "\r\n"},
			{"GET /1 HTTP/1.0\r\n" + keep + "\r\n"},
			{"POST /2 HTTP/1.0\r\n" + keep + "Content-Length: 5\r\n\r\nhello"},
			{"GET /3 HTTP/1.0\r\n" + keep + "X-Pad: " + strings.Repeat("p", 9000) + "\r\n\r\n"},
		}, []string{"POST /b HTTP/1.0\r\n" + keep + chunkedTail},
			[]string{"GET /0 HTTP/1.1", "GET /1 HTTP/1.1", "POST /2 HTTP/1.1", "GET /3 HTTP/1.1", "POST /b HTTP/1.1"}},
		{"a head in pieces, after the front end's", [][]string{
			{"GET /0 HTTP/1.1\r\nHost: x\r\n\r\n"},
		}, []string{"POST /b HTTP/1.0\nHost: x\nConnection: keep-alive\n", chunkedTail},
			[]string{"GET /0 HTTP/1.1", "POST /b HTTP/1.1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_ = requestsKept(t, e.URL)
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(30 * time.Second))
			br := bufio.NewReader(c)
			exchange := func(pieces []string) *http.Response {
				for i, p := range pieces {
					if i > 0 {
						time.Sleep(50 * time.Millisecond) // a head in pieces: the proxy likely reads the first alone
					}
					if _, err := io.WriteString(c, p); err != nil {
						t.Fatal(err)
					}
				}
				resp, err := http.ReadResponse(br, nil)
				if err != nil {
					t.Fatalf("no answer to %q: %v", pieces[0], err)
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				return resp
			}
			for _, pieces := range tc.kept {
				if resp := exchange(pieces); resp.StatusCode != 200 || resp.Close {
					t.Fatalf("%q: %d, closing %t; want 200 and the connection kept", pieces[0][:20], resp.StatusCode, resp.Close)
				}
			}
			if resp := exchange(tc.last); resp.StatusCode != 200 || !resp.Close {
				t.Errorf("the chunked HTTP/1.0 request: %d, closing %t; want 200 and the connection closed", resp.StatusCode, resp.Close)
			}
			if rest, err := io.ReadAll(br); err != nil || len(rest) > 0 {
				t.Errorf("after the chunked HTTP/1.0 request's answer: %q, %v; want the connection closed", rest, err)
			}
			var lines []string
			for _, r := range requestsKept(t, e.URL) {
				lines = append(lines, r.Line)
			}
			if !slices.Equal(lines, tc.lines) {
				t.Errorf("the worker got %q, want %q", lines, tc.lines)
			}
		})
	}
}
