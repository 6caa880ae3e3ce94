package controllers

import (
	"context"
	"errors"
	"slices"
	"time"

	"golang.org/x/time/rate"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/tools/events"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	ferryv1 "github.com/ferry-dev/ferry/api/v1alpha1"
	"github.com/ferry-dev/ferry/controllers/contract"
)

// CacheOptions are the cache settings the manager needs: Services and
// EndpointSlices are cached only when the manager manages them, so a
// cluster's many others cost it no memory.
func CacheOptions(leaseNamespace string) cache.Options {
	return cache.Options{ByObject: map[client.Object]cache.ByObject{
		&corev1.Service{}: {Label: labels.SelectorFromSet(labels.Set{ManagedByLabel: ManagedByValue})},
		&discoveryv1.EndpointSlice{}: {
			Label: labels.SelectorFromSet(labels.Set{discoveryv1.LabelManagedBy: EndpointSliceManager}),
		},
		// Only the agents' Leases, only in their namespace.
		&coordinationv1.Lease{}: {
			Namespaces: map[string]cache.Config{leaseNamespace: {}},
			Label:      labels.SelectorFromSet(labels.Set{contract.AgentLeaseComponentLabel: contract.AgentLeaseComponent}),
		},
	}}
}

// DefaultAgentStaleAfter is how long an agent may stay silent before what
// it last reported is no longer trusted. Agents heartbeat every 10s.
const DefaultAgentStaleAfter = contract.DefaultAgentStaleAfter

// The manager's defaults for its client-side rate limit and its workers
// (--kube-api-qps, --kube-api-burst, --max-concurrent-reconciles). Creating
// a thousand AppGroups takes about 8,000 writes: at 100 requests a second
// the old limit alone held their first passes to 80 s (the control-plane
// benchmark, docs/benchmarks.md).
const (
	DefaultKubeAPIQPS              = 300
	DefaultKubeAPIBurst            = 600
	DefaultMaxConcurrentReconciles = 8
)

// maxEventNote is the longest note events.k8s.io/v1 accepts, in bytes.
const maxEventNote = 1024

// An AppGroup with a name taken (Ready reason NameTaken: its Service's,
// or both of a node's pool's) looks again by itself,
// first after takenRecheck, then after as long as the name has been
// taken, up to maxTakenRecheck (takenRecheckAfter): each look costs a
// create and a get of the object in the way, and one taken for long is
// likely to stay so. The passes in between take what the last look found
// (takenLook), unless the AppGroup changed or a ProcessPool in the way
// went (takenFreed).
const (
	takenRecheck    = 10 * time.Second
	maxTakenRecheck = 5 * time.Minute
)

// takenRecheckAfter is when an AppGroup whose names have been taken since
// since looks again, at now.
func takenRecheckAfter(since, now time.Time) time.Duration {
	return min(max(now.Sub(since), takenRecheck), maxTakenRecheck)
}

// conflictRetry is how soon a pass whose status write conflicted runs
// again.
const conflictRetry = 250 * time.Millisecond

// EventRecorderName is the reporting controller of the manager's events.
const EventRecorderName = "ferry-manager"

// The manager's ClusterRole: what it calls, no more. It writes only by
// patch (never update: appgroups/finalizers' update is what setting an
// owner reference with blockOwnerDeletion takes), and deletes pools and
// extra EndpointSlices but never a Service (garbage collection does).
// +kubebuilder:rbac:groups=ferry.dev,resources=appgroups,verbs=get;list;watch;patch
// +kubebuilder:rbac:groups=ferry.dev,resources=appgroups/status,verbs=patch
// +kubebuilder:rbac:groups=ferry.dev,resources=appgroups/finalizers,verbs=update
// +kubebuilder:rbac:groups=ferry.dev,resources=processpools,verbs=get;list;watch;create;patch;delete
// +kubebuilder:rbac:groups="",resources=nodes,verbs=get;list;watch
// +kubebuilder:rbac:groups="",resources=services,verbs=get;list;watch;create;patch
// +kubebuilder:rbac:groups=discovery.k8s.io,resources=endpointslices,verbs=get;list;watch;create;patch;delete
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch

// AppGroupReconciler turns each AppGroup into one ProcessPool per selected
// node, rolls new revisions across the pools in waves, serves the nodes
// behind a Service and its EndpointSlices, and rolls the pools' reports up
// into the AppGroup's status.
//
// Its fields are set by the caller before SetupWithManager; Clock and
// AgentStaleAfter have defaults.
type AppGroupReconciler struct {
	// Client reads from the manager's cache and writes to the API server.
	Client client.Client
	// APIReader reads around the cache: it tells a pool name taken by
	// another object from a pool the cache has not seen yet, and confirms
	// that an AppGroup being deleted has no pool left.
	APIReader client.Reader
	// Scheme maps types to kinds, for owner references.
	Scheme *runtime.Scheme
	// Recorder records events on AppGroups.
	Recorder events.EventRecorder
	// Clock tells the time of a pass; tests move it. Default: the real
	// clock.
	Clock clock.PassiveClock
	// LeaseNamespace is where the agents renew their Leases ("" reads none:
	// liveness then comes from the pools' heartbeatTime alone).
	LeaseNamespace string
	// MaxConcurrentReconciles is how many AppGroups are reconciled at
	// once. Default: DefaultMaxConcurrentReconciles.
	MaxConcurrentReconciles int
	// AgentStaleAfter is how old a pool's heartbeat may be before the
	// roll-up treats its report as Unknown. Default:
	// DefaultAgentStaleAfter.
	AgentStaleAfter time.Duration
	// SettleFor is how long a node's new processes must live, while the
	// target is not proven, before the node proves it or lets the next
	// wave have it (settle). Zero: contract.CrashWindow, the agents' own;
	// negative: not at all (tests whose simulated agents report no crash).
	SettleFor time.Duration
	// ResyncEvery is the longest an AppGroup goes without a pass (each
	// pass asks for the next within it, spread by up to a tenth). Zero:
	// DefaultResyncEvery.
	ResyncEvery time.Duration
	// MaxEndpointsPerSlice is the most endpoints the manager puts in one
	// of an AppGroup's EndpointSlices (planSlices). Zero, or more than
	// the API server takes in one (1000, Kubernetes' own controller's
	// maxEndpointsPerSlice): that. Tests lower it to spread a few nodes
	// over several slices.
	MaxEndpointsPerSlice int

	resisting resistingSet
	// written is the rollout memory of each AppGroup's last status write.
	written writtenMemory
	// warned is, per AppGroup, whether an AgentNotReporting warning
	// stands (silenceSeen); an AppGroup without an entry has not been
	// passed over since the manager started (seedSilence).
	warned objectMemory[bool]
	// deaf are, per AppGroup, the nodes whose proxy cannot listen that a
	// ListenFailed event has named (listenSeen); an AppGroup without an
	// entry has not been passed over since the manager started
	// (seedListen).
	deaf objectMemory[[]string]
	// rollouts are, per AppGroup, the rollout events recorded of its
	// revision (rolloutSeen).
	rollouts objectMemory[rolloutSeen]
	// unsure are, per AppGroup, its last status write whose outcome is
	// unknown, with its events (confirmUnsure).
	unsure objectMemory[statusWrite]
	// conflicts counts, per AppGroup, the passes in a row that ended in
	// conflicts alone (Reconcile).
	conflicts streaks
	// takenLooks are, per AppGroup with names taken, what the last pass
	// that looked found, and when the next looks (takenLook).
	takenLooks objectMemory[takenLook]
	// unknownWarned are, per AppGroup, the annotations Ferry does not
	// read, with their values, that an UnknownAnnotation event named
	// (unknownAnnotations).
	unknownWarned objectMemory[map[string]string]
	// slicesMoved are, per AppGroup, the EndpointSlice names an object not
	// its own has, whose endpoints went into another slice: those a
	// NameTaken event named (warnSliceMoved).
	slicesMoved objectMemory[[]string]
	// vouched is, per AppGroup, whether its status vouched for its agents
	// when this manager first passed over it (statusVouches): its
	// predecessor's judgement, which hearing.from keeps.
	vouched objectMemory[bool]
	// contact is the manager's contact with the API server, probed by the
	// lease watcher; nil without one.
	contact *apiContact
	// leases is the lease watcher, told of the agents passes judge silent;
	// nil without one.
	leases *leaseWatcher
	// signs are when the manager saw the agents' Leases and reports
	// change; nil (the pure tests) trusts their stamps.
	signs *signs
}

