package proxy_test

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ferry-dev/ferry/agent/internal/agenttest"
	"github.com/ferry-dev/ferry/agent/proxy"
	ferryv1 "github.com/ferry-dev/ferry/api/v1alpha1"
	"github.com/ferry-dev/ferry/internal/testsupport"
)

// TestPausedAnswerReachesItsClient: the bytes of an answer that came
// before its worker paused reach the client during the pause, as nginx
// sends what it has as it comes. The worker (testdata/keepidle) sends
// its head and 4 KiB of a 2 MiB answer (past the response buffer limit:
// relayed as it comes), then waits for the test's gate file before the
// rest: the client reads the head and the 4 KiB while the rest cannot
// have come. Before, the front end's plain relay kept them in its buffer
// to the client until more came, and so did the net/http path (a POST's
// answer) in net/http's buffers and the front end's http.ReadResponse
// fallback (a head with a Trailer field, or a Connection field naming
// another) in its own. The read deadline only turns a hang into a
// failure.
func TestPausedAnswerReachesItsClient(t *testing.T) {
	gate := filepath.Join(testsupport.SharedDir(t), "gate")
	tmpl := commandApp("keepidle", ferryv1.EnvVar{Name: "GATE", Value: gate})
	tmpl.App.Concurrency = 1
	e := start(t, tmpl, proxy.Options{})
	// A row that fails leaves its worker waiting: let it end before the
	// pool's stop would wait shutdownTimeout for it (cleanups run last first).
	t.Cleanup(func() { _ = os.WriteFile(gate, nil, 0o644) })
	const n, first = 2 << 20, 4 << 10
	for _, tc := range []struct{ name, raw string }{
		{"front end, plain", "GET /stream?n=2097152&cl=1&first=4096 HTTP/1.1\r\nHost: x\r\n\r\n"},
		{"front end, chunked", "GET /stream?n=2097152&first=4096 HTTP/1.1\r\nHost: x\r\n\r\n"},
		{"front end's fallback, Connection naming a field", "GET /stream?n=2097152&cl=1&first=4096&hdr=conn HTTP/1.1\r\nHost: x\r\n\r\n"},
		{"front end's fallback, Trailer", "GET /stream?n=2097152&cl=1&first=4096&hdr=trailer HTTP/1.1\r\nHost: x\r\n\r\n"},
		{"front end's fallback, chunked", "GET /stream?n=2097152&first=4096&hdr=trailer HTTP/1.1\r\nHost: x\r\n\r\n"},
		{"net/http path, plain", "POST /stream?n=2097152&cl=1&first=4096 HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\nx"},
		{"net/http path, chunked", "POST /stream?n=2097152&first=4096 HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\nx"},
		{"net/http path, HTTP/1.0", "GET /stream?n=2097152&cl=1&first=4096 HTTP/1.0\r\nHost: x\r\n\r\n"},
	} {
		if err := pausedAnswer(t, e, gate, tc.raw, n, first); err != "" {
			t.Errorf("%s: %s", tc.name, err)
		}
	}
}

// pausedAnswer sends raw, a request for n bytes of which the worker
// sends first then waits for gate, and says what went wrong ("": nothing).
// Whatever happened, gate is made and the worker's files removed, for the
// next request.
func pausedAnswer(t *testing.T, e *agenttest.Env, gate, raw string, n, first int) string {
	defer func() {
		_ = os.WriteFile(gate, nil, 0o644)
		waitUntil(t, "the worker done with the answer", func() bool { return exists(gate + ".ended") })
		for _, f := range []string{gate, gate + ".reached", gate + ".ended"} {
			_ = os.Remove(f)
		}
	}()
	c, br := dial(t, e)
	defer c.Close()
	if _, err := io.WriteString(c, raw); err != nil {
		return err.Error()
	}
	waitUntil(t, "the worker paused in its answer", func() bool { return exists(gate + ".reached") })
	_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != http.StatusOK {
		return fmt.Sprintf("the head of an answer whose worker paused after it and %d bytes: %v %v; want 200 before the pause ends", first, resp, err)
	}
	got := make([]byte, first)
	if k, err := io.ReadFull(resp.Body, got); err != nil {
		return fmt.Sprintf("the client got %d of the %d bytes its worker sent before it paused: %v; want all of them during the pause", k, first, err)
	}
	if err := os.WriteFile(gate, nil, 0o644); err != nil {
		return err.Error()
	}
	_ = c.SetReadDeadline(time.Time{})
	rest, err := io.ReadAll(resp.Body)
	if err != nil || len(rest) != n-first || !bytes.Equal(rest, bytes.Repeat([]byte("x"), n-first)) {
		return fmt.Sprintf("the rest after the pause: %d bytes, %v; want %d", len(rest), err, n-first)
	}
	return ""
}

// TestTrickledAnswerReachesItsClient: an answer of a declared length that
// its worker sends in small pieces, less than headWait apart, reaches the
// client as it comes: its head and first bytes go out headWait after the
// answer's first pause at most, not once the client's 4 KiB buffer is
// full. Here a byte every 90 ms of a 2 MB answer (past the response
// buffer limit: relayed), which would fill that buffer in six minutes.
// Before, each pause held the flush for headWait anew, and the next byte
// came within it (found by review). The read deadline only turns that
// wait into a failure.
func TestTrickledAnswerReachesItsClient(t *testing.T) {
	e := start(t, slowStream(), proxy.Options{})
	c, br := dial(t, e)
	if _, err := io.WriteString(c, "GET /stream?n=2000000&d=0.09&size=1&cl=1 HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(time.Minute))
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("the head of an answer trickled a byte every 90 ms: %v %v; want 200 as it trickles", resp, err)
	}
	got := make([]byte, 3)
	if k, err := io.ReadFull(resp.Body, got); err != nil {
		t.Fatalf("the client got %d of the first 3 bytes of an answer trickled a byte every 90 ms: %v; want them as they come", k, err)
	}
	c.Close()
}
