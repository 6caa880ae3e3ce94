package cluster

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"syscall"
	"time"

	"github.com/go-logr/logr"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	toolscache "k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/ferry-dev/ferry/agent/pool"
	"github.com/ferry-dev/ferry/agent/proxy"
	ferryv1 "github.com/ferry-dev/ferry/api/v1alpha1"
	"github.com/ferry-dev/ferry/controllers/contract"
)

// coalesce is how long the reporter waits after a change for more changes
// to report them in one write.
const coalesce = 100 * time.Millisecond

// runningPool is one ProcessPool served on this node: its pool, its proxy
// and the goroutine that reports its status.
type runningPool struct {
	a   *Agent
	key types.NamespacedName
	log logr.Logger

	// drains are the proxies of ports moved from, draining: close waits
	// for them before it stops the workers their requests need.
	drains sync.WaitGroup

	mu        sync.Mutex
	obj       *ferryv1.ProcessPool
	pool      runner
	proxy     *proxy.Server
	port      int32
	listenErr error
	// prev is the proxy of the port the pool moved from, kept serving
	// while the new port (port) cannot be opened: a node where the new
	// port is taken stays on the old one. It drains once port opens.
	prev     *proxy.Server
	prevPort int32
	// moved are the proxies of ports moved from that still serve out the
	// drain delay, by port: a move back takes its proxy back (its
	// listener holds the port).
	moved map[int32]movedProxy

	// stopCtx ends when close's deadline passes (endStop): the drains of
	// the ports moved from end with it.
	stopCtx context.Context
	endStop context.CancelFunc

	// untrack ends the pool's metrics (nil without metrics).
	untrack func()

	// deleted: the pool is deleted, and serves out the drain delay before
	// it drains (drainAsync).
	deleted bool

	// named is the pool as the API server last had it, read by name
	// (readByName) while the cache cannot sync, with the status this
	// agent wrote since (wrote): the base of the statuses computed between
	// writes, which read the pool again only when one is due.
	named *ferryv1.ProcessPool

	kick chan struct{}
	stop chan struct{}
	done chan struct{}
}

// shutdownTimeout is how long the stop of pp's pool may take, as its
// Pool defaults it.
func shutdownTimeout(pp *ferryv1.ProcessPool) time.Duration {
	if d := pp.Spec.Template.Pool.ShutdownTimeout; d != nil && d.Duration > 0 {
		return d.Duration
	}
	return time.Minute
}

// configOf is what pp asks its pool to run; its revision is proven when
// the manager says so (contract.ProvenAnnotation).
func configOf(pp *ferryv1.ProcessPool) pool.Config {
	return pool.Config{Name: pp.Namespace + "/" + pp.Name, Revision: pp.Spec.Revision, Template: pp.Spec.Template,
		Proven: pp.Annotations[contract.ProvenAnnotation] == pp.Spec.Revision}
}

