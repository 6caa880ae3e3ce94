// Package cluster is the agent's cluster mode: it runs, on one node, the
// ProcessPools the manager assigned to that node, with the same pool and
// proxy code as the standalone mode, and reports each pool's status.
//
// Watching: only the ProcessPools of this node, selected by spec.nodeName
// (a selectable field of the CRD; immutable), whatever their
// ferry.dev/node label, through a cache that retries its list and watch
// for as long as the API server is away; it never gives up and never
// exits. A pool whose label is missing or names another node runs as any
// other; the agent says so once (noteLabel), as the label is the
// manager's to keep.
//
// Reporting: the status of each pool (address, observed revision, the
// per-process table, counts, restart progress, the deployment error being
// resisted, conditions, heartbeat) is patched when its state changes (at
// once, coalescing changes within 100ms) and otherwise every stats
// interval with fresh CPU and memory figures (an unchanged status every
// status report interval): stats go out at a bounded rate, state changes
// do not wait. The agent's liveness is its node's Lease, renewed every
// heartbeat interval, not these writes. A failed write is retried with backoff;
// the pools keep serving meanwhile.
//
// Listening: each pool's proxy listens on the pool's listen.port. A port
// that is taken is reported (Ready False, ListenFailed) and tried again
// every half heartbeat interval; one that another of the agent's pools
// holds (deleted, or moved off it, serving out the drain delay) is named
// with that pool, and taken as soon as its listener closes (ports.go).
// A moved port is opened first; the old
// one serves on for the drain delay (the manager moves the node's
// endpoint once the status shows the new port), then drains. While the
// new one is taken, the old one serves on, and the status says so:
// status.listenPort is the new port, status.address the old one's, and
// Ready's message names both.
//
// Surviving the API server: the agent saves every pool's spec in its state
// directory. Started while the API server is down, it resumes those pools
// from disk and serves them; once the API server answers, it reconciles
// with what the API says (pools deleted meanwhile are stopped).
//
// Deleting: a deleted pool (the manager's ferry.dev/drain finalizer holds
// it) is drained (in-flight requests finish, workers stop) and then the
// finalizer is removed.
package cluster
