package pool

import "testing"

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
