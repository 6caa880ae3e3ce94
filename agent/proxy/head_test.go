package proxy

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"math/rand/v2"
	"net/http"
	"net/textproto"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestFrontEndTakesOrLeaves: which requests the front end takes, and
// that a taken one reaches the worker as net/http's path would send it
// (the same lines, field names compared case-insensitively: the front end
// keeps the client's spelling and order, net/http canonicalizes).
func TestFrontEndTakesOrLeaves(t *testing.T) {
	tests := []struct {
		name  string
		raw   string
		take  bool
		trust bool
	}{
		{name: "plain GET", take: true, raw: "GET /a?b=c%20d HTTP/1.1\r\nHost: shop.example\r\nAccept: */*\r\nuser-agent: x\r\n\r\n"},
		{name: "hop-by-hop and forwarding fields dropped", take: true,
			raw: "GET / HTTP/1.1\r\nhost: shop.example:8080\r\nConnection: keep-alive, close\r\nKeep-Alive: 5\r\n" +
				"Proxy-Connection: x\r\nProxy-Authorization: y\r\nTrailer: z\r\nForwarded: for=6.6.6.6\r\n" +
				"X-Forwarded-For: 6.6.6.6\r\nx-forwarded-host: evil\r\nX-Forwarded-Proto: https\r\nCookie: a=b\r\n\r\n"},
		{name: "a client's word on itself dropped", take: true,
			raw: "GET / HTTP/1.1\r\nHost: h\r\nx-real-ip: 6.6.6.6\r\nX-Forwarded-Ssl: on\r\nX-Forwarded-Port: 443\r\n" +
				"X-Forwarded-Prefix: /evil\r\nX-FORWARDED-SCHEME: https\r\nCookie: a=b\r\n\r\n"},
		{name: "a trusted balancer's word on the client kept", take: true, trust: true,
			raw: "GET / HTTP/1.1\r\nHost: h\r\nX-Real-IP: 203.0.113.7\r\nX-Forwarded-Ssl: on\r\nX-Forwarded-Port: 443\r\n" +
				"X-Forwarded-Prefix: /app\r\nX-Forwarded-Scheme: https\r\n\r\n"},
		{name: "forwarding fields spelt with underscores dropped", take: true,
			raw: "GET / HTTP/1.1\r\nHost: h\r\nX_Real_IP: 6.6.6.6\r\nX_Forwarded_For: 6.6.6.6\r\nx_forwarded_proto: https\r\n" +
				"X-Forwarded_Port: 443\r\nX_Custom: kept\r\n\r\n"},
		{name: "forwarding fields spelt with underscores dropped when trusted too", take: true, trust: true,
			raw: "GET / HTTP/1.1\r\nHost: h\r\nX_Real_IP: 6.6.6.6\r\nX_Forwarded_For: 6.6.6.6\r\nX_Forwarded_Ssl: on\r\n\r\n"},
		{name: "trusted X-Forwarded-For appended to", take: true, trust: true,
			raw: "GET / HTTP/1.1\r\nHost: h\r\nX-Forwarded-For: 203.0.113.7\r\nX-Forwarded-For: 198.51.100.1\r\n\r\n"},
		{name: "trusted X-Forwarded-Proto kept", take: true, trust: true,
			raw: "GET / HTTP/1.1\r\nHost: h\r\nx-forwarded-proto: HTTPS\r\n\r\n"},
		{name: "trusted X-Forwarded-Proto of another scheme replaced", take: true, trust: true,
			raw: "GET / HTTP/1.1\r\nHost: h\r\nX-Forwarded-Proto: ftp\r\n\r\n"},
		{name: "two trusted X-Forwarded-Proto replaced", take: true, trust: true,
			raw: "GET / HTTP/1.1\r\nHost: h\r\nX-Forwarded-Proto: https\r\nX-Forwarded-Proto: http\r\n\r\n"},
		{name: "whitespace around values", take: true, raw: "GET / HTTP/1.1\r\nHost:h\r\nX-A: \t spaced \t\r\nX-Empty:\r\n\r\n"},
		{name: "DELETE without a body says Content-Length: 0", take: true, raw: "DELETE /x HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n"},
		{name: "HEAD", take: true, raw: "HEAD / HTTP/1.1\r\nHost: h\r\n\r\n"},
		{name: "a body", raw: "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc"},
		{name: "a chunked body", raw: "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"},
		{name: "HTTP/1.0", raw: "GET / HTTP/1.0\r\nHost: h\r\n\r\n"},
		{name: "an upgrade", raw: "GET / HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n"},
		{name: "an expectation", raw: "GET / HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\n\r\n"},
		{name: "TE", raw: "GET / HTTP/1.1\r\nHost: h\r\nTE: trailers\r\n\r\n"},
		{name: "Connection naming a field", raw: "GET / HTTP/1.1\r\nHost: h\r\nConnection: X-Hop\r\nX-Hop: 1\r\n\r\n"},
		{name: "absolute-form", raw: "GET http://h/ HTTP/1.1\r\nHost: h\r\n\r\n"},
		{name: "asterisk-form", raw: "OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n"},
		{name: "a bad escape", raw: "GET /%zz HTTP/1.1\r\nHost: h\r\n\r\n"},
		{name: "a control byte in the target", raw: "GET /\x01 HTTP/1.1\r\nHost: h\r\n\r\n"},
		{name: "a bad method", raw: "G(T / HTTP/1.1\r\nHost: h\r\n\r\n"},
		{name: "no Host", raw: "GET / HTTP/1.1\r\nAccept: */*\r\n\r\n"},
		{name: "two Hosts", raw: "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"},
		{name: "a bad Host", raw: "GET / HTTP/1.1\r\nHost: a b\r\n\r\n"},
		{name: "whitespace before the colon", raw: "GET / HTTP/1.1\r\nHost: h\r\nX-A : 1\r\n\r\n"},
		{name: "an obs-fold", raw: "GET / HTTP/1.1\r\nHost: h\r\nX-A: 1\r\n 2\r\n\r\n"},
		{name: "a control byte in a value", raw: "GET / HTTP/1.1\r\nHost: h\r\nX-A: 1\x002\r\n\r\n"},
		{name: "no colon", raw: "GET / HTTP/1.1\r\nHost: h\r\nno colon\r\n\r\n"},
		{name: "a field named Close (hop-by-hop after Connection: close)", raw: "GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\nClose: 1\r\n\r\n"},
		{name: "a Content-Length that is not 0", raw: "GET / HTTP/1.1\r\nHost: h\r\nContent-Length: 00\r\n\r\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := headEnd([]byte(tt.raw))
			if n <= 0 {
				t.Fatalf("headEnd = %d for a complete head", n)
			}
			h := &requestHead{raw: []byte(tt.raw[:n])}
			if got := parseHead(h, tt.trust); got != tt.take {
				t.Fatalf("parseHead = %v, want %v", got, tt.take)
			}
			if !tt.take {
				return
			}
			var front bytes.Buffer
			if err := h.writeHead(bufio.NewWriter(&front), "192.0.2.1"); err != nil {
				t.Fatal(err)
			}
			r, err := http.ReadRequest(bufio.NewReader(strings.NewReader(tt.raw)))
			if err != nil {
				t.Fatalf("net/http rejects a request the front end takes: %v", err)
			}
			r.RemoteAddr = "192.0.2.1:40000"
			var viaHTTP bytes.Buffer
			s := &Server{opts: Options{TrustForwardedFor: tt.trust}}
			if err := s.writeRequest(bufio.NewWriter(&viaHTTP), r, nil); err != nil {
				t.Fatal(err)
			}
			got, want := headLines(t, front.String()), headLines(t, viaHTTP.String())
			if !slices.Equal(got, want) {
				t.Errorf("front end wrote\n %q\nnet/http's path\n %q", got, want)
			}
		})
	}
}

