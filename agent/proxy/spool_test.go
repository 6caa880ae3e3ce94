package proxy_test

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/utils/ptr"

	"github.com/ferry-dev/ferry/agent/internal/agenttest"
	"github.com/ferry-dev/ferry/agent/proxy"
	ferryv1 "github.com/ferry-dev/ferry/api/v1alpha1"
)

// arrival is how a body reached the record app (testdata/record).
type arrival struct {
	Length   *string           `json:"length"`
	TE       *string           `json:"te"`
	Bytes    int64             `json:"bytes"`
	SHA256   string            `json:"sha256"`
	Trailers map[string]string `json:"trailers"`
	Count    int               `json:"count"`
}

// recordApp is testdata/record as the pool's one process, taking one
// request at a time, as a WSGI process does.
func recordApp() ferryv1.AppTemplate {
	tmpl := commandApp("record")
	tmpl.App.Concurrency = 1
	return tmpl
}

func decodeArrival(t *testing.T, resp *http.Response, body []byte) arrival {
	t.Helper()
	var a arrival
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	if err := json.Unmarshal(body, &a); err != nil {
		t.Fatalf("%v: %s", err, body)
	}
	return a
}

// upload POSTs body, of length (-1: chunked) and with trailer, and says
// how it arrived, checking that every byte did.
func upload(t *testing.T, url string, body []byte, length int64, trailer http.Header) arrival {
	t.Helper()
	req := newRequest(t, http.MethodPost, url, io.NopCloser(bytes.NewReader(body)))
	req.ContentLength = length
	req.Trailer = trailer
	resp, b := do(t, req)
	a := decodeArrival(t, resp, b)
	sum := sha256.Sum256(body)
	if a.Bytes != int64(len(body)) || a.SHA256 != hex.EncodeToString(sum[:]) {
		t.Fatalf("%d bytes (sha256 %s) arrived, want %d (sha256 %x)", a.Bytes, a.SHA256, len(body), sum)
	}
	return a
}

// requestsSeen is how many POSTs have reached the record app.
func requestsSeen(t *testing.T, url string) int {
	t.Helper()
	client := &http.Client{Timeout: 30 * time.Second}
	resp, err := client.Get(url + "/count")
	if err != nil {
		t.Fatalf("GET /count: %v (is the only process still held by an upload?)", err)
	}
	return decodeArrival(t, resp, readBody(t, resp)).Count
}

// finishUpload sends the rest of an upload startUpload began, and checks
// that the app got all of its length bytes.
func finishUpload(t *testing.T, c net.Conn, br *bufio.Reader, rest []byte, length int) {
	t.Helper()
	if _, err := c.Write(rest); err != nil {
		t.Fatal(err)
	}
	resp, got := readResponse(t, br, http.MethodPost)
	if a := decodeArrival(t, resp, []byte(got)); a.Bytes != int64(length) {
		t.Errorf("%d bytes arrived, want %d", a.Bytes, length)
	}
}

// startUpload sends a POST's head with Expect: 100-continue, waits for the
// proxy to ask for the body (it does when it starts reading it), and sends
// the body's first part: as a chunk when length is -1.
func startUpload(t *testing.T, addr string, length int, first []byte) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	framing := fmt.Sprintf("Content-Length: %d", length)
	if length < 0 {
		framing = "Transfer-Encoding: chunked"
		first = chunk(first)
	}
	fmt.Fprintf(c, "POST /upload HTTP/1.1\r\nHost: x\r\n%s\r\nExpect: 100-continue\r\n\r\n", framing)
	br := bufio.NewReader(c)
	_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
	line, err := br.ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "HTTP/1.1 100 ") {
		t.Fatalf("waiting for 100 Continue: %q, %v", line, err)
	}
	if _, err := br.ReadString('\n'); err != nil { // the interim response's end
		t.Fatal(err)
	}
	if _, err := c.Write(first); err != nil {
		t.Fatal(err)
	}
	return c, br
}

// chunk frames p as one chunk of a chunked body; an empty p is its end.
func chunk(p []byte) []byte {
	end := ""
	if len(p) == 0 {
		end = "\r\n"
	}
	return fmt.Appendf(nil, "%x\r\n%s\r\n%s", len(p), p, end)
}

func quantity(s string) *resource.Quantity {
	q := resource.MustParse(s)
	return &q
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	r := rand.NewChaCha8([32]byte{})
	_, _ = r.Read(b)
	return b
}

