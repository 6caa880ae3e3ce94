package controllers

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/go-logr/logr"
	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	clocktesting "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"
	"sigs.k8s.io/controller-runtime/pkg/event"

	ferryv1 "github.com/ferry-dev/ferry/api/v1alpha1"
	"github.com/ferry-dev/ferry/controllers/contract"
	"github.com/ferry-dev/ferry/internal/scheme"
)

// TestLeaseWatcherNoticesShortSilences checks the lease watcher's passes:
// none while the agent renews on time, one when its Lease goes stale, and
// one when a check finds the Lease otherwise than a pass since the last
// check judged it, even if no check saw it change: fresh after a pass
// judged it silent (the agent renewed between two checks, or before the
// watcher first saw its Lease: TestAgentLeaseKeepsReportsFresh met that on
// a busy machine), or stale after a pass judged it fresh (it renewed and
// fell silent again between two checks; found by review). A fake client stands in for the manager's cache: the
// watcher only reads it, and the test sets the Lease's renewals and the
// clock check by check.
func TestLeaseWatcherNoticesShortSilences(t *testing.T) {
	ctx := context.Background()
	lease := &coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ferry-system", Name: contract.AgentLeaseName("node-a"),
			Labels: contract.AgentLeaseLabels("node-a")},
		Spec: coordinationv1.LeaseSpec{HolderIdentity: ptr.To("node-a")},
	}
	pool := testPool("node-a", "1-abc")
	pool.Labels = contract.PoolLabels("blog", "node-a")
	c := fake.NewClientBuilder().WithScheme(scheme.New()).WithIndex(&ferryv1.ProcessPool{}, poolNodeIndex, indexPoolNode).WithObjects(lease, pool).Build()
	clk := clocktesting.NewFakePassiveClock(t0)
	events := make(chan event.GenericEvent, 10)
	w := &leaseWatcher{client: c, namespace: "ferry-system", staleAfter: staleAfter, every: time.Second, clock: clk,
		events: events, stale: map[string]bool{}, log: logr.Discard()}

	const silent, fresh = "silent", "fresh"
	steps := []struct {
		name           string
		judged         string        // what a pass concluded of node-a before the check, if any
		renewed, check time.Duration // after t0
		want           bool
	}{
		{"first seen, fresh, after a pass judged it silent", silent, 0, time.Second, true},
		{"renewed on time", "", 10 * time.Second, 11 * time.Second, false},
		{"renewed on time, judged fresh", fresh, 20 * time.Second, 21 * time.Second, false},
		{"renewed after 50s of silence no pass judged", "", 70 * time.Second, 71 * time.Second, false},
		{"renewed after a silence a pass judged, never seen stale", silent, 80 * time.Second, 81 * time.Second, true},
		{"stale", "", 80 * time.Second, 81*time.Second + staleAfter + time.Second, true},
		{"judged silent while stale", silent, 80 * time.Second, 81*time.Second + staleAfter + 2*time.Second, false},
		{"renewed, judged fresh, stale again before a check saw it fresh", fresh, 130 * time.Second, 171*time.Second + time.Second, true},
		{"renewed again", "", 200 * time.Second, 201 * time.Second, true},
	}
	for _, st := range steps {
		lease.Spec.RenewTime = ptr.To(metav1.NewMicroTime(t0.Add(st.renewed)))
		if err := c.Update(ctx, lease); err != nil {
			t.Fatal(err)
		}
		clk.SetTime(t0.Add(st.check))
		if st.judged != "" {
			w.judged("node-a", st.judged == silent)
		}
		if err := w.check(ctx); err != nil {
			t.Fatal(err)
		}
		var got []string
		for len(events) > 0 {
			got = append(got, (<-events).Object.GetName())
		}
		if st.want && (len(got) != 1 || got[0] != "blog") || !st.want && len(got) > 0 {
			t.Errorf("%s: passes asked for %v, want %v", st.name, got, map[bool][]string{true: {"blog"}}[st.want])
		}
	}
}

