// Package metrics is the agent's Prometheus instrumentation: counters and
// histograms fed by the pool and proxy observers as things happen, and
// gauges read from every pool's status at scrape time, so a scrape always
// sees the current queue length and process table.
package metrics

import (
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/ferry-dev/ferry/agent/pool"
	ferryv1 "github.com/ferry-dev/ferry/api/v1alpha1"
)

// Metrics holds the agent's metrics and the registry that serves them.
type Metrics struct {
	// Registry serves /metrics: these metrics plus Go and process collectors.
	Registry *prometheus.Registry

	requests        *prometheus.CounterVec
	requestDuration *prometheus.HistogramVec
	spawnDuration   *prometheus.HistogramVec
	spawns          *prometheus.CounterVec
	spawnFailures   *prometheus.CounterVec
	restarts        *prometheus.CounterVec
	restartOutcomes *prometheus.CounterVec
	workerExits     *prometheus.CounterVec
	overruns        *prometheus.CounterVec
	replays         *prometheus.CounterVec

	mu sync.Mutex
	// pools are the tracked pools by name, in the order tracked: a pool
	// re-created under its name (a successor while the old one drains)
	// is tracked beside the old one until that one's untrack.
	pools map[string][]*tracked
	// stopped holds, per pool name, the flag its request recorders share:
	// set when the last untrack deleted the pool's series, so that a
	// request still in flight then (a drain that timed out) does not
	// create them again. A name tracked again gets a fresh flag.
	stopped map[string]*atomic.Bool
}

// tracked is one Track: the pool's status, scraped while it is the last
// tracked under its name.
type tracked struct{ status func() pool.Status }

