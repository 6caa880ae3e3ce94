package cluster

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/util/workqueue"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	"github.com/ferry-dev/ferry/agent/metrics"
	"github.com/ferry-dev/ferry/agent/proxy"
	"github.com/ferry-dev/ferry/agent/spawn"
	"github.com/ferry-dev/ferry/agent/wsgi"
	ferryv1 "github.com/ferry-dev/ferry/api/v1alpha1"
	"github.com/ferry-dev/ferry/controllers/contract"
	"github.com/ferry-dev/ferry/internal/scheme"
)

// Options configure a cluster-mode agent.
type Options struct {
	// NodeName is the node this agent serves.
	NodeName string
	// Config reaches the API server.
	Config *rest.Config
	// BindAddress is where the proxies listen, each on its pool's port.
	BindAddress string
	// AdvertiseAddress is the host reported in each pool's status.address.
	AdvertiseAddress string
	// StateDir holds the loader, the workers' sockets and the saved specs.
	StateDir string
	// HeartbeatInterval is how often the agent renews its Lease, which the
	// manager reads to know the agent is alive. Default 10s. A pool's port
	// that is taken is tried again every half of it.
	HeartbeatInterval time.Duration
	// StatsInterval is how often a pool's status is written when nothing
	// but its figures (CPU, memory, requests) changed; state changes are
	// written at once. Default 30s.
	StatsInterval time.Duration
	// StatusReportInterval is how often a pool's status is written when
	// nothing in it changed. Default contract.StatusReportInterval; tests
	// shorten it.
	StatusReportInterval time.Duration
	// LeaseNamespace is where the agent's Lease lives. Default
	// contract.DefaultLeaseNamespace.
	LeaseNamespace string
	// Proxy holds the proxies' limits.
	Proxy proxy.Options
	// Metrics receives the pools' and proxies' metrics. Optional.
	Metrics *metrics.Metrics
	// AgentPorts are the ports the agent itself listens on, each with
	// what serves there ("metrics endpoint (--metrics-bind-address)"): a
	// pool whose listen.port is one of them is told so. Optional.
	AgentPorts map[int32]string
	// Log is the agent's logger.
	Log logr.Logger
	// DrainDelay is how long a deleted pool's proxy goes on serving as
	// before, new connections too, before it drains: the time load
	// balancers take to see the node's endpoint terminating and stop
	// sending to it. 0: it drains at once.
	DrainDelay time.Duration
	// WorkerUsers is who workers may run as (--worker-users); the zero
	// value: anyone but root.
	WorkerUsers spawn.WorkerUsers
	// SimulateWorkers, when positive, makes every pool report minProcesses
	// ready processes without running any, replacing one per this step on
	// a new revision. For the control-plane scale benchmark only: nothing
	// is served.
	SimulateWorkers time.Duration

	// releaseRetry is how long the release of a drained pool's finalizer
	// waits after its attempt'th failure; default releaseRetryIn. Tests
	// lengthen it.
	releaseRetry func(attempt int) time.Duration
	// drainDelayOver, closed, ends every drain delay (a deleted pool's, a
	// port's moved from, the agent's stop's), as their timer would. Tests
	// that must act within a delay (freeze the API server, write the pool,
	// create a pool on the port) set a long DrainDelay and close it once
	// they have, rather than race the timer on a loaded machine.
	drainDelayOver <-chan struct{}
	// reporterPassed, when set, is called by the reporter of the pool of
	// key at the end of each of its passes (its status computed, written
	// if due), before it sleeps: tests that count what a pass does wait
	// for one by it, not by a timer.
	reporterPassed func(key types.NamespacedName)
	// saveRetry is how long a failed save of a pool's spec waits to be
	// tried again; default saveRetryEvery. Tests shorten it.
	saveRetry time.Duration
	// saveFailed, when set, is called by the reconcile loop at each failed
	// save of the spec of the pool of key: tests that count the retries
	// wait for them by it, not by a timer.
	saveFailed func(key types.NamespacedName)
}