// TestLeaseWatcherForgivesItsOwnOutage: when the manager cannot reach the
// API server (its probe fails), an agent's Lease left unrenewed over that
// time is not judged stale, nor while the cache, which informers refill
// with a backoff of up to a minute, still shows the Leases of before the
// outage; from when it has caught up, the agent gets the bound to renew.
// One that does not renew in that time is stale. Two fake clients stand
// in for the API server (read by the probe, which fails on demand) and
// the manager's cache.
func TestLeaseWatcherForgivesItsOwnOutage(t *testing.T) {
	runOutage(t, []outageStep{
		{"fresh", time.Second, false, 0, 0, false, -1},
		{"the API server gone", 5 * time.Second, true, 0, 0, false, 5 * time.Second},
		{"still gone, past the bound", 60 * time.Second, true, 0, 0, false, 60 * time.Second},
		{"back, the agent renewed, the cache behind", 61 * time.Second, false, 61 * time.Second, 0, false, 61 * time.Second},
		{"the cache still behind", 63 * time.Second, false, 63 * time.Second, 0, false, 63 * time.Second},
		{"still behind, past the bound", 120 * time.Second, false, 119 * time.Second, 0, false, 120 * time.Second},
		// No pass judged the agent silent over the outage: none to redo.
		{"caught up", 121 * time.Second, false, 121 * time.Second, 121 * time.Second, false, 121 * time.Second},
		{"the agent died: within the bound", 121*time.Second + staleAfter, false, 121 * time.Second, 121 * time.Second, false, 121 * time.Second},
		{"past it: stale", 122*time.Second + staleAfter, false, 121 * time.Second, 121 * time.Second, true, 121 * time.Second},
	})
}

// TestLeaseWatcherWaitsForARenewalAfterAnOutage: the API server's first
// answer after an outage may come before any agent renewed; a cache that
// matches it has not caught up with the renewals that follow, which its
// watch may deliver late on a loaded machine (the e2e test's outage step
// failed so: agents judged silent 42 s after the API server came back).
// The cache has caught up once it shows a renewal made since.
func TestLeaseWatcherWaitsForARenewalAfterAnOutage(t *testing.T) {
	runOutage(t, []outageStep{
		{"fresh", time.Second, false, 0, 0, false, -1},
		{"the API server gone", 5 * time.Second, true, 0, 0, false, 5 * time.Second},
		{"still gone, past the bound", 60 * time.Second, true, 0, 0, false, 60 * time.Second},
		{"back, before any renewal", 61 * time.Second, false, 0, 0, false, 61 * time.Second},
		{"the first answer: as the cache", 62 * time.Second, false, 0, 0, false, 62 * time.Second},
		{"the agent renewed, the watch lags", 70 * time.Second, false, 70 * time.Second, 0, false, 70 * time.Second},
		{"lagging past the bound from the renewal", 115 * time.Second, false, 110 * time.Second, 0, false, 115 * time.Second},
		{"caught up", 116 * time.Second, false, 110 * time.Second, 110 * time.Second, false, 116 * time.Second},
		{"the agent died: within the bound", 116*time.Second + staleAfter, false, 110 * time.Second, 110 * time.Second, false, 116 * time.Second},
		{"past it: stale", 117*time.Second + staleAfter, false, 110 * time.Second, 110 * time.Second, true, 116 * time.Second},
	})
}