// SetupWithManager registers the reconciler with mgr. Besides AppGroups it
// watches the pools, Services and EndpointSlices they own, and Nodes (their
// metadata only: labels and existence are all it needs) since a node's
// labels decide which AppGroups it runs.
//
// AppGroup updates are not filtered on metadata.generation: a revision bump
// changes only an annotation. Only updates that change nothing but the
// status (the manager's own writes) are dropped: a status written by
// anyone else stands until the next pass, at most ResyncEvery away.
//
// The manager's cache must be built with CacheOptions, which limits the
// Services and EndpointSlices it holds to the ones it manages.
func (r *AppGroupReconciler) SetupWithManager(mgr ctrl.Manager) error {
	if r.Clock == nil {
		r.Clock = clock.RealClock{}
	}
	if r.AgentStaleAfter <= 0 {
		r.AgentStaleAfter = DefaultAgentStaleAfter
	}
	if r.MaxConcurrentReconciles <= 0 {
		r.MaxConcurrentReconciles = DefaultMaxConcurrentReconciles
	}
	r.signs = newSigns(r.Clock)
	if err := mgr.GetFieldIndexer().IndexField(context.Background(), &ferryv1.AppGroup{}, portIndex, indexPort); err != nil {
		return err
	}
	if err := mgr.GetFieldIndexer().IndexField(context.Background(), &ferryv1.ProcessPool{}, portNodeIndex, indexPortNode); err != nil {
		return err
	}
	if err := mgr.GetFieldIndexer().IndexField(context.Background(), &ferryv1.ProcessPool{}, poolOwnerIndex, indexPoolOwner); err != nil {
		return err
	}
	if err := mgr.GetFieldIndexer().IndexField(context.Background(), &discoveryv1.EndpointSlice{}, extraSliceIndex, indexExtraSlice); err != nil {
		return err
	}
	if err := setupDrainReleaser(mgr, r.APIReader); err != nil {
		return err
	}
	peers := portPeers{client: mgr.GetClient()}
	b := ctrl.NewControllerManagedBy(mgr).
		For(&ferryv1.AppGroup{}, builder.WithPredicates(predicate.Funcs{UpdateFunc: appGroupChanged})).
		// An AppGroup that lost its port on a node to another gets a pass
		// when that one moves or goes, and when its pools are gone.
		Watches(&ferryv1.AppGroup{}, peers).
		Watches(&ferryv1.ProcessPool{}, peers).
		// A pool whose names another's kept from being made is made
		// when that one goes.
		Watches(&ferryv1.ProcessPool{}, takenFreed(&r.takenLooks)).
		Owns(&ferryv1.ProcessPool{}, builder.WithPredicates(r.poolSeen())).
		Owns(&corev1.Service{}).
		Owns(&discoveryv1.EndpointSlice{}).
		WatchesMetadata(&corev1.Node{},
			handler.EnqueueRequestsFromMapFunc(r.appGroupsForNode),
			builder.WithPredicates(predicate.LabelChangedPredicate{})).
		Named("appgroup").
		WithOptions(controller.Options{RateLimiter: rateLimiter(), MaxConcurrentReconciles: r.MaxConcurrentReconciles})
	if r.LeaseNamespace != "" {
		events := make(chan event.GenericEvent, 1024)
		r.contact = newAPIContact(r.Clock)
		w := &leaseWatcher{client: mgr.GetClient(), probe: r.APIReader, contact: r.contact,
			namespace: r.LeaseNamespace, staleAfter: r.AgentStaleAfter,
			every: 2 * time.Second, clock: r.Clock, events: events, stale: map[string]bool{}, signs: r.signs,
			log: mgr.GetLogger().WithName("lease-watcher")}
		if err := mgr.Add(w); err != nil {
			return err
		}
		r.leases = w
		b = b.WatchesRawSource(source.Channel(events, &handler.EnqueueRequestForObject{}))
	}
	return b.Complete(r)
}

// rateLimiter is controller-runtime's default but with the per-object
// backoff capped at 30s instead of 1000s: after an API server outage every
// pass has failed many times, and an AppGroup whose pools sent no news
// since must not wait a quarter of an hour for its next pass.
func rateLimiter() workqueue.TypedRateLimiter[reconcile.Request] {
	return workqueue.NewTypedMaxOfRateLimiter(
		workqueue.NewTypedItemExponentialFailureRateLimiter[reconcile.Request](5*time.Millisecond, 30*time.Second),
		&workqueue.TypedBucketRateLimiter[reconcile.Request]{Limiter: rate.NewLimiter(rate.Limit(10), 100)},
	)
}

// appGroupChanged is false for an update that changed only the status.
func appGroupChanged(e event.UpdateEvent) bool {
	o, n := e.ObjectOld, e.ObjectNew
	return o.GetGeneration() != n.GetGeneration() ||
		!equality.Semantic.DeepEqual(o.GetAnnotations(), n.GetAnnotations()) ||
		!equality.Semantic.DeepEqual(o.GetLabels(), n.GetLabels()) ||
		!slices.Equal(o.GetFinalizers(), n.GetFinalizers()) ||
		!o.GetDeletionTimestamp().Equal(n.GetDeletionTimestamp())
}

