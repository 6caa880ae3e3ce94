package cluster

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/go-logr/logr"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	utilnet "k8s.io/apimachinery/pkg/util/net"
	"k8s.io/client-go/rest"
	toolscache "k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	"github.com/ferry-dev/ferry/agent/internal/agenttest"
	ferryv1 "github.com/ferry-dev/ferry/api/v1alpha1"
	"github.com/ferry-dev/ferry/controllers/contract"
)

// fieldLabelError is the API server's answer to a list of ProcessPools
// by spec.nodeName when the CRD does not declare it selectable, as the
// reflector returns it.
func fieldLabelError() error {
	return fmt.Errorf("failed to list *v1alpha1.ProcessPool: %w",
		apierrors.NewBadRequest("field label not supported: spec.nodeName"))
}

func TestFieldUnsupported(t *testing.T) {
	gr := schema.GroupResource{Group: "ferry.dev", Resource: "processpools"}
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"the field selector refused", fieldLabelError(), true},
		{"another bad request", apierrors.NewBadRequest("invalid label selector"), false},
		{"the text, not a bad request", errors.New("field label not supported: spec.nodeName"), false},
		{"forbidden", apierrors.NewForbidden(gr, "", errors.New("no")), false},
		{"the API server away", errors.New("dial tcp 127.0.0.1:6443: connect: connection refused"), false},
		{"nil", nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := fieldUnsupported(tc.err); got != tc.want {
				t.Errorf("fieldUnsupported(%v) = %v, want %v", tc.err, got, tc.want)
			}
		})
	}
}

// TestReplacedBy: a pool read under the name of the one the agent runs
// is another, whose status is not the agent's to write, when its UID
// differs (unless the running one was saved without its UID) or it is
// another node's; the same rule for the cache's copy and a read by name.
func TestReplacedBy(t *testing.T) {
	pool := func(uid, node string) *ferryv1.ProcessPool {
		return &ferryv1.ProcessPool{ObjectMeta: metav1.ObjectMeta{UID: types.UID(uid)},
			Spec: ferryv1.ProcessPoolSpec{NodeName: node}}
	}
	for _, tc := range []struct {
		name          string
		ours, current *ferryv1.ProcessPool
		want          bool
	}{
		{"the same pool", pool("u1", "a"), pool("u1", "a"), false},
		{"a new UID", pool("u1", "a"), pool("u2", "a"), true},
		{"saved without its UID", pool("", "a"), pool("u2", "a"), false},
		{"another node's", pool("u1", "a"), pool("u1", "b"), true},
		{"saved without its UID, another node's", pool("", "a"), pool("u2", "b"), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := replacedBy(tc.ours, tc.current); got != tc.want {
				t.Errorf("replacedBy = %v, want %v", got, tc.want)
			}
		})
	}
}

// TestGoneByName: a read by name finds the pool gone only on the API
// server's own NotFound for it, not on a 404 whose body is no Status of
// it (a proxy's, an API server not serving the CRD yet), which client-go
// turns into a NotFound all the same, nor on another object's.
func TestGoneByName(t *testing.T) {
	key := types.NamespacedName{Namespace: "ns", Name: "web"}
	gr := schema.GroupResource{Group: "ferry.dev", Resource: "processpools"}
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"the API server's NotFound", apierrors.NewNotFound(gr, "web"), true},
		{"wrapped", fmt.Errorf("read: %w", apierrors.NewNotFound(gr, "web")), true},
		{"a bare 404", apierrors.NewGenericServerResponse(http.StatusNotFound, "GET", gr, "web", "404 page not found", 0, true), false},
		{"another pool's", apierrors.NewNotFound(gr, "api"), false},
		{"another resource's", apierrors.NewNotFound(schema.GroupResource{Resource: "namespaces"}, "web"), false},
		{"another group's", apierrors.NewNotFound(schema.GroupResource{Group: "example.com", Resource: "processpools"}, "web"), false},
		{"no details", &apierrors.StatusError{ErrStatus: metav1.Status{Reason: metav1.StatusReasonNotFound, Code: http.StatusNotFound}}, false},
		{"another error", apierrors.NewForbidden(gr, "web", errors.New("no")), false},
		{"no status", errors.New("processpools.ferry.dev \"web\" not found"), false},
		{"nil", nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := goneByName(tc.err, key); got != tc.want {
				t.Errorf("goneByName(%v) = %v, want %v", tc.err, got, tc.want)
			}
		})
	}
}

