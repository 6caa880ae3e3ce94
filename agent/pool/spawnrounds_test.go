package pool_test

import (
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ferry-dev/ferry/agent/internal/agenttest"
	"github.com/ferry-dev/ferry/agent/pool"
	ferryv1 "github.com/ferry-dev/ferry/api/v1alpha1"
	"github.com/ferry-dev/ferry/controllers/contract"
)

// youngDeathCounted is the status's count of failed rounds when its
// lastSpawnError is a young death; -1 otherwise.
func youngDeathCounted(s pool.Status) int {
	if e := s.LastSpawnError; e == nil || !contract.DiedAfterReadyIn(e.Reason) {
		return -1
	}
	return s.SpawnFailures
}

// TestSpawnFailuresCountsRounds: the two young workers of a pool die
// together (killed at once, as an OOM sweep or a database gone away would
// have them): the status reports one failed round (SpawnFailures 1), as
// their replacements are spawned at once and may live; only once those
// die too does it read 2, kubectl ferry restart --wait's crash loop.
// Before, it counted deaths: 2 at the first event (the wait ended on a
// passing fault), 4 at the second.
func TestSpawnFailuresCountsRounds(t *testing.T) {
	book := agenttest.NewLogbook(t)
	log := book.Logger()
	root, _ := filepath.Abs("testdata/bootdie")
	e := agenttest.Start(t, pool.Config{Name: "t/rounds", Revision: "1", Template: agenttest.WSGIAt(root, 2, 2)},
		agenttest.Options{Tick: 50 * time.Millisecond, Log: &log})
	for round := 1; round <= 2; round++ {
		s := e.WaitFor(t, time.Minute, "2 ready workers", func(s pool.Status) bool {
			return agenttest.Ready(2)(s) && len(book.Find(logCrashed)) == 2*(round-1)
		})
		for _, pid := range pids(s) {
			if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
		}
		book.WaitForN(t, logCrashed, 2*round)
		// Their replacements live for the crash window before the count
		// starts over: read at once, it is the round's.
		if n := youngDeathCounted(e.Pool.Status()); n != round {
			t.Errorf("round %d, both its workers died young: spawnFailures %d, want %d (rounds, not deaths)", round, n, round)
		}
	}
}

