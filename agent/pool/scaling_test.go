package pool

import (
	"errors"
	"testing"
	"time"

	"github.com/go-logr/logr"

	ferryv1 "github.com/ferry-dev/ferry/api/v1alpha1"
)

// TestScalingErrorOnlyOfARevisionSpawned: a failed spawn backs the pool
// off only when the pool still spawns its revision. One that began before
// a newer revision was asked for, or before the pool came to resist its
// own, is recorded (lastSpawnError) but is no scaling error: nothing would
// clear it, and its backoff would hold up the spawns of the revision the
// pool does spawn, those that keep a resisting pool at minProcesses.
func TestScalingErrorOnlyOfARevisionSpawned(t *testing.T) {
	resisting := func(p *Pool) {
		p.resisting = &ferryv1.SpawnError{Revision: "2"}
		p.resistFrom = spawnable{revision: "1"}
	}
	cases := []struct {
		name     string
		revision string
		setup    func(*Pool)
		backsOff bool
	}{
		{"the target", "2", func(*Pool) {}, true},
		{"a revision asked for before", "1", func(*Pool) {}, false},
		{"the resisted revision", "2", resisting, false},
		{"the revision resisted from", "1", resisting, true},
	}
	for _, tc := range cases {
		p := &Pool{cfg: Config{Revision: "2"}, log: logr.Discard(), changed: make(chan struct{})}
		tc.setup(p)
		p.recordScalingError(&Worker{Revision: tc.revision}, errors.New("out of memory"), SpawnScale)
		if got := p.scaling.err != nil && p.scaling.failures == 1; got != tc.backsOff {
			t.Errorf("%s: scaling %+v, want a scaling error and backoff: %v", tc.name, p.scaling, tc.backsOff)
		}
		if p.lastErr == nil || p.lastErr.Revision != tc.revision {
			t.Errorf("%s: last spawn error %+v, want revision %s's recorded", tc.name, p.lastErr, tc.revision)
		}
	}
}

// TestBackoffStepsPerRound: failures of attempts begun before the last
// backoff step share it (one event: N processes dying together, N spawns
// started together), and are counted; an attempt begun after the step
// (once the backoff is over) takes the next. A crash's first step backs
// off none.
func TestBackoffStepsPerRound(t *testing.T) {
	cases := []struct {
		name     string
		failures []failure
		steps    int
	}{
		{"one spawn after another", []failure{
			{0, -time.Second, false, time.Second, 0, false},
			{time.Second + 100*time.Millisecond, time.Second, false, 3100 * time.Millisecond, 0, false},
			{3200 * time.Millisecond, 3100 * time.Millisecond, false, 7200 * time.Millisecond, 0, false},
		}, 3},
		{"four spawns started together", []failure{
			{0, -time.Second, false, time.Second, 0, false},
			{10 * time.Millisecond, -time.Second, false, time.Second, 0, false},
			{20 * time.Millisecond, -time.Second, false, time.Second, 0, false},
			{30 * time.Millisecond, -time.Second, false, time.Second, 0, false},
			// The round after the backoff: one step more.
			{1100 * time.Millisecond, time.Second, false, 3100 * time.Millisecond, 0, false},
			{1110 * time.Millisecond, time.Second, false, 3100 * time.Millisecond, 0, false},
		}, 2},
		{"four workers killed together, twice", []failure{
			{0, -5 * time.Second, true, 0, 0, false},
			{time.Millisecond, -5 * time.Second, true, 0, 0, false},
			{2 * time.Millisecond, -4 * time.Second, true, 0, 0, false},
			{3 * time.Millisecond, -4 * time.Second, true, 0, 0, false},
			// Their replacements, spawned at once, killed together.
			{2 * time.Second, 10 * time.Millisecond, true, 3 * time.Second, 0, false},
			{2*time.Second + time.Millisecond, 10 * time.Millisecond, true, 3 * time.Second, 0, false},
			{2*time.Second + 2*time.Millisecond, 12 * time.Millisecond, true, 3 * time.Second, 0, false},
			{2*time.Second + 3*time.Millisecond, 12 * time.Millisecond, true, 3 * time.Second, 0, false},
		}, 2},
		{"a worker of the round dies later", []failure{
			{0, -5 * time.Second, true, 0, 0, false},
			{4 * time.Second, -5 * time.Second, true, 0, 0, false},
		}, 1},
		{"a worker found dying, replaced before its exit", []failure{
			{time.Second, -5 * time.Second, true, time.Second, 500 * time.Millisecond, false},
			// Its replacement, spawned as it was found dying, dies too.
			{3 * time.Second, 600 * time.Millisecond, true, 4 * time.Second, 0, false},
		}, 2},
	}
	for _, tc := range cases {
		var s scalingState
		for i, got := range replay(&s, tc.failures) {
			if want := tc.failures[i].until; !got.Equal(tableStart.Add(want)) {
				t.Errorf("%s: failure %d: next attempt at +%s, want +%s", tc.name, i+1, got.Sub(tableStart), want)
			}
		}
		if s.failures != len(tc.failures) || s.steps != tc.steps {
			t.Errorf("%s: %d failures in %d steps, want %d in %d", tc.name, s.failures, s.steps, len(tc.failures), tc.steps)
		}
	}
}

