package proxy

import "testing"

func TestBudget(t *testing.T) {
	var unbounded *Budget
	if !unbounded.take(1 << 40) {
		t.Error("a nil budget refused")
	}
	unbounded.give(1) // no panic
	b := NewBudget(100)
	if !b.take(60) || b.take(41) || !b.take(40) || b.take(1) || b.Left() != 0 {
		t.Errorf("takes of 60, 41, 40, 1 from 100: %d left", b.Left())
	}
	b.give(60)
	b.give(0)
	if b.Left() != 60 {
		t.Errorf("after giving back 60: %d left", b.Left())
	}
}
