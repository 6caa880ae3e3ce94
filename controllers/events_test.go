package controllers

import (
	"context"
	"errors"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"

	ferryv1 "github.com/ferry-dev/ferry/api/v1alpha1"
)

// cond is a condition whose message names its type and reason.
func cond(typ string, s metav1.ConditionStatus, reason string) metav1.Condition {
	return metav1.Condition{Type: typ, Status: s, Reason: reason, Message: typ + " " + reason}
}

// rolledOutTo is revision 2's status on two nodes that run it, with
// lastRolledOut at last and the given conditions.
func rolledOutTo(last string, conds ...metav1.Condition) ferryv1.AppGroupStatus {
	return ferryv1.AppGroupStatus{Revision: "2", ProvenRevision: "2", Nodes: ferryv1.NodeCounts{Updated: 2, Total: 2},
		LastRolledOut: &ferryv1.RolledOutRevision{Revision: last}, Conditions: conds}
}

// rolloutCompleteCount is how many RolloutComplete events the statuses
// record, each after the one before it.
func rolloutCompleteCount(sts ...ferryv1.AppGroupStatus) int {
	n := 0
	for i := 1; i < len(sts); i++ {
		for _, ev := range statusEvents(&ferryv1.AppGroup{}, &sts[i-1], &sts[i], silenceSeen{}) {
			if ev.Reason == EventRolloutComplete {
				n++
			}
		}
	}
	return n
}

func TestStatusEvents(t *testing.T) {
	rr := func(s metav1.ConditionStatus, reason string) metav1.Condition {
		return cond(ferryv1.ConditionRollingRestart, s, reason)
	}
	res := func(s metav1.ConditionStatus) metav1.Condition {
		reason := ferryv1.ReasonNoDeploymentError
		if s == metav1.ConditionTrue {
			reason = ferryv1.ReasonSpawnFailed
		}
		return cond(ferryv1.ConditionResistingDeploymentError, s, reason)
	}
	ready := func(s metav1.ConditionStatus, reason string) metav1.Condition {
		return cond(ferryv1.ConditionReady, s, reason)
	}
	status := func(rev string, updated int32, conds ...metav1.Condition) ferryv1.AppGroupStatus {
		return ferryv1.AppGroupStatus{Revision: rev, Nodes: ferryv1.NodeCounts{Updated: updated, Total: 3}, Conditions: conds}
	}
	steady := func(rev string) ferryv1.AppGroupStatus {
		return status(rev, 3, ready(metav1.ConditionTrue, ferryv1.ReasonProcessesReady),
			rr(metav1.ConditionFalse, ferryv1.ReasonRolloutComplete), res(metav1.ConditionFalse))
	}
	rolling := func(rev string, updated int32) ferryv1.AppGroupStatus {
		return status(rev, updated, ready(metav1.ConditionTrue, ferryv1.ReasonProcessesReady),
			rr(metav1.ConditionTrue, ferryv1.ReasonRollingOut), res(metav1.ConditionFalse))
	}
	// proven: st, its revision proven (a node's new processes lived the
	// crash window).
	proven := func(st ferryv1.AppGroupStatus) ferryv1.AppGroupStatus {
		st.ProvenRevision = st.Revision
		return st
	}
	// unselected: no node counted, Ready and RollingRestart with reasons.
	unselected := func(readyReason, rrReason string) ferryv1.AppGroupStatus {
		return ferryv1.AppGroupStatus{Revision: "1", Conditions: []metav1.Condition{ready(metav1.ConditionFalse, readyReason),
			rr(metav1.ConditionFalse, rrReason), res(metav1.ConditionFalse)}}
	}
	// settled: rolled out on nodes of 3, Ready with reason.
	settled := func(nodes int32, s metav1.ConditionStatus, reason string) ferryv1.AppGroupStatus {
		return status("1", nodes, ready(s, reason), rr(metav1.ConditionFalse, ferryv1.ReasonRolloutComplete), res(metav1.ConditionFalse))
	}
	halted := func(rev string) ferryv1.AppGroupStatus {
		return status(rev, 1, ready(metav1.ConditionTrue, ferryv1.ReasonProcessesReady),
			rr(metav1.ConditionFalse, ferryv1.ReasonRolloutHalted), res(metav1.ConditionTrue))
	}
	tests := []struct {
		name     string
		old, cur ferryv1.AppGroupStatus
		silence  silenceSeen
		want     []string
	}{
		{name: "nothing moved", old: steady("1"), cur: steady("1")},
		{name: "first deployment", old: ferryv1.AppGroupStatus{}, cur: rolling("1", 0), want: []string{EventRolloutStarted}},
		{name: "bump", old: steady("1"), cur: rolling("2", 0), want: []string{EventRolloutStarted}},
		{name: "a node done", old: proven(rolling("2", 1)), cur: proven(rolling("2", 2)), want: []string{EventNodeRolledOut}},
		// Its new processes may yet die in the crash window.
		{name: "a node done, the revision not proven", old: rolling("2", 0), cur: rolling("2", 1)},
		{name: "the revision proven", old: rolling("2", 1), cur: proven(rolling("2", 1)), want: []string{EventNodeRolledOut}},
		{name: "no progress", old: rolling("2", 1), cur: rolling("2", 1)},
		{name: "last node done: the rollout's event only", old: rolling("2", 2), cur: steady("2"), want: []string{EventRolloutComplete}},
		{name: "first deployment seen complete at once: its completion only", old: ferryv1.AppGroupStatus{}, cur: steady("1"), want: []string{EventRolloutComplete}},
		{name: "a bump seen complete at once", old: steady("1"), cur: steady("2"), want: []string{EventRolloutStarted, EventRolloutComplete}},
		{name: "resistance halts", old: rolling("2", 1), cur: halted("2"), want: []string{EventRolloutHalted, EventResistingDeploymentError}},
		{name: "still halted", old: halted("2"), cur: halted("2")},
		{name: "a new bump while halted", old: halted("2"), cur: rolling("3", 0), want: []string{EventRolloutStarted, EventDeploymentErrorResolved}},
		{
			name: "a new bump that halts at once again",
			old:  halted("2"), cur: halted("3"),
			want: []string{EventRolloutStarted, EventRolloutHalted},
		},
		{
			name: "resistance becomes Unknown: not resolved",
			old:  halted("2"),
			cur: status("2", 1, ready(metav1.ConditionUnknown, ferryv1.ReasonAgentNotReporting),
				rr(metav1.ConditionFalse, ferryv1.ReasonRolloutHalted), cond(ferryv1.ConditionResistingDeploymentError, metav1.ConditionUnknown, ferryv1.ReasonAgentNotReporting)),
			want: []string{EventAgentNotReporting},
		},
		{
			name: "a revision never valid",
			old:  ferryv1.AppGroupStatus{},
			cur: status("", 0, ready(metav1.ConditionFalse, ferryv1.ReasonInvalidRevision),
				rr(metav1.ConditionUnknown, ferryv1.ReasonInvalidRevision), res(metav1.ConditionFalse)),
			want: []string{EventInvalidRevision},
		},
		{
			name: "an invalid revision after a valid one",
			old:  steady("1"),
			cur: status("1", 3, ready(metav1.ConditionTrue, ferryv1.ReasonProcessesReady),
				rr(metav1.ConditionFalse, ferryv1.ReasonInvalidRevision), res(metav1.ConditionFalse)),
			want: []string{EventInvalidRevision},
		},
		{
			name: "still invalid",
			old: status("1", 3, ready(metav1.ConditionTrue, ferryv1.ReasonProcessesReady),
				rr(metav1.ConditionFalse, ferryv1.ReasonInvalidRevision), res(metav1.ConditionFalse)),
			cur: status("1", 3, ready(metav1.ConditionTrue, ferryv1.ReasonProcessesReady),
				rr(metav1.ConditionFalse, ferryv1.ReasonInvalidRevision), res(metav1.ConditionFalse)),
		},
		{
			name: "no nodes: no rollout, a warning",
			old:  ferryv1.AppGroupStatus{},
			cur:  ferryv1.AppGroupStatus{Revision: "1", Conditions: []metav1.Condition{ready(metav1.ConditionFalse, ferryv1.ReasonNoNodes)}},
			want: []string{EventNoNodes},
		},
		{
			name: "no node selected any more",
			old:  steady("1"), cur: unselected(ferryv1.ReasonNoNodes, ferryv1.ReasonNoNodes),
			want: []string{EventNoNodes},
		},
		{
			name: "still no node",
			old:  unselected(ferryv1.ReasonNoNodes, ferryv1.ReasonNoNodes), cur: unselected(ferryv1.ReasonNoNodes, ferryv1.ReasonNoNodes),
		},
		{
			name: "nodes selected again",
			old:  unselected(ferryv1.ReasonNoNodes, ferryv1.ReasonNoNodes), cur: steady("1"),
			want: []string{EventNodesSelected},
		},
		{
			// PortConflict says why no pool is made.
			name: "nodes selected again, another AppGroup has the port on each",
			old:  unselected(ferryv1.ReasonNoNodes, ferryv1.ReasonNoNodes), cur: unselected(ferryv1.ReasonPortConflict, ferryv1.ReasonPortConflict),
			want: []string{EventPortConflict},
		},
		{
			name: "no node while deleting: no NodesSelected",
			old:  unselected(ferryv1.ReasonNoNodes, ferryv1.ReasonNoNodes), cur: unselected(ferryv1.ReasonDeleting, ferryv1.ReasonDeleting),
		},
		{
			name: "the silent agent is back",
			old:  settled(3, metav1.ConditionUnknown, ferryv1.ReasonAgentNotReporting), cur: steady("1"),
			want: []string{EventAgentReporting},
		},
		{
			// The manager knows no warning stands: the status it puts
			// back was another writer's, and no agent came back.
			name: "a foreign AgentNotReporting put back",
			old:  settled(3, metav1.ConditionUnknown, ferryv1.ReasonAgentNotReporting), cur: steady("1"),
			silence: silenceSeen{known: true},
		},
		{
			name:    "a process not ready elsewhere hides a silence that goes on (found by review)",
			old:     settled(3, metav1.ConditionUnknown, ferryv1.ReasonAgentNotReporting),
			cur:     settled(3, metav1.ConditionFalse, ferryv1.ReasonProcessesNotReady),
			silence: silenceSeen{warned: true, silent: true},
		},
		{
			name: "the port is free",
			old:  settled(0, metav1.ConditionFalse, ferryv1.ReasonPortConflict), cur: steady("1"),
			want: []string{EventPortConflictResolved},
		},
		{
			name: "deleted while in conflict: not resolved",
			old:  settled(0, metav1.ConditionFalse, ferryv1.ReasonPortConflict),
			cur: status("1", 0, ready(metav1.ConditionFalse, ferryv1.ReasonDeleting),
				rr(metav1.ConditionFalse, ferryv1.ReasonDeleting), res(metav1.ConditionFalse)),
		},
	}
	ag := &ferryv1.AppGroup{}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			for _, ev := range statusEvents(ag, &tt.old, &tt.cur, tt.silence) {
				got = append(got, ev.Reason)
				if ev.Type == "" || ev.Action == "" || ev.Note == "" {
					t.Errorf("incomplete event %+v", ev)
				}
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("events %v, want %v", got, tt.want)
			}
		})
	}
}

