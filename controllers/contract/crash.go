package contract

import (
	"regexp"
	"strings"
	"time"

	ferryv1 "github.com/ferry-dev/ferry/api/v1alpha1"
)

// CrashWindow is how long a new process must live once ready before it
// counts as working. The agent counts a worker that exits unexpectedly
// within it as a failed spawn (a scaling error, backed off from the
// second; one that dies in a request is not backed off, as the first
// in a row, as a request of death, or, once a worker of the revision has
// lived it, as up to two in a row), and the manager gives no further
// node a revision not yet proven until the first nodes' new processes
// have all lived it: an app that boots and then dies stops at the first
// wave, as one that cannot boot does.
const CrashWindow = 10 * time.Second

// DiedAfterReady are the words after the lifetime in a young death's
// reason (YoungDeathReason: "exited with status 3 200ms after it was
// ready"). The manager words such a failure "died soon after it was
// ready", not "failed to spawn".
const DiedAfterReady = "after it was ready"

// YoungDeathReason is the agent's reason for a worker that exited within
// CrashWindow of ready: how it exited (exit, as spawn.describeExit words
// it: "exited with status 3", "was killed by a signal (SIGSEGV:
// segmentation fault)"), how long it lived after ready (lived, to the
// millisecond), then DiedAfterReady: "exited with status 3 1.2s after it
// was ready". The agent may go on after a comma with what the worker was
// doing (", while handling a request (...)"). DiedAfterReadyIn and
// WithoutLifetime read this form and no other.
func YoungDeathReason(exit string, lived time.Duration) string {
	return exit + " " + lived.Round(time.Millisecond).String() + " " + DiedAfterReady
}

// parenthesized is a "(...)" of spawn.describeExit's, up to its own ")":
// text with no parentheses, or with one level of them inside ("(stop
// signal: trace/breakpoint trap (trap 1))", an older agent's
// "(segmentation fault (core dumped))"). Not "\(.+?\)": that could run
// past its ")" to a later one ("(SIGSEGV: segmentation fault) before it
// was ready; ... (x)"), and read what follows an exit as part of it.
const parenthesized = `\((?:[^()]|\([^()]*\))*\)`

// youngDeath matches a young death's reason (YoungDeathReason) from its
// start: how the process exited, a word for its lifetime (checked by
// youngDeathExit), DiedAfterReady, then the end or a comma.
//
// From the start only, as the agent writes it: a failed spawn's reason
// may quote the app (a WSGI load error's exception, what a readiness
// path answered, "not ready within startTimeout (90s): ..."), whose
// words can say "after it was ready" after anything, a lifetime
// included; none begins with how a process exited. No other form is
// read: agents have written this one since they first reported young
// deaths (the exits' words changed when signals were named, and both
// kinds match).
var youngDeath = regexp.MustCompile(`^(` + strings.Join([]string{
	// An exit status: "exited with status 3".
	`exited with status -?[0-9]+`,
	// Any other status Go gives, whole: "exited (wait: no child
	// processes)", "exited (stop signal: trace/breakpoint trap (trap 1))".
	`exited ` + parenthesized,
	// A signal but SIGKILL, named or (older agents) not, and its core:
	// "was killed by a signal (SIGSEGV: segmentation fault, core dumped)".
	`was killed by a signal ` + parenthesized,
	// SIGKILL, with who sends it, which has no parentheses inside.
	`was killed \(SIGKILL: [^()]*\)`,
}, "|") + `) (\S+) ` + regexp.QuoteMeta(DiedAfterReady) + `(,|$)`)

// youngDeathExit is how the worker a young death's reason is of exited
// (YoungDeathReason's exit), and whether reason is one. The lifetime's
// word is checked here, not in youngDeath: ParseDuration reads every
// lifetime time.Duration.String writes ("0s", "400µs", "1.2s"), which a
// pattern would have to spell out, and no other word ("later", "then").
// "soon" stands in for the lifetime in WithoutLifetime's words, which
// the manager reads back (the halt's message judges the reasons it
// quotes): DiedAfterReadyIn must hold of WithoutLifetime(r) as of r.
func youngDeathExit(reason string) (string, bool) {
	m := youngDeath.FindStringSubmatch(reason)
	if m == nil {
		return "", false
	}
	if _, err := time.ParseDuration(m[2]); err != nil && m[2] != "soon" {
		return "", false
	}
	return m[1], true
}

// DiedAfterReadyIn reports whether reason, the agent's for a failed
// spawn, is of a worker that spawned and died within CrashWindow of
// ready (YoungDeathReason's form, from its start), not of one that never
// became ready, whatever words the app put in the reason of that.
func DiedAfterReadyIn(reason string) bool {
	_, ok := youngDeathExit(reason)
	return ok
}

