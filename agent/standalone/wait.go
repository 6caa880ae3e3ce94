package standalone

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/ferry-dev/ferry/agent/pool"
	"github.com/ferry-dev/ferry/agent/statusview"
	ferryv1 "github.com/ferry-dev/ferry/api/v1alpha1"
	"github.com/ferry-dev/ferry/controllers/contract"
)

// ErrResisting: the restart stopped because the new revision failed to
// spawn, or its processes died soon after they were ready; the old
// processes keep serving, if any is left.
var ErrResisting = errors.New("resisting deployment error")

// WaitRestart follows an AppGroup until its restart to revision is over.
// It returns nil when every process runs revision and the revision has
// lasted the crash window (contract.CrashWindow), an error wrapping
// ErrResisting (with the reason and the spawn's output) when the pool
// resists, and an error listing the failed spawns when the restart
// finished with some processes left on the old revision, or saying how
// the revision's processes die once they are ready. settling, if not nil,
// is called once, when every process runs revision and the wait goes on
// for the crash window.
func WaitRestart(ctx context.Context, c *Client, name, revision string, poll time.Duration, settling func()) error {
	// A loop of its own, unlike the tests' testsupport.Eventually: it runs
	// in the binary, ends with ctx (restart --timeout), and returns the
	// restart's outcome, or an error that says what was still going on.
	said := false
	start := time.Now()
	var last *StatusResponse // the last status read: what a wait given up on says
	for {
		st, err := c.Status(ctx)
		if err != nil {
			if ctx.Err() != nil { // the deadline came during the request
				return gaveUp(ctx, start, last, name, revision)
			}
			return err
		}
		last = &st
		stage, err := restartOutcome(st, name, revision)
		switch {
		case stage == restartOver:
			return err
		case stage == restartSettling && !said && settling != nil:
			settling()
			said = true
		}
		select {
		case <-ctx.Done():
			return gaveUp(ctx, start, last, name, revision)
		case <-time.After(poll):
		}
	}
}

// GaveUpError: WaitRestart's context ended (restart --timeout) before the
// restart did. It says what the wait was for, after how long, and where
// the pool stood at the last status: not Go's bare "context deadline
// exceeded", which it wraps.
type GaveUpError struct {
	// After is how long the wait went on; the caller may set the timeout
	// it gave instead.
	After time.Duration
	// For is what the wait was for: "hello to run revision 2-abc".
	For string
	// State is where the pool stood: "1 of 3 processes run it, 1 more
	// spawning; the rolling restart has replaced 1 of 2".
	State string
	err   error
}

func (e *GaveUpError) Error() string {
	return fmt.Sprintf("gave up after %s waiting for %s: %s", e.After, e.For, e.State)
}

func (e *GaveUpError) Unwrap() error { return e.err }

// gaveUp is the GaveUpError of a wait that began at start, last is the
// last status it read (nil if none).
func gaveUp(ctx context.Context, start time.Time, last *StatusResponse, name, revision string) error {
	e := &GaveUpError{
		After: time.Since(start).Round(100 * time.Millisecond),
		For:   fmt.Sprintf("%s to run revision %s", name, revision),
		State: "no status read from the agent",
		err:   ctx.Err(),
	}
	if last == nil {
		return e
	}
	var ps *pool.Status
	for i := range last.Apps {
		if last.Apps[i].Name == name {
			ps = &last.Apps[i].Pool
		}
	}
	if ps == nil {
		e.State = "the agent serves no AppGroup " + strconv.Quote(name)
		return e
	}
	if stage, _ := restartOutcome(*last, name, revision); stage == restartSettling {
		e.For = fmt.Sprintf("revision %s of %s to live the crash window (%s)", revision, name, contract.CrashWindow)
		e.State = fmt.Sprintf("all %d processes run it, %d ready", ps.Counts.Total, ps.Counts.Ready)
		return e
	}
	ready, spawning := 0, 0
	for _, p := range ps.Processes {
		switch {
		case p.Revision != revision:
		case p.State == ferryv1.ProcessReady:
			ready++
		case p.State == ferryv1.ProcessSpawning:
			spawning++
		}
	}
	e.State = fmt.Sprintf("%d of %d processes run it", ready, ps.Counts.Total)
	if spawning > 0 {
		e.State += fmt.Sprintf(", %d more spawning", spawning)
	}
	if r := ps.Restart; r != nil && r.Revision == revision {
		e.State += fmt.Sprintf("; the %s restart has replaced %d of %d", strings.ToLower(string(ps.Strategy)), r.Done, r.Total)
	}
	if se := ps.ScalingError; se != nil && se.Revision == revision {
		e.State += "; its spawns fail" + roundsInARow(ps, revision) + ": " + se.Reason
	} else if se := ps.LastSpawnError; se != nil && se.Revision == revision {
		// Between failures ScalingError is cleared (a replacement ready
		// after a young death, a need that passed); SpawnFailures keeps
		// the count.
		e.State += "; its last failed spawn" + roundsInARow(ps, revision) + ": " + se.Reason
	}
	return e
}

// roundsInARow is " (N rounds in a row)" when N, SpawnFailures, is 2 or
// more of revision's failed rounds: the one count the gave-up text gives,
// whether the pool backs off or a replacement is up between deaths.
// Processes that fail together are one round, so that 2 says a process
// spawned after a failure failed too; ScalingFailures, which counts each
// process, would count one OOM kill of three as 3 beside a 1 read between
// deaths, two numbers a person cannot tell apart. A first failure gets no
// count: "1 in a row" is no row.
func roundsInARow(ps *pool.Status, revision string) string {
	if se := ps.LastSpawnError; se == nil || se.Revision != revision || ps.SpawnFailures < 2 {
		return ""
	}
	return fmt.Sprintf(" (%d rounds in a row)", ps.SpawnFailures)
}

