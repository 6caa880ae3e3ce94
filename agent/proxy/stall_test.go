package proxy_test

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"k8s.io/utils/ptr"

	"github.com/ferry-dev/ferry/agent/internal/agenttest"
	"github.com/ferry-dev/ferry/agent/pool"
	"github.com/ferry-dev/ferry/agent/proxy"
)

// TestStalledStreamingUploadFreesTheWorker: a body that streams to its
// worker (declared past requestBufferLimit, chunked past it, or any with
// buffering off) from a client that then sends nothing is ended after
// --request-body-timeout without a byte, as a buffered one is: the client
// gets 408 and its connection closed, the worker's only slot comes back
// for the next request, the request counts as 408, and the agent says
// why. Before, the worker was held until the client went away.
func TestStalledStreamingUploadFreesTheWorker(t *testing.T) {
	tmpl := agenttest.WSGI("hello-wsgi", 1, 1)
	tmpl.Proxy.RequestBufferLimit = quantity("1Ki")
	codes := &codeLog{}
	book := agenttest.NewLogbook(t)
	log := book.Logger()
	e := agenttest.Start(t, pool.Config{Name: "t/stall", Revision: "1", Template: tmpl},
		agenttest.Options{Log: &log, Proxy: proxy.Options{RequestBodyTimeout: time.Second, Observer: codes}})
	e.WaitFor(t, time.Minute, "a ready worker", agenttest.Ready(1))
	addr := strings.TrimPrefix(e.URL, "http://")
	past := strings.Repeat("x", 2<<10) // past the 1 KiB limit
	for i, tc := range []struct {
		name      string
		buffering bool
		raw       string
	}{
		{"declared past the limit", true,
			"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 9663676416\r\n\r\nabc"},
		{"chunked past the limit", true,
			"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" + string(chunk([]byte(past)))},
		{"declared, buffering off", false,
			"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nabc"},
		{"chunked, buffering off", false,
			"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n"},
	} {
		cfg := e.Pool.Config()
		cfg.Template.Proxy.RequestBuffering = ptr.To(tc.buffering)
		e.Pool.Update(cfg)
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Write([]byte(tc.raw)); err != nil { // and nothing more
			t.Fatal(err)
		}
		_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatalf("%s: no answer to a stalled upload: %v (its worker is still held)", tc.name, err)
		}
		body := readBody(t, resp)
		if resp.StatusCode != http.StatusRequestTimeout || !resp.Close {
			t.Errorf("%s: %d %q (close %t), want 408 and the connection closed", tc.name, resp.StatusCode, body, resp.Close)
		}
		if n, err := c.Read(make([]byte, 1)); err == nil {
			t.Errorf("%s: the connection carried %d more bytes, want it closed", tc.name, n)
		}
		c.Close()
		e.WaitFor(t, 30*time.Second, "the worker's slot back", func(s pool.Status) bool {
			return len(s.Processes) == 1 && s.Processes[0].Sessions == 0
		})
		client := &http.Client{Timeout: 30 * time.Second}
		next, err := client.Get(e.URL + "/")
		if err != nil {
			t.Fatalf("%s: the next request: %v", tc.name, err)
		}
		if b := readBody(t, next); next.StatusCode != http.StatusOK {
			t.Fatalf("%s: the next request: %d %q", tc.name, next.StatusCode, b)
		}
		if n := codes.count(http.StatusRequestTimeout); n != i+1 {
			t.Errorf("%s: %d requests counted as 408, want %d (all: %v)", tc.name, n, i+1, codes.all())
		}
	}
	lines := book.Find("Request body stalled")
	if len(lines) != 4 {
		t.Fatalf("%d log lines for the stalled bodies, want 4", len(lines))
	}
	for _, l := range lines {
		path, _ := l.Value("path")
		pid, _ := l.Value("pid")
		if l.IsError || path != "/echo" || fmt.Sprint(pid) == "0" || pid == nil {
			t.Errorf("log line %q %v: want Info with the path and the worker's pid", l.Msg, l.KVs)
		}
	}
	book.Check(t)
}

// TestStalledUploadAfterTheAnswerBegan: a worker that began its answer
// while the body still streams in (a stream that idles: server-sent
// events) loses its request all the same when the client stalls in the
// body: the client's connection is closed (its answer is under way; no
// 408 can follow it), the worker's slot comes back, and the request
// counts as the code it was sent.
func TestStalledUploadAfterTheAnswerBegan(t *testing.T) {
	tmpl := commandApp("sse")
	tmpl.Proxy.RequestBuffering = ptr.To(false)
	codes := &codeLog{}
	book := agenttest.NewLogbook(t)
	log := book.Logger()
	e := agenttest.Start(t, pool.Config{Name: "t/stall-answered", Revision: "1", Template: tmpl},
		agenttest.Options{Log: &log, Proxy: proxy.Options{RequestBodyTimeout: time.Second, Observer: codes}})
	e.WaitFor(t, time.Minute, "a ready worker", agenttest.Ready(1))
	c, err := net.Dial("tcp", strings.TrimPrefix(e.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// A chunked body: the app answers at once, without reading it.
	if _, err := c.Write([]byte("POST /sse HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n")); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(30 * time.Second)) // the stream's next event is due in 10s
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("the stream's head: %v %v", resp, err)
	}
	got := make([]byte, 64)
	n, err := resp.Body.Read(got)
	if err != nil || !strings.HasPrefix(string(got[:n]), "data: 1") {
		t.Fatalf("the first event: %q, %v", got[:n], err)
	}
	if n, err := resp.Body.Read(got); err == nil || strings.Contains(string(got[:n]), "data: 2") {
		t.Errorf("the stream went on (%q, %v), want its connection closed at the stalled body", got[:n], err)
	}
	e.WaitFor(t, 30*time.Second, "the worker's slot back", func(s pool.Status) bool {
		return len(s.Processes) == 1 && s.Processes[0].Sessions == 0
	})
	waitUntil(t, "the request counted", func() bool { return len(codes.all()) == 1 })
	if all := codes.all(); all[0] != http.StatusOK {
		t.Errorf("the request counted as %v, want the 200 it was sent", all)
	}
	line := book.WaitFor(t, "Request body stalled")
	if answer, _ := line.Value("answer"); answer != "connection closed" {
		t.Errorf("log line %v: want answer \"connection closed\"", line.KVs)
	}
}
