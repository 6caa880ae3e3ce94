package proxy_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/ferry-dev/ferry/agent/internal/agenttest"
	"github.com/ferry-dev/ferry/agent/pool"
	"github.com/ferry-dev/ferry/agent/proxy"
	ferryv1 "github.com/ferry-dev/ferry/api/v1alpha1"
	"github.com/ferry-dev/ferry/bench/loadgen"
	"github.com/ferry-dev/ferry/internal/testsupport"
)

func start(t *testing.T, tmpl ferryv1.AppTemplate, opts proxy.Options) *agenttest.Env {
	t.Helper()
	e := agenttest.Start(t, pool.Config{Name: "t/" + t.Name(), Revision: "1", Template: tmpl}, agenttest.Options{Proxy: opts})
	e.WaitFor(t, time.Minute, "ready workers", func(s pool.Status) bool {
		return s.Counts.Ready == tmpl.Pool.MinProcesses
	})
	return e
}

func do(t *testing.T, req *http.Request) (*http.Response, []byte) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp, readBody(t, resp)
}

// readBody reads and closes resp's body.
func readBody(t *testing.T, resp *http.Response) []byte {
	t.Helper()
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return body
}

func newRequest(t *testing.T, method, url string, body io.Reader) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

// rawExchange writes raw bytes on a new connection and returns what the
// proxy answers before it closes the connection (or within timeout).
func rawExchange(t *testing.T, addr string, raw string, timeout time.Duration) string {
	out, _ := rawExchangeClosed(t, addr, raw, timeout)
	return out
}

// rawExchangeClosed is rawExchange, and whether the proxy closed the
// connection within timeout.
func rawExchangeClosed(t *testing.T, addr string, raw string, timeout time.Duration) (out string, closed bool) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(timeout))
	b, err := io.ReadAll(c)
	return string(b), err == nil
}