// headLines: the request line, then the fields, names canonical, sorted.
func headLines(t *testing.T, out string) []string {
	t.Helper()
	head, rest, ok := strings.Cut(out, "\r\n\r\n")
	if !ok || rest != "" {
		t.Fatalf("not one head: %q", out)
	}
	lines := strings.Split(head, "\r\n")
	for i, l := range lines[1:] {
		k, v, _ := strings.Cut(l, ": ")
		lines[i+1] = textproto.CanonicalMIMEHeaderKey(k) + ": " + v
	}
	slices.Sort(lines[1:])
	return lines
}

func TestHeadEnd(t *testing.T) {
	tests := []struct {
		in   string
		want int
	}{
		{"", 0},
		{"GET / HTTP/1.1\r\n", 0},
		{"GET / HTTP/1.1\r\nHost: h\r\n", 0},
		{"GET / HTTP/1.1\r\nHost: h\r\n\r\n", 27},
		{"GET / HTTP/1.1\r\n\r\nGET / HTTP/1.1\r\n\r\n", 18},
		{"GET / HTTP/1.1\nHost: h\r\n\r\n", -1}, // a bare LF
		{"GET / HTTP/1.1\r\nHost: h\r\n\n", -1}, // a bare LF ends it
		{"\r\nGET / HTTP/1.1\r\n\r\n", -1},      // a leading empty line
	}
	for _, tt := range tests {
		if got := headEnd([]byte(tt.in)); got != tt.want {
			t.Errorf("headEnd(%q) = %d, want %d", tt.in, got, tt.want)
		}
	}
}

