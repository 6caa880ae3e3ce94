package pool

// waiter is a request waiting for a worker.
type waiter struct {
	ch       chan grant // buffered(1): receives exactly one grant
	granted  bool       // a grant was sent (guarded by the pool's mutex)
	canceled bool       // gave up (timeout, client gone)
	key      RequestKey // the request's (takeLocked)
}

// grant is a worker for a waiting request, or why there will be none.
type grant struct {
	w   *Worker
	err error
}

// waitQueue is a FIFO of waiters. A waiter that gives up is only marked
// canceled and skipped by pop, so cancel is O(1); n counts the live ones.
type waitQueue struct {
	items []*waiter
	head  int
	n     int
}

func (q *waitQueue) push(w *waiter) {
	q.items = append(q.items, w)
	q.n++
}

// pop returns the oldest waiter still waiting, or nil.
func (q *waitQueue) pop() *waiter {
	for q.head < len(q.items) {
		w := q.items[q.head]
		q.items[q.head] = nil
		q.head++
		if !w.canceled {
			q.n--
			q.compact()
			return w
		}
	}
	q.compact()
	return nil
}

func (q *waitQueue) cancel(w *waiter) {
	if !w.canceled && !w.granted {
		w.canceled = true
		q.n--
	}
}

// compact reuses the slice once it has drained, or moves the live tail to
// the front when the dead head outweighs it.
func (q *waitQueue) compact() {
	switch {
	case q.head == len(q.items):
		q.items, q.head = q.items[:0], 0
	case q.head > 64 && q.head > len(q.items)/2:
		n := copy(q.items, q.items[q.head:])
		clear(q.items[n:])
		q.items, q.head = q.items[:n], 0
	}
}
