package standalone

import (
	"context"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	ferryv1 "github.com/ferry-dev/ferry/api/v1alpha1"
)

// TestConditionTimesAreTransitions: a condition's lastTransitionTime in
// status is when its status last changed, not when status was asked for.
// Two calls seconds apart, with no condition changed between (the second
// once the revision lasted the crash window, 10 s on), give the same
// times; a restart, which turns RollingRestart True and back to False,
// moves that condition's time alone. Before, every time was the call's.
func TestConditionTimesAreTransitions(t *testing.T) {
	s := newSite(t)
	r := run(t, s)
	ctx := context.Background()
	conds := func() []metav1.Condition {
		t.Helper()
		st, err := r.client.Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return st.Apps[0].Conditions
	}
	same := func(what string, a, b []metav1.Condition, except string) {
		t.Helper()
		for _, c := range a {
			d := meta.FindStatusCondition(b, c.Type)
			switch {
			case d == nil:
				t.Errorf("%s: condition %s is gone", what, c.Type)
			case c.Type != except && !d.LastTransitionTime.Equal(&c.LastTransitionTime):
				t.Errorf("%s: %s (%s, unchanged) moved from %s to %s", what, c.Type, d.Status,
					c.LastTransitionTime.Format(time.RFC3339), d.LastTransitionTime.Format(time.RFC3339))
			}
		}
	}
	first := conds()
	if c := meta.FindStatusCondition(first, ferryv1.ConditionReady); c == nil || c.Status != metav1.ConditionTrue {
		t.Fatalf("Ready after start: %+v", c)
	}
	r.waitStatus(t, "the revision to last the crash window", func(a AppStatus) bool { return a.Pool.RevisionLasted })
	second := conds()
	same("two calls with nothing changed", first, second, "")

	asked := metav1.NewTime(time.Now().Truncate(time.Second))
	rev, err := r.client.Restart(ctx, "hello", "")
	if err != nil {
		t.Fatal(err)
	}
	if err := WaitRestart(ctx, r.client, "hello", rev, 50*time.Millisecond, nil); err != nil {
		t.Fatal(err)
	}
	third := conds()
	same("after a restart", second, third, ferryv1.ConditionRollingRestart)
	before := meta.FindStatusCondition(second, ferryv1.ConditionRollingRestart)
	after := meta.FindStatusCondition(third, ferryv1.ConditionRollingRestart)
	if after.Status != metav1.ConditionFalse || after.LastTransitionTime.Before(&asked) ||
		after.LastTransitionTime.Equal(&before.LastTransitionTime) {
		t.Errorf("RollingRestart after a restart asked at %s: %s at %s (was %s at %s); want False since the restart's end",
			asked.Format(time.RFC3339), after.Status, after.LastTransitionTime.Format(time.RFC3339), before.Status,
			before.LastTransitionTime.Format(time.RFC3339))
	}
}