// TestEmptyLines: the empty lines skipped before a request line, CRLFs
// or bare LFs, maxEmptyLines at most; a CR without its LF is none.
func TestEmptyLines(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want int
	}{
		{"", 0},
		{"GET", 0},
		{"\r", 0},
		{"\rGET", 0},
		{"\r\nGET", 2},
		{"\n\r\n\r", 3},
		{"\r\n\n\r\n\nGET", 6},
		{"\n\n\n\n\n\nGET", 4},
		{strings.Repeat("\r\n", 100), 8},
	} {
		if got := emptyLines([]byte(tt.in)); got != tt.want {
			t.Errorf("emptyLines(%q) = %d, want %d", tt.in, got, tt.want)
		}
	}
}

// TestFieldKindOf: every name the net/http path drops or handles is
// classified, whatever its case, in a request and in a response
// (specialFields is indexed by the name's length).
func TestFieldKindOf(t *testing.T) {
	hop := []string{"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate",
		"Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade"}
	for _, side := range []struct {
		name    string
		kind    func([]byte) fieldKind
		handled []string // net/http's path drops or handles them
		handles func(k string) bool
		plain   []string
	}{
		{"request", fieldKindOf,
			append([]string{"Forwarded", "X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto", "Host", "Content-Length", "Expect",
				"X-Real-Ip", "X-Forwarded-Ssl", "X-Forwarded-Port", "X-Forwarded-Prefix", "X-Forwarded-Scheme",
				"X_Forwarded_For", "X_forwarded-host", "X-Forwarded_Proto", "X_Real_IP", "x_forwarded_ssl", "X_FORWARDED_PORT",
				"X_Forwarded_Prefix", "X_Forwarded_Scheme"}, hop...),
			func(k string) bool {
				return hopByHop(k) || forwardedField(k) || balancerField(k) || underscoreForwardingKey(k) ||
					k == "Host" || k == "Content-Length" || k == "Expect"
			},
			[]string{"X-Forwarded-Hosts", "Accept", "X_Forwarded_Fo", "X_Custom", "Keep_Alive"}},
		{"response", responseFieldKind, hop, hopByHop, []string{"Host", "X-Forwarded-For"}},
	} {
		for _, k := range side.handled {
			if !side.handles(k) {
				t.Fatalf("%s: %s is not a field net/http's path handles", side.name, k)
			}
			for _, name := range []string{k, strings.ToLower(k), strings.ToUpper(k)} {
				if side.kind([]byte(name)) == fieldPlain {
					t.Errorf("%s: %s would be passed on as it is", side.name, name)
				}
			}
		}
		for _, k := range side.plain {
			if side.kind([]byte(k)) != fieldPlain {
				t.Errorf("%s: the plain field %s is not passed on", side.name, k)
			}
		}
	}
	for _, f := range specialFields {
		if f.name != strings.ToLower(f.name) {
			t.Errorf("specialFields: %q is not lower case", f.name)
		}
	}
}