// TestBadClientsDoNotDisturbOthers: malformed requests, oversized headers
// and a client that never finishes its headers are answered or closed,
// while a steady client sees every request succeed.
func TestBadClientsDoNotDisturbOthers(t *testing.T) {
	e := start(t, agenttest.WSGI("hello-wsgi", 2, 2), proxy.Options{ReadHeaderTimeout: time.Second})
	addr := strings.TrimPrefix(e.URL, "http://")
	res := make(chan *loadgen.Result, 1)
	go func() {
		r, err := loadgen.Run(t.Context(), loadgen.Config{URLs: []string{e.URL + "/"}, Clients: 2, Duration: 3 * time.Second})
		if err != nil {
			t.Error(err)
		}
		res <- r
	}()

	cases := []struct {
		name, raw, want string
	}{
		{"garbage request line", "GARBAGE\r\n\r\n", "HTTP/1.1 400 Bad Request"},
		{"bad header line", "GET / HTTP/1.1\r\nHost: x\r\nno colon here\r\n\r\n", "HTTP/1.1 400 Bad Request"},
		{"unsupported protocol", "GET / HTTP/9.9\r\nHost: x\r\n\r\n", "HTTP/1.1 505"},
		{"conflicting lengths", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabc", "HTTP/1.1 400 Bad Request"},
		{"oversized headers", "GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("a", 200<<10) + "\r\n\r\n",
			"HTTP/1.1 431 Request Header Fields Too Large"},
	}
	for _, tc := range cases {
		got := rawExchange(t, addr, tc.raw, 10*time.Second)
		if !strings.HasPrefix(got, tc.want) {
			t.Errorf("%s: got %q, want %q", tc.name, firstLine(got), tc.want)
		}
	}
	// A slow client that never finishes its headers is cut off after
	// ReadHeaderTimeout (1s here).
	startSlow := time.Now()
	got := rawExchange(t, addr, "GET / HTTP/1.1\r\nHost: x\r\nX-Slow: ", 30*time.Second)
	if got != "" && !strings.HasPrefix(got, "HTTP/1.1 408") {
		t.Errorf("slow client got %q, want the connection closed", firstLine(got))
	}
	if waited := time.Since(startSlow); waited > 20*time.Second {
		t.Errorf("slow client held its connection for %s", waited)
	}

	rep := (<-res).Report()
	if rep.Failed != 0 || rep.OK == 0 {
		t.Errorf("the well-behaved client saw %d failures in %d requests", rep.Failed, rep.Requests)
	}
}

// TestNoRequestIsSmuggled: a request with both a Content-Length and a
// Transfer-Encoding gets 400 and its connection closed, so that what a
// balancer in front took for its body never reaches the app as a request
// of its own (RFC 9112, 6.1); and after any chunked request the
// connection is closed, since only its first head is seen whole.
func TestNoRequestIsSmuggled(t *testing.T) {
	e := start(t, recordApp(), proxy.Options{})
	addr := strings.TrimPrefix(e.URL, "http://")
	const smuggled = "POST /smuggled HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n"
	body := "0\r\n\r\n" + smuggled
	for name, head := range map[string]string{
		"CRLF":              fmt.Sprintf("POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\nTransfer-Encoding: chunked\r\n\r\n", len(body)),
		"encoding first":    fmt.Sprintf("POST /upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\ncontent-length: %d\r\n\r\n", len(body)),
		"bare LF, any case": fmt.Sprintf("POST /upload HTTP/1.1\nHost: x\nCONTENT-LENGTH: %d\ntransfer-encoding: chunked\n\n", len(body)),
		"after a chunked one": "POST /upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n" +
			fmt.Sprintf("POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\nTransfer-Encoding: chunked\r\n\r\n", len(body)),
	} {
		before := requestsSeen(t, e.URL)
		out, closed := rawExchangeClosed(t, addr, head+body, 10*time.Second)
		answers := strings.Count(out, "HTTP/1.1 ")
		switch {
		case !closed:
			t.Errorf("%s: the connection was left open; got %q", name, out)
		case name == "after a chunked one" && (answers != 1 || !strings.HasPrefix(out, "HTTP/1.1 200")):
			t.Errorf("%s: want the first request's answer alone, got %q", name, out)
		case name != "after a chunked one" && (answers != 1 || !strings.HasPrefix(out, "HTTP/1.1 400")):
			t.Errorf("%s: want one 400, got %q", name, out)
		}
		if seen := requestsSeen(t, e.URL) - before; seen > 1 || seen == 1 && name != "after a chunked one" {
			t.Errorf("%s: %d requests reached the app", name, seen)
		}
	}
}

// occupy sends GET /slow?ms=ms to the hello app's only process and waits
// until the process has it; the channel gets the response's status (0:
// none came).
func occupy(t *testing.T, e *agenttest.Env, ms int) <-chan int {
	t.Helper()
	got := make(chan int, 1)
	go func() {
		resp, err := http.Get(e.URL + "/slow?ms=" + strconv.Itoa(ms))
		if err != nil {
			got <- 0
			return
		}
		resp.Body.Close()
		got <- resp.StatusCode
	}()
	e.WaitFor(t, time.Minute, "the process busy", func(s pool.Status) bool {
		return len(s.Processes) == 1 && s.Processes[0].Sessions == 1
	})
	return got
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\r\n")
	return line
}

// TestHopByHopHeadersNeverReachTheWorker, and the forwarding headers do.
func TestHopByHopHeadersNeverReachTheWorker(t *testing.T) {
	e := start(t, agenttest.WSGI("hello-wsgi", 1, 1), proxy.Options{})
	req := newRequest(t, http.MethodGet, e.URL+"/echo?headers=1", nil)
	req.Host = "shop.example:8443"
	req.Header.Set("Connection", "X-Secret-Hop")
	req.Header.Set("X-Secret-Hop", "must not pass")
	req.Header.Set("Keep-Alive", "timeout=5")
	req.Header.Set("Proxy-Authorization", "Basic c2VjcmV0")
	req.Header.Set("Proxy-Connection", "keep-alive")
	req.Header.Set("Te", "gzip")
	req.Header.Set("Trailer", "X-T")
	req.Header.Set("X-Forwarded-For", "6.6.6.6")
	req.Header.Set("X-Forwarded-Host", "evil.example")
	req.Header.Set("X-Forwarded-Proto", "https")
	req.Header.Set("Forwarded", "for=6.6.6.6")
	for _, k := range balancerFields {
		req.Header.Set(k, "lie")
	}
	req.Header.Set("X-End-To-End", "kept")
	resp, body := do(t, req)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	var env map[string]string
	if err := json.Unmarshal(body, &env); err != nil {
		t.Fatalf("%v: %s", err, body)
	}
	for _, h := range []string{"HTTP_X_SECRET_HOP", "HTTP_KEEP_ALIVE", "HTTP_PROXY_AUTHORIZATION",
		"HTTP_PROXY_CONNECTION", "HTTP_TE", "HTTP_TRAILER", "HTTP_UPGRADE", "HTTP_FORWARDED"} {
		if v, ok := env[h]; ok {
			t.Errorf("hop-by-hop %s reached the worker: %q", h, v)
		}
	}
	for _, k := range balancerFields {
		if v, ok := env[wsgiKey(k)]; ok {
			t.Errorf("the client's own %s reached the worker: %q", k, v)
		}
	}
	if env["HTTP_X_END_TO_END"] != "kept" {
		t.Errorf("an end-to-end header was lost: %v", env)
	}
	if env["HTTP_X_FORWARDED_FOR"] != "127.0.0.1" {
		t.Errorf("X-Forwarded-For = %q, want the client address only (the client's own value is not trusted)",
			env["HTTP_X_FORWARDED_FOR"])
	}
	if env["HTTP_X_FORWARDED_HOST"] != "shop.example:8443" || env["HTTP_X_FORWARDED_PROTO"] != "http" ||
		env["HTTP_HOST"] != "shop.example:8443" {
		t.Errorf("forwarding headers: %v", env)
	}
}

func TestTrustForwardedForAppends(t *testing.T) {
	e := start(t, agenttest.WSGI("hello-wsgi", 1, 1), proxy.Options{TrustForwardedFor: true})
	req := newRequest(t, http.MethodGet, e.URL+"/env", nil)
	req.Header.Set("X-Forwarded-For", "203.0.113.7")
	_, body := do(t, req)
	var env map[string]any
	_ = json.Unmarshal(body, &env)
	if env["REMOTE_ADDR"] != "127.0.0.1" {
		t.Errorf("REMOTE_ADDR = %v, want the last hop (this proxy's client)", env["REMOTE_ADDR"])
	}
	req = newRequest(t, http.MethodGet, e.URL+"/echo?headers=1", nil)
	req.Header.Set("X-Forwarded-For", "203.0.113.7")
	for _, k := range balancerFields {
		req.Header.Set(k, "balancer's "+k)
	}
	_, body = do(t, req)
	if !bytes.Contains(body, []byte(`"HTTP_X_FORWARDED_FOR": "203.0.113.7, 127.0.0.1"`)) {
		t.Errorf("X-Forwarded-For not appended: %s", body)
	}
	var headers map[string]string
	if err := json.Unmarshal(body, &headers); err != nil {
		t.Fatalf("%v: %s", err, body)
	}
	for _, k := range balancerFields {
		if v := headers[wsgiKey(k)]; v != "balancer's "+k {
			t.Errorf("the trusted %s reached the worker as %q", k, v)
		}
	}
}

// balancerFields are what a balancer in front may say of the client
// besides X-Forwarded-For and -Proto: passed on only when trusted.
var balancerFields = []string{"X-Real-IP", "X-Forwarded-Ssl", "X-Forwarded-Port", "X-Forwarded-Prefix", "X-Forwarded-Scheme"}

// wsgiKey is the WSGI environ key of a request field.
func wsgiKey(k string) string {
	return "HTTP_" + strings.ReplaceAll(strings.ToUpper(k), "-", "_")
}

// TestBalancerFieldsOnTheUpgradePath: an upgrade request (ReverseProxy's
// path) passes a balancer's fields about the client on only when they are
// trusted, and never their spellings with underscores, as the other two
// paths do.
func TestBalancerFieldsOnTheUpgradePath(t *testing.T) {
	for _, trust := range []bool{false, true} {
		e := start(t, commandApp("upgrade"), proxy.Options{TrustForwardedFor: trust})
		fields := ""
		for _, k := range balancerFields {
			fields += k + ": said\r\n"
		}
		fields += "X_Real_IP: said\r\nX_Forwarded_For: said\r\nX_Custom: kept\r\n"
		_, _, resp := upgradeToEcho(t, e, fields)
		for _, k := range balancerFields {
			if got := resp.Header.Get("Seen-" + k); (got == "said") != trust {
				t.Errorf("trusted %v: the worker got %s %q", trust, k, got)
			}
		}
		if got := resp.Header.Get("Seen-Underscored"); !strings.EqualFold(got, "X_Custom") {
			t.Errorf("trusted %v: the worker got the fields spelt with underscores %q, want X_Custom only", trust, got)
		}
	}
}

// TestWSGIConformanceThroughTheProxy runs the loader's wsgiref.validate app
// behind the proxy: GET, large and chunked POST bodies, streamed and
// write()-callable responses, non-ASCII (latin-1) header values, HEAD.
func TestWSGIConformanceThroughTheProxy(t *testing.T) {
	_, file, _, _ := runtime.Caller(0)
	root := filepath.Join(filepath.Dir(file), "..", "wsgi", "testdata", "app")
	e := start(t, agenttest.WSGIAt(root, 1, 1), proxy.Options{})

	t.Run("GET", func(t *testing.T) {
		resp, body := do(t, newRequest(t, http.MethodGet, e.URL+"/", nil))
		if resp.StatusCode != 200 || string(body) != "ok\n" {
			t.Fatalf("%d %q", resp.StatusCode, body)
		}
	})
	t.Run("large POST", func(t *testing.T) {
		data := bytes.Repeat([]byte("0123456789abcdef"), 1<<19) // 8 MiB
		sum := sha256.Sum256(data)
		resp, body := do(t, newRequest(t, http.MethodPost, e.URL+"/sha256", bytes.NewReader(data)))
		if resp.StatusCode != 200 || !bytes.Contains(body, []byte(hex.EncodeToString(sum[:]))) {
			t.Fatalf("%d %s", resp.StatusCode, body)
		}
	})
	t.Run("chunked POST", func(t *testing.T) {
		pr, pw := io.Pipe()
		go func() {
			for i := range 100 {
				fmt.Fprintf(pw, "line %d\n", i)
			}
			pw.Close()
		}()
		req := newRequest(t, http.MethodPost, e.URL+"/lines", pr) // unknown length: chunked
		resp, body := do(t, req)
		var lines []string
		if err := json.Unmarshal(body, &lines); err != nil || resp.StatusCode != 200 || len(lines) != 100 ||
			lines[99] != "line 99\n" {
			t.Fatalf("%d %v %s", resp.StatusCode, err, body)
		}
	})
	t.Run("streamed response", func(t *testing.T) {
		resp, err := http.Get(e.URL + "/stream?n=5")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.ContentLength != -1 {
			t.Errorf("a streamed response got Content-Length %d", resp.ContentLength)
		}
		br := bufio.NewReader(resp.Body)
		for i := range 5 {
			line, err := br.ReadString('\n')
			if err != nil || line != fmt.Sprintf("chunk %d\n", i) {
				t.Fatalf("chunk %d: %q %v", i, line, err)
			}
		}
	})
	t.Run("write callable", func(t *testing.T) {
		_, body := do(t, newRequest(t, http.MethodGet, e.URL+"/write", nil))
		if string(body) != "part1,part2,part3" {
			t.Fatalf("%q", body)
		}
	})
	t.Run("latin-1 header value", func(t *testing.T) {
		resp, _ := do(t, newRequest(t, http.MethodGet, e.URL+"/latin1", nil))
		if got := resp.Header.Get("X-Latin"); got != "caf\xe9" {
			t.Fatalf("X-Latin = %q, want the latin-1 bytes caf\\xe9", got)
		}
	})
	t.Run("HEAD", func(t *testing.T) {
		resp, body := do(t, newRequest(t, http.MethodHead, e.URL+"/", nil))
		if resp.StatusCode != 200 || len(body) != 0 {
			t.Fatalf("%d %q", resp.StatusCode, body)
		}
	})
	t.Run("app error is a 500, then the worker serves on", func(t *testing.T) {
		resp, _ := do(t, newRequest(t, http.MethodGet, e.URL+"/boom", nil))
		if resp.StatusCode != 500 {
			t.Fatalf("%d", resp.StatusCode)
		}
		if resp, _ := do(t, newRequest(t, http.MethodGet, e.URL+"/", nil)); resp.StatusCode != 200 {
			t.Fatalf("after the error: %d", resp.StatusCode)
		}
	})
	t.Run("close() is called on the response iterable", func(t *testing.T) {
		// wsgiref.validate turns any violation into a 500 (every request
		// above got what it expected, so none happened) and checks that
		// close() is called; /closed counts the calls.
		if _, body := do(t, newRequest(t, http.MethodGet, e.URL+"/close", nil)); string(body) != "ab" {
			t.Fatalf("/close: %q", body)
		}
		if _, body := do(t, newRequest(t, http.MethodGet, e.URL+"/closed", nil)); string(body) != "1" {
			t.Errorf("close() calls = %s, want 1", body)
		}
	})
}

// TestUpgradePassesThrough: a Command app's HTTP Upgrade (as WebSocket
// uses) is tunnelled both ways, and Shutdown waits for it: the tunnel
// still carries data while Shutdown waits.
func TestUpgradePassesThrough(t *testing.T) {
	tmpl := commandApp("upgrade")
	e := start(t, tmpl, proxy.Options{})
	c, br, _ := upgradeToEcho(t, e, "")
	echo := func(msg string) {
		t.Helper()
		fmt.Fprint(c, msg)
		line, err := br.ReadString('\n')
		if err != nil || line != "echo: "+msg {
			t.Fatalf("got %q %v, want echo of %q", line, err, msg)
		}
	}
	echo("hello\n")
	echo("über\n")

	// Shutdown: the listener closes at once, the tunnel carries on, and
	// Shutdown returns once the client closed it.
	shut := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		shut <- e.Proxy.Shutdown(ctx)
	}()
	e.WaitFor(t, 10*time.Second, "the listener closed", func(pool.Status) bool {
		d, err := net.Dial("tcp", strings.TrimPrefix(e.URL, "http://"))
		if err == nil {
			d.Close()
		}
		return err != nil
	})
	echo("during shutdown\n")
	select {
	case err := <-shut:
		t.Fatalf("Shutdown returned (%v) with an upgraded connection open", err)
	default:
	}
	c.Close()
	if err := <-shut; err != nil {
		t.Fatalf("Shutdown after the tunnel closed: %v", err)
	}
}

