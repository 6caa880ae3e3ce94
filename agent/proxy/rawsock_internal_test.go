package proxy

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// tcpPair is a connected pair of loopback TCP connections.
func tcpPair(t *testing.T) (local, peer *net.TCPConn) {
	t.Helper()
	c, p := connPair(t, "tcp", "127.0.0.1:0")
	return c.(*net.TCPConn), p.(*net.TCPConn)
}

// connPair is a connected pair of stream connections, through a listener
// on address, closed when the test ends.
func connPair(t *testing.T, network, address string) (local, peer net.Conn) {
	t.Helper()
	ln, err := net.Listen(network, address)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	c, err := net.Dial(network, ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	p := <-accepted
	if p == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { c.Close(); p.Close() })
	return c, p
}

// resetBy has peer close with a reset (RST), and gives it time to arrive.
func resetBy(peer *net.TCPConn) {
	peer.SetLinger(0)
	peer.Close()
	time.Sleep(50 * time.Millisecond)
}

// awaitInput waits until c's socket holds n bytes to read, n == 0 meaning
// the end of the stream (the peer's close) with nothing before it: it
// polls (poll(2)) until the socket is readable, then reads the count it
// holds (SIOCINQ, Linux's FIONREAD for a socket). After a minute the test
// fails.
func awaitInput(t *testing.T, c *net.TCPConn, n int) {
	t.Helper()
	raw, err := c.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	deadline, queued := time.Now().Add(time.Minute), -1
	for {
		left := time.Until(deadline)
		if left <= 0 {
			t.Fatalf("the socket holds %d bytes to read after a minute (-1: not readable), want %d (0: its end)", queued, n)
		}
		queued = -1
		cerr := raw.Control(func(fd uintptr) {
			fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
			if _, err = unix.Poll(fds, int(left.Milliseconds())+1); err != nil || fds[0].Revents == 0 {
				return
			}
			queued, err = unix.IoctlGetInt(int(fd), unix.SIOCINQ)
		})
		switch {
		case cerr != nil:
			t.Fatal(cerr)
		case err != nil && !errors.Is(err, unix.EINTR):
			t.Fatalf("waiting for %d bytes to read: %v", n, err)
		case err == nil && queued == n:
			return
		}
	}
}

// rawOrPlain is the connection's reads and writes through a rawSocket or
// through net.Conn itself, to run one case both ways.
type rawOrPlain struct {
	name string
	wrap func(net.Conn) io.ReadWriter
}

var bothWays = []rawOrPlain{
	{"net.Conn", func(c net.Conn) io.ReadWriter { return c }},
	{"rawSocket", func(c net.Conn) io.ReadWriter { return newRawSocket(c) }},
}

// outcome is what a case saw, with the pair's addresses taken out of the
// error's text so that the two ways compare.
type outcome struct {
	n                                 int
	text                              string
	eof, timeout, closed, reset, pipe bool
}

func outcomeOf(c net.Conn, n int, err error) outcome {
	o := outcome{n: n}
	if err == nil {
		return o
	}
	o.text = strings.NewReplacer(c.LocalAddr().String(), "LOCAL", c.RemoteAddr().String(), "REMOTE").Replace(err.Error())
	o.eof = errors.Is(err, io.EOF) // and text holds it unwrapped, as net.Conn's
	o.timeout = errors.Is(err, os.ErrDeadlineExceeded)
	if ne := net.Error(nil); errors.As(err, &ne) && ne.Timeout() != o.timeout {
		o.text += " (Timeout() disagrees with ErrDeadlineExceeded)"
	}
	o.closed = errors.Is(err, net.ErrClosed)
	o.reset = errors.Is(err, syscall.ECONNRESET)
	o.pipe = errors.Is(err, syscall.EPIPE)
	return o
}