// TestNameTakenEvents: the names taken are in the status whatever reason
// Ready shows (behind InvalidRevision, PortConflict or NoNodes, after
// "Also:"), so NameTaken and NameTakenResolved pair, once each, through
// those reasons: before, a name freed while PortConflict showed never got
// its NameTakenResolved, and a NameTaken hid the NoNodes event.
func TestNameTakenEvents(t *testing.T) {
	svc := []nameTaken{{"Service", "blog"}}
	// st is the status of the pass whose input fn leaves, from in's
	// defaults: one node, rolled out and ready, nothing taken.
	st := func(fn func(in *rollupInput)) ferryv1.AppGroupStatus {
		in := input([]string{"node-a"}, testPool("node-a", targetRev, rolledOut(2)))
		in.AppGroup.Spec.Listen.Port = 8080
		fn(&in)
		return computeStatus(in)
	}
	taken := func(in *rollupInput) { in.Taken = svc }
	poolTaken := func(in *rollupInput) {
		in.Nodes = append(in.Nodes, "node-b")
		in.PoolTaken = []poolNamesTaken{{node: "node-b", names: []string{"blog-node-b", "blog-node-b-0123456789"}}}
	}
	// poolMade: node-b's pool is made and ready, its names freed.
	poolMade := func(in *rollupInput) {
		in.Nodes = append(in.Nodes, "node-b")
		in.Reports = byNode(assessAll(targetRev, testPool("node-a", targetRev, rolledOut(2)), testPool("node-b", targetRev, rolledOut(2))))
	}
	const poolsResolved = "No selected node's pool is kept from being made by other ProcessPools any more " +
		"(those in the way were renamed or deleted, or their node is no longer selected and needs no pool)"
	portLost := func(in *rollupInput) {
		in.PortLost = map[string]types.NamespacedName{"node-c": {Namespace: "shop", Name: "cart"}}
	}
	noNodes := func(in *rollupInput) { in.Nodes, in.Reports = nil, nil }
	// poolless: node-b has no pool, for no revision it could start on
	// (Ready's pools' part "No pool on node-b: ...", no name taken).
	poolless := func(in *rollupInput) {
		in.Nodes = append(in.Nodes, "node-b")
		in.RevisionErr, in.Unserved = errors.New("revision annotation is empty"), []string{"node-b"}
	}
	invalid := func(in *rollupInput) { in.Target, in.RevisionErr = "", errors.New("revision annotation is empty") }
	both := func(fns ...func(*rollupInput)) ferryv1.AppGroupStatus {
		return st(func(in *rollupInput) {
			for _, fn := range fns {
				fn(in)
			}
		})
	}
	ready := st(func(*rollupInput) {})
	gone := ready
	gone.Conditions = []metav1.Condition{cond(ferryv1.ConditionReady, metav1.ConditionFalse, ferryv1.ReasonDeleting)}
	tests := []struct {
		name     string
		old, cur ferryv1.AppGroupStatus
		want     []string
		note     string // the NameTaken note must hold it
		resolved string // the NameTakenResolved note must be it
	}{
		{name: "taken", old: ready, cur: both(taken), want: []string{EventNameTaken}, note: "Service blog is not this AppGroup's"},
		{name: "freed", old: both(taken), cur: ready, want: []string{EventNameTakenResolved}, resolved: "Service blog is the AppGroup's own now"},
		{name: "a pool's names taken", old: ready, cur: both(poolTaken), want: []string{EventNameTaken},
			note: "No pool on node-b: ProcessPools blog-node-b and blog-node-b-0123456789"},
		{name: "a pool's names freed", old: both(poolTaken), cur: both(poolMade), want: []string{EventNameTakenResolved}, resolved: poolsResolved},
		// Its node no longer selected, the pool needs no name: the
		// other ProcessPools still have them (it said the pools had
		// names of their own).
		{name: "a pool's node no longer selected", old: both(poolTaken), cur: ready, want: []string{EventNameTakenResolved}, resolved: poolsResolved},
		{name: "the Service's and a pool's freed", old: both(taken, poolTaken), cur: ready, want: []string{EventNameTakenResolved},
			resolved: "Service blog is the AppGroup's own now; " + "n" + poolsResolved[1:]},
		{name: "still taken", old: both(taken), cur: both(taken)},
		// The pools' part said "No pool on node-b", but of no name: the
		// note says nothing of pools (it said their names were freed).
		{name: "freed beside a node with no pool", old: both(taken, poolless), cur: both(poolless),
			want: []string{EventNameTakenResolved}, resolved: "Service blog is the AppGroup's own now"},
		{name: "freed while PortConflict shows", old: both(portLost, taken), cur: both(portLost), want: []string{EventNameTakenResolved},
			resolved: "Service blog is the AppGroup's own now"},
		{name: "freed as PortConflict takes over", old: both(taken), cur: both(portLost), want: []string{EventPortConflict, EventNameTakenResolved}},
		{name: "still taken as PortConflict takes over", old: both(taken), cur: both(portLost, taken), want: []string{EventPortConflict}},
		{name: "taken while PortConflict shows", old: both(portLost), cur: both(portLost, taken), want: []string{EventNameTaken},
			note: "Service blog is not this AppGroup's"},
		{name: "the port freed, the name still taken", old: both(portLost, taken), cur: both(taken), want: []string{EventPortConflictResolved}},
		{name: "a pool's names taken while PortConflict shows", old: both(portLost), cur: both(portLost, poolTaken),
			want: []string{EventNameTaken}, note: "No pool on node-b: ProcessPools blog-node-b and blog-node-b-0123456789"},
		{name: "the port freed, a pool's names still taken", old: both(portLost, poolTaken), cur: both(poolTaken),
			want: []string{EventPortConflictResolved}},
		{name: "a pool's names freed while PortConflict shows", old: both(portLost, poolTaken), cur: both(portLost),
			want: []string{EventNameTakenResolved}},
		{name: "freed as InvalidRevision takes over", old: both(taken), cur: both(invalid), want: []string{EventInvalidRevision, EventNameTakenResolved}},
		{name: "taken with no node selected", old: ferryv1.AppGroupStatus{}, cur: both(noNodes, taken),
			want: []string{EventNameTaken, EventNoNodes}, note: "Service blog is not this AppGroup's"},
		{name: "nodes selected, still taken", old: both(noNodes, taken), cur: both(taken), want: []string{EventNodesSelected}},
		{name: "no node any more, still taken", old: both(taken), cur: both(noNodes, taken), want: []string{EventNoNodes}},
		{name: "deleted while taken: not resolved", old: both(taken), cur: gone},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			for _, ev := range statusEvents(&ferryv1.AppGroup{ObjectMeta: metav1.ObjectMeta{Name: "blog"}}, &tt.old, &tt.cur, silenceSeen{}) {
				if ev.Reason == EventRolloutStarted || ev.Reason == EventRolloutComplete {
					continue // of the statuses' making, not of the names
				}
				got = append(got, ev.Reason)
				if ev.Reason == EventNameTaken && !strings.HasPrefix(ev.Note, tt.note) {
					t.Errorf("NameTaken note %q, want it to begin %q", ev.Note, tt.note)
				}
				if ev.Reason == EventNameTakenResolved && ev.Note != tt.resolved && tt.resolved != "" {
					t.Errorf("NameTakenResolved note %q, want %q", ev.Note, tt.resolved)
				}
				if ev.Reason == EventNoNodes && strings.Contains(ev.Note, "Also") {
					t.Errorf("NoNodes note %q says more than that no node is selected", ev.Note)
				}
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("events %v, want %v", got, tt.want)
			}
		})
	}
}

// TestSilenceEventsPair: over statuses as the manager writes them (a
// status unchanged is not written, and records nothing), each silence
// gets one AgentNotReporting and, once over, one AgentReporting, also
// when a reason of higher rank hides it for a while (found by review:
// Ready's reason alone lost the AgentReporting, or warned twice).
func TestSilenceEventsPair(t *testing.T) {
	st := func(s metav1.ConditionStatus, reason string) ferryv1.AppGroupStatus {
		return ferryv1.AppGroupStatus{Revision: "1", Nodes: ferryv1.NodeCounts{Updated: 3, Total: 3}, Conditions: []metav1.Condition{
			{Type: ferryv1.ConditionReady, Status: s, Reason: reason, Message: reason},
		}}
	}
	ready := st(metav1.ConditionTrue, ferryv1.ReasonProcessesReady)
	silentNode := st(metav1.ConditionUnknown, ferryv1.ReasonAgentNotReporting)
	notReady := st(metav1.ConditionFalse, ferryv1.ReasonProcessesNotReady)
	type step struct {
		st     ferryv1.AppGroupStatus
		silent bool
	}
	for _, tt := range []struct {
		name  string
		steps []step // the first is where the manager starts
		want  []string
	}{
		{"a silence", []step{{ready, false}, {silentNode, true}, {ready, false}},
			[]string{EventAgentNotReporting, EventAgentReporting}},
		{"hidden, and over while hidden", []step{{ready, false}, {silentNode, true}, {notReady, true}, {notReady, false}, {ready, false}},
			[]string{EventAgentNotReporting, EventAgentReporting}},
		{"hidden, then shown again", []step{{ready, false}, {silentNode, true}, {notReady, true}, {silentNode, true}, {ready, false}},
			[]string{EventAgentNotReporting, EventAgentReporting}},
		{"never shown", []step{{ready, false}, {notReady, true}, {ready, false}}, nil},
		{"a manager started during a silence", []step{{silentNode, true}, {notReady, true}, {ready, false}},
			[]string{EventAgentReporting}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			warned := false
			for i := 1; i < len(tt.steps); i++ {
				old, cur := &tt.steps[i-1].st, &tt.steps[i].st
				if equality.Semantic.DeepEqual(old, cur) {
					continue
				}
				// The manager knows from its first write on.
				silence := silenceSeen{warned: warned, known: i > 1, silent: tt.steps[i].silent}
				for _, ev := range statusEvents(&ferryv1.AppGroup{}, old, cur, silence) {
					if ev.Reason == EventAgentNotReporting || ev.Reason == EventAgentReporting {
						got = append(got, ev.Reason)
					}
				}
				warned = silence.warnedAfter(old, cur)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("events %v, want %v", got, tt.want)
			}
		})
	}
}

