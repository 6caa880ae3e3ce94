package controllers

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"strings"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/events"
	clocktesting "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"
	"sigs.k8s.io/controller-runtime/pkg/event"

	ferryv1 "github.com/ferry-dev/ferry/api/v1alpha1"
	"github.com/ferry-dev/ferry/controllers/contract"
	"github.com/ferry-dev/ferry/internal/scheme"
)

func TestDesiredEndpoints(t *testing.T) {
	active := assessAll(targetRev,
		testPool("node-a", targetRev, rolledOut(2), address("192.0.2.2:8080")),
		testPool("node-b", targetRev, rolledOut(2), address("192.0.2.3:8080"), notReady),
		testPool("node-c", targetRev, rolledOut(2), address("192.0.2.4:8080"), heartbeatAt(t0.Add(-time.Hour))),
		testPool("node-d", targetRev, rolledOut(2), address("")),                 // no address yet
		testPool("node-e", targetRev, rolledOut(2), address("[::1]:8080")),       // not IPv4
		testPool("node-f", targetRev, rolledOut(2), address("10.0.0.7")),         // no port
		testPool("node-g", targetRev, rolledOut(2), address("node-g:8080")),      // a name
		testPool("node-h", targetRev, rolledOut(2), address("127.0.0.2:8080")),   // loopback: rejected by the API
		testPool("node-i", targetRev, rolledOut(2), address("169.254.1.1:8080")), // link-local: rejected too
		testPool("node-j", targetRev, rolledOut(0), address("192.0.2.10:8080")),  // no process ready
		testPool("node-k", targetRev, rolledOut(2), address("192.0.2.11:8080"), func(p *ferryv1.ProcessPool) {
			setCond(p, ferryv1.ConditionReady, metav1.ConditionFalse, ferryv1.ReasonListenFailed, "address already in use")
		}),
		// listen.port 8080 is taken: it still serves on its old port.
		testPool("node-l", targetRev, rolledOut(2), address("192.0.2.12:7070"), func(p *ferryv1.ProcessPool) {
			setCond(p, ferryv1.ConditionReady, metav1.ConditionFalse, ferryv1.ReasonListenFailed, "cannot listen on port 8080; still serves on 7070")
		}),
		// Its agent stops (SIGTERM): its proxy serves out the drain delay only.
		testPool("node-m", targetRev, rolledOut(2), address("192.0.2.13:8080"), func(p *ferryv1.ProcessPool) {
			setCond(p, ferryv1.ConditionReady, metav1.ConditionFalse, ferryv1.ReasonAgentStopping, "the agent on node-m is stopping")
		}),
	)
	draining := assessAll(targetRev, testPool("node-z", targetRev, rolledOut(2), address("192.0.2.9:8080"), deleting))
	got := desiredEndpoints(active, draining)

	type ep struct {
		addr, node                  string
		ready, serving, terminating bool
	}
	want := []ep{
		{"192.0.2.2", "node-a", true, true, false},
		{"192.0.2.3", "node-b", true, true, false}, // 1 of minProcesses 2 ready: it serves

		{"192.0.2.4", "node-c", false, false, false},
		{"10.0.0.7", "node-f", true, true, false},
		{"192.0.2.10", "node-j", false, false, false},
		{"192.0.2.11", "node-k", false, false, false},
		{"192.0.2.12", "node-l", true, true, false}, // serves on its old port
		{"192.0.2.13", "node-m", false, true, true}, // serves out its drain delay
		{"192.0.2.9", "node-z", false, true, true},
	}
	if len(got) != len(want) {
		t.Fatalf("endpoints %+v, want %d", got, len(want))
	}
	for i, w := range want {
		g := got[i]
		c := g.Conditions
		if len(g.Addresses) != 1 || g.Addresses[0] != w.addr || *g.NodeName != w.node ||
			*c.Ready != w.ready || *c.Serving != w.serving || *c.Terminating != w.terminating {
			t.Errorf("endpoint %d = %v %s ready=%v serving=%v terminating=%v, want %+v",
				i, g.Addresses, *g.NodeName, *c.Ready, *c.Serving, *c.Terminating, w)
		}
	}
}

// TestEndpointSliceName: the slice of a port other than listen.port is
// never another AppGroup's: "blog"'s slice of 8080 was "blog-8080", the
// Service slice of AppGroup "blog-8080" (found by review). Nor is a slice
// past a port's first; and sliceOf reads back the names it gives, no
// other.
func TestEndpointSliceName(t *testing.T) {
	blog := &ferryv1.AppGroup{ObjectMeta: metav1.ObjectMeta{Name: "blog"}}
	blog.Spec.Listen.Port = 9090
	other := &ferryv1.AppGroup{ObjectMeta: metav1.ObjectMeta{Name: "blog-8080"}}
	other.Spec.Listen.Port = 7000
	if got := endpointSliceName(blog, 9090, 0); got != "blog" {
		t.Errorf("listen.port's slice %q, want the Service's name", got)
	}
	if a, b := endpointSliceName(blog, 8080, 0), endpointSliceName(other, 7000, 0); a == b || a != "blog.8080" {
		t.Errorf("blog's slice of 8080 %q, blog-8080's Service slice %q; want blog.8080, and apart", a, b)
	}
	for _, tt := range []struct {
		port  int32
		index int
		want  string
	}{{9090, 1, "blog.9090-1"}, {9090, 12, "blog.9090-12"}, {8080, 2, "blog.8080-2"}} {
		if got := endpointSliceName(blog, tt.port, tt.index); got != tt.want {
			t.Errorf("slice %d of %d: %q, want %q", tt.index, tt.port, got, tt.want)
		}
		if port, index, ok := sliceOf(blog, tt.want); !ok || port != tt.port || index != tt.index {
			t.Errorf("sliceOf(%q) = %d, %d, %v; want %d, %d", tt.want, port, index, ok, tt.port, tt.index)
		}
	}
	if port, index, ok := sliceOf(blog, "blog"); !ok || port != 9090 || index != 0 {
		t.Errorf("sliceOf(blog) = %d, %d, %v; want listen.port's first", port, index, ok)
	}
	if port, index, ok := sliceOf(blog, "blog.8080"); !ok || port != 8080 || index != 0 {
		t.Errorf("sliceOf(blog.8080) = %d, %d, %v; want 8080's first", port, index, ok)
	}
	for _, name := range []string{"blog.9090", "blog.8080-0", "blog.8080-01", "blog.08080", "blog.8080-1-2", "blog.8080-",
		"blog.-1", "blog.x", "blog.", "blog-8080", "blog-8080.7000-1", "blogs", "cart.8080-1"} {
		if port, index, ok := sliceOf(blog, name); ok {
			t.Errorf("sliceOf(%q) = %d, %d; want no slice of blog's", name, port, index)
		}
	}
}

