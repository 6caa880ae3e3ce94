package controllers

import (
	"errors"
	"fmt"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
)

// TestRaced: a pass that met only changes made meanwhile (conflicts, its
// AppGroup gone) is no reconciler error; any other error is one.
func TestRaced(t *testing.T) {
	key := types.NamespacedName{Namespace: "ns", Name: "blog"}
	appgroups := schema.GroupResource{Group: "ferry.dev", Resource: "appgroups"}
	pools := schema.GroupResource{Group: "ferry.dev", Resource: "processpools"}
	conflict := apierrors.NewConflict(appgroups, "blog", errors.New("the object has been modified"))
	gone := apierrors.NewNotFound(appgroups, "blog")
	for _, tt := range []struct {
		name string
		err  error
		want race
	}{
		{"none", nil, raceNone},
		{"a conflict", conflict, raceConflict},
		{"a wrapped conflict", fmt.Errorf("update status: %w", conflict), raceConflict},
		{"the AppGroup gone", gone, raceGone},
		{"gone and a conflict", errors.Join(conflict, gone), raceGone},
		{"another AppGroup gone", apierrors.NewNotFound(appgroups, "shop"), raceNone},
		{"a pool not found", apierrors.NewNotFound(pools, "blog-node-a"), raceNone},
		{"a conflict and a real failure", errors.Join(conflict, errors.New("connection refused")), raceNone},
		{"a forbidden write", apierrors.NewForbidden(appgroups, "blog", errors.New("no")), raceNone},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := raced(tt.err, key); got != tt.want {
				t.Errorf("raced = %d, want %d", got, tt.want)
			}
		})
	}
}

// TestConflictsInARowGoToTheWorkQueue: conflicts alone look again shortly
// and quietly, but only quietConflicts passes in a row: a cache stuck
// behind must not retry four times a second for ever, unlogged.
func TestConflictsInARowGoToTheWorkQueue(t *testing.T) {
	var s streaks
	key := types.NamespacedName{Namespace: "ns", Name: "blog"}
	for i := 1; i <= quietConflicts; i++ {
		if n := s.inc(key); n != i {
			t.Fatalf("streak %d, want %d", n, i)
		}
	}
	if n := s.inc(key); n <= quietConflicts {
		t.Errorf("streak %d after %d conflicts in a row: still quiet", n, quietConflicts+1)
	}
	s.reset(key)
	if n := s.inc(key); n != 1 {
		t.Errorf("streak %d after a reset, want 1", n)
	}
}