func (a *Agent) startPool(pp *ferryv1.ProcessPool) *runningPool {
	key := types.NamespacedName{Namespace: pp.Namespace, Name: pp.Name}
	rp := &runningPool{a: a, key: key, log: a.log.WithValues("pool", key), obj: pp.DeepCopy(),
		kick: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	rp.stopCtx, rp.endStop = context.WithCancel(context.Background())
	cfg := configOf(pp)
	var obs pool.Observer
	if a.opts.Metrics != nil {
		obs = a.opts.Metrics
	}
	if a.opts.SimulateWorkers > 0 {
		// Benchmarks only: report processes, run none, serve nothing.
		rp.pool = newSimulatedPool(cfg, a.opts.SimulateWorkers)
		rp.port = pp.Spec.Template.Listen.Port
		go rp.report()
		return rp
	}
	real := pool.New(cfg, pool.Options{RunDir: a.runDir, LoaderPath: a.loader, Log: rp.log,
		NewTransport: proxy.NewWorkerTransport, Observer: obs, WorkerUsers: a.opts.WorkerUsers,
		EnvFrom: envReader{c: a.live, namespace: pp.Namespace}})
	rp.pool = real
	if a.opts.Metrics != nil {
		rp.untrack = a.opts.Metrics.Track(cfg.Name, real.Status)
	}
	rp.mu.Lock()
	err := rp.listenLocked(pp.Spec.Template.Listen.Port)
	rp.mu.Unlock()
	rp.log.Info("Started pool", "revision", pp.Spec.Revision, "listen", a.listenAddr(pp.Spec.Template.Listen.Port))
	if err != nil {
		rp.logCannotListen(pp.Spec.Template.Listen.Port, err)
	}
	go rp.report()
	return rp
}

// listenLocked opens the proxy on port. A failure (the port is taken) is
// returned for the caller to log, reported in the status and retried every
// listenRetry, or as soon as the agent's own proxy that holds the port
// lets it go (Agent.release).
func (rp *runningPool) listenLocked(port int32) error {
	rp.port = port
	l, err := net.Listen("tcp", rp.a.listenAddr(port))
	if err != nil {
		rp.listenErr = err
		return err
	}
	l = rp.a.hold(port, rp, l)
	rp.listenErr = nil
	opts := rp.a.opts.Proxy
	opts.Name, opts.Log = rp.key.String(), rp.log
	if rp.a.opts.Metrics != nil {
		opts.Observer = rp.a.opts.Metrics.Requests(opts.Name)
	}
	srv := proxy.New(rp.pool.(proxy.Router), opts)
	rp.proxy = srv
	go func() {
		if err := srv.Serve(l); err != nil {
			rp.log.Error(err, "Proxy stopped")
		}
	}()
	return nil
}

// logCannotListen logs, once per failure, that the pool's port cannot be
// opened. Not as an error: a port taken on a node is a state the status
// reports and the agent waits out, no fault of the agent's.
func (rp *runningPool) logCannotListen(port int32, err error) {
	rp.log.Info("Proxy cannot listen; will retry", "port", port, "error", err.Error(),
		"retryEvery", rp.a.listenRetry().String())
}

// update applies a new spec: a new revision rolls, other changes apply at
// once; a new port moves the proxy (the old one drains first).
func (rp *runningPool) update(pp *ferryv1.ProcessPool) {
	rp.mu.Lock()
	rp.obj = pp.DeepCopy()
	switch port := pp.Spec.Template.Listen.Port; {
	case port == rp.port:
	case rp.a.opts.SimulateWorkers > 0:
		rp.port = port // nothing listens: the reported port follows the spec
	case rp.prev != nil && port == rp.prevPort:
		// Back to the port still served: the move that never opened is over.
		rp.proxy, rp.port, rp.listenErr, rp.prev = rp.prev, port, nil, nil
		rp.log.Info("Moved back to the port still served; the move is over", "listen", rp.a.listenAddr(port))
	default:
		rp.moveLocked(port)
	}
	rp.mu.Unlock()
	rp.pool.Update(configOf(pp))
	rp.wake()
}

// moveLocked opens the proxy on port, the spec's new one, before the old
// one drains (drainMovedLocked): no gap in service. While port is taken,
// the old one serves on (prev). A port moved from that still serves out
// its drain delay is taken back.
func (rp *runningPool) moveLocked(port int32) {
	keep, keepPort := rp.proxy, rp.port
	if keep == nil {
		keep, keepPort = rp.prev, rp.prevPort
	}
	rp.proxy, rp.prev = nil, nil
	var err error
	if m, ok := rp.moved[port]; ok {
		delete(rp.moved, port)
		close(m.back)
		rp.proxy, rp.port, rp.listenErr = m.srv, port, nil
	} else {
		err = rp.listenLocked(port)
	}
	switch {
	case err == nil && keep != nil:
		rp.log.Info("Moved the proxy; the old port drains", "listen", rp.a.listenAddr(port), "old", rp.a.listenAddr(keepPort))
		rp.drainMovedLocked(keep, keepPort)
	case err == nil:
		rp.log.Info("Moved the proxy", "listen", rp.a.listenAddr(port))
	case keep != nil:
		rp.log.Info("The new port is taken; serving on the old one until it is free", "port", port,
			"error", err.Error(), "old", rp.a.listenAddr(keepPort), "retryEvery", rp.a.listenRetry().String())
		rp.prev, rp.prevPort = keep, keepPort
	default:
		rp.logCannotListen(port, err)
	}
}

// movedProxy is the proxy of a port moved from, serving out the drain
// delay; back is closed when a move back takes it back.
type movedProxy struct {
	srv  *proxy.Server
	back chan struct{}
}

// drainMovedLocked drains srv, the proxy of port, moved from, in the
// background after the drain delay, unless a move back takes it back
// first; close waits for it.
func (rp *runningPool) drainMovedLocked(srv *proxy.Server, port int32) {
	m := movedProxy{srv: srv, back: make(chan struct{})}
	if rp.moved == nil {
		rp.moved = map[int32]movedProxy{}
	}
	rp.moved[port] = m
	rp.drains.Add(1)
	go func() {
		defer rp.drains.Done()
		if !rp.servePortMovedFrom(m.back) {
			return // taken back: it serves on
		}
		rp.mu.Lock()
		if cur, ok := rp.moved[port]; ok && cur.srv == srv {
			delete(rp.moved, port)
		}
		rp.mu.Unlock()
		ctx, cancel := context.WithTimeout(rp.stopCtx, time.Minute)
		defer cancel()
		_ = srv.Shutdown(ctx)
	}()
}

// servePortMovedFrom serves a port moved from as before, new connections
// too, for Options.DrainDelay or until the pool stops: the manager moves
// the node's endpoint to the new port's EndpointSlice only once this agent
// reports the new port open, and load balancers take a while more to
// follow; until then they send to the old port, which must not refuse.
// False when a move back took the port back (back closed) first.
func (rp *runningPool) servePortMovedFrom(back <-chan struct{}) bool {
	return rp.a.waitDrainDelay(rp.stop, back)
}

// waitDrainDelay is waitDelay of Options.DrainDelay, which a test may
// also end (Options.drainDelayOver).
func (a *Agent) waitDrainDelay(stop, back <-chan struct{}) bool {
	return waitDelay(a.opts.DrainDelay, stop, a.opts.drainDelayOver, back) // drainDelayOver: nil but in tests
}

// waitDelay waits d (not at all when d <= 0), or until stop closes, or
// over (a test ending the delay as its timer would); false when back
// closes first. A nil channel never closes.
func waitDelay(d time.Duration, stop, over, back <-chan struct{}) bool {
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-stop:
	case <-over:
	case <-back:
		return false
	}
	return true
}