// upgradeToEcho upgrades a connection through e's proxy to the upgrade
// test app's line-echo protocol, with fields (whole lines) added to the
// request head, and returns the connection, its reader past the 101, and
// the 101. The connection is closed when the test ends.
func upgradeToEcho(t *testing.T, e *agenttest.Env, fields string) (net.Conn, *bufio.Reader, *http.Response) {
	t.Helper()
	c, err := net.Dial("tcp", strings.TrimPrefix(e.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	fmt.Fprintf(c, "GET /chat HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: echo\r\n%s\r\n", fields)
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade: %v %v", resp, err)
	}
	return c, br, resp
}

// TestShutdownDrainsInFlightRequests: stopping the agent lets a request in
// progress finish before the workers are stopped.
func TestShutdownDrainsInFlightRequests(t *testing.T) {
	e := start(t, agenttest.WSGI("hello-wsgi", 1, 1), proxy.Options{})
	got := occupy(t, e, 1500)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := e.Proxy.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	e.Pool.Close(ctx)
	if code := <-got; code != http.StatusOK {
		t.Fatalf("the in-flight request got %d, want 200", code)
	}
}

// TestClientDisconnectFreesTheWorker: a client that goes away in the
// middle of a response (ReverseProxy then aborts the handler with a panic)
// must not keep the worker's only slot: the next request is served.
func TestClientDisconnectFreesTheWorker(t *testing.T) {
	_, file, _, _ := runtime.Caller(0)
	tmpl := agenttest.WSGIAt(filepath.Join(filepath.Dir(file), "testdata", "stream"), 1, 1)
	tmpl.Pool.QueueTimeout = &metav1.Duration{Duration: 20 * time.Second}
	e := start(t, tmpl, proxy.Options{})
	for range 3 {
		resp, err := http.Get(e.URL + "/")
		if err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 1<<16)
		if _, err := io.ReadFull(resp.Body, buf); err != nil {
			t.Fatal(err)
		}
		resp.Body.Close() // gone mid-response
		http.DefaultClient.CloseIdleConnections()
	}
	// The worker's slot must come back: a full response is served.
	resp, err := http.Get(e.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	n, _ := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || n != 200*65536 {
		t.Fatalf("after clients went away: %d, %d bytes (want 200 and the whole body)", resp.StatusCode, n)
	}
	// The last request's slot comes back once the proxy is done with it,
	// which may be a moment after the client has its last byte.
	e.WaitFor(t, 10*time.Second, "no session left on the worker", func(s pool.Status) bool {
		return len(s.Processes) == 1 && s.Processes[0].Sessions == 0 && s.Processes[0].Processed == 4
	})
}

// TestRequestWithBodyRetriedOnAnotherWorker: a worker whose socket
// refuses connections (dying, or broken) gets no byte of a POST, so the
// POST goes to another worker, body and all; the broken worker is replaced.
func TestRequestWithBodyRetriedOnAnotherWorker(t *testing.T) {
	closed := filepath.Join(testsupport.SharedDir(t), "closed")
	tmpl := commandApp("closer", ferryv1.EnvVar{Name: "CLOSED_MARK", Value: closed})
	tmpl.Pool.MinProcesses, tmpl.Pool.MaxProcesses, tmpl.App.Concurrency = 2, 2, 1
	e := start(t, tmpl, proxy.Options{})
	oldest := e.Pool.Status().Processes[0].PID
	if err := syscall.Kill(int(oldest), syscall.SIGUSR1); err != nil {
		t.Fatal(err)
	}
	// The pool does not know when the app has closed its socket, so no
	// status shows it: the app says so.
	waitUntil(t, "the app's socket closed", func() bool { return exists(closed) })
	for i := range 10 {
		body := strings.Repeat("b", 1000+i)
		resp, got := do(t, newRequest(t, http.MethodPost, e.URL+"/", strings.NewReader(body)))
		if resp.StatusCode != 200 || string(got) != fmt.Sprint(len(body)) {
			t.Fatalf("POST %d: %d %q, want 200 and the body's length %d", i, resp.StatusCode, got, len(body))
		}
		if resp.Header.Get("X-Pid") == fmt.Sprint(oldest) {
			t.Fatalf("POST %d was answered by the worker that refuses connections", i)
		}
	}
	e.WaitFor(t, time.Minute, "the broken worker replaced", func(s pool.Status) bool {
		if s.Counts.Ready != 2 {
			return false
		}
		for _, p := range s.Processes {
			if p.PID == oldest {
				return false
			}
		}
		return true
	})
}

// TestRetryAfterAFailedWrite: a request whose write to a worker fails
// with nothing sent goes to a worker again and is answered: through the
// front end (GET, and a POST without a body) and through net/http (a head
// too big for the front end). A request whose body was read before the
// write failed is not retried (the body is gone), as Go's transport does.
func TestRetryAfterAFailedWrite(t *testing.T) {
	e := start(t, agenttest.WSGI("hello-wsgi", 2, 2), proxy.Options{})
	big := strings.Repeat("p", 9<<10)
	for _, tt := range []struct {
		name, method, pad string
	}{{"GET", http.MethodGet, ""}, {"POST without a body", http.MethodPost, ""}, {"GET through net/http", http.MethodGet, big}} {
		var workers []*pool.Worker
		for range 2 {
			w, err := e.Pool.Acquire(context.Background(), 0)
			if err != nil {
				t.Fatal(err)
			}
			workers = append(workers, w)
		}
		for _, w := range workers {
			proxy.BreakIdleConnection(w.Transport)
			e.Pool.Release(w, pool.Answered)
		}
		before := proxy.HandedOff(e.Proxy)
		for i := range 3 {
			req := newRequest(t, tt.method, e.URL+"/", nil)
			if tt.pad != "" {
				req.Header.Set("X-Pad", tt.pad)
			}
			if resp, body := do(t, req); resp.StatusCode != 200 {
				t.Fatalf("%s, request %d after a failed write: %d %q, want 200", tt.name, i, resp.StatusCode, body)
			}
		}
		if handedOff := proxy.HandedOff(e.Proxy) > before; handedOff != (tt.pad != "") {
			t.Errorf("%s: handed to net/http: %v", tt.name, handedOff)
		}
	}
}

// TestIdleConnectionClosedByTheWorker: a worker that closes idle
// keep-alive connections on its own schedule loses no request to it: the
// proxy notices the closed connection before it writes a request on it,
// and dials again. A POST, which the proxy may not send twice, would get
// 502 if it were written on the closed connection. A request's head is
// written in one piece (the front end's path: the look comes with the
// write) or, past the connection's buffer, in several (net/http's path:
// the look comes before the first).
func TestIdleConnectionClosedByTheWorker(t *testing.T) {
	tmpl := commandApp("idleclose")
	e := start(t, tmpl, proxy.Options{})
	for _, pad := range []string{"", strings.Repeat("p", 9<<10)} {
		var accepted []string
		for i := range 6 {
			method := []string{http.MethodGet, http.MethodPost}[i%2]
			req := newRequest(t, method, e.URL+"/", nil)
			if pad != "" {
				req.Header.Set("X-Pad", pad)
			}
			resp, body := do(t, req)
			if resp.StatusCode != 200 {
				t.Fatalf("%s %d (a head of %d bytes or more) after an idle pause: %d %q, want 200", method, i, len(pad), resp.StatusCode, body)
			}
			accepted = append(accepted, strings.TrimSpace(string(body)))
			time.Sleep(300 * time.Millisecond) // the worker closes its idle end after 50 ms
		}
		if accepted[0] == accepted[len(accepted)-1] {
			t.Fatalf("connections accepted by the worker: %v; it never closed an idle one, so this test proved nothing", accepted)
		}
	}
}

// TestSafeRequestReplayedWhenAKeptConnectionCloses: a worker may close a
// kept connection in the instant the proxy writes a request on it (its
// idle timeout firing just after the proxy's peek found the connection
// open), and the request gets no answer. The test app closes every kept
// connection that way. A safe request is sent once more, to the same
// worker on a new connection, on both servers' paths; a POST, which the
// worker may have acted on, is answered 502.
func TestSafeRequestReplayedWhenAKeptConnectionCloses(t *testing.T) {
	tmpl := commandApp("closekept")
	tmpl.App.Concurrency = 1 // one worker, one kept connection
	log := &codeLog{}
	e := start(t, tmpl, proxy.Options{Observer: log})
	pid := strconv.Itoa(int(e.Pool.Status().Processes[0].PID))
	send := func(method string, unanswered int) {
		t.Helper()
		resp, body := do(t, newRequest(t, method, e.URL+"/", nil))
		want := fmt.Sprintf("%s %d\n", pid, unanswered)
		if method == http.MethodHead {
			want = ""
		}
		if resp.StatusCode != 200 || string(body) != want {
			t.Fatalf("%s: %d %q, want 200 %q", method, resp.StatusCode, body, want)
		}
	}
	send(http.MethodGet, 0)  // a new connection, kept after the answer
	send(http.MethodGet, 1)  // the kept one, closed unanswered: replayed on a new one
	send(http.MethodHead, 2) // the same again (the count is not checked: no body)
	resp, body := do(t, newRequest(t, http.MethodPost, e.URL+"/", strings.NewReader("x")))
	if want := "closed the connection without answering"; resp.StatusCode != http.StatusBadGateway ||
		!strings.Contains(string(body), want) {
		t.Fatalf("POST on a kept connection closed unanswered: %d %q, want 502 saying %q", resp.StatusCode, body, want)
	}
	send(http.MethodGet, 3) // a new connection: the POST reached the worker once
	out := rawExchange(t, strings.TrimPrefix(e.URL, "http://"), "GET / HTTP/1.0\r\nHost: x\r\n\r\n", 30*time.Second)
	if want := pid + " 4\n"; !strings.HasPrefix(out, "HTTP/1.0 200") || !strings.HasSuffix(out, "\r\n\r\n"+want) {
		t.Fatalf("HTTP/1.0 (net/http's path) on the kept connection: %q, want 200 %q", out, want)
	}
	if n := log.replays(); n != 3 {
		t.Errorf("the observer counted %d replays, want 3 (GET, HEAD, HTTP/1.0 GET)", n)
	}
}

// TestRequestThatKillsItsWorkerIsNotReplayedElsewhere: a safe request
// whose worker dies on it over a kept connection is answered 502 for the
// exit, and never handed to the worker that replaces it (whether the
// proxy tried the dead worker's socket again or knew it had exited).
func TestRequestThatKillsItsWorkerIsNotReplayedElsewhere(t *testing.T) {
	dir := testsupport.SharedDir(t)
	tmpl := commandApp("closekept", ferryv1.EnvVar{Name: "DEATHS_DIR", Value: dir})
	tmpl.App.Concurrency = 1
	e := start(t, tmpl, proxy.Options{})
	pid := strconv.Itoa(int(e.Pool.Status().Processes[0].PID))
	if resp, body := do(t, newRequest(t, http.MethodGet, e.URL+"/", nil)); resp.StatusCode != 200 {
		t.Fatalf("GET /: %d %q", resp.StatusCode, body) // its connection is kept
	}
	resp, body := do(t, newRequest(t, http.MethodGet, e.URL+"/die", nil))
	if want := "the worker process (pid " + pid + ") exited while handling this request"; resp.StatusCode != http.StatusBadGateway ||
		!strings.Contains(string(body), want) {
		t.Errorf("GET /die: %d %q, want 502 saying %q", resp.StatusCode, body, want)
	}
	e.WaitFor(t, time.Minute, "a new worker", func(s pool.Status) bool {
		return s.Counts.Ready == 1 && strconv.Itoa(int(s.Processes[0].PID)) != pid
	})
	deaths, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(deaths) != 1 || deaths[0].Name() != pid {
		t.Errorf("workers that got GET /die: %v, want only pid %s", deaths, pid)
	}
}

// TestBytesSentUnaskedAreNotAResponse: bytes a worker sends on an idle
// connection, here a whole response, are never taken for the next
// request's response: the proxy sees them before it reuses the
// connection, and dials again. The worker sends them only once the
// client has its answer, so they cannot come with it (the proxy would
// drop a connection with bytes left over from a response anyway).
func TestBytesSentUnaskedAreNotAResponse(t *testing.T) {
	dir := testsupport.SharedDir(t)
	tmpl := commandApp("idleclose", ferryv1.EnvVar{Name: "IDLE_TIMEOUT", Value: "60"}, ferryv1.EnvVar{Name: "UNASKED_DIR", Value: dir})
	e := start(t, tmpl, proxy.Options{})
	resp, first := do(t, newRequest(t, http.MethodGet, e.URL+"/unasked", nil))
	if resp.StatusCode != 200 {
		t.Fatalf("GET /unasked: %d %q, want 200", resp.StatusCode, first)
	}
	if err := os.WriteFile(filepath.Join(dir, "go"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	// Written to a loopback socket, the bytes are in the proxy's end already.
	waitUntil(t, "the worker sent its unasked response", func() bool {
		_, err := os.Stat(filepath.Join(dir, "sent"))
		return err == nil
	})
	resp, body := do(t, newRequest(t, http.MethodGet, e.URL+"/", nil))
	if resp.StatusCode != 200 || string(body) == "smuggled\n" || string(body) == string(first) {
		t.Fatalf("the next request got %d %q after %q, want 200 from a new connection", resp.StatusCode, body, first)
	}
}

// TestTrailersAndConnectionFieldsOfResponses: a chunked response's
// trailer reaches the client after the body, and a response field that
// the worker's Connection header names does not.
func TestTrailersAndConnectionFieldsOfResponses(t *testing.T) {
	tmpl := commandApp("trailers")
	e := start(t, tmpl, proxy.Options{})
	for i := range 2 { // the second on the kept connection
		resp, body := do(t, newRequest(t, http.MethodGet, e.URL+"/", nil))
		if resp.StatusCode != 200 || string(body) != "hello trailers\n" {
			t.Fatalf("request %d: %d %q", i, resp.StatusCode, body)
		}
		if got := resp.Trailer.Get("X-Checksum"); got != "42" {
			t.Errorf("request %d: trailer X-Checksum = %q, want 42 (trailers %v)", i, got, resp.Trailer)
		}
		if v := resp.Header.Get("X-Hop-Resp"); v != "" {
			t.Errorf("request %d: X-Hop-Resp, named by the worker's Connection field, reached the client: %q", i, v)
		}
	}
}

// TestResponseTrailersKeptOut: of a worker's response trailers, declared
// or not, none that RFC 9110 (6.5.1) keeps out of trailers reaches the
// client (framing, routing, caching and content fields, Set-Cookie,
// WWW-Authenticate, hop-by-hop ones and one the response's Connection
// field names), on the front end's path and on net/http's (a request with
// a body), and the client is told of the one kept alone; the connection
// carries the next request.
func TestResponseTrailersKeptOut(t *testing.T) {
	e := start(t, commandApp("trailers"), proxy.Options{})
	for name, raw := range map[string]string{
		"front end": "GET /bad HTTP/1.1\r\nHost: x\r\n\r\n",
		"net/http":  "GET /bad HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\nx",
	} {
		t.Run(name, func(t *testing.T) {
			c, err := net.Dial("tcp", strings.TrimPrefix(e.URL, "http://"))
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(30 * time.Second))
			br := bufio.NewReader(c)
			for i := range 2 {
				if _, err := io.WriteString(c, raw); err != nil {
					t.Fatal(err)
				}
				resp, err := http.ReadResponse(br, nil)
				if err != nil {
					t.Fatalf("request %d: %v", i, err)
				}
				if declared := slices.Collect(maps.Keys(resp.Trailer)); !slices.Equal(declared, []string{"X-Checksum"}) {
					t.Errorf("request %d: trailers declared %q, want X-Checksum alone", i, declared) // Go's client takes its Trailer field
				}
				body, err := io.ReadAll(resp.Body)
				if err != nil || resp.StatusCode != 200 || string(body) != "hello trailers\n" {
					t.Fatalf("request %d: %d %q, %v", i, resp.StatusCode, body, err)
				}
				if want := (http.Header{"X-Checksum": {"42"}}); !reflect.DeepEqual(resp.Trailer, want) {
					t.Errorf("request %d: trailers %q, want %q alone", i, resp.Trailer, want)
				}
				if resp.Header.Get("Set-Cookie") != "" || resp.Header.Get("Content-Type") != "text/plain" {
					t.Errorf("request %d: head %q", i, resp.Header)
				}
			}
		})
	}
}

// commandApp is a Command AppGroup template running testdata/dir/server.py:
// one process taking 4 requests at once.
func commandApp(dir string, env ...ferryv1.EnvVar) ferryv1.AppTemplate {
	_, file, _, _ := runtime.Caller(0)
	tmpl := agenttest.WSGIAt(filepath.Join(filepath.Dir(file), "testdata", dir), 1, 1)
	tmpl.App = ferryv1.AppSpec{Type: ferryv1.AppTypeCommand, Root: tmpl.App.Root, Command: []string{"python3", "server.py"},
		Concurrency: 4, Env: env}
	return tmpl
}

// TestMalformedBodyFreesTheWorker: a chunked body that turns malformed
// halfway is answered 400, and the worker's only slot comes back at once
// (the worker must not be left waiting for the rest of the body).
func TestMalformedBodyFreesTheWorker(t *testing.T) {
	tmpl := agenttest.WSGI("hello-wsgi", 1, 1)
	tmpl.Pool.QueueTimeout = &metav1.Duration{Duration: 30 * time.Second}
	e := start(t, tmpl, proxy.Options{})
	addr := strings.TrimPrefix(e.URL, "http://")
	out := rawExchange(t, addr, "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\nzz\r\n", 30*time.Second)
	if !strings.HasPrefix(out, "HTTP/1.1 400") || !strings.Contains(out, "Connection: close") {
		t.Errorf("a malformed chunk got %q, want 400 and the connection closed", out)
	}
	resp, body := do(t, newRequest(t, http.MethodGet, e.URL+"/", nil))
	if resp.StatusCode != 200 {
		t.Fatalf("the next request: %d %q (the worker's slot was not freed)", resp.StatusCode, body)
	}
}

// TestRequestBodyStreams: with request buffering off, the worker gets the
// body's first bytes while the client is still sending, and may answer
// before the rest (an app refusing an upload early does).
func TestRequestBodyStreams(t *testing.T) {
	tmpl := commandApp("early")
	tmpl.Proxy.RequestBuffering = ptr.To(false)
	e := start(t, tmpl, proxy.Options{})
	for _, length := range []int64{-1, 1 << 20} { // chunked, and a declared length
		pr, pw := io.Pipe()
		req := newRequest(t, http.MethodPost, e.URL+"/", pr)
		req.ContentLength = length
		go func() { _, _ = pw.Write([]byte("hello")) }() // and no more, until the answer
		client := &http.Client{Timeout: 30 * time.Second}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("length %d: %v (the body was held back from the worker)", length, err)
		}
		got, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		pw.Close()
		if resp.StatusCode != 200 || !strings.HasPrefix(string(got), "got ") || string(got) == "got 0\n" {
			t.Errorf("length %d: %d %q, want 200 and the first body bytes counted", length, resp.StatusCode, got)
		}
	}
}

// TestClosingClientsKeepWorkerConnections: a client's Connection: close
// (or HTTP/1.0) is about its own connection; the proxy's connection to the
// worker is kept for the next request.
func TestClosingClientsKeepWorkerConnections(t *testing.T) {
	e := start(t, commandApp("idleclose", ferryv1.EnvVar{Name: "IDLE_TIMEOUT", Value: "60"}), proxy.Options{})
	addr := strings.TrimPrefix(e.URL, "http://")
	var accepted []string
	for i := range 6 {
		var body string
		if i%2 == 0 {
			req := newRequest(t, http.MethodGet, e.URL+"/", nil)
			req.Close = true
			resp, b := do(t, req)
			if resp.StatusCode != 200 {
				t.Fatalf("request %d: %d", i, resp.StatusCode)
			}
			body = string(b)
		} else {
			out := rawExchange(t, addr, "GET / HTTP/1.0\r\n\r\n", 30*time.Second)
			_, body, _ = strings.Cut(out, "\r\n\r\n")
		}
		accepted = append(accepted, strings.TrimSpace(body))
	}
	if accepted[0] != accepted[len(accepted)-1] {
		t.Errorf("connections the worker accepted, request by request: %v; want one kept connection", accepted)
	}
}

// TestOneConnectionBothServers: requests the front end takes and requests
// it leaves to net/http (a body, here) on one keep-alive connection, and
// pipelined requests, are all answered, in order; Shutdown closes the
// idle connection.
func TestOneConnectionBothServers(t *testing.T) {
	e := start(t, agenttest.WSGI("hello-wsgi", 1, 1), proxy.Options{})
	c, br := dial(t, e)
	exchange := func(raw string, method string) (*http.Response, string) {
		t.Helper()
		if _, err := io.WriteString(c, raw); err != nil {
			t.Fatal(err)
		}
		return readResponse(t, br, method)
	}
	handedOff := func(step string, want int64) {
		t.Helper()
		if got := proxy.HandedOff(e.Proxy); got != want {
			t.Fatalf("after %s: %d connections handed to net/http, want %d", step, got, want)
		}
	}
	get := "GET /env HTTP/1.1\r\nHost: h\r\n\r\n"
	if resp, body := exchange(get, "GET"); resp.StatusCode != 200 || !strings.Contains(body, `"PATH_INFO": "/env"`) {
		t.Fatalf("GET: %d %q", resp.StatusCode, body)
	}
	if resp, body := exchange("HEAD / HTTP/1.1\r\nHost: h\r\n\r\n", "HEAD"); resp.StatusCode != 200 || body != "" {
		t.Fatalf("HEAD: %d %q", resp.StatusCode, body)
	}
	handedOff("GET and HEAD", 0)
	if resp, body := exchange("POST /echo HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello", "POST"); resp.StatusCode != 200 || body != "hello" {
		t.Fatalf("POST (net/http's): %d %q", resp.StatusCode, body)
	}
	if resp, _ := exchange(get, "GET"); resp.StatusCode != 200 {
		t.Fatalf("GET after the POST: %d", resp.StatusCode)
	}
	handedOff("the POST", 1) // and its connection with it: net/http served the GET after it

	// Requests the front end leaves to net/http on a connection of their
	// own, and a client's Connection: close.
	want := int64(1)
	for _, tc := range []struct {
		name, raw string
		handedOff bool
	}{
		{"HTTP/1.0", "GET /env HTTP/1.0\r\n\r\n", true},
		{"a 10 KiB head", "GET /env HTTP/1.1\r\nHost: h\r\nCookie: " + strings.Repeat("c", 10<<10) + "\r\nConnection: close\r\n\r\n", true},
		{"absolute-form", "GET http://h/env HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n", true},
		{"the front end's, closed", "GET /env HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n", false},
	} {
		out := rawExchange(t, strings.TrimPrefix(e.URL, "http://"), tc.raw, 10*time.Second)
		if !strings.HasPrefix(out, "HTTP/1.") || !strings.Contains(out, " 200 OK\r\n") || !strings.Contains(out, `"PATH_INFO": "/env"`) {
			t.Errorf("%s: got %q, want 200 and the body, then the connection closed", tc.name, out)
		}
		if tc.handedOff {
			want++
		}
		handedOff(tc.name, want)
	}

	// Pipelined, on a connection of the front end's own.
	p, pr := dial(t, e)
	if _, err := io.WriteString(p, "GET /env?n=1 HTTP/1.1\r\nHost: h\r\n\r\nGET /env?n=2 HTTP/1.1\r\nHost: h\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	for n := 1; n <= 2; n++ {
		if resp, body := readResponse(t, pr, "GET"); resp.StatusCode != 200 || !strings.Contains(body, fmt.Sprintf(`"n=%d"`, n)) {
			t.Fatalf("pipelined request %d: %d %q", n, resp.StatusCode, body)
		}
	}
	handedOff("the pipelined requests", want)

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := e.Proxy.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	_ = p.SetReadDeadline(time.Now().Add(10 * time.Second))
	if n, err := pr.Read(make([]byte, 1)); n != 0 || err != io.EOF {
		t.Errorf("the idle connection after Shutdown: read %d, %v; want EOF", n, err)
	}
}

// dial opens a raw connection to the proxy, closed when the test ends.
func dial(t *testing.T, e *agenttest.Env) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, err := net.Dial("tcp", strings.TrimPrefix(e.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c, bufio.NewReader(c)
}

func readResponse(t *testing.T, br *bufio.Reader, method string) (*http.Response, string) {
	t.Helper()
	resp, err := http.ReadResponse(br, &http.Request{Method: method})
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(readBody(t, resp))
}

// TestClientGoneWhileWaiting: a client that goes away while its request
// waits, in the queue or at a slow worker, is noticed at once (499): a
// queued request leaves the queue; one at a worker that serves one
// request at a time leaves its connection, but its worker, still at it,
// gets its slot back only once it answered (TestAbandonedRequestKeepsItsWorker
// in agent/pool says why).
func TestClientGoneWhileWaiting(t *testing.T) {
	tmpl := agenttest.WSGI("hello-wsgi", 1, 1)
	tmpl.Pool.QueueTimeout = &metav1.Duration{Duration: time.Minute}
	codes := &codeLog{}
	e := start(t, tmpl, proxy.Options{Observer: codes})
	addr := strings.TrimPrefix(e.URL, "http://")
	// Fast requests first on the slow one's connection: the watch's
	// timer, set for the first of them, fires while the slow one has
	// waited only about half of watchAfter, and must still watch it.
	slow, br := dial(t, e)
	for range 2 {
		if _, err := io.WriteString(slow, "GET / HTTP/1.1\r\nHost: h\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		if resp, _ := readResponse(t, br, "GET"); resp.StatusCode != 200 {
			t.Fatalf("GET /: %d", resp.StatusCode)
		}
	}
	time.Sleep(proxy.WatchAfter / 2)
	// Released after its response was written: or its session could pass
	// for the slow one's below.
	e.WaitFor(t, 10*time.Second, "the fast requests' worker released", func(s pool.Status) bool {
		return len(s.Processes) == 1 && s.Processes[0].Sessions == 0
	})
	if _, err := io.WriteString(slow, "GET /slow?ms=3000 HTTP/1.1\r\nHost: h\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	e.WaitFor(t, 10*time.Second, "the slow request at the worker", func(s pool.Status) bool {
		return len(s.Processes) == 1 && s.Processes[0].Sessions == 1
	})
	// A request without a body (the front end's), and one with a body
	// (net/http's), buffered before it queued: net/http does not read a
	// connection while a body is unread, so one streamed would be noticed
	// only once a worker takes it and its body is read.
	for _, req := range []string{"GET / HTTP/1.1\r\nHost: h\r\n\r\n", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello"} {
		queued, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.WriteString(queued, req); err != nil {
			t.Fatal(err)
		}
		e.WaitFor(t, 10*time.Second, "the second request queued", func(s pool.Status) bool { return s.QueueLength == 1 })
		queued.Close()
		e.WaitFor(t, 10*time.Second, "the queue empty", func(s pool.Status) bool { return s.QueueLength == 0 })
	}
	slow.Close()
	// Seen gone while the worker is still at the request: by the watch,
	// not by the failed write of its answer.
	e.WaitFor(t, 10*time.Second, "the slow request's client seen gone (499) while its worker is at it", func(s pool.Status) bool {
		return codes.count(499) == 3 && len(s.Processes) == 1 && s.Processes[0].Sessions == 1
	})
	e.WaitFor(t, 30*time.Second, "the worker's slot back once it answered", func(s pool.Status) bool {
		return len(s.Processes) == 1 && s.Processes[0].Sessions == 0 && s.Processes[0].Processed == 3
	})
}

// TestNoContentTypeInvented: a response without Content-Type reaches the
// client without one, through the front end (GET) and net/http (POST);
// Go's server would otherwise sniff one from the body.
func TestNoContentTypeInvented(t *testing.T) {
	e := start(t, commandApp("closer"), proxy.Options{})
	for method, sent := range map[string]string{http.MethodGet: "", http.MethodPost: "abc"} {
		resp, body := do(t, newRequest(t, method, e.URL+"/", strings.NewReader(sent)))
		if resp.StatusCode != 200 || string(body) != fmt.Sprint(len(sent)) {
			t.Fatalf("%s: %d %q", method, resp.StatusCode, body)
		}
		if ct, ok := resp.Header["Content-Type"]; ok {
			t.Errorf("%s: Content-Type %q, want none", method, ct)
		}
	}
}

// TestShutdownClosesIdleConnectionsAtOnce: Shutdown closes the front end's
// idle connections at once, while a request net/http serves is still in
// flight (it then completes).
func TestShutdownClosesIdleConnectionsAtOnce(t *testing.T) {
	e := start(t, agenttest.WSGI("hello-wsgi", 2, 2), proxy.Options{})
	idle, br := dial(t, e)
	if _, err := io.WriteString(idle, "GET / HTTP/1.1\r\nHost: h\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	if resp, _ := readResponse(t, br, "GET"); resp.StatusCode != 200 {
		t.Fatalf("GET: %d", resp.StatusCode)
	}
	// The GET's worker is released after its response is written: wait
	// for that, or its session could pass for the POST's below.
	e.WaitFor(t, 10*time.Second, "the GET's worker released", func(s pool.Status) bool {
		return len(s.Processes) == 2 && s.Processes[0].Sessions+s.Processes[1].Sessions == 0
	})
	posted := make(chan int, 1)
	go func() {
		client := &http.Client{Transport: &http.Transport{}}
		resp, err := client.Post(e.URL+"/slow?ms=5000", "text/plain", strings.NewReader("x"))
		if err != nil {
			posted <- 0
			return
		}
		resp.Body.Close()
		posted <- resp.StatusCode
	}()
	e.WaitFor(t, 10*time.Second, "the POST at a worker", func(s pool.Status) bool {
		return len(s.Processes) == 2 && s.Processes[0].Sessions+s.Processes[1].Sessions == 1
	})
	shut := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		shut <- e.Proxy.Shutdown(ctx)
	}()
	_ = idle.SetReadDeadline(time.Now().Add(time.Minute))
	if n, err := br.Read(make([]byte, 1)); n != 0 || err != io.EOF {
		t.Fatalf("the idle connection during Shutdown: read %d, %v; want EOF", n, err)
	}
	select {
	case code := <-posted:
		t.Fatalf("the idle connection was closed only after the POST was done (%d)", code)
	default:
	}
	if code := <-posted; code != 200 {
		t.Errorf("the POST in flight got %d, want 200", code)
	}
	if err := <-shut; err != nil {
		t.Error(err)
	}
}

