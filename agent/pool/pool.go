package pool

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"runtime/debug"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/go-logr/logr"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ferry-dev/ferry/agent/spawn"
	ferryv1 "github.com/ferry-dev/ferry/api/v1alpha1"
	"github.com/ferry-dev/ferry/controllers/contract"
)

// Errors Acquire returns instead of a worker.
var (
	// ErrQueueFull: maxRequestQueueSize requests already wait (503).
	ErrQueueFull = errors.New("request queue is full")
	// ErrQueueTimeout: the request waited queueTimeout for a worker (504).
	ErrQueueTimeout = errors.New("timed out waiting for a worker process")
	// ErrUnavailable: no worker exists and spawning one keeps failing
	// (503); Acquire's error is an *UnavailableError, which says when the
	// pool tries again.
	ErrUnavailable = errors.New("no worker process could be started")
	// ErrClosed: the pool is shutting down (503).
	ErrClosed = errors.New("the pool is shutting down")
)

// Config is what a pool runs: its name, target revision and template.
type Config struct {
	// Name identifies the pool in logs, metrics and status, e.g. "default/hello".
	Name string
	// Revision is the target revision; changing it restarts the workers.
	Revision string
	// Template is the AppGroup's app/listen/pool/restart as of Revision.
	Template ferryv1.AppTemplate
	// Proven: the manager holds Revision proven (it ran, rolled out, past
	// the crash window on a node: the AppGroup's provenRevision), so it
	// keeps a node whose processes of it die young on it rather than
	// return the node to the revision it rolled from (awaitsReturnLocked).
	// Standalone has no manager and leaves it false.
	Proven bool
}

// Options are the pool's environment, fixed for its life.
type Options struct {
	// RunDir holds the workers' socket directories (keep it short).
	RunDir string
	// LoaderPath is the installed WSGI loader.
	LoaderPath string
	// WorkerUsers is who workers may run as (the agent's --worker-users);
	// the zero value: anyone but root.
	WorkerUsers spawn.WorkerUsers
	// Log is the pool's logger. It names the pool already (cluster mode:
	// "pool", standalone: "appgroup"): the pool adds no key of its own, or
	// every line, the workers' output too, would carry the name twice.
	Log logr.Logger
	// NewTransport makes the round tripper that carries requests to a new
	// worker. Required: the proxy's (proxy.NewWorkerTransport), which its
	// request path relies on; the pool cannot import the proxy to default it.
	NewTransport func(w *Worker) http.RoundTripper
	// Observer is told of spawns, restarts and resistance (metrics). Optional.
	Observer Observer
	// Tick is how often idle workers, memory and backoffs are checked.
	// Default 1s.
	Tick time.Duration
	// ResistEarlyCrashes: a worker of a revision a rolling restart rolls
	// to that dies within crashWindow of ready, before the revision
	// lasted, is a deployment error (resisted, when the template says so),
	// not a scaling error. Standalone sets it: no manager returns the
	// node to what worked, and the restart, whose every new worker was
	// ready first, would otherwise replace every old one with a dying one.
	// In a cluster the manager's crash window does it, cluster-wide.
	ResistEarlyCrashes bool
	// EnvFrom reads the template's env valueFrom at each spawn (cluster
	// mode: the pool's namespace); nil, as standalone: a valueFrom fails
	// the spawn.
	EnvFrom spawn.EnvSource
}

// Observer receives the pool's notable events, for metrics.
type Observer interface {
	SpawnStarted(pool string, kind SpawnKind)
	SpawnSucceeded(pool string, d time.Duration)
	SpawnFailed(pool string, kind SpawnKind)
	RestartStarted(pool string, strategy ferryv1.RestartStrategy)
	RestartFinished(pool string, outcome string)
	WorkerExited(pool string, unexpected bool)
	// WorkerOverran: a worker was killed for a request that took longer
	// than maxRequestTime (its exit is reported too, as expected).
	WorkerOverran(pool string)
}

// SpawnKind says why a spawn was made, which decides what its failure means.
type SpawnKind string

const (
	// SpawnScale grows the pool (queued requests, minProcesses).
	SpawnScale SpawnKind = "scale"
	// SpawnRestart is a restart's replacement of an old-revision worker.
	SpawnRestart SpawnKind = "restart"
	// SpawnRecycle replaces a worker past maxRequestsPerProcess or memoryLimit.
	SpawnRecycle SpawnKind = "recycle"
)

// Worker is one worker process as the pool tracks it.
type Worker struct {
	// ID is unique within the agent, stable for the worker's life.
	ID int
	// Revision is the revision the worker was spawned for.
	Revision string
	// Transport carries requests to the worker; set once it is ready.
	Transport http.RoundTripper

	proc     *spawn.Process
	state    State
	sessions int
	// busySince: when sessions last went from 0 to 1 (takeLocked).
	busySince time.Time
	capacity  int
	processed int64
	startedAt time.Time
	readyAt   time.Time
	lastUsed  time.Time
	recycle   recycleReason
	replacing bool
	// foundDying: when it was taken out for refusing a connection
	// (Unreachable), its replacement spawned from then: its death's
	// backoff step is taken as of then (scalingState.fail).
	foundDying time.Time
	// faulty: stopped for a fault, killed for maxRequestTime (Overran) or
	// taken out for refusing a connection (Unreachable). Its exit is a
	// stop, but no recycle even if one was due: it hung or was dying
	// (recycledAfterServing).
	faulty bool
	// inRequest: the process exited while a request was at it (a session
	// ended after the exit, or was open at it): watchExit.
	inRequest bool
	drained   chan struct{} // closed when Draining with no session left
	// stopped is what the agent did to the worker with requests still at
	// it (StoppedBy); set before the signal.
	stopped atomic.Pointer[stopCause]
	gone    chan struct{} // closed once the exited worker left the pool's table
	// tmpl is the template as of Revision, taken when the worker was
	// registered, so that what runs matches the revision it is labelled.
	tmpl  ferryv1.AppTemplate
	stats procStats
	// key is the request at the worker while it is the only one
	// (takeLocked); diedIn, the method and path of the one its process
	// exited under, as the proxy reports it (DiedIn); ofKey, that its
	// death was excused as a run's request of death (excuseLocked).
	key    RequestKey
	diedIn string
	ofKey  bool
}

// PID is the worker's process id, 0 while it spawns.
func (w *Worker) PID() int {
	if w.proc == nil {
		return 0
	}
	return w.proc.PID
}

// Network and Address are where the worker serves HTTP.
func (w *Worker) Network() string { return w.proc.Network }

// Address is the worker's socket path or host:port.
func (w *Worker) Address() string { return w.proc.Address }

// Capacity is how many requests the worker takes at once (app.concurrency).
func (w *Worker) Capacity() int { return w.capacity }

// Exited reports whether the worker's process is gone.
func (w *Worker) Exited() bool { return w.proc != nil && w.proc.Exited() }

// StoppedBy says, when the agent itself signalled the worker while it
// still had requests, why and at what, as the rest of a sentence "the
// agent stopped the worker process (pid N) ..." ("for a rolling restart:
// its requests were not done within shutdownTimeout (5s)"); "" when it
// did not, or when the process died of something else meanwhile
// (stopCause.explains): a request cut by its exit was cut by the agent,
// not by a crash. Read it once the request failed: it is set before the
// signal. Once the process has exited it no longer changes (the exit is
// judged by the signals the agent sent before it, not by when it is read,
// nor by when the reaper saw it); before, it is the stop's.
func (w *Worker) StoppedBy() string {
	c := w.stopped.Load()
	if c == nil || !w.stopExplainsExit(c) {
		return ""
	}
	return c.words
}

// stopExplainsExit reports whether stop c explains w's exit (true while
// w runs): stopCause.explains, given the signals the agent sent the
// process before it exited. The status is read first: once it says the
// process exited, what it was sent no longer changes.
func (w *Worker) stopExplainsExit(c *stopCause) bool {
	status := w.proc.ExitStatus()
	return c.explains(status, w.proc.Sent(syscall.SIGTERM), w.proc.Sent(syscall.SIGKILL))
}

// ExitsWithin reports whether the worker's process is gone, or goes
// within d, its exit known when it is (spawn.Process.ExitsWithin).
func (w *Worker) ExitsWithin(d time.Duration) bool {
	return w.proc != nil && w.proc.ExitsWithin(d)
}

// Pool is one AppGroup's workers on this node.
type Pool struct {
	opts Options
	log  logr.Logger
	name string // Config.Name at New: fixed, read without the lock
	// The template's buffering (RequestBufferLimit, ResponseBufferLimit)
	// and maxRequestTime (MaxRequestTime, in nanoseconds), kept apart from
	// cfg so that the proxy reads them without the lock.
	requestLimit, responseLimit, requestTime atomic.Int64
	// ctx is cancelled by Close: spawns in flight give up.
	ctx    context.Context
	cancel context.CancelFunc
	// envMemory keeps what env valueFrom read for the revisions the pool
	// may spawn, for their workers' replacements while the API server
	// does not answer (spawn.EnvMemory).
	envMemory spawn.EnvMemory

	mu      sync.Mutex
	cfg     Config
	workers []*Worker // live workers, in spawn order
	queue   waitQueue
	restart *restartState
	// stepping is the restart whose goroutine still runs. It is restart
	// but once the pool resists: a young worker's death (resistCrashLocked)
	// clears restart mid-step, so that no snapshot shows both, and the
	// goroutine ends at its next look (orphanedLocked). No restart starts
	// before it has: two would replace workers at once.
	stepping  *restartState
	resisting *ferryv1.SpawnError
	lastErr   *ferryv1.SpawnError
	// startsAbove is the revision and memoryLimit for which a worker
	// above the limit as it became ready was logged (sample), and
	// growsAbove the one for which a worker recycled within its first
	// few requests was: once for each.
	startsAbove memoryNote
	growsAbove  memoryNote
	scaling     scalingState
	recycling   bool
	// stopping: the pool is about to close (Stopping): it rolls no more.
	stopping bool
	closed   bool
	// closeBy is when the workers' stop must be over, once closed: one
	// shutdownTimeout from Close (or Close's ctx's deadline, if sooner),
	// shared by the two waits of each stop.
	closeBy     time.Time
	lastRestart *RestartSummary
	// asked counts the revisions asked for (Update): a restart whose
	// count is older serves an earlier request, even of the same revision
	// (2, 1, 2), and starts over on the newest (nextReplacement).
	asked int
	// started are the revisions of which a worker has been ready in this
	// pool's life (the target and those of live workers are kept): a
	// revision not in it has never started here, booting or failing.
	started map[string]bool
	// lasted are the revisions of which a worker has lived past
	// crashWindow, or which have been steady for it (steady), in this
	// pool's life (kept as started is): their app is
	// known to start and stay up, so a young worker of one that dies in a
	// request died of the request (watchExit).
	lasted map[string]bool
	// steady is, per revision, since when a worker of it has been ready
	// throughout with none of its workers dying or stopped as faulty
	// meanwhile (noteLastedLocked). A revision steady for crashWindow has
	// lasted too: under load with maxRequestsPerProcess or memoryLimit
	// recycling, no worker may live that long, yet one served request
	// alone proves nothing of an app that dies a few seconds after ready.
	steady map[string]time.Time
	// excused counts the young deaths in a request taken as the request's
	// (watchExit) since a worker readied after the first of them lasted
	// or served until it was recycled (servedLocked): past maxExcused in
	// a row, they count as crashes.
	excused excusedDeaths
	// gaveUp are the workers the last restart to givenUpFor could not
	// replace (resistDeploymentErrors off): no new restart retries them
	// until the next revision.
	gaveUp     map[int]bool
	givenUpFor string
	// resistFrom is what the pool spawns, while it resists, to keep
	// serving should the old workers exit: the revision it resists from.
	resistFrom spawnable
	// rolledFrom is the last worker a rolling restart replaced
	// (resistCrashLocked).
	rolledFrom rollingFrom
	changed    chan struct{} // closed and replaced on every change

	kick chan struct{}
	done chan struct{}
	wg   sync.WaitGroup
}

