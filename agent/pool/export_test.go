package pool

import (
	"testing"
	"time"
)

// SetRestartEnding has f called as every restart ends, before it takes
// the pool's lock to write its summary (restartEnding), until t ends. Set
// it before the pool starts: the hook is the package's, read unlocked.
func SetRestartEnding(t testing.TB, f func()) {
	restartEnding = f
	t.Cleanup(func() { restartEnding = nil })
}

// Reconcile runs one pass of p's supervisor (decide, then start what it
// asks) on the test's goroutine, not while the pool closes (its spawns'
// wg.Add would race Close's Wait), so that the test knows a decision was
// taken after an event it waited for: the supervisor's own pass follows a
// kick or a tick the test cannot see. A pass counts, under the pool's
// lock, the spawns earlier ones registered, so one more asks for none
// twice.
func Reconcile(p *Pool) { p.reconcile() }

// LastedPIDs returns the pids of p's ready workers of its target
// revision that have been ready for crashWindow: those the next reconcile
// takes as having lasted (pastCrashWindowLocked, in noteLastedLocked).
// The status reports only their revision as lasted (RevisionLasted),
// which one such worker makes, as does the revision's having been steady
// for the window: it does not say which workers lasted.
func LastedPIDs(p *Pool) []int {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := time.Now()
	var pids []int
	for _, w := range p.workers {
		if w.Revision == p.cfg.Revision && w.pastCrashWindowLocked(now) {
			pids = append(pids, w.PID())
		}
	}
	return pids
}
