package pool

import "testing"

// SetRestartEnding has f called as every restart ends, before it takes
// the pool's lock to write its summary (restartEnding), until t ends. Set
// it before the pool starts: the hook is the package's, read unlocked.
func SetRestartEnding(t testing.TB, f func()) {
	restartEnding = f
	t.Cleanup(func() { restartEnding = nil })
}