// TestPlanSlices: endpoints are spread over slices of at most capacity
// each; a node keeps its slice while others come and go, and one new to
// the port goes to the first slice there is with room, else to a new one
// at the first index free.
func TestPlanSlices(t *testing.T) {
	// ep is an endpoint of node at address addr: "a" is node a's, "a'"
	// its second (a pool draining beside its active one).
	ep := func(addr string) discoveryv1.Endpoint {
		return discoveryv1.Endpoint{Addresses: []string{addr}, NodeName: ptr.To(strings.TrimSuffix(addr, "'"))}
	}
	for _, tt := range []struct {
		name     string
		want     []string
		had      map[int][]string
		capacity int
		taken    map[int]bool
		plan     map[int][]string
	}{
		{name: "none", capacity: 2, plan: map[int][]string{}},
		{name: "none left", had: map[int][]string{0: {"a"}, 1: {"b"}}, capacity: 2, plan: map[int][]string{}},
		{name: "one slice", want: []string{"a", "b"}, capacity: 2, plan: map[int][]string{0: {"a", "b"}}},
		{name: "over several, in order", want: []string{"a", "b", "c", "d", "e"}, capacity: 2,
			plan: map[int][]string{0: {"a", "b"}, 1: {"c", "d"}, 2: {"e"}}},
		{name: "a node goes: the others stay", want: []string{"a", "c", "d"},
			had: map[int][]string{0: {"a", "b"}, 1: {"c", "d"}}, capacity: 2,
			plan: map[int][]string{0: {"a"}, 1: {"c", "d"}}},
		{name: "a new node to the first with room", want: []string{"a", "b", "c", "d"},
			had: map[int][]string{0: {"a", "b"}, 1: {"c"}}, capacity: 2,
			plan: map[int][]string{0: {"a", "b"}, 1: {"c", "d"}}},
		{name: "new nodes fill the room, then a new slice", want: []string{"a", "b", "c", "d", "e"},
			had: map[int][]string{0: {"c"}, 1: {"a", "b"}}, capacity: 2,
			plan: map[int][]string{0: {"c", "d"}, 1: {"a", "b"}, 2: {"e"}}},
		{name: "a slice there is with room before a free index", want: []string{"a", "b", "c", "d"},
			had: map[int][]string{0: {"a", "b"}, 2: {"c"}}, capacity: 2,
			plan: map[int][]string{0: {"a", "b"}, 2: {"c", "d"}}},
		{name: "a free index before the next", want: []string{"a", "b", "c", "d", "e", "f", "g"},
			had: map[int][]string{0: {"a", "b"}, 2: {"c", "d"}}, capacity: 2,
			plan: map[int][]string{0: {"a", "b"}, 1: {"e", "f"}, 2: {"c", "d"}, 3: {"g"}}},
		{name: "a slice emptied takes the next new", want: []string{"b", "c"},
			had: map[int][]string{0: {"a"}, 1: {"b"}}, capacity: 2,
			plan: map[int][]string{0: {"c"}, 1: {"b"}}},
		{name: "a slice left empty is not merged", want: []string{"b"},
			had: map[int][]string{0: {"a"}, 1: {"b"}}, capacity: 2,
			plan: map[int][]string{1: {"b"}}},
		{name: "capacity lowered: the first stay", want: []string{"a", "b", "c"},
			had: map[int][]string{0: {"a", "b", "c"}}, capacity: 2,
			plan: map[int][]string{0: {"a", "b"}, 1: {"c"}}},
		{name: "a node in two slices stays in the first", want: []string{"a", "b"},
			had: map[int][]string{0: {"a"}, 1: {"a", "b"}}, capacity: 2,
			plan: map[int][]string{0: {"a"}, 1: {"b"}}},
		{name: "in want's order", want: []string{"a", "b", "c"},
			had: map[int][]string{0: {"c", "a", "b"}}, capacity: 3,
			plan: map[int][]string{0: {"a", "b", "c"}}},
		{name: "a node's endpoints together", want: []string{"a", "b", "a'"}, capacity: 2,
			plan: map[int][]string{0: {"a", "a'"}, 1: {"b"}}},
		{name: "a node's second endpoint where there is no room: it moves", want: []string{"a", "b", "b'"},
			had: map[int][]string{0: {"a", "b"}}, capacity: 2,
			plan: map[int][]string{0: {"a"}, 1: {"b", "b'"}}},
		{name: "never split, past a capacity below two", want: []string{"a", "a'", "b"}, capacity: 1,
			plan: map[int][]string{0: {"a", "a'"}, 1: {"b"}}},
		// An index whose name another's object has is skipped: its nodes
		// go on in the next free one. (They were left out of the Service.)
		{name: "a taken index skipped", want: []string{"a", "b", "c", "d", "e"}, capacity: 2, taken: map[int]bool{1: true},
			plan: map[int][]string{0: {"a", "b"}, 2: {"c", "d"}, 3: {"e"}}},
		{name: "the first taken", want: []string{"a", "b", "c"}, capacity: 2, taken: map[int]bool{0: true},
			plan: map[int][]string{1: {"a", "b"}, 2: {"c"}}},
		{name: "taken in a row", want: []string{"a", "b", "c"}, capacity: 2, taken: map[int]bool{1: true, 2: true},
			plan: map[int][]string{0: {"a", "b"}, 3: {"c"}}},
		{name: "a new node past a taken index, to a slice with room", want: []string{"a", "b", "c", "d"},
			had: map[int][]string{0: {"a", "b"}, 2: {"c"}}, capacity: 2, taken: map[int]bool{1: true},
			plan: map[int][]string{0: {"a", "b"}, 2: {"c", "d"}}},
		{name: "a slice of had taken since: its nodes placed anew", want: []string{"a", "b", "c"},
			had: map[int][]string{0: {"a", "b"}, 1: {"c"}}, capacity: 2, taken: map[int]bool{1: true},
			plan: map[int][]string{0: {"a", "b"}, 2: {"c"}}},
		{name: "the slices before a taken one as they were", want: []string{"a", "b", "c", "d", "e"},
			had: map[int][]string{0: {"a"}}, capacity: 2, taken: map[int]bool{1: true},
			plan: map[int][]string{0: {"a", "b"}, 2: {"c", "d"}, 3: {"e"}}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var want []discoveryv1.Endpoint
			for _, addr := range tt.want {
				want = append(want, ep(addr))
			}
			got := map[int][]string{}
			plan, at := planSlices(want, tt.had, tt.capacity, tt.taken)
			in := map[string]int{} // each node's slice, as the plan shows it
			for i, eps := range plan {
				got[i] = []string{}
				for _, e := range eps {
					got[i] = append(got[i], e.Addresses[0])
					in[*e.NodeName] = i
				}
			}
			if !reflect.DeepEqual(got, tt.plan) {
				t.Errorf("plan %v, want %v", got, tt.plan)
			}
			if !maps.Equal(at, in) {
				t.Errorf("at %v, but the plan has the nodes in %v", at, in)
			}
		})
	}
}