// TestRolloutStartedNote: a revision bump's rollout goes
// maxConcurrentNodes at a time and says so; a new AppGroup's pools are
// created on every node at once, and its note does not claim otherwise.
func TestRolloutStartedNote(t *testing.T) {
	ag := &ferryv1.AppGroup{}
	ag.Spec.Restart.MaxConcurrentNodes = 2
	rolling := func(rev string) *ferryv1.AppGroupStatus {
		return &ferryv1.AppGroupStatus{Revision: rev, Nodes: ferryv1.NodeCounts{Updated: 0, Total: 3}, Conditions: []metav1.Condition{
			{Type: ferryv1.ConditionRollingRestart, Status: metav1.ConditionTrue, Reason: ferryv1.ReasonRollingOut},
		}}
	}
	for _, tt := range []struct {
		name string
		old  *ferryv1.AppGroupStatus
		want string
	}{
		{"new AppGroup", &ferryv1.AppGroupStatus{}, "Rolling out revision 2 to 3 nodes"},
		{"bump", &ferryv1.AppGroupStatus{Revision: "1"}, "Rolling out revision 2 to 3 nodes, 2 at a time (was 1)"},
		{"bump of a rolled-out revision", &ferryv1.AppGroupStatus{Revision: "1", LastRolledOut: &ferryv1.RolledOutRevision{Revision: "1"}},
			"Rolling out revision 2 to 3 nodes, 2 at a time (was 1)"},
		// 1 halted (or was superseded before it ran everywhere): 0 is what
		// the nodes run.
		{"bump after a halt", &ferryv1.AppGroupStatus{Revision: "1", LastRolledOut: &ferryv1.RolledOutRevision{Revision: "0"}},
			"Rolling out revision 2 to 3 nodes, 2 at a time (was 1, last rolled out 0)"},
	} {
		evs := statusEvents(ag, tt.old, rolling("2"), silenceSeen{})
		if len(evs) != 1 || evs[0].Reason != EventRolloutStarted || evs[0].Note != tt.want {
			t.Errorf("%s: events %+v, want one %s: %q", tt.name, evs, EventRolloutStarted, tt.want)
		}
	}
}

func TestWriteFailureEvents(t *testing.T) {
	gr := schema.GroupResource{Resource: "services"}
	taken := apierrors.NewAlreadyExists(gr, "blog")
	tests := []struct {
		name string
		err  error
		want []string
	}{
		{name: "no error"},
		{name: "a failed write", err: errors.Join(writeFailed("create or update Service blog", taken)),
			want: []string{"could not create or update Service blog: services \"blog\" already exists"}},
		{name: "joined at two depths", err: errors.Join(
			errors.Join(writeFailed("create the pool of node a", errors.New("quota exceeded"))),
			writeFailed("create or update EndpointSlice blog", errors.New("range is full"))),
			want: []string{"could not create the pool of node a: quota exceeded; " +
				"could not create or update EndpointSlice blog: range is full"}},
		{name: "a conflict settles on retry", err: writeFailed("create or update Service blog", apierrors.NewConflict(gr, "blog", errors.New("stale")))},
		{name: "gone meanwhile", err: writeFailed("create or update Service blog", apierrors.NewNotFound(gr, "blog"))},
		{name: "cancelled", err: writeFailed("create the pool of node a", context.Canceled)},
		{name: "not a write", err: errors.New("waiting for the cache")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			for _, ev := range writeFailureEvents(tt.err) {
				if ev.Type != corev1.EventTypeWarning || ev.Reason != EventWriteFailed || ev.Action == "" {
					t.Errorf("event %+v", ev)
				}
				got = append(got, ev.Note)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("notes %q, want %q", got, tt.want)
			}
		})
	}
}

// TestRolloutCompleteAfterHaltOrSilence: a rollout that ends after its
// RollingRestart went Halted (the halting node was unselected) or
// Unknown (the last node's agent was briefly silent) is as complete as
// one seen from True; without a RolloutComplete event, `kubectl describe`
// keeps RolloutHalted (a Warning) as the rollout's last word, and
// ferry_rollouts_completed_total misses it. A silence after the rollout
// had completed is no new completion.
func TestRolloutCompleteAfterHaltOrSilence(t *testing.T) {
	st := func(last string, rr, res, ready metav1.Condition) ferryv1.AppGroupStatus {
		return rolledOutTo(last, ready, rr, res)
	}
	readyTrue := cond(ferryv1.ConditionReady, metav1.ConditionTrue, ferryv1.ReasonProcessesReady)
	noRes := cond(ferryv1.ConditionResistingDeploymentError, metav1.ConditionFalse, ferryv1.ReasonNoDeploymentError)
	silent := cond(ferryv1.ConditionRollingRestart, metav1.ConditionUnknown, ferryv1.ReasonAgentNotReporting)
	silentReady := cond(ferryv1.ConditionReady, metav1.ConditionUnknown, ferryv1.ReasonAgentNotReporting)
	complete := st("2", cond(ferryv1.ConditionRollingRestart, metav1.ConditionFalse, ferryv1.ReasonRolloutComplete), noRes, readyTrue)
	for _, tt := range []struct {
		name string
		old  ferryv1.AppGroupStatus
		want bool
	}{
		{"after a halt", st("1", cond(ferryv1.ConditionRollingRestart, metav1.ConditionFalse, ferryv1.ReasonRolloutHalted),
			cond(ferryv1.ConditionResistingDeploymentError, metav1.ConditionTrue, ferryv1.ReasonSpawnFailed), readyTrue), true},
		{"after a silence mid-rollout", st("1", silent, noRes, silentReady), true},
		{"after a silence once complete", st("2", silent, noRes, silentReady), false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			for _, ev := range statusEvents(&ferryv1.AppGroup{}, &tt.old, &complete, silenceSeen{warned: true}) {
				got = append(got, ev.Reason)
			}
			if slices.Contains(got, EventRolloutComplete) != tt.want {
				t.Errorf("events %v: %s recorded %v, want %v", got, EventRolloutComplete, !tt.want, tt.want)
			}
		})
	}
}

// TestRolloutCompleteOnceWhenReadinessLags: RollingRestart goes
// RolloutComplete once every node runs the target on every process, even
// with a process not ready yet (a pool spawning for a spike), while
// lastRolledOut waits for every node to be rolled out (all ready). The
// rollout's RolloutComplete is recorded once, on the move into
// RolloutComplete, whether the rollout was seen rolling, halted or Unknown
// before; the later move of lastRolledOut onto the revision, with
// RollingRestart already RolloutComplete, records none.
func TestRolloutCompleteOnceWhenReadinessLags(t *testing.T) {
	readyTrue := cond(ferryv1.ConditionReady, metav1.ConditionTrue, ferryv1.ReasonProcessesReady)
	noRes := cond(ferryv1.ConditionResistingDeploymentError, metav1.ConditionFalse, ferryv1.ReasonNoDeploymentError)
	st := func(last string, status metav1.ConditionStatus, reason string) ferryv1.AppGroupStatus {
		return rolledOutTo(last, readyTrue, cond(ferryv1.ConditionRollingRestart, status, reason), noRes)
	}
	completeLagging := st("1", metav1.ConditionFalse, ferryv1.ReasonRolloutComplete)
	completeAll := st("2", metav1.ConditionFalse, ferryv1.ReasonRolloutComplete)
	for name, before := range map[string]ferryv1.AppGroupStatus{
		"rolling": st("1", metav1.ConditionTrue, ferryv1.ReasonRollingOut),
		"halted":  st("1", metav1.ConditionFalse, ferryv1.ReasonRolloutHalted),
		"silent":  st("1", metav1.ConditionUnknown, ferryv1.ReasonAgentNotReporting),
	} {
		if n := rolloutCompleteCount(before, completeLagging, completeAll); n != 1 {
			t.Errorf("after %s: %s recorded %d times for one rollout, want 1", name, EventRolloutComplete, n)
		}
	}
}

