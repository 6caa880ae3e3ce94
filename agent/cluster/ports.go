package cluster

import (
	"fmt"
	"net"
	"sync"
	"time"
)

// The ports the agent's own proxies listen on, by port. A pool's port can
// be taken by the agent itself: by a deleted pool, or the port a pool
// moved off, each serving out the drain delay on it (an AppGroup deleted
// and created again, whose new pool's name is the hashed one while the
// old drains; another AppGroup given the port the manager considers
// free), or by the old port of a pool whose new one is taken. Its
// ListenFailed message then names that pool, not "another process", and
// the waiting pool listens as soon as the listener closes, not at its
// next retry.
//
// Measured with real sockets (TestAgentHeldPort): the port is free once
// the holder's listener is closed, which its drain does first; the
// requests it still finishes do not hold it (Go's listeners set
// SO_REUSEADDR, so their connections, established or in TIME_WAIT, do
// not keep a new listener from binding).

// portHold is a port one of the agent's proxies listens on: the pool, and
// the listener, which releases it as it closes.
type portHold struct {
	rp *runningPool
	ln *heldListener
}

// heldListener is a proxy's listener, which tells the agent once it is
// closed: the port is free from then on.
type heldListener struct {
	net.Listener
	once    sync.Once
	release func()
}

func (l *heldListener) Close() error {
	err := l.Listener.Close()
	l.once.Do(l.release)
	return err
}

// hold records that rp's proxy listens on port with l, and returns the
// listener to serve, which releases the port as it closes.
func (a *Agent) hold(port int32, rp *runningPool, l net.Listener) net.Listener {
	hl := &heldListener{Listener: l}
	hl.release = func() { a.release(port, hl) }
	a.portsMu.Lock()
	a.ports[port] = portHold{rp: rp, ln: hl}
	a.portsMu.Unlock()
	return hl
}

// release forgets that hl holds port, which is free now, and has the
// node's pools waiting for it listen there at once.
func (a *Agent) release(port int32, hl *heldListener) {
	a.portsMu.Lock()
	if h, ok := a.ports[port]; ok && h.ln == hl {
		delete(a.ports, port)
	}
	a.portsMu.Unlock()
	a.mu.Lock()
	waiting := make([]*runningPool, 0, 1)
	for _, rp := range a.pools {
		waiting = append(waiting, rp)
	}
	a.mu.Unlock()
	for _, rp := range waiting {
		if rp.waitsFor(port) && rp.retryListen() {
			rp.wake()
		}
	}
}

// holder is which of the agent's pools holds port, and how (portUse);
// false when none does. waiter is the pool that cannot listen there.
func (a *Agent) holder(port int32, waiter *runningPool) (portUse, bool) {
	a.portsMu.Lock()
	h, ok := a.ports[port]
	a.portsMu.Unlock()
	if !ok {
		return portUse{}, false
	}
	use := portUse{pool: h.rp.key.String(), sameName: h.rp != waiter && h.rp.key == waiter.key,
		drainDelay: a.opts.DrainDelay}
	h.rp.mu.Lock()
	defer h.rp.mu.Unlock()
	switch {
	case h.rp.deleted:
		use.how = heldDeleted
	case h.rp.proxy != nil && h.rp.port == port:
		use.how = heldServing
	case h.rp.prev != nil && h.rp.prevPort == port:
		use.how, use.newPort = heldOldPort, h.rp.port
	default:
		use.how = heldMovedFrom
	}
	return use, true
}

// heldHow is how one of the agent's pools holds a port.
type heldHow int

const (
	heldServing   heldHow = iota // its listen.port, served
	heldOldPort                  // the port it moved from, served until its new one (taken) opens
	heldMovedFrom                // the port it moved from, served out the drain delay
	heldDeleted                  // the pool is deleted, and serves out the drain delay
)

// portUse is one of the agent's pools that holds a port, for the
// ListenFailed message of another.
type portUse struct {
	pool     string // namespace/name
	sameName bool   // an earlier pool of the waiting pool's name
	how      heldHow
	newPort  int32 // heldOldPort: the port it moves to
	// drainDelay is the agent's (--drain-delay), which heldMovedFrom and
	// heldDeleted serve out.
	drainDelay time.Duration
}

// advice says whose port is and what to do, for the ListenFailed message
// of a pool that cannot listen on port. Pure.
func (u portUse) advice(port int32) string {
	who := "this agent's pool " + u.pool
	if u.sameName {
		who = "this agent's earlier pool of this name, " + u.pool
	}
	const waits = "this pool listens there as soon as it is released; nothing to do"
	delay := fmt.Sprintf("for the drain delay (--drain-delay, agent.drainDelay in the chart: %s)", u.drainDelay)
	switch u.how {
	case heldDeleted:
		return fmt.Sprintf("port %d is still held by %s, deleted, which serves on there %s before it drains: %s",
			port, who, delay, waits)
	case heldMovedFrom:
		return fmt.Sprintf("port %d is still held by %s, which moved off it and serves on there %s: %s",
			port, who, delay, waits)
	case heldOldPort:
		return fmt.Sprintf("port %d is still served by %s, whose new listen.port %d is taken: it serves on %d until %d is free; choose another listen.port",
			port, who, u.newPort, port, u.newPort)
	}
	return fmt.Sprintf("port %d is the listen.port of %s: two pools on a node cannot share a port; choose another listen.port",
		port, who)
}
