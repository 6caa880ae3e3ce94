package pool

import (
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	ferryv1 "github.com/ferry-dev/ferry/api/v1alpha1"
)

func TestConditions(t *testing.T) {
	now := time.Unix(1_000_000, 0)
	ready := Status{Revision: "2", Strategy: ferryv1.RestartRolling, MinProcesses: 2, RevisionStarted: true,
		Counts: ferryv1.ProcessCounts{Ready: 2, Updated: 2, Total: 2}}
	with := func(f func(*Status)) Status { s := ready; f(&s); return s }
	spawnErr := &ferryv1.SpawnError{Revision: "3", Reason: "the app failed to load: ModuleNotFoundError: No module named 'x'",
		Output: "Traceback (most recent call last):\n  File \"app.py\", line 1\nModuleNotFoundError: No module named 'x'"}

	type want struct {
		status  metav1.ConditionStatus
		reason  string
		message string // a fragment
	}
	cases := []struct {
		name string
		s    Status
		want map[string]want
	}{
		{"steady", ready, map[string]want{
			ferryv1.ConditionReady:                    {metav1.ConditionTrue, ferryv1.ReasonProcessesReady, "2 of 2 processes ready (minProcesses 2)"},
			ferryv1.ConditionRollingRestart:           {metav1.ConditionFalse, ferryv1.ReasonRolloutComplete, "2 of 2 processes on revision 2"},
			ferryv1.ConditionResistingDeploymentError: {metav1.ConditionFalse, ferryv1.ReasonNoDeploymentError, "No deployment error is being resisted"},
			ferryv1.ConditionScalingError:             {metav1.ConditionFalse, ferryv1.ReasonSpawnsHealthy, "No spawn is failing"},
		}},
		{"below min", with(func(s *Status) { s.Counts.Ready = 1 }), map[string]want{
			ferryv1.ConditionReady: {metav1.ConditionFalse, ferryv1.ReasonProcessesNotReady, "1 of 2 processes ready, minProcesses is 2"},
		}},
		{"no process at all", with(func(s *Status) { s.Counts = ferryv1.ProcessCounts{}; s.MinProcesses = 0 }), map[string]want{
			ferryv1.ConditionReady: {metav1.ConditionFalse, ferryv1.ReasonProcessesNotReady, "0 of 0"},
		}},
		{"rolling", with(func(s *Status) {
			s.Restart = &ferryv1.RestartProgress{Revision: "3", Done: 1, Total: 2, ReplacingPID: 42}
		}), map[string]want{
			ferryv1.ConditionRollingRestart: {metav1.ConditionTrue, ferryv1.ReasonRollingOut, "process 2/2, replacing pid 42, to revision 3"},
			ferryv1.ConditionReady:          {metav1.ConditionTrue, ferryv1.ReasonProcessesReady, ""},
		}},
		{"rolling, its spawns failing", with(func(s *Status) {
			s.Restart = &ferryv1.RestartProgress{Revision: "3", Done: 1, Total: 2}
			s.ScalingError, s.ScalingFailures = spawnErr, 2
		}), map[string]want{
			ferryv1.ConditionRollingRestart: {metav1.ConditionTrue, ferryv1.ReasonRollingOut,
				"process 2/2, to revision 3; its spawns fail (see ScalingError), retried with backoff, at most a minute apart, " +
					"until one works or another revision is requested"},
		}},
		{"blocking", with(func(s *Status) {
			s.Strategy = ferryv1.RestartBlocking
			s.Restart = &ferryv1.RestartProgress{Revision: "3", Total: 2}
		}), map[string]want{
			ferryv1.ConditionRollingRestart: {metav1.ConditionTrue, ferryv1.ReasonRestartingBlocking, "blocking restart to revision 3"},
		}},
		{"resisting", with(func(s *Status) { s.Resisting = spawnErr }), map[string]want{
			ferryv1.ConditionResistingDeploymentError: {metav1.ConditionTrue, ferryv1.ReasonSpawnFailed,
				"Resisting deployment error: revision 3 failed to spawn: the app failed to load: ModuleNotFoundError"},
			ferryv1.ConditionRollingRestart: {metav1.ConditionFalse, ferryv1.ReasonRolloutHalted, "halted by a deployment error"},
			ferryv1.ConditionReady:          {metav1.ConditionTrue, ferryv1.ReasonProcessesReady, ""},
		}},
		{"resisting carries the traceback", with(func(s *Status) { s.Resisting = spawnErr }), map[string]want{
			ferryv1.ConditionResistingDeploymentError: {metav1.ConditionTrue, ferryv1.ReasonSpawnFailed, "Traceback (most recent call last)"},
		}},
		{"incomplete restart", with(func(s *Status) {
			s.Counts.Updated = 1
			s.LastRestart = &RestartSummary{Revision: "2", Failed: 1, Total: 2, Errors: []ferryv1.SpawnError{*spawnErr}}
		}), map[string]want{
			ferryv1.ConditionRollingRestart: {metav1.ConditionFalse, ferryv1.ReasonRolloutIncomplete,
				"1 of 2 processes could not be replaced and keep serving an older revision (resistDeploymentErrors is false): the app failed"},
		}},
		// A reload turned resistance on since: it was off for that restart.
		{"incomplete restart, resistance on since", with(func(s *Status) {
			s.Counts.Updated, s.ResistDeploymentErrors = 1, true
			s.LastRestart = &RestartSummary{Revision: "2", Failed: 1, Total: 2, Errors: []ferryv1.SpawnError{*spawnErr}}
		}), map[string]want{
			ferryv1.ConditionRollingRestart: {metav1.ConditionFalse, ferryv1.ReasonRolloutIncomplete,
				"1 of 2 processes could not be replaced and keep serving an older revision " +
					"(resistDeploymentErrors was false when revision 2 rolled): the app failed"},
		}},
		{"scaling error", with(func(s *Status) {
			s.ScalingError, s.ScalingFailures = spawnErr, 3
			s.ScalingRetryAt = &metav1.Time{Time: now.Add(4 * time.Second)}
		}), map[string]want{
			ferryv1.ConditionScalingError:             {metav1.ConditionTrue, ferryv1.ReasonSpawnBackoff, "failed 3 time(s): the app failed to load"},
			ferryv1.ConditionResistingDeploymentError: {metav1.ConditionFalse, ferryv1.ReasonNoDeploymentError, "No deployment error is being resisted"},
		}},
		{"scaling error of no fault of the revision", with(func(s *Status) {
			s.ScalingError, s.ScalingBlocked = spawnErr, true
		}), map[string]want{
			ferryv1.ConditionScalingError: {metav1.ConditionTrue, ferryv1.ReasonSpawnBlocked, "the app failed to load"},
		}},
		{"scaling error next attempt", with(func(s *Status) {
			s.ScalingError = spawnErr
			s.ScalingRetryAt = &metav1.Time{Time: now.Add(4 * time.Second)}
		}), map[string]want{
			ferryv1.ConditionScalingError: {metav1.ConditionTrue, ferryv1.ReasonSpawnBackoff,
				"next attempt at 13:46:44 UTC; retried with backoff, at most a minute apart, until one works or another revision is requested"},
		}},
		{"nothing serves and spawns fail", with(func(s *Status) {
			s.Counts = ferryv1.ProcessCounts{}
			s.ScalingError = spawnErr
		}), map[string]want{
			ferryv1.ConditionReady: {metav1.ConditionFalse, ferryv1.ReasonProcessesNotReady, "spawns are failing: the app failed to load"},
		}},
		// A new pool, or one given a revision never ready here, with no
		// restart (no older process to replace): it boots, or cannot start.
		{"booting its first process", with(func(s *Status) {
			s.RevisionStarted, s.Counts = false, ferryv1.ProcessCounts{Updated: 1, Total: 1}
			s.Processes = []ferryv1.ProcessInfo{{PID: 7, Revision: "2", State: ferryv1.ProcessSpawning}}
		}), map[string]want{
			ferryv1.ConditionRollingRestart: {metav1.ConditionFalse, ferryv1.ReasonRolloutComplete,
				"no process of revision 2 has been ready yet (1 spawning)"},
			ferryv1.ConditionScalingError: {metav1.ConditionFalse, ferryv1.ReasonSpawnsHealthy, "No spawn is failing"},
			ferryv1.ConditionReady:        {metav1.ConditionFalse, ferryv1.ReasonProcessesNotReady, "0 of 1 processes ready"},
		}},
		{"booting, no process yet", with(func(s *Status) { s.RevisionStarted, s.Counts = false, ferryv1.ProcessCounts{} }),
			map[string]want{
				ferryv1.ConditionRollingRestart: {metav1.ConditionFalse, ferryv1.ReasonRolloutComplete,
					"no process of revision 2 has been ready yet"},
			}},
		{"cannot start", with(func(s *Status) {
			s.RevisionStarted, s.Counts = false, ferryv1.ProcessCounts{}
			s.ScalingError, s.ScalingFailures = &ferryv1.SpawnError{Revision: "2", Reason: spawnErr.Reason}, 4
		}), map[string]want{
			ferryv1.ConditionRollingRestart: {metav1.ConditionFalse, ferryv1.ReasonRolloutHalted,
				"revision 2 cannot start: no process of it has been ready, and its spawns fail (retried with backoff; see ScalingError)"},
			ferryv1.ConditionScalingError: {metav1.ConditionTrue, ferryv1.ReasonSpawnBackoff,
				"spawn of revision 2 failed 4 time(s), and no process of it has been ready yet: the app failed to load"},
			ferryv1.ConditionReady: {metav1.ConditionFalse, ferryv1.ReasonProcessesNotReady, "spawns are failing"},
		}},
		{"blocked before it started", with(func(s *Status) {
			s.RevisionStarted, s.Counts = false, ferryv1.ProcessCounts{}
			s.ScalingError, s.ScalingBlocked = &ferryv1.SpawnError{Revision: "2", Reason: "env S: the agent may not get Secrets"}, true
		}), map[string]want{
			ferryv1.ConditionRollingRestart: {metav1.ConditionFalse, ferryv1.ReasonRolloutComplete,
				"no process of revision 2 has been ready yet: its spawns are blocked for no fault of the revision (see ScalingError), retried with backoff"},
			ferryv1.ConditionScalingError: {metav1.ConditionTrue, ferryv1.ReasonSpawnBlocked, "env S: the agent may not get Secrets"},
		}},
		{"cannot start, a spawn retried", with(func(s *Status) {
			s.RevisionStarted, s.Counts = false, ferryv1.ProcessCounts{Updated: 1, Total: 1}
			s.Processes = []ferryv1.ProcessInfo{{PID: 7, Revision: "2", State: ferryv1.ProcessSpawning}}
			s.ScalingError = &ferryv1.SpawnError{Revision: "2", Reason: spawnErr.Reason}
		}), map[string]want{
			ferryv1.ConditionRollingRestart: {metav1.ConditionFalse, ferryv1.ReasonRolloutHalted, "revision 2 cannot start"},
		}},
		// Ready once, then crashed soon after: it started, and its
		// spawns failing now are a scaling error of a revision that ran.
		{"started, then crashes", with(func(s *Status) {
			s.Counts = ferryv1.ProcessCounts{}
			s.ScalingError = &ferryv1.SpawnError{Revision: "2", Reason: "exited with status 3 200ms after it was ready"}
		}), map[string]want{
			ferryv1.ConditionRollingRestart: {metav1.ConditionFalse, ferryv1.ReasonRolloutComplete, "0 of 0 processes on revision 2"},
			ferryv1.ConditionScalingError: {metav1.ConditionTrue, ferryv1.ReasonSpawnBackoff,
				"spawn of revision 2 failed 1 time(s): exited with status 3"},
		}},
		// What a restart or resistance says comes first: the revision has
		// older processes to replace, or to resist with.
		{"resisting a revision never ready", with(func(s *Status) { s.RevisionStarted, s.Resisting = false, spawnErr }),
			map[string]want{
				ferryv1.ConditionRollingRestart: {metav1.ConditionFalse, ferryv1.ReasonRolloutHalted, "halted by a deployment error"},
			}},
		{"restarting to a revision not ready yet", with(func(s *Status) {
			s.RevisionStarted = false
			s.Restart = &ferryv1.RestartProgress{Revision: "2", Total: 2}
		}), map[string]want{
			ferryv1.ConditionRollingRestart: {metav1.ConditionTrue, ferryv1.ReasonRollingOut, "process 1/2"},
		}},
	}
	for _, tc := range cases {
		got := map[string]metav1.Condition{}
		for _, c := range tc.s.Conditions(now) {
			got[c.Type] = c
		}
		if len(got) != 4 {
			t.Errorf("%s: %d conditions, want all 4 types every time", tc.name, len(got))
		}
		for typ, c := range got {
			if c.Message == "" {
				t.Errorf("%s: %s = %s/%s has no message", tc.name, typ, c.Status, c.Reason)
			}
		}
		for typ, w := range tc.want {
			c := got[typ]
			if c.Status != w.status || c.Reason != w.reason || !strings.Contains(c.Message, w.message) {
				t.Errorf("%s: %s = %s/%s %q; want %s/%s containing %q", tc.name, typ, c.Status, c.Reason, c.Message,
					w.status, w.reason, w.message)
			}
		}
	}
}