// TestListenEvents: each node whose proxy cannot listen is named once in
// a ListenFailed, and ListenRecovered follows once none fails, over the
// passes that write a status.
func TestListenEvents(t *testing.T) {
	ag := &ferryv1.AppGroup{}
	ag.Spec.Listen.Port = 8080
	bind := func(node string) listenFailure {
		return listenFailure{node: node, message: "the proxy cannot listen: listen tcp 0.0.0.0:8080: bind: address already in use"}
	}
	ready := &ferryv1.AppGroupStatus{Conditions: []metav1.Condition{cond(ferryv1.ConditionReady, metav1.ConditionFalse, ferryv1.ReasonProcessesNotReady)}}
	deleting := &ferryv1.AppGroupStatus{Conditions: []metav1.Condition{cond(ferryv1.ConditionReady, metav1.ConditionFalse, ferryv1.ReasonDeleting)}}
	type pass struct {
		cur     *ferryv1.AppGroupStatus
		failing []listenFailure
		unheard []string
	}
	for _, tt := range []struct {
		name   string
		passes []pass
		want   []string // reason: note, per event
	}{
		{"none", []pass{{ready, nil, nil}, {ready, nil, nil}}, nil},
		{"one node fails, then listens", []pass{{ready, []listenFailure{bind("node-b")}, nil}, {ready, []listenFailure{bind("node-b")}, nil}, {ready, nil, nil}}, []string{
			"ListenFailed: The proxy on node-b cannot listen on listen.port 8080, so no request reaches its processes (node-b: listen tcp 0.0.0.0:8080: bind: address already in use)",
			"ListenRecovered: No selected node reports its proxy unable to listen on listen.port 8080 any more",
		}},
		{"a second node joins the failure, the first recovers", []pass{
			{ready, []listenFailure{bind("node-a")}, nil},
			{ready, []listenFailure{bind("node-a"), bind("node-c")}, nil},
			{ready, []listenFailure{bind("node-c")}, nil},
			{ready, nil, nil},
		}, []string{
			"ListenFailed: The proxy on node-a cannot listen on listen.port 8080, so no request reaches its processes (node-a: listen tcp 0.0.0.0:8080: bind: address already in use)",
			"ListenFailed: The proxy on node-c cannot listen on listen.port 8080, so no request reaches its processes (node-c: listen tcp 0.0.0.0:8080: bind: address already in use)",
			"ListenRecovered: No selected node reports its proxy unable to listen on listen.port 8080 any more",
		}},
		{"two at once", []pass{{ready, []listenFailure{bind("node-a"), bind("node-b")}, nil}}, []string{
			"ListenFailed: The proxies on node-a and node-b cannot listen on listen.port 8080, so no request reaches their processes (node-a: listen tcp 0.0.0.0:8080: bind: address already in use)",
		}},
		{"a warned node's agent goes silent, and comes back still failing", []pass{
			{ready, []listenFailure{bind("node-b")}, nil},
			{ready, nil, []string{"node-b"}},
			{ready, []listenFailure{bind("node-b")}, nil},
		}, []string{
			"ListenFailed: The proxy on node-b cannot listen on listen.port 8080, so no request reaches its processes (node-b: listen tcp 0.0.0.0:8080: bind: address already in use)",
		}},
		{"a warned node's agent goes silent, and comes back listening", []pass{
			{ready, []listenFailure{bind("node-b")}, nil},
			{ready, nil, []string{"node-b"}},
			{ready, nil, nil},
		}, []string{
			"ListenFailed: The proxy on node-b cannot listen on listen.port 8080, so no request reaches its processes (node-b: listen tcp 0.0.0.0:8080: bind: address already in use)",
			"ListenRecovered: No selected node reports its proxy unable to listen on listen.port 8080 any more",
		}},
		{"another node's agent is silent: no bearing", []pass{
			{ready, []listenFailure{bind("node-b")}, []string{"node-a"}},
			{ready, nil, []string{"node-a"}},
		}, []string{
			"ListenFailed: The proxy on node-b cannot listen on listen.port 8080, so no request reaches its processes (node-b: listen tcp 0.0.0.0:8080: bind: address already in use)",
			"ListenRecovered: No selected node reports its proxy unable to listen on listen.port 8080 any more",
		}},
		// A move from 7070 to 8080, whose new port is taken on node-b,
		// which serves on 7070 until it is free, while node-c serves
		// nothing.
		{"a node still serves on its old port", []pass{
			{ready, []listenFailure{{node: "node-b", message: "the proxy cannot listen on port 8080 (bind: address already in use); it still serves on the old port 7070", servesOn: 7070},
				{node: "node-c", message: "the proxy cannot listen: bind: permission denied"}}, nil},
			{ready, nil, nil},
		}, []string{
			"ListenFailed: The proxy on node-c cannot listen on listen.port 8080, so no request reaches its processes; " +
				"the proxy on node-b cannot listen on listen.port 8080 and serves on its old port 7070 until it can " +
				"(node-b: the proxy cannot listen on port 8080 (bind: address already in use); it still serves on the old port 7070)",
			"ListenRecovered: No selected node reports its proxy unable to listen on listen.port 8080 any more",
		}},
		// Found by review: "on node-b and node-c the proxy cannot listen".
		{"two nodes still serve on their old ports", []pass{
			{ready, []listenFailure{{node: "node-b", message: "the proxy cannot listen on port 8080", servesOn: 7070},
				{node: "node-c", message: "the proxy cannot listen on port 8080", servesOn: 7070}}, nil},
			{ready, []listenFailure{{node: "node-a", message: "the proxy cannot listen on port 8080", servesOn: 7070},
				{node: "node-d", message: "the proxy cannot listen on port 8080", servesOn: 6060}}, nil},
		}, []string{
			"ListenFailed: The proxies on node-b and node-c cannot listen on listen.port 8080 and serve on their old port 7070 " +
				"until they can (node-b: the proxy cannot listen on port 8080)",
			"ListenFailed: The proxies on node-a and node-d cannot listen on listen.port 8080 and serve on their old ports " +
				"until they can (node-a: the proxy cannot listen on port 8080)",
		}},
		{"deleting ends it without a recovery", []pass{{ready, []listenFailure{bind("node-a")}, nil}, {deleting, []listenFailure{bind("node-a")}, nil}, {deleting, nil, nil}}, []string{
			"ListenFailed: The proxy on node-a cannot listen on listen.port 8080, so no request reaches its processes (node-a: listen tcp 0.0.0.0:8080: bind: address already in use)",
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			var warned []string
			for _, p := range tt.passes {
				l := listenSeen{warned: warned, failing: p.failing, unheard: p.unheard}
				for _, ev := range listenEvents(ag, p.cur, l) {
					got = append(got, ev.Reason+": "+ev.Note)
					if ev.Type == "" || ev.Action == "" {
						t.Errorf("incomplete event %+v", ev)
					}
				}
				warned = l.warnedAfter(p.cur)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("events\n%q\nwant\n%q", got, tt.want)
			}
		})
	}
}

// rolloutPass runs what a manager pass does with pools at now, from
// reports (scope.reports: unstarted and settle while the target is not
// proven) to the status and its events (filtered by seen, which it
// updates), and leaves the status on ag.
func rolloutPass(ag *ferryv1.AppGroup, seen *rolloutSeen, nodes []string, now time.Time, pools ...*ferryv1.ProcessPool) []string {
	s := &scope{ag: ag, target: targetRev, now: now, settle: 10 * time.Second, nodes: nodes,
		pools: map[string]*ferryv1.ProcessPool{}, proven: ag.Status.ProvenRevision,
		halt: ag.Status.HaltedRollout.DeepCopy(), lastGood: ag.Status.LastRolledOut.DeepCopy()}
	for _, p := range pools {
		s.pools[p.Spec.NodeName] = p
	}
	reports := s.reports(staleAfter)
	s.remember(reports)
	in := s.input(reports)
	in.StaleAfter, in.Clean = staleAfter, true
	cur := computeStatus(in)
	old := ag.Status
	ag.Status = cur
	evs, next := seen.filter(&cur, rolledOutNodes(in), haltingNodes(in), statusEvents(ag, &old, &cur, silenceSeen{}))
	*seen = next
	var reasons []string
	for _, ev := range evs {
		reasons = append(reasons, ev.Reason)
	}
	return reasons
}

// reportedAt: reported at report; the conditions last moved, and the one
// process of spec.revision started, at start.
func reportedAt(report, start time.Time) poolOpt {
	return func(p *ferryv1.ProcessPool) {
		p.Status.HeartbeatTime = &metav1.Time{Time: report}
		for i := range p.Status.Conditions {
			p.Status.Conditions[i].LastTransitionTime = metav1.Time{Time: start}
		}
		p.Status.Processes = []ferryv1.ProcessInfo{{PID: 1, Revision: p.Spec.Revision, State: ferryv1.ProcessReady,
			StartedAt: metav1.Time{Time: start}}}
	}
}

// TestNodeJoinIsNoRollout: a node selected once the target ran rolled out
// everywhere restarts nothing. From the pass before its pool exists to
// its processes ready, RollingRestart stays RolloutComplete and no rollout
// event is recorded (found by a walkthrough: the status read RollingOut,
// then a second RolloutComplete came while the node's processes booted).
func TestNodeJoinIsNoRollout(t *testing.T) {
	sec := func(n int) time.Time { return t0.Add(time.Duration(n) * time.Second) }
	ag := &ferryv1.AppGroup{ObjectMeta: metav1.ObjectMeta{Name: "blog", Namespace: "ns", Generation: 1}}
	ag.Status = ferryv1.AppGroupStatus{Revision: targetRev, LastRolledOut: &ferryv1.RolledOutRevision{Revision: targetRev},
		ProvenRevision: targetRev}
	abc := []string{"node-a", "node-b", "node-c"}
	var seen rolloutSeen
	var evs []string
	pass := func(now time.Time, c ...*ferryv1.ProcessPool) {
		a := testPool("node-a", targetRev, rolledOut(2), reportedAt(now, t0.Add(-time.Hour)))
		b := testPool("node-b", targetRev, rolledOut(2), reportedAt(now, t0.Add(-time.Hour)))
		evs = append(evs, rolloutPass(ag, &seen, abc, now, append([]*ferryv1.ProcessPool{a, b}, c...)...)...)
		if rr := condition(&ag.Status, ferryv1.ConditionRollingRestart); rr.Reason != ferryv1.ReasonRolloutComplete {
			t.Errorf("at %s: RollingRestart %s: %s, want RolloutComplete", now.Sub(t0), rr.Reason, rr.Message)
		}
	}
	pass(sec(0))                                // selected, no pool yet
	pass(sec(1), testPool("node-c", targetRev)) // created, not reported
	pass(sec(2), testPool("node-c", targetRev, rolledOut(2), counts(0, 2, 2), notReadyAtAll, reportedAt(sec(2), sec(2))))
	pass(sec(4), testPool("node-c", targetRev, rolledOut(2), reportedAt(sec(4), sec(3))))
	if len(evs) != 0 {
		t.Errorf("a node's join recorded %v, want no event", evs)
	}
	if ag.Status.Nodes.Updated != 3 {
		t.Errorf("nodes %+v after the join, want 3 updated", ag.Status.Nodes)
	}
}

