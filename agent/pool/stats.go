package pool

import (
	"bytes"
	"os"
	"strconv"
	"time"

	ferryv1 "github.com/ferry-dev/ferry/api/v1alpha1"
)

// clockTicks is USER_HZ, the unit of /proc/<pid>/stat CPU times; 100 on
// every Linux platform Ferry runs on.
const clockTicks = 100

var pageSize = int64(os.Getpagesize())

// procStats is what the pool last read of a worker from /proc.
type procStats struct {
	at         time.Time
	cpuTicks   int64
	cpuPercent int32
	rssBytes   int64
	// startRSS is the worker's RSS as it became ready, before any
	// request: a memoryLimit below it is one the app cannot meet.
	startRSS int64
}

// readProcStat reads a process's CPU ticks (user+system) and RSS.
func readProcStat(pid int) (cpuTicks, rssBytes int64, ok bool) {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, 0, false
	}
	// The command name (field 2) may hold spaces; fields count from after
	// its closing parenthesis, where field 3 (state) is index 0.
	i := bytes.LastIndexByte(data, ')')
	if i < 0 {
		return 0, 0, false
	}
	f := bytes.Fields(data[i+1:])
	if len(f) < 22 {
		return 0, 0, false
	}
	utime, _ := strconv.ParseInt(string(f[11]), 10, 64)
	stime, _ := strconv.ParseInt(string(f[12]), 10, 64)
	rss, _ := strconv.ParseInt(string(f[21]), 10, 64)
	return utime + stime, rss * pageSize, true
}

// sample refreshes every worker's CPU and memory figures and flags workers
// above memoryLimit for recycling.
func (p *Pool) sample() {
	type target struct {
		w   *Worker
		pid int
	}
	p.mu.Lock()
	targets := make([]target, 0, len(p.workers))
	for _, w := range p.workers {
		if w.proc != nil {
			targets = append(targets, target{w, w.proc.PID})
		}
	}
	var limit int64
	if q := p.cfg.Template.Pool.MemoryLimit; q != nil {
		limit = q.Value()
	}
	p.mu.Unlock()

	now := time.Now()
	type reading struct {
		ticks, rss int64
		ok         bool
	}
	readings := make([]reading, len(targets))
	for i, t := range targets {
		readings[i].ticks, readings[i].rss, readings[i].ok = readProcStat(t.pid)
	}

	flagged := false
	p.mu.Lock()
	for i, t := range targets {
		r := readings[i]
		if !r.ok {
			continue
		}
		st := &t.w.stats
		if !st.at.IsZero() {
			if wall := now.Sub(st.at).Seconds(); wall > 0 {
				st.cpuPercent = int32(float64(r.ticks-st.cpuTicks) / clockTicks / wall * 100)
			}
		}
		st.at, st.cpuTicks, st.rssBytes = now, r.ticks, r.rss
		// A worker flagged at maxRequestsPerProcess, its recycle not begun
		// (a pool that resists does none), is still flagged above the
		// limit: memoryLimit applies while the pool resists, and a
		// resisting pool stops only those (decide).
		if limit > 0 && r.rss > limit && t.w.recycle != recycleMemory && !t.w.replacing && t.w.state == ferryv1.ProcessReady {
			flagged = p.overMemoryLocked(t.w, r.rss, limit) || flagged
		}
	}
	p.mu.Unlock()
	if flagged {
		p.kickSupervisor()
	}
}

// overMemoryLocked flags w, ready and above memoryLimit at rss, for
// recycling, unless it is within the bound of a worker that was above the
// limit as it became ready (memoryBound). It reports whether it flagged w.
func (p *Pool) overMemoryLocked(w *Worker, rss, limit int64) bool {
	bound := memoryBound(limit, w.stats.startRSS)
	if bound == limit {
		p.log.Info(p.overMemoryMsgLocked(), "pid", w.PID(), "rss", rss, "limit", limit, "processed", w.processed)
		if w.processed < fewRequests {
			p.growsAboveLocked(w, rss, limit)
		}
	} else {
		p.startsAboveLocked(w, w.stats.startRSS, limit, bound)
		if rss <= bound {
			return false
		}
		p.log.Info("Worker that was above memoryLimit as soon as it was ready has grown past twice that size; recycling it",
			"pid", w.PID(), "rss", rss, "rssWhenReady", w.stats.startRSS, "bound", bound, "limit", limit, "processed", w.processed)
	}
	w.recycle = recycleMemory
	return true
}

