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
// ready), to an older revision, or "" when the manager does return it:
// restart resists deployment errors (RestartSpec.ResistsDeploymentErrors:
// not a Blocking restart, resistDeploymentErrors true or unset), revision
// is not proven (it has run rolled out on no node: status.provenRevision;
// a proven revision's failure is a scaling error, a database down at
// boot, and is retried), and an older revision runs to return it to
// (older). The manager's RollingRestart message and status.crashLoop say
// it so, and kubectl ferry restart --wait after them.
func NotReturnedWhy(restart *ferryv1.RestartSpec, revision string, proven, older bool) string {
	switch {
	case restart.Strategy == ferryv1.RestartBlocking:
		return "a Blocking restart resists no deployment error"
	case !restart.ResistsDeploymentErrors():
		return "resistDeploymentErrors is false"
	case proven:
		return "revision " + revision + " lasted on a node before: status.provenRevision"
	case !older:
		return "no older revision runs"
	}
	return ""
}