// TestLeaseWatcherCatchesUpWhateverTheAgentsClocks: whether the cache has
// caught up after an outage is judged by the API server's order of writes
// (the Leases' resourceVersions), not by the renewal times the agents
// stamp. An agent whose clock stepped back an hour during the catch-up
// renewed with an older stamp than the API server's first answer had;
// judged by the stamps, the cache, showing that renewal, looked behind,
// and no agent was judged until maxCatchUp, three minutes (found by
// review).
func TestLeaseWatcherCatchesUpWhateverTheAgentsClocks(t *testing.T) {
	back := 70*time.Second - time.Hour // the renewal at 70 s, by a clock stepped back an hour
	runOutage(t, []outageStep{
		{"fresh", time.Second, false, 0, 0, false, -1},
		{"the API server gone", 5 * time.Second, true, 0, 0, false, 5 * time.Second},
		{"still gone, past the bound", 60 * time.Second, true, 0, 0, false, 60 * time.Second},
		{"back, before any renewal", 61 * time.Second, false, 0, 0, false, 61 * time.Second},
		{"the first answer: a renewal the cache lacks", 62 * time.Second, false, 61 * time.Second, 0, false, 62 * time.Second},
		{"renewed by a clock stepped back; the cache as the first answer", 70 * time.Second, false, back, 61 * time.Second, false, 70 * time.Second},
		{"caught up: the cache shows that renewal", 72 * time.Second, false, back, back, false, 72 * time.Second},
		{"still in contact", 74 * time.Second, false, back, back, false, 72 * time.Second},
		{"the agent died: within the bound", 72*time.Second + staleAfter, false, back, back, false, 72 * time.Second},
		{"past it: stale", 73*time.Second + staleAfter, false, back, back, true, 72 * time.Second},
	})
}

// TestCacheProgressByWriteOrder: cacheProgress orders the Leases by the
// API server's writes (resourceVersion, compared as numbers, not as
// text); a version it cannot order only counts as caught up when it is
// the very one of the first answer.
func TestCacheProgressByWriteOrder(t *testing.T) {
	for _, c := range []struct {
		name        string
		first, have map[string]string
		behind      int
		moved       bool
	}{
		{"as the first answer", map[string]string{"a": "95"}, map[string]string{"a": "95"}, 0, false},
		{"behind", map[string]string{"a": "100"}, map[string]string{"a": "99"}, 1, false},
		{"written since (longer)", map[string]string{"a": "99"}, map[string]string{"a": "100"}, 0, true},
		{"one behind, one written since", map[string]string{"a": "100", "b": "101"}, map[string]string{"a": "99", "b": "102"}, 1, true},
		{"deleted meanwhile", map[string]string{"a": "100"}, map[string]string{}, 0, true},
		{"not numbered, as the first answer", map[string]string{"a": "x1"}, map[string]string{"a": "x1"}, 0, false},
		{"not numbered, another", map[string]string{"a": "x1"}, map[string]string{"a": "x2"}, 1, false},
	} {
		if behind, moved := cacheProgress(c.first, c.have); behind != c.behind || moved != c.moved {
			t.Errorf("%s: behind %d, moved %v; want %d, %v", c.name, behind, moved, c.behind, c.moved)
		}
	}
}

// outageStep is one check of an outage story.
type outageStep struct {
	name             string
	check            time.Duration // after t0
	down             bool
	apiRenew, cached time.Duration // the Lease's renewal (after t0) in the API server and in the cache
	wantPass         bool
	wantHeard        time.Duration // -1: no outage seen yet
}

// runOutage runs the steps on an outageWatcher, checking after each the
// passes asked for and since when the manager hears the agents. The API
// server's Lease is written only when its renewal changes (a write, with
// a new resourceVersion); the cache shows the version of it that held the
// step's cached renewal, as a watch delivers them.
func runOutage(t *testing.T, steps []outageStep) {
	t.Helper()
	ctx := context.Background()
	w, api, cache, contact, events := outageWatcher(t)
	versions := map[time.Duration]coordinationv1.Lease{0: cache.leases[0]}
	renewed := time.Duration(0)
	for _, st := range steps {
		if st.apiRenew != renewed {
			versions[st.apiRenew] = setRenewal(t, api, t0.Add(st.apiRenew))
			renewed = st.apiRenew
		}
		v, ok := versions[st.cached]
		if !ok {
			t.Fatalf("%s: the API server never held the renewal the cache is to show (%s)", st.name, st.cached)
		}
		cache.leases = []coordinationv1.Lease{v}
		w.clock.(*clocktesting.FakePassiveClock).SetTime(t0.Add(st.check))
		w.probe.(*switchableReader).down = st.down
		if got := checkPasses(t, ctx, w, events); (got > 0) != st.wantPass {
			t.Errorf("%s: %d passes asked for, want any: %v", st.name, got, st.wantPass)
		}
		want := t0.Add(st.wantHeard)
		if st.wantHeard < 0 {
			want = time.Time{} // no outage seen yet
		}
		if heard := contact.hearing().since; !heard.Equal(want) {
			t.Errorf("%s: heard since %s, want %s", st.name, heard, want)
		}
	}
}

