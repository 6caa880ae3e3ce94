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