// TestRawSocketAsNetConn: a rawSocket's Read and Write give what net.Conn's
// give, in the cases the proxy meets: data, a wait for data, EOF, a passed
// deadline, a closed connection, a reset one, a write that fills the
// socket, a write to a peer gone.
func TestRawSocketAsNetConn(t *testing.T) {
	cases := []struct {
		name string
		run  func(t *testing.T, c, peer *net.TCPConn, rw io.ReadWriter) outcome
		want outcome // as far as it is fixed (n, and the flags)
	}{
		{"data, then EOF", func(t *testing.T, c, peer *net.TCPConn, rw io.ReadWriter) outcome {
			peer.Write([]byte("hello"))
			peer.CloseWrite()
			got, err := io.ReadAll(rw)
			if string(got) != "hello" || err != nil {
				t.Errorf("read %q, %v; want hello, nil", got, err)
			}
			n, err := rw.Read(make([]byte, 8)) // EOF again
			return outcomeOf(c, n, err)
		}, outcome{eof: true}},
		{"a wait for data", func(t *testing.T, c, peer *net.TCPConn, rw io.ReadWriter) outcome {
			time.AfterFunc(50*time.Millisecond, func() { peer.Write([]byte("late")) })
			buf := make([]byte, 8)
			n, err := rw.Read(buf)
			if string(buf[:n]) != "late" {
				t.Errorf("read %q, want late", buf[:n])
			}
			return outcomeOf(c, n, err)
		}, outcome{n: 4}},
		{"an empty read", func(t *testing.T, c, peer *net.TCPConn, rw io.ReadWriter) outcome {
			n, err := rw.Read(nil)
			return outcomeOf(c, n, err)
		}, outcome{}},
		{"a read deadline passed", func(t *testing.T, c, peer *net.TCPConn, rw io.ReadWriter) outcome {
			c.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
			n, err := rw.Read(make([]byte, 8))
			return outcomeOf(c, n, err)
		}, outcome{timeout: true}},
		{"a read on a closed connection", func(t *testing.T, c, peer *net.TCPConn, rw io.ReadWriter) outcome {
			c.Close()
			n, err := rw.Read(make([]byte, 8))
			return outcomeOf(c, n, err)
		}, outcome{closed: true}},
		{"a read closed while it waits", func(t *testing.T, c, peer *net.TCPConn, rw io.ReadWriter) outcome {
			time.AfterFunc(50*time.Millisecond, func() { c.Close() })
			n, err := rw.Read(make([]byte, 8))
			return outcomeOf(c, n, err)
		}, outcome{closed: true}},
		{"a read of a reset connection", func(t *testing.T, c, peer *net.TCPConn, rw io.ReadWriter) outcome {
			resetBy(peer)
			n, err := rw.Read(make([]byte, 8))
			return outcomeOf(c, n, err)
		}, outcome{reset: true}},
		{"a write that fills the socket", func(t *testing.T, c, peer *net.TCPConn, rw io.ReadWriter) outcome {
			big := bytes.Repeat([]byte("x"), 16<<20)
			var got int64
			done := make(chan struct{})
			go func() {
				defer close(done)
				time.Sleep(50 * time.Millisecond) // the write meets a full socket first
				got, _ = io.Copy(io.Discard, peer)
			}()
			n, err := rw.Write(big)
			c.CloseWrite()
			<-done
			if got != int64(len(big)) {
				t.Errorf("the peer read %d bytes, want %d", got, len(big))
			}
			return outcomeOf(c, n, err)
		}, outcome{n: 16 << 20}},
		{"a write deadline passed", func(t *testing.T, c, peer *net.TCPConn, rw io.ReadWriter) outcome {
			c.SetWriteDeadline(time.Now().Add(50 * time.Millisecond))
			n, err := rw.Write(bytes.Repeat([]byte("x"), 64<<20)) // nobody reads
			o := outcomeOf(c, n, err)
			if n >= 64<<20 {
				t.Errorf("wrote all %d bytes to a peer that reads none", n)
			}
			o.n = 0 // how many fit differs run to run (none, on a slow machine)
			return o
		}, outcome{timeout: true}},
		{"a write on a closed connection", func(t *testing.T, c, peer *net.TCPConn, rw io.ReadWriter) outcome {
			c.Close()
			n, err := rw.Write([]byte("x"))
			return outcomeOf(c, n, err)
		}, outcome{closed: true}},
		{"a write to a reset connection", func(t *testing.T, c, peer *net.TCPConn, rw io.ReadWriter) outcome {
			resetBy(peer)
			n, err := rw.Write([]byte("x"))
			return outcomeOf(c, n, err)
		}, outcome{reset: true}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var seen []outcome
			for _, way := range bothWays {
				c, peer := tcpPair(t)
				got := tc.run(t, c, peer, way.wrap(c))
				if got.n != tc.want.n || got.eof != tc.want.eof || got.timeout != tc.want.timeout ||
					got.closed != tc.want.closed || got.reset != tc.want.reset || got.pipe != tc.want.pipe {
					t.Errorf("%s: got %+v, want %+v", way.name, got, tc.want)
				}
				seen = append(seen, got)
			}
			if seen[0] != seen[1] {
				t.Errorf("the two ways differ:\n net.Conn:  %+v\n rawSocket: %+v", seen[0], seen[1])
			}
		})
	}
}

