package pool

import "testing"

func TestWaitQueueFIFOWithCancel(t *testing.T) {
	var q waitQueue
	ws := make([]*waiter, 200)
	for i := range ws {
		ws[i] = &waiter{}
		q.push(ws[i])
	}
	for i := 0; i < 200; i += 3 {
		q.cancel(ws[i])
		q.cancel(ws[i]) // twice is harmless
	}
	if want := 200 - 67; q.n != want {
		t.Fatalf("n = %d, want %d", q.n, want)
	}
	for i := range ws {
		if i%3 == 0 {
			continue
		}
		if got := q.pop(); got != ws[i] {
			t.Fatalf("pop %d returned the wrong waiter", i)
		}
	}
	if q.pop() != nil || q.n != 0 || len(q.items) != 0 {
		t.Fatalf("queue not empty: n=%d items=%d", q.n, len(q.items))
	}
	w := &waiter{}
	q.push(w)
	if q.pop() != w {
		t.Fatal("queue unusable after draining")
	}
}