// spawnable is a revision and its template.
type spawnable struct {
	revision string
	tmpl     ferryv1.AppTemplate
}

// targetLocked is the revision asked for, with its template.
func (p *Pool) targetLocked() spawnable {
	return spawnable{revision: p.cfg.Revision, tmpl: p.cfg.Template}
}

type scalingState struct {
	// failures counts the failed spawns and crashes (ScalingError's "failed
	// N time(s)"); steps, the backoff steps they took (fail), the last at
	// steppedAt.
	failures  int
	steps     int
	steppedAt time.Time
	until     time.Time
	err       *ferryv1.SpawnError
	// blocked: err (and last) failed for no fault of its revision
	// (notTheRevisions: a port another program took, an env valueFrom not
	// read). The ScalingError condition says so (ReasonSpawnBlocked), and
	// the manager does not take it for a revision that cannot start
	// there. Such a failure backs off (steps) but opens no run and is no
	// round of one (fail); blockedRounds counts them in a row, what the
	// status reports beside it (counted), until a failure of the
	// revision's own or a spawn that works (spawnWorkedLocked).
	blocked       bool
	blockedRounds int
	// loopSince, when set, is the first failure of a loop: the failed
	// spawns and young deaths of a revision in a row. A spawn coming up
	// in it clears err (spawnWorkedLocked) but proves nothing yet: a
	// process that is ready and then dies young did not work either, so
	// the counts stay (each round backs off longer, rounds goes on)
	// until a worker ready since then has lasted (lastedLocked) or served
	// until it was recycled (servedLocked); one that served from before
	// the loop proves nothing of the workers spawned since. A loop of
	// failed spawns only also ends where their need passed
	// (clearPassedScalingErrorLocked).
	loopSince time.Time
	// crashSince, when set, is the first young death of the loop: from
	// it the pool may await the manager's return (awaitsReturnLocked;
	// the hold for it is timed from holdFrom). A failed spawn after it
	// keeps it: the loop goes on.
	crashSince time.Time
	// last is the failure counted last, lastErr when it was recorded: the
	// status reports rounds with lastErr (SpawnFailures) while lastErr is
	// still it, not with a failure recorded since that the count leaves out
	// (a restart step's, or one of a revision the pool spawns no more).
	last *ferryv1.SpawnError
	// rounds is what the status reports with last (SpawnFailures, unless
	// last is blocked: counted): the rounds of the revision's attempts
	// that failed (fail), not the failures, nor blocked ones. Processes
	// started together that die together (an OOM sweep, a database gone)
	// are one round, so that 2 says a replacement spawned after a failure
	// failed too, as kubectl ferry restart --wait reads it, and as the
	// hold for the manager's return (holdingLocked) starts. It counts as
	// steps does (blocked failures aside), through failed spawns and
	// young deaths alike (a process ready, then dead young, is a failed
	// round, not a spawn that worked: loopSince), and starts over with
	// the loop's end; where the loop was of failed spawns whose need
	// passed, once a spawn of last's revision works (spawnWorkedLocked),
	// or once the pool stopped the retries that worked
	// (retriesGoneLocked), steps and failures staying for the backoff
	// (clearPassedScalingErrorLocked): a later first death is a first one.
	rounds int
	// holdFrom, set in a crash loop only, is when the first young death
	// counted with rounds >= 2 was recorded (fail): the second round of
	// the loop, where the hold for the manager's return starts
	// (holdingLocked), and the moment the hold and the wait for the return
	// are timed from (awaitFrom); moved to a later young death within its
	// crash window (a survivor of the round dying in the hold: the return
	// can come only once none of the revision runs). (A failed spawn,
	// unless blocked, counts in the loop's rounds, and young deaths after
	// failed spawns only are counted at 2 or more already: held from the
	// first.) Why not crashSince: a process spawned after the first death
	// must boot before it can die young; of an app that boots in 5 to
	// 10s, the second round comes near the end of the first death's crash
	// window, or after it, where a hold timed from the first death holds
	// less than the manager takes to return the node, or nothing. This is
	// the one place that says so. Set once a loop; moved only by the death
	// of a worker that began before it: a later round (the hold over, no
	// return came) does not set it again.
	holdFrom time.Time
}

// crashWindow: a worker that exits unexpectedly within this time of being
// ready counts as a failed spawn (a scaling error, and a backoff after the
// first), or an app that boots and then dies would be respawned back to
// back, with the pool reporting itself healthy. The manager waits as long
// before it counts a node's rollout done.
const crashWindow = contract.CrashWindow

var workerIDs struct {
	sync.Mutex
	next int
}

func nextWorkerID() int {
	workerIDs.Lock()
	defer workerIDs.Unlock()
	workerIDs.next++
	return workerIDs.next
}