// TestSliceMovedSaidOnceWritten: the NameTaken Warning that says which
// slice holds the endpoints of a name taken is recorded once that slice
// is written. While its write fails (the error the pass returns makes the
// WriteFailed event), no Warning names it; the pass that writes it records
// it. Before, the Warning said the endpoints were in the slice whose write
// had just failed.
func TestSliceMovedSaidOnceWritten(t *testing.T) {
	s := scheme.New()
	ag := &ferryv1.AppGroup{ObjectMeta: metav1.ObjectMeta{Name: "blog", Namespace: "ns", UID: "uid-blog"},
		Spec: ferryv1.AppGroupSpec{AppTemplate: ferryv1.AppTemplate{Listen: ferryv1.ListenSpec{Port: 8080}}}}
	foreign := &discoveryv1.EndpointSlice{ObjectMeta: metav1.ObjectMeta{Name: "blog", Namespace: "ns"},
		AddressType: discoveryv1.AddressTypeIPv4}
	refuse := true
	c := fake.NewClientBuilder().WithScheme(s).WithObjects(foreign).WithInterceptorFuncs(interceptor.Funcs{
		Create: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.CreateOption) error {
			if refuse && obj.GetName() == "blog.8080-1" {
				return apierrors.NewInternalError(errors.New("etcdserver: request timed out"))
			}
			return c.Create(ctx, obj, opts...)
		},
	}).Build()
	rec := events.NewFakeRecorder(10)
	r := &AppGroupReconciler{Client: c, APIReader: c, Scheme: s, Recorder: rec}
	want := []discoveryv1.Endpoint{{Addresses: []string{"192.0.2.2"}, NodeName: ptr.To("node-a")}}
	recorded := func() []string {
		var evs []string
		for len(rec.Events) > 0 {
			evs = append(evs, <-rec.Events)
		}
		return evs
	}

	if err := r.writeEndpointSlices(context.Background(), ag, 8080, want, nil, map[string]bool{}); err == nil {
		t.Fatal("the pass whose create of blog.8080-1 failed returned no error")
	}
	if evs := recorded(); len(evs) != 0 {
		t.Errorf("events while blog.8080-1 could not be written: %q, want none", evs)
	}
	refuse = false
	if err := r.writeEndpointSlices(context.Background(), ag, 8080, want, nil, map[string]bool{}); err != nil {
		t.Fatal(err)
	}
	evs := recorded()
	if len(evs) != 1 || !strings.HasPrefix(evs[0], corev1.EventTypeWarning+" "+EventNameTaken+" EndpointSlice blog is not") ||
		!strings.Contains(evs[0], "in EndpointSlice blog.8080-1 instead") {
		t.Errorf("events once blog.8080-1 was written: %q, want the NameTaken Warning naming it", evs)
	}
}

