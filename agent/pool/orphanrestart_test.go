package pool_test

import (
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ferry-dev/ferry/agent/internal/agenttest"
	"github.com/ferry-dev/ferry/agent/pool"
	ferryv1 "github.com/ferry-dev/ferry/api/v1alpha1"
	"github.com/ferry-dev/ferry/internal/testsupport"
)

// TestResistanceEndedMidStepRollsOneRestart: standalone
// (ResistEarlyCrashes), a young worker of the new revision dies while the
// restart's step is still retiring its old worker (a request held at it),
// so the pool resists with the restart's goroutine still in that step
// (enterResistanceLocked clears p.restart under it). A new revision asked
// for then starts a second restart beside the first: once the old worker's
// drain ends, the first rolls on to the new revision too, and the two
// replace workers at once. The seed: "Spawn new process Y ... Repeat steps
// 1-3 until all processes have been replaced", one at a time, "the memory
// and spawn load profile remain pretty much the same"; rollingRestart:
// "The pool never holds more than its size plus one." Now the first
// restart ends at its next look (orphanedLocked), and the second starts
// once it has. Seen failing before: processes [1/Ready replacing
// 1/Ready replacing 1/Ready 3/Spawning 3/Spawning], most running 5.
func TestResistanceEndedMidStepRollsOneRestart(t *testing.T) {
	root, _ := filepath.Abs("testdata/bootdie")
	dir := testsupport.SharedDir(t) // the workers' user takes the tokens
	gate, token2, token3 := filepath.Join(dir, "gate"), filepath.Join(dir, "boot2"), filepath.Join(dir, "boot3")
	good := agenttest.WSGIAt(root, 3, 3, env("GATE", gate))
	bad := agenttest.WSGIAt(root, 3, 3, env("GATE", gate), env("BOOT_TOKEN", token2))
	fixed := agenttest.WSGIAt(root, 3, 3, env("GATE", gate), env("BOOT_TOKEN", token3))
	e, book := startResistingEarly(t, "t/twice", good, true)
	x1 := e.Pool.Status().Processes[0] // the oldest: the first request's, and the restart's first step's
	held := agenttest.GetLater(e.URL + "/gate")
	e.WaitFor(t, time.Minute, "a request held at the oldest worker", func(s pool.Status) bool {
		return slices.ContainsFunc(s.Processes, func(p ferryv1.ProcessInfo) bool { return p.PID == x1.PID && p.Sessions == 1 })
	})
	inv := watch(e)

	e.Pool.Update(pool.Config{Name: "t/twice", Revision: "2", Template: bad})
	touch(t, token2) // the first step's worker boots
	var y1 ferryv1.ProcessInfo
	e.WaitFor(t, time.Minute, "the first step retiring its old worker", func(s pool.Status) bool {
		draining := slices.ContainsFunc(s.Processes, func(p ferryv1.ProcessInfo) bool {
			return p.PID == x1.PID && p.State == ferryv1.ProcessDraining
		})
		i := slices.IndexFunc(s.Processes, func(p ferryv1.ProcessInfo) bool { return p.Revision == "2" && p.State == ferryv1.ProcessReady })
		if i >= 0 {
			y1 = s.Processes[i]
		}
		return draining && i >= 0
	})
	if err := syscall.Kill(int(y1.PID), syscall.SIGKILL); err != nil { // dead young: the pool resists 2
		t.Fatal(err)
	}
	e.WaitFor(t, time.Minute, "resistance to 2, 3 ready of revision 1", func(s pool.Status) bool {
		return s.Resisting != nil && s.Counts.Ready == 3
	})

	e.Pool.Update(pool.Config{Name: "t/twice", Revision: "3", Template: fixed})
	touch(t, gate) // the first step's old worker finishes its request and exits
	if a := <-held; a.Err != nil || a.Code != http.StatusOK {
		t.Fatalf("the held request: %d %q (%v), want 200", a.Code, a.Body, a.Err)
	}
	s := e.WaitFor(t, time.Minute, "the first restart ended, or a second spawn of revision 3", func(s pool.Status) bool {
		gone := !slices.ContainsFunc(s.Processes, func(p ferryv1.ProcessInfo) bool { return p.PID == x1.PID })
		return gone && (len(book.Find("Finished restart")) > 0 || spawningOf(s, "3") > 1)
	})
	inv.end()
	t.Logf("processes: %+v", brief(s))
	t.Logf("restart: %+v; finished: %d; rolled on: %d; most running: %d; bad mark: %q", s.Restart,
		len(book.Find("Finished restart")), len(book.Find("Restart continues to the revision asked for since")), inv.maxLive, inv.badMark)
	if n := spawningOf(s, "3"); n > 1 {
		t.Errorf("%d workers of revision 3 spawning at once: two restarts run", n)
	}
	if inv.maxLive > 4 || running(s) > 4 {
		t.Errorf("the pool held %d processes (now %d), want at most size+1 = 4", inv.maxLive, running(s))
	}
	if inv.badMark != "" {
		t.Errorf("replacing marks: %s", inv.badMark)
	}
}

func spawningOf(s pool.Status, rev string) int {
	n := 0
	for _, p := range s.Processes {
		if p.Revision == rev && p.State == ferryv1.ProcessSpawning {
			n++
		}
	}
	return n
}

func brief(s pool.Status) []string {
	var out []string
	for _, p := range s.Processes {
		r := ""
		if p.Replacing {
			r = " replacing"
		}
		out = append(out, p.Revision+"/"+string(p.State)+r)
	}
	return out
}

