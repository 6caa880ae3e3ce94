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
)

// ErrResisting: the restart stopped because the new revision failed to
// spawn; the old processes keep serving.
var ErrResisting = errors.New("resisting deployment error")

// WaitRestart follows an AppGroup until its restart to revision is over.
// It returns nil when every process runs revision, an error wrapping
// ErrResisting (with the reason and the spawn's output) when the pool
// resists, and an error listing the failed spawns when the restart
// finished with some processes left on the old revision.
func WaitRestart(ctx context.Context, c *Client, name, revision string, poll time.Duration) error {
	// A loop of its own, unlike the tests' testsupport.Eventually: it runs
	// in the binary, ends with ctx (restart --timeout), and returns the
	// restart's outcome, or an error that says what was still going on.
	for {
		st, err := c.Status(ctx)
		if err != nil {
			return err
		}
		done, err := restartOutcome(st, name, revision)
		if done {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("still restarting %q to revision %s: %w", name, revision, ctx.Err())
		case <-time.After(poll):
		}
	}
}

// restartOutcome reads one status: whether the restart to revision is
// over, and how it ended.
func restartOutcome(st StatusResponse, name, revision string) (bool, error) {
	var ps *pool.Status
	for i := range st.Apps {
		if st.Apps[i].Name == name {
			ps = &st.Apps[i].Pool
		}
	}
	switch {
	case ps == nil:
		return true, fmt.Errorf("%w: %q", ErrNotFound, name)
	case ps.Revision != revision:
		return true, fmt.Errorf("the restart to %s was superseded by revision %s", revision, ps.Revision)
	case ps.Resisting != nil && ps.Resisting.Revision == revision:
		r := ps.Resisting
		return true, fmt.Errorf("%w: revision %s failed to spawn: %s\n%s\nThe old processes keep serving; request a new revision to leave this mode",
			ErrResisting, r.Revision, r.Reason, indent(r.Output))
	case ps.Restart != nil:
		return false, nil
	}
	if lr := ps.LastRestart; lr != nil && lr.Revision == revision && lr.Failed > 0 {
		var b strings.Builder
		fmt.Fprintf(&b, "%d of %d processes could not be replaced and keep serving the old revision:", lr.Failed, lr.Total)
		for _, e := range lr.Errors {
			fmt.Fprintf(&b, "\n- %s\n%s", e.Reason, indent(e.Output))
		}
		return true, errors.New(b.String())
	}
	if ps.Counts.Updated == ps.Counts.Total && ps.Counts.Ready >= ps.MinProcesses {
		return true, nil
	}
	return false, nil
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
// else $XDG_RUNTIME_DIR/ferry, else /tmp/ferry-<uid>.
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