// close drains the proxy, stops the workers and the reporter. agentStops:
// the pool stops because the agent does (not because it was deleted or
// its AppGroup gone): it reports AgentStopping, then serves on for the
// drain delay.
//
// The stop after that takes one shutdownTimeout in all, the SIGKILL and
// reap of workers still running at its end aside: the proxies' drain (the
// ports moved from too) and the workers' stop end by one deadline, so that
// a request stuck in a worker holds it no longer than the grace period is
// sized for (before, the drain alone could take twice the timeout).
func (rp *runningPool) close(agentStops bool) {
	rp.pool.Stopping() // no roll through the drain delay and the drain
	close(rp.stop)
	<-rp.done
	reported := agentStops && rp.reportStopping(stoppingMessage(rp.a.opts.NodeName, rp.a.opts.DrainDelay))
	if reported {
		rp.serveOnStopping()
	}
	rp.mu.Lock()
	srvs := []*proxy.Server{rp.proxy, rp.prev}
	rp.prev = nil
	timeout := shutdownTimeout(rp.obj)
	rp.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	stopAfter := context.AfterFunc(ctx, rp.endStop) // the moved ports' drains end with it
	defer stopAfter()
	var wg sync.WaitGroup
	for _, srv := range srvs {
		if srv == nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = srv.Shutdown(ctx)
		}()
	}
	wg.Wait()
	rp.drains.Wait()
	rp.pool.Close(ctx)
	rp.endStop()
	if reported {
		// Its processes are gone: the last report must not go on listing
		// them ready (and the node's endpoint serving) until the Lease is
		// stale.
		rp.reportStopping("the agent on " + rp.a.opts.NodeName + " stopped: its proxy and processes are gone, until an agent starts again on the node")
	}
	if rp.untrack != nil {
		rp.untrack() // its series go with it
	}
	rp.log.Info("Stopped pool")
}

// stoppingWriteTimeout bounds reportStopping's read of the pool (by name,
// while the cache cannot sync) and its write together: an API server that
// does not answer delays the agent's shutdown by this much at most.
const stoppingWriteTimeout = 3 * time.Second

