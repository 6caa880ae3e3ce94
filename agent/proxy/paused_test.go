package proxy_test

import (
	"bytes"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ferry-dev/ferry/agent/proxy"
	ferryv1 "github.com/ferry-dev/ferry/api/v1alpha1"
)

// TestPausedAnswerReachesItsClient: the bytes of an answer that came
// before its worker paused reach the client during the pause, as nginx
// sends what it has as it comes. The worker (testdata/keepidle) sends
// its head and 4 KiB of a 2 MiB answer (past the response buffer limit:
// relayed as it comes), then waits for the test's gate file before the
// rest: the client reads the head and the 4 KiB while the rest cannot
// have come. Before, the front end's plain relay kept them in its buffer
// to the client until more came. The read deadline only turns a hang
// into a failure. (The net/http path, a POST's answer, still holds them
// in net/http's buffers: not fixed yet.)
func TestPausedAnswerReachesItsClient(t *testing.T) {
	gate := filepath.Join(sharedTempDir(t, "keepidle"), "gate")
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
	} {
		c, br := dial(t, e)
		if _, err := io.WriteString(c, tc.raw); err != nil {
			t.Fatal(err)
		}
		waitUntil(t, tc.name+": the worker paused in its answer", func() bool { return exists(gate + ".reached") })
		_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
		resp, err := http.ReadResponse(br, nil)
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: the head of an answer whose worker paused after it and %d bytes: %v %v; want 200 before the pause ends", tc.name, first, resp, err)
		}
		got := make([]byte, first)
		if k, err := io.ReadFull(resp.Body, got); err != nil {
			t.Fatalf("%s: the client got %d of the %d bytes its worker sent before it paused: %v; want all of them during the pause", tc.name, k, first, err)
		}
		if err := os.WriteFile(gate, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		_ = c.SetReadDeadline(time.Time{})
		rest, err := io.ReadAll(resp.Body)
		if err != nil || len(rest) != n-first || !bytes.Equal(rest, bytes.Repeat([]byte("x"), n-first)) {
			t.Fatalf("%s: the rest after the pause: %d bytes, %v; want %d", tc.name, len(rest), err, n-first)
		}
		waitUntil(t, tc.name+": the worker done with the answer", func() bool { return exists(gate + ".ended") })
		for _, f := range []string{gate, gate + ".reached", gate + ".ended"} {
			if err := os.Remove(f); err != nil {
				t.Fatal(err)
			}
		}
	}
}
