package proxy

import (
	"net"
	"net/http"
	"testing"
	"time"
)

// HoldHeadsFor makes the proxy hold a streamed answer's head for its
// body's first bytes up to d (headWait) until the test ends. Set before
// the test starts a pool: the proxy reads it per answer.
func HoldHeadsFor(t testing.TB, d time.Duration) {
	old := headWait
	headWait = d
	t.Cleanup(func() { headWait = old })
}

// HandedOff is how many connections the front end gave net/http.
func HandedOff(s *Server) int64 { return s.handedOff.Load() }

// WatchAfter is how long a request waits before its client is watched.
const WatchAfter = watchAfter

// BreakIdleConnection gives a worker's transport an idle connection whose
// writes fail at once with nothing sent, as one does whose worker reset it
// between the peek that found it open and the request's write (the peek
// is skipped: the connection has no file descriptor).
func BreakIdleConnection(rt http.RoundTripper) {
	a, b := net.Pipe()
	_ = b.Close()
	rt.(*workerTransport).put(newWorkerConn(a), time.Now())
}
