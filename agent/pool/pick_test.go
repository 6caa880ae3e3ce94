package pool

import (
	"testing"

	ferryv1 "github.com/ferry-dev/ferry/api/v1alpha1"
)

// TestPick: the least-busy ready worker with a free slot, the oldest among
// equals; one flagged for a recycle only when no other ready worker has a
// free slot. Before, a worker past
// memoryLimit took request after request while its replacement booted
// (walk5: 3550 MB at a 200Mi limit, a free worker beside it).
func TestPick(t *testing.T) {
	type w struct {
		state     ferryv1.ProcessState
		sessions  int
		recycle   recycleReason
		replacing bool
	}
	ready := ferryv1.ProcessReady
	cases := []struct {
		name string
		ws   []w
		want int // index in ws, -1: none
	}{
		{"none", nil, -1},
		{"the oldest idle", []w{{state: ready}, {state: ready}}, 0},
		{"the least busy", []w{{state: ready, sessions: 1}, {state: ready}}, 1},
		{"all full", []w{{state: ready, sessions: 2}, {state: ready, sessions: 2}}, -1},
		{"not draining or spawning", []w{{state: ferryv1.ProcessDraining}, {state: ferryv1.ProcessSpawning}, {state: ready, sessions: 1}}, 2},
		{"past memoryLimit: another idle one", []w{{state: ready, recycle: recycleMemory}, {state: ready}}, 1},
		{"past memoryLimit, replacement booting: another busier one",
			[]w{{state: ready, recycle: recycleMemory, replacing: true}, {state: ready, sessions: 1}}, 1},
		{"past maxRequestsPerProcess: another busier one", []w{{state: ready, recycle: recycleMaxRequests}, {state: ready, sessions: 1}}, 1},
		{"a rolling restart's old worker, replacement booting: as any", []w{{state: ready, replacing: true}, {state: ready, sessions: 1}}, 0},
		{"leaving, the others full: still served", []w{{state: ready, sessions: 2}, {state: ready, sessions: 1, recycle: recycleMemory}}, 1},
		{"leaving, the only one: still served", []w{{state: ready, recycle: recycleMemory, replacing: true}}, 0},
		{"leaving, and full", []w{{state: ready, sessions: 2, recycle: recycleMemory}, {state: ready, sessions: 2}}, -1},
		{"two leaving: the least busy", []w{{state: ready, sessions: 1, recycle: recycleMaxRequests}, {state: ready, recycle: recycleMemory}, {state: ready, sessions: 2}}, 1},
	}
	for _, c := range cases {
		var ws []*Worker
		for i, x := range c.ws {
			ws = append(ws, &Worker{ID: i, state: x.state, sessions: x.sessions, capacity: 2, recycle: x.recycle, replacing: x.replacing})
		}
		got := -1
		if p := pick(ws); p != nil {
			got = p.ID
		}
		if got != c.want {
			t.Errorf("%s: picked %d, want %d", c.name, got, c.want)
		}
	}
}
