package pool_test

import (
	"strings"
	"testing"

	"github.com/ferry-dev/ferry/agent/pool"
	"github.com/ferry-dev/ferry/controllers/contract"
)

// TestFailedBootsBetweenYoungDeathsAreOneLoop: right after a rolling
// restart to a revision not proven, resistance on, in a cluster, the
// revision's spawns alternate: one is ready and dies young (0.5 s after
// ready), the next fails to boot, the next is ready and dies young
// again. A spawn that was ready and then died young did not work: the
// loop's count goes on through it, so the second young death is counted
// at round 3 (young, failed boot, young), the pool holds the revision's
// spawns for the manager's return, and the restart waits' test
// (contract.DiesYoungAgain) reads a crash loop. Before, the spawn that
// came up after the failed boot started the count over
// (spawnWorkedLocked): every young death read round 1, no hold came, and
// the waits never ended.
func TestFailedBootsBetweenYoungDeathsAreOneLoop(t *testing.T) {
	e, book, good := startBootdie(t, "t/bootloop", 1)
	// Of revision 2, spawn 1 (the restart's) is ready and dies young,
	// spawn 2 fails to boot, spawn 3 is ready and dies young, and so on.
	e.Pool.Update(pool.Config{Name: good.Name, Revision: "2",
		Template: flaky(t, 1, 1, "2,4,6,8,10,12,14,16", env("DIE_AFTER", "0.5"))})

	deaths := book.WaitForN(t, logCrashed, 2)
	if len(book.Find("Spawn failed")) == 0 {
		t.Fatal("no failed boot between the two young deaths")
	}
	if second := deaths[1]; !strings.HasPrefix(second.Msg, logHeld) {
		t.Errorf("the second young death, a failed boot between it and the first, held nothing: %q %v", second.Msg, second.KVs)
	}
	if s := e.Pool.Status(); !contract.DiesYoungAgain(s.LastSpawnError, "2", s.SpawnFailures, s.RevisionLasted) {
		t.Errorf("after the second young death: spawnFailures %d, lastSpawnError %v; want a crash loop (2 rounds or more of young deaths)",
			s.SpawnFailures, s.LastSpawnError)
	}
}