// New starts a pool: it spawns minProcesses workers and keeps the pool in
// shape until Close.
func New(cfg Config, opts Options) *Pool {
	if opts.Tick <= 0 {
		opts.Tick = time.Second
	}
	if opts.NewTransport == nil {
		panic("pool.New: Options.NewTransport is required (proxy.NewWorkerTransport)")
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &Pool{
		opts:    opts,
		log:     opts.Log,
		name:    cfg.Name,
		ctx:     ctx,
		cancel:  cancel,
		cfg:     cfg,
		started: map[string]bool{},
		lasted:  map[string]bool{},
		steady:  map[string]time.Time{},
		changed: make(chan struct{}),
		kick:    make(chan struct{}, 1),
		done:    make(chan struct{}),
	}
	p.storeLimits(cfg.Template)
	p.wg.Add(1)
	go p.supervise()
	p.kickSupervisor()
	return p
}

// The defaults of proxy.requestBufferLimit and proxy.responseBufferLimit.
const (
	DefaultRequestBufferLimit  = 64 << 20
	DefaultResponseBufferLimit = 1 << 20
)

// RequestBufferLimit is how much of a request's body the proxy reads before
// the request queues for a worker; 0 when the app turned buffering off.
func (p *Pool) RequestBufferLimit() int64 { return p.requestLimit.Load() }

// ResponseBufferLimit is the largest response body the proxy reads whole
// from a worker before it sends it on; 0: none.
func (p *Pool) ResponseBufferLimit() int64 { return p.responseLimit.Load() }

// MaxRequestTime is how long a worker may take to answer a request before
// the proxy gives up on it and calls Overran; 0: no bound.
func (p *Pool) MaxRequestTime() time.Duration { return time.Duration(p.requestTime.Load()) }

func (p *Pool) storeLimits(t ferryv1.AppTemplate) {
	p.requestLimit.Store(requestBufferLimit(t.Proxy))
	p.responseLimit.Store(responseBufferLimit(t.Proxy))
	p.requestTime.Store(int64(durationOr(t.Pool.MaxRequestTime, 0)))
}

func responseBufferLimit(spec ferryv1.ProxySpec) int64 {
	if q := spec.ResponseBufferLimit; q != nil {
		return max(q.Value(), 0)
	}
	return DefaultResponseBufferLimit
}

func requestBufferLimit(spec ferryv1.ProxySpec) int64 {
	switch {
	case spec.RequestBuffering != nil && !*spec.RequestBuffering:
		return 0
	case spec.RequestBufferLimit != nil:
		return max(spec.RequestBufferLimit.Value(), 1)
	}
	return DefaultRequestBufferLimit
}

// Acquire returns a ready worker with a free slot for one request, of
// key (KeyOf; 0: none), waiting in the FIFO queue when every worker is
// busy. The caller must Release it.
func (p *Pool) Acquire(ctx context.Context, key RequestKey) (*Worker, error) {
	p.mu.Lock()
	if w := p.pickLocked(); w != nil {
		w.takeLocked(key)
		p.mu.Unlock()
		return w, nil
	}
	if err := p.refuseLocked(); err != nil {
		p.mu.Unlock()
		return nil, err
	}
	wt := &waiter{ch: make(chan grant, 1), key: key}
	p.queue.push(wt)
	timeout := durationOr(p.cfg.Template.Pool.QueueTimeout, 60*time.Second)
	p.mu.Unlock()
	p.kickSupervisor()

	timer := time.NewTimer(timeout)
	defer timer.Stop()
	var err error
	select {
	case g := <-wt.ch:
		return g.w, g.err
	case <-timer.C:
		err = ErrQueueTimeout
	case <-ctx.Done():
		err = ctx.Err()
	}
	p.mu.Lock()
	if wt.granted {
		// Granted as we gave up: take it rather than waste it.
		p.mu.Unlock()
		g := <-wt.ch
		return g.w, g.err
	}
	p.queue.cancel(wt)
	p.mu.Unlock()
	return nil, err
}

// refuseLocked says why a request that found no free worker may not wait.
func (p *Pool) refuseLocked() error {
	switch {
	case p.closed:
		return ErrClosed
	case p.unavailableLocked():
		return p.unavailableErrLocked()
	case p.queue.n >= int(p.cfg.Template.Pool.MaxRequestQueueSize):
		return ErrQueueFull
	}
	return nil
}

// unavailableLocked: nothing serves, nothing spawns, and the last spawn
// failed and the pool backs off: waiting would only end in a timeout.
// Once the backoff is over, a request waits again, and its wait asks for
// the next attempt (decide). (A pool that resists with no worker left
// spawns one of the revision it resists from: decide.)
func (p *Pool) unavailableLocked() bool {
	for _, w := range p.workers {
		if w.state == ferryv1.ProcessReady || w.state == ferryv1.ProcessSpawning {
			return false
		}
	}
	now := time.Now()
	return p.scaling.err != nil && now.Before(p.scaling.until) && !p.awaitsReturnLocked(now)
}

// awaitsReturnLocked: the pool rolled onto its revision from another, no
// worker of it has lasted, and its workers have been dying young for
// less than crashWindow, counted from the loop's second round once it has
// come (awaitFrom). That is a revision that is ready and dies in its
// first requests, with the rolling restart already over (it retires an
// old worker once its replacement is ready): in a cluster the manager
// returns the node to the revision it rolled from (NodeReturned) about a
// second later, and standalone the pool resists and spawns it. A request
// waits in the queue for that rather than fail for want of a process (a
// day-2 walk saw a node's every request refused for a second, and both
// nodes' with maxConcurrentNodes 2). Past crashWindow with no return, it
// is refused again, and the queue with it (reconcile). With
// resistDeploymentErrors off no return comes (the manager keeps the node
// on its revision; standalone does not resist): refused at once, as ever.
// Nor does one come in a cluster where the revision already ran, rolled
// out, on another node (the AppGroup's provenRevision: every node after
// the first wave gets it so, and the manager says so, Config.Proven): the
// manager keeps a node that cannot run a proven revision on it
// (returnsFromTarget), and the pool backs off and respawns as for any
// crash loop.
//
// While it awaits a return the pool spawns none of the revision from the
// second round of deaths (holdingLocked): each process of it would take a
// waiting request and die in it, and the manager returns the node only
// once a report shows none of it running.
//
// Nor does a pool that resists await one (the manager returns no
// resisting node: FailsTarget), standalone's included: its crash loop is
// of the revision it resists from (code replaced in place), which no
// return mends.
func (p *Pool) awaitsReturnLocked(now time.Time) bool {
	return p.rolledFrom.to == p.cfg.Revision && !p.cfg.Proven && !p.lasted[p.cfg.Revision] && contract.ResistanceAsked(&p.cfg.Template.Restart) &&
		p.resisting == nil && !p.opts.ResistEarlyCrashes &&
		!p.scaling.crashSince.IsZero() && now.Sub(p.scaling.awaitFrom()) < crashWindow
}

// awaitFrom is when the wait for the manager's return of a crash loop
// (awaitsReturnLocked) is timed from: its second round (holdFrom), where
// its spawns are held, once it has come; its first death (crashSince)
// before. The return follows the report that shows none of the revision
// running, which the second round's hold brings about (why the hold is
// not timed from the first death: scalingState.holdFrom).
func (s *scalingState) awaitFrom() time.Time {
	if !s.holdFrom.IsZero() {
		return s.holdFrom
	}
	return s.crashSince
}

// holdingLocked: the pool spawns none of its revision now, awaiting the
// manager's return from it (awaitsReturnLocked), from the second round of
// young deaths of the loop on (rounds: a replacement spawned after a
// death died too), for the crash window from that round (holdFrom, or a
// later death in it: a process of the revision that ran as the hold
// began keeps the manager from returning the node until it dies). The
// first round is not backed off, every process of it: those that die
// together (an OOM sweep, a database blip) are one passing fault, which
// must not cost a node its revision. (Counted in failures, the second
// death of one round held, and the manager returned the node.) A return
// comes within the window, about a second after the agent's report shows
// no process of the revision. If none comes (the manager is away), the
// pool backs off and respawns as for any crash loop, and holds no later
// round: a return not come in a whole window is not coming soon, a held
// request would wait for its queueTimeout where the backoff refuses it
// with a time to retry, and each backoff still reports none of the
// revision running, which a manager back by then returns the node on.
// Derived, not stored: a revision the manager comes to hold proven, or a
// return, ends it at once. A spawn of it in flight is stopped before it
// serves (errHeld), and a rolling restart to it waits before its next
// step (awaitHold).
//
// holdFrom set is the second round (fail sets it at rounds >= 2 only),
// and awaitsReturnLocked times its window from it (awaitFrom), as
// nextSpawnLocked does: one source for when the hold starts and ends.
func (p *Pool) holdingLocked(now time.Time) bool {
	return !p.scaling.holdFrom.IsZero() && p.awaitsReturnLocked(now)
}

// holdsLocked: holdingLocked, of revision.
func (p *Pool) holdsLocked(revision string, now time.Time) bool {
	return revision == p.cfg.Revision && p.holdingLocked(now)
}

// nextSpawnLocked is when the pool may next spawn its revision: the end
// of its backoff, or of its hold (holdingLocked).
func (p *Pool) nextSpawnLocked(now time.Time) time.Time {
	if p.holdingLocked(now) {
		return latest(p.scaling.until, p.scaling.awaitFrom().Add(crashWindow))
	}
	return p.scaling.until
}

// holdSaysLocked is what the log line of a young death that holds the
// revision's spawns says of the hold.
func (p *Pool) holdSaysLocked(now time.Time) []any {
	return []any{"holdFor", p.nextSpawnLocked(now).Sub(now).Round(time.Millisecond).String(), "step", p.scaling.steps,
		"rolledFrom", p.rolledFrom.from.revision}
}

// latest is the later of a and b.
func latest(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// UnavailableError is ErrUnavailable with the time the pool next tries
// to spawn (the end of its backoff): a client's Retry-After.
type UnavailableError struct{ RetryAt time.Time }

func (e *UnavailableError) Error() string        { return ErrUnavailable.Error() }
func (e *UnavailableError) Is(target error) bool { return target == ErrUnavailable }

// unavailableErrLocked is the error of a request refused while
// unavailableLocked.
func (p *Pool) unavailableErrLocked() error {
	return &UnavailableError{RetryAt: p.scaling.until}
}

// pickLocked returns the worker for the next request: pick.
func (p *Pool) pickLocked() *Worker { return pick(p.workers) }

// pick returns the least-busy ready worker with a free slot, the oldest
// among equals, so that surplus workers go idle and can be stopped; but
// one that is leaving (leaving) only when no other has a free slot, so
// that a worker past memoryLimit does not take request after request,
// and grow, while its replacement boots. ws is in the order the workers
// were added.
func pick(ws []*Worker) *Worker {
	var best *Worker
	for _, w := range ws {
		if w.state != ferryv1.ProcessReady || w.sessions >= w.capacity {
			continue
		}
		if best == nil || pickedBefore(w, best) {
			best = w
			if w.sessions == 0 && !w.leaving() {
				break // none comes before it, and later ones are younger
			}
		}
	}
	return best
}

// pickedBefore: a, a ready worker with a free slot, is a better pick
// than b: staying before leaving, then less busy.
func pickedBefore(a, b *Worker) bool {
	if a.leaving() != b.leaving() {
		return b.leaving()
	}
	return a.sessions < b.sessions
}

// leaving: w is flagged for a recycle (memoryLimit, maxRequestsPerProcess):
// it stops once its replacement is ready. A rolling restart's old worker
// whose replacement boots is not: the others may be of the new revision,
// not yet proven, and the restart's tests hold a request at it.
func (w *Worker) leaving() bool { return w.recycle != recycleNone }

// Outcome is how a request ended at its worker, as the proxy tells
// Release.
type Outcome uint8

const (
	// Unanswered, the zero value: no answer came from the worker (it
	// failed the request, died in it, or the request never reached it).
	// A request is unanswered until its answer is seen coming, so that a
	// way to fail forgotten is never taken for an answer.
	Unanswered Outcome = iota
	// Answered: the worker's answer came (its head, at least), and the
	// worker did not die partway through it.
	Answered
)

// Release gives back a worker taken with Acquire after its request ended
// as outcome says.
func (p *Pool) Release(w *Worker, outcome Outcome) {
	now := time.Now()
	p.mu.Lock()
	if w.Exited() {
		w.inRequest = true // the proxy's answer came before watchExit's lock
	} else if outcome == Answered && p.excused.n > 0 && w.sessions == 1 && w.key != 0 && !w.faulty {
		p.answeredLocked(w)
	}
	w.sessions--
	w.processed++
	w.lastUsed = now
	if max := p.cfg.Template.Pool.MaxRequestsPerProcess; max > 0 && w.processed >= max && w.recycle == recycleNone {
		w.recycle = recycleMaxRequests
		p.kickSupervisor()
	}
	switch w.state {
	case ferryv1.ProcessReady:
		p.grantLocked(w)
	case ferryv1.ProcessDraining:
		if w.sessions == 0 {
			closeOnce(w.drained)
		}
	}
	p.mu.Unlock()
}

// Unreachable takes a worker whose socket refused a connection out of
// routing at once and retires it: a worker that does not accept is dying
// (killed, not yet reaped: its least-busy slot would otherwise attract
// every request in that window) or broken. The supervisor replaces it.
func (p *Pool) Unreachable(w *Worker) {
	p.mu.Lock()
	if w.state != ferryv1.ProcessReady {
		p.mu.Unlock()
		return
	}
	w.faulty = true
	w.foundDying = time.Now()
	delete(p.steady, w.Revision)
	p.drainLocked(w)
	p.notifyLocked()
	p.mu.Unlock()
	if !w.Exited() {
		p.log.Info("Worker refused a connection; replacing it", "pid", w.PID())
	}
	p.goBackground(func() { p.retire(context.Background(), w, "unreachable") })
	p.kickSupervisor()
}

// Overran kills w at once, as Passenger Enterprise's max_request_time
// does: a request at it went unanswered for maxRequestTime (the proxy
// answers it 504). A worker stuck in a request would not stop on SIGTERM
// (the WSGI loader finishes its request first), and would hold its slot
// for good. Its other requests, if it takes several, fail with it. The
// kill is no crash: no backoff follows it, and the supervisor replaces
// the worker as the pool's scaling asks (none in a pool above
// minProcesses with nothing queued). path and limit (the maxRequestTime
// it ran under) are the overrunning request's, for the log.
func (p *Pool) Overran(w *Worker, path string, limit time.Duration) {
	p.mu.Lock()
	if w.state != ferryv1.ProcessReady && w.state != ferryv1.ProcessDraining {
		p.mu.Unlock()
		return // stopping already, or gone
	}
	p.drainLocked(w)
	p.transitionLocked(w, EventStop)
	w.faulty = true
	delete(p.steady, w.Revision)
	p.notifyLocked()
	p.mu.Unlock()
	w.stopped.Store(overranCause(limit))
	p.log.Info("Killing worker: a request's answer did not come, or did not end, within maxRequestTime "+
		"(no answer, no whole buffered one, or the rest of one whose client left)", "pid", w.PID(),
		"revision", w.Revision, "maxRequestTime", limit.String(), "path", LoggedPath(path))
	if p.opts.Observer != nil {
		p.opts.Observer.WorkerOverran(p.name)
	}
	p.goBackground(w.proc.Kill)
	p.kickSupervisor()
}

// grantLocked hands w's free slots to waiting requests, oldest first.
func (p *Pool) grantLocked(w *Worker) {
	for w.sessions < w.capacity {
		wt := p.queue.pop()
		if wt == nil {
			return
		}
		w.takeLocked(wt.key)
		wt.granted = true
		wt.ch <- grant{w: w}
	}
}

// failQueueLocked answers every waiting request with err.
func (p *Pool) failQueueLocked(err error) {
	for wt := p.queue.pop(); wt != nil; wt = p.queue.pop() {
		wt.granted = true
		wt.ch <- grant{err: err}
	}
}

// Update applies a new config. A new revision starts a restart to it and
// ends deployment error resistance; other changes apply at once.
func (p *Pool) Update(cfg Config) {
	p.mu.Lock()
	old := p.cfg
	p.cfg = cfg
	p.storeLimits(cfg.Template)
	if cfg.Revision != old.Revision {
		p.asked++
		if p.resisting != nil {
			p.log.Info("Left deployment error resistance", "revision", cfg.Revision, "resisted", p.resisting.Revision,
				"error", p.resisting.Reason)
			p.resisting, p.resistFrom = nil, spawnable{}
		}
		// A revision the operator asked for deserves a fresh attempt: its
		// spawns after any backoff, and its restart on every old worker,
		// those an earlier restart to it gave up on too (the revision may
		// be asked for again after another: 2, 1, 2).
		p.scaling = scalingState{}
		p.gaveUp, p.givenUpFor = nil, ""
		p.rolledFrom = rollingFrom{}
		p.forgetStartedLocked()
		if p.lastRestart != nil && p.lastRestart.Revision == cfg.Revision {
			// An earlier attempt at it says nothing of this one: until this
			// one's restart starts, its summary would pass for this one's
			// outcome (restart --wait, RolloutIncomplete).
			p.lastRestart = nil
		}
	}
	if cfg.Template.Pool.MaxRequestsPerProcess != old.Template.Pool.MaxRequestsPerProcess {
		for _, w := range p.workers {
			if w.recycle == recycleMaxRequests {
				w.recycle = recycleNone
			}
		}
	}
	p.mu.Unlock()
	p.notify()
	p.kickSupervisor()
}

// forgetStartedLocked keeps, of the revisions that started and of the
// env values read for them, the target's and those of live workers: a
// pool that rolls through many revisions does not remember them all.
func (p *Pool) forgetStartedLocked() {
	for rev := range p.started {
		if !p.runsRevisionLocked(rev) {
			delete(p.started, rev)
			delete(p.lasted, rev)
			delete(p.steady, rev)
		}
	}
	// Right here only, where a new revision has just cleared resistFrom
	// and rolledFrom: elsewhere a revision no worker runs may still be
	// spawned (resisting, it is resistFrom's).
	p.envMemory.Keep(p.runsRevisionLocked)
}

// runsRevisionLocked reports whether rev is the target or a live
// worker's revision.
func (p *Pool) runsRevisionLocked(rev string) bool {
	return rev == p.cfg.Revision || slices.ContainsFunc(p.workers, func(w *Worker) bool { return w.Revision == rev })
}

// noteLastedLocked records the revisions of which a ready worker has now
// lived past crashWindow, or which have been steady for it: a worker of
// the revision ready throughout, none dying meanwhile (steady). A
// revision with no worker ready is steady no more.
func (p *Pool) noteLastedLocked(now time.Time) {
	for _, w := range p.workers {
		if w.pastCrashWindowLocked(now) {
			p.lastedLocked(w)
		}
	}
	for rev, since := range p.steady {
		i := slices.IndexFunc(p.workers, func(w *Worker) bool { return w.Revision == rev && w.state == ferryv1.ProcessReady })
		switch {
		case i < 0:
			delete(p.steady, rev)
		case now.Sub(since) >= crashWindow && !p.lasted[rev]:
			p.lastedLocked(p.workers[i])
		}
	}
}

// pastCrashWindowLocked reports whether w is ready and, at now, has been
// for crashWindow: a worker that lasted (noteLastedLocked). The one rule,
// that the tests' pool.LastedPIDs reads too.
func (w *Worker) pastCrashWindowLocked(now time.Time) bool {
	return w.state == ferryv1.ProcessReady && now.Sub(w.readyAt) >= crashWindow
}

// lastedLocked records that w, ready, has lived past crashWindow, or
// that its revision has been steady for it, then takes w as having served
// (servedLocked).
func (p *Pool) lastedLocked(w *Worker) {
	if !p.lasted[w.Revision] {
		p.lasted[w.Revision] = true
		p.notifyLocked() // the status says so (RevisionLasted)
	}
	p.servedLocked(w)
}

// servedLocked takes w as having served well: it lasted, or served until
// it was recycled (recycledAfterServing). A worker that came up after a
// run of deaths began ends it: a crash loop's failures are forgotten (the
// next crash is a first one again, not backed off), and so are the young
// deaths in a request excused so far. It proves its revision only once
// it lasted (lastedLocked): one served request alone does not.
func (p *Pool) servedLocked(w *Worker) {
	if p.excused.n > 0 && w.readyAt.After(p.excused.since) {
		p.excused = excusedDeaths{}
	}
	if loop := p.scaling.loopSince; !loop.IsZero() && p.scaling.err == nil && w.readyAt.After(loop) {
		of := "Recovered from crashes soon after ready"
		if p.scaling.crashSince.IsZero() {
			of = "Recovered from failed spawns"
		}
		how := "a worker has lived past the crash window"
		switch {
		case w.state == ferryv1.ProcessStopping:
			how = "a worker served until it was recycled"
		case time.Since(w.readyAt) < crashWindow:
			how = "the revision has served the crash window through with no death"
		}
		p.log.Info(of+": "+how, "revision", w.Revision, "pid", w.PID(), "failures", p.scaling.failures, "window", crashWindow.String())
		p.scaling = scalingState{}
	}
}

// Config returns the pool's current config.
func (p *Pool) Config() Config {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cfg
}

// Changed returns a channel that is closed at the pool's next change of
// state. Read the Status after it fires; call Changed again to wait again.
func (p *Pool) Changed() <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.changed
}

func (p *Pool) notify() {
	p.mu.Lock()
	p.notifyLocked()
	p.mu.Unlock()
}

func (p *Pool) notifyLocked() {
	close(p.changed)
	p.changed = make(chan struct{})
}

func (p *Pool) kickSupervisor() {
	select {
	case p.kick <- struct{}{}:
	default:
	}
}

// Stopping says the pool is about to close: its ProcessPool or AppGroup is
// gone, or its agent stops, and it serves on only through the drain delay
// and its proxy's drain. It rolls no more: no restart starts, and one under
// way ends (aborted) once its step in progress is over. The workers of a
// new revision would serve no one for long, and each step would hold the
// stop up by a spawn and a retire. It scales and replaces crashed workers
// as before: its requests still need them.
func (p *Pool) Stopping() {
	p.mu.Lock()
	p.stopping = true
	p.notifyLocked() // wakes a restart sleeping out a backoff
	p.mu.Unlock()
}

// Close stops the pool: waiting requests get ErrClosed, and every worker is
// drained and stopped, in parallel, within one shutdownTimeout in all: its
// requests' wait and, after SIGTERM, its exit's share it (retire), so that
// the agent's stop, which its grace period must cover, takes one timeout,
// not two. Requests already given a worker finish first, within ctx. A
// deadline of ctx sooner than one shutdownTimeout ends the stop by then:
// the agent's stop drained its proxy first and spent part of the timeout.
func (p *Pool) Close(ctx context.Context) {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		<-p.done
		return
	}
	p.closed = true
	p.closeBy = closeDeadline(ctx, time.Now(), durationOr(p.cfg.Template.Pool.ShutdownTimeout, time.Minute))
	p.failQueueLocked(ErrClosed)
	workers := slices.Clone(p.workers)
	busy := 0
	for _, w := range workers {
		busy += w.sessions
	}
	by := p.closeBy
	p.notifyLocked() // wakes a restart sleeping out a backoff
	p.mu.Unlock()
	p.cancel() // spawns in flight give up
	p.kickSupervisor()
	if busy > 0 {
		// Else an agent's stop says nothing between its drain and the
		// pool's end, which a long request can put a minute apart.
		p.log.Info("Closing pool: waiting for the requests under way before stopping the workers", "requests", busy,
			"upTo", max(time.Until(by), 0).Round(100*time.Millisecond).String()) // a deadline past: no wait, not a negative one
	}

	var wg sync.WaitGroup
	for _, w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p.retire(ctx, w, "agent shutdown")
		}()
	}
	wg.Wait()
	p.wg.Wait()
	close(p.done)
}

