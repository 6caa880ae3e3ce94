package proxy

import (
	"bufio"
	"bytes"
	"net/http"
	"slices"
	"strings"
	"testing"
)

// TestWriteRequest: the head (and body) a worker gets for a client's
// request, as the server parsed it. Field order follows Go's map order,
// so the head's lines are compared as a set.
func TestWriteRequest(t *testing.T) {
	fwd := []string{"X-Forwarded-For: 192.0.2.1", "X-Forwarded-Host: shop.example", "X-Forwarded-Proto: http"}
	tests := []struct {
		name  string
		trust bool
		raw   string
		head  []string // after the request line, before the blank line
		line  string
		body  string
	}{{
		name: "GET: no framing field, hop-by-hop and client forwarding fields dropped",
		raw: "GET /a?b=c HTTP/1.1\r\nHost: shop.example\r\nConnection: keep-alive, X-Hop\r\nX-Hop: 1\r\n" +
			"Keep-Alive: 5\r\nTe: gzip\r\nUpgrade: nothing\r\nProxy-Authorization: x\r\nForwarded: for=6.6.6.6\r\n" +
			"X-Forwarded-For: 6.6.6.6\r\nX-Forwarded-Host: evil\r\nX-Forwarded-Proto: https\r\nAccept: */*\r\n\r\n",
		line: "GET /a?b=c HTTP/1.1",
		head: append([]string{"Host: shop.example", "Accept: */*"}, fwd...),
	}, {
		name: "a client's word on itself (X-Real-IP, X-Forwarded-Ssl, -Port, -Prefix, -Scheme) is dropped",
		raw: "GET / HTTP/1.1\r\nHost: shop.example\r\nX-Real-IP: 6.6.6.6\r\nX-Forwarded-Ssl: on\r\n" +
			"X-Forwarded-Port: 443\r\nX-Forwarded-Prefix: /evil\r\nX-Forwarded-Scheme: https\r\n\r\n",
		line: "GET / HTTP/1.1",
		head: append([]string{"Host: shop.example"}, fwd...),
	}, {
		name:  "forwarding fields spelt with underscores are dropped, trusted or not",
		trust: true,
		raw:   "GET / HTTP/1.1\r\nHost: shop.example\r\nX_Real_IP: 6.6.6.6\r\nX_Forwarded_Proto: https\r\nX_Custom: 1\r\n\r\n",
		line:  "GET / HTTP/1.1",
		head:  append([]string{"Host: shop.example", "X_custom: 1"}, fwd...),
	}, {
		name:  "a trusted balancer's word on the client is passed on",
		trust: true,
		raw:   "GET / HTTP/1.1\r\nHost: shop.example\r\nX-Real-IP: 203.0.113.7\r\nX-Forwarded-Port: 443\r\n\r\n",
		line:  "GET / HTTP/1.1",
		head:  append([]string{"Host: shop.example", "X-Forwarded-Port: 443", "X-Real-Ip: 203.0.113.7"}, fwd...),
	}, {
		name:  "trusted X-Forwarded-For is appended to; Te: trailers is kept",
		trust: true,
		raw:   "GET / HTTP/1.1\r\nHost: shop.example\r\nX-Forwarded-For: 203.0.113.7\r\nTe: trailers\r\n\r\n",
		line:  "GET / HTTP/1.1",
		head: []string{"Host: shop.example", "Te: trailers", "X-Forwarded-For: 203.0.113.7, 192.0.2.1",
			"X-Forwarded-Host: shop.example", "X-Forwarded-Proto: http"},
	}, {
		name:  "trusted X-Forwarded-Proto of a balancer that ended TLS is kept",
		trust: true,
		raw:   "GET / HTTP/1.1\r\nHost: shop.example\r\nX-Forwarded-Proto: https\r\n\r\n",
		line:  "GET / HTTP/1.1",
		head:  []string{"Host: shop.example", "X-Forwarded-For: 192.0.2.1", "X-Forwarded-Host: shop.example", "X-Forwarded-Proto: https"},
	}, {
		name:  "trusted X-Forwarded-Proto that is neither http nor https is replaced",
		trust: true,
		raw:   "GET / HTTP/1.1\r\nHost: shop.example\r\nX-Forwarded-Proto: https, http\r\n\r\n",
		line:  "GET / HTTP/1.1",
		head:  append([]string{"Host: shop.example"}, fwd...),
	}, {
		name:  "two trusted X-Forwarded-Proto fields are replaced",
		trust: true,
		raw:   "GET / HTTP/1.1\r\nHost: shop.example\r\nX-Forwarded-Proto: https\r\nX-Forwarded-Proto: https\r\n\r\n",
		line:  "GET / HTTP/1.1",
		head:  append([]string{"Host: shop.example"}, fwd...),
	}, {
		name: "absolute-form becomes origin-form",
		raw:  "GET http://shop.example/x?y=1 HTTP/1.1\r\nHost: shop.example\r\n\r\n",
		line: "GET /x?y=1 HTTP/1.1",
		head: append([]string{"Host: shop.example"}, fwd...),
	}, {
		name: "POST with a length",
		raw:  "POST /p HTTP/1.1\r\nHost: shop.example\r\nContent-Length: 5\r\nContent-Type: text/plain\r\n\r\nhello",
		line: "POST /p HTTP/1.1",
		head: append([]string{"Host: shop.example", "Content-Type: text/plain", "Content-Length: 5"}, fwd...),
		body: "hello",
	}, {
		// The proxy answered it (net/http's 100 Continue as the body is
		// read): the worker has no expectation to meet, as behind nginx.
		name: "Expect: 100-continue is the proxy's, not passed on",
		raw:  "POST /p HTTP/1.1\r\nHost: shop.example\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\nhello",
		line: "POST /p HTTP/1.1",
		head: append([]string{"Host: shop.example", "Content-Length: 5"}, fwd...),
		body: "hello",
	}, {
		name: "empty POST says so",
		raw:  "POST /p HTTP/1.1\r\nHost: shop.example\r\nContent-Length: 0\r\n\r\n",
		line: "POST /p HTTP/1.1",
		head: append([]string{"Host: shop.example", "Content-Length: 0"}, fwd...),
	}, {
		name: "chunked POST with a trailer",
		raw: "POST /p HTTP/1.1\r\nHost: shop.example\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum\r\n\r\n" +
			"3\r\nabc\r\n2\r\nde\r\n0\r\nX-Sum: 9\r\n\r\n",
		line: "POST /p HTTP/1.1",
		head: append([]string{"Host: shop.example", "Transfer-Encoding: chunked", "Trailer: X-Sum"}, fwd...),
		body: "5\r\nabcde\r\n0\r\nX-Sum: 9\r\n\r\n",
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := http.ReadRequest(bufio.NewReader(strings.NewReader(tt.raw)))
			if err != nil {
				t.Fatal(err)
			}
			r.RemoteAddr = "192.0.2.1:40000"
			var body *retryBody
			if r.Body != nil && r.Body != http.NoBody && r.ContentLength != 0 {
				body = &retryBody{ReadCloser: r.Body}
			}
			var out bytes.Buffer
			s := &Server{opts: Options{TrustForwardedFor: tt.trust}}
			if err := s.writeRequest(bufio.NewWriter(&out), r, body); err != nil {
				t.Fatal(err)
			}
			head, gotBody, ok := strings.Cut(out.String(), "\r\n\r\n")
			if !ok {
				t.Fatalf("no end of head in %q", out.String())
			}
			lines := strings.Split(head, "\r\n")
			if lines[0] != tt.line {
				t.Errorf("request line %q, want %q", lines[0], tt.line)
			}
			got, want := slices.Sorted(slices.Values(lines[1:])), slices.Sorted(slices.Values(tt.head))
			if !slices.Equal(got, want) {
				t.Errorf("head\n got %q\nwant %q", got, want)
			}
			// The chunked writer may split chunks differently; compare what
			// a reader gets back out of them.
			if tt.body != "" && strings.Contains(tt.line, "POST") && r.ContentLength < 0 {
				tt.body, gotBody = dechunk(t, tt.body), dechunk(t, gotBody)
			}
			if gotBody != tt.body {
				t.Errorf("body %q, want %q", gotBody, tt.body)
			}
		})
	}
}

// dechunk reads a chunked body and its trailer back into "data|trailer".
func dechunk(t *testing.T, chunked string) string {
	t.Helper()
	raw := "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked
	r, err := http.ReadRequest(bufio.NewReader(strings.NewReader(raw)))
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if _, err := b.ReadFrom(r.Body); err != nil {
		t.Fatalf("%v in %q", err, chunked)
	}
	return b.String() + "|" + r.Trailer.Get("X-Sum")
}