// Agent runs the node's pools.
type Agent struct {
	opts   Options
	log    logr.Logger
	client client.Client
	// live reads the API server itself, not the cache: a drained pool's
	// fresh copy after a conflict (the cache may lag, or have stopped),
	// and the Secrets and ConfigMaps of env valueFrom (never cached).
	live   client.Reader
	cache  cache.Cache
	queue  workqueue.TypedRateLimitingInterface[types.NamespacedName]
	store  *store
	loader string
	runDir string

	mu       sync.Mutex
	pools    map[types.NamespacedName]*runningPool
	draining map[types.UID]bool // deleted pools draining, by UID: a pool of the same name may follow
	wg       sync.WaitGroup     // background drains
	// unlabelled are the pools of this node that were not labelled
	// ferry.dev/node=<this node> at their last reconcile (noteLabel).
	unlabelled map[types.NamespacedName]bool
	// ports are the ports the pools' proxies listen on (ports.go).
	portsMu sync.Mutex
	ports   map[int32]portHold
	stopped chan struct{} // closed when Run's context is done

	synced       atomic.Bool
	restored     atomic.Bool
	crd          *crdCheck    // keeps the agent not Ready against an outdated CRD
	leaseTrouble leaseTrouble // renewLease's own
	// saveTrouble is, for each pool whose last save of its spec failed,
	// which of those failures were logged (saveIfChanged): the reconcile
	// loop's alone, which saves and forgets the pools, so it takes no lock.
	saveTrouble map[types.NamespacedName]*saveTrouble
}

// New prepares an agent; Run starts it.
func New(opts Options) (*Agent, error) {
	if opts.NodeName == "" {
		return nil, errors.New("the node name is required (--node-name, or NODE_NAME from the downward API)")
	}
	opts = opts.withDefaults()
	runDir := filepath.Join(opts.StateDir, "w")
	if err := makeDirs(opts.StateDir, runDir); err != nil {
		return nil, err
	}
	if err := opts.Proxy.UseSpoolDir(opts.StateDir); err != nil {
		return nil, err
	}
	loader, err := wsgi.Install(filepath.Join(opts.StateDir, "loader"))
	if err != nil {
		return nil, fmt.Errorf("installing the WSGI loader: %w", err)
	}
	st, err := newStore(filepath.Join(opts.StateDir, "pools"))
	if err != nil {
		return nil, err
	}
	log := opts.Log.WithValues("node", opts.NodeName)
	crd := &crdCheck{log: log}
	c, cl, live, err := newClients(opts.Config, opts.NodeName, crd)
	if err != nil {
		return nil, err
	}
	return &Agent{
		opts: opts, log: log, client: cl, live: live, cache: c, store: st, crd: crd,
		loader: loader, runDir: runDir, pools: map[types.NamespacedName]*runningPool{},
		draining: map[types.UID]bool{}, ports: map[int32]portHold{},
		unlabelled: map[types.NamespacedName]bool{},
		stopped:    make(chan struct{}),
		queue: workqueue.NewTypedRateLimitingQueue(workqueue.NewTypedItemExponentialFailureRateLimiter[types.NamespacedName](
			200*time.Millisecond, 30*time.Second)),
	}, nil
}

// withDefaults is o with its zero intervals and namespace defaulted.
func (o Options) withDefaults() Options {
	if o.HeartbeatInterval <= 0 {
		o.HeartbeatInterval = 10 * time.Second
	}
	if o.StatsInterval <= 0 {
		o.StatsInterval = 30 * time.Second
	}
	if o.LeaseNamespace == "" {
		o.LeaseNamespace = contract.DefaultLeaseNamespace
	}
	if o.StatusReportInterval <= 0 {
		o.StatusReportInterval = contract.StatusReportInterval
	}
	if o.releaseRetry == nil {
		o.releaseRetry = releaseRetryIn
	}
	if o.saveRetry <= 0 {
		o.saveRetry = saveRetryEvery
	}
	return o
}

// makeDirs makes dirs, mode 0755 whatever the umask: workers that run as
// another user reach their sockets through them.
func makeDirs(dirs ...string) error {
	for _, d := range dirs {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
		if err := os.Chmod(d, 0o755); err != nil {
			return err
		}
	}
	return nil
}

