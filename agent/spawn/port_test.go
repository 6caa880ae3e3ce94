package spawn

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	ferryv1 "github.com/ferry-dev/ferry/api/v1alpha1"
	"github.com/ferry-dev/ferry/internal/testsupport"
)

// takenPort is a port of 127.0.0.1 that an outgoing connection holds, the
// way walk5's client connections took workers' ports: a connection to a
// listener of the test's (the kernel completes it into the listener's
// backlog; nothing accepts it), whose local port the kernel picks. It
// used to pick a free port, release it and dial from it, and another
// package's test (go test -p 2) could take the port in between ("bind:
// address already in use").
func takenPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c.LocalAddr().(*net.TCPAddr).Port
}

// TestSpawnCommandWhosePortAConnectionTookGetsAnother: a worker whose port
// an outgoing connection took before it bound it exits ("Address already
// in use"); the spawn tries again on another port, and succeeds, its
// caller seeing no error; the log says why.
func TestSpawnCommandWhosePortAConnectionTookGetsAnother(t *testing.T) {
	port := takenPort(t)
	first := true
	pickPort = func() (int, error) {
		if first {
			first = false
			return port, nil
		}
		return freePort()
	}
	t.Cleanup(func() { pickPort = freePort })
	spec := testSpec(t, ferryv1.AppSpec{Type: ferryv1.AppTypeCommand, Root: "testdata/cmd",
		Command: []string{"python3", "server.py", "$(PORT)"}})
	lines := captureLog(&spec)
	p, err := Spawn(context.Background(), spec)
	if err != nil {
		t.Fatalf("the spawn failed: %v", err)
	}
	defer p.Stop(5 * time.Second)
	if p.Address == fmt.Sprintf("127.0.0.1:%d", port) {
		t.Fatalf("the worker serves on %s, the port the connection holds", p.Address)
	}
	want := fmt.Sprintf("before it was ready; its port %d was taken by another socket before it bound it; Ferry gives it another port", port)
	for _, l := range lines() {
		if strings.Contains(l, "Worker's port was taken by another socket") && strings.Contains(l, want) &&
			strings.Contains(l, "Address already in use") {
			return
		}
	}
	t.Errorf("no log line saying %q with the worker's error in:\n%s", want, strings.Join(lines(), "\n"))
}

// TestSpawnCommandWhosePortsAreAllTakenSaysSo: when each port given is
// taken, the spawn fails after portSpawns tries, saying so.
func TestSpawnCommandWhosePortsAreAllTakenSaysSo(t *testing.T) {
	port := takenPort(t)
	givePort(t, port)
	spec := testSpec(t, ferryv1.AppSpec{Type: ferryv1.AppTypeCommand, Root: "testdata/cmd",
		Command: []string{"python3", "server.py", "$(PORT)"}})
	_, err := Spawn(context.Background(), spec)
	var se *Error
	want := fmt.Sprintf("exited with status 1 before it was ready; its port %d was taken by another socket before it bound it, "+
		"as were the ports of its 2 spawns before: see what holds ports of 127.0.0.1 (ss -tanp)", port)
	if !errors.As(err, &se) || se.Reason != want || !strings.Contains(se.Output, "Address already in use") {
		t.Fatalf("err = %v,\nwant reason %q and the worker's bind error", err, want)
	}
	if !se.PortTaken() {
		t.Error("PortTaken() = false, want true: the pool must not count the error against the revision")
	}
}

// TestSpawnCommandExitOnAFreePortIsNotRetried: a worker that exits before
// it is ready, its port free, fails its spawn at once, its reason its own.
func TestSpawnCommandExitOnAFreePortIsNotRetried(t *testing.T) {
	spawns := 0
	pickPort = func() (int, error) { spawns++; return freePort() }
	t.Cleanup(func() { pickPort = freePort })
	spec := testSpec(t, ferryv1.AppSpec{Type: ferryv1.AppTypeCommand, Root: "testdata/cmd",
		Command: []string{"python3", "server.py", "$(PORT)"}, Env: []ferryv1.EnvVar{{Name: "FAIL", Value: "1"}}})
	_, err := Spawn(context.Background(), spec)
	var se *Error
	if !errors.As(err, &se) || se.Reason != "exited with status 3 before it was ready" || spawns != 1 {
		t.Fatalf("err = %v after %d spawns, want exit status 3 after 1", err, spawns)
	}
	if se.PortTaken() {
		t.Error("PortTaken() = true for an app's own exit on a free port")
	}
}

