package testenv

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"regexp"
)

// guard kills a control plane whose test binary died without stopping it:
// a panicking test, or `go test -timeout`, ends the binary at once, and
// envtest's etcd and kube-apiserver would run on, holding their ports
// and files, until someone killed them by hand.
//
// It is a shell reading its standard input from a pipe whose only write
// end this process holds. Any end of this process closes that end; the
// shell's read then returns and it kills every process whose command line
// names the control plane's directory: etcd and kube-apiserver (their data
// and certificates are there), and anything a test started with the
// kubeconfig from there.
//
// A parent-death signal would do it without a shell, but envtest gives no
// way to set one, and the signal follows the thread that forked the child:
// the agent's tests lock threads and let them exit (spawn), which would kill
// a control plane forked from such a thread in the middle of a test.
type guard struct {
	cmd *exec.Cmd
	w   *os.File
}

// guardScript waits for the pipe to close, then kills by directory ($2,
// quoted for pkill's extended regular expression) with pkill ($1). It
// ignores SIGINT, SIGHUP and SIGTERM, which a terminal or a runner may send
// the whole process group: it must outlive the binary to do its work.
// pkill, which the shell becomes, never matches itself.
const guardScript = `trap '' INT HUP TERM; read -r _; exec "$1" -KILL -f -- "$2"`

func startGuard(dir string) (*guard, error) {
	// Looked up now: a guard that cannot kill must not start silently.
	pkill, err := exec.LookPath("pkill")
	if err != nil {
		return nil, fmt.Errorf("testenv: the control plane's guard needs pkill (Debian's procps; make deps installs it): %w", err)
	}
	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	defer r.Close() // the child holds its own copy
	cmd := exec.Command("/bin/sh", "-c", guardScript, "ferry-testenv-guard", pkill, regexp.QuoteMeta(dir+"/"))
	cmd.Stdin = r
	if err := cmd.Start(); err != nil {
		_ = w.Close()
		return nil, fmt.Errorf("testenv: starting the control plane's guard: %w", err)
	}
	return &guard{cmd: cmd, w: w}, nil
}

// stop makes the guard kill what is left of the control plane now, and
// waits for it. Only the first call does anything.
func (g *guard) stop() error {
	if g.w == nil {
		return nil
	}
	err := g.w.Close()
	g.w = nil
	if err != nil {
		return err
	}
	// pkill's exit status 1 (nothing left to kill) is as good as 0.
	var exit *exec.ExitError
	if err := g.cmd.Wait(); err != nil && (!errors.As(err, &exit) || exit.ExitCode() != 1) {
		return fmt.Errorf("testenv: the control plane's guard: %w", err)
	}
	return nil
}
