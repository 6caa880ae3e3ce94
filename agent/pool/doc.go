// Package pool runs one AppGroup's pool of worker processes on one node:
// it routes each request to the least-busy ready worker or queues it,
// grows the pool while requests wait and shrinks it when workers idle,
// recycles workers, replaces crashed ones, performs rolling and blocking
// restarts, and resists deployment errors.
//
// The decisions are pure and table-tested on their own: the per-worker
// state machine (state.go) and what the pool should spawn, stop or recycle
// given its counts and clock (decide.go). Pool (pool.go) holds the state
// under one mutex and carries the decisions out with package spawn; the
// restart procedures are in restart.go.
//
// The request path (Acquire, Release) takes the pool's mutex once each and
// allocates nothing unless the request has to wait in the queue. A waiting
// request is handed its worker directly by Release, in FIFO order, so a
// freed worker never sits idle while requests wait.
//
// Deployment errors versus scaling errors: a spawn that fails during a
// rolling restart, for a revision with no ready worker in the pool yet, is a
// deployment error; with resistDeploymentErrors the pool freezes (no spawn,
// no idle cleaning; memory-limit shutdowns still happen) until a new
// revision is requested. Any other failed spawn (scaling up, replacing a
// crashed worker, a revision that already serves) is a scaling error: the
// pool backs off exponentially and reports it, but does not freeze.
package pool
