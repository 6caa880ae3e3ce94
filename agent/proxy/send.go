package proxy

import (
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// A client that stops reading its response (or never reads it) blocks the
// proxy's write to it once the socket's buffers are full: the write would
// wait forever, holding the connection's goroutine and buffers, and, for a
// response that streams, its worker. nginx's send_timeout bounds the time
// between two writes that make progress; so does Options.SendTimeout here.
//
// Go offers deadlines, which bound a whole write rather than its progress,
// and moving one costs a timer update per write. Instead every client
// connection is a sendConn, which marks its writes and counts their bytes
// (two atomic stores and an add), and one watchdog goroutine per Server
// looks at them a few times per SendTimeout: a connection whose write has
// moved no byte for SendTimeout gets a write deadline in the past, and the
// write fails as any failed write to a client does (the connection is
// closed, a worker it held is freed). Both servers' connections are
// sendConns, upgraded (WebSocket) ones included.

// sendChunk is the most a sendConn writes at once: a write's bytes count
// as progress when it returns, so a large one is cut into pieces that a
// slow but reading client takes well within SendTimeout.
const sendChunk = 64 << 10

// sendConn is a client connection whose writes the send watchdog sees.
type sendConn struct {
	net.Conn
	s        *Server
	writing  atomic.Bool
	progress atomic.Uint64 // bytes written
	// The watchdog's own: the progress it last saw move, and when.
	seen  uint64
	since time.Time
	// stalled: the watchdog cut it off (it does so once).
	stalled bool
	closed  sync.Once
}

func (c *sendConn) Write(p []byte) (int, error) {
	c.writing.Store(true)
	defer c.writing.Store(false)
	written := 0
	for len(p) > 0 {
		n, err := c.Conn.Write(p[:min(len(p), sendChunk)])
		written += n
		c.progress.Add(uint64(n))
		if err != nil {
			return written, err
		}
		p = p[n:]
	}
	return written, nil
}

// Close forgets the connection: the watchdog looks at open ones only.
func (c *sendConn) Close() error {
	c.closed.Do(func() { c.s.unwatchSend(c) })
	return c.Conn.Close()
}

// CloseWrite half-closes the connection (net/http's and the front end's
// graceful close), as the connection it wraps does.
func (c *sendConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// watchSend makes c a sendConn the watchdog looks at, starting the
// watchdog with the first one.
func (s *Server) watchSend(c net.Conn) *sendConn {
	sc := &sendConn{Conn: c, s: s}
	s.sendMu.Lock()
	defer s.sendMu.Unlock()
	if s.sendDone {
		return sc
	}
	if s.sending == nil {
		s.sending = make(map[*sendConn]struct{})
		s.sendStop = make(chan struct{})
		go s.sendWatchdog(s.sendStop)
	}
	s.sending[sc] = struct{}{}
	return sc
}

func (s *Server) unwatchSend(c *sendConn) {
	s.sendMu.Lock()
	delete(s.sending, c) // a no-op on the nil map after Shutdown
	s.sendMu.Unlock()
}

// stopSendWatchdog ends the watchdog (Shutdown, once no connection is
// left to write to).
func (s *Server) stopSendWatchdog() {
	s.sendMu.Lock()
	defer s.sendMu.Unlock()
	s.sendDone = true
	if s.sendStop != nil {
		close(s.sendStop)
		s.sendStop = nil
		s.sending = nil
	}
}

// sendTick is how often the watchdog looks: four times per SendTimeout,
// and at least once a second.
func sendTick(timeout time.Duration) time.Duration {
	return min(max(timeout/4, 10*time.Millisecond), time.Second)
}

func (s *Server) sendWatchdog(stop <-chan struct{}) {
	tick := time.NewTicker(sendTick(s.opts.SendTimeout))
	defer tick.Stop()
	for {
		select {
		case <-stop:
			return
		case now := <-tick.C:
			s.checkSends(now)
		}
	}
}

// checkSends cuts off the connections whose write moved no byte for
// SendTimeout.
func (s *Server) checkSends(now time.Time) {
	var stalled []*sendConn
	s.sendMu.Lock()
	for c := range s.sending {
		p := c.progress.Load()
		if !c.writing.Load() || p != c.seen || c.since.IsZero() {
			c.seen, c.since = p, now
			continue
		}
		if !c.stalled && now.Sub(c.since) >= s.opts.SendTimeout {
			c.stalled = true
			stalled = append(stalled, c)
		}
	}
	s.sendMu.Unlock()
	for _, c := range stalled {
		s.opts.Log.Info("Closing a client connection that took none of its response for the send timeout",
			"client", c.RemoteAddr().String(), "sendTimeout", s.opts.SendTimeout)
		_ = c.SetWriteDeadline(aLongTimeAgo)
	}
}