// poolChanged drops a pool update that only moved the heartbeat and the
// per-process statistics, as long as the previous report was not stale: an
// agent reports them every few seconds, and they change nothing the
// manager decides or shows. The requeue scheduled by each pass notices
// staleness, and a report after a stale one passes.
//
// A report is stale only when the node's agent Lease is too (assessPool):
// an agent that renews its Lease rewrites an unchanged pool status every
// contract.StatusReportInterval, far past the staleness bound, and that
// rewrite must not cost a pass per pool. When the Lease goes stale or
// comes back, the lease watcher asks for the passes.
func (r *AppGroupReconciler) poolChanged(e event.UpdateEvent) bool {
	o, ok1 := e.ObjectOld.(*ferryv1.ProcessPool)
	n, ok2 := e.ObjectNew.(*ferryv1.ProcessPool)
	if !ok1 || !ok2 {
		return true
	}
	// When the manager saw the previous report; then the new one, a write
	// the agent made just now (signs).
	before := hearing{signs: r.signs}.reportSeen(o)
	r.sawReport(n)
	if o.Status.HeartbeatTime == nil || n.Status.HeartbeatTime == nil {
		return true
	}
	if r.Clock.Since(before) > r.AgentStaleAfter && !r.leaseFresh(o.Spec.NodeName) {
		return true
	}
	strip := func(p *ferryv1.ProcessPool) *ferryv1.ProcessPool {
		p = p.DeepCopy()
		p.ResourceVersion, p.ManagedFields = "", nil
		p.Status.HeartbeatTime, p.Status.Processes, p.Status.QueueLength = nil, nil, 0
		return p
	}
	return !equality.Semantic.DeepEqual(strip(o), strip(n))
}

// leaseFresh reports whether node's agent renewed its Lease (named
// contract.AgentLeaseName, held by node) within AgentStaleAfter, as the
// cache shows it. False when there is no such Lease or it cannot be read:
// the update then passes, as it would without Leases.
func (r *AppGroupReconciler) leaseFresh(node string) bool {
	if r.LeaseNamespace == "" || node == "" {
		return false
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	l := &coordinationv1.Lease{}
	if err := r.Client.Get(ctx, client.ObjectKey{Namespace: r.LeaseNamespace, Name: contract.AgentLeaseName(node)}, l); err != nil {
		return false
	}
	if l.Spec.HolderIdentity == nil || *l.Spec.HolderIdentity != node || l.Spec.RenewTime == nil {
		return false
	}
	return r.Clock.Since(r.signs.at(leaseSign(node), l.Spec.RenewTime.Time)) <= r.AgentStaleAfter
}

// heartbeatOf is the pool's heartbeat stamp, zero for none.
func heartbeatOf(p *ferryv1.ProcessPool) time.Time {
	if p.Status.HeartbeatTime == nil {
		return time.Time{}
	}
	return p.Status.HeartbeatTime.Time
}

// sawReport records p's report as the pool predicate sees it (signs).
func (r *AppGroupReconciler) sawReport(p *ferryv1.ProcessPool) {
	r.signs.saw(reportSign(p.Namespace, p.Name), heartbeatOf(p))
}

// poolSeen records the first report of a pool the manager sees made (or
// finds when it starts), and forgets a deleted pool's (signs).
func (r *AppGroupReconciler) poolSeen() predicate.Funcs {
	return predicate.Funcs{
		CreateFunc: func(e event.CreateEvent) bool {
			if p, ok := e.Object.(*ferryv1.ProcessPool); ok {
				r.sawReport(p)
			}
			return true
		},
		UpdateFunc: r.poolChanged,
		DeleteFunc: func(e event.DeleteEvent) bool {
			r.signs.forget(reportSign(e.Object.GetNamespace(), e.Object.GetName()))
			return true
		},
	}
}

// appGroupsForNode maps a Node to every AppGroup: any may select it now or
// have a pool on it, and the cache lists them cheaply.
func (r *AppGroupReconciler) appGroupsForNode(ctx context.Context, _ client.Object) []reconcile.Request {
	var list ferryv1.AppGroupList
	if err := r.Client.List(ctx, &list); err != nil {
		ctrl.LoggerFrom(ctx).Error(err, "Failed to list AppGroups for a node change")
		return nil
	}
	reqs := make([]reconcile.Request, 0, len(list.Items))
	for i := range list.Items {
		reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&list.Items[i])})
	}
	return reqs
}

// DefaultResyncEvery is the longest an AppGroup goes without a pass when
// nothing the manager watches changes. The manager drops the updates of an
// AppGroup that change only its status (its own writes), so a status
// written by anyone else (a hand edit of the status subresource, a
// restored backup, a second manager) would stand until the AppGroup, its
// pools or its nodes changed, which for an idle app can be never; the pass
// writes the manager's status back. A pass that finds nothing changed
// writes nothing and reads only the cache: a thousand AppGroups cost about
// three such passes a second.
const DefaultResyncEvery = 5 * time.Minute

// resyncAfter is when a pass asks for the next one at the latest:
// ResyncEvery (or its default) and up to a tenth more, so that AppGroups
// whose passes came together (a manager that started) do not come
// together again every time.
func (r *AppGroupReconciler) resyncAfter() time.Duration {
	every := r.ResyncEvery
	if every <= 0 {
		every = DefaultResyncEvery
	}
	return wait.Jitter(every, 0.1)
}

// settleFor is SettleFor with its default.
func (r *AppGroupReconciler) settleFor() time.Duration {
	if r.SettleFor == 0 {
		return contract.CrashWindow
	}
	return r.SettleFor
}

