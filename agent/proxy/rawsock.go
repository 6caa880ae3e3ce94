package proxy

import (
	"errors"
	"io"
	"net"
	"os"
	"sync/atomic"
	"syscall"
)

// rawSocket reads and writes a connection's socket with raw system calls
// under its RawConn: the client's connections (sendConn) and the workers'
// (workerConn), which carry every byte of a request and its answer.
//
// Why: net's Read and Write tell the runtime they enter a system call
// (entersyscall), and an entry while every P was idle wakes the runtime's
// monitor thread (sysmon), which then polls every 20 µs while the
// requests keep coming, to take Ps from goroutines stuck in system calls.
// Under the proxy benchmark's load on 2 cores that cost the agent a tenth
// of its CPU: sysmon's wake-ups and sleeps (a nanosleep per 5 requests,
// futex calls) and the context switches they made. These system calls
// never block: net makes every socket it opens non-blocking, and a read or
// write that would wait returns EAGAIN, on which RawConn waits in the
// poller as net does. So the runtime need not be told; it sees a goroutine
// run a few µs longer. With them raw, sysmon sleeps. Under the proxy
// scenario's 16 clients (profagent, perf stat), per request: the agent's
// CPU went from 18.4–20.4 µs to 16.4–17.3 µs, its context switches from
// 0.65 to 0.43, its nanosleeps from 0.19 to none, futex calls from 0.26
// to 0.17 (docs/benchmarks.md has the scenario's rates).
//
// It behaves as net.Conn's Read and Write do (EOF, deadlines, errors as
// *net.OpError around the same causes: TestRawSocketAsNetConn), but one
// Read and one Write at a time: their state is the rawSocket's own, so
// allocating nothing per call. A second one while one is under way (no
// path of the proxy does that, but net.Conn allows it) goes through the
// connection's own method, which waits its turn for the descriptor; so
// does every one on a connection without a file descriptor (net.Pipe in
// tests, a TLS connection), whose users need not tell the two apart.
type rawSocket struct {
	conn net.Conn
	raw  syscall.RawConn // nil without a file descriptor
	// The Read's and the Write's state; each busy flag owns its half.
	readBusy, writeBusy atomic.Bool
	rp, wp              []byte
	rn, wn              int
	rerr, werr          syscall.Errno
	wzero               bool // write(2) wrote nothing and said nothing
	// noWait: Read returns errWouldWait instead of waiting in the poller
	// when the socket is empty (its read(2) said EAGAIN); set and cleared
	// by the reader around one Read (workerConn.readOrFlush).
	noWait          bool
	readFn, writeFn func(fd uintptr) bool // r.read, r.write, made once
	readNowFn       func(fd uintptr)      // r.readNow, made at ReadNow's first call (it is rare)
}

func newRawSocket(c net.Conn) *rawSocket {
	r := &rawSocket{conn: c}
	if sc, ok := c.(syscall.Conn); ok {
		r.raw, _ = sc.SyscallConn()
	}
	r.readFn, r.writeFn = r.read, r.write
	return r
}

// rawRead and rawWrite, one read(2) and write(2) on a non-blocking
// descriptor retried on EINTR (p never empty), are raw system calls
// (rawsock_raw.go), but in a build with the race detector or a sanitizer
// (rawsock_instrumented.go): those see the buffers the kernel fills and
// reads, and the ordering I/O makes between goroutines, only through
// syscall.Read and Write, as they do for net.Conn's.

// read is Read's callback: false (wait for the poller) only on EAGAIN.
func (r *rawSocket) read(fd uintptr) bool {
	n, e := rawRead(fd, r.rp)
	switch e {
	case 0:
		r.rn = n
	case syscall.EAGAIN:
		if !r.noWait {
			return false
		}
		r.rerr = e
	default:
		r.rerr = e
	}
	return true
}