// TestEndpointsByPort: endpoints go in one group per port their pools
// serve on, active before draining; a port whose pools give no endpoint
// has no group.
func TestEndpointsByPort(t *testing.T) {
	onPort := func(port int32) poolOpt {
		return func(p *ferryv1.ProcessPool) { p.Spec.Template.Listen.Port, p.Status.ListenPort = port, port }
	}
	active := assessAll(targetRev,
		testPool("node-a", targetRev, rolledOut(2), address("192.0.2.2:8080"), onPort(8080)),
		testPool("node-b", targetRev, rolledOut(2), address("192.0.2.3:9090"), onPort(9090)), // kept on its old port
		testPool("node-c", targetRev, rolledOut(2), address(""), onPort(7070)),               // no address: no endpoint
		// Moved to 7070, which is taken: it serves on 8080 until it is free.
		testPool("node-d", targetRev, rolledOut(2), address("192.0.2.4:8080"), onPort(7070), func(p *ferryv1.ProcessPool) {
			setCond(p, ferryv1.ConditionReady, metav1.ConditionFalse, ferryv1.ReasonListenFailed, "cannot listen on port 7070; still serves on 8080")
		}),
	)
	draining := assessAll(targetRev, testPool("node-z", targetRev, rolledOut(2), address("192.0.2.9:8080"), onPort(8080), deleting),
		// Deleted while it served on its old port 9090 (its deletion
		// raised the generation): it drains there (found by review).
		testPool("node-y", targetRev, rolledOut(2), address("192.0.2.8:9090"), onPort(7070), deleting, func(p *ferryv1.ProcessPool) {
			p.Generation, p.Status.ObservedGeneration = 3, 2
			setCond(p, ferryv1.ConditionReady, metav1.ConditionFalse, ferryv1.ReasonListenFailed, "cannot listen on port 7070; still serves on 9090")
		}))
	got := map[int32][]string{}
	for port, eps := range endpointsByPort(active, draining) {
		for _, e := range eps {
			got[port] = append(got[port], e.Addresses[0])
		}
	}
	want := map[int32][]string{8080: {"192.0.2.2", "192.0.2.4", "192.0.2.9"}, 9090: {"192.0.2.3", "192.0.2.8"}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("endpoints by port %v, want %v", got, want)
	}
}

