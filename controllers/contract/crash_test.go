package contract

import (
	"strings"
	"testing"
	"time"

	ferryv1 "github.com/ferry-dev/ferry/api/v1alpha1"
)

// TestDiedAfterReady: the agent's reasons for a worker that died soon
// after it was ready (as agent/pool words them) are told from those of a
// spawn that never became ready, and FailedHow words each, with or
// without a node.
func TestDiedAfterReady(t *testing.T) {
	tests := []struct {
		reason string
		died   bool
		how    string
		howOnB string
	}{
		{reason: "exited with status 3 200ms " + DiedAfterReady, died: true,
			how: "died soon after it was ready", howOnB: "died on node-b soon after it was ready"},
		{reason: "was killed by a signal (SIGSEGV: segmentation fault) 1.2s " + DiedAfterReady + ", while handling a request", died: true,
			how: "died soon after it was ready", howOnB: "died on node-b soon after it was ready"},
		{reason: "exited with status 1", how: "failed to spawn", howOnB: "failed to spawn on node-b"},
		{reason: "not ready within startTimeout (90s): the app was still loading", how: "failed to spawn",
			howOnB: "failed to spawn on node-b"},
		{reason: "", how: "failed to spawn", howOnB: "failed to spawn on node-b"},
	}
	for _, tt := range tests {
		if got := DiedAfterReadyIn(tt.reason); got != tt.died {
			t.Errorf("DiedAfterReadyIn(%q) = %v, want %v", tt.reason, got, tt.died)
		}
		if got := FailedHow(tt.reason, ""); got != tt.how {
			t.Errorf("FailedHow(%q, \"\") = %q, want %q", tt.reason, got, tt.how)
		}
		if got := FailedHow(tt.reason, " on node-b"); got != tt.howOnB {
			t.Errorf("FailedHow(%q, \" on node-b\") = %q, want %q", tt.reason, got, tt.howOnB)
		}
	}
}

// TestWithoutLifetime: a young death's reason, as agent/pool words it,
// reads "soon" for its lifetime, whatever the lifetime, and ends at
// "soon after it was ready", whatever followed it (a death in a
// request's suffix), still a young death (DiedAfterReadyIn); any other
// reason is kept as it is.
func TestWithoutLifetime(t *testing.T) {
	for _, tt := range []struct{ reason, want string }{
		{"exited with status 1 1.2s " + DiedAfterReady, "exited with status 1 soon " + DiedAfterReady},
		{"exited with status 1 2.5s " + DiedAfterReady, "exited with status 1 soon " + DiedAfterReady},
		{"exited with status 3 200ms " + DiedAfterReady, "exited with status 3 soon " + DiedAfterReady},
		{"was killed by a signal (SIGSEGV: segmentation fault) 1.234s " + DiedAfterReady + ", while handling a request",
			"was killed by a signal (SIGSEGV: segmentation fault) soon " + DiedAfterReady},
		// What the agent adds to a death in a request, which the next
		// death may not have: dropped.
		{"exited with status 1 3.1s " + DiedAfterReady + ", while handling a request (not the first death in a row, " +
			"and no process of this revision has lived past the crash window yet)", "exited with status 1 soon " + DiedAfterReady},
		{"exited with status 1 40ms " + DiedAfterReady + ", while handling a request (more than 2 such deaths in a row: " +
			"taken as the app's)", "exited with status 1 soon " + DiedAfterReady},
		{"exited with status 1", "exited with status 1"},
		{"the app failed to load", "the app failed to load"},
		{"", ""},
		// Not a lifetime before it: kept.
		{"it died " + DiedAfterReady, "it died " + DiedAfterReady},
	} {
		got := WithoutLifetime(tt.reason)
		if got != tt.want {
			t.Errorf("WithoutLifetime(%q) = %q, want %q", tt.reason, got, tt.want)
		}
		if DiedAfterReadyIn(got) != DiedAfterReadyIn(tt.reason) {
			t.Errorf("WithoutLifetime(%q) = %q: DiedAfterReadyIn %v, was %v", tt.reason, got, DiedAfterReadyIn(got), DiedAfterReadyIn(tt.reason))
		}
	}
}

// exits are how a process ended as spawn.describeExit words it, one of
// each of its forms (agent/spawn's TestDescribeExit checks its words are
// read so).
var exits = []string{
	"exited with status 1",
	"exited with status 0",
	"exited with status 255",
	"exited (wait: no child processes)",
	"exited (stop signal: trace/breakpoint trap (trap 1))",
	"was killed by a signal (SIGSEGV: segmentation fault)",
	"was killed by a signal (SIGSEGV: segmentation fault, core dumped)",
	"was killed by a signal (signal 40)",
	"was killed (SIGKILL: by the kernel's out-of-memory killer, or by someone; see dmesg)",
	// As agents before signals were named wrote them: Go's text alone,
	// its core note in parentheses of its own. Agents have written the
	// young death's form since they first reported one, these exits in
	// it, so youngDeath reads no other (no fallback to a substring).
	"was killed by a signal (killed)",
	"was killed by a signal (segmentation fault)",
	"was killed by a signal (segmentation fault (core dumped))",
}