// newClients are the agent's cache of node's ProcessPools, its client
// (ProcessPools from that cache, its Lease direct), and a client that
// reads the API server itself. The cache selects the pools by
// spec.nodeName (a selectable field of the CRD, Kubernetes 1.32 and
// later), not by their ferry.dev/node label: a pool of the node whose
// label is missing or wrong (removed by hand, rewritten by a tool) stays
// in it, followed, and drained when deleted. By the label, such a pool
// left the agent's view, and one labelled so before the agent ever saw
// it was never run, nor drained once deleted, until the agent's next
// start listed every pool in the cluster for it. spec.nodeName is
// immutable, so a pool leaves the cache only when it is gone.
// crd sees each failed list or watch of the cache, and each answered.
func newClients(cfg *rest.Config, node string, crd *crdCheck) (cache.Cache, client.Client, client.Reader, error) {
	s := scheme.New()
	// The agent only ever touches ProcessPools: a static mapping, so that
	// starting needs no discovery from an API server that may be away.
	mapper := meta.NewDefaultRESTMapper([]schema.GroupVersion{ferryv1.GroupVersion})
	mapper.Add(ferryv1.GroupVersion.WithKind("ProcessPool"), meta.RESTScopeNamespace)
	mapper.Add(coordinationv1.SchemeGroupVersion.WithKind("Lease"), meta.RESTScopeNamespace)
	// Secrets and ConfigMaps an env valueFrom names, got one by one (envfrom.go).
	mapper.Add(corev1.SchemeGroupVersion.WithKind("Secret"), meta.RESTScopeNamespace)
	mapper.Add(corev1.SchemeGroupVersion.WithKind("ConfigMap"), meta.RESTScopeNamespace)
	cacheCfg := rest.CopyConfig(cfg)
	cacheCfg.Wrap(crd.wrap)
	c, err := cache.New(cacheCfg, cache.Options{
		Scheme:                   s,
		Mapper:                   mapper,
		DefaultWatchErrorHandler: crd.handle,
		ByObject: map[client.Object]cache.ByObject{
			&ferryv1.ProcessPool{}: {Field: fields.OneTermEqualSelector(nodeNameField, node)},
		},
	})
	if err != nil {
		return nil, nil, nil, err
	}
	// ProcessPools are read from the cache; the agent's own Lease directly.
	cl, err := client.New(cfg, client.Options{Scheme: s, Mapper: mapper,
		Cache: &client.CacheOptions{Reader: c, DisableFor: []client.Object{&coordinationv1.Lease{}}}})
	if err != nil {
		return nil, nil, nil, err
	}
	live, err := client.New(cfg, client.Options{Scheme: s, Mapper: mapper})
	if err != nil {
		return nil, nil, nil, err
	}
	return c, cl, live, nil
}

// nodeNameField is the ProcessPool's selectable field that names its node.
const nodeNameField = "spec.nodeName"

// Ready reports whether the agent knows what to run: from the API server,
// or, while it is unreachable, from the specs saved on disk. Not while
// the API server refuses the cache's field selector (crdCheck), synced
// before or not: that lasts until the CRDs are upgraded, the agent
// follows no change meanwhile, and an agent Ready then would let a
// DaemonSet rollout reach every node.
func (a *Agent) Ready() bool {
	return !a.crd.outdated.Load() && (a.synced.Load() || a.restored.Load())
}

// CRDOutdated reports whether the API server refuses the agent's list of
// its pools by spec.nodeName, its ProcessPool CRD lacking that selectable
// field: the agent is not Ready then, whatever else.
func (a *Agent) CRDOutdated() bool { return a.crd.outdated.Load() }

// Run serves until ctx is done, then drains every pool.
func (a *Agent) Run(ctx context.Context) error {
	a.restore()
	inf, err := a.cache.GetInformer(ctx, &ferryv1.ProcessPool{}, cache.BlockUntilSynced(false))
	if err != nil {
		return err
	}
	if _, err := inf.AddEventHandler(handler{a.queue}); err != nil {
		return err
	}
	go func() {
		if err := a.cache.Start(ctx); err != nil {
			a.log.Error(err, "Cache stopped")
		}
	}()
	go a.afterSync(ctx)
	go a.renewLease(ctx)
	workDone := make(chan struct{})
	go func() {
		defer close(workDone)
		a.work(ctx)
	}()
	<-ctx.Done()
	close(a.stopped)
	// No reconcile may start a pool after stopAll: wait for the worker.
	a.queue.ShutDown()
	<-workDone
	a.stopAll()
	a.wg.Wait()
	return nil
}