// TestSpawnCommandThatDaemonizesOntoItsPortIsNotRetried: a command that
// daemonizes (testdata/cmd/daemonize.sh: a child outside its process group
// listens on $PORT, and the command exits) fails its spawn at once, its port not counted as taken
// by another: a socket of the worker's own user listens there, which a
// retry on another port would only repeat. Before, its 3 spawns each read
// "taken by another socket" and PortTaken, which the pool retries for
// ever instead of resisting the revision (the review of 5607385).
func TestSpawnCommandThatDaemonizesOntoItsPortIsNotRetried(t *testing.T) {
	dir := testsupport.WorkerDir(t) // the daemon lives as long as it: it ends with the test
	spawns := 0
	pickPort = func() (int, error) { spawns++; return freePort() }
	t.Cleanup(func() { pickPort = freePort })
	spec := testSpec(t, ferryv1.AppSpec{Type: ferryv1.AppTypeCommand, Root: "testdata/cmd",
		Command: []string{"sh", "daemonize.sh"}, Env: []ferryv1.EnvVar{{Name: "DAEMON_DIR", Value: dir}}})
	spec.StartTimeout = 10 * time.Second
	_, err := Spawn(context.Background(), spec)
	var se *Error
	if !errors.As(err, &se) || spawns != 1 || strings.Contains(se.Reason, "taken by another socket") ||
		!strings.Contains(se.Reason, "exited with status 0 before it was ready") {
		t.Fatalf("err = %v after %d spawns, want its exit (status 0) after 1, no port taken", err, spawns)
	}
	if se.PortTaken() {
		t.Error("PortTaken() = true for a command whose own daemon holds its port")
	}
}

func TestPortLostNote(t *testing.T) {
	for _, tc := range []struct {
		n    int
		want string
	}{
		{1, "; its port 61234 was taken by another socket before it bound it; Ferry gives it another port"},
		{2, "; its port 61234 was taken by another socket before it bound it; Ferry gives it another port"},
		{3, "; its port 61234 was taken by another socket before it bound it, as were the ports of its 2 spawns before: " +
			"see what holds ports of 127.0.0.1 (ss -tanp)"},
	} {
		if got := portLostNote(61234, tc.n, 3); got != tc.want {
			t.Errorf("portLostNote(61234, %d, 3) = %q, want %q", tc.n, got, tc.want)
		}
	}
}

// TestFailReason: a spawn's failure is worded once, the probe's note that
// another process answered on the port left to Spawn's when Spawn says
// the port was taken.
func TestFailReason(t *testing.T) {
	exited := func(err error) *Process {
		p := &Process{done: make(chan struct{}), exitErr: err}
		close(p.done)
		p.exited.Store(true)
		return p
	}
	exited0, exited1 := exited(nil), exited(errors.New("exit status 1"))
	exit1 := errors.New("exited with status 1 before it was ready")
	taken := &portTakenError{err: exit1, addr: "127.0.0.1:61234"}
	unready := &portTakenError{err: &unreadyError{err: context.DeadlineExceeded, seen: "GET /up on 127.0.0.1:61234 answered 503"},
		addr: "127.0.0.1:61234"}
	const note = "; its port 127.0.0.1:61234 was taken by a process outside the worker, which answered in its place"
	for _, tc := range []struct {
		name     string
		err      error
		proc     *Process
		wsgi     bool
		portLost bool
		want     string
	}{
		{"an exit", exit1, exited1, false, false, "exited with status 1 before it was ready"},
		{"an exit, another process answering", taken, exited1, false, false, "exited with status 1 before it was ready" + note},
		{"an exit, the port lost: Spawn says so", taken, exited1, false, true, "exited with status 1 before it was ready"},
		{"a daemonizing command", errors.New("exited with status 0 before it was ready"), exited0, false, false,
			"exited with status 0 before it was ready" + foregroundNote(exited0)},
		{"not ready, another process answering", unready, exited1, false, false,
			"not ready within startTimeout (5s): GET /up on 127.0.0.1:61234 answered 503" + note},
		{"a WSGI app still loading", context.DeadlineExceeded, exited1, true, false,
			"not ready within startTimeout (5s)" + stillLoading(ferryv1.AppSpec{}, 5*time.Second)},
	} {
		if got := failReason(tc.err, ferryv1.AppSpec{}, tc.proc, tc.wsgi, 5*time.Second, tc.portLost); got != tc.want {
			t.Errorf("%s: failReason = %q,\nwant %q", tc.name, got, tc.want)
		}
	}
}
