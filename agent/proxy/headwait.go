package proxy

import (
	"net/http"
	"sync"
	"time"
)

// headWait is how long the head of a response that streams to the client
// (chunked, or longer than the proxy buffers) is held back for its body's
// first bytes. Held, it goes out with them, and a worker that fails in
// between (it exits after its head, sends a malformed chunk) leaves
// nothing written: the client gets a 502 naming it, not a head with
// nothing after. Past headWait the head goes out alone: a stream that is
// quiet at first (server-sent events waiting for their first event, a
// long poll) shows the client its head, as nginx and Passenger do at
// once, and a failure after that cuts the answer short.
const headWait = 100 * time.Millisecond

// heldHead sends a response head held in a buffer (send) once headWait
// passed before the body's first read returned. The head's writer is the
// timer's while it may fire, and the caller's again after release.
type heldHead struct {
	mu   sync.Mutex
	done bool // the first read returned: send must not run
	sent bool // send ran
	t    *time.Timer
}

// holdHead starts the wait; only for a body read from a worker as it comes
// (streams): one read in memory returns at once.
func holdHead(send func()) *heldHead {
	h := &heldHead{}
	h.t = time.AfterFunc(headWait, func() {
		h.mu.Lock()
		defer h.mu.Unlock()
		if !h.done {
			send()
			h.sent = true
		}
	})
	return h
}

// release ends the wait, once the body's first read returned, and
// reports whether the head went out alone. A send under way is waited
// for: the head's writer is the caller's again. Again, it does nothing
// more: a deferred call ends the wait also when a read panics.
func (h *heldHead) release() (sent bool) {
	h.mu.Lock()
	h.done = true
	sent = h.sent
	h.mu.Unlock()
	h.t.Stop()
	return sent
}

// streams reports whether resp's body is read from its worker as it comes
// (bufferResponse did not read it whole), and may have to be waited for:
// not one there is none of (a HEAD's, a 204's or 304's, a length of 0),
// whose head would cost a timer, and its allocations, for nothing.
func streams(resp *http.Response) bool {
	b, ok := resp.Body.(*workerBody)
	return ok && b.rc != http.NoBody
}