// write is Write's callback: it writes until all is written, an error, or
// EAGAIN (a full socket: wait for room).
func (r *rawSocket) write(fd uintptr) bool {
	for len(r.wp) > 0 {
		n, e := rawWrite(fd, r.wp)
		switch e {
		case 0:
			if n == 0 { // not on a stream socket; net's answer, not a loop
				r.wzero = true
				return true
			}
			r.wn += n
			r.wp = r.wp[n:]
		case syscall.EAGAIN:
			return false
		default:
			r.werr = e
			return true
		}
	}
	return true
}

func (r *rawSocket) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if r.raw == nil || !r.readBusy.CompareAndSwap(false, true) {
		return r.conn.Read(p)
	}
	r.rp, r.rn, r.rerr = p, 0, 0
	err := r.raw.Read(r.readFn)
	n, e := r.rn, r.rerr
	r.rp = nil
	r.readBusy.Store(false)
	switch {
	case err != nil:
		return 0, r.opError("read", err)
	case e == syscall.EAGAIN:
		return 0, errWouldWait
	case e != 0:
		return 0, r.opError("read", os.NewSyscallError("read", e))
	case n == 0:
		return 0, io.EOF
	}
	return n, nil
}

// errWouldWait: a Read with noWait set found the socket empty.
var errWouldWait = errors.New("ferry: the read would wait")

func (r *rawSocket) Write(p []byte) (int, error) {
	if r.raw == nil || !r.writeBusy.CompareAndSwap(false, true) {
		return r.conn.Write(p)
	}
	r.wp, r.wn, r.werr, r.wzero = p, 0, 0, false
	err := r.raw.Write(r.writeFn)
	n, e, zero := r.wn, r.werr, r.wzero
	r.wp = nil
	r.writeBusy.Store(false)
	switch {
	case err != nil:
		return n, r.opError("write", err)
	case e != 0:
		return n, r.opError("write", os.NewSyscallError("write", e))
	case zero:
		return n, r.opError("write", io.ErrUnexpectedEOF)
	}
	return n, nil
}

// ReadNow reads what the socket holds now, without waiting for more and
// whatever the read deadline: a read past its deadline fails even with
// bytes there, and these are the bytes a buffered body's reader takes
// past maxRequestTime (workerConn.readLate). When the socket holds
// nothing, and on a connection without a file descriptor (where it cannot
// look without waiting), it fails as a read past its deadline does: the
// bytes still to come are late.
func (r *rawSocket) ReadNow(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if r.raw == nil || !r.readBusy.CompareAndSwap(false, true) {
		return 0, r.opError("read", os.ErrDeadlineExceeded)
	}
	if r.readNowFn == nil {
		r.readNowFn = r.readNow
	}
	r.rp, r.rn, r.rerr = p, 0, 0
	// Control, not Read: Read fails at once past the deadline, and waits
	// in the poller on EAGAIN; Control only keeps the descriptor open.
	err := r.raw.Control(r.readNowFn)
	n, e := r.rn, r.rerr
	r.rp = nil
	r.readBusy.Store(false)
	switch {
	case err != nil:
		return 0, r.opError("read", err)
	case e == syscall.EAGAIN:
		return 0, r.opError("read", os.ErrDeadlineExceeded)
	case e != 0:
		return 0, r.opError("read", os.NewSyscallError("read", e))
	case n == 0:
		return 0, io.EOF
	}
	return n, nil
}

// readNow is ReadNow's callback: one read(2), which never waits (the
// socket is non-blocking).
func (r *rawSocket) readNow(fd uintptr) {
	r.rn, r.rerr = rawRead(fd, r.rp)
}

// opError is the error net.Conn's method would give: RawConn's own (a
// deadline, a closed connection) come as a "raw-read" or "raw-write"
// *net.OpError, whose cause it keeps.
func (r *rawSocket) opError(op string, err error) error {
	if oe := (*net.OpError)(nil); errors.As(err, &oe) {
		err = oe.Err
	}
	return &net.OpError{Op: op, Net: r.conn.LocalAddr().Network(), Source: r.conn.LocalAddr(), Addr: r.conn.RemoteAddr(), Err: err}
}