// closeDeadline is when a pool closed at now must have stopped: one
// timeout later, or at ctx's deadline if that comes first.
func closeDeadline(ctx context.Context, now time.Time, timeout time.Duration) time.Time {
	by := now.Add(timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(by) {
		return d
	}
	return by
}

// supervise keeps the pool in shape: it reacts to kicks (a queued request,
// an exit, a finished spawn, a new config) and ticks (idle workers, memory,
// backoff expiry).
func (p *Pool) supervise() {
	defer p.wg.Done()
	ticker := time.NewTicker(p.opts.Tick)
	defer ticker.Stop()
	for {
		select {
		case <-p.kick:
		case <-ticker.C:
			p.sample()
		}
		if !p.reconcile() {
			return
		}
	}
}

// reconcile decides and starts what the pool needs now. It returns false
// once the pool is closed and no background work remains to start.
func (p *Pool) reconcile() bool {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return false
	}
	if p.restart == nil && p.stepping == nil && p.resisting == nil && p.needsRestartLocked() {
		p.startRestartLocked()
	}
	v := p.viewLocked(time.Now())
	d := decide(v)
	p.noteLastedLocked(v.now)
	p.clearPassedScalingErrorLocked(v, d)
	w := p.takeWorkLocked(d)
	if p.queue.n > 0 && p.unavailableLocked() {
		p.failQueueLocked(p.unavailableErrLocked()) // a wait for a return ran out (awaitsReturnLocked)
	}
	p.mu.Unlock()
	p.startWork(w)
	return true
}

