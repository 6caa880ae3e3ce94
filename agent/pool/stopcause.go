package pool

import (
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// stopCause is what the agent did to a worker with requests still at it
// (Worker.StoppedBy): killed it at once as another request at it overran
// maxRequestTime (Overran), or signalled it once its requests were not
// done within the stop's wait (retire).
type stopCause struct {
	// words go on "the agent stopped the worker process (pid N) ".
	words   string
	overran bool
	// termIgnored: the worker's process ignored SIGTERM as the agent sent
	// it (ignoresSignal): an exit with a status during the grace is then
	// of its own, not SIGTERM's answer.
	termIgnored bool
}

// overranCause is Overran's, for the worker's other requests (the one
// that overran is answered 504): maxRequestTime, limit, was another's.
func overranCause(limit time.Duration) *stopCause {
	return &stopCause{
		words: "by killing it, as the answer to another request at it did not come, or did not end, within maxRequestTime (" +
			limit.String() + ")",
		overran: true,
	}
}

// shutdownCause is retire's, for a worker stopped for why whose requests
// were not done within waited: its shutdownTimeout, timeout, or what the
// pool's close left of it. A close that left none (its deadline already
// past, the agent's stop cut short) gave the requests no wait at all:
// "within the 0s" would read as a wait of 0s someone chose.
func shutdownCause(why string, timeout, waited time.Duration) *stopCause {
	purpose := stopPurpose(why) + ": "
	switch {
	case waited <= 0:
		return &stopCause{words: purpose + "the pool's close left its requests no time to be done (shutdownTimeout is " +
			timeout.String() + ")"}
	case waited < timeout:
		return &stopCause{words: purpose + "its requests were not done within the " + waited.String() +
			" the pool's close left them (shutdownTimeout is " + timeout.String() + ")"}
	}
	return &stopCause{words: purpose + "its requests were not done within shutdownTimeout (" + timeout.String() + ")"}
}

// waitHad is the wait a stopping worker's requests had (for the words
// and the log), ended since after it began: timeout, or what the pool's
// close left of it (allowed), or less if the close was cut short; to
// 10ms, and never above timeout.
func waitHad(timeout, allowed, since time.Duration) time.Duration {
	had := min(allowed, since)
	if had < timeout {
		had = min(had.Round(10*time.Millisecond), timeout)
	}
	return had
}

// stopPurposes word retire's reasons as what the stop was for.
var stopPurposes = map[string]string{
	"rolling restart":           "for a rolling restart",
	"blocking restart":          "for a blocking restart",
	"agent shutdown":            "as its pool closed (the agent stopping, or the pool removed)",
	"idle":                      "as idle",
	"unreachable":               "as it had refused a connection",
	"deployment error resisted": "as the pool resists its revision",
	string(recycleMemory):       "to recycle it above memoryLimit",
	string(recycleMaxRequests):  "to recycle it at maxRequestsPerProcess",
}

func stopPurpose(why string) string {
	if p, ok := stopPurposes[why]; ok {
		return p
	}
	return "(" + why + ")"
}

// explains reports whether the stop explains the worker's exit, as its
// status says ("" while it runs: the stop is under way), given whether
// the agent's SIGTERM and SIGKILL reached the process while it still ran
// (termed, killed: spawn.Process.Sent; the cause is stored before them,
// so an exit may come before either).
// The agent's SIGKILL explains "signal: killed"; without it, that is
// another's (the kernel's OOM killer), however late the reaper saw it.
// SIGTERM explains "signal: terminated" and an exit with a status (an
// app's handler exits so), unless the process ignored SIGTERM: then the
// exit was its own (a handler's exit cannot be told from one of its own
// that a handler let happen, and is taken as the stop's). An exit before
// SIGTERM reached it (the worker died as its wait ended) is its own, as is
// another signal (SIGSEGV, SIGABRT), and any exit before Overran's
// SIGKILL.
func (c *stopCause) explains(status string, termed, killed bool) bool {
	switch {
	case status == "":
		return true
	case status == "signal: killed":
		return killed
	case c.overran || !termed:
		return false
	case status == "signal: terminated":
		return true
	}
	return strings.HasPrefix(status, "exit status ") && !c.termIgnored
}

// ignoresSignal reports whether process pid ignores sig now, as
// /proc/<pid>/status's SigIgn says; false when it cannot be read (the
// process is gone).
func ignoresSignal(pid int, sig syscall.Signal) bool {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	return err == nil && sigIgnored(string(data), sig)
}

// sigIgnored reports whether the SigIgn mask of a /proc/<pid>/status text
// has sig (bit sig-1).
func sigIgnored(status string, sig syscall.Signal) bool {
	for line := range strings.Lines(status) {
		if v, ok := strings.CutPrefix(line, "SigIgn:"); ok {
			mask, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
			return err == nil && mask&(1<<(sig-1)) != 0
		}
	}
	return false
}
