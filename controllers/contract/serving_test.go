package contract

import (
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	ferryv1 "github.com/ferry-dev/ferry/api/v1alpha1"
)

// servingPool is a pool on revision 2 listening on 8080, its process
// table procs and its counts theirs, as its agent reports them; edits
// change it after.
func servingPool(procs []ferryv1.ProcessInfo, edits ...func(*ferryv1.ProcessPool)) *ferryv1.ProcessPool {
	p := &ferryv1.ProcessPool{Spec: ferryv1.ProcessPoolSpec{NodeName: "node-a", Revision: "2"}}
	p.Spec.Template.Listen.Port = 8080
	p.Status.Address, p.Status.ListenPort = "10.0.0.1:8080", 8080
	p.Status.ObservedRevision = p.Spec.Revision // its agent has taken it up
	p.Status.Processes = procs
	p.Status.ProcessCounts.Total = int32(len(procs))
	for _, pr := range procs {
		if pr.State == ferryv1.ProcessReady {
			p.Status.ProcessCounts.Ready++
		}
		if pr.Revision == p.Spec.Revision {
			p.Status.ProcessCounts.Updated++
		}
	}
	for _, edit := range edits {
		edit(p)
	}
	return p
}

func readyOf(rev string) ferryv1.ProcessInfo {
	return ferryv1.ProcessInfo{Revision: rev, State: ferryv1.ProcessReady}
}

// readyCondition sets the pool's Ready condition to status, for reason.
func readyCondition(status metav1.ConditionStatus, reason string) func(*ferryv1.ProcessPool) {
	return func(p *ferryv1.ProcessPool) {
		p.Status.Conditions = []metav1.Condition{{Type: ferryv1.ConditionReady, Status: status, Reason: reason}}
	}
}

// TestProxyServes: a pool's node takes requests with a process ready,
// its agent not stopping and its proxy listening on listen.port, or
// still on its old one after a move to a port taken; not on an old
// address reported before listen.port moved.
func TestProxyServes(t *testing.T) {
	older := []ferryv1.ProcessInfo{readyOf("1"), readyOf("1")}
	listenFailed := readyCondition(metav1.ConditionFalse, ferryv1.ReasonListenFailed)
	tests := []struct {
		name   string
		pool   *ferryv1.ProcessPool
		serves bool
		oldOn  int32
	}{
		{"processes ready, no condition yet", servingPool(older), true, 0},
		{"processes ready, Ready", servingPool(older, readyCondition(metav1.ConditionTrue, ferryv1.ReasonProcessesReady)), true, 0},
		{"processes ready, fewer than minProcesses",
			servingPool(older, readyCondition(metav1.ConditionFalse, ferryv1.ReasonProcessesNotReady)), true, 0},
		{"none ready", servingPool([]ferryv1.ProcessInfo{{Revision: "2", State: ferryv1.ProcessSpawning}}), false, 0},
		{"its agent stopping", servingPool(older, readyCondition(metav1.ConditionFalse, ferryv1.ReasonAgentStopping)), false, 0},
		{"its proxy unable to listen", servingPool(older, listenFailed), false, 0},
		{"its proxy unable to listen on a new port, serving on its old one", servingPool(older, listenFailed,
			func(p *ferryv1.ProcessPool) { p.Status.Address = "10.0.0.1:7070" }), true, 7070},
		{"its proxy unable to listen, a report from before listen.port moved", servingPool(older, listenFailed,
			func(p *ferryv1.ProcessPool) { p.Status.Address, p.Status.ListenPort = "10.0.0.1:7070", 7070 }), false, 0},
		{"its proxy unable to listen, an address with no port", servingPool(older, listenFailed,
			func(p *ferryv1.ProcessPool) { p.Status.Address = "10.0.0.1" }), false, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ProxyServes(tt.pool); got != tt.serves {
				t.Errorf("ProxyServes = %v, want %v", got, tt.serves)
			}
			if got := ServesOnOldPort(tt.pool); got != tt.oldOn {
				t.Errorf("ServesOnOldPort = %d, want %d", got, tt.oldOn)
			}
		})
	}
}