// TestLeaseWatcherGivesUpWaitingForACache: a cache that never catches up
// does not hide agents for good: after maxCatchUp they are judged by it,
// with the bound from then.
func TestLeaseWatcherGivesUpWaitingForACache(t *testing.T) {
	ctx := context.Background()
	w, api, _, contact, events := outageWatcher(t)
	clk := w.clock.(*clocktesting.FakePassiveClock)
	probe := w.probe.(*switchableReader)
	for _, st := range []struct {
		check time.Duration
		down  bool
	}{{time.Second, false}, {5 * time.Second, true}, {10 * time.Second, false}, {12 * time.Second, false}} {
		setRenewal(t, api, t0.Add(st.check))
		clk.SetTime(t0.Add(st.check))
		probe.down = st.down
		checkPasses(t, ctx, w, events)
	}
	if !contact.catchingUp() {
		t.Fatal("not catching up with a cache behind")
	}
	clk.SetTime(t0.Add(10*time.Second + maxCatchUp))
	checkPasses(t, ctx, w, events)
	if contact.catchingUp() {
		t.Fatal("still catching up after maxCatchUp")
	}
	// Judged by the cache from then: the bound later, stale.
	clk.SetTime(t0.Add(11*time.Second + maxCatchUp + staleAfter))
	if got := checkPasses(t, ctx, w, events); got == 0 {
		t.Error("the agent the cache shows silent was never judged stale")
	}
}

// outageWatcher is a lease watcher over one agent's Lease, renewed at t0
// both in the API server (api, read by the probe) and in the cache.
func outageWatcher(t *testing.T) (w *leaseWatcher, api client.Client, cache *cachedLeases, contact *apiContact, events chan event.GenericEvent) {
	t.Helper()
	lease := &coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ferry-system", Name: contract.AgentLeaseName("node-a"),
			Labels: contract.AgentLeaseLabels("node-a")},
		Spec: coordinationv1.LeaseSpec{HolderIdentity: ptr.To("node-a"), RenewTime: ptr.To(metav1.NewMicroTime(t0))},
	}
	pool := testPool("node-a", "1-abc")
	pool.Labels = contract.PoolLabels("blog", "node-a")
	api = fake.NewClientBuilder().WithScheme(scheme.New()).WithIndex(&ferryv1.ProcessPool{}, poolNodeIndex, indexPoolNode).WithObjects(lease, pool).Build()
	var first coordinationv1.Lease
	if err := api.Get(context.Background(), client.ObjectKeyFromObject(lease), &first); err != nil {
		t.Fatal(err)
	}
	cache = &cachedLeases{Reader: api, leases: []coordinationv1.Lease{first}}
	clk := clocktesting.NewFakePassiveClock(t0)
	contact = newAPIContact(clk)
	events = make(chan event.GenericEvent, 10)
	w = &leaseWatcher{client: cache, probe: &switchableReader{Reader: api}, contact: contact, namespace: "ferry-system",
		staleAfter: staleAfter, every: time.Second, clock: clk, events: events, signs: newSigns(clk),
		stale: map[string]bool{}, log: logr.Discard()}
	return w, api, cache, contact, events
}

// cachedLeases stands in for the manager's cache: its Leases are copies
// of versions the API server held (resourceVersion and all), as its watch
// delivered them; the rest it reads from the API server.
type cachedLeases struct {
	client.Reader
	leases []coordinationv1.Lease
}

func (c *cachedLeases) List(ctx context.Context, list client.ObjectList, opts ...client.ListOption) error {
	if l, ok := list.(*coordinationv1.LeaseList); ok {
		l.Items = nil
		for _, lease := range c.leases {
			l.Items = append(l.Items, *lease.DeepCopy())
		}
		return nil
	}
	return c.Reader.List(ctx, list, opts...)
}