// scope is what one pass over one AppGroup works on.
type scope struct {
	// ag is the AppGroup, updated in place by every write.
	ag *ferryv1.AppGroup
	// target is the target revision; while the annotation is invalid, the
	// last valid one (maybe "").
	target string
	// revisionErr says what is wrong with the revision annotation.
	revisionErr error
	// now is the time of the pass.
	now time.Time
	// settle is how long a node's new processes must live before the node
	// counts as rolled out, while the target is not proven (settle).
	settle time.Duration

	// nodes are the selected nodes, sorted; selected is the same as a set.
	nodes    []string
	selected map[string]bool
	// owned are the pools the AppGroup controls, as listed.
	owned []*ferryv1.ProcessPool

	// pools are the active pools of the selected nodes, by node (filled by
	// reconcilePools).
	pools map[string]*ferryv1.ProcessPool
	// draining are pools being deleted, whose agent drains them (filled by
	// reconcilePools).
	draining []*ferryv1.ProcessPool
	// created are the pools this pass created (reconcilePools).
	created []*ferryv1.ProcessPool
	// leases are when each node's agent last renewed its Lease.
	leases map[string]time.Time
	// hearing is the manager's contact with the API server: no agent is
	// judged silent over an outage it could not hear through.
	hearing hearing
	// portLost are the selected nodes where another AppGroup has the
	// listen.port, with its key (portLosses). Those where this AppGroup
	// has no pool on another port are left out of nodes and selected.
	portLost map[string]types.NamespacedName
	// halt and lastGood are the status's haltedRollout and lastRolledOut
	// as the pass has seen them so far (remember); the status write
	// keeps them.
	halt     *ferryv1.HaltedRollout
	lastGood *ferryv1.RolledOutRevision
	// proven is the status's provenRevision as the pass has seen it.
	proven string
	// loop is the target's crash loop in the reports last remembered
	// (crashLoopOf), which the status publishes (status.crashLoop).
	loop *ferryv1.CrashLoop
	// unserved are the selected nodes reconcilePools left without a pool
	// while the revision annotation is invalid: nothing known to work to
	// start them on (servedRevision).
	unserved []string
	// awaitingDrain are the selected nodes that get no pool yet because
	// their previous one (of a time the node was not selected) still
	// drains: both would want the same port (reconcilePools).
	awaitingDrain []string
	// remembered is the memory the pass started from.
	remembered ferryv1.AppGroupStatus
	// taken is the Service of the AppGroup, when an object not its own
	// keeps it from writing it (reconcileTraffic). An EndpointSlice's name
	// taken is not: its endpoints go into another (writeEndpointSlices).
	taken []nameTaken
	// poolTaken are the selected nodes whose pool other ProcessPools keep
	// the AppGroup from making (reconcilePools), by node order.
	poolTaken []poolNamesTaken
	// known is the last look at the names taken, when the next is not
	// due: the pass takes what it found instead of looking (takenLook).
	known *takenLook
}

// remember brings halt, lastGood and loop up to date with reports. A
// phase calls it before it decides from them, so that what one phase saw
// (a pool that halted the target, before the rollout phase returned it to
// an older revision) is not forgotten by the next. The crash loop is
// derived here (crashLoopOf), after what it depends on (proven,
// lastGood), and twice while the annotation is valid: the halt reads it
// (loopsOn: a loop nothing returns its node from halts nothing) and it
// reads the halt (contract.ResistedOn: the manager returns a node that
// resisted), so it is read once from the halt remembered, for
// haltRecord, and again from the halt the pass records, for the status
// and the phases after. The nodes haltRecord asks about read alike from
// either record; others need not: a halt recorded resisted takes its
// node out of the loop, a resisted halt released puts it back. While the
// annotation is invalid no halt is recorded, and the loop of the
// revision that stays the target is still told, read once.
func (s *scope) remember(reports map[string]poolReport) {
	if s.revisionErr == nil {
		if s.target != "" && runsRolledOut(reports) {
			s.proven = s.target
		}
		s.lastGood = lastRolledOut(s.lastGood, s.target, s.nodes, reports)
	}
	in := s.input(reports)
	in.CrashLoop = crashLoopOf(in) // of these reports, not of those last remembered
	if s.revisionErr == nil {
		s.halt = haltRecord(in)
		// A halt this pass records as resisted on a looping node
		// returns that node (returnsFromTarget reads s.halt), and one it
		// releases no longer does: the loop must say so in this pass,
		// so it is read again from the new record.
		in.Halt = s.halt
		in.CrashLoop = crashLoopOf(in)
	}
	s.loop = in.CrashLoop
}

// input is the roll-up input of reports as the scope has the pass so far:
// its memory (halt, lastGood, proven), the loop remember last derived
// (s.loop: of these reports once remember has seen them), what the phases
// found (unserved, awaitingDrain, taken, poolTaken, portLost), and whether
// an older revision runs (olderRuns). remember reads it to decide the
// memory, updateStatus, after remember, to compute the status, adding
// what only the status needs (the staleness bound, the awaited drains,
// whether the pass was clean).
func (s *scope) input(reports map[string]poolReport) rollupInput {
	in := rollupInput{
		AppGroup:      s.ag,
		Target:        s.target,
		RevisionErr:   s.revisionErr,
		Nodes:         s.nodes,
		Reports:       reports,
		PortLost:      s.portLost,
		Halt:          s.halt,
		LastRolledOut: s.lastGood,
		Proven:        s.proven,
		CrashLoop:     s.loop,
		Unserved:      s.unserved,
		AwaitingDrain: s.awaitingDrain,
		Taken:         s.taken,
		PoolTaken:     s.poolTaken,
		Now:           s.now,
	}
	in.Older = olderRuns(in)
	return in
}

// targetProven: the target has run rolled out on some node.
func (s *scope) targetProven() bool { return s.target != "" && s.proven == s.target }

// memoryMoved: the pass changed what the status remembers of the rollout.
func (s *scope) memoryMoved() bool {
	var now ferryv1.AppGroupStatus
	now.HaltedRollout, now.LastRolledOut, now.ProvenRevision = s.halt, s.lastGood, s.proven
	return !sameMemory(&now, &s.remembered)
}

// awaitedDrains assesses, at the pass's time, the previous pools that the
// nodes awaiting a drain wait for (one per node).
func (s *scope) awaitedDrains(staleAfter time.Duration) []poolReport {
	var out []poolReport
	for _, p := range s.draining {
		node := p.Spec.NodeName
		if slices.Contains(s.awaitingDrain, node) && !slices.ContainsFunc(out, func(r poolReport) bool { return r.Node == node }) {
			out = append(out, assessPool(p, s.target, s.now, staleAfter, s.leases[node], s.hearing))
		}
	}
	return out
}

// undrained are those of reports whose agent is silent or was never
// heard: nothing may drain their pools.
func undrained(reports []poolReport) []poolReport {
	return slices.DeleteFunc(slices.Clone(reports), func(r poolReport) bool { return !r.Stale && !r.Unheard })
}

// sooner is the sooner of two delays, 0 standing for none.
func sooner(a, b time.Duration) time.Duration {
	if a == 0 || b > 0 && b < a {
		return b
	}
	return a
}

// reports assesses the active pools at the pass's time.
func (s *scope) reports(staleAfter time.Duration) map[string]poolReport {
	out := make(map[string]poolReport, len(s.pools))
	for node, p := range s.pools {
		out[node] = assessPool(p, s.target, s.now, staleAfter, s.leases[node], s.hearing)
	}
	if !s.targetProven() {
		unstarted(out)
		settle(out, s.now, s.settle)
	}
	return out
}

