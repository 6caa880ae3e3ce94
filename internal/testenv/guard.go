package testenv

import (
	"errors"
	"os"
	"os/exec"
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

// guardScript waits for the pipe to close, then kills by directory. It
// ignores SIGINT and SIGHUP, which a terminal sends the whole process
// group: it must outlive the binary to do its work. pkill, which the shell
// becomes, never matches itself.
const guardScript = `trap '' INT HUP; read -r _; exec pkill -KILL -f -- "$1"`

func startGuard(dir string) (*guard, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	defer r.Close() // the child holds its own copy
	cmd := exec.Command("/bin/sh", "-c", guardScript, "ferry-testenv-guard", dir+"/")
	cmd.Stdin = r
	if err := cmd.Start(); err != nil {
		_ = w.Close()
		return nil, errors.Join(errors.New("testenv: starting the control plane's guard (needs pkill, Debian's procps)"), err)
	}
	return &guard{cmd: cmd, w: w}, nil
}

// stop makes the guard kill what is left of the control plane now, and
// waits for it.
func (g *guard) stop() error {
	if err := g.w.Close(); err != nil {
		return err
	}
	// Exit status 1 (nothing left to kill) is as good as 0.
	_ = g.cmd.Wait()
	return nil
}