// New returns the agent's metrics, registered in a fresh registry.
func New() *Metrics {
	m := &Metrics{
		Registry: prometheus.NewRegistry(),
		pools:    map[string][]*tracked{},
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ferry_requests_total",
			Help: "Requests answered by the proxy, by pool and HTTP status code (499: the client went away).",
		}, []string{"pool", "code"}),
		requestDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "ferry_request_duration_seconds",
			Help:    "Time from a request's arrival to the end of its response, queueing included.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"pool"}),
		spawnDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "ferry_spawn_duration_seconds",
			Help:    "Time from starting a worker process to its being ready.",
			Buckets: []float64{.05, .1, .25, .5, 1, 2, 5, 10, 30, 60, 120},
		}, []string{"pool"}),
		spawns: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ferry_spawns_total",
			Help: "Worker spawns started, by kind (scale, restart, recycle).",
		}, []string{"pool", "kind"}),
		spawnFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ferry_spawn_failures_total",
			Help: "Worker spawns that failed, by kind (scale, restart, recycle).",
		}, []string{"pool", "kind"}),
		restarts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ferry_restarts_total",
			Help: "Restarts started, by strategy (Rolling, Blocking).",
		}, []string{"pool", "strategy"}),
		restartOutcomes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ferry_restarts_finished_total",
			Help: "Restarts finished, by outcome (completed, completed-with-errors, resisting, aborted).",
		}, []string{"pool", "outcome"}),
		workerExits: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ferry_worker_exits_total",
			Help: "Worker processes that exited; unexpected=true for crashes of serving workers.",
		}, []string{"pool", "unexpected"}),
		overruns: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ferry_workers_overran_total",
			Help: "Worker processes killed because a request's answer did not come, or did not end, within maxRequestTime: no answer (the client got 504), not all of one the proxy buffers, or the rest of one whose client left.",
		}, []string{"pool"}),
		replays: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ferry_requests_replayed_total",
			Help: "Safe requests (GET, HEAD, OPTIONS, TRACE) replayed (sent, or tried, a second time) to the same worker on a new connection, " +
				"because the worker closed a kept connection without answering (its keep-alive timeout crossing the request).",
		}, []string{"pool"}),
	}
	m.Registry.MustRegister(m.requests, m.requestDuration, m.spawnDuration, m.spawns, m.spawnFailures,
		m.restarts, m.restartOutcomes, m.workerExits, m.overruns, m.replays, (*statusCollector)(m),
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Track makes a pool's status part of every scrape until untrack is
// called, once the pool has stopped. Untrack also deletes every series
// labelled with the pool (its requests, spawns, exits, restarts, ...): a
// deleted pool's series do not stay exported for the agent's life. While
// another pool tracked under the same name lives (one re-created while
// the old one drains), nothing is deleted: that one's series are the same,
// and it is the one scraped.
//
// Its counters start at 0 (zeroLocked): a pool's series are exported from
// its start, not from its first spawn failure or overrun, so that rate()
// and increase() over them, and an alert on them, see the first one.
func (m *Metrics) Track(name string, status func() pool.Status) (untrack func()) {
	t := &tracked{status: status}
	m.mu.Lock()
	m.pools[name] = append(m.pools[name], t)
	m.zeroLocked(name)
	m.mu.Unlock()
	var once sync.Once
	return func() { once.Do(func() { m.untrack(name, t) }) }
}

// zeroLocked makes the series of the pool name's counters whose labels
// are known in advance, at 0 if new: those by kind, strategy, outcome and
// exit, and those by pool alone. (Requests by status code are made as
// the codes come: their set is open.)
func (m *Metrics) zeroLocked(name string) {
	for _, kind := range []pool.SpawnKind{pool.SpawnScale, pool.SpawnRestart, pool.SpawnRecycle} {
		m.spawns.WithLabelValues(name, string(kind))
		m.spawnFailures.WithLabelValues(name, string(kind))
	}
	for _, strategy := range []ferryv1.RestartStrategy{ferryv1.RestartRolling, ferryv1.RestartBlocking} {
		m.restarts.WithLabelValues(name, string(strategy))
	}
	for _, outcome := range []string{pool.OutcomeCompleted, pool.OutcomeWithErrors, pool.OutcomeResisting, pool.OutcomeAborted} {
		m.restartOutcomes.WithLabelValues(name, outcome)
	}
	for _, unexpected := range []bool{false, true} {
		m.workerExits.WithLabelValues(name, strconv.FormatBool(unexpected))
	}
	m.overruns.WithLabelValues(name)
	m.replays.WithLabelValues(name)
}

func (m *Metrics) untrack(name string, t *tracked) {
	m.mu.Lock()
	defer m.mu.Unlock()
	left := slices.DeleteFunc(m.pools[name], func(o *tracked) bool { return o == t })
	if len(left) > 0 {
		m.pools[name] = left
		return
	}
	delete(m.pools, name)
	if f := m.stopped[name]; f != nil {
		f.Store(true)
		delete(m.stopped, name)
	}
	byPool := prometheus.Labels{"pool": name}
	for _, v := range []interface{ DeletePartialMatch(prometheus.Labels) int }{
		m.requests, m.requestDuration, m.spawnDuration, m.spawns, m.spawnFailures,
		m.restarts, m.restartOutcomes, m.workerExits, m.overruns, m.replays,
	} {
		v.DeletePartialMatch(byPool)
	}
}

// Requests returns the recorder of one pool's requests, for its proxy's
// Observer. Its label children are resolved once, not per request:
// WithLabelValues hashes the values and takes the vector's lock, which
// cost about 3 % of the proxy's CPU per request.
func (m *Metrics) Requests(pool string) *Requests {
	return &Requests{m: m, pool: pool, duration: m.requestDuration.WithLabelValues(pool),
		replays: m.replays.WithLabelValues(pool), stopped: m.stoppedFlag(pool)}
}

// stoppedFlag is the flag the recorders of pool share (Metrics.stopped).
func (m *Metrics) stoppedFlag(pool string) *atomic.Bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.stopped == nil {
		m.stopped = map[string]*atomic.Bool{}
	}
	f := m.stopped[pool]
	if f == nil {
		f = &atomic.Bool{}
		m.stopped[pool] = f
	}
	return f
}

// discarded counts what a stopped pool's recorder is told: exported by
// no one.
var discarded = prometheus.NewCounter(prometheus.CounterOpts{Name: "ferry_discarded", Help: "unexported"})

// Requests records one pool's finished requests (proxy.Observer).
type Requests struct {
	m        *Metrics
	pool     string
	duration prometheus.Observer
	replays  prometheus.Counter
	// byCode holds the counter of each status code (100-599) once used;
	// other codes are looked up per request.
	byCode [500]atomic.Pointer[prometheus.Counter]
	// stopped: the pool's series were deleted (Metrics.stopped).
	stopped *atomic.Bool
}

// RequestDone implements proxy.Observer.
func (r *Requests) RequestDone(code int, d time.Duration) {
	r.counter(code).Inc()
	r.duration.Observe(d.Seconds())
}

// RequestReplayed implements proxy.Observer.
func (r *Requests) RequestReplayed() { r.replays.Inc() }

func (r *Requests) counter(code int) prometheus.Counter {
	i := code - 100
	if i >= 0 && i < len(r.byCode) {
		if c := r.byCode[i].Load(); c != nil {
			return *c // a deleted series' child: counts go nowhere
		}
	}
	c := r.child(code)
	if i >= 0 && i < len(r.byCode) && c != discarded {
		r.byCode[i].Store(&c) // a racing store holds the same child
	}
	return c
}

// child looks the counter of code up, under the lock untrack deletes the
// series under: once the pool stopped, none is created again.
func (r *Requests) child(code int) prometheus.Counter {
	r.m.mu.Lock()
	defer r.m.mu.Unlock()
	if r.stopped.Load() {
		return discarded
	}
	return r.m.requests.WithLabelValues(r.pool, codeLabel(code))
}

