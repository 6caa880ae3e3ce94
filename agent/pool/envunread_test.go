package pool_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"k8s.io/utils/ptr"

	"github.com/ferry-dev/ferry/agent/internal/agenttest"
	"github.com/ferry-dev/ferry/agent/pool"
	"github.com/ferry-dev/ferry/agent/spawn"
	ferryv1 "github.com/ferry-dev/ferry/api/v1alpha1"
)

// unreadOnce fails its first read as the agent's envReader fails one the
// API server did not answer (spawn.EnvUnreadError), then answers.
type unreadOnce struct{ reads atomic.Int32 }

func (u *unreadOnce) Value(context.Context, ferryv1.EnvVarSource) (string, bool, error) {
	if u.reads.Add(1) == 1 {
		return "", false, &spawn.EnvUnreadError{Err: errors.New(`could not read Secret "django" in namespace t (is the API server reachable from the node?); the agent tries again: context deadline exceeded`)}
	}
	return "from the Secret", true, nil
}

// TestUnreadEnvIsNotADeploymentError: a rolling restart to a revision
// whose env valueFrom the API server did not answer once (a timeout, a
// refusal by RBAC) backs off and tries the step again, and completes: the
// revision is not resisted for it. Before, the failed read was a spawn
// error like the app's own, and the pool resisted a good revision (and
// the manager halted its rollout everywhere) until someone asked for
// another (found by review). While it backs off, its status says the
// failure is not the revision's (ScalingBlocked), or the manager would
// take the revision for one that cannot start and send the node back.
func TestUnreadEnvIsNotADeploymentError(t *testing.T) {
	root, _ := filepath.Abs("../spawn/testdata/cmd")
	tmpl := agenttest.WSGIAt(root, 1, 1)
	tmpl.App = ferryv1.AppSpec{Type: ferryv1.AppTypeCommand, Root: root, Command: []string{"python3", "server.py", "$(PORT)"}}
	src := &unreadOnce{}
	e := agenttest.Start(t, pool.Config{Name: "t/envunread", Revision: "1", Template: tmpl}, agenttest.Options{EnvFrom: src})
	e.WaitFor(t, time.Minute, "1 ready worker", agenttest.Ready(1))
	next := tmpl
	next.App.Env = []ferryv1.EnvVar{{Name: "S", ValueFrom: &ferryv1.EnvVarSource{SecretKeyRef: &ferryv1.KeySelector{Name: "django", Key: "S"}}}}
	e.Pool.Update(pool.Config{Name: "t/envunread", Revision: "2", Template: next})
	var backedOff, blocked int // statuses with revision 2's scaling error, and those saying it is not the revision's
	s := e.WaitFor(t, 2*time.Minute, "the restart to revision 2 over", func(s pool.Status) bool {
		if s.Resisting != nil {
			t.Fatalf("the pool resists revision 2 for a read the API server did not answer once: %s", s.Resisting.Reason)
		}
		if s.ScalingError != nil && s.ScalingError.Revision == "2" {
			backedOff++
			if s.ScalingBlocked {
				blocked++
			}
		}
		return s.LastRestart != nil && s.Restart == nil
	})
	if backedOff == 0 || blocked != backedOff {
		t.Errorf("%d of %d statuses backing off revision 2 said ScalingBlocked, want all and at least one: "+
			"the manager takes the others for a revision that cannot start", blocked, backedOff)
	}
	if len(s.Processes) != 1 || s.Processes[0].Revision != "2" {
		t.Errorf("processes %+v, want one of revision 2", s.Processes)
	}
	if n := src.reads.Load(); n < 2 {
		t.Errorf("%d reads of the Secret, want the failed one and another", n)
	}
	if s.LastSpawnError == nil || !strings.Contains(s.LastSpawnError.Reason, "the agent tries again") {
		t.Errorf("last spawn error %+v, want the failed read's", s.LastSpawnError)
	}
}