// TestYoungDeathReasonRoundTrips: every exit form with every lifetime the
// agent can report (rounded to the millisecond, under CrashWindow), with
// or without what the agent adds of a death in a request, is a young
// death, and WithoutLifetime words it the exit and "soon after it was
// ready", itself still one.
func TestYoungDeathReasonRoundTrips(t *testing.T) {
	lifetimes := []time.Duration{0, 400 * time.Microsecond, time.Millisecond, 40 * time.Millisecond,
		1234567 * time.Microsecond, 2500 * time.Millisecond, CrashWindow - time.Millisecond}
	suffixes := []string{"", ", while handling a request (not the first death in a row, and no process of this " +
		"revision has lived past the crash window yet)", ", while handling a request (more than 2 such deaths in a row: taken as the app's)"}
	for _, exit := range exits {
		for _, lived := range lifetimes {
			for _, suffix := range suffixes {
				reason := YoungDeathReason(exit, lived) + suffix
				if !DiedAfterReadyIn(reason) {
					t.Errorf("DiedAfterReadyIn(%q) = false, want true", reason)
				}
				want := exit + " soon " + DiedAfterReady
				if got := WithoutLifetime(reason); got != want {
					t.Errorf("WithoutLifetime(%q) = %q, want %q", reason, got, want)
				}
				if !DiedAfterReadyIn(want) {
					t.Errorf("DiedAfterReadyIn(%q) = false, want true (WithoutLifetime's words)", want)
				}
			}
		}
	}
	if got, want := YoungDeathReason("exited with status 3", 1234567*time.Microsecond), "exited with status 3 1.235s "+DiedAfterReady; got != want {
		t.Errorf("YoungDeathReason = %q, want %q", got, want)
	}
}

// TestAppTextSayingAfterItWasReadyIsNoYoungDeath: a failed spawn's reason
// holds the app's own text (a WSGI load error's exception, what a
// readiness path answered) and the agent's notes; where that says "after
// it was ready", even after a lifetime, the reason is still of a spawn
// that failed (read by substring, it was worded "died soon after it was
// ready", a false halt message), and WithoutLifetime leaves it whole.
func TestAppTextSayingAfterItWasReadyIsNoYoungDeath(t *testing.T) {
	for _, reason := range []string{
		// WSGI: the loader's exception (spawn.failReason's err.Error()).
		"the app failed to load: RuntimeError: cache went away 1.2s " + DiedAfterReady,
		"the app failed to load: RuntimeError: cache went away 1.2s " + DiedAfterReady + ", retrying",
		"the app failed to load: RuntimeError: the database closed " + DiedAfterReady,
		// A readiness path's answer.
		"not ready within startTimeout (90s): 503 from /healthz: warming up, check again 2s " + DiedAfterReady,
		"not ready within startTimeout (90s): 500 from /healthz: worker exited with status 1 3s " + DiedAfterReady,
		"not ready within startTimeout (1s): the app was still loading (importing passenger_wsgi.py)",
		// Exited before ready, with the foreground note.
		"exited with status 0 before it was ready; the command must stay in the foreground, serving, not fork into " +
			"the background (daemonize) and exit: Ferry watches the process it started, and kills what it leaves behind",
		"was killed by a signal (SIGSEGV: segmentation fault) before it was ready",
		// The exit's parentheses end at their own ")": what follows is
		// not read as the exit ("(x)" closing it, then a lifetime).
		"was killed by a signal (SIGSEGV: segmentation fault) before it was ready; the app said (x) 2s " + DiedAfterReady,
		"exited (wait: no child processes) before it was ready: (x) 2s " + DiedAfterReady,
		"was killed by a signal (SIGTERM: terminated) (x) 2s " + DiedAfterReady,
		// An exit form, then no lifetime, or more than one word, before
		// the words; or the words run on.
		"exited with status 1 " + DiedAfterReady,
		"exited with status 1 in 1.2s " + DiedAfterReady,
		"exited with status 1 1.2s " + DiedAfterReady + " and then some",
		"exited with status 1 1.2s " + DiedAfterReady + "; not",
		"exited with status 1 later " + DiedAfterReady,
		"exited (status) then 1.2s " + DiedAfterReady,
		// Words before the exit form.
		"worker exited with status 1 1.2s " + DiedAfterReady,
		" exited with status 1 1.2s " + DiedAfterReady,
		"it died " + DiedAfterReady,
		DiedAfterReady,
		"",
	} {
		if DiedAfterReadyIn(reason) {
			t.Errorf("DiedAfterReadyIn(%q) = true, want false", reason)
		}
		if got := WithoutLifetime(reason); got != reason {
			t.Errorf("WithoutLifetime(%q) = %q, want it whole", reason, got)
		}
		if got := FailedHow(reason, " on node-b"); got != "failed to spawn on node-b" {
			t.Errorf("FailedHow(%q, \" on node-b\") = %q, want \"failed to spawn on node-b\"", reason, got)
		}
	}
}