// restartStage is where a restart stands in one status.
type restartStage int

const (
	// restartRolling: processes are still being replaced.
	restartRolling restartStage = iota
	// restartSettling: every process runs the revision, which has not
	// lasted the crash window yet: a process of it that dies meanwhile,
	// soon after it was ready, is a deployment error (the pool resists
	// it), as one that fails to spawn is. The manager waits as long
	// before it calls a node's rollout done.
	restartSettling
	// restartOver: the restart ended, well or not.
	restartOver
)

// restartOutcome reads one status: where the restart to revision stands,
// and, once over, how it ended.
func restartOutcome(st StatusResponse, name, revision string) (restartStage, error) {
	var ps *pool.Status
	for i := range st.Apps {
		if st.Apps[i].Name == name {
			ps = &st.Apps[i].Pool
		}
	}
	switch {
	case ps == nil:
		return restartOver, fmt.Errorf("%w: %q", ErrNotFound, name)
	case ps.Revision != revision:
		return restartOver, fmt.Errorf("the restart to %s was superseded by revision %s", revision, ps.Revision)
	case ps.Resisting != nil && ps.Resisting.Revision == revision:
		r := ps.Resisting
		return restartOver, fmt.Errorf("%w: revision %s %s: %s\n%s\n%s Request a new revision to leave this mode",
			ErrResisting, r.Revision, contract.FailedHow(r.Reason, ""), r.Reason, indent(r.Output),
			statusview.ResistanceNote(ps.Processes, r))
	case ps.Restart != nil:
		return restartRolling, nil
	}
	if lr := ps.LastRestart; lr != nil && lr.Revision == revision && lr.Failed > 0 {
		var b strings.Builder
		if lr.Strategy == ferryv1.RestartBlocking {
			// It stopped them all first: nothing old serves.
			fmt.Fprintf(&b, "%d of %d processes could not be spawned after the blocking restart stopped the old ones; "+
				"the pool respawns them with backoff (%s):", lr.Failed, lr.Total, contract.SpawnsRetried)
		} else {
			fmt.Fprintf(&b, "%d of %d processes could not be replaced and keep serving the old revision:", lr.Failed, lr.Total)
		}
		for _, e := range lr.Errors {
			fmt.Fprintf(&b, "\n- %s\n%s", e.Reason, indent(e.Output))
		}
		if more := lr.Failed - len(lr.Errors); more > 0 {
			// The summary keeps the first 16; the pool logged each.
			fmt.Fprintf(&b, "\n- and %d more, not kept (the agent keeps the first %d): its log has each", more, len(lr.Errors))
		}
		return restartOver, errors.New(b.String())
	}
	if e := ps.LastSpawnError; contract.DiesYoungAgain(e, revision, ps.SpawnFailures, ps.RevisionLasted) {
		// Not resisted (restart.resistDeploymentErrors is false, or the
		// restart was a blocking one): the pool respawns them, backing
		// off, for as long as the revision is asked for. From the second
		// round of deaths in a row (a process spawned after a death died
		// young too; processes that die together are one round): the
		// first is not backed off, and a process of the revision may
		// live (a passing fault). LastSpawnError and
		// SpawnFailures, not ScalingError and ScalingFailures: between
		// deaths the replacement is ready and ScalingError cleared, which
		// may be all a poll sees of the loop; SpawnFailures keeps the
		// count then (as kubectl ferry's crashLoop reads spawnFailures).
		// Not contract.CrashLoopClause, which the manager and kubectl
		// ferry say: "nothing returns the node to an older revision", the
		// manager's act; here there is no manager and no node, and the
		// pool's own resistance, which would keep the old processes, ended
		// the wait above (ErrResisting). What becomes of the processes,
		// contract.CrashLoopRespawned, is said alike.
		return restartOver, fmt.Errorf("processes of revision %s die soon after they are ready: %s\n%s\n"+
			"They are %s", revision, e.Reason, indent(e.Output), contract.CrashLoopRespawned)
	}
	if ps.Counts.Updated == ps.Counts.Total && ps.Counts.Ready >= ps.MinProcesses {
		if ps.RevisionLasted || ps.Counts.Total == 0 {
			return restartOver, nil
		}
		return restartSettling, nil
	}
	return restartRolling, nil
}

func indent(s string) string {
	s = strings.TrimRight(s, "\n")
	if s == "" {
		return ""
	}
	return "    " + strings.ReplaceAll(s, "\n", "\n    ")
}

// DefaultStateDir is where a standalone agent keeps its loader, worker
// sockets and admin socket unless told otherwise: /run/ferry for root,
// else $XDG_RUNTIME_DIR/ferry, else ferry-<uid> in os.TempDir()
// ($TMPDIR, /tmp when unset).
func DefaultStateDir() string {
	if os.Geteuid() == 0 {
		return "/run/ferry"
	}
	if d := os.Getenv("XDG_RUNTIME_DIR"); d != "" {
		return filepath.Join(d, "ferry")
	}
	return filepath.Join(os.TempDir(), "ferry-"+strconv.Itoa(os.Geteuid()))
}

// DefaultAdminSocket is the admin socket in DefaultStateDir.
func DefaultAdminSocket() string { return filepath.Join(DefaultStateDir(), "admin.sock") }
