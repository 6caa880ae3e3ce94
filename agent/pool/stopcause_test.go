package pool

import (
	"context"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"

	"github.com/ferry-dev/ferry/agent/spawn"
	ferryv1 "github.com/ferry-dev/ferry/api/v1alpha1"
	"github.com/ferry-dev/ferry/internal/testsupport"
)

// TestStopCauseWords: what a request cut by the agent's stop is told
// follows "the agent stopped the worker process (pid N) ": what the stop
// was for, in one clause, and the wait its requests actually had.
func TestStopCauseWords(t *testing.T) {
	for _, tc := range []struct {
		name string
		c    *stopCause
		want string
	}{
		{"a rolling restart, its shutdownTimeout through", shutdownCause("rolling restart", 5*time.Second, 5*time.Second),
			"for a rolling restart: its requests were not done within shutdownTimeout (5s)"},
		{"the pool's close, its deadline sooner", shutdownCause("agent shutdown", 5*time.Second, 1200*time.Millisecond),
			"as its pool closed (the agent stopping, or the pool removed): its requests were not done within " +
				"the 1.2s the pool's close left them (shutdownTimeout is 5s)"},
		{"the pool's close, its deadline past", shutdownCause("agent shutdown", 5*time.Second, 0),
			"as its pool closed (the agent stopping, or the pool removed): the pool's close left its requests " +
				"no time to be done (shutdownTimeout is 5s)"},
		{"a recycle", shutdownCause(string(recycleMemory), time.Minute, time.Minute),
			"to recycle it above memoryLimit: its requests were not done within shutdownTimeout (1m0s)"},
		{"a reason with no words of its own", shutdownCause("reason", time.Second, time.Second),
			"(reason): its requests were not done within shutdownTimeout (1s)"},
		{"another request's maxRequestTime", overranCause(30 * time.Second),
			"by killing it, as the answer to another request at it did not come, or did not end, within maxRequestTime (30s)"},
	} {
		if tc.c.words != tc.want {
			t.Errorf("%s:\n got %q\nwant %q", tc.name, tc.c.words, tc.want)
		}
	}
	for why := range stopPurposes {
		if p := stopPurpose(why); p == "" || p[0] == '(' {
			t.Errorf("stopPurpose(%q) = %q, want words of its own", why, p)
		}
	}
}

// TestWaitHad: the wait a stopping worker's requests had is its
// shutdownTimeout, or what the pool's close left of it, or what they had
// when the close was cut short, to 10ms.
func TestWaitHad(t *testing.T) {
	ms := time.Millisecond
	for _, tc := range []struct {
		name                    string
		timeout, allowed, since time.Duration
		want                    time.Duration
	}{
		{"shutdownTimeout through", 5 * time.Second, 5 * time.Second, 5*time.Second + 3*ms, 5 * time.Second},
		{"the close's deadline sooner", 5 * time.Second, 1200*ms - 3*ms, 1200*ms + 2*ms, 1200 * ms},
		{"the close's whole timeout, less what Close took", 500 * ms, 500*ms - 40*time.Microsecond, 500 * ms, 500 * ms},
		{"the close's deadline past", 5 * time.Second, 0, 2 * ms, 0},
		{"the close cut short", 5 * time.Second, 5 * time.Second, 300*ms + 4*ms, 300 * ms},
		{"a short timeout, never rounded above", 257 * ms, 256 * ms, 256 * ms, 257 * ms},
	} {
		if got := waitHad(tc.timeout, tc.allowed, tc.since); got != tc.want {
			t.Errorf("%s: waitHad(%v, %v, %v) = %v, want %v", tc.name, tc.timeout, tc.allowed, tc.since, got, tc.want)
		}
	}
}

// TestStopCauseExplains: the stop explains the exit that cut a request
// only when the agent's signal may have caused it, having reached the
// process while it ran (termed, killed); a death of the worker's own
// meanwhile (a crash signal, another's SIGKILL within the SIGTERM grace,
// an exit with a status while it ignores SIGTERM, any exit before SIGTERM
// reached it, any exit before Overran's kill) reads as a death.
func TestStopCauseExplains(t *testing.T) {
	stop := shutdownCause("rolling restart", time.Second, time.Second)
	ignored := shutdownCause("rolling restart", time.Second, time.Second)
	ignored.termIgnored = true
	overran := overranCause(time.Second)
	for _, tc := range []struct {
		name           string
		c              *stopCause
		status         string
		termed, killed bool
		want           bool
	}{
		{"running: the stop under way", stop, "", false, false, true},
		{"SIGTERM's default", stop, "signal: terminated", true, false, true},
		{"an exit on SIGTERM", stop, "exit status 0", true, false, true},
		{"an exit with a status on SIGTERM", stop, "exit status 143", true, false, true},
		{"an exit with a status before SIGTERM: its own", stop, "exit status 3", false, false, false},
		{"another's SIGTERM before the agent's", stop, "signal: terminated", false, false, false},
		{"an exit with a status, SIGTERM ignored: its own", ignored, "exit status 3", true, false, false},
		{"an exit 0, SIGTERM ignored: its own", ignored, "exit status 0", true, false, false},
		{"SIGKILL once the grace is over, SIGTERM ignored: the agent's", ignored, "signal: killed", true, true, true},
		{"a crash in the grace", stop, "signal: segmentation fault (core dumped)", true, false, false},
		{"an abort in the grace", stop, "signal: aborted", true, false, false},
		{"SIGKILL within the grace: another's", stop, "signal: killed", true, false, false},
		{"SIGKILL before SIGTERM: another's", stop, "signal: killed", false, false, false},
		{"SIGKILL once the grace is over: the agent's", stop, "signal: killed", true, true, true},
		{"Overran's kill", overran, "signal: killed", false, true, true},
		{"an exit before Overran's kill", overran, "exit status 3", false, false, false},
		{"SIGKILL before Overran's: another's", overran, "signal: killed", false, false, false},
		{"SIGTERM before Overran's kill", overran, "signal: terminated", false, false, false},
	} {
		if got := tc.c.explains(tc.status, tc.termed, tc.killed); got != tc.want {
			t.Errorf("%s: explains(%q, termed %v, killed %v) = %v, want %v", tc.name, tc.status, tc.termed, tc.killed, got, tc.want)
		}
	}
}