// TestBlockedStepThenTheAppsOwnFailure: with resistDeploymentErrors
// false, a restart step blocked once (the Secret not read) and then
// failing of the app's own (read since) ends that step, as any failed
// step does; the blocked backoff is not left behind as a scaling error
// that says the revision's spawns are blocked (review2 found it).
func TestBlockedStepThenTheAppsOwnFailure(t *testing.T) {
	root, _ := filepath.Abs("../spawn/testdata/cmd")
	tmpl := agenttest.WSGIAt(root, 1, 1)
	tmpl.App = ferryv1.AppSpec{Type: ferryv1.AppTypeCommand, Root: root, Command: []string{"python3", "server.py", "$(PORT)"}}
	tmpl.Restart.ResistDeploymentErrors = ptr.To(false)
	src := &unreadOnce{}
	e := agenttest.Start(t, pool.Config{Name: "t/blockedthenbroken", Revision: "1", Template: tmpl}, agenttest.Options{EnvFrom: src})
	e.WaitFor(t, time.Minute, "1 ready worker", agenttest.Ready(1))
	broken := tmpl
	broken.App.Command = []string{"python3", "-c", "import sys; sys.exit('broken in revision 2')"}
	broken.App.Env = []ferryv1.EnvVar{{Name: "S", ValueFrom: &ferryv1.EnvVarSource{SecretKeyRef: &ferryv1.KeySelector{Name: "django", Key: "S"}}}}
	e.Pool.Update(pool.Config{Name: "t/blockedthenbroken", Revision: "2", Template: broken})
	s := e.WaitFor(t, 2*time.Minute, "the restart to revision 2 over", func(s pool.Status) bool {
		return s.LastRestart != nil && s.Restart == nil
	})
	if lr := s.LastRestart; lr.Failed != 1 || lr.Outcome != pool.OutcomeWithErrors {
		t.Errorf("last restart %+v, want its one step failed (%s)", *lr, pool.OutcomeWithErrors)
	}
	if s.ScalingError != nil {
		t.Errorf("scaling error %+v (blocked %v) after the step failed of the app's own: want none, nothing backs off",
			*s.ScalingError, s.ScalingBlocked)
	}
	if n := src.reads.Load(); n != 2 {
		t.Errorf("%d reads of the Secret, want the failed one and the one before the app failed", n)
	}
}

// awayAfter answers "kept" until away is set, then as the agent's
// envReader does when the API server does not answer.
type awayAfter struct{ away atomic.Bool }

func (a *awayAfter) Value(context.Context, ferryv1.EnvVarSource) (string, bool, error) {
	if a.away.Load() {
		return "", false, &spawn.EnvUnreadError{Unanswered: true,
			Err: errors.New(`could not read Secret "django" in namespace t (is the API server reachable from the node?); the agent tries again: connection refused`)}
	}
	return "kept", true, nil
}

// TestOutageReplacesTheRevisionResistedFrom: a pool resisting two broken
// revisions in a row serves on with revision 1, and during an API server
// outage a revision 1 worker that dies is replaced with the value its
// revision got. The memory follows what the pool runs (review found it
// kept the two revisions read last, 2 and 3, and forgot the one serving).
func TestOutageReplacesTheRevisionResistedFrom(t *testing.T) {
	root, _ := filepath.Abs("../spawn/testdata/cmd")
	tmpl := agenttest.WSGIAt(root, 1, 1)
	tmpl.App = ferryv1.AppSpec{Type: ferryv1.AppTypeCommand, Root: root, Command: []string{"python3", "server.py", "$(PORT)"},
		Env: []ferryv1.EnvVar{{Name: "S", ValueFrom: &ferryv1.EnvVarSource{SecretKeyRef: &ferryv1.KeySelector{Name: "django", Key: "S"}}}}}
	src := &awayAfter{}
	e := agenttest.Start(t, pool.Config{Name: "t/envaway", Revision: "1", Template: tmpl}, agenttest.Options{EnvFrom: src})
	first := e.WaitFor(t, time.Minute, "1 ready worker", agenttest.Ready(1)).Processes[0].PID
	broken := tmpl
	broken.App.Command = []string{"python3", "-c", "import sys; sys.exit('broken')"}
	for _, rev := range []string{"2", "3"} {
		e.Pool.Update(pool.Config{Name: "t/envaway", Revision: rev, Template: broken})
		e.WaitFor(t, time.Minute, "revision "+rev+" resisted", func(s pool.Status) bool {
			return s.Resisting != nil && s.Resisting.Revision == rev
		})
	}
	src.away.Store(true)
	if err := syscall.Kill(int(first), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	s := e.WaitFor(t, time.Minute, "a revision 1 worker in place of the killed one", func(s pool.Status) bool {
		return s.Counts.Ready == 1 && s.Processes[0].PID != first
	})
	if p := s.Processes[0]; p.Revision != "1" {
		t.Errorf("the replacement is of revision %s, want 1", p.Revision)
	}
}