// TestHoldFromTheSecondRound: a crash loop's hold for the manager's
// return is timed from its second round (holdFrom: the first young death
// recorded with rounds at 2), however long after the first death it comes
// (a replacement must boot before it dies): not from one round of deaths
// together, not again from a later round (the hold is once a loop), but
// from a later death within its window (a survivor of the round: the
// manager returns a node only once none of the revision runs). A
// failed spawn is one of the loop's rounds, not its end: young deaths
// after failed spawns are held from the first (before, a failed spawn
// ended the loop, and the spawn that worked after it started the count
// over: TestFailedBootsBetweenYoungDeathsAreOneLoop).
func TestHoldFromTheSecondRound(t *testing.T) {
	const none = time.Duration(-1)
	cases := []struct {
		name     string
		failures []failure
		holdFrom time.Duration // none: not set
	}{
		{"one young death", []failure{young(0, -5*time.Second)}, none},
		{"two young deaths of one round", []failure{
			young(0, -5*time.Second),
			young(time.Millisecond, -4*time.Second),
		}, none},
		{"a second round within the first death's window", []failure{
			young(0, -5*time.Second),
			young(3*time.Second, 10*time.Millisecond),
		}, 3 * time.Second},
		{"a second round past the first death's window (a slow boot)", []failure{
			young(0, -5*time.Second),
			young(12*time.Second, 10*time.Millisecond),
		}, 12 * time.Second},
		{"the second round's other death, in the hold: from it", []failure{
			young(0, -5*time.Second),
			young(12*time.Second, 10*time.Millisecond),
			young(16*time.Second, 11*time.Millisecond),
		}, 16 * time.Second},
		{"a third round, the hold over: not again", []failure{
			young(0, -5*time.Second),
			young(12*time.Second, 10*time.Millisecond),
			young(30*time.Second, 22*time.Second),
		}, 12 * time.Second},
		{"a failed spawn in the hold: the loop goes on", []failure{
			young(0, -5*time.Second),
			young(3*time.Second, 10*time.Millisecond),
			spawnFailed(5*time.Second, 4*time.Second),
		}, 3 * time.Second},
		{"a young death after a failed spawn: the second round", []failure{
			spawnFailed(0, -time.Second),
			young(3*time.Second, 2*time.Second),
		}, 3 * time.Second},
		{"young, failed, young: held from the second death", []failure{
			young(0, -5*time.Second),
			spawnFailed(time.Second, 10*time.Millisecond),
			young(4*time.Second, 3*time.Second),
		}, 4 * time.Second},
		// Found by review: a young death of a worker spawned after the
		// hold began is no survivor of the round that started it; before,
		// any young death within the window moved it.
		{"a young death of a worker begun after the hold: not from it", []failure{
			young(0, -5*time.Second),
			young(12*time.Second, 10*time.Millisecond),
			young(16*time.Second, 13*time.Second),
		}, 12 * time.Second},
		// Found by review: a spawn blocked by the machine (a port taken, a
		// Secret not read) is no fault of the revision and no round of a
		// run; before, it was the first, and the revision's first young
		// death after its retry was ready was held as the second.
		{"a blocked spawn, then one young death: the first round", []failure{
			spawnBlocked(0, -time.Second),
			young(3*time.Second, 2*time.Second),
		}, none},
		{"young, blocked, young: held from the second death", []failure{
			young(0, -5*time.Second),
			spawnBlocked(time.Second, 10*time.Millisecond),
			young(4*time.Second, 3*time.Second),
		}, 4 * time.Second},
	}
	for _, tc := range cases {
		var s scalingState
		replay(&s, tc.failures)
		want := time.Time{}
		if tc.holdFrom != none {
			want = tableStart.Add(tc.holdFrom)
		}
		if !s.holdFrom.Equal(want) {
			t.Errorf("%s: hold from %v, want %v (%d rounds)", tc.name, s.holdFrom, want, s.rounds)
		}
	}
}