// reportStopping writes, as the agent stops, that the pool no longer
// serves on this node (Ready=False, AgentStopping, with message), with the
// pool's processes as they are: before its proxy drains and its
// processes stop, so that the manager takes the node out of the
// AppGroup's Service and its status says why at once, instead of trusting
// the last report until the agent's Lease goes stale (--agent-stale-after);
// and once they stopped. Once each: a failure is logged, not retried (the
// Lease then tells). It reports whether the API server took it.
func (rp *runningPool) reportStopping(message string) bool {
	ctx, cancel := context.WithTimeout(context.Background(), stoppingWriteTimeout)
	defer cancel()
	desired, obj, err := rp.desired(ctx, true)
	if err == nil && (obj == nil || obj.ResourceVersion == "") {
		return false // another pool has the name, or the API server was never heard
	}
	if err == nil {
		meta.SetStatusCondition(&desired.Conditions, metav1.Condition{Type: ferryv1.ConditionReady,
			Status: metav1.ConditionFalse, Reason: ferryv1.ReasonAgentStopping, ObservedGeneration: obj.Generation,
			Message: message})
		patch := client.MergeFrom(obj.DeepCopy())
		obj.Status = desired
		err = rp.a.client.Status().Patch(ctx, obj, patch)
	}
	if err != nil && !apierrors.IsNotFound(err) {
		rp.log.Error(err, "Could not report that the agent stops; its node reads silent once its Lease is stale")
	}
	return err == nil
}

// stoppingMessage is Ready's message as the agent on node begins to stop.
func stoppingMessage(node string, drainDelay time.Duration) string {
	return "the agent on " + node + " is stopping: " + stoppingProxy(drainDelay) +
		", and its processes stop once their requests finish, until an agent starts again on the node"
}

// stoppingProxy is what AgentStopping's message says of the pool's proxy
// (serveOnStopping).
func stoppingProxy(drainDelay time.Duration) string {
	if drainDelay <= 0 {
		return "its proxy takes no new connections"
	}
	return "its proxy serves on for the drain delay (" + drainDelay.String() +
		") while load balancers follow the Service, then takes no new connections"
}

// serveOnStopping serves as before for Options.DrainDelay once the agent
// reported that it stops, new connections too, as a deleted pool does:
// the manager takes the node out of the AppGroup's Service at once, and
// load balancers (kube-proxy too) take a while to stop sending there.
// The pools stop together, so the agent's stop waits one drain delay.
func (rp *runningPool) serveOnStopping() {
	if d := rp.a.opts.DrainDelay; d > 0 {
		rp.log.Info("Agent stopping; serving on for the drain delay before draining", "drainDelay", d.String())
		rp.a.waitDrainDelay(nil, nil)
	}
}