// Reconcile brings one AppGroup's pools, rollout and traffic in line with
// its spec, then writes its status once; a clean pass that created pools
// leaves that to the pass their creation queues. A pass that met only a
// change made meanwhile (raced) is no reconciler error, logged with a
// stack trace: it looks again shortly, or not at all when what it met is
// the AppGroup's own deletion (whose event queues the pass that forgets
// it).
func (r *AppGroupReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	result, err := r.reconcile(ctx, req)
	race := raced(err, req.NamespacedName)
	if race != raceConflict {
		r.conflicts.reset(req.NamespacedName)
	}
	switch {
	case race == raceGone:
		ctrl.LoggerFrom(ctx).V(1).Info("AppGroup gone during the pass", "error", err.Error())
		return ctrl.Result{}, nil
	case race == raceConflict && r.conflicts.inc(req.NamespacedName) <= quietConflicts:
		ctrl.LoggerFrom(ctx).V(1).Info("Pass met a change made meanwhile; looking again", "error", err.Error())
		return ctrl.Result{RequeueAfter: conflictRetry}, nil
	}
	// Past quietConflicts in a row the cache may be stuck behind the API
	// server: the error goes to the work queue, which backs off, and logs.
	return result, err
}

// quietConflicts is how many passes in a row may end in conflicts alone
// and look again shortly, unlogged, before their error is the work
// queue's (backed off and logged).
const quietConflicts = 5

// race is what a pass's error says of changes made meanwhile.
type race int

const (
	raceNone     race = iota // an error of its own, or none
	raceConflict             // only conflicts: an object changed since it was read
	raceGone                 // the AppGroup itself was found gone (besides conflicts)
)

// raced classifies err, the errors a pass met (errors.Join'd), for the
// AppGroup key.
func raced(err error, key types.NamespacedName) race {
	errs := flatten(err)
	if len(errs) == 0 {
		return raceNone
	}
	out := raceConflict
	for _, e := range errs {
		var se *apierrors.StatusError
		switch {
		case apierrors.IsConflict(e):
		case apierrors.IsNotFound(e) && errors.As(e, &se) && se.ErrStatus.Details != nil &&
			se.ErrStatus.Details.Kind == "appgroups" && se.ErrStatus.Details.Name == key.Name:
			out = raceGone
		default:
			return raceNone
		}
	}
	return out
}

// forget drops what the manager remembers of the AppGroup key, gone.
func (r *AppGroupReconciler) forget(key types.NamespacedName) {
	r.resisting.Set(key, false)
	r.warned.forget(key)
	r.deaf.forget(key)
	r.rollouts.forget(key)
	r.unsure.forget(key)
	r.written.forget(key)
	r.takenLooks.forget(key)
	r.vouched.forget(key)
	r.unknownWarned.forget(key)
	r.slicesMoved.forget(key)
}

func (r *AppGroupReconciler) reconcile(ctx context.Context, req ctrl.Request) (result ctrl.Result, retErr error) {
	ag := &ferryv1.AppGroup{}
	if err := r.Client.Get(ctx, req.NamespacedName, ag); err != nil {
		if apierrors.IsNotFound(err) {
			r.forget(req.NamespacedName)
			return ctrl.Result{}, nil
		}
		return ctrl.Result{}, err
	}
	ag, err := r.lastWritten(ctx, ag)
	if err != nil {
		return ctrl.Result{}, err
	}
	if !ag.DeletionTimestamp.IsZero() {
		return r.reconcileDelete(ctx, ag)
	}
	r.warnUnknownAnnotations(ctx, ag)
	if !controllerutil.ContainsFinalizer(ag, contract.DrainFinalizer) {
		orig := ag.DeepCopy()
		controllerutil.AddFinalizer(ag, contract.DrainFinalizer)
		if err := r.Client.Patch(ctx, ag, client.MergeFromWithOptions(orig, client.MergeFromWithOptimisticLock{})); err != nil {
			return ctrl.Result{}, err
		}
	}

	s, err := r.newScope(ctx, ag)
	if err != nil {
		return ctrl.Result{}, err
	}
	defer func() {
		if retErr == nil && len(s.created) > 0 && !s.memoryMoved() {
			// This pass created pools: their creation has already queued
			// the next pass (the manager watches the pools it owns), and
			// all this one could write is that they wait for their
			// agents' first reports. The next pass writes that if it is
			// still so, or, when the manager is behind, what the agents
			// reported meanwhile: one status write instead of two. What
			// the pass learnt of the rollout (a halt) is written now: the
			// next pass may not see it again.
			return
		}
		requeue, err := r.updateStatus(ctx, s, retErr == nil)
		switch {
		case apierrors.IsConflict(err) && retErr == nil:
			// The status was computed from a cached AppGroup one write
			// behind; the manager's own writes do not trigger a pass, so
			// look again shortly.
			ctrl.LoggerFrom(ctx).V(1).Info("Retried status write after a conflict")
			result.RequeueAfter = conflictRetry
		case err != nil:
			retErr = errors.Join(retErr, err)
		case retErr == nil:
			result.RequeueAfter = requeue
			if len(s.portLost) > 0 && (requeue == 0 || requeue > portRecheck) {
				result.RequeueAfter = portRecheck
			}
			// The manager watches only the objects it made: the
			// deletion of the one in the way brings no pass.
			result.RequeueAfter = sooner(result.RequeueAfter, r.takenRecheck(s))
			result.RequeueAfter = sooner(result.RequeueAfter, r.resyncAfter())
		}
	}()

	var errs []error
	for _, phase := range []func(context.Context, *scope) error{
		r.reconcilePools,
		r.reconcileRollout,
		r.reconcileTraffic,
	} {
		if err := phase(ctx, s); err != nil {
			errs = append(errs, err)
		}
	}
	if err := r.awaitCreated(ctx, s); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		for _, ev := range writeFailureEvents(err) {
			r.record(ctx, ag, ev)
		}
		return ctrl.Result{}, err
	}
	if s.revisionErr != nil {
		// No retry fixes the annotation; its next change triggers a pass.
		// The user's mistake is in the conditions and an event: it is no
		// reconciler error to log with a stack trace.
		ctrl.LoggerFrom(ctx).Info("Invalid revision annotation; nothing new is rolled out until it is fixed",
			"error", s.revisionErr.Error())
	}
	return ctrl.Result{}, nil
}

// warnUnknownAnnotations records an UnknownAnnotation event for each
// annotation of ag under ferry.dev that Ferry does not read, once per
// annotation and value: from what it read, at no cost of a request but
// the event's. A manager that starts anew warns again once.
func (r *AppGroupReconciler) warnUnknownAnnotations(ctx context.Context, ag *ferryv1.AppGroup) {
	key := client.ObjectKeyFromObject(ag)
	unknown := unknownAnnotations(ag)
	warned, _ := r.unknownWarned.get(key, ag.UID)
	for _, ev := range unknownAnnotationEvents(unknown, warned) {
		r.record(ctx, ag, ev)
	}
	if len(unknown) == 0 {
		// Removed: one set again is news again.
		r.unknownWarned.forget(key)
		return
	}
	r.unknownWarned.set(key, ag.UID, unknown)
}