// TestStopGoneOnlyWhatTheReadWasAbout: a pool found gone, or deleted,
// by its read by name is stopped (stopGone), or drained (drainAsync), and
// its saved spec removed, only while the agent has not synced and the
// running pool still runs the pool the read was about (its UID, empty for
// a spec saved without it; not the UID the read found): a read made
// before the cache synced must not stop a new pool of the same name the
// reconcile loop has handed it since, nor remove its saved spec; nor one
// the agent runs no more. A pool stopped has its key queued, for the
// reconcile loop to start a new pool of its name handed to it too late;
// and the spec of such a pool, which the reconcile loop saves before it
// hands it over (before the removal, before or after the check), stays.
// The spec removed is the pool's read (drainAsync: the deleted pool's
// UID) or the running pool's as the read began (stopGone: about, as the
// NotFound names no UID), or one saved without a UID.
func TestStopGoneOnlyWhatTheReadWasAbout(t *testing.T) {
	key := types.NamespacedName{Namespace: "ns", Name: "web"}
	// The read: the pool deleted, as the API server has it (UID u1).
	read := &ferryv1.ProcessPool{ObjectMeta: metav1.ObjectMeta{Namespace: key.Namespace, Name: key.Name, UID: "u1",
		DeletionTimestamp: &metav1.Time{Time: time.Now()}}}
	paths := map[string]func(a *Agent, rp *runningPool, about types.UID){
		"stopGone":   func(a *Agent, rp *runningPool, about types.UID) { a.stopGone(rp, about, false) },
		"drainAsync": func(a *Agent, rp *runningPool, about types.UID) { a.drainAsync(key, read, rp, about) },
	}
	both := []string{"stopGone", "drainAsync"}
	for _, tc := range []struct {
		name    string
		runs    types.UID // the UID of the pool the running pool runs
		about   types.UID // the UID of the pool it ran as the read began
		synced  bool
		another bool      // the agent runs another running pool of key
		onDisk  types.UID // the UID of the spec saved; empty: runs
		stopped bool
		// specKeptBy are the paths that keep the saved spec of a pool
		// they stop; any keeps it when the pool is not stopped.
		specKeptBy []string
	}{
		{name: "the pool read", runs: "u1", about: "u1", stopped: true},
		{name: "a new pool handed to it since", runs: "u2", about: "u1"},
		{name: "the agent synced since", runs: "u1", about: "u1", synced: true},
		{name: "no longer the running pool of key", runs: "u1", about: "u1", another: true},
		{name: "saved without its UID", runs: "", about: "", stopped: true},
		{name: "saved without its UID, a pool handed to it since", runs: "u1", about: ""},
		{name: "a new pool's spec saved since", runs: "u1", about: "u1", onDisk: "u3", stopped: true, specKeptBy: both},
		{name: "saved without its UID, a new pool's spec saved since", runs: "", about: "", onDisk: "u3", stopped: true,
			specKeptBy: both},
		// The read's pool (u1), saved since: its deletion drainAsync read
		// removes it; stopGone, which read no pool, keeps it as another's.
		{name: "saved without its UID, the read pool's spec saved since", runs: "", about: "", onDisk: "u1", stopped: true,
			specKeptBy: []string{"stopGone"}},
	} {
		for path, stop := range paths {
			t.Run(path+"/"+tc.name, func(t *testing.T) {
				st, err := newStore(t.TempDir())
				if err != nil {
					t.Fatal(err)
				}
				a := &Agent{store: st, pools: map[types.NamespacedName]*runningPool{},
					unlabelled: map[types.NamespacedName]bool{}, draining: map[types.UID]bool{},
					queue: workqueue.NewTypedRateLimitingQueue(workqueue.DefaultTypedControllerRateLimiter[types.NamespacedName]())}
				t.Cleanup(a.queue.ShutDown)
				a.synced.Store(tc.synced)
				pp := &ferryv1.ProcessPool{ObjectMeta: metav1.ObjectMeta{Namespace: key.Namespace, Name: key.Name, UID: tc.runs, Generation: 1}}
				onDisk := pp.DeepCopy()
				if tc.onDisk != "" {
					onDisk.UID = tc.onDisk
				}
				if err := st.save(onDisk); err != nil {
					t.Fatal(err)
				}
				rp := stoppableRunningPool(a, pp)
				a.pools[key] = rp
				if tc.another {
					a.pools[key] = stoppableRunningPool(a, pp)
				}
				stop(a, rp, tc.about)
				a.wg.Wait()
				_, statErr := os.Stat(st.path(key))
				if stopped := a.pools[key] == nil; stopped != tc.stopped {
					t.Errorf("stopped: %v, want %v", stopped, tc.stopped)
				}
				kept := statErr == nil
				if want := !tc.stopped || slices.Contains(tc.specKeptBy, path); kept != want {
					t.Error(savedSpecMisread(kept, tc.stopped, onDisk.UID, statErr))
				}
				// st.saved is the pool whose spec the store last wrote under
				// the name (UID and generation), by which saveIfChanged
				// skips a save: it goes with the spec removed, and stays,
				// the spec's, with one kept.
				if off := recordOffDisk(st, key); off != "" {
					t.Error(off)
				}
				if queued := a.queue.Len() == 1; queued != tc.stopped {
					t.Errorf("key queued for the reconcile loop: %v, want %v", queued, tc.stopped)
				}
			})
		}
	}
}

// savedSpecMisread says what a stop did wrong to the saved spec of the
// pool of UID onDisk: kept it, its pool stopped, or removed it (statErr),
// its pool running on, or a new pool's of the name; and what an agent
// restarted without the API server, which resumes what is saved, would
// then run.
func savedSpecMisread(kept, stopped bool, onDisk types.UID, statErr error) string {
	switch {
	case kept:
		return fmt.Sprintf("the pool stopped as read gone or deleted by name, yet its saved spec (%s) is still on disk:"+
			" an agent restarted without the API server would resume it", savedBy(onDisk))
	case !stopped:
		return fmt.Sprintf("the pool runs on, yet its saved spec (%s) was removed (%v): an agent restarted without"+
			" the API server would not resume it", savedBy(onDisk), statErr)
	}
	return fmt.Sprintf("the pool stopped, and with it a new pool's saved spec (%s), saved under the name since the read,"+
		" was removed (%v): an agent restarted without the API server would not resume the new pool", savedBy(onDisk), statErr)
}

// savedBy names the pool whose spec was saved: by its UID, or as saved
// without one.
func savedBy(uid types.UID) string {
	if uid == "" {
		return "saved without a UID"
	}
	return fmt.Sprintf("UID %s", uid)
}

// TestReconcileRemovesAnySavedSpec: a pool the reconcile loop finds
// deleted in its cache, or gone from it, has its name's saved spec
// removed whatever its UID: the spec of the pool the agent resumed from
// disk (u0), deleted while the agent was away, its name since taken by
// the pool the cache shows deleted (u1), or by none, is of a pool gone
// as well. Only the reporter's removals, which a reconcile's save may
// precede, keep another UID's. The cache is a stub that holds the one
// pool (cacheOf): what is tested is reconcile's answer to its read.
func TestReconcileRemovesAnySavedSpec(t *testing.T) {
	key := types.NamespacedName{Namespace: "ns", Name: "web"}
	deleted := poolOf(key, "u1")
	deleted.DeletionTimestamp = &metav1.Time{Time: time.Now()}
	for name, tc := range map[string]struct {
		cached  *ferryv1.ProcessPool
		inCache string // what the cache shows, as a message says it
	}{
		"deleted": {deleted, "its name's pool deleted in the cache"},
		"gone":    {nil, "no pool of its name in the cache"},
	} {
		t.Run(name, func(t *testing.T) {
			st, err := newStore(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			a := &Agent{store: st, cache: cacheOf{pp: tc.cached}, opts: Options{NodeName: deleted.Spec.NodeName},
				pools:      map[types.NamespacedName]*runningPool{},
				unlabelled: map[types.NamespacedName]bool{}, draining: map[types.UID]bool{}}
			a.synced.Store(true)
			resumed := poolOf(key, "u0")
			if err := st.save(resumed); err != nil {
				t.Fatal(err)
			}
			a.pools[key] = stoppableRunningPool(a, resumed)
			if err := a.reconcile(context.Background(), key); err != nil {
				t.Fatal(err)
			}
			a.wg.Wait()
			if a.pools[key] != nil {
				t.Error("the resumed pool runs on")
			}
			if _, err := os.Stat(st.path(key)); err == nil {
				t.Errorf("the resumed pool stopped, %s, yet its saved spec (%s) is still on disk:"+
					" an agent restarted without the API server would resume it", tc.inCache, savedBy(resumed.UID))
			} else if !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("the resumed pool's saved spec, %s: %v, want it removed", tc.inCache, err)
			}
		})
	}
}

// cacheOf is a cache that holds pp alone (nil: no pool), for reconcile's
// read; it answers nothing else.
type cacheOf struct {
	cache.Cache
	pp *ferryv1.ProcessPool
}

