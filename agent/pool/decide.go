package pool

import (
	"slices"
	"sort"
	"time"
)

// view is what the scaling decision looks at: counts, limits and the
// workers that might be stopped or recycled. It is built under the pool's
// lock and decided on without it.
type view struct {
	now       time.Time
	min, max  int
	ready     int // Ready workers
	spawning  int // Spawning workers
	queued    int // requests waiting for a worker
	frozen    bool
	restart   bool      // a restart is under way: it does its own spawning
	paused    bool      // a blocking restart is under way: no scaling at all
	recycling bool      // a recycle is under way: one at a time
	backoff   time.Time // no scaling spawn before this
	idle      time.Duration
	workers   []workerView
}

// workerView is one Ready worker, for idle cleaning and recycling.
type workerView struct {
	id       int
	sessions int
	lastUsed time.Time
	recycle  recycleReason
	// replacing: a recycle or restart is replacing it; it leaves once its
	// replacement is ready.
	replacing bool
}

// recycleReason says why a worker should be replaced.
type recycleReason string

const (
	recycleNone        recycleReason = ""
	recycleMaxRequests recycleReason = "maxRequestsPerProcess"
	recycleMemory      recycleReason = "memoryLimit"
)

// decision is what the pool should do now.
type decision struct {
	spawn   int   // scaling spawns to start
	stop    []int // idle workers to stop (by id)
	recycle int   // a worker to replace (by id), or -1
	// shutdown is a worker to stop without replacement (a memory-limit hit
	// while frozen), or -1.
	shutdown int
}

// decide applies the pool's sizing rules:
//   - keep at least min workers (counting those spawning);
//   - while frozen (resisting a deployment error) spawn only to keep min
//     workers, or one when none is left and requests wait, as a crash is
//     replaced outside it (the pool spawns those of the revision it
//     resists from, not the failing one); while a blocking restart runs
//     do nothing at all (it spawns anew);
//   - while requests wait and nothing is spawning, spawn one more, up to max;
//   - never spawn during a scaling backoff;
//   - stop workers idle for longer than the idle timeout, oldest-idle first,
//     never below min, not while frozen or restarting;
//   - stop workers above max (maxProcesses was lowered), least busy and
//     longest idle first, not while frozen or restarting;
//   - recycle one flagged worker at a time (replacement first), not during a
//     backoff; while frozen
//     only a memory-limit hit is acted on, by a plain shutdown, and never of
//     the last ready worker.
func decide(v view) decision {
	d := decision{recycle: -1, shutdown: -1}
	if v.paused {
		return d
	}
	if v.frozen {
		// No scaling for traffic, nothing of the new revision (the pool
		// picks the template); but exited workers are replaced up to
		// min, or the app would go dark one crash at a time.
		if live := v.ready + v.spawning; !v.now.Before(v.backoff) {
			need := max(0, v.min-live)
			if live == 0 && v.queued > 0 {
				need = max(need, 1)
			}
			d.spawn = max(0, min(need, v.max-live))
		}
		if stopsAboveMemoryWhileFrozen(v.ready) && !v.recycling {
			for _, w := range v.workers {
				if w.recycle == recycleMemory {
					d.shutdown = w.id
					break
				}
			}
		}
		return d
	}
	// A worker being replaced still serves until its replacement is
	// ready, and stays if that spawn fails: it counts toward min and max
	// (TestDecide: "a failed replacement spawn starts no other").
	live := v.ready + v.spawning
	if !v.now.Before(v.backoff) {
		need := max(0, v.min-live)
		if need == 0 && v.queued > 0 && v.spawning == 0 && !v.restart {
			need = 1
		}
		d.spawn = max(0, min(need, v.max-live))
	}
	if v.restart {
		return d
	}
	// A recycle spawns too: not during a backoff, or a failing spawn would
	// be retried back to back.
	if !v.recycling && !v.now.Before(v.backoff) {
		for _, w := range v.workers {
			if w.recycle != recycleNone {
				d.recycle = w.id
				break
			}
		}
	}
	// But it is leaving: those it leaves are what the stop rules size.
	// Counted, a recycle's surge above max had the excess rule stop a
	// second worker, and the pool shrink and grow back (TestDecide: "a
	// recycle's surge is not an excess").
	ready := v.ready - v.leaving()
	if d.stop = excessVictims(v, ready); len(d.stop) == 0 {
		d.stop = idleVictims(v, ready)
	}
	return d
}

// leaving counts the ready workers being replaced.
func (v view) leaving() int {
	n := 0
	for _, w := range v.workers {
		if w.replacing {
			n++
		}
	}
	return n
}

// staying are the ready workers not being replaced: those the sizing rules
// may stop.
func (v view) staying() []workerView {
	return slices.DeleteFunc(slices.Clone(v.workers), func(w workerView) bool { return w.replacing })
}

// excessVictims picks the workers above max to stop: least busy first,
// then longest idle. They drain before they stop (retire).
func excessVictims(v view, ready int) []int {
	excess := ready - v.max
	if excess <= 0 {
		return nil
	}
	ws := v.staying()
	sort.SliceStable(ws, func(i, j int) bool {
		if ws[i].sessions != ws[j].sessions {
			return ws[i].sessions < ws[j].sessions
		}
		return ws[i].lastUsed.Before(ws[j].lastUsed)
	})
	var ids []int
	for i := 0; i < len(ws) && i < excess; i++ {
		ids = append(ids, ws[i].id)
	}
	return ids
}

// idleVictims picks the workers to stop for idleness.
func idleVictims(v view, ready int) []int {
	surplus := ready - v.min
	if surplus <= 0 || v.idle <= 0 || v.queued > 0 {
		return nil
	}
	var idle []workerView
	for _, w := range v.staying() {
		if w.sessions == 0 && w.recycle == recycleNone && v.now.Sub(w.lastUsed) >= v.idle {
			idle = append(idle, w)
		}
	}
	sort.SliceStable(idle, func(i, j int) bool { return idle[i].lastUsed.Before(idle[j].lastUsed) })
	var ids []int
	for i := 0; i < len(idle) && i < surplus; i++ {
		ids = append(ids, idle[i].id)
	}
	return ids
}

// backoffAfter is how long to wait after the n-th consecutive failed
// scaling spawn: 1s, 2s, 4s, ... capped at a minute.
func backoffAfter(n int) time.Duration {
	if n <= 0 {
		return 0
	}
	d := time.Second << min(n-1, 6)
	return min(d, time.Minute)
}

// stopsAboveMemoryWhileFrozen: while the pool resists a deployment error,
// a worker above memoryLimit is stopped (without a replacement first)
// only when another is ready: the last ready worker is kept. decide acts
// on it, and the log line that flags the worker says it.
func stopsAboveMemoryWhileFrozen(ready int) bool { return ready > 1 }
