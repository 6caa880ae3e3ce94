package standalone

import (
	"fmt"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ferry-dev/ferry/agent/statusview"
	ferryv1 "github.com/ferry-dev/ferry/api/v1alpha1"
)

// View turns the admin API's status into the passenger-status view.
func View(st StatusResponse) []statusview.Pool {
	out := make([]statusview.Pool, 0, len(st.Apps))
	for _, a := range st.Apps {
		p := a.Pool
		out = append(out, statusview.Pool{
			Title: a.Name, Root: a.Root, Listen: a.Listen, Revision: p.Revision, Strategy: p.Strategy,
			MinProcesses: p.MinProcesses, MaxProcesses: p.MaxProcesses, QueueLength: p.QueueLength,
			Processes: p.Processes, Restart: p.Restart, Resisting: p.Resisting, ScalingError: p.ScalingError,
			LastSpawnError: p.LastSpawnError, ScalingRetryAt: retryAt(p.ScalingRetryAt),
			Incomplete: incomplete(a),
		})
	}
	return out
}

// Header is the view's general block: the agent, and a reload that failed.
func Header(st StatusResponse) statusview.Header {
	h := statusview.Header{Agent: st.Agent}
	if f := st.ReloadFailed; f != nil {
		note := "Last reload failed at " + f.Time.Format(time.RFC3339) + "; it changed nothing:"
		if len(f.Applied)+len(f.Removed) > 0 {
			// Its error says what was applied and what was not: the
			// lists of f (Applied, NotStarted, ...) are for scripts,
			// and shown here would say every name twice.
			note = "Last reload failed in part at " + f.Time.Format(time.RFC3339) + ":"
		}
		h.Notes = append(h.Notes, note)
		for line := range strings.Lines(f.Error) {
			h.Notes = append(h.Notes, "  "+strings.TrimRight(line, "\n"))
		}
	}
	return h
}

func retryAt(t *metav1.Time) *time.Time {
	if t == nil {
		return nil
	}
	return &t.Time
}

// incomplete is a's last restart, when its RollingRestart condition says
// it left processes on an older revision (RolloutIncomplete).
func incomplete(a AppStatus) *statusview.Incomplete {
	c := meta.FindStatusCondition(a.Conditions, ferryv1.ConditionRollingRestart)
	lr := a.Pool.LastRestart
	if c == nil || c.Reason != ferryv1.ReasonRolloutIncomplete || lr == nil {
		return nil
	}
	n := a.Pool.Counts
	return &statusview.Incomplete{Left: n.Total - n.Updated, Total: n.Total, Errors: lr.Errors, Failed: lr.Failed,
		Details: errorsQuery(a.Name), ResistsNow: a.Pool.ResistDeploymentErrors, Revision: lr.Revision}
}

// errorsQuery is the command that prints the errors of app's last
// restart in full, to paste: "lastRestart.errors" alone is no path of
// status --json, which has them under apps[].pool, of every app.
func errorsQuery(app string) string {
	return fmt.Sprintf("ferry-agent status --json | jq '.apps[] | select(.name == %q).pool.lastRestart.errors'", app)
}