// TestSlowUploadHoldsNoProcess: while a client is still sending its body,
// the app's only process serves other requests; the upload reaches it
// whole once it is complete.
func TestSlowUploadHoldsNoProcess(t *testing.T) {
	e := start(t, recordApp(), proxy.Options{})
	c, br := startUpload(t, strings.TrimPrefix(e.URL, "http://"), 10, []byte("hello"))
	if n := requestsSeen(t, e.URL); n != 0 {
		t.Errorf("the app saw %d uploads before the body was complete, want 0", n)
	}
	if _, err := c.Write([]byte("world")); err != nil {
		t.Fatal(err)
	}
	resp, body := readResponse(t, br, http.MethodPost)
	a := decodeArrival(t, resp, []byte(body))
	sum := sha256.Sum256([]byte("helloworld"))
	if a.Bytes != 10 || a.SHA256 != hex.EncodeToString(sum[:]) || a.Length == nil || *a.Length != "10" {
		t.Errorf("the upload arrived as %+v, want its 10 bytes with their length", a)
	}
	if n := requestsSeen(t, e.URL); n != 1 {
		t.Errorf("the app saw %d uploads, want 1", n)
	}
}

// TestAbandonedUploadNeverReachesTheApp: a client that goes away, or sends
// a malformed chunk, before its body is complete costs the app nothing;
// the first counts as 499 (client gone), the second gets 400.
func TestAbandonedUploadNeverReachesTheApp(t *testing.T) {
	codes := &codeLog{}
	e := start(t, recordApp(), proxy.Options{Observer: codes})
	addr := strings.TrimPrefix(e.URL, "http://")
	c, _ := startUpload(t, addr, 1<<20, randomBytes(100<<10))
	c.Close()
	waitUntil(t, "the abandoned upload counted", func() bool { return codes.count(499) == 1 })
	out := rawExchange(t, addr, "POST /upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\nzz\r\n", 30*time.Second)
	if !strings.HasPrefix(out, "HTTP/1.1 400") || !strings.Contains(out, "Connection: close") {
		t.Errorf("a malformed chunk got %q, want 400 and the connection closed", out)
	}
	upload(t, e.URL+"/upload", []byte("complete"), 8, nil)
	if n := requestsSeen(t, e.URL); n != 1 {
		t.Errorf("the app saw %d uploads, want only the complete one", n)
	}
	if codes.count(499) != 1 || codes.count(400) != 1 {
		t.Errorf("requests counted by status: %v, want one 499 and one 400", codes.all())
	}
}

// TestAppsOwn499IsRelayed: a 499 the app answers is its answer, relayed
// like any other; only the proxy's own finding of a client gone closes the
// connection without one.
func TestAppsOwn499IsRelayed(t *testing.T) {
	e := start(t, recordApp(), proxy.Options{})
	for _, buffering := range []bool{true, false} {
		cfg := e.Pool.Config()
		cfg.Template.Proxy.RequestBuffering = &buffering
		e.Pool.Update(cfg)
		resp, body := do(t, newRequest(t, http.MethodPost, e.URL+"/499", strings.NewReader("x")))
		if resp.StatusCode != 499 || !bytes.Contains(body, []byte(`"bytes": 1`)) {
			t.Errorf("buffering %t: got %d %q, want the app's 499 and its body", buffering, resp.StatusCode, body)
		}
	}
}

// codeLog is an Observer that keeps the status codes, and counts replays.
type codeLog struct {
	mu       sync.Mutex
	codes    []int
	replayed int
}

func (l *codeLog) RequestReplayed() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.replayed++
}

func (l *codeLog) replays() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.replayed
}

func (l *codeLog) RequestDone(code int, _ time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.codes = append(l.codes, code)
}

func (l *codeLog) all() []int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.codes)
}

func (l *codeLog) count(code int) int {
	n := 0
	for _, c := range l.all() {
		if c == code {
			n++
		}
	}
	return n
}

