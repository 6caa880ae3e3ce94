package cluster

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
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
}

// Agent runs the node's pools.
type Agent struct {
	opts   Options
	log    logr.Logger
	client client.Client
	// live reads the API server itself, not the cache: a drained pool's
	// fresh copy after a conflict (the cache may lag, or have stopped), a
	// pool that left the cache but may still exist (readUnlabelled), and
	// the Secrets and ConfigMaps of env valueFrom (never cached).
	live   client.Reader
	cache  cache.Cache
	queue  workqueue.TypedRateLimitingInterface[types.NamespacedName]
	store  *store
	loader string
	runDir string

	mu       sync.Mutex
	pools    map[types.NamespacedName]*runningPool
	draining map[types.UID]bool             // deleted pools draining, by UID: a pool of the same name may follow
	saved    map[types.NamespacedName]int64 // generation last saved to disk
	wg       sync.WaitGroup                 // background drains
	// unlabelled are the pools of this node running without their
	// ferry.dev/node label, out of the cache (readUnlabelled), with the
	// trouble of their reads from the API server.
	unlabelled map[types.NamespacedName]*leaseTrouble
	// ports are the ports the pools' proxies listen on (ports.go).
	portsMu sync.Mutex
	ports   map[int32]portHold
	stopped chan struct{} // closed when Run's context is done

	synced       atomic.Bool
	restored     atomic.Bool
	leaseTrouble leaseTrouble // renewLease's own
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
	c, cl, live, err := newClients(opts.Config, opts.NodeName)
	if err != nil {
		return nil, err
	}
	return &Agent{
		opts: opts, log: opts.Log.WithValues("node", opts.NodeName), client: cl, live: live, cache: c, store: st,
		loader: loader, runDir: runDir, pools: map[types.NamespacedName]*runningPool{},
		draining: map[types.UID]bool{}, saved: map[types.NamespacedName]int64{}, ports: map[int32]portHold{},
		unlabelled: map[types.NamespacedName]*leaseTrouble{},
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
// reads the API server itself.
func newClients(cfg *rest.Config, node string) (cache.Cache, client.Client, client.Reader, error) {
	s := scheme.New()
	// The agent only ever touches ProcessPools: a static mapping, so that
	// starting needs no discovery from an API server that may be away.
	mapper := meta.NewDefaultRESTMapper([]schema.GroupVersion{ferryv1.GroupVersion})
	mapper.Add(ferryv1.GroupVersion.WithKind("ProcessPool"), meta.RESTScopeNamespace)
	mapper.Add(coordinationv1.SchemeGroupVersion.WithKind("Lease"), meta.RESTScopeNamespace)
	// Secrets and ConfigMaps an env valueFrom names, got one by one (envfrom.go).
	mapper.Add(corev1.SchemeGroupVersion.WithKind("Secret"), meta.RESTScopeNamespace)
	mapper.Add(corev1.SchemeGroupVersion.WithKind("ConfigMap"), meta.RESTScopeNamespace)
	c, err := cache.New(cfg, cache.Options{
		Scheme: s,
		Mapper: mapper,
		ByObject: map[client.Object]cache.ByObject{
			&ferryv1.ProcessPool{}: {Label: contract.NodeSelector(node)},
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

// Ready reports whether the agent knows what to run: from the API server,
// or, while it is unreachable, from the specs saved on disk.
func (a *Agent) Ready() bool { return a.synced.Load() || a.restored.Load() }

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
	a.findUnlabelledDeleted(ctx)
}

// findUnlabelledDeleted queues, once the cache has synced, this node's
// deleted pools that still hold its drain finalizer but are not labelled
// ferry.dev/node=<this node>: reconcile reads each from the API server
// (readUnlabelled), drains it (nothing of it runs unless restored from
// disk) and takes the finalizer off, as of any deleted pool. An agent
// that stopped while such a pool drained, before it could release it
// (killed, or stopped through an API server outage: "the node's next
// agent will"), left it nowhere else: the cache selects by the label,
// and the pool's saved spec went as its drain began. Its finalizer
// stayed for good, and held its namespace's deletion. A running agent
// follows its unlabelled pools itself, so one list at the start is
// enough: every pool, in pages, filtered here, as neither the label nor
// spec.nodeName (not selectable before Kubernetes 1.31) can select them.
// A list that fails is tried again every heartbeat, logged as the
// Lease's renewals are.
func (a *Agent) findUnlabelledDeleted(ctx context.Context) {
	var trouble leaseTrouble
	for {
		keys, err := a.listUnlabelledDeleted(ctx)
		if err == nil {
			for _, key := range keys {
				a.log.Info("Deleted pool of this node holds its drain finalizer without its label; draining it", "pool", key)
				a.queue.Add(key)
			}
			if since, was := trouble.renewed(); was {
				a.log.Info("Listed the pools for this node's deleted unlabelled ones", "failedFor", time.Since(since).Round(time.Second).String())
			}
			return
		}
		if ctx.Err() != nil {
			return
		}
		if since, log := trouble.failed(time.Now(), err); log {
			a.log.Error(err, "Could not list the pools for this node's deleted unlabelled ones; will retry every heartbeat",
				"failingSince", since.UTC().Format(time.RFC3339))
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(a.opts.HeartbeatInterval):
		}
	}
}

// listUnlabelledDeleted lists the pools findUnlabelledDeleted looks for,
// listChunk at a time, each page in one request of requestTimeout at most.
func (a *Agent) listUnlabelledDeleted(ctx context.Context) ([]types.NamespacedName, error) {
	var keys []types.NamespacedName
	next := ""
	for {
		list := &ferryv1.ProcessPoolList{}
		err := bounded(ctx, func(ctx context.Context) error {
			return a.live.List(ctx, list, client.Limit(listChunk), client.Continue(next))
		})
		if err != nil {
			return nil, err
		}
		for i := range list.Items {
			pp := &list.Items[i]
			if pp.Spec.NodeName == a.opts.NodeName && !pp.DeletionTimestamp.IsZero() &&
				controllerutil.ContainsFinalizer(pp, contract.DrainFinalizer) &&
				pp.Labels[ferryv1.NodeLabel] != contract.LabelValue(a.opts.NodeName) {
				keys = append(keys, client.ObjectKeyFromObject(pp))
			}
		}
		if next = list.Continue; next == "" {
			return keys, nil
		}
	}
}

// listChunk is how many pools each page of listUnlabelledDeleted holds:
// client-go's pager's default, so that a cluster of many pools is read
// in pages the API server answers each within a request's timeout.
const listChunk = 500

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
		pp, err = a.readUnlabelled(ctx, key)
		switch {
		case errors.Is(err, errUnread):
			return nil // it serves on, read again at the next heartbeat
		case err != nil:
			return err // it serves on until the API server says
		case pp == nil:
			// Gone (no finalizer left to hold it): stop what runs.
			a.stop(key)
			a.mu.Lock()
			delete(a.saved, key)
			delete(a.unlabelled, key)
			a.mu.Unlock()
			return a.store.remove(key)
		}
	case err != nil:
		return err
	default:
		a.labelledAgain(key)
	}
	if pp.Spec.NodeName != a.opts.NodeName {
		return nil
	}
	if !pp.DeletionTimestamp.IsZero() {
		// Draining takes the drain delay and shutdownTimeout: off this worker, so
		// the node's other pools do not wait for it.
		a.drainAsync(key, pp)
		return nil
	}
	a.saveIfChanged(key, pp)
	a.ensure(pp)
	return nil
}

// readUnlabelled reads the pool of key from the API server itself when
// the cache, which holds only the pools labelled ferry.dev/node=<this
// node>, does not have it: nil when it is gone or another node's. One
// that still names this node (spec.nodeName, immutable) only lost the
// label (removed or changed by hand, or by a tool that rewrote its
// labels): it is still this node's, and the AppGroup's Service still
// sends here, so it serves on. Before, it was stopped at once, cutting
// the requests in flight and refusing the rest, and started anew, every
// process spawned again, when the manager put the label back at its next
// pass. The label is the manager's to keep; while it is missing no event
// tells of the pool's changes or deletion, so it is read again every
// heartbeat interval. Said once; labelledAgain says when it is back. One
// read labelled as it should be (the label put back, or a new pool of the
// name, before the cache shows it) is taken as it is, and said nothing
// of: the cache's event follows.
func (a *Agent) readUnlabelled(ctx context.Context, key types.NamespacedName) (*ferryv1.ProcessPool, error) {
	pp := &ferryv1.ProcessPool{}
	err := bounded(ctx, func(ctx context.Context) error { return a.live.Get(ctx, key, pp) })
	switch {
	case apierrors.IsNotFound(err):
		return nil, nil
	case err != nil:
		return nil, a.unread(key, err)
	case pp.Spec.NodeName != a.opts.NodeName:
		return nil, nil // another pool of the name, made for another node
	case !pp.DeletionTimestamp.IsZero():
		return pp, nil // drainAsync releases it: no need to read it again
	case pp.Labels[ferryv1.NodeLabel] == contract.LabelValue(a.opts.NodeName):
		return pp, nil
	}
	a.mu.Lock()
	trouble, known := a.unlabelled[key]
	if !known {
		a.unlabelled[key] = &leaseTrouble{}
	}
	a.mu.Unlock()
	var since time.Time
	var was bool // its reads had failed
	if known {
		since, was = trouble.renewed()
	}
	switch {
	case !known:
		a.log.Info("Pool no longer labelled for this node; serving on until the manager puts the label back", "pool", key,
			"label", ferryv1.NodeLabel, "want", contract.LabelValue(a.opts.NodeName), "got", pp.Labels[ferryv1.NodeLabel],
			"readEvery", a.opts.HeartbeatInterval.String())
	case was:
		a.log.Info("Read the unlabelled pool again", "pool", key, "failedFor", time.Since(since).Round(time.Second).String())
	}
	a.queue.AddAfter(key, a.opts.HeartbeatInterval)
	return pp, nil
}

// errUnread: the read of an unlabelled pool failed, and is tried again
// at the next heartbeat (unread); the pool serves on meanwhile.
var errUnread = errors.New("unlabelled pool not read")

// unread deals with err, a failed read of the pool of key out of the
// cache. Of a pool known unlabelled, it is logged as the Lease's
// renewals are (leaseTrouble: once per kind of outage, and a reminder),
// not at each of the work queue's retries, and read again at the next
// heartbeat, so that an API server that does not answer holds the
// agent's one reconcile worker a request's time per heartbeat, not at
// every retry: errUnread. Another's is err, retried by the work queue.
func (a *Agent) unread(key types.NamespacedName, err error) error {
	a.mu.Lock()
	trouble := a.unlabelled[key]
	a.mu.Unlock()
	if trouble == nil {
		return err
	}
	if since, log := trouble.failed(time.Now(), err); log {
		a.log.Error(err, "Could not read the unlabelled pool; it serves on, read again every heartbeat", "pool", key,
			"failingSince", since.UTC().Format(time.RFC3339))
	}
	a.queue.AddAfter(key, a.opts.HeartbeatInterval)
	return errUnread
}

// labelledAgain says when a pool that had lost its ferry.dev/node label
// (readUnlabelled) is in the cache again: its running pool goes on.
func (a *Agent) labelledAgain(key types.NamespacedName) {
	a.mu.Lock()
	_, was := a.unlabelled[key]
	delete(a.unlabelled, key)
	a.mu.Unlock()
	if was {
		a.log.Info("Pool labelled for this node again; its processes serve on", "pool", key)
	}
}

// drainAsync stops a deleted pool in the background and then removes its
// finalizer (retried until it succeeds or the agent stops).
func (a *Agent) drainAsync(key types.NamespacedName, pp *ferryv1.ProcessPool) {
	a.mu.Lock()
	if a.draining[pp.UID] {
		a.mu.Unlock()
		return
	}
	a.draining[pp.UID] = true
	rp := a.pools[key]
	delete(a.pools, key)
	// Forget the saved spec now, not after the drain: a pool of the same
	// name created meanwhile (this one released by hand, or by the
	// manager when its Node went) saves its own, which must stay.
	delete(a.saved, key)
	delete(a.unlabelled, key)
	a.mu.Unlock()
	if err := a.store.remove(key); err != nil {
		a.log.Error(err, "Could not remove the saved spec of a deleted pool", "pool", key)
	}
	uid := pp.UID
	a.wg.Add(1)
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

// saveIfChanged writes a pool's spec to disk when its generation moved:
// status reports update the object too, and need no disk write.
func (a *Agent) saveIfChanged(key types.NamespacedName, pp *ferryv1.ProcessPool) {
	a.mu.Lock()
	same := a.saved[key] == pp.Generation
	a.mu.Unlock()
	if same {
		return
	}
	if err := a.store.save(pp); err != nil {
		a.log.Error(err, "Could not save the pool's spec; an agent restart without the API server would not resume it", "pool", key)
		return
	}
	a.mu.Lock()
	a.saved[key] = pp.Generation
	a.mu.Unlock()
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
