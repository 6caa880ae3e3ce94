package pool_test

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferry-dev/ferry/agent/internal/agenttest"
	"github.com/ferry-dev/ferry/agent/pool"
	ferryv1 "github.com/ferry-dev/ferry/api/v1alpha1"
	"github.com/ferry-dev/ferry/internal/testsupport"
)

// TestPortTakenIsNotADeploymentError: a rolling restart whose replacement
// finds its port taken by another socket on each of its spawns (spawn
// tries 3 ports) does not resist the new revision, which is not at fault:
// the pool records a scaling error, backs off, tries the step again, and
// the restart completes.
func TestPortTakenIsNotADeploymentError(t *testing.T) {
	root, _ := filepath.Abs("../spawn/testdata/cmd")
	tmpl := agenttest.WSGIAt(root, 1, 1)
	tmpl.App = ferryv1.AppSpec{Type: ferryv1.AppTypeCommand, Root: root, Command: []string{"sh", "-c", askFirst}}
	e := agenttest.Start(t, pool.Config{Name: "t/porttaken", Revision: "1", Template: tmpl}, agenttest.Options{})
	e.WaitFor(t, time.Minute, "1 ready worker", agenttest.Ready(1))

	held := holdPorts(t, 3)
	tmpl2 := tmpl
	tmpl2.App.Env = []ferryv1.EnvVar{env("ASK_DIR", held.dir)}
	e.Pool.Update(pool.Config{Name: "t/porttaken", Revision: "2", Template: tmpl2})
	var scaling string
	done := e.WaitFor(t, 2*time.Minute, "a completed restart", func(s pool.Status) bool {
		if s.Resisting != nil {
			t.Fatalf("the pool resists revision 2, whose ports were taken: %s", s.Resisting.Reason)
		}
		if s.ScalingError != nil {
			scaling = s.ScalingError.Reason
		}
		return s.LastRestart != nil && s.Restart == nil
	})
	if lr := done.LastRestart; lr.Outcome != pool.OutcomeCompleted || lr.Replaced != 1 {
		t.Errorf("last restart = %+v, want completed, 1 replaced", *lr)
	}
	if n := held.n.Load(); n != 3 {
		t.Errorf("the test held %d ports, want 3", n)
	}
	if scaling == "" && done.LastSpawnError != nil {
		scaling = done.LastSpawnError.Reason
	}
	if !strings.Contains(scaling, "as were the ports of its 2 spawns before") {
		t.Errorf("the failure recorded is %q, want the ports taken", scaling)
	}
}

// askFirst runs spawn's test server on $PORT; with ASK_DIR set, it first
// asks holdPorts whether to find its port taken: it makes ask.$PORT there
// and waits for the answer, held.$PORT (the test listens on the port now,
// and the server fails to bind it) or free.$PORT.
const askFirst = `if [ -n "$ASK_DIR" ]; then
	: > "$ASK_DIR/ask.$PORT"
	while [ ! -e "$ASK_DIR/held.$PORT" ] && [ ! -e "$ASK_DIR/free.$PORT" ]; do sleep 0.01; done
fi
exec python3 server.py "$PORT"`

// heldPorts: holdPorts' directory of questions and answers, and how many
// ports it held.
type heldPorts struct {
	dir string
	n   atomic.Int32
}

// holdPorts answers askFirst's questions:
// it listens on the first n ports asked about, then lets them be.
func holdPorts(t *testing.T, n int32) *heldPorts {
	t.Helper()
	dir := testsupport.SharedDir(t) // workers run as nobody under a root agent
	h := &heldPorts{dir: dir}
	stop := make(chan struct{})
	t.Cleanup(func() { close(stop) })
	go func() {
		var listeners []net.Listener
		defer func() {
			for _, l := range listeners {
				_ = l.Close()
			}
		}()
		for {
			asks, _ := filepath.Glob(filepath.Join(dir, "ask.*"))
			for _, ask := range asks {
				port := strings.TrimPrefix(filepath.Base(ask), "ask.")
				answer := "free"
				if h.n.Load() < n {
					if l, err := net.Listen("tcp", "127.0.0.1:"+port); err == nil {
						listeners = append(listeners, l)
						h.n.Add(1)
						answer = "held"
					}
				}
				_ = os.WriteFile(filepath.Join(dir, answer+"."+port), nil, 0o644)
				_ = os.Remove(ask)
			}
			select {
			case <-stop:
				return
			case <-time.After(10 * time.Millisecond):
			}
		}
	}()
	return h
}

// TestDaemonizingRevisionIsResisted: a revision whose command daemonizes
// (spawn's testdata/cmd/daemonize.sh: a child out of its process group
// listens on $PORT, and the command exits) is the revision's fault, though
// a socket holds its port after it exited: the pool resists it, as it
// resists any revision that cannot spawn. Before (the review of 5607385),
// each spawn read "taken by another socket", PortTaken, and the restart
// backed off and tried again for ever, 3 more daemons each round.
func TestDaemonizingRevisionIsResisted(t *testing.T) {
	root, _ := filepath.Abs("../spawn/testdata/cmd")
	tmpl := agenttest.WSGIAt(root, 1, 1)
	tmpl.App = ferryv1.AppSpec{Type: ferryv1.AppTypeCommand, Root: root, Command: []string{"python3", "server.py", "$(PORT)"}}
	e := agenttest.Start(t, pool.Config{Name: "t/daemon", Revision: "1", Template: tmpl}, agenttest.Options{})
	e.WaitFor(t, time.Minute, "1 ready worker", agenttest.Ready(1))

	tmpl2 := tmpl
	tmpl2.App = ferryv1.AppSpec{Type: ferryv1.AppTypeCommand, Root: root, Command: []string{"sh", "daemonize.sh"},
		Env: []ferryv1.EnvVar{env("DAEMON_DIR", testsupport.WorkerDir(t))}} // the daemons end with the directory
	e.Pool.Update(pool.Config{Name: "t/daemon", Revision: "2", Template: tmpl2})
	s := e.WaitFor(t, 2*time.Minute, "resistance to revision 2", func(s pool.Status) bool { return s.Resisting != nil })
	if r := s.Resisting.Reason; strings.Contains(r, "taken by another socket") {
		t.Errorf("resisted with %q, want the command's own exit, not a port taken", r)
	}
}