// restore starts the pools saved on disk, so that an agent restarted while
// the API server is down serves what it served before.
func (a *Agent) restore() {
	saved, errs := a.store.load()
	for _, err := range errs {
		a.log.Error(err, "Could not read a saved pool spec")
	}
	resumed := 0
	for _, pp := range saved {
		if pp.Spec.NodeName != a.opts.NodeName {
			continue
		}
		key := types.NamespacedName{Namespace: pp.Namespace, Name: pp.Name}
		a.log.Info("Resumed pool from its saved spec", "pool", key, "revision", pp.Spec.Revision)
		a.ensure(pp)
		resumed++
	}
	// Ready on the saved specs only when there were some: with nothing
	// saved, the agent knows nothing to run until the API server answers.
	a.restored.Store(resumed > 0)
}

// afterSync waits until the cache has heard from the API server, then
// reconciles the pools restored from disk against it (a pool deleted while
// the agent was away is stopped).
func (a *Agent) afterSync(ctx context.Context) {
	if !a.cache.WaitForCacheSync(ctx) {
		return
	}
	a.synced.Store(true)
	a.log.Info("Synced with the API server")
	a.mu.Lock()
	for key := range a.pools {
		a.queue.Add(key)
	}
	a.mu.Unlock()
}

func (a *Agent) work(ctx context.Context) {
	for {
		key, shutdown := a.queue.Get()
		if shutdown {
			return
		}
		err := a.reconcile(ctx, key)
		switch {
		case err == nil:
			a.queue.Forget(key)
		case ctx.Err() != nil:
		default:
			a.log.Error(err, "Reconcile failed; will retry", "pool", key)
			a.queue.AddRateLimited(key)
		}
		a.queue.Done(key)
	}
}

// reconcile brings one pool in line with its ProcessPool.
func (a *Agent) reconcile(ctx context.Context, key types.NamespacedName) error {
	if ctx.Err() != nil {
		return nil // shutting down: start nothing
	}
	pp := &ferryv1.ProcessPool{}
	err := a.cache.Get(ctx, key, pp)
	switch {
	case apierrors.IsNotFound(err):
		if !a.synced.Load() {
			return nil
		}
		// Gone (no finalizer left to hold it): the cache holds every
		// pool of this node, labelled or not, a deleted one until its
		// finalizer goes. Stop what runs.
		a.stop(key)
		a.mu.Lock()
		delete(a.unlabelled, key)
		a.mu.Unlock()
		// A save's retry queued finds the pool gone, and saves nothing;
		// it does remove the spec once more (below): harmless, no file
		// is left, and a removal whose sync failed is made durable by it
		// (store.goneAlready).
		delete(a.saveTrouble, key)
		// Whatever spec of key is saved, no pool of the name is left
		// (store.remove), and the store's record of it goes with it.
		return a.store.remove(key)
	case err != nil:
		return err
	}
	if pp.Spec.NodeName != a.opts.NodeName {
		return nil // the cache selects by it: never so, but never run another node's pool
	}
	if !pp.DeletionTimestamp.IsZero() {
		// Draining takes the drain delay and shutdownTimeout: off this worker, so
		// the node's other pools do not wait for it.
		a.drainAsync(key, pp, nil, "")
		// A save's retry queued finds the pool deleted, and saves
		// nothing: drainAsync does nothing while the pool drains, and
		// after, its finalizer not yet released, removes the spec once
		// more, as any reconcile of it then does: harmless, and a removal
		// whose sync failed is made durable by it (store.goneAlready).
		delete(a.saveTrouble, key)
		return nil
	}
	a.noteLabel(key, pp)
	if !a.saveIfChanged(key, pp) {
		// Tried again on its own: the pool's next reconcile, which
		// its status writes bring, does not come while the API server
		// is down, and an agent restarted then would resume the spec
		// saved last. Not an error returned: the loop would log it at
		// each retry, and its limiter would space the retries from
		// 200ms up to 30s (New), not every saveRetry.
		a.queue.AddAfter(key, a.opts.saveRetry)
	}
	a.ensure(pp)
	return nil
}

