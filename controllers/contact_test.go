package controllers

import (
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	ferryv1 "github.com/ferry-dev/ferry/api/v1alpha1"
)

// TestHearingFrom: a silence is counted from when contact came back only
// for an agent that was within the bound when the outage began; from when
// the manager began only for one the status vouched for.
func TestHearingFrom(t *testing.T) {
	outage := hearing{since: t0, lost: t0.Add(-time.Minute)}
	leader := hearing{began: t0, vouched: true}
	notVouched := hearing{began: t0}
	// Began, vouched, then lost contact 30s later and back at 90s.
	leaderOutage := hearing{began: t0, vouched: true, lost: t0.Add(30 * time.Second), since: t0.Add(90 * time.Second)}
	for _, tt := range []struct {
		name string
		h    hearing
		last time.Time
		want time.Time
	}{
		{"no outage seen", hearing{}, t0.Add(-time.Hour), t0.Add(-time.Hour)},
		{"alive when the outage began", outage, t0.Add(-70 * time.Second), t0},
		{"at the bound when it began", outage, t0.Add(-100 * time.Second), t0},
		{"past the bound when it began", outage, t0.Add(-101 * time.Second), t0.Add(-101 * time.Second)},
		{"seen since contact came back", outage, t0.Add(time.Second), t0.Add(time.Second)},
		{"vouched, last seen before the manager began", leader, t0.Add(-time.Hour), t0},
		{"vouched, seen since the manager began", leader, t0.Add(time.Second), t0.Add(time.Second)},
		{"not vouched, last seen before the manager began", notVouched, t0.Add(-time.Hour), t0.Add(-time.Hour)},
		{"vouched, in its grace when an outage began", leaderOutage, t0.Add(-time.Hour), t0.Add(90 * time.Second)},
	} {
		if got := tt.h.from(tt.last, staleAfter); !got.Equal(tt.want) {
			t.Errorf("%s: from = %s, want %s", tt.name, got, tt.want)
		}
	}
}

// TestNewLeaderJudgesAgentsByTheStatus: a manager that began at t0 (a new
// leader) judges an agent whose last sign is older than that from t0 when
// the AppGroup's status, as it found it, vouched for its agents (Ready
// True); by its last sign when the status did not (its predecessor judged
// an agent silent, or the status says nothing of them).
func TestNewLeaderJudgesAgentsByTheStatus(t *testing.T) {
	ready := func(status metav1.ConditionStatus, reason string) *ferryv1.AppGroupStatus {
		return &ferryv1.AppGroupStatus{Conditions: []metav1.Condition{{Type: ferryv1.ConditionReady, Status: status, Reason: reason}}}
	}
	fine := ready(metav1.ConditionTrue, ferryv1.ReasonProcessesReady)
	silent := ready(metav1.ConditionUnknown, ferryv1.ReasonAgentNotReporting)
	notReady := ready(metav1.ConditionFalse, ferryv1.ReasonProcessesNotReady)
	pending := ready(metav1.ConditionFalse, ferryv1.ReasonPoolsPending)
	longAgo := t0.Add(-2 * staleAfter)
	for _, tt := range []struct {
		name    string
		status  *ferryv1.AppGroupStatus
		renewed time.Time
		now     time.Time
		stale   bool
	}{
		{"ready, renewed long ago, in the grace", fine, longAgo, t0.Add(staleAfter), false},
		{"ready, renewed long ago, past the grace", fine, longAgo, t0.Add(staleAfter + time.Second), true},
		{"ready, renewed since the start, past the grace", fine, t0.Add(10 * time.Second), t0.Add(staleAfter + time.Second), false},
		{"ready, renewed just before the start, at the start", fine, t0.Add(-time.Second), t0, false},
		{"not reporting, renewed long ago, at the start", silent, longAgo, t0, true},
		{"not reporting, renewed since the start", silent, t0.Add(time.Second), t0.Add(2 * time.Second), false},
		{"not ready (silence unsaid), renewed long ago", notReady, longAgo, t0, true},
		{"pending (silence hidden), renewed long ago", pending, longAgo, t0, true},
		{"no status, renewed long ago", &ferryv1.AppGroupStatus{}, longAgo, t0, true},
		{"no status, renewed within the bound", &ferryv1.AppGroupStatus{}, t0.Add(-time.Second), t0.Add(staleAfter - 2*time.Second), false},
	} {
		h := hearing{began: t0, vouched: statusVouches(tt.status)}
		if got := tt.now.Sub(h.from(tt.renewed, staleAfter)) > staleAfter; got != tt.stale {
			t.Errorf("%s: stale = %v, want %v", tt.name, got, tt.stale)
		}
	}
}