// TestRawSocketConcurrentReads: a second Read while one waits goes through
// net.Conn's own, and both get their bytes; likewise two Writes.
func TestRawSocketConcurrentReads(t *testing.T) {
	c, peer := tcpPair(t)
	r := newRawSocket(c)
	var wg sync.WaitGroup
	got := make(chan string, 2)
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 1)
			if _, err := io.ReadFull(r, buf); err != nil {
				t.Error(err)
			}
			got <- string(buf)
		}()
	}
	time.Sleep(50 * time.Millisecond) // both wait
	if _, err := peer.Write([]byte("ab")); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	close(got)
	var all string
	for s := range got {
		all += s
	}
	if all != "ab" && all != "ba" {
		t.Errorf("the two reads got %q, want a and b", all)
	}

	big := bytes.Repeat([]byte("y"), 8<<20)
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if n, err := r.Write(big); n != len(big) || err != nil {
				t.Errorf("write: %d, %v", n, err)
			}
		}()
	}
	done := make(chan int64)
	go func() {
		n, _ := io.Copy(io.Discard, peer)
		done <- n
	}()
	wg.Wait()
	c.CloseWrite()
	if n := <-done; n != 2*int64(len(big)) {
		t.Errorf("the peer read %d bytes, want %d", n, 2*len(big))
	}
}

// TestRawSocketBusyFallsBack: a Read or Write that finds its half busy
// (another under way) is net.Conn's own, and gets its bytes through.
func TestRawSocketBusyFallsBack(t *testing.T) {
	c, peer := tcpPair(t)
	r := newRawSocket(c)
	r.readBusy.Store(true)
	r.writeBusy.Store(true)
	if _, err := peer.Write([]byte("in")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 2)
	if _, err := io.ReadFull(r, buf); err != nil || string(buf) != "in" {
		t.Errorf("read %q, %v; want in", buf, err)
	}
	if n, err := r.Write([]byte("out")); n != 3 || err != nil {
		t.Errorf("write: %d, %v", n, err)
	}
	if _, err := io.ReadFull(peer, buf[:2]); err != nil || string(buf) != "ou" {
		t.Errorf("the peer read %q, %v; want ou", buf, err)
	}
	if !r.readBusy.Load() || !r.writeBusy.Load() {
		t.Error("the fallback took the busy halves' flags from the Read and Write that hold them")
	}
}

// TestRawSocketReadNow: ReadNow takes what the socket holds past a read
// deadline, where Read fails; with nothing there it fails as a read past
// its deadline does, at once; after the peer's close, EOF; on a
// connection without a file descriptor, a read past its deadline.
func TestRawSocketReadNow(t *testing.T) {
	c, peer := tcpPair(t)
	r := newRawSocket(c)
	if _, err := peer.Write([]byte("in time")); err != nil {
		t.Fatal(err)
	}
	awaitInput(t, c, len("in time"))
	c.SetReadDeadline(aLongTimeAgo)
	buf := make([]byte, 16)
	if n, err := r.Read(buf); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Read past the deadline: %d, %v; want a deadline's error", n, err)
	}
	if n, err := r.ReadNow(buf); string(buf[:n]) != "in time" || err != nil {
		t.Fatalf("ReadNow past the deadline: %q, %v; want in time", buf[:n], err)
	}
	n, err := r.ReadNow(buf)
	if o := outcomeOf(c, n, err); o.n != 0 || !o.timeout || o.text != "read tcp LOCAL->REMOTE: i/o timeout" {
		t.Fatalf("ReadNow of nothing: %+v, want a read's i/o timeout", o)
	}
	peer.CloseWrite()
	awaitInput(t, c, 0)
	if n, err := r.ReadNow(buf); n != 0 || !errors.Is(err, io.EOF) {
		t.Fatalf("ReadNow after the peer's close: %d, %v; want EOF", n, err)
	}

	pc, pp := net.Pipe()
	t.Cleanup(func() { pc.Close(); pp.Close() })
	go pp.Write([]byte("x"))
	if n, err := newRawSocket(pc).ReadNow(buf); n != 0 || !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("ReadNow without a file descriptor: %d, %v; want a deadline's error", n, err)
	}
}

// TestRawSocketNoWait: with noWait, a Read of an empty socket returns
// errWouldWait at once, and one with bytes there, or past its deadline,
// answers as it does without it.
func TestRawSocketNoWait(t *testing.T) {
	c, peer := tcpPair(t)
	r := newRawSocket(c)
	r.noWait = true
	buf := make([]byte, 16)
	if n, err := r.Read(buf); n != 0 || !errors.Is(err, errWouldWait) {
		t.Fatalf("Read of an empty socket with noWait: %d, %v; want errWouldWait", n, err)
	}
	if _, err := peer.Write([]byte("came")); err != nil {
		t.Fatal(err)
	}
	awaitInput(t, c, len("came"))
	if n, err := r.Read(buf); string(buf[:n]) != "came" || err != nil {
		t.Fatalf("Read with noWait of a socket holding bytes: %q, %v; want came", buf[:n], err)
	}
	c.SetReadDeadline(aLongTimeAgo)
	if n, err := r.Read(buf); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Read with noWait past the deadline: %d, %v; want a deadline's error", n, err)
	}
}
