package controllers

import (
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"
)

// TestSignsTimeByWhenSeen: a stamp is timed by when the manager saw it
// replace another, whatever the agent's clock says; the first seen is
// taken at its word, but not later than now.
func TestSignsTimeByWhenSeen(t *testing.T) {
	t0 := time.Date(2026, 12, 6, 3, 0, 0, 0, time.UTC)
	clk := clocktesting.NewFakePassiveClock(t0)
	s := newSigns(clk)
	steps := []struct {
		name  string
		now   time.Time
		key   string
		stamp time.Time
		want  time.Time
	}{
		{"first seen, in the past: its word", t0, "a", t0.Add(-time.Hour), t0.Add(-time.Hour)},
		{"the same stamp later: when it was first seen", t0.Add(time.Minute), "a", t0.Add(-time.Hour), t0.Add(-time.Hour)},
		{"a new stamp, 45s behind: now", t0.Add(2 * time.Minute), "a", t0.Add(-45 * time.Second), t0.Add(2 * time.Minute)},
		{"first seen, an hour ahead: now", t0, "b", t0.Add(time.Hour), t0},
		{"no report yet", t0, "c", time.Time{}, time.Time{}},
		{"the first report after none: now", t0.Add(time.Second), "c", t0.Add(-time.Hour), t0.Add(time.Second)},
		{"unchanged an hour on: still when seen", t0.Add(time.Hour), "c", t0.Add(-time.Hour), t0.Add(time.Second)},
	}
	for _, st := range steps {
		clk.SetTime(st.now)
		if got := s.saw(st.key, st.stamp); !got.Equal(st.want) {
			t.Errorf("%s: saw %s, want %s", st.name, got, st.want)
		}
	}
	s.forget("a")
	clk.SetTime(t0.Add(time.Hour))
	if got := s.saw("a", t0.Add(-45*time.Second)); !got.Equal(t0.Add(-45 * time.Second)) {
		t.Errorf("a forgotten sign seen again: %s, want its stamp (first seen)", got)
	}
	var none *signs
	if got := none.saw("a", t0); !got.Equal(t0) {
		t.Errorf("nil signs: %s, want the stamp", got)
	}
}
