package proxy

import "sync/atomic"

// Budget is an amount of bytes shared by an agent's proxies: of memory,
// what their buffered responses may hold at once (Options.ResponseMemory);
// of disk, what their buffered request bodies may (Options.RequestDisk).
// Taking is a compare-and-swap, giving an atomic add: a budget is checked
// once per buffered response and once per file write of a buffered body.
type Budget struct{ left atomic.Int64 }

// NewBudget is a budget of n bytes.
func NewBudget(n int64) *Budget {
	b := &Budget{}
	b.left.Store(n)
	return b
}

// Left is what is not taken.
func (b *Budget) Left() int64 { return b.left.Load() }

// take takes n bytes, if that many are left; a nil budget has no bound.
func (b *Budget) take(n int64) bool {
	if b == nil {
		return true
	}
	for {
		left := b.left.Load()
		if left < n {
			return false
		}
		if b.left.CompareAndSwap(left, left-n) {
			return true
		}
	}
}

func (b *Budget) give(n int64) {
	if b != nil && n > 0 {
		b.left.Add(n)
	}
}