// TestIdleTimeout: a keep-alive connection in use stays open past
// IdleTimeout, and one left idle is closed, not before IdleTimeout.
func TestIdleTimeout(t *testing.T) {
	// Long enough that a loaded machine's stall between two requests of
	// the loop (an eighth of it apart) does not pass for idleness: it may
	// last 1.75 s.
	const idle = 2 * time.Second
	e := start(t, agenttest.WSGI("hello-wsgi", 1, 1), proxy.Options{IdleTimeout: idle})
	c, br := dial(t, e)
	var last time.Time // before the last request: the idle time starts after its answer
	for begun := time.Now(); time.Since(begun) < 2*idle; time.Sleep(idle / 8) {
		last = time.Now()
		if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: h\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		if resp, _ := readResponse(t, br, "GET"); resp.StatusCode != 200 {
			t.Fatalf("GET /: %d", resp.StatusCode)
		}
	}
	_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
	if n, err := br.ReadByte(); err != io.EOF {
		t.Fatalf("idle connection: read %q, %v; want EOF", n, err)
	}
	if waited := time.Since(last); waited < idle {
		t.Errorf("idle connection closed after %v, before IdleTimeout (%v)", waited, idle)
	}
}

// TestExpectContinue: a client that sends Expect: 100-continue and waits
// for it before sending its body gets the 100, then its response; the
// worker gets the body whole, a Command app's and a WSGI app's.
func TestExpectContinue(t *testing.T) {
	for _, tt := range []struct {
		name, path, want string
		tmpl             ferryv1.AppTemplate
	}{
		{"Command", "/", "5", commandApp("closer")}, // it answers with the body's length
		{"WSGI", "/echo", "hello", agenttest.WSGI("hello-wsgi", 1, 1)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c, br := dial(t, start(t, tt.tmpl, proxy.Options{}))
			_ = c.SetDeadline(time.Now().Add(30 * time.Second))
			if _, err := io.WriteString(c, "POST "+tt.path+" HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n"); err != nil {
				t.Fatal(err)
			}
			line, err := br.ReadString('\n')
			if err != nil || line != "HTTP/1.1 100 Continue\r\n" {
				t.Fatalf("before the body: %q, %v; want a 100 Continue", line, err)
			}
			if blank, err := br.ReadString('\n'); err != nil || blank != "\r\n" {
				t.Fatalf("after the 100: %q, %v", blank, err)
			}
			if _, err := io.WriteString(c, "hello"); err != nil {
				t.Fatal(err)
			}
			if resp, body := readResponse(t, br, "POST"); resp.StatusCode != 200 || body != tt.want {
				t.Fatalf("POST: %d %q, want 200 %q", resp.StatusCode, body, tt.want)
			}
		})
	}
}