// takenRecheck is when a clean pass that found names of the AppGroup
// taken asks to look again, 0 when none is taken. A pass that looked
// remembers what it found, and when the next look is due (nextLook); one
// that took the last look's finding, what it found (knownPoolsTaken's
// pools made, a new node's pool looked at).
func (r *AppGroupReconciler) takenRecheck(s *scope) time.Duration {
	key := client.ObjectKeyFromObject(s.ag)
	if len(s.taken) == 0 && len(s.poolTaken) == 0 {
		r.takenLooks.forget(key)
		return 0
	}
	var look takenLook
	if s.known != nil {
		// What it found: the same, less pools made, and the names of a
		// node's pool it looked at for the first time.
		look = *s.known
		look.taken, look.poolTaken = slices.Clone(s.taken), slices.Clone(s.poolTaken)
	} else {
		prev, ok := r.takenLooks.get(key, s.ag.UID)
		look = nextLook(prev, ok, s.ag, s.now, s.taken, s.poolTaken)
	}
	r.takenLooks.set(key, s.ag.UID, look)
	return look.next.Sub(s.now)
}

// lastWritten is the AppGroup a pass starts from: the cached one, unless
// the cache has not seen the manager's last status write yet
// (writtenMemory), then the object that write returned, or the API
// server's when its outcome is unknown.
func (r *AppGroupReconciler) lastWritten(ctx context.Context, cached *ferryv1.AppGroup) (*ferryv1.AppGroup, error) {
	obj, known, ok := r.written.newer(cached)
	switch {
	case !ok:
		return cached, nil
	case known:
		return obj, nil
	}
	fresh := &ferryv1.AppGroup{}
	if err := r.APIReader.Get(ctx, client.ObjectKeyFromObject(cached), fresh); err != nil {
		return nil, err
	}
	return fresh, nil
}

// vouchedFor is whether ag's status vouched for its agents when this
// manager first passed over it; the first pass remembers it.
func (r *AppGroupReconciler) vouchedFor(ag *ferryv1.AppGroup) bool {
	key := client.ObjectKeyFromObject(ag)
	v, ok := r.vouched.get(key, ag.UID)
	if !ok {
		v = statusVouches(&ag.Status)
		r.vouched.set(key, ag.UID, v)
	}
	return v
}

// statusVouches: st says that every selected node's agent was reporting
// when it was written (Ready is True: a silent agent, or one never heard
// from, makes it Unknown or False). Other reasons may hide a silence
// (PoolsPending, PortConflict) or name it only in their message, so a
// status that is not Ready vouches for none of its agents.
func statusVouches(st *ferryv1.AppGroupStatus) bool {
	return condition(st, ferryv1.ConditionReady).Status == metav1.ConditionTrue
}

// newScope reads what a pass needs: the target, the nodes and the pools.
func (r *AppGroupReconciler) newScope(ctx context.Context, ag *ferryv1.AppGroup) (*scope, error) {
	s := &scope{
		ag:       ag,
		now:      r.Clock.Now(),
		settle:   r.settleFor(),
		selected: map[string]bool{},
		pools:    map[string]*ferryv1.ProcessPool{},
	}
	s.target, s.revisionErr = effectiveTarget(ag)
	s.hearing = r.contact.hearing()
	s.hearing.vouched = r.vouchedFor(ag)
	s.hearing.signs = r.signs
	s.halt = ag.Status.HaltedRollout.DeepCopy()
	s.lastGood = ag.Status.LastRolledOut.DeepCopy()
	s.proven = ag.Status.ProvenRevision
	s.remembered.HaltedRollout, s.remembered.LastRolledOut, s.remembered.ProvenRevision = s.halt.DeepCopy(), s.lastGood.DeepCopy(), s.proven
	if look, ok := r.takenLooks.get(client.ObjectKeyFromObject(ag), ag.UID); ok && !look.due(ag, s.now) {
		s.known = &look
	}

	nodes := &metav1.PartialObjectMetadataList{}
	nodes.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("NodeList"))
	if err := r.Client.List(ctx, nodes); err != nil {
		return nil, err
	}
	sel := labels.SelectorFromSet(ag.Spec.NodeLabels())
	nodeLabels := make(map[string]labels.Set, len(nodes.Items))
	for i := range nodes.Items {
		n := &nodes.Items[i]
		nodeLabels[n.Name] = n.Labels
		if sel.Matches(labels.Set(n.Labels)) {
			s.nodes = append(s.nodes, n.Name)
			s.selected[n.Name] = true
		}
	}
	slices.Sort(s.nodes)

	var err error
	if s.leases, err = r.agentLeases(ctx); err != nil {
		return nil, err
	}
	if s.owned, err = r.ownedPools(ctx, false, ag); err != nil {
		return nil, err
	}
	return s, r.leavePortsTaken(ctx, s, nodeLabels)
}

// leavePortsTaken finds the selected nodes where another AppGroup has the
// listen.port (portLosses) and takes out of the pass those where this
// AppGroup has no pool on another port: no pool is created there, and a
// pool there with the port is drained, as on a node no longer selected.
// A pool there on another port (listen.port was changed to a taken one)
// stays, on its port.
func (r *AppGroupReconciler) leavePortsTaken(ctx context.Context, s *scope, nodeLabels map[string]labels.Set) error {
	self, rivals, err := r.portRivals(ctx, s.ag, s.selected, nodeLabels, s.owned)
	if err != nil || len(rivals) == 0 {
		return err
	}
	s.portLost = portLosses(self, rivals)
	keep := map[string]bool{}
	for _, p := range s.owned {
		if p.DeletionTimestamp.IsZero() && p.Spec.Template.Listen.Port != s.ag.Spec.Listen.Port {
			keep[p.Spec.NodeName] = true
		}
	}
	for node := range s.portLost {
		if !keep[node] {
			delete(s.selected, node)
		}
	}
	s.nodes = slices.DeleteFunc(s.nodes, func(n string) bool { return !s.selected[n] })
	return nil
}

// agentLeases reads when each node's agent last renewed its Lease.
func (r *AppGroupReconciler) agentLeases(ctx context.Context) (map[string]time.Time, error) {
	if r.LeaseNamespace == "" {
		return map[string]time.Time{}, nil
	}
	return contract.AgentRenewals(ctx, r.Client, r.LeaseNamespace)
}

// ownedPools lists the pools ag controls, sorted by node then name, from
// the cache (by its index) or, live, from the API server
// (contract.OwnedPools, by their label: it knows no index of ours).
func (r *AppGroupReconciler) ownedPools(ctx context.Context, live bool, ag *ferryv1.AppGroup) ([]*ferryv1.ProcessPool, error) {
	var pools []ferryv1.ProcessPool
	if live {
		var err error
		if pools, err = contract.OwnedPools(ctx, r.APIReader, ag); err != nil {
			return nil, err
		}
	} else {
		var list ferryv1.ProcessPoolList
		if err := r.Client.List(ctx, &list, client.InNamespace(ag.Namespace), client.MatchingFields{poolOwnerIndex: ag.Name}); err != nil {
			return nil, err
		}
		pools = contract.ControlledPools(list.Items, ag)
	}
	return contract.PoolPointers(pools), nil
}