// noteLabel says once when a pool of this node is not labelled
// ferry.dev/node=<this node>, and when it is again. The agent does not
// need the label (it selects its pools by spec.nodeName): the pool runs
// on as before, and, deleted, is drained all the same. But on a pool the
// manager made the label is the manager's, which puts it back at its next
// pass (on one made by hand, nothing does: unlabelledMsg), and what
// selects a node's pools by it (kubectl get processpools -l
// ferry.dev/node=...) misses the pool meanwhile: a sign that something (a
// person, a tool that rewrites labels) works against the manager.
func (a *Agent) noteLabel(key types.NamespacedName, pp *ferryv1.ProcessPool) {
	want := contract.LabelValue(a.opts.NodeName)
	got := pp.Labels[ferryv1.NodeLabel]
	a.mu.Lock()
	was := a.unlabelled[key]
	if got != want {
		a.unlabelled[key] = true
	} else {
		delete(a.unlabelled, key)
	}
	a.mu.Unlock()
	switch {
	case got != want && !was:
		a.log.Info(unlabelledMsg(pp), "pool", key, "label", ferryv1.NodeLabel, "want", want, "got", got)
	case got == want && was:
		a.log.Info("Pool labelled for this node again", "pool", key)
	}
}

// unlabelledMsg is what noteLabel says of pp without this node's label:
// that it runs on, and who puts the label back. The manager does for the
// pools it made, those an AppGroup controls (its controller reference,
// by which the manager finds them whatever their labels); a pool made by
// hand (spec.appGroup names an AppGroup, but none controls it) is no
// manager's, and keeps its labels as they are.
func unlabelledMsg(pp *ferryv1.ProcessPool) string {
	const lead = "Pool not labelled for this node; it runs as before (the agent selects its pools by spec.nodeName)"
	if ref := metav1.GetControllerOf(pp); ref != nil && ref.Kind == "AppGroup" &&
		strings.HasPrefix(ref.APIVersion, ferryv1.GroupVersion.Group+"/") {
		return lead + ", and the manager puts the label back at its next pass"
	}
	return lead + ". No AppGroup controls it (made by hand, not by the manager), so nothing puts the label back:" +
		" what selects a node's pools by it misses this one until it is labelled again"
}

// drainAsync stops a deleted pool in the background and then removes its
// finalizer (retried until it succeeds or the agent stops). only, when
// not nil, is the running pool of key whose reporter found it deleted
// (runningPool.noticeDeletion) in a read made while it ran the pool of
// UID about: drainAsync then does nothing once only is no longer the
// running pool of key (drained, stopped, or stopping with the agent), nor
// once the read is stale (staleRead: the agent synced, or only runs
// another pool now), as stopGone; and once it takes only off the pools,
// it queues key for the reconcile loop, as stopGone does, for a new pool
// of the name handed to only after that check. Its saved spec is then
// removed only if it is pp's or saved without a UID (store.removeIf): a
// new pool of the name that a reconcile under way as the cache synced
// saved after the check keeps its own; the reconcile loop's call removes
// any.
func (a *Agent) drainAsync(key types.NamespacedName, pp *ferryv1.ProcessPool, only *runningPool, about types.UID) {
	// Before a.mu: staleRead takes only's mu, which is not taken under it.
	stale := only != nil && a.staleRead(only, about)
	a.mu.Lock()
	if a.draining[pp.UID] || (only != nil && (stale || a.pools[key] != only)) {
		a.mu.Unlock()
		return
	}
	a.draining[pp.UID] = true
	rp := a.pools[key]
	delete(a.pools, key)
	delete(a.unlabelled, key)
	// Under mu: before stopAll takes the pools, so before Run waits for
	// the drains, even when a pool's reporter, which Run does not wait
	// for first, drains it.
	a.wg.Add(1)
	a.mu.Unlock()
	// The saved spec goes now, with the store's record of it, not after
	// the drain: a pool of the same name created meanwhile (this one
	// released by hand, or by the manager when its Node went) saves its
	// own, which must stay.
	var err error
	if only != nil {
		only.log.Info("Pool deleted, as read by name; draining it")
		// A reconcile may have saved a new pool's spec since the check.
		err = a.store.removeIf(key, pp.UID)
	} else {
		err = a.store.remove(key)
	}
	if err != nil {
		logSpecRemovalFailed(a.log, err, "pool", key)
	}
	if only != nil {
		// A new pool of the name handed to only after the check: the
		// reconcile loop starts it, and saves its spec, which the
		// removal keeps whether it came first or not (store.removeIf).
		a.queue.Add(key)
	}
	uid := pp.UID
	go func() {
		defer a.wg.Done()
		if rp != nil {
			rp.mu.Lock()
			rp.deleted = true
			rp.mu.Unlock()
			rp.pool.Stopping() // no roll through the drain delay
			a.drainDelay(rp)
			rp.close(false) // deleted: cut short by a stop, it does not serve on
		}
		a.releaseFinalizer(key, pp)
		a.mu.Lock()
		delete(a.draining, uid)
		a.mu.Unlock()
	}()
}

