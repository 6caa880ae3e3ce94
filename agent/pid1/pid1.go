package pid1

import (
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/go-logr/logr"
	"golang.org/x/sys/unix"
)

// childEnv marks the agent Supervise started, which must not supervise
// again (it is not pid 1, but a pid namespace of its own would make it so).
const childEnv = "FERRY_AGENT_UNDER_PID1"

// forwarded are the signals pid 1 passes on to the agent: those a
// container runtime sends to stop it, and those the agent acts on (SIGHUP
// reloads the standalone file).
var forwarded = []os.Signal{syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP, syscall.SIGQUIT,
	syscall.SIGUSR1, syscall.SIGUSR2}

// Supervise, in a process that is pid 1, runs this program again with the
// same arguments as its child, forwards it the signals above, collects the
// exit of every process handed to it, and returns, once the child exited,
// the code to exit with (the child's, or 128 + the signal that ended it)
// and true. Elsewhere it returns false at once, and the caller goes on to
// be the agent.
func Supervise() (int, bool) {
	if os.Getenv(childEnv) != "" {
		// The mark is not the workers' to inherit.
		underPID1 = true
		_ = os.Unsetenv(childEnv)
		return 0, false
	}
	if os.Getpid() != 1 {
		return 0, false
	}
	// Before the start: a signal sent meanwhile is then passed on.
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, forwarded...)
	child, err := start()
	if err != nil {
		fmt.Fprintln(os.Stderr, "ferry-agent:", err)
		return 1, true
	}
	go func() {
		for s := range sigs {
			_ = child.Signal(s)
		}
	}()
	return reap(child.Pid), true
}

// start starts this program again, marked as the child.
func start() (*os.Process, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("finding the agent's binary to run under pid 1: %w", err)
	}
	p, err := os.StartProcess(exe, os.Args, &os.ProcAttr{
		Env:   append(os.Environ(), childEnv+"=1"),
		Files: []*os.File{os.Stdin, os.Stdout, os.Stderr},
	})
	if err != nil {
		return nil, fmt.Errorf("starting the agent under pid 1: %w", err)
	}
	return p, nil
}

// reap collects every exit handed to this process until child's, and
// returns the code to exit with for it.
func reap(child int) int {
	for {
		var ws unix.WaitStatus
		pid, err := unix.Wait4(-1, &ws, 0, nil)
		switch {
		case errors.Is(err, unix.EINTR):
			continue
		case err != nil: // ECHILD: the child is gone, by no wait of ours
			fmt.Fprintln(os.Stderr, "ferry-agent: pid 1 lost its agent:", err)
			return 1
		case pid == child:
			return exitCode(ws)
		}
	}
}

// exitCode is the code a shell would give for ws.
func exitCode(ws unix.WaitStatus) int {
	if ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ws.ExitStatus()
}

// underPID1: this process is the agent Supervise started.
var underPID1 bool

// Announce logs, in the agent Supervise started, that its pid 1 collects
// orphans' exits.
func Announce(log logr.Logger) {
	if underPID1 {
		log.Info("The agent runs under its own pid 1, which collects the exits of orphaned processes")
	}
}