// FuzzParseHead: on any bytes the front end's parser does not panic, and
// what it takes net/http takes too, and would send the worker the same
// lines. `go test -fuzz FuzzParseHead ./agent/proxy/` explores; plain
// `go test` runs the seeds.
func FuzzParseHead(f *testing.F) {
	for _, seed := range []string{
		"GET / HTTP/1.1\r\nHost: h\r\n\r\n",
		"GET /a?b=c HTTP/1.1\r\nHost: h\r\nConnection: close\r\nX-Forwarded-For: 1.2.3.4\r\nCookie: x\r\n\r\n",
		"DELETE /x HTTP/1.1\r\nHost: h:1\r\nContent-Length: 0\r\nKeep-Alive: 1\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: h\r\nX: \t\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\nClose: 1\r\n\r\n",
	} {
		f.Add(seed, false)
		f.Add(seed, true)
	}
	f.Fuzz(func(t *testing.T, raw string, trust bool) {
		n := headEnd([]byte(raw))
		if n <= 0 {
			return
		}
		h := &requestHead{raw: []byte(raw[:n])}
		if !parseHead(h, trust) {
			return
		}
		r, err := http.ReadRequest(bufio.NewReader(strings.NewReader(raw[:n])))
		if err != nil {
			t.Fatalf("net/http rejects %q, which the front end takes: %v", raw[:n], err)
		}
		r.RemoteAddr = "192.0.2.1:40000"
		var front, viaHTTP bytes.Buffer
		if err := h.writeHead(bufio.NewWriter(&front), "192.0.2.1"); err != nil {
			t.Fatal(err)
		}
		s := &Server{opts: Options{TrustForwardedFor: trust}}
		if err := s.writeRequest(bufio.NewWriter(&viaHTTP), r, nil); err != nil {
			t.Fatal(err)
		}
		if got, want := headLines(t, front.String()), headLines(t, viaHTTP.String()); !slices.Equal(got, want) {
			t.Fatalf("for %q the front end wrote\n %q\nnet/http's path\n %q", raw[:n], got, want)
		}
	})
}

// TestValidValue: the word-at-a-time check agrees with the definition,
// a byte at a time, for every byte value at every offset of values up to
// three words long, alone and after a tab (which the byte loop allows).
func TestValidValue(t *testing.T) {
	byByte := func(b []byte) bool {
		for _, c := range b {
			if c < ' ' && c != '\t' || c == 0x7f {
				return false
			}
		}
		return true
	}
	for n := 1; n <= 24; n++ {
		for at := range n {
			for c := range 256 {
				for _, base := range []byte{'a', 0xff, '\t'} {
					b := bytes.Repeat([]byte{base}, n)
					b[at] = byte(c)
					if got, want := validValue(b), byByte(b); got != want {
						t.Fatalf("validValue(%q) = %v, want %v", b, got, want)
					}
				}
			}
		}
	}
	// Several edge bytes at once: a borrow from one must not hide another.
	edges := []byte{0, 1, '\b', '\t', '\n', 0x1f, ' ', '!', '~', 0x7f, 0x80, 0x9f, 0xfe, 0xff, 'a'}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 200000 {
		b := make([]byte, rng.IntN(33))
		for i := range b {
			b[i] = edges[rng.IntN(len(edges))]
		}
		if got, want := validValue(b), byByte(b); got != want {
			t.Fatalf("validValue(%q) = %v, want %v", b, got, want)
		}
	}
}

// BenchmarkHeads is the front end's own work on one request, without
// sockets: parse loadgen's request head and write the worker's, then
// parse the bench upstream's response head and relay it. A stable figure
// for changes to head.go and relay.go, where BenchmarkRequest's and `make
// bench`'s numbers are mostly the runtime's and the kernel's.
//
//	go test -run '^$' -bench Heads -benchmem ./agent/proxy/
func BenchmarkHeads(b *testing.B) {
	const request = "GET / HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nUser-Agent: Go-http-client/1.1\r\nAccept-Encoding: gzip\r\n\r\n"
	const response = "HTTP/1.1 200 OK\r\nContent-Length: 6\r\nContent-Type: text/plain\r\nDate: Tue, 01 Dec 2026 17:17:20 GMT\r\n\r\n12345\n"
	toWorker, toClient := bufio.NewWriterSize(io.Discard, 4<<10), bufio.NewWriterSize(io.Discard, 4<<10)
	cc := &clientConn{s: &Server{}, ctx: context.Background(), bw: toClient, req: &http.Request{Method: http.MethodGet}}
	var rd strings.Reader
	br := bufio.NewReaderSize(&rd, 4<<10)
	clock := func() time.Time { return time.Time{} }
	b.ReportAllocs()
	for b.Loop() {
		cc.head.reset()
		cc.head.raw = append(cc.head.raw, request...)
		if !parseHead(&cc.head, false) || cc.head.writeHead(toWorker, "127.0.0.1") != nil {
			b.Fatal("the request was not taken")
		}
		rd.Reset(response)
		br.Reset(&rd)
		if !cc.peekPlain(br) {
			b.Fatal("the response is not plain")
		}
		if ok, _, _, _ := cc.relay(br, nil, clock); !ok || cc.bw.Flush() != nil {
			b.Fatal("the relay failed")
		}
	}
}
