package proxy

import (
	"net"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// A client that stops reading its response (or never reads it) blocks the
// proxy's write to it once the socket's buffers are full: the write would
// wait forever, holding the connection's goroutine and buffers, and, for a
// response that streams, its worker. nginx's send_timeout bounds the time
// between two writes that make progress; Options.SendTimeout bounds the
// time a write goes without the client taking any of it.
//
// Go offers deadlines, which bound a whole write rather than its progress,
// and moving one costs a timer update per write. Instead every client
// connection is a sendConn, which counts its writes under way and their
// bytes (an atomic add on entry and exit, and one per 64 KiB piece), and
// one watchdog goroutine per Server looks at them every quarter of
// SendTimeout, and at least once a second, so that a close comes at most
// a look or two late whatever the timeout. A write blocked since the last
// look has made progress when its socket's send queue changed (the client
// acknowledged bytes, or the write queued more: one ioctl per blocked
// connection per look). One that made none for SendTimeout is closed, and
// its write fails as any failed write to a client does (a worker it held
// is freed). Both servers' connections are sendConns, upgraded (WebSocket)
// ones included (TLS ones are not: the agent serves none), and the
// watchdog outlives a Shutdown that gave up until the last is closed.

// sendChunk is the most a sendConn writes at once: a write's bytes count
// as progress when it returns, so a large one is cut into pieces that a
// slow but reading client takes well within SendTimeout. That backs up the
// send queue's reading, which may be the same at two looks while a full
// buffer is acknowledged and refilled, and is all there is for a
// connection without a file descriptor.
const sendChunk = 64 << 10

// sendConn is a client connection whose writes the send watchdog sees.
type sendConn struct {
	net.Conn
	s        *Server
	rs       *rawSocket    // its reads and writes; rs.raw, for the send queue, nil without a file descriptor
	writing  atomic.Int32  // writes under way (one, but a count holds for more)
	progress atomic.Uint64 // bytes written
	closed   sync.Once     // Close's, from any goroutine
	// The watchdog's own: the progress and send queue it last saw move,
	// and when.
	seen   uint64
	queued int
	since  time.Time
}

func (c *sendConn) Write(p []byte) (int, error) {
	c.writing.Add(1)
	defer c.writing.Add(-1)
	written := 0
	for len(p) > 0 {
		n, err := c.rs.Write(p[:min(len(p), sendChunk)])
		written += n
		c.progress.Add(uint64(n))
		if err != nil {
			return written, err
		}
		p = p[n:]
	}
	return written, nil
}

// Read reads the connection with raw system calls (rawSocket) when it can.
func (c *sendConn) Read(p []byte) (int, error) { return c.rs.Read(p) }

// Close forgets the connection: the watchdog looks at open ones only.
func (c *sendConn) Close() error {
	c.closed.Do(func() { c.s.unwatchSend(c) })
	return c.Conn.Close()
}

// CloseWrite half-closes the connection (net/http's and the front end's
// graceful close), as the connection it wraps does.
func (c *sendConn) CloseWrite() error { return closeWrite(c.Conn) }

// closeWrite half-closes c when it can (a TCP connection); nil otherwise.
func closeWrite(c net.Conn) error {
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// watchSend makes c a sendConn the watchdog looks at, starting the
// watchdog when none runs (it ends when no connection is left).
func (s *Server) watchSend(c net.Conn) *sendConn {
	sc := &sendConn{Conn: c, s: s, queued: -1, rs: newRawSocket(c)}
	s.sendMu.Lock()
	defer s.sendMu.Unlock()
	if s.sendDone {
		return sc
	}
	if s.sending == nil {
		s.sending = make(map[*sendConn]struct{})
		go s.sendWatchdog()
	}
	s.sending[sc] = struct{}{}
	return sc
}

func (s *Server) unwatchSend(c *sendConn) {
	s.sendMu.Lock()
	delete(s.sending, c)
	s.sendMu.Unlock()
}

// stopSendWatchdog has no watchdog start again (Shutdown). One running
// goes on until the last connection is closed: a Shutdown that gave up
// may leave some, which must still be cut off.
func (s *Server) stopSendWatchdog() {
	s.sendMu.Lock()
	defer s.sendMu.Unlock()
	s.sendDone = true
}

// sendTick is how often the watchdog looks: every quarter of SendTimeout,
// and at least once a second (at most every 10 ms).
func sendTick(timeout time.Duration) time.Duration {
	return min(max(timeout/4, 10*time.Millisecond), time.Second)
}

func (s *Server) sendWatchdog() {
	tick := time.NewTicker(sendTick(s.opts.SendTimeout))
	defer tick.Stop()
	for now := range tick.C {
		if !s.checkSends(now) {
			return
		}
	}
}

// checkSends cuts off the connections whose write made no progress for
// SendTimeout, and reports whether the watchdog is still needed.
func (s *Server) checkSends(now time.Time) bool {
	var stalled []*sendConn
	s.sendMu.Lock()
	for c := range s.sending {
		if c.moved(now) {
			continue
		}
		if now.Sub(c.since) >= s.opts.SendTimeout {
			stalled = append(stalled, c)
		}
	}
	needed := len(s.sending) > 0
	if !needed {
		s.sending = nil // the next connection starts a watchdog again (none after Shutdown)
	}
	s.sendMu.Unlock()
	for _, c := range stalled {
		// Closed, not given a past write deadline: the write may finish
		// meanwhile, and the connection must not take another request.
		_ = c.Close()
		s.opts.Log.Info("Closed a client connection that took none of its response for the send timeout",
			"client", c.RemoteAddr().String(), "sendTimeout", s.opts.SendTimeout)
	}
	return needed
}

// moved reports whether c is not in a write, or its write made progress
// since the watchdog last looked (and notes when it last did). Under
// sendMu: only the watchdog calls it.
func (c *sendConn) moved(now time.Time) bool {
	p := c.progress.Load()
	if c.writing.Load() == 0 || p != c.seen || c.since.IsZero() {
		c.seen, c.queued, c.since = p, -1, now
		return true
	}
	if q := c.sendQueue(); q != c.queued {
		c.queued, c.since = q, now
		return q >= 0
	}
	return false
}

// sendQueue is the bytes in the socket's send queue not yet acknowledged
// by the client, or -1 when it cannot be read.
func (c *sendConn) sendQueue() int {
	if c.rs.raw == nil {
		return -1
	}
	q := -1
	_ = c.rs.raw.Control(func(fd uintptr) {
		if n, err := unix.IoctlGetInt(int(fd), unix.SIOCOUTQ); err == nil {
			q = n
		}
	})
	return q
}