// poolOwnerIndex is the cache's field index of pools by the name of the
// AppGroup that controls them: a pass finds its own pools without going
// over every pool of the namespace, as a label selector does (with a
// thousand AppGroups in one namespace, that was a seventh of the
// manager's CPU while they were created).
const poolOwnerIndex = "ferry.dev/pool-of"

func indexPoolOwner(o client.Object) []string {
	ref := metav1.GetControllerOf(o)
	if ref == nil || ref.Kind != "AppGroup" {
		return nil
	}
	return []string{ref.Name}
}

// reconcileDelete deletes every pool of an AppGroup being deleted and lets
// the AppGroup go once their agents drained them (or their nodes are gone).
func (r *AppGroupReconciler) reconcileDelete(ctx context.Context, ag *ferryv1.AppGroup) (ctrl.Result, error) {
	if !controllerutil.ContainsFinalizer(ag, contract.DrainFinalizer) {
		return ctrl.Result{}, nil
	}
	log := ctrl.LoggerFrom(ctx)
	s, err := r.newScope(ctx, ag)
	if err != nil {
		return ctrl.Result{}, err
	}
	var errs []error
	for _, p := range s.owned {
		if err := r.deletePool(ctx, p); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return ctrl.Result{}, err
	}
	if len(s.owned) > 0 {
		// Every endpoint turns terminating while its pool drains (the
		// agents serve on for their drain delay), and goes with it. Not
		// when the Service of the AppGroup's name is another's: a slice
		// labelled with its name would send that Service's traffic to
		// the draining nodes.
		s.draining = s.owned
		own, err := r.serviceOwned(ctx, ag)
		if err != nil {
			return ctrl.Result{}, err
		}
		if own {
			if err := r.reconcileEndpoints(ctx, s); err != nil {
				return ctrl.Result{}, err
			}
		}
		return r.writeDeletingStatus(ctx, s)
	}
	// The cache says every pool is gone; make sure before letting go.
	live, err := r.ownedPools(ctx, true, ag)
	if err != nil || len(live) > 0 {
		return ctrl.Result{}, err
	}
	orig := ag.DeepCopy()
	controllerutil.RemoveFinalizer(ag, contract.DrainFinalizer)
	if err := r.Client.Patch(ctx, ag, client.MergeFromWithOptions(orig, client.MergeFromWithOptimisticLock{})); err != nil {
		return ctrl.Result{}, err
	}
	r.forget(client.ObjectKeyFromObject(ag))
	log.Info("Released AppGroup after every pool drained")
	return ctrl.Result{}, nil
}

// writeDeletingStatus says, in Ready, what a deleted AppGroup waits for: the
// agents draining its pools, and which of them have gone silent (a dead
// agent on a Node that still exists never drains). It looks again when a
// report would turn stale, and within ResyncEvery in any case: a deletion
// held by a silent agent can wait for good, and a status written by
// anyone else meanwhile would stand as long.
func (r *AppGroupReconciler) writeDeletingStatus(ctx context.Context, s *scope) (ctrl.Result, error) {
	reports := make([]poolReport, 0, len(s.owned))
	for _, p := range s.owned {
		reports = append(reports, assessPool(p, s.target, s.now, r.AgentStaleAfter, s.leases[p.Spec.NodeName], s.hearing))
	}
	for _, rep := range reports {
		r.noteJudged(rep)
	}
	cur := deletingStatus(s.ag, reports, s.now, r.AgentStaleAfter)
	next := ctrl.Result{RequeueAfter: sooner(deletingRequeue(reports, s.now, r.AgentStaleAfter), r.resyncAfter())}
	if equality.Semantic.DeepEqual(s.ag.Status, cur) {
		r.noteResisting(s.ag, &cur)
		return next, nil
	}
	orig := s.ag.DeepCopy()
	s.ag.Status = cur
	err := r.Client.Status().Patch(ctx, s.ag, client.MergeFromWithOptions(orig, client.MergeFromWithOptimisticLock{}))
	if apierrors.IsConflict(err) {
		return ctrl.Result{RequeueAfter: conflictRetry}, nil
	}
	if err == nil {
		r.noteResisting(s.ag, &cur) // nothing resists any more
	}
	return next, err
}

// noteJudged tells the lease watcher what the pass concluded of rep's
// agent by its Lease, silent or not, so that a check that finds otherwise
// brings another pass (leaseWatcher.judged).
func (r *AppGroupReconciler) noteJudged(rep poolReport) {
	// A report newer than the Lease is judged by its own age; the pass
	// asks for the next when it turns stale (nextStaleness).
	if r.leases != nil && rep.Reported && (rep.LeaseIsLast || !rep.HasLease) {
		r.leases.judged(rep.Node, rep.Stale)
	}
}

// byNode indexes reports by node.
func byNode(reports []poolReport) map[string]poolReport {
	m := make(map[string]poolReport, len(reports))
	for _, r := range reports {
		m[r.Node] = r
	}
	return m
}