// setRenewal writes the Lease's renewal in c and returns the Lease as
// written.
func setRenewal(t *testing.T, c client.Client, at time.Time) coordinationv1.Lease {
	t.Helper()
	var l coordinationv1.Lease
	key := client.ObjectKey{Namespace: "ferry-system", Name: contract.AgentLeaseName("node-a")}
	if err := c.Get(context.Background(), key, &l); err != nil {
		t.Fatal(err)
	}
	l.Spec.RenewTime = ptr.To(metav1.NewMicroTime(at))
	if err := c.Update(context.Background(), &l); err != nil {
		t.Fatal(err)
	}
	return l
}

// checkPasses runs one check and counts the passes it asked for.
func checkPasses(t *testing.T, ctx context.Context, w *leaseWatcher, events chan event.GenericEvent) int {
	t.Helper()
	if err := w.check(ctx); err != nil {
		t.Fatal(err)
	}
	n := len(events)
	for len(events) > 0 {
		<-events
	}
	return n
}

// switchableReader fails every List while down, as an unreachable API
// server would.
type switchableReader struct {
	client.Reader
	down bool
}

func (r *switchableReader) List(ctx context.Context, list client.ObjectList, opts ...client.ListOption) error {
	if r.down {
		return errors.New("dial tcp 127.0.0.1:6443: connect: connection refused")
	}
	return r.Reader.List(ctx, list, opts...)
}

// TestLeaseWatcherKeepsJudgementsOverAFailedCheck: a check that fails
// part-way (enqueueNode's list fails for one node) keeps the passes'
// judgements it took, and the failing node's state, for the next check:
// both agents, judged silent and renewed since, get their pass. (Found by
// review: they were dropped, and their AppGroups stayed Unknown.)
func TestLeaseWatcherKeepsJudgementsOverAFailedCheck(t *testing.T) {
	ctx := context.Background()
	var objs []client.Object
	for _, node := range []string{"node-a", "node-b"} {
		objs = append(objs, &coordinationv1.Lease{
			ObjectMeta: metav1.ObjectMeta{Namespace: "ferry-system", Name: contract.AgentLeaseName(node),
				Labels: contract.AgentLeaseLabels(node)},
			Spec: coordinationv1.LeaseSpec{HolderIdentity: ptr.To(node), RenewTime: ptr.To(metav1.NewMicroTime(t0))},
		})
		p := testPool(node, "1-abc")
		p.Name = "blog-" + node
		p.Labels = contract.PoolLabels("blog-"+node, node)
		p.Spec.AppGroup = "blog-" + node
		objs = append(objs, p)
	}
	failPools := false
	c := fake.NewClientBuilder().WithScheme(scheme.New()).WithIndex(&ferryv1.ProcessPool{}, poolNodeIndex, indexPoolNode).WithObjects(objs...).WithInterceptorFuncs(interceptor.Funcs{
		List: func(ctx context.Context, c client.WithWatch, list client.ObjectList, opts ...client.ListOption) error {
			if _, ok := list.(*ferryv1.ProcessPoolList); ok && failPools {
				failPools = false
				return errors.New("transient")
			}
			return c.List(ctx, list, opts...)
		},
	}).Build()
	clk := clocktesting.NewFakePassiveClock(t0.Add(time.Second))
	events := make(chan event.GenericEvent, 10)
	w := &leaseWatcher{client: c, namespace: "ferry-system", staleAfter: staleAfter, every: time.Second, clock: clk,
		events: events, stale: map[string]bool{}, log: logr.Discard()}

	if n := checkPasses(t, ctx, w, events); n != 0 {
		t.Fatalf("first check, both fresh: %d passes", n)
	}
	// Passes judged both agents silent; both renewed before the next check.
	w.judged("node-a", true)
	w.judged("node-b", true)
	failPools = true
	if err := w.check(ctx); err == nil {
		t.Fatal("check: want the injected error")
	}
	for len(events) > 0 {
		<-events
	}
	got := map[string]bool{}
	for range 2 { // the next checks, nothing failing
		if err := w.check(ctx); err != nil {
			t.Fatal(err)
		}
		for len(events) > 0 {
			got[(<-events).Object.GetName()] = true
		}
	}
	for _, ag := range []string{"blog-node-a", "blog-node-b"} {
		if !got[ag] {
			t.Errorf("no pass for %s after the failed check: its agent was judged silent and renewed (passes %v)", ag, got)
		}
	}
}

