package proxy

import (
	"bytes"
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
// once, and a failure after that cuts the answer short. A body already
// in (holdsHead) is not waited for. A variable only so that a test can
// lengthen it (export_test.go): one whose worker fails after its head
// must not depend on the worker's exit coming within 100ms.
var headWait = 100 * time.Millisecond

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

// pauseHold is holdHead for a worker connection's pauses
// (workerConn.readOrFlush), which may come on many of its answers: its
// timer is made at the first and reset at the next, so that a pause
// costs no allocation. Between begin and end, f is flushed once due
// passed. A firing that comes late (it began before end, or was set by
// the hold before) flushes only while a hold is under way, whose reader
// does not touch f, and only once that hold's due passed: a late firing
// of an earlier hold does not end a later one early.
type pauseHold struct {
	mu  sync.Mutex
	f   http.Flusher // nil: no hold under way
	due time.Time
	t   *time.Timer
}

// begin holds f until due, which is wait from now.
func (h *pauseHold) begin(f http.Flusher, due time.Time, wait time.Duration) {
	h.mu.Lock()
	h.f, h.due = f, due
	h.mu.Unlock()
	if h.t == nil {
		h.t = time.AfterFunc(wait, h.fire)
		return
	}
	h.t.Reset(wait)
}

// end ends the hold: f is the caller's again (a flush under way is
// waited for).
func (h *pauseHold) end() {
	h.mu.Lock()
	h.f = nil
	h.mu.Unlock()
	h.t.Stop()
}

func (h *pauseHold) fire() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.f != nil && !time.Now().Before(h.due) {
		h.f.Flush()
		h.f = nil
	}
}

// holdsHead reports whether resp's head is held for its body's first
// bytes: it streams, and they are not in already. A small chunked answer
// whose worker wrote it at once, head and body, would cost a timer and
// its allocations for a read that returns at once (found by review).
func holdsHead(resp *http.Response) bool {
	return streams(resp) && !bodyIn(resp)
}

// bodyIn reports whether the first read of resp's body (a *workerBody)
// returns without waiting for its worker: some of it is in the
// connection's buffer, or, when chunked, all of it (a chunked read that
// has part of it goes on to the next chunk's bytes, and may wait for
// them, once that chunk's size came).
func bodyIn(resp *http.Response) bool {
	b, ok := resp.Body.(*workerBody)
	if !ok || b.c == nil || b.c.br == nil {
		return false
	}
	in, _ := b.c.br.Peek(b.c.br.Buffered())
	if len(resp.TransferEncoding) == 0 {
		return len(in) > 0
	}
	return chunkedWhole(in)
}

// chunkedWhole reports whether b holds a whole chunked body, its trailers
// and their blank line included. Anything it cannot read says no.
func chunkedWhole(b []byte) bool {
	for {
		line, rest, ok := bytes.Cut(b, []byte{'\n'})
		if !ok {
			return false
		}
		size, ok := chunkSize(line)
		if !ok {
			return false
		}
		b = rest
		if size == 0 {
			break
		}
		if uint64(len(b)) < size+2 { // its data, and their CRLF
			return false
		}
		b = b[size+2:]
	}
	// The trailers, to their blank line, as net/http's reader looks for
	// it: a CRLF at once, or a CRLF CRLF further on. Trailers ended by a
	// bare LF have it wait for more bytes, which may never come.
	return bytes.HasPrefix(b, []byte("\r\n")) || bytes.Contains(b, []byte("\r\n\r\n"))
}

// chunkSize reads a chunk's size line (without its LF), extension and
// all; false when it is no hexadecimal size of 15 digits at most.
func chunkSize(line []byte) (uint64, bool) {
	line, _, _ = bytes.Cut(line, []byte{';'})
	line = bytes.TrimRight(line, " \t\r")
	if len(line) == 0 || len(line) > 15 {
		return 0, false
	}
	var n uint64
	for _, c := range line {
		switch {
		case '0' <= c && c <= '9':
			n = n<<4 | uint64(c-'0')
		case 'a' <= c && c <= 'f':
			n = n<<4 | uint64(c-'a'+10)
		case 'A' <= c && c <= 'F':
			n = n<<4 | uint64(c-'A'+10)
		default:
			return 0, false
		}
	}
	return n, true
}

// streams reports whether resp's body is read from its worker as it comes
// (bufferResponse did not read it whole), and may have to be waited for:
// not one there is none of (a HEAD's, a 204's or 304's, a length of 0),
// whose head would cost a timer, and its allocations, for nothing.
func streams(resp *http.Response) bool {
	b, ok := resp.Body.(*workerBody)
	return ok && b.rc != http.NoBody
}