// Status codes as label values without allocating for the common ones.
var codeLabels = map[int]string{200: "200", 201: "201", 204: "204", 301: "301", 302: "302", 304: "304",
	400: "400", 401: "401", 403: "403", 404: "404", 499: "499", 500: "500", 502: "502", 503: "503", 504: "504"}

func codeLabel(code int) string {
	if s, ok := codeLabels[code]; ok {
		return s
	}
	return strconv.Itoa(code)
}

// SpawnStarted implements pool.Observer.
func (m *Metrics) SpawnStarted(p string, kind pool.SpawnKind) {
	m.spawns.WithLabelValues(p, string(kind)).Inc()
}

// SpawnSucceeded implements pool.Observer.
func (m *Metrics) SpawnSucceeded(p string, d time.Duration) {
	m.spawnDuration.WithLabelValues(p).Observe(d.Seconds())
}

// SpawnFailed implements pool.Observer.
func (m *Metrics) SpawnFailed(p string, kind pool.SpawnKind) {
	m.spawnFailures.WithLabelValues(p, string(kind)).Inc()
}

// RestartStarted implements pool.Observer.
func (m *Metrics) RestartStarted(p string, strategy ferryv1.RestartStrategy) {
	m.restarts.WithLabelValues(p, string(strategy)).Inc()
}

// RestartFinished implements pool.Observer.
func (m *Metrics) RestartFinished(p string, outcome string) {
	m.restartOutcomes.WithLabelValues(p, outcome).Inc()
}

// WorkerOverran implements pool.Observer.
func (m *Metrics) WorkerOverran(p string) { m.overruns.WithLabelValues(p).Inc() }

// WorkerExited implements pool.Observer.
func (m *Metrics) WorkerExited(p string, unexpected bool) {
	m.workerExits.WithLabelValues(p, strconv.FormatBool(unexpected)).Inc()
}

var (
	queueDesc = prometheus.NewDesc("ferry_queue_length",
		"Requests waiting for a free worker process.", []string{"pool"}, nil)
	processesDesc = prometheus.NewDesc("ferry_processes",
		"Worker processes by state and revision.", []string{"pool", "state", "revision"}, nil)
	resistingDesc = prometheus.NewDesc("ferry_resisting_deployment_error",
		"1 while the pool is frozen on a deployment error.", []string{"pool"}, nil)
	restartingDesc = prometheus.NewDesc("ferry_rolling_restart_in_progress",
		"1 while a restart is under way.", []string{"pool"}, nil)
	scalingErrorDesc = prometheus.NewDesc("ferry_scaling_error",
		"1 while spawns of a serving revision fail and the pool backs off.", []string{"pool"}, nil)
	memoryDesc = prometheus.NewDesc("ferry_process_memory_bytes",
		"Resident memory of each worker process.", []string{"pool", "pid", "revision"}, nil)
)

// statusCollector reads every tracked pool's status at scrape time.
type statusCollector Metrics

func (c *statusCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{queueDesc, processesDesc, resistingDesc, restartingDesc, scalingErrorDesc, memoryDesc} {
		ch <- d
	}
}

func (c *statusCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	statuses := make([]pool.Status, 0, len(c.pools))
	for _, ts := range c.pools {
		statuses = append(statuses, ts[len(ts)-1].status())
	}
	c.mu.Unlock()
	for _, s := range statuses {
		ch <- prometheus.MustNewConstMetric(queueDesc, prometheus.GaugeValue, float64(s.QueueLength), s.Name)
		ch <- prometheus.MustNewConstMetric(resistingDesc, prometheus.GaugeValue, boolValue(s.Resisting != nil), s.Name)
		ch <- prometheus.MustNewConstMetric(restartingDesc, prometheus.GaugeValue, boolValue(s.Restart != nil), s.Name)
		ch <- prometheus.MustNewConstMetric(scalingErrorDesc, prometheus.GaugeValue, boolValue(s.ScalingError != nil), s.Name)
		type key struct{ state, revision string }
		counts := map[key]int{}
		for _, p := range s.Processes {
			counts[key{string(p.State), p.Revision}]++
			if p.MemoryBytes > 0 {
				ch <- prometheus.MustNewConstMetric(memoryDesc, prometheus.GaugeValue, float64(p.MemoryBytes),
					s.Name, strconv.Itoa(int(p.PID)), p.Revision)
			}
		}
		for k, n := range counts {
			ch <- prometheus.MustNewConstMetric(processesDesc, prometheus.GaugeValue, float64(n), s.Name, k.state, k.revision)
		}
	}
}

func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