func TestPoolChangedPredicate(t *testing.T) {
	clk := clocktesting.NewFakePassiveClock(t0)
	// The predicate reads the node's agent Lease from the manager's cache;
	// a fake client stands in for the cache, holding node-b's Lease
	// (renewed five minutes after t0) and node-c's, held by another node.
	lease := func(node, holder string) *coordinationv1.Lease {
		renewed := metav1.NewMicroTime(t0.Add(5 * time.Minute))
		return &coordinationv1.Lease{
			ObjectMeta: metav1.ObjectMeta{Namespace: "ferry-system", Name: contract.AgentLeaseName(node),
				Labels: contract.AgentLeaseLabels(node)},
			Spec: coordinationv1.LeaseSpec{HolderIdentity: ptr.To(holder), RenewTime: &renewed},
		}
	}
	cache := fake.NewClientBuilder().WithScheme(scheme.New()).
		WithObjects(lease("node-b", "node-b"), lease("node-c", "node-x")).Build()
	r := &AppGroupReconciler{Clock: clk, AgentStaleAfter: staleAfter, Client: cache, LeaseNamespace: "ferry-system"}
	base := testPool("node-a", targetRev, rolledOut(2))
	with := func(f func(p *ferryv1.ProcessPool)) *ferryv1.ProcessPool {
		p := base.DeepCopy()
		f(p)
		return p
	}
	heartbeat := with(func(p *ferryv1.ProcessPool) {
		p.ResourceVersion = "2"
		p.Status.HeartbeatTime = &metav1.Time{Time: t0.Add(10 * time.Second)}
		p.Status.Processes = []ferryv1.ProcessInfo{{PID: 1, Revision: targetRev, State: ferryv1.ProcessReady, Processed: 10}}
		p.Status.QueueLength = 3
	})
	tests := []struct {
		name string
		old  *ferryv1.ProcessPool
		new  *ferryv1.ProcessPool
		now  time.Time
		want bool
	}{
		{"heartbeat and stats only", base, heartbeat, t0, false},
		{"heartbeat after a stale one", base, heartbeat, t0.Add(time.Minute), true},
		{"first report", testPool("node-a", targetRev), base, t0, true},
		{"counts moved", base, with(func(p *ferryv1.ProcessPool) { p.Status.ProcessCounts.Ready = 1 }), t0, true},
		{"condition moved", base, with(notReady), t0, true},
		{"restart progress", base, with(restarting(1, 2)), t0, true},
		{"deleted", base, with(deleting), t0, true},
		{"spec changed", base, with(func(p *ferryv1.ProcessPool) { p.Spec.Revision = "3-abc" }), t0, true},
	}
	// The 5-minute rewrite of an unchanged status, on a node whose agent
	// keeps its Lease fresh: the old report is old, not stale.
	onNode := func(node string, p *ferryv1.ProcessPool) *ferryv1.ProcessPool {
		p = p.DeepCopy()
		p.Spec.NodeName = node
		return p
	}
	rewrite := with(func(p *ferryv1.ProcessPool) {
		p.ResourceVersion = "2"
		p.Status.HeartbeatTime = &metav1.Time{Time: t0.Add(5 * time.Minute)}
	})
	at := t0.Add(5*time.Minute + time.Second)
	tests = append(tests, []struct {
		name string
		old  *ferryv1.ProcessPool
		new  *ferryv1.ProcessPool
		now  time.Time
		want bool
	}{
		{"unchanged rewrite, Lease fresh", onNode("node-b", base), onNode("node-b", rewrite), at, false},
		{"unchanged rewrite, Lease stale", onNode("node-b", base), onNode("node-b", rewrite), at.Add(time.Minute), true},
		{"unchanged rewrite, no Lease", base, rewrite, at, true},
		{"unchanged rewrite, Lease held by another node", onNode("node-c", base), onNode("node-c", rewrite), at, true},
		{"change with the Lease fresh", onNode("node-b", base), onNode("node-b", with(notReady)), at, true},
	}...)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk.SetTime(tt.now)
			if got := r.poolChanged(event.UpdateEvent{ObjectOld: tt.old, ObjectNew: tt.new}); got != tt.want {
				t.Errorf("poolChanged = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestNewPoolRevision(t *testing.T) {
	ag := &ferryv1.AppGroup{}
	ag.Spec.App.Root = "/srv/new"
	withApp := func(root string) poolOpt {
		return func(p *ferryv1.ProcessPool) { p.Spec.Template.App.Root = root }
	}
	nodes := []string{"a", "b", "c"}
	last := &ferryv1.RolledOutRevision{Revision: "0-abc", App: ferryv1.AppSpec{Root: "/srv/last"}}
	rolling := []*ferryv1.ProcessPool{
		testPool("a", targetRev, restarting(1, 2), withApp("/srv/new")),
		testPool("b", oldRev, rolledOut(2), withApp("/srv/old")),
	}
	tests := []struct {
		name          string
		pools         []*ferryv1.ProcessPool
		halt          *ferryv1.HaltedRollout // the status's record
		proven        bool                   // the target ran rolled out on a node
		wantRev, root string
	}{
		{"no pools yet, the target not proven: the last revision rolled out", nil, nil, false, last.Revision, "/srv/last"},
		{"no pools yet, the target proven: the target", nil, nil, true, targetRev, "/srv/new"},
		{"rolling, the target not proven: what a node serves ready", rolling, nil, false, oldRev, "/srv/old"},
		{"rolling, the target proven: the target", rolling, nil, true, targetRev, "/srv/new"},
		{
			"every node on the target, not proven yet: the last revision rolled out",
			[]*ferryv1.ProcessPool{testPool("a", targetRev, rolledOut(2))}, nil, false, last.Revision, "/srv/last",
		},
		{
			"halted: the first ready node on an earlier revision",
			[]*ferryv1.ProcessPool{
				testPool("a", targetRev, resists(targetRev, "x", ""), withApp("/srv/new")),
				testPool("b", oldRev, rolledOut(2), notReady, withApp("/srv/older")),
				testPool("c", oldRev, rolledOut(2), withApp("/srv/old")),
			},
			nil, true, oldRev, "/srv/old",
		},
		{
			"halted, every node on the target: the last revision rolled out",
			[]*ferryv1.ProcessPool{testPool("a", targetRev, resists(targetRev, "x", ""))}, nil, true, last.Revision, "/srv/last",
		},
		{
			"halted by a node no longer there: the last revision rolled out",
			[]*ferryv1.ProcessPool{testPool("a", targetRev, rolledOut(2))}, &ferryv1.HaltedRollout{Revision: targetRev, Node: "z"},
			true, last.Revision, "/srv/last",
		},
		{"proven, not halted: the target", []*ferryv1.ProcessPool{testPool("a", targetRev, rolledOut(2))}, nil, true, targetRev, "/srv/new"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reports := assessAll(targetRev, tt.pools...)
			halt := haltRecord(haltInput(tt.halt, targetRev, reports, nil, false))
			rev, app := newPoolRevision(ag, targetRev, nodes, byNode(reports), halt != nil, tt.proven, last)
			if rev != tt.wantRev || app.Root != tt.root {
				t.Errorf("newPoolRevision = %s %s, want %s %s", rev, app.Root, tt.wantRev, tt.root)
			}
		})
	}
	// A new AppGroup's first revision: nothing else to start on.
	if rev, app := newPoolRevision(ag, targetRev, nodes, nil, false, false, nil); rev != targetRev || app.Root != "/srv/new" {
		t.Errorf("with nothing rolled out before, newPoolRevision = %s %s, want %s /srv/new", rev, app.Root, targetRev)
	}
}

// TestServedRevision: while the annotation is invalid, a new node starts on
// what serves, never on the spec's app, which may belong to no revision.
func TestServedRevision(t *testing.T) {
	withApp := func(root string) poolOpt {
		return func(p *ferryv1.ProcessPool) { p.Spec.Template.App.Root = root }
	}
	nodes := []string{"a", "b", "c"}
	lastOnTarget := &ferryv1.RolledOutRevision{Revision: targetRev, App: ferryv1.AppSpec{Root: "/srv/last-target"}}
	lastOld := &ferryv1.RolledOutRevision{Revision: oldRev, App: ferryv1.AppSpec{Root: "/srv/last-old"}}
	tests := []struct {
		name          string
		pools         []*ferryv1.ProcessPool
		halted        bool
		last          *ferryv1.RolledOutRevision
		wantRev, root string // wantRev "": no pool
	}{
		{"a ready node on the target", []*ferryv1.ProcessPool{
			testPool("a", oldRev, rolledOut(2), withApp("/srv/old")),
			testPool("b", targetRev, rolledOut(2), withApp("/srv/target")),
		}, false, lastOld, targetRev, "/srv/target"},
		{"none ready: the last rolled out, if the target", []*ferryv1.ProcessPool{
			testPool("a", targetRev, restarting(1, 2), notReady, withApp("/srv/target")),
		}, false, lastOnTarget, targetRev, "/srv/last-target"},
		{"none ready on the target: a ready older node", []*ferryv1.ProcessPool{
			testPool("a", targetRev, restarting(1, 2), notReady, withApp("/srv/target")),
			testPool("b", oldRev, rolledOut(2), withApp("/srv/old")),
		}, false, lastOld, oldRev, "/srv/old"},
		{"halted: the target's ready node is passed over", []*ferryv1.ProcessPool{
			testPool("a", targetRev, rolledOut(2), withApp("/srv/target")),
			testPool("b", targetRev, resists(targetRev, "x", ""), withApp("/srv/target")),
		}, true, lastOld, oldRev, "/srv/last-old"},
		{"a node on the target that left its processes on an older one (resistance off) is passed over", []*ferryv1.ProcessPool{
			testPool("a", targetRev, incomplete(2, 2), withApp("/srv/target")),
		}, false, lastOld, oldRev, "/srv/last-old"},
		{"nothing known to work", []*ferryv1.ProcessPool{
			testPool("a", targetRev, restarting(1, 2), notReady, withApp("/srv/target")),
		}, false, nil, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reports := assessAll(targetRev, tt.pools...)
			rev, app, ok := servedRevision(targetRev, nodes, byNode(reports), tt.halted, tt.last)
			if rev != tt.wantRev || app.Root != tt.root || ok != (tt.wantRev != "") {
				t.Errorf("servedRevision = %s %s %v, want %s %s", rev, app.Root, ok, tt.wantRev, tt.root)
			}
		})
	}
}