// TestRestartSpawnErrorOfAnAbandonedRevisionIsLogged: a
// restart step's spawn that fails once a newer revision was asked for
// (handleRestartSpawnError's "moved") is logged as an error, as every
// other failed restart spawn is. Before, it was recorded as the last
// spawn error only. The seed: "In any case, all errors encountered during
// a rolling restart process are logged."
func TestRestartSpawnErrorOfAnAbandonedRevisionIsLogged(t *testing.T) {
	root, _ := filepath.Abs("testdata/bootdie")
	dir := testsupport.SharedDir(t)
	good := agenttest.WSGIAt(root, 1, 1)
	stuck := agenttest.WSGIAt(root, 1, 1, env("BOOT_TOKEN", filepath.Join(dir, "never"))) // never ready
	stuck.Pool.StartTimeout = &metav1.Duration{Duration: 2 * time.Second}
	fixed := agenttest.WSGIAt(root, 1, 1, env("REVISION", "3"))
	e, book := startResistingEarly(t, "t/moved", good, false)
	e.Pool.Update(pool.Config{Name: "t/moved", Revision: "2", Template: stuck})
	e.WaitFor(t, time.Minute, "a worker of revision 2 spawning", func(s pool.Status) bool { return spawningOf(s, "2") == 1 })
	e.Pool.Update(pool.Config{Name: "t/moved", Revision: "3", Template: fixed})
	s := e.WaitFor(t, time.Minute, "revision 3 rolled out", func(s pool.Status) bool {
		return agenttest.Ready(1)(s) && s.Revision == "3"
	})
	if s.LastSpawnError == nil || s.LastSpawnError.Revision != "2" {
		t.Fatalf("last spawn error %+v, want revision 2's", s.LastSpawnError)
	}
	t.Logf("last spawn error: %+v", *s.LastSpawnError)
	logged := slices.ContainsFunc(book.Find(""), func(l agenttest.LogEntry) bool {
		rev, _ := l.Value("revision")
		return l.IsError && rev == "2"
	})
	if !logged {
		t.Errorf("revision 2's failed restart spawn (%s) is in the status but no error line of the log", s.LastSpawnError.Reason)
	}
}

// TestResistedRevisionSpawnInFlightAtABumpServes: the
// variant of TestResistanceEndedMidStepRollsOneRestart where the orphaned
// restart is in its second step's spawn as the pool comes to resist (the
// first step's new worker died young) and a new revision is asked for
// before that spawn completes: refuseSpawnedLocked no longer refuses it
// (the pool no longer resists). Before, the worker of the revision just
// resisted then served on, and the orphaned restart rolled on beside the
// new one. Now the orphaned step keeps the old worker and stops its new
// one (keepInstead), as for a resistance it sees. Seen failing before:
// processes [1/Stopping replacing 1/Ready replacing 2/Ready 3/Spawning].
func TestResistedRevisionSpawnInFlightAtABumpServes(t *testing.T) {
	root, _ := filepath.Abs("testdata/bootdie")
	dir := testsupport.SharedDir(t)
	token2, token3 := filepath.Join(dir, "boot2"), filepath.Join(dir, "boot3")
	good := agenttest.WSGIAt(root, 3, 3)
	bad := agenttest.WSGIAt(root, 3, 3, env("BOOT_TOKEN", token2))
	fixed := agenttest.WSGIAt(root, 3, 3, env("BOOT_TOKEN", token3))
	e, book := startResistingEarly(t, "t/inflightbump", good, true)
	e.Pool.Update(pool.Config{Name: "t/inflightbump", Revision: "2", Template: bad})
	touch(t, token2)
	y1 := secondStepBooting(t, e, 3)
	if err := syscall.Kill(int(y1.PID), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	e.WaitFor(t, time.Minute, "resistance to 2", func(s pool.Status) bool { return s.Resisting != nil })
	e.Pool.Update(pool.Config{Name: "t/inflightbump", Revision: "3", Template: fixed})
	touch(t, token2) // the orphaned step's worker of revision 2 comes up
	e.WaitFor(t, time.Minute, "the orphaned step's worker of revision 2 spawned", func(pool.Status) bool {
		n := 0
		for _, l := range book.Find("Spawned worker") {
			if rev, _ := l.Value("revision"); rev == "2" {
				n++
			}
		}
		return n == 2
	})
	e.WaitFor(t, time.Minute, "no worker of revision 2, resisted a moment before, spawning or serving", func(s pool.Status) bool {
		return !slices.ContainsFunc(s.Processes, func(p ferryv1.ProcessInfo) bool {
			return p.Revision == "2" && (p.State == ferryv1.ProcessReady || p.State == ferryv1.ProcessSpawning)
		})
	})
	s := e.Pool.Status()
	if n := running(s); n > 4 {
		t.Errorf("the pool holds %d processes, want at most size+1 = 4: %v", n, brief(s))
	}
}

// secondStepBooting waits until a rolling restart from revision 1 to 2 of
// a pool of size has replaced one worker and boots the next, and returns
// the first step's worker of revision 2.
func secondStepBooting(t *testing.T, e *agenttest.Env, size int) ferryv1.ProcessInfo {
	t.Helper()
	var y1 ferryv1.ProcessInfo
	e.WaitFor(t, time.Minute, "the first step done, the second's worker booting", func(s pool.Status) bool {
		byState := map[string]int{}
		for _, p := range s.Processes {
			byState[p.Revision+"/"+string(p.State)]++
			if p.Revision == "2" && p.State == ferryv1.ProcessReady {
				y1 = p
			}
		}
		return len(s.Processes) == size+1 && byState["1/Ready"] == size-1 && byState["2/Ready"] == 1 && byState["2/Spawning"] == 1
	})
	return y1
}

// touch creates the file f, empty: a token or gate for testdata/bootdie.
func touch(t *testing.T, f string) {
	t.Helper()
	if err := os.WriteFile(f, nil, 0o644); err != nil {
		t.Fatal(err)
	}
}