// work is what one reconcile starts: the workers it registered to spawn,
// those it took to stop as idle, and the one to recycle, or to shut down
// above memoryLimit while resisting.
type work struct {
	spawns, stops     []*Worker
	recycle, shutdown *Worker
}

// takeWorkLocked registers and takes the workers d asks for, so that no
// later decision counts them again: the spawns (of the revision
// resistance keeps serving, while it resists), the idle workers to stop
// (Draining at once), and the worker to recycle or shut down (recycling
// set until that is over).
func (p *Pool) takeWorkLocked(d decision) work {
	next := p.targetLocked()
	if p.resisting != nil && d.spawn > 0 {
		next = p.resistFrom
		p.log.Info("Replacing exited workers with the revision resistance keeps serving",
			"revision", next.revision, "spawns", d.spawn)
	}
	var w work
	for range d.spawn {
		w.spawns = append(w.spawns, p.addSpawningLocked(next))
	}
	w.stops = p.takeWorkersLocked(d.stop)
	if d.recycle >= 0 {
		w.recycle = p.workerLocked(d.recycle)
		p.recycling = w.recycle != nil
	}
	if d.shutdown >= 0 {
		w.shutdown = p.workerLocked(d.shutdown)
		p.recycling = w.shutdown != nil
	}
	return w
}

// startWork starts w in the background.
func (p *Pool) startWork(w work) {
	for _, y := range w.spawns {
		p.goBackground(func() { p.scaleSpawn(y) })
	}
	for _, x := range w.stops {
		p.goBackground(func() { p.retire(context.Background(), x, "idle") })
	}
	if w.recycle != nil {
		p.goBackground(func() { p.recycle(w.recycle) })
	}
	if w.shutdown != nil {
		p.goBackground(func() {
			p.log.Info("Stopped worker above memoryLimit without replacement while resisting a deployment error",
				"pid", w.shutdown.PID())
			p.retire(context.Background(), w.shutdown, string(recycleMemory))
			p.setRecycling(false)
		})
	}
	if len(w.spawns)+len(w.stops) > 0 {
		p.notify()
	}
}

// clearPassedScalingErrorLocked clears the scaling error once the pool
// has backed off, needs no spawn now (as v and d say), and the revision
// serves: the error is of a need that passed (a spike), not of the pool
// as it is. (A revision with no process ready keeps its error: its app
// cannot start, whether or not anything asks for it now.) The failure
// count and backoff steps stay, so that the next spike's first failure
// backs off as long as this one's last did. "Backed off" is the view's
// next spawn (nextSpawnLocked), the hold for the manager's return
// included: a hold is no need that passed, and its error and retry time
// stay in the status while it holds, a survivor of the loop serving.
// With the error cleared by a retry ready already, it ends a run of
// failed spawns whose retries the pool stopped itself
// (retriesGoneLocked).
func (p *Pool) clearPassedScalingErrorLocked(v view, d decision) {
	if v.now.Before(v.backoff) || d.spawn > 0 || d.recycle >= 0 || v.spawning > 0 || p.restart != nil || p.recycling {
		return
	}
	switch {
	case p.scaling.err != nil:
		if p.readyOfRevisionLocked(p.scaling.err.Revision) == 0 {
			return
		}
		p.log.Info("Cleared scaling error: the pool needs no spawn now", "revision", p.scaling.err.Revision)
		p.scaling.err = nil
		if p.scaling.crashSince.IsZero() {
			// A loop of failed spawns ends with their need; the next spawn
			// that works starts the count over (spawnWorkedLocked). One with
			// young deaths goes on until a worker lasts: its survivors, ready
			// and not needed now, may die young yet.
			p.scaling.loopSince = time.Time{}
		}
	case p.retriesGoneLocked():
		p.log.Info("Ended the run of failed spawns: the pool stopped their retries before they lived the crash window, and needs no spawn now",
			"revision", p.scaling.last.Revision, "failures", p.scaling.failures)
		// As for a need that passed, a spawn having worked since: the count
		// starts over, the backoff stays.
		p.scaling.loopSince, p.scaling.rounds = time.Time{}, 0
	default:
		return
	}
	p.notifyLocked()
}

// retriesGoneLocked: a run of failed spawns only (no young death in it:
// crashSince), their error cleared by a retry ready (spawnWorkedLocked),
// has no worker left that came up since it began: none can end it by
// lasting or serving (servedLocked), as the pool stopped them (min or
// max lowered, idle, refusing connections) before they lived the crash
// window. Kept, its count would say "1 round" beside its failure for good,
// and a failure hours later would count as its second round. A worker
// still draining counts as left: it may yet die young, the run's next
// round.
func (p *Pool) retriesGoneLocked() bool {
	s := &p.scaling
	if s.err != nil || s.loopSince.IsZero() || !s.crashSince.IsZero() || s.last == nil {
		return false
	}
	return !slices.ContainsFunc(p.workers, func(w *Worker) bool {
		return w.Revision == s.last.Revision && w.readyAt.After(s.loopSince)
	})
}

func (p *Pool) goBackground(f func()) {
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		f()
	}()
}

func (p *Pool) setRecycling(v bool) {
	p.mu.Lock()
	p.recycling = v
	p.mu.Unlock()
	p.kickSupervisor()
}

func (p *Pool) viewLocked(now time.Time) view {
	pool := p.cfg.Template.Pool
	v := view{
		now:       now,
		min:       int(pool.MinProcesses),
		max:       int(pool.MaxProcesses),
		queued:    p.queue.n,
		frozen:    p.resisting != nil,
		restart:   p.stepping != nil, // an orphaned restart's step too
		paused:    p.restart != nil && p.restart.strategy == ferryv1.RestartBlocking,
		recycling: p.recycling,
		backoff:   p.nextSpawnLocked(now),
		idle:      durationOr(pool.IdleTimeout, 5*time.Minute),
	}
	for _, w := range p.workers {
		switch w.state {
		case ferryv1.ProcessReady:
			v.ready++
			v.workers = append(v.workers, workerView{id: w.ID, sessions: w.sessions, lastUsed: w.lastUsed, recycle: w.recycle,
				replacing: w.replacing})
		case ferryv1.ProcessSpawning:
			v.spawning++
		}
	}
	return v
}

func (p *Pool) workerLocked(id int) *Worker {
	for _, w := range p.workers {
		if w.ID == id {
			return w
		}
	}
	return nil
}

// takeWorkersLocked marks the given ready workers Draining at once, so no
// other decision picks them, and returns them.
func (p *Pool) takeWorkersLocked(ids []int) []*Worker {
	var out []*Worker
	for _, id := range ids {
		if w := p.workerLocked(id); w != nil && w.state == ferryv1.ProcessReady {
			p.drainLocked(w)
			out = append(out, w)
		}
	}
	return out
}

// addSpawningLocked registers a worker about to be spawned, so the next
// decision counts it.
func (p *Pool) addSpawningLocked(s spawnable) *Worker {
	w := &Worker{
		ID:        nextWorkerID(),
		Revision:  s.revision,
		state:     ferryv1.ProcessSpawning,
		startedAt: time.Now(),
		capacity:  max(1, int(s.tmpl.App.Concurrency)),
		tmpl:      s.tmpl,
		drained:   make(chan struct{}),
		gone:      make(chan struct{}),
	}
	p.workers = append(p.workers, w)
	return w
}

// errResisted: the spawn worked, but of the revision the pool came to
// resist meanwhile (a scale spawn, a recycle's or a rolling restart's
// replacement, in flight as a worker of it died young): the worker is
// stopped before it serves, as it would serve a revision known not to
// work (boot-and-die: its requests would fail as it dies), and no
// restart replaces it while the pool resists. A restart's step keeps its
// old worker (keepOldLocked).
var errResisted = errors.New("the pool resists the worker's revision")

// errHeld: the spawn worked, but the pool came to await the manager's
// return from the worker's revision meanwhile (holdsLocked): its
// processes die young, and this one would take a waiting request and die
// in it. It is stopped before it serves; a restart's step keeps its old
// worker and waits (awaitHold).
var errHeld = errors.New("the pool holds the spawns of the worker's revision for the manager's return")

// refusedSpawn: err is no failure of the spawn, which the pool refused
// or gave up (closed, resisted, held); nothing to record.
func refusedSpawn(err error) bool {
	return errors.Is(err, ErrClosed) || errors.Is(err, errResisted) || errors.Is(err, errHeld)
}