// TestSigIgnored: SigIgn of /proc/<pid>/status is a hex mask, bit sig-1.
func TestSigIgnored(t *testing.T) {
	for _, tc := range []struct {
		name, status string
		want         bool
	}{
		{"SIGTERM ignored", "Name:\tpython3\nSigBlk:\t0000000000000000\nSigIgn:\t0000000001004000\nSigCgt:\t0000000180000002\n", true},
		{"SIGTERM caught, not ignored", "SigIgn:\t0000000001001000\nSigCgt:\t0000000180004002\n", false},
		{"nothing ignored", "SigIgn:\t0000000000000000\n", false},
		{"no SigIgn line", "Name:\tpython3\n", false},
		{"a mask that does not parse", "SigIgn:\tzz\n", false},
		{"the last line, unterminated", "SigQ:\t0/63\nSigIgn:\t4000", true},
	} {
		if got := sigIgnored(tc.status, syscall.SIGTERM); got != tc.want {
			t.Errorf("%s: sigIgnored(SIGTERM) = %v, want %v", tc.name, got, tc.want)
		}
	}
}

// TestIgnoresSignal reads a real process's mask: this test's own, which
// ignores what it is made to, and one that is gone.
func TestIgnoresSignal(t *testing.T) {
	signal.Ignore(syscall.SIGUSR2)
	defer signal.Reset(syscall.SIGUSR2)
	if !ignoresSignal(os.Getpid(), syscall.SIGUSR2) {
		t.Error("ignoresSignal(self, SIGUSR2) = false after signal.Ignore, want true")
	}
	if ignoresSignal(os.Getpid(), syscall.SIGTERM) {
		t.Error("ignoresSignal(self, SIGTERM) = true, want false")
	}
	if ignoresSignal(1<<30, syscall.SIGTERM) {
		t.Error("ignoresSignal of no process = true, want false")
	}
}

// TestStoppedByJudgesTheExitBySignalsSentBefore: a worker killed by
// another within the grace of the agent's SIGTERM died of its own,
// whenever that is read, and the agent's SIGKILL coming after (Stop finds
// it gone) does not make it the agent's; one the agent killed was stopped
// by the agent. StoppedBy judges the exit by the signals the agent sent
// the process while it ran. Before, it judged by the time the reaper saw
// the exit against the end of the grace: a reaper late past it (a loaded
// machine) took another's SIGKILL within the grace for the agent's. Real
// processes.
func TestStoppedByJudgesTheExitBySignalsSentBefore(t *testing.T) {
	const words = "for a rolling restart: its requests were not done within shutdownTimeout (1s)"
	for _, tc := range []struct {
		name string
		kill func(*spawn.Process)
		want string
	}{
		{"killed by another, then stopped: another's", func(p *spawn.Process) {
			if err := syscall.Kill(p.PID, syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			<-p.Done()
			p.Stop(0)
		}, ""},
		{"killed by the agent: the agent's", (*spawn.Process).Kill, words},
	} {
		proc, err := spawn.Spawn(context.Background(), spawn.Spec{
			App:      ferryv1.AppSpec{Type: ferryv1.AppTypeCommand, Root: abruptRoot(), Command: []string{"python3", "server.py"}},
			Revision: "1", StartTimeout: 30 * time.Second, RunDir: testsupport.WorkerDir(t), Log: testr.New(t),
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { proc.Stop(5 * time.Second) })
		w := &Worker{proc: proc}
		w.stopped.Store(shutdownCause("rolling restart", time.Second, time.Second))
		if got := w.StoppedBy(); got != words {
			t.Errorf("%s: StoppedBy() while it runs = %q, want the stop's %q", tc.name, got, words)
		}
		tc.kill(proc)
		if got := w.StoppedBy(); got != tc.want {
			t.Errorf("%s: StoppedBy() = %q, want %q", tc.name, got, tc.want)
		}
	}
}

func abruptRoot() string {
	root, _ := filepath.Abs("testdata/abrupt")
	return root
}