// TestLeaseAppearsAfterASilenceJudgedByReport: a pass judged an agent
// silent by its pool's report, with no Lease for the node; when the
// agent's Lease appears, fresh, however long after, the check that first
// sees it asks for a pass (found by review: none came, the agent's
// heartbeat-only rewrites are filtered, poolChanged, and the AppGroup
// stayed AgentNotReporting).
func TestLeaseAppearsAfterASilenceJudgedByReport(t *testing.T) {
	ctx := context.Background()
	pool := testPool("node-a", "1-abc")
	pool.Labels = contract.PoolLabels("blog", "node-a")
	c := fake.NewClientBuilder().WithScheme(scheme.New()).WithIndex(&ferryv1.ProcessPool{}, poolNodeIndex, indexPoolNode).WithObjects(pool).Build()
	clk := clocktesting.NewFakePassiveClock(t0)
	events := make(chan event.GenericEvent, 10)
	w := &leaseWatcher{client: c, namespace: "ferry-system", staleAfter: staleAfter, every: 2 * time.Second, clock: clk,
		events: events, stale: map[string]bool{}, log: logr.Discard()}
	// A pass read no Lease for node-a and its pool's report 3 minutes old
	// (agents rewrite an unchanged status every 5): silent.
	w.judged("node-a", true)
	checkPasses(t, ctx, w, events) // t0: still no Lease
	// The agent's Lease appears (re)created, fresh.
	lease := &coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ferry-system", Name: contract.AgentLeaseName("node-a"),
			Labels: contract.AgentLeaseLabels("node-a")},
		Spec: coordinationv1.LeaseSpec{HolderIdentity: ptr.To("node-a"),
			RenewTime: ptr.To(metav1.NewMicroTime(t0.Add(3 * time.Second)))},
	}
	if err := c.Create(ctx, lease); err != nil {
		t.Fatal(err)
	}
	clk.SetTime(t0.Add(4 * time.Second))
	if n := checkPasses(t, ctx, w, events); n == 0 {
		t.Errorf("node-a's Lease appeared fresh after a pass judged its agent silent: no pass asked for")
	}
	// Its Lease deleted, checks for six minutes without one, then it comes
	// back (found by review: a 5-minute limit on kept judgements lost it).
	if err := c.Delete(ctx, lease); err != nil {
		t.Fatal(err)
	}
	for at := 10 * time.Second; at < 6*time.Minute; at += time.Minute {
		clk.SetTime(t0.Add(at))
		checkPasses(t, ctx, w, events)
	}
	lease = lease.DeepCopy()
	lease.ResourceVersion = ""
	lease.Spec.RenewTime = ptr.To(metav1.NewMicroTime(t0.Add(6 * time.Minute)))
	if err := c.Create(ctx, lease); err != nil {
		t.Fatal(err)
	}
	clk.SetTime(t0.Add(6*time.Minute + time.Second))
	if n := checkPasses(t, ctx, w, events); n == 0 {
		t.Errorf("node-a's Lease came back fresh after six minutes without one: no pass asked for")
	}
}