// report writes the pool's status: at once (coalesced) when its state
// changes, its figures at most every stats interval, and an unchanged
// status every StatusReportInterval; with backoff while writes fail. (The
// agent's liveness is its Lease, not these writes.)
func (rp *runningPool) report() {
	defer close(rp.done)
	hb := rp.a.opts.StatsInterval
	var last ferryv1.ProcessPoolStatus
	var lastWrite, lastListen time.Time
	// written: a write was made or is moot (the pool is gone); stored: the
	// API holds last, which this reporter wrote.
	written, stored := false, false
	backoff := time.Duration(0)
	// Failed writes are logged as the Lease's renewals are: when they
	// start, when they fail in a way not yet logged since, and every
	// leaseRemindEvery; not one line per pool per heartbeat through an
	// API server outage.
	var trouble leaseTrouble
	for {
		changed := rp.pool.Changed()
		if time.Since(lastListen) >= rp.a.listenRetry() {
			lastListen = time.Now()
			rp.retryListen()
		}
		desired, obj, err := rp.desired(context.Background(), false)
		now := time.Now()
		due := obj != nil && writeDue(written, last, desired, now.Sub(lastWrite), hb, rp.a.opts.StatusReportInterval)
		if due && rp.readsByName() {
			// The pool is read by name for a write only: one read per
			// write, not one per wake-up of the reporter.
			about := rp.uid() // before the read: what it is about
			desired, obj, err = rp.desired(context.Background(), true)
			rp.noticeDeletion(about, obj, err)
		}
		if obj == nil {
			// Replaced by a pool of the same name (this one, deleted, was
			// released during its drain delay; or, read by name,
			// noticeDeletion stopped it): its status is the new pool's
			// reporter's to write.
			lastWrite, written = now, true
		} else if due {
			if err == nil {
				err = rp.write(patchBase(obj, last, stored), desired)
			}
			switch {
			case err == nil:
				last, lastWrite, written, stored, backoff = desired, now, true, true, 0
				rp.wrote(desired)
				if since, was := trouble.renewed(); was {
					rp.log.Info("Reported status again", "failedFor", now.Sub(since).Round(time.Second).String())
				}
			case goneByName(err, rp.key):
				// Deleted: the reconcile loop stops this pool (or, read by
				// name, noticeDeletion did); until then, write no more
				// often than a heartbeat. Only the API server's own
				// NotFound for the pool: another 404 (a proxy's) is a
				// failed write, logged and retried below, as install.md
				// says (its Troubleshooting entry for the outdated CRD,
				// and for "Could not report status").
				lastWrite, written = now, true
			default:
				// A write that timed out may still have been applied: diff
				// the next one against the cache, not against last.
				stored = false
				// Capped at the heartbeat interval: once the API server is
				// back, the report must not lag more than a heartbeat.
				cap := rp.a.opts.HeartbeatInterval
				backoff = min(max(2*backoff, 500*time.Millisecond), cap)
				// A pool resumed from disk waits for the first sync with
				// the API server (at once when it is up): no failure to
				// log; while it is away, the Lease's renewals say so.
				if errors.Is(err, errNotSynced) {
					break // the switch
				}
				if since, log := trouble.failed(now, err); log {
					rp.log.Error(err, "Could not report status; still serving, will retry", "retryIn", backoff.String(),
						"failingSince", since.UTC().Format(time.RFC3339))
				}
			}
		}
		untilListen := never
		if rp.listenFailing() {
			untilListen = rp.a.listenRetry() - time.Since(lastListen)
		}
		if passed := rp.a.opts.reporterPassed; passed != nil {
			passed(rp.key)
		}
		if !rp.sleep(changed, nextWake(time.Since(lastWrite), hb, backoff, untilListen)) {
			return
		}
	}
}

// sleep waits for a change of the pool (then coalesces), a kick, or d;
// false when the pool is closing.
func (rp *runningPool) sleep(changed <-chan struct{}, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-rp.stop:
		return false
	case <-t.C:
		return true
	case <-rp.kick:
	case <-changed:
	}
	select {
	case <-rp.stop:
		return false
	case <-time.After(coalesce):
		return true
	}
}

// listenFailing reports whether the pool's port could not be opened: the
// reporter tries it again every listenRetry.
func (rp *runningPool) listenFailing() bool {
	rp.mu.Lock()
	defer rp.mu.Unlock()
	return rp.listenErr != nil
}

// waitsFor reports whether the pool waits to listen on port, taken.
func (rp *runningPool) waitsFor(port int32) bool {
	rp.mu.Lock()
	defer rp.mu.Unlock()
	return rp.listenErr != nil && rp.proxy == nil && rp.port == port
}

// retryListen tries again to open a port that was taken; true when it
// opened it now. Not once the pool stops: close collects the proxies to
// drain after it closed stop, under mu, and one opened later would hold
// the port for good (Agent.release calls this outside the reporter, which
// close waits for).
func (rp *runningPool) retryListen() bool {
	rp.mu.Lock()
	defer rp.mu.Unlock()
	if rp.listenErr == nil || rp.proxy != nil || rp.a.opts.SimulateWorkers > 0 || rp.stopping() {
		return false
	}
	if rp.listenLocked(rp.port) != nil {
		return false // logged when it first failed
	}
	if rp.prev == nil {
		rp.log.Info("Proxy listens again", "port", rp.port)
		return true
	}
	rp.log.Info("Proxy listens again; the old port drains", "port", rp.port, "old", rp.a.listenAddr(rp.prevPort))
	rp.drainMovedLocked(rp.prev, rp.prevPort)
	rp.prev = nil
	return true
}