// releaseFinalizer removes a drained pool's finalizer, retried until it
// succeeds or the agent stops, each try given requestTimeout. Its
// failures are logged as the Lease's renewals are (leaseTrouble): when
// they start, when they fail otherwise, and every leaseRemindEvery, not
// at every retry through an API server outage; the release after them
// with how long they lasted.
func (a *Agent) releaseFinalizer(key types.NamespacedName, pp *ferryv1.ProcessPool) {
	var trouble leaseTrouble
	conflicts := 0
	for attempt := 0; ; attempt++ {
		removed, err := a.removeFinalizer(pp)
		if err == nil {
			if removed {
				a.logDrained(key, &trouble)
			}
			return
		}
		// A conflict is retried on a fresh copy even as the agent
		// stops: its pools' last reports made the copy stale.
		if apierrors.IsConflict(err) {
			fresh := &ferryv1.ProcessPool{}
			if bounded(context.Background(), func(ctx context.Context) error { return a.live.Get(ctx, key, fresh) }) == nil {
				if fresh.UID != pp.UID {
					return // released meanwhile; a new pool has the name
				}
				pp = fresh
				// The pool was written since the copy was taken (its
				// status reported during the drain delay, its labels
				// patched): no failure. Try the fresh copy at once, a
				// few times, before counting it as one.
				if conflicts++; conflicts <= quietConflicts {
					a.log.V(1).Info("Pool changed while it drained; removing the drain finalizer again", "pool", key)
					attempt--
					continue
				}
			}
		}
		select {
		case <-a.stopped:
			a.log.Error(err, "Could not remove the drain finalizer; the node's next agent will", "pool", key)
			return
		default:
		}
		retryIn := a.opts.releaseRetry(attempt)
		if since, log := trouble.failed(time.Now(), err); log {
			a.log.Error(err, "Could not remove the drain finalizer; will retry", "pool", key, "retryIn", retryIn.String(),
				"failingSince", since.UTC().Format(time.RFC3339))
		}
		// The agent's stop ends the wait: one last try, then the node's
		// next agent's, not a stop held up to 30s through an outage.
		waitDelay(retryIn, a.stopped, nil, nil)
	}
}

// releaseRetryIn is how long the release of a drained pool's finalizer
// waits after its attempt'th failure: 1s, doubled each time, at most 30s.
func releaseRetryIn(attempt int) time.Duration {
	return min(time.Second<<min(attempt, 5), 30*time.Second)
}

// logDrained says a deleted pool was released, and for how long taking
// its finalizer off had failed, if it had.
func (a *Agent) logDrained(key types.NamespacedName, trouble *leaseTrouble) {
	if since, was := trouble.renewed(); was {
		a.log.Info("Drained deleted pool", "pool", key, "failedFor", time.Since(since).Round(time.Second).String())
		return
	}
	a.log.Info("Drained deleted pool", "pool", key)
}

// quietConflicts is how many conflicts in a row the removal of a drained
// pool's finalizer retries at once, logging at V(1) only: each means the
// pool was written meanwhile, which its own reporter does.
const quietConflicts = 5

// drainDelay serves a deleted pool as before for Options.DrainDelay, or
// until the agent stops: the manager marks its node's endpoint
// terminating as the pool is deleted, and a load balancer still sending
// to the node meanwhile must find it serving, not refusing connections.
func (a *Agent) drainDelay(rp *runningPool) {
	if a.opts.DrainDelay <= 0 {
		return
	}
	rp.log.Info("Pool deleted; serving on for the drain delay before draining", "drainDelay", a.opts.DrainDelay.String())
	a.waitDrainDelay(a.stopped, nil)
}