// spawn runs the spawn of a registered worker and makes it Ready, or
// removes it and returns the failure.
func (p *Pool) spawn(w *Worker, kind SpawnKind) error {
	if p.opts.Observer != nil {
		p.opts.Observer.SpawnStarted(p.name, kind)
	}
	started := time.Now()
	proc, err := spawn.Spawn(p.ctx, p.spawnSpec(w))
	var startRSS int64 // its size as it starts, before any request (memoryLimit)
	if err == nil {
		_, startRSS, _ = readProcStat(proc.PID)
	}

	p.mu.Lock()
	if err != nil {
		p.removeLocked(w)
		p.notifyLocked()
		closed := p.closed
		p.mu.Unlock()
		if closed {
			return ErrClosed
		}
		return err
	}
	if refused := p.refuseSpawnedLocked(w); refused != nil {
		p.removeLocked(w)
		p.notifyLocked()
		timeout := waitWithin(durationOr(w.tmpl.Pool.ShutdownTimeout, time.Minute), p.closeBy)
		p.mu.Unlock()
		switch {
		case errors.Is(refused, errResisted):
			p.log.Info("Stopped a new worker of the revision the pool resists: its spawn began before the pool came to resist it",
				"pid", proc.PID, "revision", w.Revision)
		case errors.Is(refused, errHeld):
			p.log.Info("Stopped a new worker of a revision whose processes die young: its spawn began before the pool came to await the manager's return from it",
				"pid", proc.PID, "revision", w.Revision)
		}
		proc.Stop(timeout)
		return refused
	}
	p.readyLocked(w, proc, startRSS)
	p.notifyLocked()
	p.mu.Unlock()

	if p.opts.Observer != nil {
		p.opts.Observer.SpawnSucceeded(p.name, time.Since(started))
	}
	p.log.Info("Spawned worker", "pid", proc.PID, "revision", w.Revision, "duration", time.Since(started).Round(time.Millisecond).String())
	p.goBackground(func() { p.watchExit(w) })
	return nil
}

// spawnSpec is what spawns w: its template's app, as of its revision.
func (p *Pool) spawnSpec(w *Worker) spawn.Spec {
	return spawn.Spec{
		App:          w.tmpl.App,
		Revision:     w.Revision,
		StartTimeout: durationOr(w.tmpl.Pool.StartTimeout, 90*time.Second),
		RunDir:       p.opts.RunDir,
		LoaderPath:   p.opts.LoaderPath,
		Log:          p.log,
		Users:        p.opts.WorkerUsers,
		EnvFrom:      p.opts.EnvFrom,
		EnvMemory:    &p.envMemory,
	}
}

// refuseSpawnedLocked says why w, whose process is up, may not serve: the
// pool closed meanwhile (ErrClosed), came to resist its revision
// (errResisted), or holds its spawns awaiting the manager's return from
// it (errHeld); nil when it may. Decided under the lock that makes w
// ready, so that no waiting request is handed to it first (readyLocked).
func (p *Pool) refuseSpawnedLocked(w *Worker) error {
	switch {
	case p.closed:
		return ErrClosed
	case p.resisting != nil && w.Revision == p.resisting.Revision:
		return errResisted
	case p.holdsLocked(w.Revision, time.Now()):
		return errHeld
	}
	return nil
}

// readyLocked puts w, its process proc up, in service: Ready, handed
// waiting requests, its revision started.
func (p *Pool) readyLocked(w *Worker, proc *spawn.Process, startRSS int64) {
	w.proc = proc
	w.stats.startRSS = startRSS
	w.startedAt = proc.StartedAt
	w.lastUsed = time.Now()
	w.readyAt = w.lastUsed
	p.transitionLocked(w, EventReady)
	p.started[w.Revision] = true
	if _, ok := p.steady[w.Revision]; !ok {
		p.steady[w.Revision] = w.readyAt
	}
	w.Transport = p.opts.NewTransport(w)
	p.grantLocked(w)
	p.spawnWorkedLocked(w.Revision)
	// A worker that came up on a revision that is no longer the target
	// (its spawn began before a new revision was asked for) is replaced
	// by the next restart: wake the supervisor.
	if w.Revision != p.cfg.Revision {
		p.kickSupervisor()
	}
}

// spawnWorkedLocked ends the scaling error recorded for revision, a spawn
// of which is ready: the condition must not keep saying "failing" at
// steady state. It recovers nothing yet: a worker ready that dies young
// is the loop's next failed round, whether the failures before it were
// young deaths or failed spawns (an app that sometimes fails to boot and
// otherwise dies young would start its count over at every spawn that
// boots, and never be held or found looping). The loop ends, and says
// so, once a worker has lasted or served until it was recycled
// (servedLocked).
func (p *Pool) spawnWorkedLocked(revision string) {
	if p.scaling.err == nil && p.scaling.loopSince.IsZero() && p.scaling.last != nil && p.scaling.last.Revision == revision {
		// The error of a need that passed (clearPassedScalingErrorLocked):
		// the count the status reports starts over, the backoff stays.
		p.scaling.rounds = 0
	}
	if p.scaling.last != nil && p.scaling.last.Revision == revision {
		// Blocked spawns (a port since freed, a Secret since granted) are
		// over once one works: no run of them goes on (fail).
		p.scaling.blockedRounds = 0
	}
	if p.scaling.err != nil && p.scaling.err.Revision == revision {
		p.scaling.err = nil
	}
}

// scaleSpawn grows the pool by one worker; a failure is a scaling error.
func (p *Pool) scaleSpawn(w *Worker) {
	err := p.spawn(w, SpawnScale)
	switch {
	case err == nil, refusedSpawn(err):
	default:
		p.recordScalingError(w, err, SpawnScale)
	}
	p.notify()
	p.kickSupervisor()
}

// recordScalingError backs off after a failed spawn that is not a
// deployment error, and fails waiting requests if nothing can serve them.
// A failed spawn of a revision the pool spawns no more (it began before a
// newer revision was asked for, or before the pool came to resist its
// own) is only recorded: as a scaling error it would stay, no worker of
// the revision being ever ready again to clear it, and its backoff would
// hold up the spawns of the revision the pool does spawn.
func (p *Pool) recordScalingError(w *Worker, err error, kind SpawnKind) {
	revision := w.Revision
	p.mu.Lock()
	retried := p.spawnsRevisionLocked(revision)
	var (
		wait    time.Duration
		backoff []any
	)
	if retried {
		wait, backoff = p.backOffLocked(revision, err, false, w.startedAt, time.Now())
	} else {
		p.lastErr = spawnError(revision, err)
	}
	if p.unavailableLocked() {
		p.failQueueLocked(p.unavailableErrLocked())
	}
	p.notifyLocked()
	p.mu.Unlock()
	if !retried {
		p.reportFailure("Spawn failed of a revision the pool spawns no more; not retried", revision, err, kind)
		return
	}
	p.reportFailure(backoffLine("Spawn failed", wait), revision, err, kind, backoff...)
}

// backoffLine is the line that logs a failure the pool backs off after
// (failure: a failed spawn, or a young death as good as one): "backing
// off" only when it waits before the next attempt (wait, what the line's
// "backoff" says), else "not backing off". A wait of none is no backoff:
// the first round of young deaths backs off none (fail), nor does a
// failure of a round whose backoff is already over. The line speaks of
// the wait, not of an attempt: whether one follows is the pool's scaling
// (decide: up to minProcesses, or one more for a queued request outside
// a restart and, while resisting, only with no worker left), and a pool
// above its minimum with no request queued replaces nobody.
func backoffLine(failure string, wait time.Duration) string {
	if wait > 0 {
		return failure + "; backing off"
	}
	return failure + "; not backing off"
}

// backOffLocked records a failed spawn, or a crash soon after one, of an
// attempt begun at began (the worker's startedAt) and found failing at
// failed, and returns how long the pool backs off from now (wait, as
// the log says it: to the millisecond) and what the failure's log line
// says of it (fail): "backoff", that wait, and "step", the step the
// failure is counted in (the failures of one round share it). The caller
// fails the queue if nothing can serve it now.
func (p *Pool) backOffLocked(revision string, err error, crash bool, began, failed time.Time) (wait time.Duration, kvs []any) {
	se := spawnError(revision, err)
	p.lastErr = se
	p.scaling.err, p.scaling.last = se, se
	p.scaling.blocked = !crash && notTheRevisions(err)
	now := time.Now()
	wait = max(0, p.scaling.fail(now, began, failed, crash, p.scaling.blocked).Sub(now)).Round(time.Millisecond)
	return wait, []any{"backoff", wait.String(), "step", p.scaling.steps}
}

// fail records, at now, a failed attempt begun at began and found failing
// at failed (a spawn, or a worker that crashed soon after it was ready:
// crash), and returns when the next attempt may be made. The backoff grows one step per round of
// attempts that fail, not per failure: a failure of an attempt begun
// before the last step was taken is of the round that took it (processes
// that die together as their database goes away or an OOM sweep kills
// them, spawns started together for minProcesses or by a blocking
// restart) and keeps that step's backoff, as a spawn throttle per pool
// would; counted all the same (failures), but N of them together no
// longer push the next attempts out N steps (1s to 16s for 4). The
// attempts made once the backoff is over are the next round, and so are
// those made once the failure was found: a worker the proxy found dying
// (it refused a connection) is replaced before its exit is recorded, and
// that replacement is the next attempt, not one of its round. A first
// crash backs off none, nor do the others of its round (a replacement
// follows the pool's scaling), also where the pool awaits the manager's
// return from the revision, which it holds the spawns for only from the
// second round (holdingLocked, rounds), timed from when that round's
// first young death was recorded (holdFrom).
func (s *scalingState) fail(now, began, failed time.Time, crash, blocked bool) time.Time {
	s.failures++
	round := !began.Before(s.steppedAt)
	if round {
		s.steps++
		s.steppedAt = failed
		n := s.steps
		if crash {
			n--
		}
		s.until = now.Add(backoffAfter(n))
	}
	if blocked {
		// No fault of the revision's: it backs off all the same (the port
		// may be freed, the Secret granted), but opens no run and is no
		// round of one, which the hold and the restart waits read as the
		// revision's (rounds): a machine's fault and one passing fault
		// must not cost a node its revision. Its own count is what the
		// status reports beside it (counted).
		if round {
			s.blockedRounds++
		} else {
			s.blockedRounds = max(s.blockedRounds, 1)
		}
		return s.until
	}
	s.blockedRounds = 0
	if s.loopSince.IsZero() {
		s.loopSince = now
	}
	if crash && s.crashSince.IsZero() {
		s.crashSince = now
	}
	if round {
		s.rounds++
	} else {
		// Of the last step's round; a round too if the count it reports
		// started over since (rounds).
		s.rounds = max(s.rounds, 1)
	}
	if crash && s.rounds >= 2 && (s.holdFrom.IsZero() || began.Before(s.holdFrom) && now.Sub(s.holdFrom) < crashWindow) {
		// The hold starts at the second round. A young death within its
		// window of a worker begun before it (a survivor of the round
		// that started it, whose survival kept the manager from returning
		// the node: the report showed the revision running) moves it to
		// that death. At most one window more: such a worker was ready
		// before the hold began (a spawn in flight then is stopped before
		// it serves), so it dies young within one window of it, or not at
		// all. A worker begun since (a pool that holds nothing spawns) is
		// of a later round, which does not set it again.
		s.holdFrom = now
	}
	return s.until
}