// WithoutLifetime is reason, the agent's for a failed spawn, cut to
// "soon after it was ready" where it is of a worker that died soon after
// it was ready (DiedAfterReadyIn): the lifetime worded "soon" ("exited
// with status 1 1.2s after it was ready" reads "exited with status 1
// soon after it was ready"), and whatever follows dropped; any other
// reason as it is, whatever the app's text in it says. DiedAfterReadyIn
// holds of it as of reason. Each young death's lifetime is its own, and
// so is what the agent adds to one in a request (", while handling a
// request (...)"), which the next death may not have: a message that
// quotes a node's latest death without either reads the same at each,
// and is not written anew, nor a `restart --wait` line printed, at every
// death.
func WithoutLifetime(reason string) string {
	exit, ok := youngDeathExit(reason)
	if !ok {
		return reason
	}
	return exit + " soon " + DiedAfterReady
}

// YoungDeathOf reports whether e, a pool's last spawn error, is a young
// death of revision: a process of it that spawned and died within
// CrashWindow of ready (DiedAfterReadyIn), which the agent counts as a
// failed spawn. The manager's RollingRestart (a crash loop it names from
// the first such death) and NodeReturned note, and both restart waits,
// read a pool's status with it.
func YoungDeathOf(e *ferryv1.SpawnError, revision string) bool {
	return e != nil && e.Revision == revision && DiedAfterReadyIn(e.Reason)
}

// DiesYoungAgain reports whether a pool whose last spawn error is e, with
// spawnFailures failed rounds of its revision in a row, loops on young
// deaths of revision: e is one (YoungDeathOf), from the second round (a
// process spawned after a death died young too; the first is replaced at
// once, and its replacement may live: a passing fault), and no process
// of revision has lived CrashWindow there (lasted). The restart waits
// (kubectl ferry's and the standalone agent's) end on it; their statuses
// count spawnFailures in different integer types, hence the values.
func DiesYoungAgain(e *ferryv1.SpawnError, revision string, spawnFailures int, lasted bool) bool {
	return !lasted && spawnFailures >= 2 && YoungDeathOf(e, revision)
}

// FailedHow words what became of a process of a revision that failed, by
// its reason, on where (" on node-b", or ""): FailedHowIf, of a young
// death when the reason is one (DiedAfterReadyIn).
func FailedHow(reason, on string) string {
	return FailedHowIf(DiedAfterReadyIn(reason), on)
}

// FailedHowIf words what became of a process of a revision that failed
// on where (" on node-b", or ""): "died soon after it was ready" where it
// died young (diedYoung), which the agent counts as a failed spawn, else
// "failed to spawn". The manager reads its own messages back by these
// words (the halt's clauses), with no reason at hand.
func FailedHowIf(diedYoung bool, on string) string {
	if diedYoung {
		return "died" + on + " soon " + DiedAfterReady
	}
	return "failed to spawn" + on
}

// SpawnsRetried is what becomes of a pool's failing spawns, as the agent
// words it in the pool's ScalingError and RollingRestart and its status
// view's "Scaling error" block, and the manager in the AppGroup's: the
// agent tries again with a backoff that grows to a minute, with no end
// but a spawn that works or another revision (in a cluster, the manager's
// return of the node to what worked is one).
const SpawnsRetried = "retried with backoff, at most a minute apart, until one works or another revision is requested"

// CrashLoopRespawned is what becomes of a crash loop's processes (ready,
// then dead within CrashWindow), as the manager's RollingRestart message,
// kubectl ferry restart --wait and standalone's say it: not SpawnsRetried,
// as a process that died young did start, and a first death is replaced
// at once; from the second round the backoff grows as for failed spawns.
const CrashLoopRespawned = "respawned, with a growing backoff from the second round of deaths, until one lives 10s or another revision is requested"

// resistingPrefix begins the agent's ResistingDeploymentError message.
const resistingPrefix = "Resisting deployment error: revision "

// ResistingMessage is the agent's ResistingDeploymentError message of a
// pool resisting revision, which failed with reason: "Resisting deployment
// error: revision 2-abc died soon after it was ready: exited with status
// 3 1.2s after it was ready" (the output, if any, follows on lines of its
// own). ResistedReason reads reason back.
func ResistingMessage(revision, reason string) string {
	return resistingPrefix + revision + " " + FailedHow(reason, "") + ": " + reason
}

// ResistedReason is the reason in message, a ResistingMessage (with any
// output after it), or message whole where it is not one. The manager
// reads it where a resisting pool's status has no deploymentError: a halt
// judges the reason as the agent wrote it (DiedAfterReadyIn reads a young
// death from its start), and the words before it would make a young death
// a failed spawn.
func ResistedReason(message string) string {
	rest, ok := strings.CutPrefix(message, resistingPrefix)
	if !ok {
		return message
	}
	if _, rest, ok = strings.Cut(rest, " "); !ok {
		return message
	}
	for _, young := range []bool{true, false} {
		if reason, ok := strings.CutPrefix(rest, FailedHowIf(young, "")+": "); ok {
			reason, _, _ = strings.Cut(reason, "\n")
			return reason
		}
	}
	return message
}