// logSpecRemovalFailed logs a drain's failed removal of its pool's saved
// spec: not removed, or removed but its directory not synced
// (errNotDurable), which the store syncs at its next write or removal, as
// the reconcile loop's removal once it finds the pool gone.
func logSpecRemovalFailed(log logr.Logger, err error, keysAndValues ...any) {
	if errors.Is(err, errNotDurable) {
		log.Error(err, "Removed the saved spec of a deleted pool, but could not sync its directory: a power loss may"+
			" bring it back, for an agent restarted without the API server to resume; the agent syncs the directory"+
			" at its next write or removal of a saved spec", keysAndValues...)
		return
	}
	log.Error(err, "Could not remove the saved spec of a deleted pool", keysAndValues...)
}

// saveRetryEvery is how long a failed save of a pool's spec waits to be
// tried again (reconcile): a full or failing disk is mended by hand, and
// a write of a few kilobytes every few seconds costs nothing meanwhile.
const saveRetryEvery = 5 * time.Second

// saveIfChanged writes a pool's spec to disk unless the store's record
// says it holds it already (store.saveIfChanged); saved: it is on disk
// (false: the caller tries again). A failed save says which spec a
// restart without the API server would resume: the one saved last, left
// by a save failing before its rename, which may be this one (an agent
// restarted rewrites the spec its previous run saved) or not; or the new
// one, in place but maybe not past a power loss (errNotDurable). Its
// retry writes it again, or, in place, syncs the directory again
// (savedAs.unsynced).
// Failures are logged as the Lease's renewals are (leaseTrouble): when
// they start, when they fail otherwise, and leaseRemindEvery after the
// last line, not at every retry; and whenever what the line says a
// restart resumes is not what the last one said (saveTrouble); the save
// after them with how long they lasted. Each line names the spec: its
// revision and generation.
func (a *Agent) saveIfChanged(key types.NamespacedName, pp *ferryv1.ProcessPool) (saved bool) {
	err := a.store.saveIfChanged(pp)
	if err == nil {
		a.savedAfterTrouble(key, pp)
		return true
	}
	if a.opts.saveFailed != nil {
		a.opts.saveFailed(key)
	}
	msg := saveFailedMsg(err)
	said := fmt.Sprintf("%s (revision %q, generation %d)", msg, pp.Spec.Revision, pp.Generation)
	since, log := a.saveTroubleOf(key).failed(time.Now(), err, said)
	if !log {
		return false
	}
	a.log.Error(err, msg, "pool", key, "revision", pp.Spec.Revision, "generation", pp.Generation,
		"retryIn", a.opts.saveRetry.String(), "failingSince", since.UTC().Format(time.RFC3339))
	return false
}

// saveTrouble is leaseTrouble for the failed saves of one pool's spec,
// and what the line logged last said a restart resumes: its message and
// the spec it names. A failure of a kind logged already is logged again
// when that changes: the write failing, then the directory's sync ("this
// spec"), then the write again for a changed spec would leave the last
// line saying a restart resumes a spec it does not
// (TestSaveFailuresLoggedWhenWhatTheySayChanges).
type saveTrouble struct {
	leaseTrouble
	said string
}

// failed records a failed save at now, whose line would say said; log
// says to log it: leaseTrouble's first, new kind and reminder, or a line
// that says what the last one did not. Whatever logs it, the reminder
// counts from it, as the lease's does from its last line: left to
// leaseTrouble, it counted from the last line of a new kind, and came as
// soon as a minute after a changed spec's line
// (TestSaveTroubleRemindsFromTheLastLine).
func (st *saveTrouble) failed(now time.Time, err error, said string) (since time.Time, log bool) {
	since, log = st.leaseTrouble.failed(now, err)
	if !log && said == st.said {
		return since, false
	}
	st.logged, st.said = now, said
	return since, true
}

// saveTroubleOf is the pool of key's saveTrouble, made at its first
// failed save.
func (a *Agent) saveTroubleOf(key types.NamespacedName) *saveTrouble {
	if a.saveTrouble == nil {
		a.saveTrouble = map[types.NamespacedName]*saveTrouble{}
	}
	trouble := a.saveTrouble[key]
	if trouble == nil {
		trouble = &saveTrouble{}
		a.saveTrouble[key] = trouble
	}
	return trouble
}

// saveFailedMsg is the line for a failed save of err: which spec a
// restart without the API server resumes.
func saveFailedMsg(err error) string {
	if errors.Is(err, errNotDurable) {
		return "Saved the pool's spec, but could not sync its directory: an agent restart without the API" +
			" server resumes this spec, unless the node loses power first, which may bring back its previous saved" +
			" spec, if any; will retry"
	}
	return "Could not save the pool's spec; an agent restart without the API server would resume" +
		" the spec saved last, if any, which may not be this one; will retry"
}

