package proxy_test

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ferry-dev/ferry/agent/internal/agenttest"
	"github.com/ferry-dev/ferry/agent/pool"
	"github.com/ferry-dev/ferry/agent/proxy"
	"github.com/ferry-dev/ferry/internal/testsupport"
)

// TestQuietStreamShowsItsHead: a stream whose worker sends its head and
// then nothing for a while (server-sent events waiting for their first
// event, a long poll), or an answer longer than the proxy buffers whose
// body is slow to start, shows the client its head before any of its body,
// on both servers' paths: the app sends its body only once the test saw
// the head, so a head held back for the body would never come (the read
// gives up after 30 s). Then the body follows; or, when the worker closes
// the connection, the answer is cut short (no 502 can follow a head that
// went out), logged with the pid and path, and counted as the 200 sent.
// Before, the head went out only with the body's first bytes.
func TestQuietStreamShowsItsHead(t *testing.T) {
	codes := &codeLog{}
	book := agenttest.NewLogbook(t)
	log := book.Logger()
	e := agenttest.Start(t, pool.Config{Name: "t/quiet", Revision: "1", Template: commandApp("headdie")},
		agenttest.Options{Log: &log, Proxy: proxy.Options{Observer: codes}})
	e.WaitFor(t, time.Minute, "a ready worker", agenttest.Ready(1))
	addr := strings.TrimPrefix(e.URL, "http://")
	dir := testsupport.WorkerDir(t) // the worker may run as another user
	cuts := 0
	for _, method := range []string{http.MethodGet, http.MethodPost} { // the front end's, net/http's
		for _, path := range []string{"/quiet", "/quietcut", "/quietlongcut"} { // a stream; a body longer than the proxy buffers
			flag := filepath.Join(dir, method+strings.TrimPrefix(path, "/"))
			raw := method + " " + path + "?flag=" + flag + " HTTP/1.1\r\nHost: x\r\n"
			if method == http.MethodPost {
				raw += "Content-Length: 1\r\n\r\nx"
			} else {
				raw += "\r\n"
			}
			pid := pidOfWorker(t, e)
			resp, c := headOf(t, addr, raw)
			if resp.StatusCode != http.StatusOK {
				t.Errorf("%s %s: %d before the body, want the worker's 200", method, path, resp.StatusCode)
			}
			if err := os.WriteFile(flag, nil, 0o644); err != nil {
				t.Fatal(err)
			}
			body, err := io.ReadAll(resp.Body)
			c.Close()
			if path == "/quiet" {
				if err != nil || string(body) != "data: 1\n\n" {
					t.Errorf("%s %s: body %q, %v; want the event and the end", method, path, body, err)
				}
				continue
			}
			if err == nil {
				t.Errorf("%s %s: body %q complete, want it cut short", method, path, body)
			}
			cuts++
			logged(t, book, path, pid, cuts)
		}
	}
	waitUntil(t, "the requests counted", func() bool { return len(codes.all()) == 6 })
	if n := codes.count(http.StatusOK); n != 6 {
		t.Errorf("codes %v, want six 200s (four of them cut short)", codes.all())
	}
}

// headOf sends raw on a new connection to addr and reads the response's
// head; its body is read from the returned connection.
func headOf(t *testing.T, addr, raw string) (*http.Response, net.Conn) {
	t.Helper()
	c := agenttest.Send(t, addr, raw)
	_ = c.SetReadDeadline(time.Now().Add(30 * time.Second)) // a bound on a hang, not a timing assert
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		c.Close()
		t.Fatalf("%s: %v, want the head before any body", firstLine(raw), err)
	}
	return resp, c
}