// stopping: close has begun.
func (rp *runningPool) stopping() bool {
	select {
	case <-rp.stop:
		return true
	default:
		return false
	}
}

// wake has the reporter report the pool's status now (coalesced).
func (rp *runningPool) wake() {
	select {
	case rp.kick <- struct{}{}:
	default:
	}
}

// desired computes the status to report, on top of the latest object the
// agent knows (the cache's, or the saved spec while the API is away); a
// nil object when the API holds another pool of the same name
// (replacedBy). While the cache cannot sync (readsByName), the pool is
// read by name under ctx when fresh, else the last read (named) serves;
// err is that read's failure (the saved spec is returned with it).
func (rp *runningPool) desired(ctx context.Context, fresh bool) (ferryv1.ProcessPoolStatus, *ferryv1.ProcessPool, error) {
	rp.mu.Lock()
	obj := rp.obj.DeepCopy()
	named := rp.named.DeepCopy()
	l := listening{port: rp.port, err: rp.listenErr, agentUse: rp.a.opts.AgentPorts[rp.port]}
	if rp.prev != nil {
		l.old = rp.prevPort
	}
	rp.mu.Unlock()
	if errors.Is(l.err, syscall.EADDRINUSE) && l.agentUse == "" {
		l.holder, l.held = rp.a.holder(l.port, rp)
	}
	// Before the cache has synced (an agent resumed from disk while the API
	// server is away), a Get would block until it does: use the saved spec.
	var err error
	switch {
	case rp.a.synced.Load():
		current := &ferryv1.ProcessPool{}
		ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := rp.a.cache.Get(ctx, rp.key, current)
		cancel()
		if err == nil && replacedBy(obj, current) {
			return ferryv1.ProcessPoolStatus{}, nil, nil
		}
		if err == nil {
			obj = current
		}
	case rp.a.crd.outdated.Load():
		if !fresh {
			if named != nil { // else the saved spec, until the first read
				obj = named // its generation the saved spec's (readByName)
			}
			break
		}
		var replaced bool
		if obj, replaced, err = rp.readByName(ctx, obj); replaced {
			return ferryv1.ProcessPoolStatus{}, nil, nil
		}
	}
	return desiredStatus(obj.Status, obj.Generation, rp.pool.Status(), rp.a.advertiseHost(), l, time.Now()), obj, err
}

// readsByName is whether desired reads the pool by name: the cache has
// not synced, and cannot, its list refused (crdCheck).
func (rp *runningPool) readsByName() bool {
	return !rp.a.synced.Load() && rp.a.crd.outdated.Load()
}

// replacedBy is whether current, under ours' name, is another pool, whose
// status is not this agent's to write: a new UID (ours deleted and the
// name taken again), or another node's (spec.nodeName is immutable: only
// another pool can be; this tells it from ours when ours was saved
// without its UID). The cache, which selects this node's pools, holds no
// other node's; a read by name may return one.
func replacedBy(ours, current *ferryv1.ProcessPool) bool {
	return (ours.UID != "" && current.UID != ours.UID) || current.Spec.NodeName != ours.Spec.NodeName
}

// readByName is the pool as the API server has it, read by its name, for
// a pool resumed from disk whose agent's cache cannot sync: the API server
// refuses its list by spec.nodeName (crdCheck, an agent restarted on an
// outdated CRD), but a read by name needs no field selector. Without it,
// the pool's status writes would wait for a sync that does not come, and
// the pool would keep its last status, usually the previous agent's
// AgentStopping, while this agent runs it and renews its Lease: the node
// out of the AppGroup's Service for nothing. Its generation stays saved's,
// the spec that runs: a change of spec waits for the cache, and the status
// must not say it observed it. saved itself, with the error, when the read
// fails (the reporter logs it as a failed write, and retries); replaced
// when the API server holds another pool of that name (replacedBy), whose
// status is not this one's. The read is kept (named) for the statuses
// computed until the next write.
func (rp *runningPool) readByName(ctx context.Context, saved *ferryv1.ProcessPool) (obj *ferryv1.ProcessPool, replaced bool, err error) {
	current := &ferryv1.ProcessPool{}
	if err := bounded(ctx, func(ctx context.Context) error {
		return rp.a.live.Get(ctx, rp.key, current)
	}); err != nil {
		if apierrors.IsNotFound(err) && !goneByName(err, rp.key) {
			// A 404 that is not the API server's word on this pool (a
			// proxy's, or an API server not serving the CRD yet): a read
			// that failed, logged and retried, not a deletion: its text
			// only, no longer a NotFound, which the reporter takes for one.
			return saved, false, errors.New("read the pool by name: not found, but not as the API server says of a pool gone: " + err.Error())
		}
		return saved, false, fmt.Errorf("read the pool by name: %w", err)
	}
	if replacedBy(saved, current) {
		return nil, true, nil
	}
	current.Generation = saved.Generation
	rp.mu.Lock()
	rp.named = current.DeepCopy()
	rp.mu.Unlock()
	return current, false, nil
}