// TestSpawnFailuresStartOverAfterANeedPassed: a spawn the pool needs
// fails, and the need passes before the retry (a spike over; here
// minProcesses raised and lowered again): the scaling error is cleared,
// its backoff state kept. Once a later spawn of the revision works, the
// reported count starts over (the API says so), and a first young death
// after it reads 1, not 2, which kubectl ferry restart --wait would take
// for a crash loop. Before, the count stayed 1 beside the old
// lastSpawnError until the revision changed, and the death read 2.
func TestSpawnFailuresStartOverAfterANeedPassed(t *testing.T) {
	e, book, need := startNeedFails(t, "t/needs")
	need(2)
	e.WaitFor(t, time.Minute, "a scaling error", func(s pool.Status) bool { return s.ScalingError != nil })
	need(1) // within the 1s backoff: nothing retries spawn 2
	book.WaitFor(t, "Cleared scaling error: the pool needs no spawn now")
	if s := e.Pool.Status(); s.SpawnFailures != 1 || s.ScalingError != nil {
		t.Errorf("the need passed: spawnFailures %d, scaling error %v; want 1 beside lastSpawnError, none", s.SpawnFailures, s.ScalingError)
	}
	need(2) // spawn 3 works
	s := e.WaitFor(t, time.Minute, "2 ready workers", agenttest.Ready(2))
	if s.SpawnFailures != 0 || s.LastSpawnError == nil {
		t.Errorf("a spawn worked after the need passed: spawnFailures %d, lastSpawnError %v; want 0, the failure kept",
			s.SpawnFailures, s.LastSpawnError)
	}
	young := s.Processes[len(s.Processes)-1] // the pool lists its workers as it added them
	if err := syscall.Kill(int(young.PID), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	book.WaitFor(t, logCrashed)
	if n := youngDeathCounted(e.Pool.Status()); n != 1 {
		t.Errorf("a first young death after the need passed: spawnFailures %d, want 1", n)
	}
}

// TestSpawnFailuresKeptUntilAReplacementLasts: a spawn the pool needs
// fails, and its retry is ready: the scaling error goes (the pool is not
// failing now), but a process that is ready may yet die young, the next
// round of the same run, so the count of failed rounds stays beside
// lastSpawnError until the retry has lived the crash window; then the
// pool logs the recovery and the count starts over. Before, the retry
// being ready started the count over, and a death of it read 1 again:
// failed boots alternating with young deaths never read 2
// (TestFailedBootsBetweenYoungDeathsAreOneLoop).
func TestSpawnFailuresKeptUntilAReplacementLasts(t *testing.T) {
	e, book, need := startNeedFails(t, "t/kept")
	need(2)
	s := e.WaitFor(t, time.Minute, "2 ready workers, spawn 3 the retry of spawn 2", agenttest.Ready(2))
	if s.SpawnFailures != 1 || s.LastSpawnError == nil || s.ScalingError != nil {
		t.Errorf("the retry of a failed spawn ready: spawnFailures %d, lastSpawnError %v, scaling error %v; want 1 kept beside it, none",
			s.SpawnFailures, s.LastSpawnError, s.ScalingError)
	}
	got := book.WaitFor(t, "Recovered")
	if got.Msg != "Recovered from failed spawns: a worker has lived past the crash window" {
		t.Errorf("recovery logged as %q", got.Msg)
	}
	if s := e.Pool.Status(); s.SpawnFailures != 0 {
		t.Errorf("the retry lived the crash window: spawnFailures %d, want 0", s.SpawnFailures)
	}
}

// TestSpawnFailuresStartOverWhenTheirRetryIsStopped: a spawn the pool
// needs fails, its retry is ready (the count of failed rounds kept beside
// lastSpawnError: the retry may yet die young), and then the need passes
// and the pool stops the retry itself before it lived the crash window
// (here an idle stop, minProcesses lowered; maxProcesses lowered would do
// the same). No worker is left to end the run by lasting: the pool ends
// it as for a need that passed, the count back to 0, the failure kept.
// Before, the run went on for good: the status read "1 round" beside the
// failure, and a failure hours later counted as the run's second round,
// with the longer backoff and, of young deaths, the hold.
func TestSpawnFailuresStartOverWhenTheirRetryIsStopped(t *testing.T) {
	e, book, need := startNeedFails(t, "t/retrystopped", func(tmpl *ferryv1.AppTemplate) {
		tmpl.Pool.IdleTimeout = &metav1.Duration{Duration: time.Second}
	})
	old := pids(e.Pool.Status())
	need(2)
	s := e.WaitFor(t, time.Minute, "2 ready workers, spawn 3 the retry of spawn 2", agenttest.Ready(2))
	if s.SpawnFailures != 1 || s.LastSpawnError == nil {
		t.Fatalf("the retry of a failed spawn ready: spawnFailures %d, lastSpawnError %v; want 1 kept beside it",
			s.SpawnFailures, s.LastSpawnError)
	}
	// A request now goes to the old worker (the oldest of the idle ones),
	// which leaves the retry the longer idle: the one the idle stop takes.
	if _, body := get(t, e.URL); strings.TrimSpace(body) != strconv.Itoa(old[0]) {
		t.Fatalf("the request was served by pid %s, want the old worker %d", strings.TrimSpace(body), old[0])
	}
	need(1)
	e.WaitFor(t, time.Minute, "the retry stopped, the old worker left", func(s pool.Status) bool {
		return agenttest.Ready(1)(s) && slices.Equal(pids(s), old)
	})
	s = e.WaitFor(t, 30*time.Second, "spawnFailures back to 0, the run ended with its retry gone", func(s pool.Status) bool {
		return s.SpawnFailures == 0
	})
	if s.LastSpawnError == nil || s.ScalingError != nil {
		t.Errorf("the run ended: lastSpawnError %v, scaling error %v; want the failure kept, none", s.LastSpawnError, s.ScalingError)
	}
	if l := book.Find("Ended the run of failed spawns"); len(l) != 1 {
		t.Errorf("%d lines saying the run of failed spawns ended, want 1", len(l))
	}
	if l := book.Find("Recovered"); len(l) > 0 {
		t.Errorf("logged %q: no worker of the run lived or served", l[0].Msg)
	}
}

// startNeedFails starts a pool named name of one flaky worker (its
// template as tweak sets it), logging to the logbook it returns, and waits
// until it is ready; need sets its minProcesses. Spawn 2, the first a
// need asks for, fails; the others work.
func startNeedFails(t *testing.T, name string, tweak ...func(*ferryv1.AppTemplate)) (*agenttest.Env, *agenttest.Logbook, func(int32)) {
	t.Helper()
	book := agenttest.NewLogbook(t)
	log := book.Logger()
	cfg := pool.Config{Name: name, Revision: "1", Template: flaky(t, 1, 2, "2")}
	for _, f := range tweak {
		f(&cfg.Template)
	}
	e := agenttest.Start(t, cfg, agenttest.Options{Tick: 50 * time.Millisecond, Log: &log})
	e.WaitFor(t, time.Minute, "1 ready worker", agenttest.Ready(1))
	return e, book, func(n int32) {
		cfg.Template.Pool.MinProcesses = n
		e.Pool.Update(cfg)
	}
}