// savedAfterTrouble says the spec pp of the pool of key was saved, and
// for how long its saves had failed, if they had.
func (a *Agent) savedAfterTrouble(key types.NamespacedName, pp *ferryv1.ProcessPool) {
	trouble := a.saveTrouble[key]
	if trouble == nil {
		return
	}
	delete(a.saveTrouble, key)
	if since, was := trouble.renewed(); was {
		a.log.Info("Saved the pool's spec after failed tries", "pool", key, "revision", pp.Spec.Revision,
			"generation", pp.Generation, "failedFor", time.Since(since).Round(time.Second).String())
	}
}

// removeFinalizer takes the drain finalizer off pp, in one request of
// requestTimeout at most; removed: pp had it, and now neither has (or the
// pool is gone). It leaves pp as it is: a removal that failed is tried
// again on it.
func (a *Agent) removeFinalizer(pp *ferryv1.ProcessPool) (removed bool, err error) {
	if !controllerutil.ContainsFinalizer(pp, contract.DrainFinalizer) {
		return false, nil
	}
	patch := client.MergeFromWithOptions(pp, client.MergeFromWithOptimisticLock{})
	pp = pp.DeepCopy()
	controllerutil.RemoveFinalizer(pp, contract.DrainFinalizer)
	err = bounded(context.Background(), func(ctx context.Context) error { return a.client.Patch(ctx, pp, patch) })
	if err != nil && !apierrors.IsNotFound(err) {
		return false, err
	}
	return true, nil
}

// requestTimeout bounds each request the agent makes to the API server of
// its own (a Lease renewal, a status write, a finalizer's removal), not
// its watches: its client has no timeout, as the watches must last, and a
// request the API server took and does not answer would otherwise hold
// its caller as long as the connection lasts (HTTP/2's health check ends
// one in about 45 s; over HTTP/1.1, or through a proxy that answers the
// pings, nothing does), a drained pool's release and the agent's stop
// with it.
const requestTimeout = 10 * time.Second

// bounded makes the request req, given requestTimeout at most.
func bounded(ctx context.Context, req func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	return req(ctx)
}

// ensure runs pp's pool with its current spec.
func (a *Agent) ensure(pp *ferryv1.ProcessPool) {
	key := client.ObjectKeyFromObject(pp)
	a.mu.Lock()
	rp := a.pools[key]
	if rp == nil {
		rp = a.startPool(pp)
		a.pools[key] = rp
		a.mu.Unlock()
		return
	}
	a.mu.Unlock()
	rp.update(pp)
}

// stop stops the pool of key, gone, in the background, as drainAsync does
// a deleted one: its stop takes up to its shutdownTimeout, for which the
// reconcile worker would hold every other pool's changes, and, should the
// agent stop meanwhile, the start of their stop (Run waits for the worker
// before stopAll).
func (a *Agent) stop(key types.NamespacedName) {
	a.mu.Lock()
	rp := a.pools[key]
	delete(a.pools, key)
	a.mu.Unlock()
	if rp == nil {
		return
	}
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		rp.close(false)
	}()
}

func (a *Agent) stopAll() {
	a.mu.Lock()
	pools := make([]*runningPool, 0, len(a.pools))
	for _, rp := range a.pools {
		pools = append(pools, rp)
	}
	a.pools = map[types.NamespacedName]*runningPool{}
	a.mu.Unlock()
	var wg sync.WaitGroup
	for _, rp := range pools {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rp.close(true)
		}()
	}
	wg.Wait()
}

func (a *Agent) listenAddr(port int32) string {
	return net.JoinHostPort(a.opts.BindAddress, strconv.Itoa(int(port)))
}

// listenRetry is how often a pool's port that could not be opened is
// tried again: every half heartbeat, whatever the stats interval, so that
// a port freed is served within seconds.
func (a *Agent) listenRetry() time.Duration { return a.opts.HeartbeatInterval / 2 }

// advertiseHost is the host of each pool's status.address.
func (a *Agent) advertiseHost() string {
	if a.opts.AdvertiseAddress != "" {
		return a.opts.AdvertiseAddress
	}
	return a.opts.BindAddress
}
