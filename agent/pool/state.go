package pool

import (
	"fmt"

	ferryv1 "github.com/ferry-dev/ferry/api/v1alpha1"
)

// State is where a worker is in its life; the API's ProcessState.
type State = ferryv1.ProcessState

// Event is something that happens to a worker.
type Event int

const (
	// EventReady: the spawn finished and the worker serves.
	EventReady Event = iota
	// EventSpawnFailed: the spawn failed; the process is gone.
	EventSpawnFailed
	// EventDrain: stop routing requests to the worker.
	EventDrain
	// EventStop: SIGTERM was sent.
	EventStop
	// EventExit: the process exited.
	EventExit
)

func (e Event) String() string {
	switch e {
	case EventReady:
		return "Ready"
	case EventSpawnFailed:
		return "SpawnFailed"
	case EventDrain:
		return "Drain"
	case EventStop:
		return "Stop"
	case EventExit:
		return "Exit"
	}
	return fmt.Sprintf("Event(%d)", int(e))
}

// transitions is the whole state machine. A worker is spawned in
// Spawning; it serves only in Ready; it leaves service by Draining (no new
// requests, in-flight ones finish) and Stopping (SIGTERM sent); Exited is
// final. A process may exit in any state (a crash), and an agent shutting
// down may stop a worker that is still spawning.
var transitions = map[State]map[Event]State{
	ferryv1.ProcessSpawning: {
		EventReady:       ferryv1.ProcessReady,
		EventSpawnFailed: ferryv1.ProcessExited,
		EventStop:        ferryv1.ProcessStopping,
		EventExit:        ferryv1.ProcessExited,
	},
	ferryv1.ProcessReady: {
		EventDrain: ferryv1.ProcessDraining,
		EventStop:  ferryv1.ProcessStopping,
		EventExit:  ferryv1.ProcessExited,
	},
	ferryv1.ProcessDraining: {
		EventStop: ferryv1.ProcessStopping,
		EventExit: ferryv1.ProcessExited,
	},
	ferryv1.ProcessStopping: {
		EventExit: ferryv1.ProcessExited,
	},
}

// Transition returns the state a worker in s goes to on e, or an error if e
// cannot happen in s.
func Transition(s State, e Event) (State, error) {
	if next, ok := transitions[s][e]; ok {
		return next, nil
	}
	return s, fmt.Errorf("invalid worker transition: %s on %s", e, s)
}

// Routable reports whether a worker in s may be given new requests.
func Routable(s State) bool { return s == ferryv1.ProcessReady }

// Live reports whether a worker in s is a process that exists (or is being
// started), i.e. counts toward the pool's size.
func Live(s State) bool { return s != ferryv1.ProcessExited }