// updateStatus computes the AppGroup's status from the pass, writes it
// when it changed, records the events its change deserves, and says when
// to look again for an agent going silent.
//
// The write is a merge patch guarded by the resourceVersion read: events
// are recorded by comparing the status read with the one written, so a
// write from a stale read must fail rather than record a transition twice.
// A write of unknown outcome (a timeout) keeps its events until the next
// pass, which reads the API server: they are recorded if the write was
// made (confirmUnsure).
func (r *AppGroupReconciler) updateStatus(ctx context.Context, s *scope, clean bool) (time.Duration, error) {
	ag := s.ag
	r.confirmUnsure(ctx, ag)
	reports := s.reports(r.AgentStaleAfter)
	s.remember(reports)
	key := client.ObjectKeyFromObject(ag)
	var silence silenceSeen
	silence.warned, silence.known = r.warned.get(key, ag.UID)
	for _, rep := range reports {
		r.noteJudged(rep)
		silence.silent = silence.silent || rep.Stale
	}
	awaited := s.awaitedDrains(r.AgentStaleAfter)
	in := s.input(reports) // its loop of these reports: remembered above
	in.Undrained, in.StaleAfter, in.Clean = undrained(awaited), r.AgentStaleAfter, clean && s.revisionErr == nil
	cur := computeStatus(in)
	warned, known := r.deaf.get(key, ag.UID)
	listen := listenSeen{warned: warned, failing: listenFailures(in), unheard: unheardNodes(in)}
	// An awaited pool's report turning stale changes what the status says
	// of it.
	requeue := sooner(sooner(nextStaleness(reports), nextSettle(reports)), nextStaleness(byNode(awaited)))
	if equality.Semantic.DeepEqual(ag.Status, cur) {
		r.noteResisting(ag, &cur)
		if !known {
			r.seedListen(ag, &cur, listen)
		}
		if !silence.known {
			r.seedSilence(ag, &cur, silence)
		}
		seen, ok := r.rollouts.get(key, ag.UID)
		if !ok {
			r.rollouts.set(key, ag.UID, seedRollout(&cur, &cur, haltingNodes(in)))
			return requeue, nil
		}
		// The status stands, but the nodes under it may have moved: a
		// halt may have spread to a node its message does not name. What
		// is remembered moves with that event only, as a status write
		// would have moved it.
		if evs, next := seen.spreadOnly(&cur, in); len(evs) > 0 {
			r.rollouts.set(key, ag.UID, next)
			for _, ev := range evs {
				r.record(ctx, ag, ev)
			}
		}
		return requeue, nil
	}
	orig := ag.DeepCopy()
	old := orig.Status
	ag.Status = cur
	w := statusWrite{status: cur, warned: silence.warnedAfter(&old, &cur), deaf: listen.warnedAfter(&cur)}
	halting := haltingNodes(in)
	seen, ok := r.rollouts.get(key, ag.UID)
	if !ok {
		seen = seedRollout(&old, &cur, halting)
	}
	w.events, w.rollouts = seen.filter(&cur, rolledOutNodes(in), halting, statusEvents(ag, &old, &cur, silence))
	w.events = relateSpread(w.events, seen.halted, halting, in.Reports)
	w.events = append(w.events, listenEvents(ag, &cur, listen)...)
	if err := r.Client.Status().Patch(ctx, ag, client.MergeFromWithOptions(orig, client.MergeFromWithOptimisticLock{})); err != nil {
		refused := apierrors.IsInvalid(err) || apierrors.IsForbidden(err) || apierrors.IsBadRequest(err)
		if !refused {
			// The write may have been made (a timeout, a lost response),
			// or the pass started from an AppGroup behind the API
			// server's (a conflict): the next pass reads the API server.
			r.written.failed(orig, orig.ResourceVersion)
		}
		if !refused && !apierrors.IsConflict(err) {
			r.unsure.set(key, ag.UID, w)
		}
		return 0, err
	}
	r.written.wrote(ag, orig.ResourceVersion)
	r.wroteStatus(ctx, ag, w)
	return requeue, nil
}

// seedListen is the first pass over ag of a manager that just started
// (a new leader, one back from a crash), which finds the status as it
// would write it: the manager before it wrote that status, and named the
// nodes failing to listen then in a ListenFailed event (listenEvents
// records one at the write in which a node starts failing, its ready
// processes leaving READY). Those failing now are taken as named: before,
// the next status write named them all again. A node that started
// failing while no manager ran is taken as named too when the status is
// still as it was: one with no process ready to leave READY, already
// named not ready in Ready's message.
func (r *AppGroupReconciler) seedListen(ag *ferryv1.AppGroup, cur *ferryv1.AppGroupStatus, listen listenSeen) {
	r.deaf.set(client.ObjectKeyFromObject(ag), ag.UID, listen.warnedAfter(cur))
}

// seedSilence is the first pass over ag of a manager that just started
// and finds the status as it would write it: a warning the status shows
// was recorded by the manager before it, and stands while the silence
// goes on. From then on the manager knows: a warning that a status
// written by another later shows is not taken for one it recorded
// (silenceSeen.standing).
func (r *AppGroupReconciler) seedSilence(ag *ferryv1.AppGroup, cur *ferryv1.AppGroupStatus, silence silenceSeen) {
	r.warned.set(client.ObjectKeyFromObject(ag), ag.UID, silence.warnedAfter(cur, cur))
}

// statusWrite is a status write and what follows it once made: its
// events, and what the manager then remembers of them.
type statusWrite struct {
	status   ferryv1.AppGroupStatus
	events   []statusEvent
	warned   bool
	deaf     []string
	rollouts rolloutSeen
}

// wroteStatus records the events of w, made on ag, and remembers what
// they say.
func (r *AppGroupReconciler) wroteStatus(ctx context.Context, ag *ferryv1.AppGroup, w statusWrite) {
	key := client.ObjectKeyFromObject(ag)
	r.noteResisting(ag, &w.status)
	r.warned.set(key, ag.UID, w.warned)
	r.deaf.set(key, ag.UID, w.deaf)
	r.rollouts.set(key, ag.UID, w.rollouts)
	for _, ev := range w.events {
		r.record(ctx, ag, ev)
	}
}

// noteResisting counts ag among the AppGroups that resist (the
// ferry_appgroups_resisting gauge) as st, its status as the API server
// has it, says: a status that could not be written leaves the gauge as it
// was, with what the API says.
func (r *AppGroupReconciler) noteResisting(ag *ferryv1.AppGroup, st *ferryv1.AppGroupStatus) {
	r.resisting.Set(client.ObjectKeyFromObject(ag), meta.IsStatusConditionTrue(st.Conditions, ferryv1.ConditionResistingDeploymentError))
}

// confirmUnsure settles ag's last status write of unknown outcome, if any:
// ag, as the API server shows it (lastWritten), has the status that write
// sent when it was made, and its events are recorded then. Only the
// manager writes the status, and the next write was made on what it read,
// so ag shows the write if anything does. Not made, its events are
// dropped: the pass computes them again from the status before.
func (r *AppGroupReconciler) confirmUnsure(ctx context.Context, ag *ferryv1.AppGroup) {
	key := client.ObjectKeyFromObject(ag)
	w, ok := r.unsure.get(key, ag.UID)
	if !ok {
		return
	}
	r.unsure.forget(key)
	if equality.Semantic.DeepEqual(ag.Status, w.status) {
		r.wroteStatus(ctx, ag, w)
	}
}

// sameMemory: a and b remember the same of the rollout.
func sameMemory(a, b *ferryv1.AppGroupStatus) bool {
	return equality.Semantic.DeepEqual(a.HaltedRollout, b.HaltedRollout) &&
		equality.Semantic.DeepEqual(a.LastRolledOut, b.LastRolledOut) && a.ProvenRevision == b.ProvenRevision
}

// record records ev on ag, counts it and logs it.
func (r *AppGroupReconciler) record(ctx context.Context, ag *ferryv1.AppGroup, ev statusEvent) {
	// events.k8s.io/v1 refuses a note over 1024 bytes: the event would
	// be lost, not shortened.
	ev.Note = truncate(ev.Note, maxEventNote)
	if !ev.Again {
		countEvent(ev.Reason)
	}
	r.Recorder.Eventf(ag, ev.Related, ev.Type, ev.Reason, ev.Action, "%s", ev.Note)
	ctrl.LoggerFrom(ctx).Info("Recorded event", "reason", ev.Reason, "type", ev.Type, "note", ev.Note)
}