func TestExcerptKeepsTheEndOnWholeLines(t *testing.T) {
	long := strings.Repeat("frame line\n", 200) + "ValueError: the cause"
	got := excerpt(long, 100)
	if !strings.HasSuffix(got, "ValueError: the cause") || len(got) > 110 || !strings.HasPrefix(got, "...\n") {
		t.Fatalf("excerpt = %q", got)
	}
	if excerpt("short", 100) != "short" {
		t.Fatal("short text changed")
	}
}

// TestStartedRevisionsAreForgotten: the pool remembers which revisions
// started (RevisionStarted) only for the target and those of live
// workers, not every revision it ever rolled through.
func TestStartedRevisionsAreForgotten(t *testing.T) {
	p := &Pool{cfg: Config{Revision: "1"}, started: map[string]bool{"1": true},
		workers: []*Worker{{Revision: "1", state: ferryv1.ProcessReady}},
		changed: make(chan struct{}), kick: make(chan struct{}, 1)}
	p.Update(Config{Revision: "2"})
	if !p.started["1"] || p.Status().RevisionStarted {
		t.Fatalf("after 1 -> 2 with a worker of 1 live: started %v, RevisionStarted %v; want 1 kept, 2 not started",
			p.started, p.Status().RevisionStarted)
	}
	p.workers[0].Revision = "2" // replaced by a worker of 2, ready
	p.started["2"] = true
	p.Update(Config{Revision: "3"})
	if len(p.started) != 1 || !p.started["2"] {
		t.Fatalf("after 2 -> 3 with only a worker of 2 live: started %v, want only 2", p.started)
	}
	p.Update(Config{Revision: "2"})
	if !p.Status().RevisionStarted {
		t.Fatal("back on 2, whose worker serves: RevisionStarted is false")
	}
}