// overMemoryMsgLocked says what becomes of a worker flagged above
// memoryLimit. While the pool resists a deployment error, it is stopped
// without a replacement first, and kept while it is the last ready
// worker (stopsAboveMemoryWhileFrozen) until another is ready.
func (p *Pool) overMemoryMsgLocked() string {
	if p.resisting == nil {
		return "Worker is above memoryLimit; recycling it"
	}
	ready := 0
	for _, w := range p.workers {
		if w.state == ferryv1.ProcessReady {
			ready++
		}
	}
	if stopsAboveMemoryWhileFrozen(ready) {
		return "Worker is above memoryLimit; stopping it, while resisting a deployment error"
	}
	return "Worker is above memoryLimit; keeping it, the last ready worker, while resisting a deployment error (stopped once another is ready)"
}

// startsAboveFactor: a worker that was above memoryLimit as it became
// ready is recycled for memory once it has grown to this many times its
// size then. Below, it is left: its replacement would start as large.
// Twice is well past what an app grows by as it warms up (lazy imports,
// first caches), and still bounds a leak, which memoryLimit is there to
// catch, at twice what the app needs to start.
const startsAboveFactor = 2

// memoryBound is the RSS above which a worker is recycled for memory:
// memoryLimit, or, for a worker that was above it as it became ready
// (startRSS, before any request), startsAboveFactor times startRSS.
func memoryBound(limit, startRSS int64) int64 {
	if startRSS > limit {
		return max(limit, startsAboveFactor*startRSS)
	}
	return limit
}

// memoryNote is a revision and memoryLimit that something was logged
// for once.
type memoryNote struct {
	revision string
	limit    int64
}

// fewRequests: a worker above memoryLimit after fewer requests than this
// grew past it soon after it started (growsAboveLocked).
const fewRequests = 10

// startsAboveLocked logs, once for the revision and limit, that a worker
// was above memoryLimit as it became ready (startRSS), and is left until
// it grows past bound (memoryBound): it is as large as the app starts,
// and its replacement would be too, so recycling it at the limit would
// respawn a process every sample for ever (under load as well: each
// replacement serves requests at once).
func (p *Pool) startsAboveLocked(w *Worker, rss, limit, bound int64) {
	p.noteOnceLocked(&p.startsAbove, w, limit, "Worker was above memoryLimit as soon as it was ready; not recycling it unless it grows past twice that size (bound), as its replacement would start as large. Raise memoryLimit above what the app needs to start",
		"rssWhenReady", rss, "bound", bound)
}

// growsAboveLocked logs, once for the revision and limit, that a worker
// grew past memoryLimit within its first few requests (it is recycled
// all the same: a leak it may be). If every process of the app does (a
// cache it builds as it warms up), each is replaced after a few requests,
// and each replacement costs a boot: the limit is below what the app
// needs once warm.
func (p *Pool) growsAboveLocked(w *Worker, rss, limit int64) {
	p.noteOnceLocked(&p.growsAbove, w, limit, "Worker grew above memoryLimit within its first requests. If the app's processes all do, each is replaced after a few requests and every replacement costs a boot: raise memoryLimit above what the app needs once warmed up",
		"processed", w.processed, "rssWhenReady", w.stats.startRSS, "rss", rss)
}

// noteOnceLocked logs msg about w, with its pid, revision, kv and limit,
// unless seen says it was logged for w's revision and limit already.
func (p *Pool) noteOnceLocked(seen *memoryNote, w *Worker, limit int64, msg string, kv ...any) {
	key := memoryNote{w.Revision, limit}
	if *seen == key {
		return
	}
	*seen = key
	p.log.Info(msg, append(append([]any{"pid", w.PID(), "revision", w.Revision}, kv...), "limit", limit)...)
}