// TestCrashInCrashWindowIsNoSecondRollout: processes that crash soon after
// they were ready, on a target not yet proven, are respawned; the rollout
// does not go back to rolling, so RolloutComplete and NodeRolledOut are
// recorded once (found by review: unstarted takes them for unstarted, so
// the status goes back to rolling meanwhile; rolloutSeen).
func TestCrashInCrashWindowIsNoSecondRollout(t *testing.T) {
	sec := func(n int) time.Time { return t0.Add(time.Duration(n) * time.Second) }
	count := func(reasons []string, reason string) int {
		n := 0
		for _, r := range reasons {
			if r == reason {
				n++
			}
		}
		return n
	}
	t.Run("a new AppGroup on one node", func(t *testing.T) {
		ag := &ferryv1.AppGroup{ObjectMeta: metav1.ObjectMeta{Name: "blog", Namespace: "ns", Generation: 1}}
		var evs []string
		var seen rolloutSeen
		pass := func(now time.Time, p *ferryv1.ProcessPool) {
			evs = append(evs, rolloutPass(ag, &seen, []string{"node-a"}, now, p)...)
		}
		pass(sec(0), testPool("node-a", targetRev, rolledOut(2), counts(0, 2, 2), notReadyAtAll, reportedAt(sec(0), sec(0))))
		pass(sec(2), testPool("node-a", targetRev, rolledOut(2), reportedAt(sec(2), sec(1))))
		pass(sec(4), testPool("node-a", targetRev, rolledOut(2), counts(0, 2, 2), notReadyAtAll, crashedInWindow, reportedAt(sec(4), sec(4))))
		pass(sec(6), testPool("node-a", targetRev, rolledOut(2), reportedAt(sec(6), sec(4))))
		pass(sec(20), testPool("node-a", targetRev, rolledOut(2), reportedAt(sec(20), sec(4))))
		if ag.Status.ProvenRevision != targetRev {
			t.Fatalf("provenRevision %q after the crash window, want %s", ag.Status.ProvenRevision, targetRev)
		}
		// Proven: its agent restarts and starts the pool again from none
		// ready, with no crash to report. No second rollout either.
		pass(sec(30), testPool("node-a", targetRev, rolledOut(2), counts(0, 2, 2), notReadyAtAll, reportedAt(sec(30), sec(30))))
		pass(sec(32), testPool("node-a", targetRev, rolledOut(2), reportedAt(sec(32), sec(31))))
		if n := count(evs, EventRolloutComplete); n != 1 {
			t.Errorf("%d RolloutComplete events, want 1 (%v)", n, evs)
		}
	})
	t.Run("a revision bump, one node at a time", func(t *testing.T) {
		ag := &ferryv1.AppGroup{ObjectMeta: metav1.ObjectMeta{Name: "blog", Namespace: "ns", Generation: 1}}
		ag.Status = ferryv1.AppGroupStatus{Revision: oldRev, LastRolledOut: &ferryv1.RolledOutRevision{Revision: oldRev}, ProvenRevision: oldRev}
		var evs []string
		var seen rolloutSeen
		pass := func(now time.Time, a *ferryv1.ProcessPool) {
			b := testPool("node-b", oldRev, rolledOut(2), reportedAt(now, t0.Add(-time.Hour)))
			c := testPool("node-c", oldRev, rolledOut(2), reportedAt(now, t0.Add(-time.Hour)))
			evs = append(evs, rolloutPass(ag, &seen, []string{"node-a", "node-b", "node-c"}, now, a, b, c)...)
		}
		pass(sec(0), testPool("node-a", targetRev, restarting(1, 2), reportedAt(sec(0), t0.Add(-time.Hour))))
		pass(sec(2), testPool("node-a", targetRev, rolledOut(2), reportedAt(sec(2), sec(1))))
		pass(sec(4), testPool("node-a", targetRev, rolledOut(2), counts(0, 2, 2), notReadyAtAll, crashedInWindow, reportedAt(sec(4), sec(4))))
		pass(sec(6), testPool("node-a", targetRev, rolledOut(2), reportedAt(sec(6), sec(4))))
		// Its processes lived the crash window: the target is proven, and
		// node-a rolled out (TestNodeRolledOutOnceSettled).
		pass(sec(20), testPool("node-a", targetRev, rolledOut(2), reportedAt(sec(20), sec(4))))
		if n := count(evs, EventNodeRolledOut); n != 1 {
			t.Errorf("%d NodeRolledOut events, want 1 (%v)", n, evs)
		}
	})
}

// TestNodeRolledOutOnceSettled: the first node of a revision bump runs
// the target, not yet proven, on every process, ready; the next nodes wait
// for its new processes to live the crash window. NodeRolledOut is
// recorded once they have (the target is then proven), not before: an app
// that boots and then dies does so in the window, and the node is
// returned to what worked (before, "1/3 nodes run revision" came a second
// before each NodeReturned of such a revision).
func TestNodeRolledOutOnceSettled(t *testing.T) {
	sec := func(n int) time.Time { return t0.Add(time.Duration(n) * time.Second) }
	for _, tt := range []struct {
		name string
		// last is node-a's pool at the last pass, at sec(12).
		last func(now time.Time) *ferryv1.ProcessPool
		want []string // the events of the last pass
	}{
		{"its processes live the window", func(now time.Time) *ferryv1.ProcessPool {
			return testPool("node-a", targetRev, rolledOut(2), reportedAt(now, sec(1)))
		}, []string{EventNodeRolledOut}},
		{"its processes die in the window", func(now time.Time) *ferryv1.ProcessPool {
			return testPool("node-a", targetRev, failsSpawns(targetRev, "exited with status 3 1.2s after it was ready"), heartbeatAt(now))
		}, []string{EventRolloutHalted}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ag := &ferryv1.AppGroup{ObjectMeta: metav1.ObjectMeta{Name: "blog", Namespace: "ns", Generation: 1}}
			ag.Status = ferryv1.AppGroupStatus{Revision: oldRev, LastRolledOut: &ferryv1.RolledOutRevision{Revision: oldRev}, ProvenRevision: oldRev}
			var seen rolloutSeen
			pass := func(now time.Time, a *ferryv1.ProcessPool) []string {
				b := testPool("node-b", oldRev, rolledOut(2), reportedAt(now, t0.Add(-time.Hour)))
				c := testPool("node-c", oldRev, rolledOut(2), reportedAt(now, t0.Add(-time.Hour)))
				return rolloutPass(ag, &seen, []string{"node-a", "node-b", "node-c"}, now, a, b, c)
			}
			pass(sec(0), testPool("node-a", targetRev, restarting(1, 2), reportedAt(sec(0), t0.Add(-time.Hour))))
			if evs := pass(sec(2), testPool("node-a", targetRev, rolledOut(2), reportedAt(sec(2), sec(1)))); len(evs) != 0 {
				t.Errorf("node-a ready, in the crash window: events %v, want none", evs)
			}
			if got := pass(sec(12), tt.last(sec(12))); !slices.Equal(got, tt.want) {
				t.Errorf("events %v, want %v", got, tt.want)
			}
		})
	}
}

// TestRolloutSeenFilter: NodeRolledOut and RolloutComplete are recorded
// only for a node not seen updated before in the rollout of a revision,
// however often the status goes back and forth; a halt, or another
// revision, starts them over. A halt is recorded once for the nodes it
// names, until the rollout goes on; an incomplete rollout once per
// revision, until a halt.
func TestRolloutSeenFilter(t *testing.T) {
	ev := func(reason string) statusEvent { return statusEvent{Reason: reason} }
	type pass = seenPass
	b, c := []string{"node-b"}, []string{"node-c"}
	abc := []string{"node-a", "node-b", "node-c"}
	for _, tt := range []struct {
		name   string
		passes []pass
		want   []string
	}{
		// A node joins (or replaces one) after the completion and rolls
		// out; that is news (found by review).
		{"nodes that join once the revision ran everywhere", []pass{
			{"2", abc, []statusEvent{ev(EventRolloutComplete)}, nil},
			{"2", abc, nil, nil},
			{"2", []string{"node-a", "node-b", "node-d"}, []statusEvent{ev(EventNodeRolledOut)}, nil},
			{"2", []string{"node-a", "node-b", "node-d", "node-e"}, []statusEvent{ev(EventRolloutComplete)}, nil},
		}, []string{EventRolloutComplete, EventNodeRolledOut, EventRolloutComplete}},
		// Its processes crashed in the crash window, its agent restarted,
		// or it was silent for a while.
		{"a node drops back and returns", []pass{
			{"2", []string{"node-a"}, []statusEvent{ev(EventRolloutStarted), ev(EventNodeRolledOut)}, nil},
			{"2", nil, nil, nil},
			{"2", []string{"node-a"}, []statusEvent{ev(EventNodeRolledOut)}, nil},
			{"2", []string{"node-a", "node-b"}, []statusEvent{ev(EventNodeRolledOut)}, nil},
		}, []string{EventRolloutStarted, EventNodeRolledOut, EventNodeRolledOut}},
		{"complete, back to rolling, complete", []pass{
			{"2", abc, []statusEvent{ev(EventRolloutComplete)}, nil},
			{"2", []string{"node-a", "node-b"}, nil, nil},
			{"2", abc, []statusEvent{ev(EventRolloutComplete)}, nil},
		}, []string{EventRolloutComplete}},
		// From the halt on: the nodes it left updated were named.
		{"a halt starts them over", []pass{
			{"2", abc, []statusEvent{ev(EventRolloutComplete)}, nil},
			{"2", []string{"node-a"}, []statusEvent{ev(EventRolloutHalted)}, b},
			{"2", []string{"node-a"}, []statusEvent{ev(EventNodeRolledOut)}, nil},
			{"2", []string{"node-a", "node-b"}, []statusEvent{ev(EventNodeRolledOut)}, nil},
			{"2", abc, []statusEvent{ev(EventRolloutComplete)}, nil},
		}, []string{EventRolloutComplete, EventRolloutHalted, EventNodeRolledOut, EventRolloutComplete}},
		// Its agent fell silent (RollingRestart then waits for it, or reads
		// Unknown) and is heard again, still failing (found by review:
		// recorded twice).
		{"the same halt, back from a silence", []pass{
			{"2", []string{"node-a"}, []statusEvent{ev(EventRolloutHalted)}, b},
			{"2", []string{"node-a"}, nil, nil},
			{"2", []string{"node-a"}, []statusEvent{ev(EventRolloutHalted)}, b},
		}, []string{EventRolloutHalted}},
		{"a halt on another node", []pass{
			{"2", []string{"node-a"}, []statusEvent{ev(EventRolloutHalted)}, b},
			{"2", []string{"node-a"}, nil, nil},
			{"2", []string{"node-a"}, []statusEvent{ev(EventRolloutHalted)}, slices.Concat(b, c)},
		}, []string{EventRolloutHalted, EventRolloutHalted}},
		{"a halt after the rollout went on", []pass{
			{"2", []string{"node-a"}, []statusEvent{ev(EventRolloutHalted)}, b},
			{"2", []string{"node-a", "node-b"}, []statusEvent{ev(EventNodeRolledOut)}, nil},
			{"2", []string{"node-a", "node-b"}, []statusEvent{ev(EventRolloutHalted)}, b},
		}, []string{EventRolloutHalted, EventNodeRolledOut, EventRolloutHalted}},
		// A node of it fell silent (RollingRestart read Unknown) and is
		// heard again, its processes still left behind (found by review:
		// recorded again).
		{"the same incomplete rollout, back from a silence", []pass{
			{"2", []string{"node-a"}, []statusEvent{ev(EventRolloutIncomplete)}, nil},
			{"2", []string{"node-a"}, nil, nil},
			{"2", []string{"node-a"}, []statusEvent{ev(EventRolloutIncomplete)}, nil},
		}, []string{EventRolloutIncomplete}},
		{"incomplete after a halt", []pass{
			{"2", []string{"node-a"}, []statusEvent{ev(EventRolloutIncomplete)}, nil},
			{"2", []string{"node-a"}, []statusEvent{ev(EventRolloutHalted)}, b},
			{"2", []string{"node-a"}, []statusEvent{ev(EventRolloutIncomplete)}, nil},
		}, []string{EventRolloutIncomplete, EventRolloutHalted, EventRolloutIncomplete}},
		{"another revision incomplete", []pass{
			{"2", []string{"node-a"}, []statusEvent{ev(EventRolloutIncomplete)}, nil},
			{"3", nil, []statusEvent{ev(EventRolloutStarted)}, nil},
			{"3", []string{"node-a"}, []statusEvent{ev(EventRolloutIncomplete)}, nil},
		}, []string{EventRolloutIncomplete, EventRolloutStarted, EventRolloutIncomplete}},
		{"another revision starts them over", []pass{
			{"2", abc, []statusEvent{ev(EventRolloutComplete)}, nil},
			{"3", []string{"node-a"}, []statusEvent{ev(EventRolloutStarted), ev(EventNodeRolledOut)}, nil},
			{"3", abc, []statusEvent{ev(EventRolloutComplete)}, nil},
		}, []string{EventRolloutComplete, EventRolloutStarted, EventNodeRolledOut, EventRolloutComplete}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := filterPasses(rolloutSeen{}, tt.passes); !slices.Equal(got, tt.want) {
				t.Errorf("events %v, want %v", got, tt.want)
			}
		})
	}
}