// TestWhatServes: whose processes serve on a pool's node, by its process
// table, else as far as its counts tell, and none where the node does
// not serve (its agent silent, stopping, or its proxy deaf). The manager
// and kubectl ferry judge a halted node by it; the rows where they did
// not agree are the node that does not serve and the one with no table.
func TestWhatServes(t *testing.T) {
	spawning := ferryv1.ProcessInfo{Revision: "2", State: ferryv1.ProcessSpawning}
	noTable := func(p *ferryv1.ProcessPool) { p.Status.Processes = nil }
	tests := []struct {
		name   string
		pool   *ferryv1.ProcessPool
		serves bool
		want   Served
	}{
		{"older ready, a retry spawning", servingPool([]ferryv1.ProcessInfo{readyOf("1"), readyOf("1"), spawning}), true,
			Served{Older: true}},
		{"older ready, a retry ready", servingPool([]ferryv1.ProcessInfo{readyOf("1"), readyOf("2")}), true,
			Served{Older: true, Spec: true}},
		{"a retry ready, none older", servingPool([]ferryv1.ProcessInfo{readyOf("2"), spawning}), true, Served{Spec: true}},
		{"an older one draining, a retry spawning",
			servingPool([]ferryv1.ProcessInfo{{Revision: "1", State: ferryv1.ProcessDraining}, spawning}), true, Served{}},
		{"no process", servingPool(nil), true, Served{}},
		{"older ready, the node not serving", servingPool([]ferryv1.ProcessInfo{readyOf("1"), readyOf("1")}), false, Served{}},
		// By the counts: ready beyond the updated are older, ready
		// beyond the others of spec.revision.
		{"no table, none updated, two ready", servingPool([]ferryv1.ProcessInfo{readyOf("1"), readyOf("1")}, noTable), true,
			Served{Older: true}},
		{"no table, a retry spawning beside two older ready",
			servingPool([]ferryv1.ProcessInfo{readyOf("1"), readyOf("1"), spawning}, noTable), true, Served{Older: true}},
		{"no table, one of each ready", servingPool([]ferryv1.ProcessInfo{readyOf("1"), readyOf("2")}, noTable), true,
			Served{Older: true, Spec: true}},
		// One of two ready, one of them updated: either may be it, so
		// whether an older one serves is not known.
		{"no table, one of two ready, one updated",
			servingPool([]ferryv1.ProcessInfo{readyOf("1"), spawning}, noTable), true, Served{OlderUnknown: true}},
		{"no table, two of three ready, two updated: one of spec.revision at least",
			servingPool(nil, func(p *ferryv1.ProcessPool) {
				p.Status.ProcessCounts = ferryv1.ProcessCounts{Ready: 2, Updated: 2, Total: 3}
			}),
			true, Served{Spec: true, OlderUnknown: true}},
		{"no table, every one updated and ready", servingPool([]ferryv1.ProcessInfo{readyOf("2"), readyOf("2")}, noTable), true,
			Served{Spec: true}},
		// The agent not caught up: its updated run the revision it has,
		// an older one, and none runs spec.revision.
		{"no table, the agent on an older revision, every one of it and ready",
			servingPool([]ferryv1.ProcessInfo{readyOf("1"), readyOf("1")}, noTable, func(p *ferryv1.ProcessPool) {
				p.Status.ObservedRevision = "1"
				p.Status.ProcessCounts.Updated = 2
			}), true, Served{Older: true}},
		{"no table, two older ready, the node not serving",
			servingPool([]ferryv1.ProcessInfo{readyOf("1"), readyOf("1")}, noTable), false, Served{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := WhatServes(tt.pool, tt.serves); got != tt.want {
				t.Errorf("WhatServes = %+v, want %+v", got, tt.want)
			}
		})
	}
}