// TestBlockedSpawnsCountedApart: failed spawns of no fault of the
// revision's (a port taken, a Secret not read: blocked) back off as any,
// and the status counts their rounds in a row beside the last of them
// (SpawnFailures), but they are no rounds of the revision's run, which the
// hold and the restart waits read: a young death after them is a first
// round, and a blocked spawn between two young deaths neither ends the
// run nor counts in it.
func TestBlockedSpawnsCountedApart(t *testing.T) {
	cases := []struct {
		name     string
		failures []failure
		counted  int // what the status reports beside the last
		rounds   int
		steps    int
	}{
		{"two blocked rounds", []failure{
			spawnBlocked(0, -time.Second),
			spawnBlocked(1100*time.Millisecond, time.Second),
		}, 2, 0, 2},
		{"a blocked spawn, then one young death", []failure{
			spawnBlocked(0, -time.Second),
			young(3*time.Second, 2*time.Second),
		}, 1, 1, 2},
		{"young, blocked: the blocked one's count beside it", []failure{
			young(0, -5*time.Second),
			spawnBlocked(time.Second, 10*time.Millisecond),
		}, 1, 1, 2},
		{"young, blocked, young", []failure{
			young(0, -5*time.Second),
			spawnBlocked(time.Second, 10*time.Millisecond),
			young(4*time.Second, 3*time.Second),
		}, 2, 2, 3},
	}
	for _, tc := range cases {
		var s scalingState
		replay(&s, tc.failures)
		if s.counted() != tc.counted || s.rounds != tc.rounds || s.steps != tc.steps {
			t.Errorf("%s: counted %d, %d rounds of the run, %d steps; want %d, %d, %d",
				tc.name, s.counted(), s.rounds, s.steps, tc.counted, tc.rounds, tc.steps)
		}
	}
}

// TestRunOfFailedSpawnsEndsWithItsRetries: a run of failed spawns whose
// error a retry ready cleared ends, its count starting over, once the pool
// needs no spawn and no worker ready since the run began is left (the
// pool stopped them: min or max lowered, idle); not while one is, ready or
// draining (it may yet die young, or last and end the run itself), nor
// where the run has a young death (it goes on until a worker lasts).
func TestRunOfFailedSpawnsEndsWithItsRetries(t *testing.T) {
	now := time.Now()
	loop := now.Add(-5 * time.Second)
	old := &Worker{ID: 1, Revision: "1", state: ferryv1.ProcessReady, readyAt: now.Add(-time.Minute)}
	retry := func(state ferryv1.ProcessState) *Worker {
		return &Worker{ID: 3, Revision: "1", state: state, readyAt: now.Add(-3 * time.Second)}
	}
	for _, tc := range []struct {
		name    string
		workers []*Worker
		crash   bool
		ended   bool
	}{
		{name: "the retry stopped: ended", workers: []*Worker{old}, ended: true},
		{name: "the retry ready", workers: []*Worker{old, retry(ferryv1.ProcessReady)}},
		{name: "the retry draining", workers: []*Worker{old, retry(ferryv1.ProcessDraining)}},
		{name: "none left at all: ended", ended: true},
		{name: "a young death in the run", workers: []*Worker{old}, crash: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := &Pool{lasted: map[string]bool{}, changed: make(chan struct{}), log: logr.Discard()}
			p.cfg.Revision = "1"
			p.cfg.Template.Pool.MinProcesses, p.cfg.Template.Pool.MaxProcesses = 0, 2
			p.workers = tc.workers
			p.scaling.last = &ferryv1.SpawnError{Revision: "1"}
			p.scaling.failures, p.scaling.steps, p.scaling.rounds = 1, 1, 1
			p.scaling.loopSince, p.scaling.steppedAt = loop, loop
			p.scaling.until = loop.Add(time.Second)
			if tc.crash {
				p.scaling.crashSince = loop
			}
			v := p.viewLocked(now)
			p.clearPassedScalingErrorLocked(v, decide(v))
			if ended := p.scaling.loopSince.IsZero() && p.scaling.rounds == 0; ended != tc.ended {
				t.Errorf("run ended %v, want %v (loop since %v, %d rounds)", ended, tc.ended, p.scaling.loopSince, p.scaling.rounds)
			}
			if p.scaling.steps != 1 {
				t.Errorf("backoff steps %d, want 1 kept (the next spike's failure backs off as long)", p.scaling.steps)
			}
		})
	}
}

// failure is a row of the tables that replay failures on a scalingState
// (replay), its times from tableStart: recorded at now, of an attempt
// begun at began, a young death (crash) or a failed spawn, found failing
// at found (0: at now); until is when the next attempt may be made, for
// the tables that check it.
type failure struct {
	now, began time.Duration
	crash      bool
	until      time.Duration
	found      time.Duration
	// blocked: a failed spawn of no fault of the revision's
	// (notTheRevisions).
	blocked bool
}

// young and spawnFailed are the failures whose next attempt no table
// checks.
func young(now, began time.Duration) failure {
	return failure{now: now, began: began, crash: true}
}

func spawnFailed(now, began time.Duration) failure { return failure{now: now, began: began} }

// spawnBlocked is a failed spawn of no fault of the revision's.
func spawnBlocked(now, began time.Duration) failure {
	return failure{now: now, began: began, blocked: true}
}

var tableStart = time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)

// replay records fs on s in turn, and returns when each let the next
// attempt be made.
func replay(s *scalingState, fs []failure) []time.Time {
	next := make([]time.Time, len(fs))
	for i, f := range fs {
		found := f.now
		if f.found != 0 {
			found = f.found
		}
		s.blocked = f.blocked // as backOffLocked sets it
		next[i] = s.fail(tableStart.Add(f.now), tableStart.Add(f.began), tableStart.Add(found), f.crash, f.blocked)
	}
	return next
}
