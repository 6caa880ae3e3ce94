package proxy

import (
	"bufio"
	"bytes"
	"context"
	"net/http"
	"net/textproto"
	"slices"
	"strings"
	"testing"
	"time"
)

var relayNow = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)

// relayOrRespond writes raw, a worker's response, to a client the way the
// front end does: relayed when plain, else through http.ReadResponse and
// respond. It returns what the client got, whether it was relayed, and
// (relayed only) whether the worker's connection may be reused.
func relayOrRespond(t *testing.T, raw, method string) (out string, relayed, reuse bool) {
	t.Helper()
	var buf bytes.Buffer
	cc := &clientConn{s: &Server{}, ctx: context.Background(), bw: bufio.NewWriter(&buf), req: &http.Request{Method: method}}
	br := bufio.NewReaderSize(strings.NewReader(raw), 4096)
	if method != http.MethodHead && cc.peekPlain(br) {
		_, reuse, _, _ = cc.relay(br, nil, func() time.Time { return relayNow })
		_ = cc.bw.Flush()
		return buf.String(), true, reuse
	}
	resp, err := http.ReadResponse(br, cc.req)
	if err != nil {
		return "error: " + err.Error(), false, false
	}
	defer resp.Body.Close()
	cc.respond(resp, relayNow)
	return buf.String(), false, false
}

// viaRespond is what respond writes for raw, always.
func viaRespond(t *testing.T, raw, method string) string {
	t.Helper()
	var buf bytes.Buffer
	cc := &clientConn{s: &Server{}, ctx: context.Background(), bw: bufio.NewWriter(&buf), req: &http.Request{Method: method}}
	resp, err := http.ReadResponse(bufio.NewReader(strings.NewReader(raw)), cc.req)
	if err != nil {
		return "error: " + err.Error()
	}
	defer resp.Body.Close()
	cc.respond(resp, relayNow)
	return buf.String()
}

// responseLines: the status line, the fields (names canonical, sorted),
// and the body, for comparing two ways of writing one response.
func responseLines(out string) []string {
	head, body, _ := strings.Cut(out, "\r\n\r\n")
	lines := strings.Split(head, "\r\n")
	for i, l := range lines[1:] {
		k, v, _ := strings.Cut(l, ": ")
		lines[i+1] = textproto.CanonicalMIMEHeaderKey(k) + ": " + v
	}
	slices.Sort(lines[1:])
	return append(lines, "body: "+body)
}

// TestRelayPlainResponses: which worker responses the front end relays
// itself, and that the client gets from the relay what respond (through
// http.ReadResponse) would have written.
func TestRelayPlainResponses(t *testing.T) {
	big := strings.Repeat("b", 10<<10)
	tests := []struct {
		name, raw string
		method    string
		relayed   bool
		reuse     bool
	}{
		{name: "plain", relayed: true, reuse: true,
			raw: "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 3\r\nX-Pid: 7\r\nDate: Mon, 30 Nov 2026 10:00:00 GMT\r\n\r\nabc"},
		{name: "no Date: one is added", relayed: true, reuse: true, raw: "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"},
		{name: "hop-by-hop fields dropped", relayed: true, reuse: true,
			raw: "HTTP/1.1 200 OK\r\nConnection: keep-alive\r\nKeep-Alive: timeout=5\r\nProxy-Connection: x\r\nUpgrade: y\r\nTe: z\r\nContent-Length: 1\r\n\r\nx"},
		{name: "the worker closes", relayed: true, reuse: false, raw: "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 1\r\n\r\nx"},
		{name: "a body longer than the buffers", relayed: true, reuse: true, raw: "HTTP/1.1 200 OK\r\nContent-Length: 10240\r\n\r\n" + big},
		{name: "an unknown status", relayed: true, reuse: true, raw: "HTTP/1.1 599\r\nContent-Length: 0\r\n\r\n"},
		{name: "no reason phrase", relayed: true, reuse: true, raw: "HTTP/1.1 201 \r\nContent-Length: 0\r\n\r\n"},
		{name: "chunked", raw: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nx\r\n0\r\n\r\n"},
		{name: "trailers", raw: "HTTP/1.1 200 OK\r\nTrailer: X-Sum\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nx\r\n0\r\nX-Sum: 1\r\n\r\n"},
		{name: "no length", raw: "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil the end"},
		{name: "two lengths", raw: "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nx"},
		{name: "Connection naming a field", raw: "HTTP/1.1 200 OK\r\nConnection: X-Hop\r\nX-Hop: 1\r\nContent-Length: 1\r\n\r\nx"},
		{name: "HTTP/1.0", raw: "HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\nx"},
		{name: "204", raw: "HTTP/1.1 204 No Content\r\n\r\n"},
		{name: "304", raw: "HTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\n\r\n"},
		{name: "interim first", raw: "HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx"},
		{name: "HEAD", method: http.MethodHead, raw: "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n"},
		{name: "a bare LF", raw: "HTTP/1.1 200 OK\nContent-Length: 1\r\n\r\nx"},
		{name: "a head over the buffer", raw: "HTTP/1.1 200 OK\r\nX-Big: " + big + "\r\nContent-Length: 1\r\n\r\nx"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			method := tt.method
			if method == "" {
				method = http.MethodGet
			}
			out, relayed, reuse := relayOrRespond(t, tt.raw, method)
			if relayed != tt.relayed || reuse != tt.reuse {
				t.Fatalf("relayed %v, worker connection reused %v; want %v, %v", relayed, reuse, tt.relayed, tt.reuse)
			}
			if !relayed {
				return // out is respond's own: nothing to compare it with
			}
			if got, want := responseLines(out), responseLines(viaRespond(t, tt.raw, method)); !slices.Equal(got, want) {
				t.Errorf("the client got\n %q\nrespond writes\n %q", got, want)
			}
		})
	}
}