// TestLargestIdleTimeout: an IdleTimeout near the largest duration keeps
// connections open (a deadline that wrapped would close them at once).
func TestLargestIdleTimeout(t *testing.T) {
	e := start(t, agenttest.WSGI("hello-wsgi", 1, 1), proxy.Options{IdleTimeout: time.Duration(math.MaxInt64)})
	c, br := dial(t, e)
	for i := range 3 {
		if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: h\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		if resp, _ := readResponse(t, br, "GET"); resp.StatusCode != 200 {
			t.Fatalf("request %d: %d", i, resp.StatusCode)
		}
	}
}

// TestTricklingHeadHasOneReadHeaderTimeout: a head that trickles in and
// grows too big for the front end is handed to net/http, which must not
// give it a ReadHeaderTimeout of its own on top of the one it had: the
// connection is closed at the first deadline, not at the handoff's plus
// ReadHeaderTimeout.
func TestTricklingHeadHasOneReadHeaderTimeout(t *testing.T) {
	const timeout = 4 * time.Second
	e := start(t, agenttest.WSGI("hello-wsgi", 1, 1), proxy.Options{ReadHeaderTimeout: timeout})
	c, br := dial(t, e)
	begun := time.Now()
	if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: h\r\nX-Pad: "); err != nil {
		t.Fatal(err)
	}
	// Just before the deadline, past the front end's 8 KiB: the handoff.
	// The server reads these bytes after they are sent: a second
	// ReadHeaderTimeout would end no sooner than handoff+timeout, which
	// is the bound, however late a loaded machine makes the handoff. The
	// first deadline ends some 3 s (the sleep) before it: the margin a
	// stall of the test or the proxy has, not a speed asked of them.
	time.Sleep(timeout * 3 / 4)
	handoff := time.Since(begun)
	if _, err := io.WriteString(c, strings.Repeat("p", 9<<10)); err != nil {
		t.Fatal(err)
	}
	// Then a byte now and then, the head never ending.
	closed := make(chan time.Duration, 1)
	go func() {
		_, _ = io.Copy(io.Discard, br)
		closed <- time.Since(begun)
	}()
	tick := time.NewTicker(timeout / 10)
	defer tick.Stop()
	giveUp := time.After(time.Minute)
	for {
		select {
		case took := <-closed:
			if took >= handoff+timeout {
				t.Errorf("closed %v after the head began, want about ReadHeaderTimeout (%v), before the handoff (at %v) plus another",
					took.Round(time.Millisecond), timeout, handoff.Round(time.Millisecond))
			}
			return
		case <-tick.C:
			_, _ = io.WriteString(c, "p")
		case <-giveUp:
			t.Fatal("the trickling head was never timed out")
		}
	}
}