// TestReturnWhileTheAnnotationIsInvalid: install.md, Deploying: a node
// whose agent restarts while it resists the target "cannot spawn the
// revision, and has nothing older to serve. With resistDeploymentErrors
// on ... the manager returns that node to the revision another node
// serves ready". An invalid revision annotation stops new waves ("no wave
// starts until it is valid again"), not that return, as with a valid
// one: else the node would serve nothing until the annotation is fixed.
// Nobody is given the target meanwhile.
func TestReturnWhileTheAnnotationIsInvalid(t *testing.T) {
	for _, invalid := range []bool{false, true} {
		t.Run(fmt.Sprintf("invalid %v", invalid), func(t *testing.T) {
			ag := &ferryv1.AppGroup{}
			s := &scope{ag: ag, target: targetRev, now: t0, settle: 10 * time.Second, nodes: []string{"a", "b", "c"},
				pools: map[string]*ferryv1.ProcessPool{
					"a": testPool("a", targetRev, failsSpawns(targetRev, "exited with status 1")),
					"b": testPool("b", oldRev, rolledOut(2)),
					"c": testPool("c", oldRev, rolledOut(2)),
				},
				halt:     &ferryv1.HaltedRollout{Revision: targetRev, Node: "a", Reason: "exited with status 1", Resisted: true},
				lastGood: &ferryv1.RolledOutRevision{Revision: oldRev}, proven: oldRev}
			if invalid {
				s.revisionErr = errors.New(`annotation ferry.dev/revision value "bad value!" is invalid`)
			}
			plan := (&AppGroupReconciler{AgentStaleAfter: staleAfter}).planRollout(context.Background(), s)
			if to, ok := plan.back["a"]; !ok || to.revision != oldRev {
				t.Errorf("node a, which resisted %s and lost its old processes, is not returned to %s (back %+v)",
					targetRev, oldRev, plan.back)
			}
			for _, node := range []string{"b", "c"} {
				if p, _ := plan.desired(s, node, s.pools[node]); p.Spec.Revision != oldRev {
					t.Errorf("node %s given %s while the rollout is halted", node, p.Spec.Revision)
				}
			}
		})
	}
}

// TestCreatingPassLeavesStatusToNext runs the first two passes over a new
// AppGroup by hand, its agent reporting in between, as happens when the
// manager is behind: the pass that creates the pool writes no status, the
// next one writes it once, already Ready, with the one event that says so.
//
// A fake client stands in for the API server here: against the real one
// the manager's next pass follows the pools' creation at once, and a test
// cannot put the agent's report between the two; the fake also counts the
// status writes.
func TestCreatingPassLeavesStatusToNext(t *testing.T) {
	ctx := context.Background()
	statusWrites := 0
	f := newFakePasses(t, func(ctx context.Context, c client.Client, sub string, obj client.Object, patch client.Patch,
		opts ...client.SubResourcePatchOption) error {
		if _, ok := obj.(*ferryv1.AppGroup); ok && sub == "status" {
			statusWrites++
		}
		return c.SubResource(sub).Patch(ctx, obj, patch, opts...)
	})

	if _, err := f.r.Reconcile(ctx, f.req); err != nil {
		t.Fatal(err)
	}
	if statusWrites != 0 {
		t.Errorf("the pass that created the pool wrote the status %d times, want 0", statusWrites)
	}
	f.agentRollsOut(t)
	if _, err := f.r.Reconcile(ctx, f.req); err != nil {
		t.Fatal(err)
	}
	if statusWrites != 1 {
		t.Errorf("status written %d times after the agent's report, want 1", statusWrites)
	}
	got := &ferryv1.AppGroup{}
	if err := f.c.Get(ctx, f.req.NamespacedName, got); err != nil {
		t.Fatal(err)
	}
	if !meta.IsStatusConditionTrue(got.Status.Conditions, ferryv1.ConditionReady) {
		t.Errorf("status not Ready after the agent's report: %+v", got.Status.Conditions)
	}
	if evs := f.events(); len(evs) != 1 || !strings.HasPrefix(evs[0], "Normal "+EventRolloutComplete+" ") {
		t.Errorf("events %q, want one %s", evs, EventRolloutComplete)
	}
}

