package contract

import ferryv1 "github.com/ferry-dev/ferry/api/v1alpha1"

// ResistanceAsked reports whether restart asks for deployment error
// resistance now: resistDeploymentErrors true or unset (the default),
// whatever the strategy. Not RestartSpec.ResistsDeploymentErrors, which
// is false for a Blocking restart: it says whether a restart resists,
// and this what the field says, which NotResisted must not contradict.
func ResistanceAsked(restart *ferryv1.RestartSpec) bool {
	return restart.ResistDeploymentErrors == nil || *restart.ResistDeploymentErrors
}

// NotResisted says why a restart to revision left processes on an older
// revision (RolloutIncomplete): resistDeploymentErrors was false, or it
// would have resisted instead. Turned on since (resistsNow,
// ResistanceAsked), it does not take them back (the next revision
// retries them), and "is false" would be untrue; nothing records the
// setting of the rollout, and nothing needs to: a restart left
// incomplete says it was false. The manager's RollingRestart message
// says it so, as the agent's pool condition and the status views do.
func NotResisted(resistsNow bool, revision string) string {
	if resistsNow {
		return "resistDeploymentErrors was false when revision " + revision + " rolled"
	}
	return "resistDeploymentErrors is false"
}

// NotReturnedWhy says why nothing returns a node from revision, whose
// processes fail there (they cannot spawn, or die soon after they are
// ready), to an older revision: a reason (the CrashLoop constants of
// api/v1alpha1, for programs to switch on) and its message (for people),
// or "", "" when the manager does return it. It is the one rule: the
// manager's return of a node (returnsFromTarget, older taken as true, as
// it looks for the revision to return to itself), status.crashLoop and
// RollingRestart's message, and kubectl ferry restart --wait after them.
// The manager returns a node when restart resists deployment errors
// (RestartSpec.ResistsDeploymentErrors: not a Blocking restart,
// resistDeploymentErrors true or unset), revision is not proven (it has
// run rolled out on no node: status.provenRevision; a proven revision's
// failure is a scaling error, a database down at boot, and is retried)
// or this very node resisted it (resisted: ResistedOn, so the node serves
// what works, as resistance promises), and an older revision runs to
// return it to (older).
func NotReturnedWhy(restart *ferryv1.RestartSpec, revision string, proven, resisted, older bool) (reason, message string) {
	switch {
	case restart.Strategy == ferryv1.RestartBlocking:
		return ferryv1.CrashLoopBlockingRestart, "a Blocking restart resists no deployment error"
	case !restart.ResistsDeploymentErrors():
		return ferryv1.CrashLoopResistanceOff, "resistDeploymentErrors is false"
	case proven && !resisted:
		return ferryv1.CrashLoopRevisionProven, "revision " + revision + " lasted on a node before: status.provenRevision"
	case !older:
		return ferryv1.CrashLoopNoOlderRevision, "no older revision runs"
	}
	return "", ""
}

// ResistedOn: halt (status.haltedRollout) records that node resisted
// revision, serving an older one: the manager returns the node from it
// even once it is proven (NotReturnedWhy's resisted).
func ResistedOn(halt *ferryv1.HaltedRollout, node, revision string) bool {
	return halt != nil && halt.Resisted && halt.Node == node && halt.Revision == revision
}

// CrashLoopClause is what the manager's RollingRestart message, kubectl
// ferry status and kubectl ferry restart --wait say of n nodes in a crash
// loop that nothing returns (message: status.crashLoop.message): why
// nothing returns them, and what becomes of their processes. One place,
// so that the three say it alike, and kubectl ferry status can tell the
// manager's message says it already.
func CrashLoopClause(n int, message string) string {
	them, its := "the node", "its"
	if n > 1 {
		them, its = "these nodes", "their"
	}
	return "nothing returns " + them + " to an older revision (" + message + "): " + its + " processes are " + CrashLoopRespawned
}
