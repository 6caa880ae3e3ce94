package pool

import (
	"testing"

	ferryv1 "github.com/ferry-dev/ferry/api/v1alpha1"
)

func TestTransition(t *testing.T) {
	const (
		spawning = ferryv1.ProcessSpawning
		ready    = ferryv1.ProcessReady
		draining = ferryv1.ProcessDraining
		stopping = ferryv1.ProcessStopping
		exited   = ferryv1.ProcessExited
	)
	cases := []struct {
		from  State
		event Event
		to    State
		ok    bool
	}{
		{spawning, EventReady, ready, true},
		{spawning, EventSpawnFailed, exited, true},
		{spawning, EventExit, exited, true},
		{spawning, EventStop, stopping, true},
		{spawning, EventDrain, spawning, false},
		{ready, EventDrain, draining, true},
		{ready, EventExit, exited, true},
		{ready, EventStop, stopping, true},
		{ready, EventReady, ready, false},
		{ready, EventSpawnFailed, ready, false},
		{draining, EventStop, stopping, true},
		{draining, EventExit, exited, true},
		{draining, EventReady, draining, false},
		{draining, EventDrain, draining, false},
		{stopping, EventExit, exited, true},
		{stopping, EventDrain, stopping, false},
		{stopping, EventReady, stopping, false},
		{exited, EventExit, exited, false},
		{exited, EventReady, exited, false},
		{exited, EventStop, exited, false},
	}
	for _, tc := range cases {
		got, err := Transition(tc.from, tc.event)
		if (err == nil) != tc.ok || got != tc.to {
			t.Errorf("%s on %s = %s, %v; want %s (ok=%v)", tc.event, tc.from, got, err, tc.to, tc.ok)
		}
	}
}

func TestRoutableAndLive(t *testing.T) {
	for _, s := range []State{ferryv1.ProcessSpawning, ferryv1.ProcessReady, ferryv1.ProcessDraining,
		ferryv1.ProcessStopping, ferryv1.ProcessExited} {
		if Routable(s) != (s == ferryv1.ProcessReady) {
			t.Errorf("Routable(%s) = %v", s, Routable(s))
		}
		if Live(s) != (s != ferryv1.ProcessExited) {
			t.Errorf("Live(%s) = %v", s, Live(s))
		}
	}
}