// TestWriteOfUnknownOutcomeKeepsItsEvents: a status write that lands but
// whose answer is lost (a timeout) records its events once, on the pass
// that finds it made; one that did not land records them on the write
// that makes it. Before, the pass that found the status already written
// had nothing to write and recorded nothing: the rollout's completion was
// never in `kubectl describe`.
func TestWriteOfUnknownOutcomeKeepsItsEvents(t *testing.T) {
	for _, landed := range []bool{true, false} {
		t.Run(fmt.Sprintf("landed=%v", landed), func(t *testing.T) {
			ctx := context.Background()
			lose := true // the answer of the next status write
			f := newFakePasses(t, func(ctx context.Context, c client.Client, sub string, obj client.Object, patch client.Patch,
				opts ...client.SubResourcePatchOption) error {
				if _, ok := obj.(*ferryv1.AppGroup); !ok || sub != "status" || !lose {
					return c.SubResource(sub).Patch(ctx, obj, patch, opts...)
				}
				lose = false
				if landed {
					if err := c.SubResource(sub).Patch(ctx, obj, patch, opts...); err != nil {
						return err
					}
				}
				return apierrors.NewTimeoutError("the status write timed out", 0)
			})
			if _, err := f.r.Reconcile(ctx, f.req); err != nil {
				t.Fatal(err)
			}
			f.agentRollsOut(t)
			if _, err := f.r.Reconcile(ctx, f.req); !apierrors.IsTimeout(err) {
				t.Fatalf("the pass whose status write timed out returned %v", err)
			}
			if evs := f.events(); len(evs) != 0 {
				t.Errorf("events of a write of unknown outcome: %q, want none yet", evs)
			}
			for range 2 {
				if _, err := f.r.Reconcile(ctx, f.req); err != nil {
					t.Fatal(err)
				}
			}
			if evs := f.events(); len(evs) != 1 || !strings.HasPrefix(evs[0], "Normal "+EventRolloutComplete+" ") {
				t.Errorf("events %q, want one %s", evs, EventRolloutComplete)
			}
		})
	}
}

// TestResistingGaugeFollowsTheWrittenStatus: the AppGroup counts as
// resisting (ferry_appgroups_resisting) once a status that says so is
// written, not when the pass computed it: before, a write refused left
// the gauge claiming what the API did not say.
func TestResistingGaugeFollowsTheWrittenStatus(t *testing.T) {
	ctx := context.Background()
	refuse := true
	f := newFakePasses(t, func(ctx context.Context, c client.Client, sub string, obj client.Object, patch client.Patch,
		opts ...client.SubResourcePatchOption) error {
		if _, ok := obj.(*ferryv1.AppGroup); ok && sub == "status" && refuse {
			return apierrors.NewForbidden(ferryv1.GroupVersion.WithResource("appgroups").GroupResource(), obj.GetName(),
				errors.New("refused by the test"))
		}
		return c.SubResource(sub).Patch(ctx, obj, patch, opts...)
	})
	resisting := func() bool {
		_, ok := f.r.resisting.set[f.req.NamespacedName]
		return ok
	}
	if _, err := f.r.Reconcile(ctx, f.req); err != nil {
		t.Fatal(err)
	}
	f.agentReports(t, rolledOut(2), func(p *ferryv1.ProcessPool) {
		resists(p.Spec.Revision, "exited with status 1", "")(p)
	})
	if _, err := f.r.Reconcile(ctx, f.req); !apierrors.IsForbidden(err) {
		t.Fatalf("the pass whose status write was refused returned %v", err)
	}
	if resisting() {
		t.Error("counted as resisting while its written status says nothing of it")
	}
	refuse = false
	if _, err := f.r.Reconcile(ctx, f.req); err != nil {
		t.Fatal(err)
	}
	if !resisting() {
		t.Error("not counted as resisting once its status says so")
	}
}

// fakePasses runs the manager's passes by hand over one AppGroup on one
// node, on a fake client whose status writes go through patch.
type fakePasses struct {
	r   *AppGroupReconciler
	c   client.Client
	rec *events.FakeRecorder
	req ctrl.Request
}

func newFakePasses(t *testing.T, patch func(ctx context.Context, c client.Client, sub string, obj client.Object,
	patch client.Patch, opts ...client.SubResourcePatchOption) error) *fakePasses {
	s := scheme.New()
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-a", Labels: map[string]string{"web": "true"}}}
	ag := &ferryv1.AppGroup{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "blog",
			Annotations: map[string]string{ferryv1.RevisionAnnotation: "1"}},
		Spec: ferryv1.AppGroupSpec{
			AppTemplate: ferryv1.AppTemplate{
				App:    ferryv1.AppSpec{Type: ferryv1.AppTypeWSGI, Root: "/srv/blog"},
				Listen: ferryv1.ListenSpec{Port: 8080},
				Pool:   ferryv1.PoolSpec{MinProcesses: 2, MaxProcesses: 2},
			},
			NodeSelector: map[string]ferryv1.LabelValue{"web": "true"},
		},
	}
	c := fake.NewClientBuilder().WithScheme(s).WithObjects(node, ag).WithIndex(&ferryv1.AppGroup{}, portIndex, indexPort).
		WithIndex(&ferryv1.ProcessPool{}, portNodeIndex, indexPortNode).WithIndex(&ferryv1.ProcessPool{}, poolOwnerIndex, indexPoolOwner).
		WithIndex(&discoveryv1.EndpointSlice{}, extraSliceIndex, indexExtraSlice).
		WithStatusSubresource(&ferryv1.AppGroup{}, &ferryv1.ProcessPool{}).
		WithInterceptorFuncs(interceptor.Funcs{SubResourcePatch: patch}).Build()
	rec := events.NewFakeRecorder(10)
	r := &AppGroupReconciler{Client: c, APIReader: c, Scheme: s, Recorder: rec,
		Clock: clocktesting.NewFakePassiveClock(t0), AgentStaleAfter: staleAfter}
	return &fakePasses{r: r, c: c, rec: rec, req: ctrl.Request{NamespacedName: client.ObjectKeyFromObject(ag)}}
}

// agentRollsOut has the node's agent report its pool (made by the first
// pass) rolled out.
func (f *fakePasses) agentRollsOut(t *testing.T) { f.agentReports(t, rolledOut(2)) }

