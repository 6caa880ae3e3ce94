package controllers

import (
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	clocktesting "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"
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

// TestSignsReadersHoldingOtherCopies: a pass reads the sighting; a copy
// it holds older than the last seen is not a new write (a review found a
// dead agent's node served 40 s longer when passes recorded theirs), and
// one never seen is taken at its word, capped at now.
func TestSignsReadersHoldingOtherCopies(t *testing.T) {
	t0 := time.Date(2026, 12, 6, 3, 0, 0, 0, time.UTC)
	clk := clocktesting.NewFakePassiveClock(t0)
	s := newSigns(clk)
	s.saw("a", t0.Add(-10*time.Second)) // R1, first seen: its word
	clk.SetTime(t0.Add(time.Second))
	s.saw("a", t0.Add(-5*time.Second)) // R2: seen now
	clk.SetTime(t0.Add(40 * time.Second))
	if got := s.at("a", t0.Add(-10*time.Second)); !got.Equal(t0.Add(time.Second)) {
		t.Errorf("a pass holding R1 after R2 was seen: %s, want when R2 was seen (%s)", got, t0.Add(time.Second))
	}
	if got := s.saw("a", t0.Add(-5*time.Second)); !got.Equal(t0.Add(time.Second)) {
		t.Errorf("R2 seen again: %s, want when it was first seen", got)
	}
	if got := s.at("b", t0.Add(time.Hour)); !got.Equal(t0.Add(40 * time.Second)) {
		t.Errorf("a sign never seen, stamped ahead: %s, want now", got)
	}
	if got := s.at("b", t0.Add(-time.Hour)); !got.Equal(t0.Add(-time.Hour)) {
		t.Errorf("a sign never seen, stamped behind: %s, want its stamp", got)
	}
}

// TestTwoLeasesOfOneHolderDoNotTakeTurns: two Leases naming one node, one
// of them no longer renewed, are judged by the later renewal; checks that
// find neither changed do not make the node look renewed.
func TestTwoLeasesOfOneHolderDoNotTakeTurns(t *testing.T) {
	t0 := time.Date(2026, 12, 6, 3, 0, 0, 0, time.UTC)
	clk := clocktesting.NewFakePassiveClock(t0)
	w := &leaseWatcher{signs: newSigns(clk)}
	lease := func(name string, renewed time.Time) coordinationv1.Lease {
		return coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Namespace: "ferry-system", Name: name},
			Spec: coordinationv1.LeaseSpec{HolderIdentity: ptr.To("node-a"), RenewTime: ptr.To(metav1.NewMicroTime(renewed))}}
	}
	leases := []coordinationv1.Lease{lease("ferry-agent-node-a", t0.Add(-time.Second)), lease("stray", t0.Add(-time.Minute))}
	w.sightRenewals(leases)
	clk.SetTime(t0.Add(2 * time.Second))
	leases[0] = lease("ferry-agent-node-a", t0.Add(2*time.Second)) // renewed, then the agent dies
	w.sightRenewals(leases)
	for _, d := range []time.Duration{4 * time.Second, 30 * time.Second, time.Minute} {
		clk.SetTime(t0.Add(d))
		if got := w.sightRenewals(leases)["node-a"]; !got.Equal(t0.Add(2 * time.Second)) {
			t.Errorf("at +%s node-a last heard %s, want at its last renewal, +2s", d, got)
		}
	}
	if got := w.signs.at(leaseSign("node-a"), t0); !got.Equal(t0.Add(2 * time.Second)) {
		t.Errorf("a pass reads node-a heard %s, want +2s", got)
	}
	w.sightRenewals(leases[:1])
	if w.signs.seen(leaseObjectSign("ferry-system", "stray"), t0.Add(-time.Minute)) {
		t.Error("a Lease gone is still remembered")
	}
}