// seenPass is a status write as rolloutSeen.filter sees it.
type seenPass struct {
	revision string
	updated  []string // the nodes updated
	evs      []statusEvent
	halting  []string // the nodes that halt the rollout
}

// filterPasses runs passes through seen's filter, over three nodes, and
// returns the reasons of the events it lets through.
func filterPasses(seen rolloutSeen, passes []seenPass) []string {
	var got []string
	for _, p := range passes {
		var evs []statusEvent
		cur := &ferryv1.AppGroupStatus{Revision: p.revision, Nodes: ferryv1.NodeCounts{Updated: int32(len(p.updated)), Total: 3}}
		evs, seen = seen.filter(cur, p.updated, p.halting, p.evs)
		for _, e := range evs {
			got = append(got, e.Reason)
		}
	}
	return got
}

// TestNoRolloutCompleteWhenNoNodeIsLeft: mid-rollout the nodeSelector
// stops matching any node (or another AppGroup takes listen.port on all of
// them). RollingRestart read RolloutComplete ("No node is selected"), but
// nothing rolled out: no RolloutComplete is recorded then, and the one of
// the real completion, once nodes are selected again, is not lost. The
// selection's loss and return are events of their own.
func TestNoRolloutCompleteWhenNoNodeIsLeft(t *testing.T) {
	ab := []string{"node-a", "node-b"}
	passes := []rollupInput{
		input(ab, testPool("node-a", targetRev, restarting(1, 2)), testPool("node-b", oldRev, rolledOut(2))),
		input(nil),
		input(ab, testPool("node-a", targetRev, rolledOut(2), counts(0, 2, 2), notReadyAtAll), testPool("node-b", targetRev, rolledOut(2), counts(0, 2, 2), notReadyAtAll)),
		input(ab, testPool("node-a", targetRev, rolledOut(2)), testPool("node-b", targetRev, rolledOut(2))),
	}
	var seen rolloutSeen
	var got []string
	old := ferryv1.AppGroupStatus{}
	for i, in := range passes {
		unstarted(in.Reports)
		in.AppGroup.Status = old
		cur := computeStatus(in)
		evs, s := seen.filter(&cur, rolledOutNodes(in), haltingNodes(in), statusEvents(in.AppGroup, &old, &cur, silenceSeen{}))
		seen = s
		for _, ev := range evs {
			got = append(got, ev.Reason)
			if ev.Reason == EventRolloutComplete && i != len(passes)-1 {
				t.Errorf("pass %d: %s recorded with no node rolled out: %s", i, ev.Reason, ev.Note)
			}
		}
		old = cur
	}
	if want := []string{EventRolloutStarted, EventNoNodes, EventNodesSelected, EventRolloutComplete}; !slices.Equal(got, want) {
		t.Errorf("events %v, want %v", got, want)
	}
}

// TestListenEventsAgentStops: a node warned of (ListenFailed) whose agent
// then stops reports AgentStopping in Ready instead of its port's
// failure: its port is no more free for that. Its warning stands, as a
// silent agent's does, with no ListenRecovered; the next agent's report
// says whether the port is free.
func TestListenEventsAgentStops(t *testing.T) {
	ag := &ferryv1.AppGroup{}
	ag.Spec.Listen.Port = 8080
	ab := []string{"node-a", "node-b"}
	stopping := input(ab, testPool("node-a", targetRev, rolledOut(2)), testPool("node-b", targetRev, rolledOut(2), func(p *ferryv1.ProcessPool) {
		setCond(p, ferryv1.ConditionReady, metav1.ConditionFalse, ferryv1.ReasonAgentStopping, "the agent on node-b is stopping")
	}))
	cur := computeStatus(stopping)
	l := listenSeen{warned: []string{"node-b"}, failing: listenFailures(stopping), unheard: unheardNodes(stopping)}
	for _, e := range listenEvents(ag, &cur, l) {
		t.Errorf("event as the warned node's agent stops: %s: %s", e.Reason, e.Note)
	}
	if got := l.warnedAfter(&cur); !slices.Equal(got, []string{"node-b"}) {
		t.Errorf("warned after the agent stopped: %v, want [node-b]", got)
	}
}

// TestSeededRolloutSeen: a manager that just started (seedRollout) takes
// the events of the status it finds as recorded: a node back from a
// silence is no news, nor the same halt or completion; a node beyond the
// count the status showed, or another revision, is.
func TestSeededRolloutSeen(t *testing.T) {
	ev := func(reason string) statusEvent { return statusEvent{Reason: reason} }
	rr := func(status metav1.ConditionStatus, reason string) []metav1.Condition {
		return []metav1.Condition{{Type: ferryv1.ConditionRollingRestart, Status: status, Reason: reason}}
	}
	type pass = seenPass
	a, ab := []string{"node-a"}, []string{"node-a", "node-b"}
	for _, tt := range []struct {
		name   string
		found  ferryv1.AppGroupStatus
		passes []pass
		want   []string
	}{
		{"a node back from a silence, then one more",
			ferryv1.AppGroupStatus{Revision: "2", ProvenRevision: "2", Nodes: ferryv1.NodeCounts{Updated: 1, Total: 3}, Conditions: rr(metav1.ConditionTrue, ferryv1.ReasonRollingOut)},
			[]pass{
				{"2", nil, nil, nil},
				{"2", a, []statusEvent{ev(EventNodeRolledOut)}, nil},
				{"2", ab, []statusEvent{ev(EventNodeRolledOut)}, nil},
			}, []string{EventNodeRolledOut}},
		{"the same halt back from a silence, then a halt after the rollout went on",
			ferryv1.AppGroupStatus{Revision: "2", ProvenRevision: "2", Nodes: ferryv1.NodeCounts{Updated: 1, Total: 3}, Conditions: rr(metav1.ConditionFalse, ferryv1.ReasonRolloutHalted)},
			[]pass{
				{"2", a, nil, nil},
				{"2", a, []statusEvent{ev(EventRolloutHalted)}, []string{"node-b"}},
				{"2", ab, []statusEvent{ev(EventNodeRolledOut)}, nil},
				{"2", ab, []statusEvent{ev(EventRolloutHalted)}, []string{"node-c"}},
			}, []string{EventNodeRolledOut, EventRolloutHalted}},
		// It restarted while node-a's new processes lived the crash
		// window: no NodeRolledOut was recorded of it yet.
		{"a node that proves the revision after the restart",
			ferryv1.AppGroupStatus{Revision: "2", Nodes: ferryv1.NodeCounts{Updated: 1, Total: 3}, Conditions: rr(metav1.ConditionTrue, ferryv1.ReasonWaitingForWave)},
			[]pass{
				{"2", a, []statusEvent{ev(EventNodeRolledOut)}, nil},
			}, []string{EventNodeRolledOut}},
		{"complete, back to rolling, complete",
			ferryv1.AppGroupStatus{Revision: "2", ProvenRevision: "2", Nodes: ferryv1.NodeCounts{Updated: 2, Total: 2}, Conditions: rr(metav1.ConditionFalse, ferryv1.ReasonRolloutComplete)},
			[]pass{
				{"2", a, nil, nil},
				{"2", ab, []statusEvent{ev(EventRolloutComplete)}, nil},
			}, nil},
		{"the same incomplete rollout back from a silence",
			ferryv1.AppGroupStatus{Revision: "2", ProvenRevision: "2", Nodes: ferryv1.NodeCounts{Updated: 1, Total: 2}, Conditions: rr(metav1.ConditionFalse, ferryv1.ReasonRolloutIncomplete)},
			[]pass{
				{"2", a, nil, nil},
				{"2", a, []statusEvent{ev(EventRolloutIncomplete)}, nil},
			}, nil},
		{"another revision",
			ferryv1.AppGroupStatus{Revision: "2", ProvenRevision: "2", Nodes: ferryv1.NodeCounts{Updated: 2, Total: 2}, Conditions: rr(metav1.ConditionFalse, ferryv1.ReasonRolloutComplete)},
			[]pass{
				{"3", a, []statusEvent{ev(EventRolloutStarted), ev(EventNodeRolledOut)}, nil},
				{"3", ab, []statusEvent{ev(EventRolloutComplete)}, nil},
			}, []string{EventRolloutStarted, EventNodeRolledOut, EventRolloutComplete}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := filterPasses(seedRollout(&tt.found, &tt.found, nil), tt.passes); !slices.Equal(got, tt.want) {
				t.Errorf("events %v, want %v", got, tt.want)
			}
		})
	}
}

func TestUnknownAnnotations(t *testing.T) {
	ag := &ferryv1.AppGroup{ObjectMeta: metav1.ObjectMeta{Annotations: map[string]string{
		ferryv1.RevisionAnnotation:                         "1",
		"ferry.dev/revison":                                "2",
		"ferry.dev/Revision":                               "2",
		"ferry.dev/revisions":                              "2",
		"apps.ferry.dev/revision":                          "2",
		"notferry.dev/revision":                            "2",
		"example.com/revision":                             "2",
		"ferry.dev":                                        "2",
		"kubectl.kubernetes.io/last-applied-configuration": "{}",
	}}}
	unknown := unknownAnnotations(ag)
	want := []string{"apps.ferry.dev/revision", "ferry.dev/Revision", "ferry.dev/revisions", "ferry.dev/revison"}
	if got := slices.Sorted(maps.Keys(unknown)); !slices.Equal(got, want) {
		t.Fatalf("unknown %v, want %v", got, want)
	}
	evs := unknownAnnotationEvents(unknown, map[string]string{"ferry.dev/revison": "2", "ferry.dev/revisions": "1"})
	want1 := statusEvent{Type: corev1.EventTypeWarning, Reason: EventUnknownAnnotation, Action: "Validate",
		Note: `Ferry does not read annotations apps.ferry.dev/revision ("2"; the closest one Ferry reads is ferry.dev/revision), ` +
			`ferry.dev/Revision ("2"; the closest one Ferry reads is ferry.dev/revision) and ` +
			`ferry.dev/revisions ("2"; the closest one Ferry reads is ferry.dev/revision), so they change nothing`}
	if !slices.Equal(evs, []statusEvent{want1}) {
		t.Errorf("events\n%+v\nwant\n%+v", evs, want1)
	}
	if evs := unknownAnnotationEvents(unknown, unknown); evs != nil {
		t.Errorf("events of annotations warned of: %+v", evs)
	}
}