// counted is the count of failed rounds the status reports beside last
// (SpawnFailures): of blocked failures in a row while last is one, else
// of the revision's own run (rounds).
func (s *scalingState) counted() int {
	if s.blocked {
		return s.blockedRounds
	}
	return s.rounds
}

// reportFailure logs a failed spawn (msg says which kind of failure, kvs
// what follows from it) and counts it.
func (p *Pool) reportFailure(msg, revision string, err error, kind SpawnKind, kvs ...any) {
	if p.opts.Observer != nil {
		p.opts.Observer.SpawnFailed(p.name, kind)
	}
	p.log.Error(err, msg, append([]any{"revision", revision, "kind", kind}, kvs...)...)
}

// watchExit removes a worker once its process exits; an exit in Ready is a
// crash: the supervisor spawns a replacement if the pool is below min.
func (p *Pool) watchExit(w *Worker) {
	<-w.proc.Done()
	p.mu.Lock()
	prev := w.state
	unexpected := prev == ferryv1.ProcessReady || prev == ferryv1.ProcessDraining
	lived := time.Since(w.readyAt)
	inRequest := w.inRequest || w.sessions > 0
	p.exitSaysLocked(w, prev, unexpected, lived)
	// A pool that closes judges no death (nothing is spawned after it):
	// none joins a run of excused deaths, is logged as a request of death,
	// or counts as a crash of its app; its exit line says only where it
	// died (exitLogLine). The one place the rule is kept.
	judged := unexpected && !p.closed
	ofRequest := judged && inRequest && p.ofRequestLocked(w, lived)
	p.transitionLocked(w, EventExit)
	p.removeLocked(w)
	stepDoneLocked(p.restart, w)
	closeOnce(w.drained)
	close(w.gone)
	var young youngDeath
	if judged && !ofRequest {
		young = p.youngDeathLocked(w, lived, inRequest)
	}
	// Backing off with no worker left, nothing will serve the waiting
	// requests.
	if p.unavailableLocked() {
		p.failQueueLocked(p.unavailableErrLocked())
	}
	p.notifyLocked()
	p.mu.Unlock()
	if t, ok := w.Transport.(interface{ CloseIdleConnections() }); ok {
		t.CloseIdleConnections()
	}
	p.reportExit(w, unexpected, inRequest, ofRequest, young)
	p.kickSupervisor()
}

// youngDeath is what the pool made of a worker's unexpected death within
// crashWindow of ready (youngDeathLocked): crash, as good as a failed
// spawn, nil if it was none; resisted, that the pool came to resist its
// revision for it; held, that it holds the revision's spawns for the
// manager's return (holdingLocked); backoff, the failure's backoff
// or hold otherwise, as the log says it; wait, how long that backoff is.
type youngDeath struct {
	crash    error
	resisted bool
	held     bool
	backoff  []any
	wait     time.Duration
}

// youngDeathLocked judges the unexpected death of w, lived after ready,
// in a pool that is not closing (watchExit), not taken as its request's
// (ofRequestLocked).
//
// A crash soon after the worker was ready is as good as a failed
// spawn: back off before the next, decided under this lock so that no
// reconcile respawns it first. (The loop ends once a worker ready
// since it began has lasted or served until it was recycled:
// servedLocked.)
//
// Not a crash in a request of a revision whose app is known to stay
// up (lasted): a request killed it (one URL, one input), and the next
// process may serve every other request; as Passenger, the request
// gets 502 and no backoff holds up a replacement. Backing off would
// leave the pool empty under a stream of such requests (each
// replacement is younger than the window), answering every request
// 503. Of a revision not yet known to stay up (a new one, mid-
// rollout), one death in a request cannot be told from an app that
// dies on its own: under load a request is nearly always at a
// process. The first of a run is the request's; from the second, the
// deaths count unless they are of one request of death
// (excuseUnproven), so that a revision that boots and dies halts its
// rollout under load too. Nor more than maxExcused in a row (excuseLocked):
// code of a lasted revision broken in place dies the same way; unless
// every death of the run was in a request of one key while others
// were answered (deadly): one URL must not take the app down.
func (p *Pool) youngDeathLocked(w *Worker, lived time.Duration, inRequest bool) youngDeath {
	if lived >= crashWindow || !p.spawnsRevisionLocked(w.Revision) {
		return youngDeath{}
	}
	reason := contract.YoungDeathReason(w.proc.DescribeExit(), lived)
	switch {
	case inRequest && p.lasted[w.Revision]:
		reason += fmt.Sprintf(", while handling a request (more than %d such deaths in a row: taken as the app's)", maxExcused)
	case inRequest:
		reason += ", while handling a request (not the first death in a row, and no process of this revision has lived past the crash window yet)"
	}
	d := youngDeath{crash: &spawn.Error{Reason: reason, Output: w.proc.Output()}}
	if d.resisted = p.resistCrashLocked(w, d.crash); !d.resisted {
		failed := time.Now()
		if !w.foundDying.IsZero() {
			failed = w.foundDying
		}
		d.wait, d.backoff = p.backOffLocked(w.Revision, d.crash, true, w.startedAt, failed)
		if now := time.Now(); p.holdingLocked(now) {
			d.held, d.backoff = true, p.holdSaysLocked(now)
		}
	}
	return d
}

// reportExit logs and counts w's exit: unexpected, with a request at it
// (inRequest), taken as its request's (ofRequest), and what the pool made
// of it (young).
func (p *Pool) reportExit(w *Worker, unexpected, inRequest, ofRequest bool, young youngDeath) {
	switch {
	case young.resisted:
		p.reportResisting(w.Revision, young.crash)
	case young.held:
		p.reportFailure("Worker crashed soon after it was ready; spawning none of its revision while the manager returns the node to the revision it rolled from",
			w.Revision, young.crash, SpawnScale, young.backoff...)
	case young.crash != nil:
		p.reportFailure(backoffLine("Worker crashed soon after it was ready, as good as a failed spawn", young.wait),
			w.Revision, young.crash, SpawnScale, young.backoff...)
	}
	if msg := exitLogLine(unexpected, inRequest, ofRequest, young.crash != nil); msg != "" {
		p.log.Info(msg, "pid", w.PID(), "revision", w.Revision,
			"status", w.proc.ExitStatus(), "output", contract.LastLines(w.proc.Output(), 5))
	}
	if p.opts.Observer != nil {
		p.opts.Observer.WorkerExited(p.name, unexpected)
	}
}

// exitLogLine is the line that logs a worker's exit: none for one the
// pool stopped; for a death, whether a request was at it, every time (the
// first death in a request of a run and the later ones alike: an
// operator reads the cause on the line itself), and what the pool made
// of it: a death taken as its request's is not counted as a crash of its
// app; one counted so (counted: youngDeath.crash) is followed by what the
// error line before it says (reportExit): a backoff, resistance to its
// revision, or a hold of its spawns for the manager's return. The line
// promises no replacement: whether one is spawned is the pool's scaling
// (decide: up to minProcesses, or one more for a queued request outside
// a restart and, while resisting, only with no worker left), and a pool
// above its minimum with no request queued spawns none. A death nothing
// was made of (neither ofRequest nor counted: its pool closes, which
// watchExit alone decides, or its revision is no longer spawned) has a
// line that says only where it died.
func exitLogLine(unexpected, inRequest, ofRequest, counted bool) string {
	switch {
	case !unexpected:
		return ""
	case ofRequest:
		return "Worker exited while handling a request; taken as the request's, not counted as a crash of its app"
	case inRequest && counted:
		return "Worker exited while handling a request; counted as a crash of its app, not of the request"
	case inRequest:
		return "Worker exited while handling a request"
	}
	return "Worker exited unexpectedly"
}

// exitSaysLocked records what w's exit from prev, lived after ready,
// says of its revision: one that lived past crashWindow lasted
// (lastedLocked); one recycled after serving served (servedLocked); a
// death, or a stop as faulty, ends the revision's steadiness.
func (p *Pool) exitSaysLocked(w *Worker, prev State, unexpected bool, lived time.Duration) {
	switch {
	case unexpected && lived >= crashWindow:
		p.lastedLocked(w)
	case recycledAfterServing(w, prev):
		p.servedLocked(w)
	}
	if unexpected || w.faulty {
		delete(p.steady, w.Revision)
	}
}

// ofRequestLocked: the death of w, lived after ready, with a request at
// it, is the request's, not its app's: of a revision that lasted, one
// past crashWindow, or a young one excused (excuseLocked); of one
// that has not, the first death of a run, and then only one in the run's
// request of death (excuseUnproven). One excused as the run's request of
// death is logged once its request is known (DiedIn).
func (p *Pool) ofRequestLocked(w *Worker, lived time.Duration) bool {
	lasted := p.lasted[w.Revision]
	if lasted && lived >= crashWindow {
		return true
	}
	var excused, ofKey bool
	if lasted {
		excused, ofKey = p.excuseLocked(time.Now(), w.key)
	} else {
		excused, ofKey = p.excused.excuseUnproven(time.Now(), w.key)
	}
	if ofKey {
		w.ofKey = true
		p.noteRequestOfDeathLocked(w)
	}
	return excused
}

// recycledAfterServing: w, exiting from prev, is one the pool stopped on
// purpose after it served requests, as maxRequestsPerProcess or
// memoryLimit asked (a restart or the agent's stop may have done it for
// them). It did not die: the deaths before it were not its app's
// (servedLocked), though its revision is proven only by lasting, which
// under load with a low maxRequestsPerProcess comes from being steady
// (noteLastedLocked), not from one worker's life. Not one stopped as faulty
// while its recycle was due (its replacement booting): it hung or was
// dying, and would prove a revision whose requests hang or whose
// processes die.
func recycledAfterServing(w *Worker, prev State) bool {
	return prev == ferryv1.ProcessStopping && w.recycle != recycleNone && w.processed > 0 && !w.faulty
}