// TestHalfClosedClientGetsNoInventedAnswer: a client that shuts its
// sending side while its request waits counts as gone (as for nginx), and
// its connection closes without an answer: not an empty 200 the app never
// sent.
func TestHalfClosedClientGetsNoInventedAnswer(t *testing.T) {
	e := start(t, agenttest.WSGI("hello-wsgi", 1, 1), proxy.Options{})
	busy := occupy(t, e, 20000)
	for _, req := range []string{"GET /echo HTTP/1.1\r\nHost: h\r\n\r\n", "POST /echo HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello"} {
		c, _ := dial(t, e)
		if _, err := io.WriteString(c, req); err != nil {
			t.Fatal(err)
		}
		if err := c.(*net.TCPConn).CloseWrite(); err != nil {
			t.Fatal(err)
		}
		_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
		if out, err := io.ReadAll(c); len(out) != 0 || err != nil {
			t.Errorf("%s: got %q, %v; want the connection closed without an answer", firstLine(req), out, err)
		}
	}
	// The worker still sleeps: spare the cleanup its 20 seconds.
	_ = syscall.Kill(int(e.Pool.Status().Processes[0].PID), syscall.SIGKILL)
	<-busy
}

// TestWorkerHangupIsNotCalledAnExit: a worker that closes the connection
// without answering, and lives on, is reported as such in the 502 (on the
// front end's path and on net/http's), not as having exited.
func TestWorkerHangupIsNotCalledAnExit(t *testing.T) {
	e := start(t, recordApp(), proxy.Options{})
	pid := strconv.Itoa(int(e.Pool.Status().Processes[0].PID))
	want := "the worker process (pid " + pid + ") closed the connection without answering"
	resp, body := do(t, newRequest(t, http.MethodGet, e.URL+"/hangup", nil))
	if resp.StatusCode != http.StatusBadGateway || !strings.Contains(string(body), want) {
		t.Errorf("HTTP/1.1: got %d %q, want 502 saying %q", resp.StatusCode, body, want)
	}
	out := rawExchange(t, strings.TrimPrefix(e.URL, "http://"), "GET /hangup HTTP/1.0\r\nHost: x\r\n\r\n", 30*time.Second)
	if !strings.HasPrefix(out, "HTTP/1.0 502") || !strings.Contains(out, want) {
		t.Errorf("HTTP/1.0: got %q, want 502 saying %q", out, want)
	}
	if ps := e.Pool.Status().Processes; len(ps) != 1 || strconv.Itoa(int(ps[0].PID)) != pid {
		t.Errorf("processes: %+v, want pid %s alive", ps, pid)
	}
}
