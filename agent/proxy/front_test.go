package proxy

import (
	"context"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/ferry-dev/ferry/agent/pool"
)

// brokenRouter hands out no worker and no error, which the proxy does not
// expect: serving a request with it panics.
type brokenRouter struct{}

func (brokenRouter) Acquire(context.Context, pool.RequestKey) (*pool.Worker, error) { return nil, nil }
func (brokenRouter) Release(*pool.Worker, pool.Outcome)                             {}
func (brokenRouter) Unreachable(*pool.Worker)                                       {}
func (brokenRouter) DiedIn(*pool.Worker, string, string)                            {}
func (brokenRouter) RequestBufferLimit() int64                                      { return 0 }
func (brokenRouter) ResponseBufferLimit() int64                                     { return 0 }
func (brokenRouter) MaxRequestTime() time.Duration                                  { return 0 }
func (brokenRouter) Overran(*pool.Worker, string, time.Duration)                    {}

// TestPanicClosesOnlyItsConnection: a panic while the front end serves a
// request closes that connection; the agent lives on, serves the next
// connection the same way, and shuts down.
func TestPanicClosesOnlyItsConnection(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := New(brokenRouter{}, Options{})
	go func() { _ = s.Serve(l) }()
	for i := range 2 {
		c, err := net.Dial("tcp", l.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: h\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		out, err := io.ReadAll(c)
		c.Close()
		if err != nil || len(out) != 0 {
			t.Fatalf("connection %d: read %q, %v; want it closed", i, out, err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestHandoffDuringShutdownIsAnswered: a request net/http can no longer
// take gets a 503 that says why, not a silent close.
func TestHandoffDuringShutdownIsAnswered(t *testing.T) {
	h := newHandoffListener(nil)
	_ = h.Close()
	server, client := net.Pipe()
	go h.give(server)
	_ = client.SetReadDeadline(time.Now().Add(10 * time.Second))
	out, _ := io.ReadAll(client)
	if !strings.HasPrefix(string(out), "HTTP/1.1 503 ") || !strings.HasSuffix(string(out), "\r\n\r\nferry: this agent is shutting down\n") {
		t.Errorf("got %q", out)
	}
}

// TestServeAfterShutdownClosesTheListener: a listener handed to a proxy
// that was shut down already is closed, as net/http's Serve closes it, not
// left holding its port with connections queueing that nobody accepts.
func TestServeAfterShutdownClosesTheListener(t *testing.T) {
	s := New(brokenRouter{}, Options{})
	if err := s.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if err := s.Serve(l); err != nil {
		t.Fatalf("Serve after Shutdown: %v, want nil", err)
	}
	if c, err := net.Dial("tcp", l.Addr().String()); err == nil {
		c.Close()
		t.Fatal("the listener still takes connections")
	}
}