// spawnsRevisionLocked: the pool would spawn revision to replace a worker
// now (the target, or, while resisting, the one resistance keeps
// serving). The crash of a worker of another revision, one being
// replaced, or one of the resisted revision (ResistEarlyCrashes), is no
// failed spawn: its scaling error would stay until the next revision, as
// no worker of its revision is ever ready again to clear it, and its
// backoff would hold up the replacements resistance spawns.
func (p *Pool) spawnsRevisionLocked(revision string) bool {
	if p.resisting != nil {
		return revision == p.resistFrom.revision
	}
	return revision == p.cfg.Revision
}

// resistCrashLocked enters resistance for w, a worker that died within
// crashWindow of ready (crash says how), when that is a deployment error
// (ResistEarlyCrashes): w is of the revision a rolling restart rolls, or
// rolled, to from rolledFrom, and no worker of it has lasted. It reports
// whether it did.
//
// The revision's workers ready at that moment are not drained: they
// serve on until they exit (and are then replaced by the revision
// resisted from), as the seed's resistance freezes the process list,
// keeping the processes there are and spawning none. Draining them would
// cut the pool's capacity by their number at once and spawn as many of
// the old revision to keep minProcesses, the queue growing meanwhile; of
// a revision that boots and dies they die within crashWindow anyway, each
// failing at most the request at it (the bound the boot-and-die load test
// checks), and of one whose first death was a passing fault they serve
// well. What the freeze refuses is a new worker of the revision: a spawn
// that completes once the pool resists is stopped before it serves
// (errResisted), and a restart's replacement ready just before is
// retired in place of its old worker (keepInstead).
func (p *Pool) resistCrashLocked(w *Worker, crash error) bool {
	if !p.opts.ResistEarlyCrashes || p.resisting != nil || p.lasted[w.Revision] ||
		w.Revision != p.cfg.Revision || p.rolledFrom.to != w.Revision || !contract.ResistanceAsked(&p.cfg.Template.Restart) {
		return false
	}
	p.enterResistanceLocked(w.Revision, crash, p.rolledFrom.from)
	return true
}

// rollingFrom is what a rolling restart to revision to replaced last: the
// revision and template it falls back on, should to's workers die young.
type rollingFrom struct {
	to   string
	from spawnable
}

// drainLocked stops routing to w.
func (p *Pool) drainLocked(w *Worker) {
	if w.state != ferryv1.ProcessReady {
		return
	}
	if w.pastCrashWindowLocked(time.Now()) {
		p.lastedLocked(w) // before a tick could see it
	}
	p.transitionLocked(w, EventDrain)
	if w.sessions == 0 {
		closeOnce(w.drained)
	}
}

// retire takes w out of service and stops it: no new requests; wait for
// its in-flight requests (up to shutdownTimeout); SIGTERM; wait for the
// exit (up to shutdownTimeout); SIGKILL. Once the pool is closed, the two
// waits end by closeBy: one shutdownTimeout in all, and a worker whose
// requests took all of it gets SIGKILL right after SIGTERM. It returns
// once the process is gone and out of the pool's table. A worker still
// spawning is stopped when its spawn completes.
func (p *Pool) retire(ctx context.Context, w *Worker, why string) {
	p.mu.Lock()
	timeout := durationOr(p.cfg.Template.Pool.ShutdownTimeout, time.Minute)
	by := p.closeBy
	if w.state == ferryv1.ProcessSpawning || w.proc == nil {
		p.mu.Unlock()
		return
	}
	p.drainLocked(w)
	p.notifyLocked()
	p.mu.Unlock()

	allowed := waitWithin(timeout, by)
	began := time.Now()
	t := time.NewTimer(allowed)
	select {
	case <-w.drained:
	case <-w.proc.Done():
	case <-t.C:
	case <-ctx.Done():
	}
	t.Stop()
	// Asked again: with the deadline already past, select picks among
	// the ready cases at random. And of the kernel, not only the reaper:
	// a worker that died in its wait is a death, however late the reaper
	// sees it on a loaded machine (ExitsWithin waits for it then).
	finished := isClosed(w.drained) || w.proc.ExitsWithin(0)
	waited := waitHad(timeout, allowed, time.Since(began))
	p.mu.Lock()
	if !finished && !errors.Is(ctx.Err(), context.Canceled) { // not for a pool cut short
		requests, busyFor := w.inFlightLocked(time.Now())
		p.log.Info("Worker did not finish its requests within the wait it had; stopping it cuts them "+
			"(the proxy's line for each cut request, or upgraded connection (WebSocket), names its path)",
			"pid", w.PID(), "revision", w.Revision, "reason", why, "requests", requests, "busyFor", busyFor,
			"timeout", waited.String(), "shutdownTimeout", timeout.String())
	}
	// A process that exited on its own while it drained (one the proxy
	// found dead: Unreachable) is left Draining, so that watchExit takes
	// its exit as the crash it was, not as this stop.
	if w.state == ferryv1.ProcessDraining && !w.Exited() {
		p.transitionLocked(w, EventStop)
	}
	p.notifyLocked()
	p.mu.Unlock()
	wait := exitWait(timeout, by, finished)
	if !finished {
		c := shutdownCause(why, timeout, waited)
		c.termIgnored = ignoresSignal(w.PID(), syscall.SIGTERM)
		w.stopped.Store(c)
	}
	if killed := w.proc.Stop(wait); killed {
		p.log.Info("Killed worker that did not exit within shutdownTimeout", "pid", w.PID(),
			"timeout", wait.Round(time.Millisecond).String(), "shutdownTimeout", timeout.String())
	}
	p.reportOwnExit(w)
	// Return once the pool no longer counts it, so that the next step of a
	// restart never sees size+2.
	<-w.gone
	p.log.V(1).Info("Stopped worker", "pid", w.PID(), "revision", w.Revision, "reason", why)
}

// inFlightLocked is, for the log, how many requests are at w and how
// long it has been busy without a pause (since busySince, to 10ms; ""
// with none): with one request at it, that request's age; with several,
// no less than the oldest's. The pool knows no more of them: the proxy
// hands Acquire a digest of each request's method and path (RequestKey),
// not the text.
func (w *Worker) inFlightLocked(now time.Time) (requests int, busyFor string) {
	if w.sessions == 0 {
		return 0, ""
	}
	return w.sessions, now.Sub(w.busySince).Round(10 * time.Millisecond).String()
}

// reportOwnExit logs the exit of w, stopped by the agent with requests
// still at it, when the stop does not explain it (stopCause.explains): the
// process died of its own meanwhile (a crash, another's SIGKILL, or an
// exit with a status while it ignores SIGTERM), and its requests were cut
// by that, as they are told.
func (p *Pool) reportOwnExit(w *Worker) {
	c := w.stopped.Load()
	if c == nil || w.stopExplainsExit(c) {
		return
	}
	p.log.Info("Worker exited of its own while the agent stopped it; the requests at it were cut by that exit",
		"pid", w.PID(), "revision", w.Revision, "status", w.proc.ExitStatus(), "sigtermIgnored", c.termIgnored,
		"output", contract.LastLines(w.proc.Output(), 5))
}

// waitWithin is how long a wait of a stopping worker may take: timeout,
// or, once the pool closes (by is set), what is left until by.
func waitWithin(timeout time.Duration, by time.Time) time.Duration {
	if by.IsZero() {
		return timeout
	}
	return max(0, time.Until(by))
}

// isClosed reports whether ch is closed, without waiting.
func isClosed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// exitGrace is the least a worker whose requests were over gets to exit
// after SIGTERM as its pool closes, even past the close's deadline: that
// deadline may have gone on another worker's stuck request (the proxy's
// drain waits for it before Close), which must not cost every worker of
// the pool its clean exit. A worker that exits on SIGTERM takes far less.
const exitGrace = time.Second

// exitWait is how long a stopping worker gets to exit after SIGTERM: as
// waitWithin says, but at least exitGrace (within timeout) when its
// requests were over (finished), so that only a worker whose own requests
// took the time is killed right after SIGTERM.
func exitWait(timeout time.Duration, by time.Time, finished bool) time.Duration {
	d := waitWithin(timeout, by)
	if finished {
		d = max(d, min(timeout, exitGrace))
	}
	return d
}

// recycle replaces w: a new worker of the current revision first, then w
// is retired, as one step of a rolling restart.
func (p *Pool) recycle(w *Worker) {
	defer p.setRecycling(false)
	p.mu.Lock()
	if p.closed || w.state != ferryv1.ProcessReady {
		p.mu.Unlock()
		return
	}
	reason := w.recycle
	w.replacing = true
	y := p.addSpawningLocked(p.targetLocked())
	p.notifyLocked()
	p.mu.Unlock()
	p.log.Info("Recycling worker", "pid", w.PID(), "reason", reason)
	if err := p.spawn(y, SpawnRecycle); err != nil {
		p.mu.Lock()
		w.replacing = false
		p.mu.Unlock()
		if !refusedSpawn(err) {
			p.recordScalingError(y, err, SpawnRecycle)
		}
		return
	}
	p.retire(context.Background(), w, string(reason))
}

func (p *Pool) removeLocked(w *Worker) {
	if i := slices.Index(p.workers, w); i >= 0 {
		p.workers = slices.Delete(p.workers, i, i+1)
	}
}

func (p *Pool) transitionLocked(w *Worker, e Event) {
	next, err := Transition(w.state, e)
	if err != nil {
		// A bug of the pool's own, which the line must let one find: which
		// worker, the transition, and the stack that asked for it (the
		// logger adds stacks to no error; internal/logging).
		p.log.Error(err, "Ignored impossible worker transition", "pid", w.PID(), "worker", w.ID, "revision", w.Revision,
			"state", w.state, "event", e, "stack", string(debug.Stack()))
		return
	}
	w.state = next
}

func closeOnce(ch chan struct{}) {
	select {
	case <-ch:
	default:
		close(ch)
	}
}

func durationOr(d *metav1.Duration, def time.Duration) time.Duration {
	if d == nil || d.Duration <= 0 {
		return def
	}
	return d.Duration
}
