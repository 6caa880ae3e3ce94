package proxy

import (
	"errors"
	"net"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"

	"github.com/ferry-dev/ferry/agent/pool"
)

// upgradedConn is the body of a 101 response: the connection itself, both
// ways, starting with what the head's reader already buffered.
// ReverseProxy copies the tunnel through it, a goroutine each way; it
// counts the bytes each way, and logs the tunnel when its worker's side
// ends as the agent stopped the worker (cut): no answer is left to fail,
// so no "Request failed in a worker" line comes for it.
type upgradedConn struct {
	c *workerConn
	// toWorker and fromWorker count the tunnel's bytes, each written by
	// its own copy and read by the other's end.
	toWorker, fromWorker atomic.Int64
	ended                atomic.Bool // the first end was seen
	// watched: the fields below were set (Server.recordStatus, before
	// the copy began), and a cut is logged.
	watched bool
	log     logr.Logger
	worker  *pool.Worker
	path    string
	opened  time.Time // the 101
}

func (u *upgradedConn) Read(p []byte) (int, error) {
	n, err := u.c.br.Read(p)
	return u.count(&u.fromWorker, n, err)
}

func (u *upgradedConn) Write(p []byte) (int, error) {
	n, err := u.c.Conn.Write(p)
	return u.count(&u.toWorker, n, err)
}

// count adds n to one way's bytes, and takes err as the tunnel's end.
func (u *upgradedConn) count(way *atomic.Int64, n int, err error) (int, error) {
	way.Add(int64(n))
	if err != nil {
		u.end(err)
	}
	return n, err
}

func (u *upgradedConn) Close() error { return u.c.Close() }

// watch has u log its cut, as the request to path at w, with log.
func (u *upgradedConn) watch(log logr.Logger, w *pool.Worker, path string) {
	u.watched, u.log, u.worker, u.path, u.opened = w != nil, log, w, path, time.Now()
}

// end takes the tunnel's first failed read or write on the worker's
// side, err (its close: EOF, a reset), and logs it when the agent
// stopped the worker (pool.Worker.StoppedBy, read once as the proxy's
// other lines read it): a rolling restart's shutdownTimeout, the pool's
// close, another request's maxRequestTime. The proxy's own close (the
// client's side ended first, net.ErrClosed) is no cut.
func (u *upgradedConn) end(err error) {
	if !u.watched || errors.Is(err, net.ErrClosed) || u.ended.Swap(true) {
		return
	}
	by := u.worker.StoppedBy()
	if by == "" {
		return
	}
	u.log.Info("Upgraded connection (WebSocket) cut: the agent stopped the worker process under it; its client has to reconnect",
		"pid", u.worker.PID(), "path", pool.LoggedPath(u.path), "stoppedBy", by,
		"openFor", time.Since(u.opened).Round(10*time.Millisecond).String(),
		"bytesToWorker", u.toWorker.Load(), "bytesFromWorker", u.fromWorker.Load())
}