// agentReports has the node's agent report its pool (made by the first
// pass) as opts leave it.
func (f *fakePasses) agentReports(t *testing.T, opts ...poolOpt) {
	var list ferryv1.ProcessPoolList
	if err := f.c.List(context.Background(), &list); err != nil || len(list.Items) != 1 {
		t.Fatalf("pools after the first pass: %d (%v), want 1", len(list.Items), err)
	}
	p := &list.Items[0]
	for _, o := range opts {
		o(p)
	}
	if err := f.c.Status().Update(context.Background(), p); err != nil {
		t.Fatal(err)
	}
}

// events takes the events recorded so far.
func (f *fakePasses) events() []string {
	var evs []string
	for len(f.rec.Events) > 0 {
		evs = append(evs, <-f.rec.Events)
	}
	return evs
}

// TestCreateOrPatchForeignObjectTheCacheShows: an object of the name that
// is not the AppGroup's, but carries the label the cache selects by (so
// the cache shows it), is a *nameTaken as one the cache misses is, and is
// left as it is. Before, CreateOrPatch's path patched it: the manager
// took it over.
func TestCreateOrPatchForeignObjectTheCacheShows(t *testing.T) {
	s := scheme.New()
	ag := &ferryv1.AppGroup{ObjectMeta: metav1.ObjectMeta{Name: "shop", Namespace: "ns", UID: "uid-shop"}}
	foreign := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "shop", Namespace: "ns",
		Labels: map[string]string{ManagedByLabel: ManagedByValue}}}
	c := fake.NewClientBuilder().WithScheme(s).WithObjects(foreign).Build()
	r := &AppGroupReconciler{Client: c, APIReader: c, Scheme: s}
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "shop", Namespace: "ns"}}
	err := r.createOrPatch(context.Background(), ag, svc, func() error {
		svc.Spec.Ports = []corev1.ServicePort{{Name: "http", Port: 8080}}
		return ctrl.SetControllerReference(ag, svc, s)
	})
	if taken := (*nameTaken)(nil); !errors.As(err, &taken) || taken.kind != "Service" || taken.name != "shop" {
		t.Errorf("createOrPatch: %v, want Service shop taken", err)
	}
	got := &corev1.Service{}
	if err := c.Get(context.Background(), client.ObjectKeyFromObject(foreign), got); err != nil {
		t.Fatal(err)
	}
	if len(got.OwnerReferences) != 0 || len(got.Spec.Ports) != 0 {
		t.Errorf("the foreign Service was patched: owners %+v, ports %+v", got.OwnerReferences, got.Spec.Ports)
	}
}

// TestCreateOrPatchOwnObjectTheCacheMisses: a create refused as
// AlreadyExists patches the API server's copy when it is the AppGroup's
// own (the cache lagged, or the object lost the label the cache selects
// by), or an AppGroup's of its name deleted before it was created again
// (garbage collection has yet to delete it): adopted, as the cache's path
// does; a name taken by someone else's object is a *nameTaken.
func TestCreateOrPatchOwnObjectTheCacheMisses(t *testing.T) {
	s := scheme.New()
	ag := &ferryv1.AppGroup{ObjectMeta: metav1.ObjectMeta{Name: "shop", Namespace: "ns", UID: "uid-shop"}}
	ours := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "shop", Namespace: "ns"}} // no labels, no ports
	if err := ctrl.SetControllerReference(ag, ours, s); err != nil {
		t.Fatal(err)
	}
	before := &ferryv1.AppGroup{ObjectMeta: metav1.ObjectMeta{Name: "shop", Namespace: "ns", UID: "uid-before"}}
	predecessor := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "old", Namespace: "ns"}}
	if err := ctrl.SetControllerReference(before, predecessor, s); err != nil {
		t.Fatal(err)
	}
	foreign := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "ns"}}
	api := fake.NewClientBuilder().WithScheme(s).WithObjects(ours, predecessor, foreign).Build()
	// The cache shows none; writes go to the API server.
	cache := interceptor.NewClient(fake.NewClientBuilder().WithScheme(s).Build(), interceptor.Funcs{
		Create: func(ctx context.Context, _ client.WithWatch, obj client.Object, opts ...client.CreateOption) error {
			return api.Create(ctx, obj, opts...)
		},
		Patch: func(ctx context.Context, _ client.WithWatch, obj client.Object, p client.Patch, opts ...client.PatchOption) error {
			return api.Patch(ctx, obj, p, opts...)
		},
	})
	r := &AppGroupReconciler{Client: cache, APIReader: api, Scheme: s}
	for _, tt := range []struct {
		name  string
		taken bool
	}{{"shop", false}, {"old", false}, {"web", true}} {
		svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: tt.name, Namespace: "ns"}}
		err := r.createOrPatch(context.Background(), ag, svc, func() error {
			svc.Labels = map[string]string{ManagedByLabel: ManagedByValue}
			svc.Spec.Ports = []corev1.ServicePort{{Name: "http", Port: 8080}}
			return ctrl.SetControllerReference(ag, svc, s)
		})
		var taken *nameTaken
		if got := errors.As(err, &taken); got != tt.taken || (err != nil && !got) {
			t.Errorf("%s: %v, want taken: %v", tt.name, err, tt.taken)
		}
		got := &corev1.Service{}
		if err := api.Get(context.Background(), client.ObjectKey{Namespace: "ns", Name: tt.name}, got); err != nil {
			t.Fatal(err)
		}
		patched := got.Labels[ManagedByLabel] == ManagedByValue && len(got.Spec.Ports) == 1 && metav1.IsControlledBy(got, ag)
		if patched == tt.taken {
			t.Errorf("%s: patched %v, want %v: %+v", tt.name, patched, !tt.taken, got)
		}
	}
}