func (c cacheOf) Get(_ context.Context, key client.ObjectKey, obj client.Object, _ ...client.GetOption) error {
	if c.pp == nil || client.ObjectKeyFromObject(c.pp) != key {
		return apierrors.NewNotFound(schema.GroupResource{Group: ferryv1.GroupVersion.Group, Resource: "processpools"}, key.Name)
	}
	c.pp.DeepCopyInto(obj.(*ferryv1.ProcessPool))
	return nil
}

// stoppableRunningPool is a running pool of a for pp that runs nothing
// (a simulated pool, no reporter, no proxy), which close can stop.
func stoppableRunningPool(a *Agent, pp *ferryv1.ProcessPool) *runningPool {
	rp := &runningPool{a: a, key: client.ObjectKeyFromObject(pp), obj: pp.DeepCopy(),
		pool: newSimulatedPool(configOf(pp), time.Second), stop: make(chan struct{}), done: make(chan struct{})}
	rp.stopCtx, rp.endStop = context.WithCancel(context.Background())
	close(rp.done) // no reporter to wait for
	return rp
}

// TestCRDCheckHandler: the refused field selector sets outdated and is
// logged once however often the reflector retries; another error does
// neither; an answer by the field clears outdated, said once, and a later
// refusal is logged again.
func TestCRDCheckHandler(t *testing.T) {
	book := agenttest.NewLogbook(t)
	c := &crdCheck{log: book.Logger()}
	r := toolscache.NewReflector(&toolscache.ListWatch{}, &ferryv1.ProcessPool{},
		toolscache.NewStore(toolscache.MetaNamespaceKeyFunc), 0)
	ctx := context.Background()

	c.handle(ctx, r, errors.New("dial tcp 127.0.0.1:6443: connect: connection refused"))
	c.handle(ctx, r, apierrors.NewBadRequest("invalid label selector"))
	if c.outdated.Load() {
		t.Fatal("outdated after errors other than the refused field selector")
	}
	if n := len(book.Find("")); n != 0 {
		t.Fatalf("logged %d lines for errors other than the refused field selector", n)
	}

	for range 3 {
		c.handle(ctx, r, fieldLabelError())
	}
	if !c.outdated.Load() {
		t.Fatal("not outdated after the refused field selector")
	}
	checkOutdatedLogged(t, book, 1)

	c.answered()
	c.answered()
	if c.outdated.Load() {
		t.Fatal("outdated after an answer by the field")
	}
	if n := len(book.Find(crdFixedMsg)); n != 1 {
		t.Fatalf("logged %q %d times, want once", crdFixedMsg, n)
	}
	c.handle(ctx, r, fieldLabelError())
	checkOutdatedLogged(t, book, 2)
}

// TestCRDCheckWrap: the cache's transport clears outdated at an answer
// (200) to a list or watch of ProcessPools by spec.nodeName, and at no
// other request or answer.
func TestCRDCheckWrap(t *testing.T) {
	const pools = "/apis/ferry.dev/v1alpha1/processpools"
	byNode := "fieldSelector=" + url.QueryEscape(nodeNameField+"=node-a")
	for _, tc := range []struct {
		name   string
		method string
		url    string
		status int
		err    error
		want   bool // cleared
	}{
		{"a list by the field answered", http.MethodGet, pools + "?" + byNode, 200, nil, true},
		{"a watch by the field answered", http.MethodGet, pools + "?watch=true&" + byNode, 200, nil, true},
		{"one namespace's", http.MethodGet, "/apis/ferry.dev/v1alpha1/namespaces/ns/processpools?" + byNode, 200, nil, true},
		{"refused", http.MethodGet, pools + "?" + byNode, 400, nil, false},
		{"not reached", http.MethodGet, pools + "?" + byNode, 0, errors.New("connection refused"), false},
		{"without the field selector", http.MethodGet, pools, 200, nil, false},
		{"another field", http.MethodGet, pools + "?fieldSelector=" + url.QueryEscape("metadata.name=p"), 200, nil, false},
		{"one pool", http.MethodGet, pools + "/p?" + byNode, 200, nil, false},
		{"a Lease", http.MethodGet, "/apis/coordination.k8s.io/v1/namespaces/ns/leases?" + byNode, 200, nil, false},
		{"a write", http.MethodPatch, pools + "?" + byNode, 200, nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			book := agenttest.NewLogbook(t)
			c := &crdCheck{log: book.Logger()}
			c.outdated.Store(true)
			rt := c.wrap(roundTripper(func(*http.Request) (*http.Response, error) {
				if tc.err != nil {
					return nil, tc.err
				}
				return &http.Response{StatusCode: tc.status, Body: http.NoBody}, nil
			}))
			req := httptest.NewRequest(tc.method, "https://api.example"+tc.url, nil)
			if resp, err := rt.RoundTrip(req); err == nil {
				_ = resp.Body.Close()
			}
			if got := !c.outdated.Load(); got != tc.want {
				t.Errorf("cleared = %v, want %v", got, tc.want)
			}
		})
	}
}

// TestCRDCheckWrapUnwraps: the cache's transport gives the one it wraps
// to client-go's helpers that look through wrappers (utilnet's
// TLSClientConfig, DialerFor, CloseIdleConnectionsFor), as client-go's
// own wrappers do. Once, they answered "unknown transport type".
func TestCRDCheckWrapUnwraps(t *testing.T) {
	tlsConfig := &tls.Config{ServerName: "api.example"}
	inner := &http.Transport{TLSClientConfig: tlsConfig}
	rt := (&crdCheck{log: logr.Discard()}).wrap(inner)
	got, err := utilnet.TLSClientConfig(rt)
	if err != nil {
		t.Fatalf("TLSClientConfig of the wrapped transport: %v", err)
	}
	if got != tlsConfig {
		t.Errorf("TLSClientConfig = %p, want the wrapped transport's %p", got, tlsConfig)
	}
}

// roundTripper is a function as an http.RoundTripper.
type roundTripper func(*http.Request) (*http.Response, error)

func (f roundTripper) RoundTrip(req *http.Request) (*http.Response, error) { return f(req) }

// checkOutdatedLogged checks that book holds n lines besides
// crdFixedMsg, each crdCheck's error naming the field and the fix.
func checkOutdatedLogged(t *testing.T, book *agenttest.Logbook, n int) {
	t.Helper()
	all := slices.DeleteFunc(book.Find(""), func(e agenttest.LogEntry) bool { return e.Msg == crdFixedMsg })
	if len(all) != n {
		t.Fatalf("logged %d lines, want %d: %v", len(all), n, all)
	}
	for _, e := range all {
		if e.Msg != CRDOutdatedReason || !e.IsError {
			t.Errorf("logged %q (error: %v), want the error %q", e.Msg, e.IsError, CRDOutdatedReason)
		}
		if v, _ := e.Value("field"); v != nodeNameField {
			t.Errorf("field = %v, want %s", v, nodeNameField)
		}
	}
}