// FuzzRelay: on any bytes, what the front end relays itself is what
// respond would have written through http.ReadResponse.
func FuzzRelay(f *testing.F) {
	f.Add("HTTP/1.1 200 OK\r\nContent-Length: 3\r\nX-A: b\r\n\r\nabc")
	f.Add("HTTP/1.1 500 Internal Server Error\r\nConnection: close, keep-alive\r\nDate: x\r\nContent-Length: 0\r\n\r\n")
	f.Fuzz(func(t *testing.T, raw string) {
		out, relayed, _ := relayOrRespond(t, raw, http.MethodGet)
		if !relayed {
			return
		}
		want := viaRespond(t, raw, http.MethodGet)
		if strings.HasPrefix(want, "error: ") {
			t.Fatalf("relayed %q, which http.ReadResponse rejects (%s)", raw, want)
		}
		if got, want := responseLines(out), responseLines(want); !slices.Equal(got, want) {
			t.Fatalf("for %q the client got\n %q\nrespond writes\n %q", raw, got, want)
		}
	})
}

// TestRespondWritesWhatNetHTTPWould: fields net/http's server would not
// write do not reach the client from the front end either: names that are
// not tokens (a lenient parser downstream could read "Transfer-Encoding :"
// as framing), and the framing of a 204 or 304.
func TestRespondWritesWhatNetHTTPWould(t *testing.T) {
	tests := []struct{ raw, absent string }{
		{"HTTP/1.1 200 OK\r\nTransfer-Encoding : chunked\r\nContent-Length: 2\r\n\r\nok", "Transfer-Encoding"},
		{"HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n", "Content-Length"},
		{"HTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\nContent-Type: text/plain\r\n\r\n", "Content-"},
	}
	for _, tt := range tests {
		out := viaRespond(t, tt.raw, http.MethodGet)
		if strings.HasPrefix(out, "error: ") || strings.Contains(out, tt.absent) {
			t.Errorf("for %q the client got %q, want no %s", tt.raw, out, tt.absent)
		}
	}
}

// TestRefusalOfHEAD: a refusal says its length and, to HEAD, sends no
// body, or the client would read the body as the next response.
func TestRefusalOfHEAD(t *testing.T) {
	for _, method := range []string{http.MethodHead, http.MethodGet} {
		var buf bytes.Buffer
		cc := &clientConn{s: &Server{}, ctx: context.Background(), bw: bufio.NewWriter(&buf), req: &http.Request{Method: method}}
		cc.reply.code = plain(&cc.reply, http.StatusServiceUnavailable, "ferry: busy")
		if !cc.sendReply(relayNow) {
			t.Fatalf("%s: the connection was not kept", method)
		}
		head, body, _ := strings.Cut(buf.String(), "\r\n\r\n")
		want := "ferry: busy\n"
		if method == http.MethodHead {
			want = ""
		}
		if !strings.Contains(head+"\r\n", "\r\nContent-Length: 12\r\n") || body != want {
			t.Errorf("%s: head %q body %q, want Content-Length: 12 and body %q", method, head, body, want)
		}
	}
}