// TestBufferedBodiesArriveWhole: bodies in memory and beyond it (in a
// file) arrive byte for byte; a chunked one gets its length, unless it has
// trailers, which only chunks carry. Past requestBufferLimit, a body
// streams on as it came.
func TestBufferedBodiesArriveWhole(t *testing.T) {
	tmpl := recordApp()
	tmpl.Proxy.RequestBufferLimit = quantity("256Ki")
	e := start(t, tmpl, proxy.Options{SpoolDir: t.TempDir()})
	url := e.URL + "/upload"
	for _, n := range []int{0, 10, proxy.SpoolMemory, proxy.SpoolMemory + 1, 200 << 10, 256 << 10} {
		for _, length := range []int64{-1, int64(n)} {
			a := upload(t, url, randomBytes(n), length, nil)
			if a.TE != nil || a.Length == nil || *a.Length != fmt.Sprint(n) {
				t.Errorf("%d bytes (length %d) arrived with Content-Length %v, Transfer-Encoding %v; want their length",
					n, length, ptr.Deref(a.Length, "(none)"), ptr.Deref(a.TE, "(none)"))
			}
		}
	}
	for _, length := range []int64{-1, 1 << 20} { // past the limit
		a := upload(t, url, randomBytes(1<<20), length, nil)
		if chunked := a.TE != nil && *a.TE == "chunked"; chunked != (length < 0) {
			t.Errorf("1 MiB (length %d) arrived with Content-Length %v, Transfer-Encoding %v; want it framed as sent",
				length, ptr.Deref(a.Length, "(none)"), ptr.Deref(a.TE, "(none)"))
		}
	}
	a := upload(t, url, randomBytes(100<<10), -1, http.Header{"X-Checksum": {"42"}})
	if a.TE == nil || a.Trailers["X-Checksum"] != "42" {
		t.Errorf("a body with trailers arrived as %+v, want chunked with its trailer", a)
	}
}

// TestUnbufferableBodyStillArrives: with nowhere to write a large body,
// the request is not refused: what was read goes first, the rest streams.
func TestUnbufferableBodyStillArrives(t *testing.T) {
	e := start(t, recordApp(), proxy.Options{SpoolDir: filepath.Join(t.TempDir(), "missing")})
	for _, length := range []int64{-1, 200 << 10} {
		upload(t, e.URL+"/upload", randomBytes(200<<10), length, nil)
	}
}

// TestDiskBudgetBoundsBufferFiles: an upload larger than what the agent's
// disk budget has left fills the budget, then streams the rest; it
// arrives whole, and the budget comes back when it is done.
func TestDiskBudgetBoundsBufferFiles(t *testing.T) {
	const budget = 100 << 10
	dir, disk := t.TempDir(), proxy.NewBudget(budget)
	e := start(t, recordApp(), proxy.Options{SpoolDir: dir, RequestDisk: disk})
	body := randomBytes(1 << 20)
	c, br := startUpload(t, strings.TrimPrefix(e.URL, "http://"), len(body), body[:300<<10])
	waitUntil(t, "the budget used up", func() bool { return disk.Left() < 32<<10 })
	for _, f := range openFilesIn(t, dir) {
		if fi, err := os.Stat(f); err == nil && fi.Size() > budget {
			t.Errorf("a buffer file of %d bytes, past the budget of %d", fi.Size(), budget)
		}
	}
	finishUpload(t, c, br, body[300<<10:], len(body))
	waitUntil(t, "the budget given back", func() bool { return disk.Left() == budget })
}

// TestBufferFileLeavesNothing: a body buffered to a file has no name on
// disk even while the upload is under way, and its file is closed after.
func TestBufferFileLeavesNothing(t *testing.T) {
	dir := t.TempDir()
	e := start(t, recordApp(), proxy.Options{SpoolDir: dir})
	body := randomBytes(1 << 20)
	c, br := startUpload(t, strings.TrimPrefix(e.URL, "http://"), len(body), body[:300<<10])
	waitUntil(t, "the buffer file is open", func() bool { return len(openFilesIn(t, dir)) > 0 })
	if names, _ := os.ReadDir(dir); len(names) != 0 {
		t.Errorf("files under the buffer directory during the upload: %v", names)
	}
	finishUpload(t, c, br, body[300<<10:], len(body))
	waitUntil(t, "the buffer file is closed", func() bool { return len(openFilesIn(t, dir)) == 0 })
}