// TestAgentAgainstACRDWithoutTheFieldIsNotReady: an agent with saved
// pools, restarted against a ProcessPool CRD that does not declare
// spec.nodeName selectable (CRDs not upgraded), logs the cause and the
// fix and is not Ready; once the CRD declares the field, it syncs and is
// Ready. Meanwhile it reports the pool it resumed, read by name, though
// it cannot list its pools: a report newer than the previous agent's
// AgentStopping, Ready and rolled out (its ready processes and no
// AgentStopping are what the manager's poolReport.Serving reads to put
// the node back in the Service; no manager runs here); a spec change
// it does not see yet is not reported observed until it syncs. Once, the
// pool kept saying AgentStopping while the agent ran it and renewed its
// Lease.
func TestAgentAgainstACRDWithoutTheFieldIsNotReady(t *testing.T) {
	ns := namespace(t)
	dir := stateDir(t)
	const node = "node-crd"
	stop := runAgent(t, node, env.Config, dir)
	port := freePort(t)
	_, key := readyPool(t, ns, "hello-"+node, node, port)
	stop()
	stopped := waitPool(t, key, "the stopped agent's last report", func(p *ferryv1.ProcessPool) bool {
		c := meta.FindStatusCondition(p.Status.Conditions, ferryv1.ConditionReady)
		return c != nil && c.Reason == ferryv1.ReasonAgentStopping
	})

	setNodeNameSelectable(t, false)
	t.Cleanup(func() { setNodeNameSelectable(t, true) })

	book := agenttest.NewLogbook(t)
	a, _ := startAgent(t, node, env.Config, dir, logTo(book))
	book.WaitFor(t, "Resumed pool from its saved spec")
	e := book.WaitFor(t, CRDOutdatedReason)
	if !e.IsError {
		t.Errorf("%q logged as info, want an error", e.Msg)
	}
	if !a.restored.Load() {
		t.Fatal("the agent did not resume its saved pool: its not being Ready proves nothing")
	}
	if a.Ready() {
		t.Error("Ready against a CRD without the selectable field")
	}

	stoppedAt := heartbeatOf(t, stopped)
	pp := waitPool(t, key, "the restarted agent's report of its resumed pool", func(p *ferryv1.ProcessPool) bool {
		c := meta.FindStatusCondition(p.Status.Conditions, ferryv1.ConditionReady)
		return p.Status.HeartbeatTime != nil && p.Status.HeartbeatTime.After(stoppedAt) && rolledOut(p) &&
			c != nil && c.Status == metav1.ConditionTrue
	})
	if pp.Status.ObservedGeneration != pp.Generation {
		t.Errorf("observedGeneration %d of generation %d, unchanged", pp.Status.ObservedGeneration, pp.Generation)
	}
	if a.synced.Load() || a.Ready() {
		t.Fatal("the agent synced or turned Ready against a CRD without the field: its report proves nothing")
	}

	// A spec change, which the agent cannot see yet: its reports go on
	// observing the generation it runs.
	patchPool(t, pp, func(p *ferryv1.ProcessPool) { p.Spec.Template.Pool.MaxRequestQueueSize++ })
	changed := pp.Generation
	pp = afterTwoReports(t, key, port)
	if g := pp.Status.ObservedGeneration; g != changed-1 {
		t.Errorf("observedGeneration %d while the agent cannot see generation %d, want %d", g, changed, changed-1)
	}

	setNodeNameSelectable(t, true)
	book.WaitFor(t, "Synced with the API server")
	waitUntil(t, "the agent Ready", a.Ready)
	waitPool(t, key, "the change observed once the agent syncs", func(p *ferryv1.ProcessPool) bool {
		return p.Status.ObservedGeneration == changed
	})
	if a.crd.outdated.Load() {
		t.Error("still outdated after the sync")
	}
	if n := len(book.Find(CRDOutdatedReason)); n != 1 {
		t.Errorf("logged %q %d times, want once", CRDOutdatedReason, n)
	}
	book.Check(t)
}