// TestJudgementsOfLeaselessNodesAreNotKept: a check drops the judgements
// of nodes with no Lease (a deleted node, an agent that renews none): a
// Lease that appears later asks for a pass by itself, however long after
// (TestLeaseAppearsAfterASilenceJudgedByReport).
func TestJudgementsOfLeaselessNodesAreNotKept(t *testing.T) {
	c := fake.NewClientBuilder().WithScheme(scheme.New()).WithIndex(&ferryv1.ProcessPool{}, poolNodeIndex, indexPoolNode).Build()
	events := make(chan event.GenericEvent, 10)
	w := &leaseWatcher{client: c, namespace: "ferry-system", staleAfter: staleAfter, every: 2 * time.Second,
		clock: clocktesting.NewFakePassiveClock(t0), events: events, stale: map[string]bool{}, log: logr.Discard()}
	for i := range 100 {
		w.judged(fmt.Sprintf("autoscaled-%d", i), i%2 == 0)
	}
	if err := w.check(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(w.judgements) != 0 || len(events) != 0 {
		t.Errorf("%d judgements kept, %d passes asked for, of nodes with no Lease; want none", len(w.judgements), len(events))
	}
}

// TestFirstCheckAsksForNoPassOfFreshLeases: the Leases the watcher's first
// check finds fresh (the informers' initial list, whose AppGroups have
// their passes queued already) ask for no pass; one created after asks for
// one (a review's test).
func TestFirstCheckAsksForNoPassOfFreshLeases(t *testing.T) {
	ctx := context.Background()
	mk := func(node string) *coordinationv1.Lease {
		return &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Namespace: "ferry-system", Name: contract.AgentLeaseName(node),
			Labels: contract.AgentLeaseLabels(node)},
			Spec: coordinationv1.LeaseSpec{HolderIdentity: ptr.To(node), RenewTime: ptr.To(metav1.NewMicroTime(t0))}}
	}
	pa, pb := testPool("node-a", "1-abc"), testPool("node-b", "1-abc")
	pa.Labels, pb.Labels = contract.PoolLabels("blog", "node-a"), contract.PoolLabels("blog", "node-b")
	c := fake.NewClientBuilder().WithScheme(scheme.New()).WithIndex(&ferryv1.ProcessPool{}, poolNodeIndex, indexPoolNode).WithObjects(mk("node-a"), pa, pb).Build()
	events := make(chan event.GenericEvent, 10)
	w := &leaseWatcher{client: c, namespace: "ferry-system", staleAfter: staleAfter, every: 2 * time.Second,
		clock: clocktesting.NewFakePassiveClock(t0.Add(time.Second)), events: events, stale: map[string]bool{}, log: logr.Discard()}
	if n := checkPasses(t, ctx, w, events); n != 0 {
		t.Fatalf("first check: %d passes, want none", n)
	}
	if err := c.Create(ctx, mk("node-b")); err != nil {
		t.Fatal(err)
	}
	if n := checkPasses(t, ctx, w, events); n != 1 {
		t.Fatalf("a Lease created after the first check: %d passes, want 1", n)
	}
}

// TestLeaseWatcherGivesVouchedAgentsTheirGrace: a new leader finds an
// agent's Lease older than the bound. Its first check asks for a pass
// (passes over AppGroups whose status did not vouch for the agent judge
// it silent); a pass that judged it fresh (its AppGroup's status vouched)
// brings no further pass within the grace; once the grace is over, the
// check asks for one (the vouched passes now judge it silent), and no
// more after a pass that did.
func TestLeaseWatcherGivesVouchedAgentsTheirGrace(t *testing.T) {
	ctx := context.Background()
	w, _, _, contact, events := outageWatcher(t)
	w.probe = nil
	clk := contact.clock.(*clocktesting.FakePassiveClock)
	began := t0.Add(2 * staleAfter) // the Lease, renewed at t0, is past the bound
	clk.SetTime(began)
	if n := checkPasses(t, ctx, w, events); n != 1 {
		t.Fatalf("first check of a Lease past the bound: %d passes, want 1", n)
	}
	for _, at := range []time.Duration{2 * time.Second, staleAfter} {
		clk.SetTime(began.Add(at))
		w.judged("node-a", false) // a pass over a vouched AppGroup
		if n := checkPasses(t, ctx, w, events); n != 0 {
			t.Errorf("%s into the grace, a pass judged the agent fresh: %d passes, want none", at, n)
		}
	}
	clk.SetTime(began.Add(staleAfter + time.Second))
	if n := checkPasses(t, ctx, w, events); n != 1 {
		t.Errorf("the grace over: %d passes, want 1", n)
	}
	w.judged("node-a", true)
	clk.SetTime(began.Add(staleAfter + 3*time.Second))
	if n := checkPasses(t, ctx, w, events); n != 0 {
		t.Errorf("after the grace, a pass judged the agent silent: %d passes, want none", n)
	}
}