// noticeDeletion stops the pool when its read by name (readByName) finds
// it deleted, as the reconcile loop does when the cache shows it, which
// it cannot while the CRD lacks the field: one that keeps its drain
// finalizer is drained and released (drainAsync), one gone already
// stopped (stopGone), as is one whose name another pool has taken since
// (replacedBy: its read is nil, without error), which is gone as well.
// So a deletion is noticed at the next write of the pool's status, which
// reads it: within the stats interval while its figures move,
// StatusReportInterval at most. Before, the pool ran on, reported Ready,
// its finalizer held, until the CRD was upgraded.
//
// A pool is stopped, its saved spec removed, on the API server's own
// NotFound for it (goneByName) only, and only once a second read says
// so again (goneAgain): nothing restarts it on this path, and a pool
// stopped on a 404 that was not the pool's deletion would keep its last
// Ready status with its port closed. about is the UID of the pool rp
// ran as the read began (staleRead).
func (rp *runningPool) noticeDeletion(about types.UID, obj *ferryv1.ProcessPool, err error) {
	switch {
	case goneByName(err, rp.key):
		if rp.goneAgain() {
			rp.a.stopGone(rp, about, false)
		}
	case err == nil && obj == nil:
		// Not a 404: a pool the API server has, and not ours (another
		// UID, or another node's, spec.nodeName being immutable).
		rp.a.stopGone(rp, about, true)
	case err == nil && obj != nil && !obj.DeletionTimestamp.IsZero():
		rp.a.drainAsync(rp.key, obj, rp, about)
	}
}

// goneByName is whether err is the API server's NotFound for the pool of
// key itself: a Status of reason NotFound about ProcessPools of ferry.dev
// named key.Name, as the API server answers a read of a pool that is not
// there. Not a 404 whose body is no such Status (client-go makes one up
// then, with a CauseTypeUnexpectedServerResponse cause): a proxy's, or an
// API server's whose CRD is not served yet (kubernetes/kubernetes#71218).
func goneByName(err error, key types.NamespacedName) bool {
	var s apierrors.APIStatus
	if err == nil || !errors.As(err, &s) {
		return false
	}
	st := s.Status()
	d := st.Details
	if st.Reason != metav1.StatusReasonNotFound || st.Code != http.StatusNotFound || d == nil ||
		d.Group != ferryv1.GroupVersion.Group || d.Kind != poolsResource || d.Name != key.Name {
		return false
	}
	for _, c := range d.Causes {
		if c.Type == metav1.CauseTypeUnexpectedServerResponse {
			return false
		}
	}
	return true
}

// poolsResource is the ProcessPools' resource, as a NotFound's details
// name it (their Kind field).
const poolsResource = "processpools"

// goneAgain reads the pool by name once more, after a read that found it
// gone: true when the API server says so again (goneByName). One answer
// is not enough to stop a pool for good.
func (rp *runningPool) goneAgain() bool {
	err := bounded(context.Background(), func(ctx context.Context) error {
		return rp.a.live.Get(ctx, rp.key, &ferryv1.ProcessPool{})
	})
	return goneByName(err, rp.key)
}