// TestYoungDeathOf: a pool's last spawn error is a young death of the
// revision asked about only when it is of that revision and its reason
// says the process died after it was ready; the waits end on one only
// from the second failed round, while the revision has not lasted.
func TestYoungDeathOf(t *testing.T) {
	died := "exited with status 3 200ms " + DiedAfterReady
	tests := []struct {
		name     string
		e        *ferryv1.SpawnError
		failures int
		lasted   bool
		young    bool // YoungDeathOf(e, "2")
		again    bool // DiesYoungAgain(e, "2", failures, lasted)
	}{
		{name: "no error", failures: 2},
		{name: "died young, second round", e: &ferryv1.SpawnError{Revision: "2", Reason: died}, failures: 2,
			young: true, again: true},
		{name: "died young, fifth round", e: &ferryv1.SpawnError{Revision: "2", Reason: died}, failures: 5,
			young: true, again: true},
		// The first is replaced at once; its replacement may live.
		{name: "died young, first round", e: &ferryv1.SpawnError{Revision: "2", Reason: died}, failures: 1,
			young: true},
		// An agent older than spawnFailures reports none.
		{name: "died young, no count", e: &ferryv1.SpawnError{Revision: "2", Reason: died}, young: true},
		{name: "died young, revision lasted", e: &ferryv1.SpawnError{Revision: "2", Reason: died}, failures: 2,
			lasted: true, young: true},
		{name: "died young, of another revision", e: &ferryv1.SpawnError{Revision: "1", Reason: died}, failures: 2},
		{name: "never ready", e: &ferryv1.SpawnError{Revision: "2", Reason: "exited with status 1"}, failures: 2},
	}
	for _, tt := range tests {
		if got := YoungDeathOf(tt.e, "2"); got != tt.young {
			t.Errorf("%s: YoungDeathOf = %v, want %v", tt.name, got, tt.young)
		}
		if got := DiesYoungAgain(tt.e, "2", tt.failures, tt.lasted); got != tt.again {
			t.Errorf("%s: DiesYoungAgain(failures %d, lasted %v) = %v, want %v", tt.name, tt.failures, tt.lasted, got, tt.again)
		}
	}
}

// CrashLoopRespawned is a constant, so it spells the crash window out:
// it must say the window CrashWindow is.
func TestCrashLoopRespawnedSaysTheCrashWindow(t *testing.T) {
	if want := "until one lives " + CrashWindow.String(); !strings.Contains(CrashLoopRespawned, want) {
		t.Errorf("CrashLoopRespawned = %q, want it to say %q", CrashLoopRespawned, want)
	}
}

// TestResistedReasonReadsResistingMessage: a resisting pool's condition
// message gives its reason back as the agent wrote it, a young death's
// still one (DiedAfterReadyIn reads from the start), with the output the
// agent puts on lines of its own left out; a message of no such form is
// taken whole.
func TestResistedReasonReadsResistingMessage(t *testing.T) {
	for _, reason := range []string{
		YoungDeathReason("exited with status 3", 1200*time.Millisecond),
		YoungDeathReason("was killed by a signal (SIGSEGV: segmentation fault)", 0) + ", while handling a request (x)",
		"the app failed to load: RuntimeError: boom",
		"not ready within startTimeout (90s): 503 from /healthz: a: b",
	} {
		message := ResistingMessage("2-abc", reason)
		for _, m := range []string{message, message + "\nTraceback (most recent call last):\n  ..."} {
			if got := ResistedReason(m); got != reason {
				t.Errorf("ResistedReason(%q) = %q, want %q", m, got, reason)
			}
		}
		if DiedAfterReadyIn(ResistedReason(message)) != DiedAfterReadyIn(reason) {
			t.Errorf("%q: read back as a young death %v, want %v", reason, !DiedAfterReadyIn(reason), DiedAfterReadyIn(reason))
		}
	}
	for _, m := range []string{"something else", "Resisting deployment error: revision 2-abc",
		"Resisting deployment error: revision 2-abc went away: x", "revision 2-abc failed to spawn: x",
		"Rolled back: revision 2-abc failed to spawn: x", "2-abc failed to spawn: x"} {
		if got := ResistedReason(m); got != m {
			t.Errorf("ResistedReason(%q) = %q, want it whole", m, got)
		}
	}
}