// openFilesIn lists this process's open files under dir (the agent's proxy
// runs in the test's process).
func openFilesIn(t *testing.T, dir string) []string {
	t.Helper()
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	var open []string
	for _, fd := range fds {
		if target, err := os.Readlink(filepath.Join("/proc/self/fd", fd.Name())); err == nil && strings.HasPrefix(target, dir+"/") {
			open = append(open, target)
		}
	}
	return open
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestRequestBufferingChangesLive: turning buffering on applies to the
// next request, without restarting the app's process.
func TestRequestBufferingChangesLive(t *testing.T) {
	tmpl := recordApp()
	tmpl.Proxy.RequestBuffering = ptr.To(false)
	e := start(t, tmpl, proxy.Options{})
	pid := e.Pool.Status().Processes[0].PID
	if a := upload(t, e.URL+"/upload", []byte("hello"), -1, nil); a.TE == nil {
		t.Errorf("buffering off: a chunked body arrived as %+v, want chunked", a)
	}
	tmpl.Proxy.RequestBuffering = ptr.To(true)
	cfg := e.Pool.Config()
	cfg.Template = tmpl
	e.Pool.Update(cfg)
	if a := upload(t, e.URL+"/upload", []byte("hello"), -1, nil); a.TE != nil || ptr.Deref(a.Length, "(none)") != "5" {
		t.Errorf("buffering on: a chunked body arrived as %+v, want its length", a)
	}
	if ps := e.Pool.Status().Processes; len(ps) != 1 || ps[0].PID != pid {
		t.Errorf("processes after the change: %+v, want pid %d alone", ps, pid)
	}
}

// TestStalledUploadTimesOut: a client that stops sending a buffered body
// gets 408 and its connection closed after RequestBodyTimeout; the app
// never sees the request.
func TestStalledUploadTimesOut(t *testing.T) {
	e := start(t, recordApp(), proxy.Options{RequestBodyTimeout: 200 * time.Millisecond})
	c, br := startUpload(t, strings.TrimPrefix(e.URL, "http://"), 10, []byte("hel"))
	_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
	resp, body := readResponse(t, br, http.MethodPost)
	if resp.StatusCode != http.StatusRequestTimeout || !resp.Close {
		t.Errorf("a stalled upload got %d %q (close %t), want 408 and the connection closed", resp.StatusCode, body, resp.Close)
	}
	if _, err := br.ReadByte(); err != io.EOF { // not left open, reading the rest
		t.Errorf("after the 408: %v, want the connection closed", err)
	}
	if n := requestsSeen(t, e.URL); n != 0 {
		t.Errorf("the app saw %d uploads, want 0", n)
	}
}

// TestBufferedRequestWaitsPastBodyTimeout: the body's deadline ends with
// the body: a request that then waits longer in the queue is served.
func TestBufferedRequestWaitsPastBodyTimeout(t *testing.T) {
	e := start(t, agenttest.WSGI("hello-wsgi", 1, 1), proxy.Options{RequestBodyTimeout: 100 * time.Millisecond})
	busy := occupy(t, e, 1000)
	resp, body := do(t, newRequest(t, http.MethodPost, e.URL+"/echo", strings.NewReader("waited")))
	if resp.StatusCode != http.StatusOK || string(body) != "waited" {
		t.Errorf("a request queued past the body timeout got %d %q, want 200 and its body echoed", resp.StatusCode, body)
	}
	if code := <-busy; code != http.StatusOK {
		t.Fatalf("the request that held the process: %d", code)
	}
}

// TestBodyPastLimitHasAnIdleTimeout: the part of a body past the buffer
// limit streams at the client's pace, as an unbuffered body does: the
// request body timeout bounds each pause, not the whole body, which may
// take longer than it (TestStalledStreamingUploadFreesTheWorker has a
// pause past it).
func TestBodyPastLimitHasAnIdleTimeout(t *testing.T) {
	tmpl := recordApp()
	tmpl.Proxy.RequestBufferLimit = quantity("1Ki")
	timeout := 2 * time.Second
	e := start(t, tmpl, proxy.Options{RequestBodyTimeout: timeout})
	body := randomBytes(4 << 10)
	c, br := startUpload(t, strings.TrimPrefix(e.URL, "http://"), -1, body[:2<<10])
	rest := body[2<<10:]
	for len(rest) > 0 { // in all, twice the timeout; each pause, a tenth of it
		time.Sleep(timeout / 10)
		if _, err := c.Write(chunk(rest[:128])); err != nil {
			t.Fatal(err)
		}
		rest = rest[128:]
	}
	if _, err := c.Write(chunk(nil)); err != nil {
		t.Fatal(err)
	}
	resp, got := readResponse(t, br, http.MethodPost)
	sum := sha256.Sum256(body)
	if a := decodeArrival(t, resp, []byte(got)); a.Bytes != int64(len(body)) || a.SHA256 != hex.EncodeToString(sum[:]) {
		t.Errorf("%d bytes arrived (sha256 %s), want %d (%x)", a.Bytes, a.SHA256, len(body), sum)
	}
}