// TestAgentNotReadyWhileItsCRDLacksTheField: a running agent, synced,
// whose ProcessPool CRD loses the selectable field spec.nodeName (a CRD
// downgraded, or its selectableFields taken out by hand) has its watch
// refused from then on: it logs the cause and the fix once and is not
// Ready, so that a DaemonSet rollout under way stops; once the CRD
// declares the field again, it says so and is Ready again. Once, it
// logged the cause and stayed Ready: its cache had synced. Meanwhile it
// keeps reporting its pool: a worker killed and replaced shows in the
// pool's status in the API server.
func TestAgentNotReadyWhileItsCRDLacksTheField(t *testing.T) {
	ns := namespace(t)
	const node = "node-crd-live"
	book := agenttest.NewLogbook(t)
	a, _ := startAgent(t, node, env.Config, stateDir(t), logTo(book))
	_, key := readyPool(t, ns, "hello-"+node, node, freePort(t))
	waitUntil(t, "the agent Ready", a.Ready)

	setNodeNameSelectable(t, false)
	t.Cleanup(func() { setNodeNameSelectable(t, true) })
	waitUntil(t, "the agent not Ready once its watch is refused", func() bool { return !a.Ready() })
	book.WaitFor(t, CRDOutdatedReason)

	ready := getPool(t, key)
	old := map[int32]bool{}
	for _, p := range ready.Status.Processes {
		old[p.PID] = true
	}
	victim := ready.Status.Processes[0].PID
	if err := syscall.Kill(int(victim), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitPool(t, key, "the killed worker's replacement reported while the CRD lacks the field", func(p *ferryv1.ProcessPool) bool {
		replaced := false
		for _, proc := range p.Status.Processes {
			if proc.PID == victim {
				return false
			}
			replaced = replaced || !old[proc.PID]
		}
		return replaced && rolledOut(p)
	})
	if a.Ready() || !a.crd.outdated.Load() {
		t.Fatal("the agent Ready, or its CRD no longer outdated, before the CRD declared the field again: the report proves nothing")
	}

	setNodeNameSelectable(t, true)
	book.WaitFor(t, crdFixedMsg)
	waitUntil(t, "the agent Ready again", a.Ready)
	if n := len(book.Find(CRDOutdatedReason)); n != 1 {
		t.Errorf("logged %q %d times, want once", CRDOutdatedReason, n)
	}
	book.Check(t)
}

// TestAgentOnACRDWithoutTheFieldSaysItStops: an agent restarted on a
// ProcessPool CRD without the selectable field spec.nodeName, which
// reports its resumed pool read by name, says so too as it stops
// (AgentStopping, then that it stopped), as a synced agent does: the
// node leaves the Service at once, not once the Lease is stale.
func TestAgentOnACRDWithoutTheFieldSaysItStops(t *testing.T) {
	const node = "node-crd-stop"
	dir, key := poolSavedOnAnOutdatedCRD(t, node)
	reqs, cfg := countingPoolRequests(key)
	book := agenttest.NewLogbook(t)
	a, stop := startAgent(t, node, cfg, dir, logTo(book))
	book.WaitFor(t, CRDOutdatedReason)
	waitPool(t, key, "the restarted agent's report", func(p *ferryv1.ProcessPool) bool {
		c := meta.FindStatusCondition(p.Status.Conditions, ferryv1.ConditionReady)
		return c != nil && c.Status == metav1.ConditionTrue
	})
	if a.synced.Load() {
		t.Fatal("the agent synced against a CRD without the field: its stop proves nothing")
	}
	stop()
	pp := getPool(t, key)
	c := meta.FindStatusCondition(pp.Status.Conditions, ferryv1.ConditionReady)
	if c == nil || c.Reason != ferryv1.ReasonAgentStopping || !strings.Contains(c.Message, node+" stopped") {
		t.Errorf("Ready once the agent stopped: %+v, want False, %s, saying it stopped", c, ferryv1.ReasonAgentStopping)
	}
	if n := pp.Status.ProcessCounts.Ready; n != 0 {
		t.Errorf("once the agent stopped, its pool reports %d ready processes; want none", n)
	}
	// The read by name before the stop report is made under the report's
	// deadline (stoppingWriteTimeout, for the read and the write), not a
	// request timeout of its own: the last read and the last write, the
	// stop's, carry one deadline. Once, the read took up to requestTimeout
	// before each write.
	read, write := reqs.lastDeadlines()
	switch {
	case !read.ok || !write.ok:
		t.Errorf("the stop's read of the pool by name (deadline: %v) or its write (deadline: %v) carried no deadline", read.ok, write.ok)
	case !read.at.Equal(write.at):
		t.Errorf("the stop's read of the pool by name has a deadline of its own (%v), not its write's (%v)", read.at, write.at)
	}
	book.Check(t)
}

// TestAgentOnACRDWithoutTheFieldReadsByNameToWrite: an agent restarted
// on a ProcessPool CRD without the selectable field spec.nodeName reads
// its resumed pool by name only when a write of its status is due: its
// reporter woken with nothing to write reads nothing (once, each wake-up,
// a pool change, a stats tick, a retry, made a GET). A read that fails is
// logged as a failed write, and the report resumes once reads work
// again (once, it was silent: the write then waited, errNotSynced).
func TestAgentOnACRDWithoutTheFieldReadsByNameToWrite(t *testing.T) {
	const node = "node-crd-reads"
	dir, key := poolSavedOnAnOutdatedCRD(t, node)
	reqs, cfg := countingPoolRequests(key)
	var passes, extra atomic.Int64 // extra: the most reads beyond writes seen at the end of a pass
	book := agenttest.NewLogbook(t)
	a, _ := startAgent(t, node, cfg, dir, logTo(book), func(o *Options) {
		// Nothing but a change of state makes a write due.
		o.StatsInterval, o.StatusReportInterval = 10*time.Minute, 10*time.Minute
		o.reporterPassed = func(k types.NamespacedName) {
			if k != key {
				return
			}
			if n := reqs.reads.Load() - reqs.writes.Load(); n > extra.Load() {
				extra.Store(n)
			}
			passes.Add(1)
		}
	})
	book.WaitFor(t, CRDOutdatedReason)
	pp := waitPool(t, key, "the restarted agent's report", func(p *ferryv1.ProcessPool) bool {
		c := meta.FindStatusCondition(p.Status.Conditions, ferryv1.ConditionReady)
		return c != nil && c.Status == metav1.ConditionTrue && rolledOut(p)
	})
	if a.synced.Load() || reqs.writes.Load() == 0 {
		t.Fatalf("the agent synced (%v), or wrote no status through its reads by name (%d writes): its reads prove nothing",
			a.synced.Load(), reqs.writes.Load())
	}
	rp := runningPoolOf(t, a, key)
	for range 3 {
		n := passes.Load()
		rp.wake()
		waitUntil(t, "a pass of the woken reporter", func() bool { return passes.Load() > n })
	}
	if n := extra.Load(); n != 0 {
		t.Errorf("%d reads of the pool by name beyond its writes (%d reads, %d writes): want a read for each write only",
			n, reqs.reads.Load(), reqs.writes.Load())
	}

	// A read that fails, as a write of the state that changed is due.
	reqs.fail.Store(true)
	victim := pp.Status.Processes[0].PID
	if err := syscall.Kill(int(victim), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	e := book.WaitFor(t, "Could not report status")
	if e.Err == nil || !strings.Contains(e.Err.Error(), errReadFails) {
		t.Errorf("logged %q with error %v, want the read's %q", e.Msg, e.Err, errReadFails)
	}
	reqs.fail.Store(false)
	book.WaitFor(t, "Reported status again")
	waitPool(t, key, "the killed worker gone from the report once reads work", func(p *ferryv1.ProcessPool) bool {
		for _, proc := range p.Status.Processes {
			if proc.PID == victim {
				return false
			}
		}
		return true
	})
	book.Check(t)
}

// TestAgentOnACRDWithoutTheFieldDrainsADeletedPool: an agent restarted
// on a ProcessPool CRD without the selectable field spec.nodeName, which
// cannot see the deletion of the pool it resumed in its cache, sees it in
// the pool read by name before a write of its status: it drains the pool
// (its workers stop), releases its drain finalizer and forgets its saved
// spec, as it does a deleted pool its cache shows. Once, the pool ran on,
// reported Ready, its finalizer held, until the CRD was upgraded.
func TestAgentOnACRDWithoutTheFieldDrainsADeletedPool(t *testing.T) {
	const node = "node-crd-deleted"
	dir, key := poolSavedOnAnOutdatedCRD(t, node)
	book := agenttest.NewLogbook(t)
	a, pp := resumedOnAnOutdatedCRD(t, node, dir, key, book, env.Config)

	if err := env.Client.Delete(context.Background(), pp); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the deleted pool released", func() bool { return poolGone(key) == nil })
	book.WaitFor(t, "Pool deleted, as read by name; draining it")
	book.WaitFor(t, "Drained deleted pool")
	checkStoppedOnAnOutdatedCRD(t, a, key, pp)
	book.Check(t)
}

// TestAgentOnACRDWithoutTheFieldStopsAPoolGone: as the test above, for a
// pool gone at once as it is deleted (its drain finalizer taken off by
// hand): the read by name finds none, and the agent stops the pool and
// forgets its saved spec, as it does a pool gone from its cache. Once,
// the pool ran on until the CRD was upgraded, or, after a restart, came
// back from its saved spec.
func TestAgentOnACRDWithoutTheFieldStopsAPoolGone(t *testing.T) {
	const node = "node-crd-gone"
	dir, key := poolSavedOnAnOutdatedCRD(t, node)
	book := agenttest.NewLogbook(t)
	a, pp := resumedOnAnOutdatedCRD(t, node, dir, key, book, env.Config)

	patchPool(t, pp, func(p *ferryv1.ProcessPool) { controllerutil.RemoveFinalizer(p, contract.DrainFinalizer) })
	if err := env.Client.Delete(context.Background(), pp); err != nil {
		t.Fatal(err)
	}
	if err := poolGone(key); err != nil {
		t.Fatalf("the pool, its finalizer taken off, is not gone once deleted: %v", err)
	}
	book.WaitFor(t, "Pool gone, as read by name; stopping it")
	checkStoppedOnAnOutdatedCRD(t, a, key, pp)
	book.Check(t)
}

// TestAgentOnACRDWithoutTheFieldStopsAPoolReplaced: as the test above,
// for a pool deleted, its finalizer taken off, and created again under
// its name and node (a new UID: the manager does so when a finalizer is
// taken off by hand) before the agent reads it: the read by name finds
// another pool, and the agent stops its own and forgets its saved spec,
// and never writes the new pool's status. Once, its pool ran on, holding
// its port and its saved spec, until the CRD was upgraded.
func TestAgentOnACRDWithoutTheFieldStopsAPoolReplaced(t *testing.T) {
	const node = "node-crd-replaced"
	dir, key := poolSavedOnAnOutdatedCRD(t, node)
	reqs, cfg := countingPoolRequests(key)
	book := agenttest.NewLogbook(t)
	a, pp := resumedOnAnOutdatedCRD(t, node, dir, key, book, cfg)

	// No read of the pool between its deletion and its successor: the
	// agent must see the successor, not the name free.
	reqs.fail.Store(true)
	patchPool(t, pp, func(p *ferryv1.ProcessPool) { controllerutil.RemoveFinalizer(p, contract.DrainFinalizer) })
	if err := env.Client.Delete(context.Background(), pp); err != nil {
		t.Fatal(err)
	}
	if err := poolGone(key); err != nil {
		t.Fatalf("the pool, its finalizer taken off, is not gone once deleted: %v", err)
	}
	next := newPool(key.Namespace, key.Name, node, "2-bbb", freePort(t), example("hello-wsgi"))
	if err := env.Client.Create(context.Background(), next); err != nil {
		t.Fatal(err)
	}
	reqs.fail.Store(false)

	e := book.WaitFor(t, "Pool gone, as read by name; stopping it")
	if v, _ := e.Value("nameTakenByAnother"); v != true {
		t.Errorf("logged %q with nameTakenByAnother %v, want true: the read found no pool, not another", e.Msg, v)
	}
	checkStoppedOnAnOutdatedCRD(t, a, key, pp)
	if got := getPool(t, key); got.UID != next.UID || got.Status.HeartbeatTime != nil {
		t.Errorf("the new pool (UID %s, the one created %s) has a status written: %+v", got.UID, next.UID, got.Status)
	}
	book.Check(t)
}

// TestAgentOnACRDWithoutTheFieldKeepsAPoolOnA404: an agent restarted on
// a ProcessPool CRD without the selectable field spec.nodeName, which
// reads its resumed pool by name before each write of its status, does
// not stop the pool on a 404 that is not the API server's answer for it
// (a proxy's, its body no Status of the pool), which it logs as a failed
// write, nor on one NotFound that a second read does not confirm: the
// pool runs on, serves, and keeps its saved spec. Once, one such 404
// stopped the pool for good and removed its saved spec, while its last
// status went on saying Ready.
func TestAgentOnACRDWithoutTheFieldKeepsAPoolOnA404(t *testing.T) {
	const node = "node-crd-404"
	dir, key := poolSavedOnAnOutdatedCRD(t, node)
	reqs, cfg := countingPoolRequests(key)
	// answered: a pass of the reporter ended once the transport answered
	// a read with a 404 (n so far), so after that read's handling.
	var answered atomic.Int64
	book := agenttest.NewLogbook(t)
	a, pp := resumedOnAnOutdatedCRD(t, node, dir, key, book, cfg, func(o *Options) {
		o.reporterPassed = func(k types.NamespacedName) {
			if k == key {
				answered.Store(reqs.notFounds.Load())
			}
		}
	})
	rp := runningPoolOf(t, a, key)

	reqs.bare404.Store(true)
	waitUntil(t, "a pass of the reporter after a bare 404", func() bool { return answered.Load() > 0 })
	checkRunsOnAnOutdatedCRD(t, a, key, pp, rp, book)
	e := book.WaitFor(t, "Could not report status")
	if e.Err == nil || !strings.Contains(e.Err.Error(), "not as the API server says of a pool gone") {
		t.Errorf("logged %q with error %v, want the read's 404, not taken for the pool gone", e.Msg, e.Err)
	}

	reqs.bare404.Store(false)
	reqs.statusNotFound.Store(true)
	// Not answered > the count as bare404 was cleared: a bare 404 served
	// just then would pass that before the NotFound was.
	waitUntil(t, "a pass of the reporter after the API server's NotFound, once", func() bool {
		n := reqs.statusServed.Load()
		return n > 0 && answered.Load() >= n
	})
	checkRunsOnAnOutdatedCRD(t, a, key, pp, rp, book)
	book.WaitFor(t, "Reported status again")
	book.Check(t)
}

// TestAgentLogsABare404OnAStatusWrite: a 404 on the write of a pool's
// status that is not the API server's NotFound for the pool (a proxy's,
// its body no Status of it) is a failed write: logged, retried, and the
// report resumes, said, once writes work again; the pool runs on. Once,
// it was taken for the pool's deletion: not logged, the report silently
// backing off to the heartbeat.
func TestAgentLogsABare404OnAStatusWrite(t *testing.T) {
	const node = "node-write-404"
	ns := namespace(t)
	name := "hello-" + node
	reqs, cfg := countingPoolRequests(types.NamespacedName{Namespace: ns, Name: name})
	// answered: a pass of the reporter ended once the transport answered
	// a write with a bare 404 (n so far), so after that write's handling.
	var answered atomic.Int64
	book := agenttest.NewLogbook(t)
	key := types.NamespacedName{Namespace: ns, Name: name}
	a, _ := startAgent(t, node, cfg, stateDir(t), logTo(book), func(o *Options) {
		o.StatusReportInterval = time.Second
		o.reporterPassed = func(k types.NamespacedName) {
			if k == key {
				answered.Store(reqs.writeNotFounds.Load())
			}
		}
	})
	readyPool(t, ns, name, node, freePort(t))
	rp := runningPoolOf(t, a, key)

	reqs.bare404Writes.Store(true)
	waitUntil(t, "a pass of the reporter after a write answered with a bare 404", func() bool { return answered.Load() > 0 })
	es := book.Find("Could not report status")
	switch {
	case len(es) == 0:
		t.Fatalf("no %q logged after a write answered with a bare 404: taken for the pool's deletion", "Could not report status")
	case !apierrors.IsNotFound(es[0].Err):
		t.Errorf("logged %q with error %v, want the write's 404", es[0].Msg, es[0].Err)
	}
	reqs.bare404Writes.Store(false)
	book.WaitFor(t, "Reported status again")
	if got := runningPoolOf(t, a, key); got != rp {
		t.Error("the agent runs another pool of key: the bare 404 stopped it")
	}
	book.Check(t)
}

// TestGoneByNameOfTheAPIServer: the API server's answers for a pool gone,
// to a read of it and to a write of its status, are goneByName, which
// tells them from another 404.
func TestGoneByNameOfTheAPIServer(t *testing.T) {
	ctx := context.Background()
	claimNode(t, "node-gone-by-name") // no agent runs there, and none of another test may
	pp := newPool(namespace(t), "gone", "node-gone-by-name", "1-aaa", freePort(t), example("hello-wsgi"))
	pp.Finalizers = nil
	if err := env.Client.Create(ctx, pp); err != nil {
		t.Fatal(err)
	}
	key := client.ObjectKeyFromObject(pp)
	if err := env.Client.Delete(ctx, pp); err != nil {
		t.Fatal(err)
	}
	if err := poolGone(key); err != nil {
		t.Fatalf("the pool, without a finalizer, is not gone once deleted: %v", err)
	}
	read := env.Client.Get(ctx, key, &ferryv1.ProcessPool{})
	patch := client.MergeFrom(pp.DeepCopy())
	pp.Status.Address = "127.0.0.1:1"
	write := env.Client.Status().Patch(ctx, pp, patch)
	for what, err := range map[string]error{"read": read, "status write": write} {
		if !goneByName(err, key) {
			t.Errorf("the %s of a pool gone: %v (%#v), not goneByName", what, err, err)
		}
	}
}

// checkRunsOnAnOutdatedCRD checks that a, which has not synced, still
// runs the pool of key as rp: pp's workers live, its proxy serves, its
// saved spec is there, and book has no line of its stop.
func checkRunsOnAnOutdatedCRD(t *testing.T, a *Agent, key types.NamespacedName, pp *ferryv1.ProcessPool, rp *runningPool,
	book *agenttest.Logbook) {
	t.Helper()
	if es := book.Find("Pool gone"); len(es) > 0 {
		t.Errorf("logged %q: the pool was stopped on a 404", es[0].Msg)
	}
	a.mu.Lock()
	runs := a.pools[key] == rp
	a.mu.Unlock()
	if !runs {
		t.Error("the agent no longer runs the pool")
	}
	for _, p := range pp.Status.Processes {
		if err := syscall.Kill(int(p.PID), 0); err != nil {
			t.Errorf("worker %d of the pool: %v, want it running", p.PID, err)
		}
	}
	if err := served(fmt.Sprintf("http://127.0.0.1:%d/", pp.Spec.Template.Listen.Port)); err != nil {
		t.Errorf("the pool's port: %v, want it served", err)
	}
	if _, err := os.Stat(a.store.path(key)); err != nil {
		t.Errorf("the pool's saved spec: %v, want it kept", err)
	}
	if a.synced.Load() {
		t.Fatal("the agent synced against a CRD without the field: its keeping the pool proves nothing")
	}
}

// resumedOnAnOutdatedCRD starts an agent for node on dir, saved by
// poolSavedOnAnOutdatedCRD, and waits for its report of the pool of key,
// resumed and read by name: rolled out, its processes the new agent's.
// The agent, on cfg, writes its unchanged status, and so reads it by
// name, every second; opts may change its options further.
func resumedOnAnOutdatedCRD(t *testing.T, node, dir string, key types.NamespacedName, book *agenttest.Logbook,
	cfg *rest.Config, opts ...func(*Options)) (*Agent, *ferryv1.ProcessPool) {
	t.Helper()
	opts = append([]func(*Options){logTo(book), func(o *Options) { o.StatusReportInterval = time.Second }}, opts...)
	a, _ := startAgent(t, node, cfg, dir, opts...)
	book.WaitFor(t, CRDOutdatedReason)
	// rolledOut: the previous agent's last report lists no ready process.
	pp := waitPool(t, key, "the restarted agent's report", rolledOut)
	if a.synced.Load() {
		t.Fatal("the agent synced against a CRD without the field: what it notices proves nothing")
	}
	return a, pp
}

// checkStoppedOnAnOutdatedCRD checks that a, which has not synced, runs
// no pool of key any more: pp's workers are gone (waited for), and its
// saved spec, which a restart would resume.
func checkStoppedOnAnOutdatedCRD(t *testing.T, a *Agent, key types.NamespacedName, pp *ferryv1.ProcessPool) {
	t.Helper()
	for _, p := range pp.Status.Processes {
		waitUntil(t, fmt.Sprintf("worker %d of the deleted pool gone", p.PID), func() bool {
			return errors.Is(syscall.Kill(int(p.PID), 0), syscall.ESRCH)
		})
	}
	a.mu.Lock()
	_, runs := a.pools[key]
	a.mu.Unlock()
	if runs {
		t.Error("the agent still runs the deleted pool")
	}
	if _, err := os.Stat(a.store.path(key)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the deleted pool's saved spec: %v, want it removed", err)
	}
	if a.synced.Load() {
		t.Error("the agent synced against a CRD without the field: its stop of the pool proves nothing")
	}
}

// poolSavedOnAnOutdatedCRD runs an agent for node until it reports a
// ready pool of its own, in a new namespace, and stops it, the pool
// saved in the state dir it returns for an agent restarted there to
// resume; then it takes spec.nodeName out of the ProcessPool CRD's
// selectable fields until the test ends. It is the opening of the tests
// of an agent restarted on a CRD without the field.
func poolSavedOnAnOutdatedCRD(t *testing.T, node string) (dir string, key types.NamespacedName) {
	t.Helper()
	ns := namespace(t)
	dir = stateDir(t)
	stop := runAgent(t, node, env.Config, dir)
	_, key = readyPool(t, ns, "hello-"+node, node, freePort(t))
	stop()

	setNodeNameSelectable(t, false)
	t.Cleanup(func() { setNodeNameSelectable(t, true) })
	return dir, key
}

// errReadFails is the error of poolRequests' reads while they fail.
const errReadFails = "the read of the pool by name fails (test)"

// poolRequests is an agent's transport (rest.Config.Wrap) that counts its
// reads of one pool by name (path) and its writes of that pool's status,
// keeps the deadline of the last of each, and fails the reads, unsent,
// while fail is set. While bare404 is set, it answers the reads itself
// with a 404 whose body is no Status (a proxy's); once statusNotFound is
// set, it answers the next read with the API server's NotFound for the
// pool, and clears it. notFounds counts the reads it so answered;
// statusServed is its count with the last NotFound. While bare404Writes
// is set, it answers the status writes itself with a bare 404, counted in
// writeNotFounds.
type poolRequests struct {
	path           string
	reads, writes  atomic.Int64
	fail           atomic.Bool
	bare404        atomic.Bool
	statusNotFound atomic.Bool
	notFounds      atomic.Int64
	statusServed   atomic.Int64
	bare404Writes  atomic.Bool
	writeNotFounds atomic.Int64

	mu                  sync.Mutex
	lastRead, lastWrite deadline
}

// deadline is a request's context's deadline; ok: it had one.
type deadline struct {
	at time.Time
	ok bool
}

// lastDeadlines are the deadlines of the last read of the pool by name
// and of the last write of its status.
func (r *poolRequests) lastDeadlines() (read, write deadline) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.lastRead, r.lastWrite
}

// note keeps req's deadline in *last.
func (r *poolRequests) note(last *deadline, req *http.Request) {
	var d deadline
	d.at, d.ok = req.Context().Deadline()
	r.mu.Lock()
	*last = d
	r.mu.Unlock()
}

// countingPoolRequests is a copy of the test API server's config whose
// requests to the pool key go through a poolRequests, which it returns.
func countingPoolRequests(key types.NamespacedName) (*poolRequests, *rest.Config) {
	reqs := &poolRequests{path: "/apis/ferry.dev/v1alpha1/namespaces/" + key.Namespace + "/processpools/" + key.Name}
	cfg := rest.CopyConfig(env.Config)
	cfg.Wrap(reqs.wrap)
	return reqs, cfg
}

func (r *poolRequests) wrap(rt http.RoundTripper) http.RoundTripper {
	return &poolRequestsTransport{r: r, rt: rt}
}

type poolRequestsTransport struct {
	r  *poolRequests
	rt http.RoundTripper
}

func (p *poolRequestsTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	switch {
	case req.Method == http.MethodGet && req.URL.Path == p.r.path:
		if p.r.fail.Load() {
			return nil, errors.New(errReadFails)
		}
		if p.r.bare404.Load() {
			p.r.notFounds.Add(1)
			return answer(req, http.StatusNotFound, "text/plain; charset=utf-8", "404 page not found\n"), nil
		}
		if p.r.statusNotFound.CompareAndSwap(true, false) {
			p.r.statusServed.Store(p.r.notFounds.Add(1))
			name := path.Base(req.URL.Path)
			st := apierrors.NewNotFound(schema.GroupResource{Group: "ferry.dev", Resource: "processpools"}, name).ErrStatus
			st.Kind, st.APIVersion = "Status", "v1"
			body, err := json.Marshal(st)
			if err != nil {
				return nil, err
			}
			return answer(req, http.StatusNotFound, "application/json", string(body)), nil
		}
		p.r.reads.Add(1)
		p.r.note(&p.r.lastRead, req)
	case req.Method == http.MethodPatch && req.URL.Path == p.r.path+"/status":
		if p.r.bare404Writes.Load() {
			p.r.writeNotFounds.Add(1)
			return answer(req, http.StatusNotFound, "text/plain; charset=utf-8", "404 page not found\n"), nil
		}
		p.r.writes.Add(1)
		p.r.note(&p.r.lastWrite, req)
	}
	return p.rt.RoundTrip(req)
}

// WrappedRoundTripper lets client-go's helpers look through it.
func (p *poolRequestsTransport) WrappedRoundTripper() http.RoundTripper { return p.rt }

// answer is a response to req of code, with body of contentType.
func answer(req *http.Request, code int, contentType, body string) *http.Response {
	return &http.Response{StatusCode: code, Status: http.StatusText(code), Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: http.Header{"Content-Type": {contentType}}, Body: io.NopCloser(strings.NewReader(body)),
		ContentLength: int64(len(body)), Request: req}
}

// runningPoolOf is a's running pool of key.
func runningPoolOf(t *testing.T, a *Agent, key types.NamespacedName) *runningPool {
	t.Helper()
	a.mu.Lock()
	defer a.mu.Unlock()
	rp := a.pools[key]
	if rp == nil {
		t.Fatalf("the agent runs no pool %s", key)
	}
	return rp
}

// afterTwoReports is the pool of key once its agent wrote its status
// twice after this call read it: the second write's read of the pool
// followed the first write, so it followed whatever the caller wrote
// before. Each poll sends a request to the pool's port: its figures move,
// and are written every stats interval.
func afterTwoReports(t *testing.T, key types.NamespacedName, port int32) *ferryv1.ProcessPool {
	t.Helper()
	url := fmt.Sprintf("http://127.0.0.1:%d/", port)
	since := heartbeatOf(t, getPool(t, key))
	var pp *ferryv1.ProcessPool
	for range 2 {
		pp = waitPool(t, key, "a report after "+since.String(), func(p *ferryv1.ProcessPool) bool {
			_ = served(url)
			return p.Status.HeartbeatTime != nil && p.Status.HeartbeatTime.After(since)
		})
		since = heartbeatOf(t, pp)
	}
	return pp
}

// heartbeatOf is p's status.heartbeatTime; the test fails, saying so,
// when p has none (no agent ever reported it).
func heartbeatOf(t *testing.T, p *ferryv1.ProcessPool) time.Time {
	t.Helper()
	if p.Status.HeartbeatTime == nil {
		t.Fatalf("pool %s/%s has no status.heartbeatTime: no agent reported it: %+v", p.Namespace, p.Name, p.Status)
	}
	return p.Status.HeartbeatTime.Time
}

// setNodeNameSelectable declares spec.nodeName a selectable field of the
// ProcessPool CRD, or takes it out as in a CRD older than the agent, and
// waits until the API server lists by it accordingly.
func setNodeNameSelectable(t *testing.T, on bool) {
	t.Helper()
	ctx := context.Background()
	if err := env.SetNodeNameSelectable(ctx, on); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, fmt.Sprintf("a list by %s to be refused: %v", nodeNameField, !on), func() bool {
		err := env.Client.List(ctx, &ferryv1.ProcessPoolList{}, client.MatchingFields{nodeNameField: "node-crd"})
		if on {
			return err == nil
		}
		return fieldUnsupported(err)
	})
}