// TestRolloutHaltSpreads: a new AppGroup's first revision fails on both
// nodes, their agents reporting one after the other. RollingRestart, halted
// since the first, comes to name both; the RolloutHalted event named the
// first alone, and was not recorded again. It is, once per node it did not
// name.
func TestRolloutHaltSpreads(t *testing.T) {
	halted := func(msg string) *ferryv1.AppGroupStatus {
		return &ferryv1.AppGroupStatus{Revision: "1", Nodes: ferryv1.NodeCounts{Total: 2}, Conditions: []metav1.Condition{{
			Type: ferryv1.ConditionRollingRestart, Status: metav1.ConditionFalse, Reason: ferryv1.ReasonRolloutHalted, Message: msg}}}
	}
	const halt = "Rollout of revision 1 halted at 0/2 nodes updated: it failed to spawn on "
	onA, onAB := halt+"node-a (x); change it", halt+"node-a and node-b (x); change it"
	// six is node-a to node-e, and node-<sixth>.
	six := func(sixth string) []string {
		return []string{"node-a", "node-b", "node-c", "node-d", "node-e", "node-" + sixth}
	}
	first := []statusEvent{{Type: corev1.EventTypeWarning, Reason: EventRolloutHalted, Action: "Rollout", Note: onA}}
	for _, tt := range []struct {
		name   string
		seen   rolloutSeen
		passes [][]string // the nodes halting at each pass after the first
		want   []string   // the notes recorded after the first
	}{
		{name: "spreads to node-b", passes: [][]string{{"node-a", "node-b"}}, want: []string{onAB}},
		{name: "the same nodes again", passes: [][]string{{"node-a"}}},
		// Its agent falls silent and is heard again.
		{name: "node-a silent and back", passes: [][]string{{"node-a", "node-b"}, {"node-b"}, {"node-a", "node-b"}}, want: []string{onAB}},
		// node-a's agent fell silent as node-b's reported: node-b is
		// news, node-a back is not.
		{name: "node-b while node-a is silent", passes: [][]string{{"node-b"}, {"node-a", "node-b"}}, want: []string{onAB}},
		// Past maxListedNodes, RollingRestart's message ends "and N
		// more": the same message for another sixth node. The nodes
		// halting are compared, not the message (the same in every pass
		// here), and the note names those the events before did not.
		{name: "spreads beyond the first five", passes: [][]string{six("f"), six("g")},
			want: []string{onAB + "; now also on node-b, node-c, node-d, node-e and node-f", onAB + "; now also on node-g"}},
		{name: "the same six again", passes: [][]string{six("f"), six("f")},
			want: []string{onAB + "; now also on node-b, node-c, node-d, node-e and node-f"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			evs, seen := rolloutSeen{}.filter(halted(onA), nil, []string{"node-a"}, first)
			if len(evs) != 1 {
				t.Fatalf("first halt: %+v", evs)
			}
			var got []string
			for _, halting := range tt.passes {
				evs, seen = seen.filter(halted(onAB), nil, halting, nil)
				for _, ev := range evs {
					if ev.Reason != EventRolloutHalted || ev.Type != corev1.EventTypeWarning {
						t.Errorf("event %+v", ev)
					}
					got = append(got, ev.Note)
				}
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("notes %q, want %q", got, tt.want)
			}
		})
	}
	// Its first pass found the status as it would write it (or left
	// RollingRestart as it was): the nodes halting then were named.
	t.Run("spreads after a restart", func(t *testing.T) {
		seen := seedRollout(halted(onA), halted(onA), []string{"node-a"})
		evs, seen := seen.filter(halted(onAB), nil, []string{"node-a", "node-b"}, nil)
		if len(evs) != 1 || evs[0].Note != onAB || !evs[0].Again {
			t.Errorf("events %+v, want one RolloutHalted again: %s", evs, onAB)
		}
		if evs, _ := seen.filter(halted(onAB), nil, []string{"node-b"}, nil); len(evs) != 0 {
			t.Errorf("node-a silent: events %+v", evs)
		}
		if evs, _ := seedRollout(halted(onAB), halted(onAB), []string{"node-a", "node-b"}).filter(halted(onAB), nil, []string{"node-a", "node-b"}, nil); len(evs) != 0 {
			t.Errorf("the same nodes: events %+v", evs)
		}
	})
	// Its first pass moved RollingRestart: the halt spread while no
	// manager ran. The message it found names the nodes named.
	t.Run("spread while no manager ran", func(t *testing.T) {
		evs, seen := seedRollout(halted(onA), halted(onAB), []string{"node-a", "node-b"}).filter(halted(onAB), nil, []string{"node-a", "node-b"}, nil)
		if len(evs) != 1 || evs[0].Note != onAB || !evs[0].Again {
			t.Errorf("events %+v, want one RolloutHalted again: %s", evs, onAB)
		}
		if evs, _ := seen.filter(halted(onAB), nil, []string{"node-a", "node-b"}, nil); len(evs) != 0 {
			t.Errorf("the same nodes: events %+v", evs)
		}
	})
	// Past the first five the message it found does not say which nodes
	// were named: those halting now are taken as named.
	t.Run("past five while no manager ran", func(t *testing.T) {
		found := halted(halt + "node-a, node-b, node-c, node-d, node-e and 1 more (x); change it")
		if evs, _ := seedRollout(found, found, six("g")).filter(found, nil, six("g"), nil); len(evs) != 0 {
			t.Errorf("events %+v", evs)
		}
	})
	// Its first pass moved RollingRestart off the halt's revision: the
	// nodes named are not known.
	t.Run("another revision", func(t *testing.T) {
		cur := halted(onAB)
		cur.Revision = "2"
		if seen := seedRollout(halted(onA), cur, []string{"node-a", "node-b"}); !seen.haltSeen || seen.halted != nil {
			t.Errorf("seen %+v, want the halt seen, its nodes not known", seen)
		}
	})
}

// TestNamedIn: the nodes halting that a halted RollingRestart's message
// names in its lists of nodes, and in no other word of it; all of them
// where the message cannot say (a list past five, "and N more", or cut
// inside a list, or a message of another form).
func TestNamedIn(t *testing.T) {
	const halt = "Rollout of revision 2-abc halted at 0/3 nodes updated: "
	for _, tt := range []struct {
		msg     string
		halting []string
		want    []string
	}{
		{halt + "it failed to spawn on node-1 and node-2 (exited); change it",
			[]string{"node-1", "node-2", "node-3"}, []string{"node-1", "node-2"}},
		// A name within another's is not named.
		{halt + "it failed to spawn on node-10 (exited); change it", []string{"node-1", "node-10"}, []string{"node-10"}},
		{halt + "node-a resisting a deployment error; it failed to spawn on node-b.example.com (x); change it",
			[]string{"node-a", "node-b.example.com", "node-c"}, []string{"node-a", "node-b.example.com"}},
		{halt + "node-a and node-b resisting a deployment error; change it", []string{"node-a", "node-b", "node-c"}, []string{"node-a", "node-b"}},
		{halt + "it died on node-a soon after it was ready (exited with status 1 1.2s after it was ready); change it",
			[]string{"node-a", "node-b"}, []string{"node-a"}},
		// A clause per kind of failure (byFailure): the second one's
		// nodes are named too, and a death's reason, the agent's own
		// words, is no clause.
		{halt + "it died on node-b soon after it was ready (exited with status 1 soon after it was ready); " +
			"it failed to spawn on node-a and node-c (the app failed to load); change it",
			[]string{"node-a", "node-b", "node-c", "node-d"}, []string{"node-a", "node-b", "node-c"}},
		{halt + "node-a resisting a deployment error; it died on node-b soon after it was ready (exited with status 1 soon after it was ready), " +
			"with no older process to keep serving; it failed to spawn on node-c (x), older processes serving there meanwhile; change it",
			[]string{"node-a", "node-b", "node-c", "node-d"}, []string{"node-a", "node-b", "node-c"}},
		// Older processes serving on some of its nodes, before the
		// second clause, a ")" in the reason.
		{halt + "it died on node-b and node-d soon after it was ready (exited with status 1 (SIGTERM) soon after it was ready), " +
			"older processes serving meanwhile on node-b but none on node-d; it failed to spawn on node-a (x); change it",
			[]string{"node-a", "node-b", "node-c", "node-d"}, []string{"node-a", "node-b", "node-d"}},
		// An app's exception text quoted in a young death's reason
		// holding what reads as the second clause: nothing between it and
		// the reason's ")" is a note olderNote writes, so which nodes it
		// named is not known.
		{halt + "it died on node-b soon after it was ready (exited with status 1 1.2s after it was ready: " +
			"RuntimeError: boom after it was ready; it failed to spawn on node-x (y)); change it",
			[]string{"node-b", "node-c", "node-x"}, []string{"node-b", "node-c", "node-x"}},
		// Cut before its second clause, or inside its list: which nodes
		// it named is not known.
		{truncate(halt+"it died on node-b soon after it was ready (exited with status 1 soon after it was ready), "+
			"with no older process to keep serving on "+strings.Repeat("x", maxMessage)+"; it failed to spawn on node-a (x); change it", maxMessage),
			[]string{"node-a", "node-b"}, []string{"node-a", "node-b"}},
		{truncate(halt+"it died on node-b soon after it was ready (exited with status 1 soon after it was ready); it failed to spawn on node-a, "+
			strings.Repeat("x", maxMessage)+" (x); change it", maxMessage), []string{"node-a", "node-b"}, []string{"node-a", "node-b"}},
		// The halt remembered, its node back on an older revision.
		{halt + "it failed to spawn on node-b (exited), which now runs revision 1-abc; change it", []string{"node-b"}, []string{"node-b"}},
		// The halt moved to another node: none named, and not nil.
		{halt + "it failed to spawn on node-a (x); change it", []string{"node-b"}, []string{}},
		// Nodes whose names are words of the message, or of the reason
		// it quotes, that no list holds (found by review: all named).
		{halt + "it failed to spawn on node-a (x); change it", []string{"node-a", "a", "on", "it", "change", "2-abc", "0/3"}, []string{"node-a"}},
		{halt + "it failed to spawn on node-a (exited with status 1: cannot reach db-1 and node-b resisting a deployment error); change it",
			[]string{"node-a", "db-1", "node-b"}, []string{"node-a"}},
		{halt + "a and on resisting a deployment error; it failed to spawn on it (x); change it",
			[]string{"a", "on", "it", "and", "resisting"}, []string{"a", "on", "it"}},
		{halt + "and resisting a deployment error; change it", []string{"and", "a"}, []string{"and"}},
		// "and 2 more" in the reason says nothing of the lists.
		{halt + "it failed to spawn on node-a (3 failed and 2 more waited); change it", []string{"node-a", "node-b"}, []string{"node-a"}},
		// Cut after its lists: they are all there.
		{halt + "it failed to spawn on node-a (" + strings.Repeat("x", 900) + "...", []string{"node-a", "node-b"}, []string{"node-a"}},
		// All of them where the message cannot say.
		{halt + "it failed to spawn on node-a, node-b, node-c, node-d, node-e and 2 more (x); change it",
			[]string{"node-a", "node-f", "node-g"}, []string{"node-a", "node-f", "node-g"}},
		{halt + "node-a, node-b, node-c, node-d, node-e and 1 more resisting a deployment error; it failed to spawn on node-g (x); change it",
			[]string{"node-f", "node-g"}, []string{"node-f", "node-g"}},
		{halt + "it failed to spawn on node-a, node-b, node-c, node-d, node-e, node-f..." /* cut */, []string{"node-a", "node-g"}, []string{"node-a", "node-g"}},
		{"it failed to spawn on node-a", []string{"node-a", "node-b"}, []string{"node-a", "node-b"}},
	} {
		got := namedIn(tt.msg, tt.halting)
		if got == nil || !slices.Equal(got, tt.want) {
			t.Errorf("namedIn(%q, %q) = %#v, want %q", tt.msg, tt.halting, got, tt.want)
		}
	}
}