// stopGone stops rp, whose pool the API server no longer has, in the
// background, and forgets its saved spec if it is still its own
// (store.removeIf), as reconcile does a pool gone from the cache; unless
// rp runs no more (drained, stopped, or stopping with the agent).
// replaced: another pool has its name now.
//
// about is the UID of the pool rp ran when it was read: rp is stopped
// only while the read is not stale (staleRead). Once stopped, the key is
// queued for the reconcile loop: a new pool of the name that ensure handed
// to rp between the check and the stop (it calls rp.update once it let
// a.mu go: a CRD upgrade, a deletion and a new pool of the name, and a
// read within the cache's sync poll, some 100ms) is started from the
// cache, not left unrun until its next event; reconcile's cache read
// blocks until the cache syncs, and with no pool of key in it does
// nothing. The saved spec removed is the pool of UID about's only (or
// one saved without a UID): the new pool's, which a reconcile under way
// as the cache synced may have saved after the check, stays.
func (a *Agent) stopGone(rp *runningPool, about types.UID, replaced bool) {
	stale := a.staleRead(rp, about) // before a.mu: rp.mu is not taken under it
	a.mu.Lock()
	if stale || a.pools[rp.key] != rp {
		a.mu.Unlock()
		return
	}
	delete(a.pools, rp.key)
	delete(a.unlabelled, rp.key)
	a.wg.Add(1) // under mu: before stopAll takes the pools, so before Run waits
	a.mu.Unlock()
	if replaced {
		rp.log.Info("Pool gone, as read by name; stopping it", "nameTakenByAnother", true)
	} else {
		rp.log.Info("Pool gone, as read by name; stopping it")
	}
	if err := a.store.removeIf(rp.key, about); err != nil {
		logSpecRemovalFailed(rp.log, err)
	}
	go func() {
		defer a.wg.Done()
		rp.close(false)
	}()
	a.queue.Add(rp.key)
}

// staleRead is whether a read by name of rp, made while rp ran the pool
// of UID about (empty for a spec saved without its UID), may no longer
// stop rp: the agent has synced since, or rp runs another pool now. As
// the cache syncs (the CRD upgraded), the reconcile loop takes over, and
// may hand a new pool of the same name to rp (ensure) before synced is
// set: a read made before then must not stop that pool, nor remove its
// saved spec. It takes rp.mu: call it without a.mu held.
func (a *Agent) staleRead(rp *runningPool, about types.UID) bool {
	return a.synced.Load() || rp.uid() != about
}

// uid is the UID of the pool rp runs (empty when it was resumed from a
// spec saved without one).
func (rp *runningPool) uid() types.UID {
	rp.mu.Lock()
	defer rp.mu.Unlock()
	return rp.obj.UID
}

// wrote notes that the API server holds status, which the reporter just
// wrote: the statuses computed on the pool read by name (named) until the
// next read build on it, as they would on the cache's copy once it shows
// the write (a condition's transition time kept, not taken anew).
func (rp *runningPool) wrote(status ferryv1.ProcessPoolStatus) {
	rp.mu.Lock()
	defer rp.mu.Unlock()
	if rp.named != nil {
		rp.named.Status = *status.DeepCopy()
	}
}

// write patches the pool's status from base's to status.
func (rp *runningPool) write(base *ferryv1.ProcessPool, status ferryv1.ProcessPoolStatus) error {
	if base.ResourceVersion == "" {
		return errNotSynced
	}
	patch := client.MergeFrom(base)
	obj := base.DeepCopy()
	obj.Status = status
	return bounded(context.Background(), func(ctx context.Context) error { return rp.a.client.Status().Patch(ctx, obj, patch) })
}

type notSynced struct{}

func (notSynced) Error() string {
	return "the pool was resumed from disk and the API server has not answered yet"
}

var errNotSynced error = notSynced{}

// handler enqueues every ProcessPool event.
type handler struct {
	q workqueue.TypedRateLimitingInterface[types.NamespacedName]
}

func (h handler) enqueue(obj any) {
	if d, ok := obj.(toolscache.DeletedFinalStateUnknown); ok {
		obj = d.Obj
	}
	if o, ok := obj.(client.Object); ok {
		h.q.Add(client.ObjectKeyFromObject(o))
	}
}

func (h handler) OnAdd(obj any, _ bool) { h.enqueue(obj) }
func (h handler) OnUpdate(_, obj any)   { h.enqueue(obj) }
func (h handler) OnDelete(obj any)      { h.enqueue(obj) }