// TestNamedInReadsWhatHaltedConditionWrites: namedIn reads the lists of
// RollingRestart's messages as rollingRestartCondition writes them: the
// nodes halting, named as they are, and nothing of the reason quoted.
func TestNamedInReadsWhatHaltedConditionWrites(t *testing.T) {
	failing := func(node, reason string) *ferryv1.ProcessPool {
		return testPool(node, targetRev, failsSpawns(targetRev, reason))
	}
	resisting := func(node string) *ferryv1.ProcessPool {
		return testPool(node, targetRev, rolledOut(2), resists(targetRev, "x", ""))
	}
	for _, tt := range []struct {
		name  string
		in    rollupInput
		named []string
	}{
		{"failing", input([]string{"a", "on", "node-c"}, failing("a", "the app failed to load"), failing("on", "the app failed to load"),
			testPool("node-c", oldRev, rolledOut(2))), []string{"a", "on"}},
		{"the reason names a node", input([]string{"node-a", "db"}, failing("node-a", "cannot reach db (it failed to spawn on db)"),
			testPool("db", oldRev, rolledOut(2))), []string{"node-a"}},
		{"died", input([]string{"it", "node-b"}, failing("it", "exited with status 1 1.2s after it was ready"),
			testPool("node-b", oldRev, rolledOut(2))), []string{"it"}},
		// A clause per kind of failure: "on" only in the second.
		{"died and failed", input([]string{"on", "it", "node-c"}, failing("on", "the app failed to load"),
			failing("it", "exited with status 1 1.2s after it was ready"), testPool("node-c", oldRev, rolledOut(2))), []string{"on", "it"}},
		{"died and failed, remembered", withHalt(input([]string{"node-a", "node-b", "node-c"}, failing("node-a", "the app failed to load"),
			failing("node-b", "exited with status 1 1.2s after it was ready"), testPool("node-c", oldRev, rolledOut(2))),
			"node-a", "the app failed to load"), []string{"node-a", "node-b"}},
		{"resisting and failing", input([]string{"and", "of", "node-c"}, resisting("and"), failing("of", "error 1 of 2"),
			testPool("node-c", oldRev, rolledOut(2))), []string{"and", "of"}},
		{"remembered", withHalt(input([]string{"node-a", "at"}, testPool("node-a", targetRev, rolledOut(2)), testPool("at", oldRev, rolledOut(2))),
			"at", "exited with status 1 at node-a"), []string{"at"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := rollingRestartCondition(looped(tt.in))
			if c.Reason != ferryv1.ReasonRolloutHalted {
				t.Fatalf("RollingRestart %s: %s", c.Reason, c.Message)
			}
			if got := namedIn(c.Message, tt.in.Nodes); !slices.Equal(got, tt.named) {
				t.Errorf("namedIn(%q) = %q, want %q", c.Message, got, tt.named)
			}
		})
	}
}

// TestHaltRecordedGuardsTheFilter: a pass whose status stands runs
// filter only where haltRecorded holds and a node halting is not among
// those s remembers: filter, given no event, records none elsewhere.
func TestHaltRecordedGuardsTheFilter(t *testing.T) {
	status := func(revision, reason string) *ferryv1.AppGroupStatus {
		return &ferryv1.AppGroupStatus{Revision: revision, Conditions: []metav1.Condition{{
			Type: ferryv1.ConditionRollingRestart, Status: metav1.ConditionFalse, Reason: reason, Message: "m"}}}
	}
	ab := []string{"node-a", "node-b"}
	for _, seen := range []rolloutSeen{
		{}, {revision: "1"}, {revision: "1", haltSeen: true}, {revision: "1", halted: []string{}},
		{revision: "1", halted: []string{"node-a"}}, {revision: "2", halted: []string{"node-a"}},
		{revision: "1", halted: ab, nodes: map[string]bool{"node-c": true}},
	} {
		for _, cur := range []*ferryv1.AppGroupStatus{status("1", ferryv1.ReasonRolloutHalted), status("2", ferryv1.ReasonRolloutHalted),
			status("1", ferryv1.ReasonRollingOut), status("1", ferryv1.ReasonRolloutComplete)} {
			for _, halting := range [][]string{nil, {"node-a"}, ab, {"node-c"}} {
				evs, _ := seen.filter(cur, nil, halting, nil)
				guard := seen.haltRecorded(cur) && len(haltingAnew(halting, seen.halted)) > 0
				if len(evs) > 0 && !guard || guard && len(evs) != 1 {
					t.Errorf("seen %+v, %s of %s, halting %q: guard %v, events %+v", seen,
						condition(cur, ferryv1.ConditionRollingRestart).Reason, cur.Revision, halting, guard, evs)
				}
			}
		}
	}
}

// TestSpreadOnly: a pass whose status stands records a halt that spread
// to a node its message does not name (past maxListedNodes), once,
// related to that node's pool, and remembers that node named; nothing
// where every node halting is named, or the status shows no halt.
func TestSpreadOnly(t *testing.T) {
	nodes := []string{"node-a", "node-b", "node-c", "node-d", "node-e", "node-f", "node-g"}
	var pools []*ferryv1.ProcessPool
	for _, node := range nodes {
		pools = append(pools, testPool(node, targetRev, rolledOut(2), resists(targetRev, "exited with status 1", "")))
	}
	in := input(nodes, pools...)
	cur := computeStatus(in)
	if c := condition(&cur, ferryv1.ConditionRollingRestart); c.Reason != ferryv1.ReasonRolloutHalted {
		t.Fatalf("RollingRestart %s: %s", c.Reason, c.Message)
	}

	seen := rolloutSeen{revision: targetRev, halted: nodes[:6]}
	evs, next := seen.spreadOnly(&cur, in)
	if len(evs) != 1 || evs[0].Reason != EventRolloutHalted || !evs[0].Again {
		t.Fatalf("events %+v, want one RolloutHalted again", evs)
	}
	if p, ok := evs[0].Related.(*ferryv1.ProcessPool); !ok || p.Spec.NodeName != "node-g" {
		t.Errorf("related %v, want node-g's pool", evs[0].Related)
	}
	if !slices.Equal(next.halted, nodes) {
		t.Errorf("named next %q, want %q", next.halted, nodes)
	}

	if evs, again := next.spreadOnly(&cur, in); len(evs) > 0 || !slices.Equal(again.halted, nodes) {
		t.Errorf("every node named: events %+v, named %q", evs, again.halted)
	}
	complete := cur.DeepCopy()
	meta.SetStatusCondition(&complete.Conditions, metav1.Condition{Type: ferryv1.ConditionRollingRestart,
		Status: metav1.ConditionFalse, Reason: ferryv1.ReasonRolloutComplete})
	if evs, _ := seen.spreadOnly(complete, in); len(evs) > 0 {
		t.Errorf("no halt shown: events %+v", evs)
	}
}

// TestRelateSpread: a RolloutHalted of a halt that spread relates the
// pool of the first node it names anew; recorded while the status
// stands, it has the AppGroup's resourceVersion of the event before it,
// into which the recorder would fold it.
func TestRelateSpread(t *testing.T) {
	pool := func(node string) *ferryv1.ProcessPool {
		return &ferryv1.ProcessPool{ObjectMeta: metav1.ObjectMeta{Name: "blog-" + node}}
	}
	reports := map[string]poolReport{"node-a": {Node: "node-a", Pool: pool("node-a")}, "node-g": {Node: "node-g", Pool: pool("node-g")}}
	evs := []statusEvent{{Reason: EventRolloutHalted, Again: true}, {Reason: EventNodeReturned}}
	got := relateSpread(evs, []string{"node-a", "node-f"}, []string{"node-a", "node-g"}, reports)
	if p, ok := got[0].Related.(*ferryv1.ProcessPool); !ok || p.Name != "blog-node-g" {
		t.Errorf("related %+v, want node-g's pool", got[0].Related)
	}
	if got[1].Related != nil || evs[0].Related != nil {
		t.Errorf("related %+v and %+v, want the other event and evs left as they were", got[1].Related, evs[0].Related)
	}
	// A first RolloutHalted names them all in its message alone.
	if got := relateSpread([]statusEvent{{Reason: EventRolloutHalted}}, nil, []string{"node-a"}, reports); got[0].Related != nil {
		t.Errorf("first halt related %+v", got[0].Related)
	}
}
