package spawn

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/go-logr/logr/funcr"
	"github.com/go-logr/logr/testr"

	"github.com/ferry-dev/ferry/agent/wsgi"
	ferryv1 "github.com/ferry-dev/ferry/api/v1alpha1"
	"github.com/ferry-dev/ferry/internal/testsupport"
)

func testSpec(t *testing.T, app ferryv1.AppSpec) Spec {
	t.Helper()
	run := testsupport.WorkerDir(t)
	loader, err := wsgi.Install(filepath.Join(run, "loader"))
	if err != nil {
		t.Fatal(err)
	}
	if app.Root == "" {
		t.Fatal("no root")
	}
	root, _ := filepath.Abs(app.Root)
	app.Root = root
	return Spec{App: app, Revision: "r1", StartTimeout: 30 * time.Second, RunDir: run, LoaderPath: loader, Log: testr.New(t)}
}

func get(t *testing.T, p *Process, path string) string {
	t.Helper()
	c := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, p.Network, p.Address)
	}}}
	resp, err := c.Get("http://worker" + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

func TestSpawnWSGIRunsAsNobodyWithAppEnv(t *testing.T) {
	spec := testSpec(t, ferryv1.AppSpec{Type: ferryv1.AppTypeWSGI, Root: "testdata/ok", StartupFile: "passenger_wsgi.py",
		Env: []ferryv1.EnvVar{{Name: "GREETING", Value: "hi"}}})
	p, err := Spawn(context.Background(), spec)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Stop(5 * time.Second)
	body := get(t, p, "/")
	fields := strings.Fields(body)
	if len(fields) != 3 || fields[0] != strconv.Itoa(p.PID) || fields[2] != "hi" {
		t.Fatalf("body %q, want pid %d and the app env", body, p.PID)
	}
	if os.Geteuid() == 0 && fields[1] != "nobody" {
		t.Errorf("worker runs as %q, want nobody when the agent is root", fields[1])
	}
	if pgid, _ := syscall.Getpgid(p.PID); pgid != p.PID {
		t.Errorf("worker pgid %d, want its own group %d", pgid, p.PID)
	}
	status, _ := os.ReadFile("/proc/" + strconv.Itoa(p.PID) + "/status")
	if !strings.Contains(string(status), "NoNewPrivs:\t1") {
		t.Errorf("no_new_privs not set:\n%s", status)
	}
	if killed := p.Stop(10 * time.Second); killed {
		t.Error("worker needed SIGKILL to stop after SIGTERM")
	}
	if !p.Exited() || p.ExitStatus() != "exit status 0" {
		t.Errorf("after Stop: exited=%v status=%q", p.Exited(), p.ExitStatus())
	}
}

func TestSpawnWSGIImportErrorCarriesTraceback(t *testing.T) {
	spec := testSpec(t, ferryv1.AppSpec{Type: ferryv1.AppTypeWSGI, Root: "testdata/broken", StartupFile: "passenger_wsgi.py"})
	// Several times: the loader's message and its exit race each other.
	for range 5 {
		_, err := Spawn(context.Background(), spec)
		var se *Error
		if !errors.As(err, &se) {
			t.Fatalf("err = %v, want *Error", err)
		}
		if !strings.Contains(se.Reason, "ModuleNotFoundError") || !strings.Contains(se.Output, "Traceback") ||
			!strings.Contains(se.Output, "ferry_module_that_does_not_exist") {
			t.Fatalf("spawn error lacks the loader's account:\nreason: %s\noutput: %s", se.Reason, se.Output)
		}
	}
}

func TestSpawnStartTimeoutKillsHungSpawn(t *testing.T) {
	spec := testSpec(t, ferryv1.AppSpec{Type: ferryv1.AppTypeWSGI, Root: "testdata/hang", StartupFile: "passenger_wsgi.py"})
	spec.StartTimeout = time.Second
	_, err := Spawn(context.Background(), spec)
	var se *Error
	if !errors.As(err, &se) || !strings.Contains(se.Reason, "not ready within startTimeout (1s)") {
		t.Fatalf("err = %v, want a startTimeout spawn error", err)
	}
}

func TestSpawnCommand(t *testing.T) {
	spec := testSpec(t, ferryv1.AppSpec{Type: ferryv1.AppTypeCommand, Root: "testdata/cmd",
		Command: []string{"python3", "server.py", "$(PORT)"}, ReadinessPath: "/"})
	p, err := Spawn(context.Background(), spec)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Stop(5 * time.Second) }) // if get fails; the Stop below makes this one do nothing
	if got := strings.TrimSpace(get(t, p, "/")); got != strconv.Itoa(p.PID) {
		t.Errorf("body %q, want pid %d", got, p.PID)
	}
	port := portOf(t, p.Address)
	if !portHeld(port) {
		t.Errorf("port %d of a live worker is not held", port)
	}
	p.Stop(5 * time.Second)
	if portHeld(port) {
		t.Errorf("port %d still held after its worker exited", port)
	}
}

// TestFreePortNeverHandsOutAPortTwice: the kernel would give a port it
// gave a moment ago again, since the worker it went to has not bound it
// yet; freePort does not while a worker holds it. A thousand draws from
// the few thousand ports the kernel picks from at random would repeat one
// many times over.
func TestFreePortNeverHandsOutAPortTwice(t *testing.T) {
	given := map[int]bool{}
	defer func() {
		for p := range given {
			releasePort(p)
		}
	}()
	for range 1000 {
		p, err := freePort()
		if err != nil {
			t.Fatal(err)
		}
		if given[p] {
			t.Fatalf("port %d handed out twice (after %d others)", p, len(given))
		}
		given[p] = true
	}
}

// TestFailedCommandSpawnsReleaseTheirPorts: a Command worker that exits
// before it is ready, or cannot be started, gives its port back.
func TestFailedCommandSpawnsReleaseTheirPorts(t *testing.T) {
	for _, cmd := range [][]string{{"python3", "server.py", "$(PORT)"}, {"no-such-command-ferry"}} {
		spec := testSpec(t, ferryv1.AppSpec{Type: ferryv1.AppTypeCommand, Root: "testdata/cmd",
			Command: cmd, Env: []ferryv1.EnvVar{{Name: "FAIL", Value: "1"}}})
		if _, err := Spawn(context.Background(), spec); err == nil {
			t.Fatalf("%v: the spawn succeeded", cmd)
		}
		heldPorts.Lock()
		n := len(heldPorts.m)
		heldPorts.Unlock()
		if n != 0 {
			t.Errorf("%v: %d ports still held after the spawn failed", cmd, n)
		}
	}
}

func portHeld(port int) bool {
	heldPorts.Lock()
	defer heldPorts.Unlock()
	return heldPorts.m[port]
}

func portOf(t *testing.T, addr string) int {
	t.Helper()
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	port, err := strconv.Atoi(p)
	if err != nil {
		t.Fatal(err)
	}
	return port
}

func TestSpawnCommandExitCarriesStatusAndOutput(t *testing.T) {
	spec := testSpec(t, ferryv1.AppSpec{Type: ferryv1.AppTypeCommand, Root: "testdata/cmd",
		Command: []string{"python3", "server.py", "$(PORT)"}, Env: []ferryv1.EnvVar{{Name: "FAIL", Value: "1"}}})
	_, err := Spawn(context.Background(), spec)
	var se *Error
	if !errors.As(err, &se) || se.Reason != "exited with status 3 before it was ready" ||
		!strings.Contains(se.Output, "cannot start: FAIL is set") {
		t.Fatalf("err = %#v, want exit status 3 and the output", err)
	}
}

func TestSpawnMissingCommand(t *testing.T) {
	spec := testSpec(t, ferryv1.AppSpec{Type: ferryv1.AppTypeCommand, Root: "testdata/cmd",
		Command: []string{"no-such-binary-ferry"}})
	_, err := Spawn(context.Background(), spec)
	var se *Error
	if !errors.As(err, &se) || !strings.Contains(se.Reason, "could not start") || !strings.Contains(se.Reason, "no-such-binary-ferry") {
		t.Fatalf("err = %v", err)
	}
}

// TestSpawnMissingRoot: a root that is not there, or not a directory, is
// named as such, not as the interpreter exec could not start in it.
func TestSpawnMissingRoot(t *testing.T) {
	for root, want := range map[string]string{
		"/nonexistent/ferry-app":        "app.root /nonexistent/ferry-app does not exist",
		"testdata/ok/passenger_wsgi.py": "passenger_wsgi.py is not a directory",
	} {
		for _, app := range []ferryv1.AppSpec{
			{Type: ferryv1.AppTypeWSGI, Root: root, StartupFile: "passenger_wsgi.py"},
			{Type: ferryv1.AppTypeCommand, Root: root, Command: []string{"python3", "-m", "http.server"}},
		} {
			_, err := Spawn(context.Background(), testSpec(t, app))
			var se *Error
			if !errors.As(err, &se) || !strings.Contains(se.Reason, want) {
				t.Errorf("%s app in %s: err = %v, want %q", app.Type, root, err, want)
			}
		}
	}
}

// TestSpawnMissingStartupFile: a WSGI app's startupFile that is not a file
// in its root is named, with its field and its root, before a worker is
// started, not as the loader's FileNotFoundError; a module name whose file
// is there gets the file meant.
func TestSpawnMissingStartupFile(t *testing.T) {
	root := testsupport.WorkerDir(t)
	if err := os.MkdirAll(filepath.Join(root, "mysite"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "mysite", "wsgi.py"), []byte("def application(e, s): pass\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for startup, want := range map[string]string{
		"nothere.py":              "could not start: app.startupFile nothere.py: no such file in app.root " + root,
		"":                        "could not start: app.startupFile passenger_wsgi.py: no such file in app.root " + root,
		"mysite.wsgi:application": "could not start: app.startupFile mysite.wsgi:application: no such file in app.root " + root + "; startupFile is a path, not a module name: did you mean mysite/wsgi.py?",
		"mysite":                  "could not start: app.startupFile mysite: a directory in app.root " + root + ", not a file",
	} {
		_, err := Spawn(context.Background(), testSpec(t, ferryv1.AppSpec{Type: ferryv1.AppTypeWSGI, Root: root, StartupFile: startup}))
		var se *Error
		if !errors.As(err, &se) || se.Reason != want || se.Output != "" {
			t.Errorf("startupFile %q: err = %v, want %q and no output", startup, err, want)
		}
	}
}

// TestFailingReadinessPathSaysItsTracebackOnce: a readinessPath that
// raises, asked until startTimeout, leaves its traceback once in the
// failed spawn's output (and so in the log), and then a line at each
// power of two, not a traceback per probe.
func TestFailingReadinessPathSaysItsTracebackOnce(t *testing.T) {
	root := testsupport.WorkerDir(t)
	app := "def healthz():\n    raise RuntimeError('database unreachable')\n\n\n" +
		"def application(environ, start_response):\n    healthz()\n"
	if err := os.WriteFile(filepath.Join(root, "passenger_wsgi.py"), []byte(app), 0o644); err != nil {
		t.Fatal(err)
	}
	spec := testSpec(t, ferryv1.AppSpec{Type: ferryv1.AppTypeWSGI, Root: root, StartupFile: "passenger_wsgi.py", ReadinessPath: "/healthz"})
	spec.StartTimeout = time.Second
	_, err := Spawn(context.Background(), spec)
	var se *Error
	if !errors.As(err, &se) || !strings.Contains(se.Reason, "not ready within startTimeout (1s): GET /healthz") {
		t.Fatalf("err = %v, want not ready within startTimeout", err)
	}
	const same = "ferry-wsgi: error serving GET /healthz: same as before (RuntimeError: database unreachable), 2 times in a row; next said at 4"
	if n := strings.Count(se.Output, "Traceback (most recent call last)"); n != 1 || !strings.Contains(se.Output, same) {
		t.Errorf("the output has %d tracebacks, want 1, then %q:\n%s", n, same, se.Output)
	}
}

// TestWorkerOutputIsLoggedWithPIDAndRevision: every line a worker writes
// reaches the agent's log with the worker's pid and revision.
func TestWorkerOutputIsLoggedWithPIDAndRevision(t *testing.T) {
	spec := testSpec(t, ferryv1.AppSpec{Type: ferryv1.AppTypeWSGI, Root: "testdata/ok", StartupFile: "passenger_wsgi.py"})
	lines := captureLog(&spec)
	p, err := Spawn(context.Background(), spec)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Stop(5 * time.Second)
	want := fmt.Sprintf(`"revision"="r1" "pid"=%d "stream"="stderr" "line"="booting %d"`, p.PID, p.PID)
	deadline := time.Now().Add(10 * time.Second)
	for {
		if slices.ContainsFunc(lines(), func(l string) bool { return strings.Contains(l, want) }) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no log line with %s in:\n%s", want, strings.Join(lines(), "\n"))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// captureLog makes spec's log one the test reads: the lines so far.
func captureLog(spec *Spec) func() []string {
	var mu sync.Mutex
	var lines []string
	spec.Log = funcr.New(func(_, args string) {
		mu.Lock()
		lines = append(lines, args)
		mu.Unlock()
	}, funcr.Options{})
	return func() []string {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(lines)
	}
}

// TestFailedSpawnsLeakNothing: a spawn that fails before the process
// starts (the interpreter is not on the worker's PATH) leaves no open file
// and no socket directory behind, however often it is retried.
func TestFailedSpawnsLeakNothing(t *testing.T) {
	spec := testSpec(t, ferryv1.AppSpec{Type: ferryv1.AppTypeWSGI, Root: "testdata/ok", StartupFile: "passenger_wsgi.py",
		Python: "no-such-python-ferry"})
	fds := func() int {
		entries, _ := os.ReadDir("/proc/self/fd")
		return len(entries)
	}
	before := fds()
	for range 20 {
		if _, err := Spawn(context.Background(), spec); err == nil {
			t.Fatal("spawn with a missing interpreter succeeded")
		}
	}
	if after := fds(); after > before {
		t.Errorf("%d file descriptors leaked by 20 failed spawns", after-before)
	}
	entries, _ := os.ReadDir(spec.RunDir)
	for _, e := range entries {
		if e.Name() != "loader" {
			t.Errorf("left behind in the run directory: %s", e.Name())
		}
	}
}

// TestSpawnCommandNotReadySaysWhatItSaw: a Command worker that runs out
// of startTimeout is told apart by what the probe found: one listening on
// another port than $PORT left nothing accepting connections on its own,
// and its sockets say where it listens instead, also when a shell runs it
// (the listener is the shell's child, in the worker's process group); one
// whose readiness path answers 503 did answer, with that status. (The
// timeout leaves python3 time to bind: the message is read at its end.)
func TestSpawnCommandNotReadySaysWhatItSaw(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	other := l.Addr().(*net.TCPAddr).Port
	_ = l.Close() // the worker's to take
	wrongPort := fmt.Sprintf("import http.server as s; s.HTTPServer(('127.0.0.1', %d), s.BaseHTTPRequestHandler).serve_forever()", other)
	unhealthy := `import http.server as s, os
class H(s.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(503 if self.path == "/healthz" else 200)
        self.end_headers()
s.HTTPServer(("127.0.0.1", int(os.environ["PORT"])), H).serve_forever()`
	elsewhere := "not ready within startTimeout (4s): nothing accepted connections on 127.0.0.1:{port}: " +
		"it listens on 127.0.0.1:{other} instead; make it listen on $PORT ({port})"
	for _, tc := range []struct {
		name    string
		command []string
		path    string
		want    string
	}{
		{"wrong port", []string{"python3", "-c", wrongPort}, "", elsewhere},
		{"wrong port with a readiness path", []string{"python3", "-c", wrongPort}, "/healthz", elsewhere},
		{"wrong port, run by a shell", []string{"sh", "-c", `python3 -c "$0"; exit $?`, wrongPort}, "", elsewhere},
		{"listening nowhere", []string{"sleep", "60"}, "",
			"not ready within startTimeout (4s): nothing accepted connections on 127.0.0.1:{port} (the app must listen on $PORT, {port})"},
		{"unhealthy", []string{"python3", "-c", unhealthy}, "/healthz",
			"not ready within startTimeout (4s): GET /healthz on 127.0.0.1:{port} answered 503 Service Unavailable until then (readiness takes a status below 500)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			port := l.Addr().(*net.TCPAddr).Port
			_ = l.Close()
			givePort(t, port)
			spec := testSpec(t, ferryv1.AppSpec{Type: ferryv1.AppTypeCommand, Root: "testdata/cmd",
				Command: tc.command, ReadinessPath: tc.path})
			spec.StartTimeout = 4 * time.Second
			p, err := Spawn(context.Background(), spec)
			if err == nil {
				p.Stop(5 * time.Second)
				t.Fatal("the spawn succeeded")
			}
			want := strings.NewReplacer("{port}", strconv.Itoa(port), "{other}", strconv.Itoa(other)).Replace(tc.want)
			var se *Error
			if !errors.As(err, &se) || se.Reason != want {
				t.Errorf("err = %v,\nwant reason %q", err, want)
			}
		})
	}
}

// TestFreePortIsOutsideTheEphemeralRange: a worker's port is none that
// the kernel gives an outgoing connection (ip_local_port_range), which
// could take it while the worker boots.
func TestFreePortIsOutsideTheEphemeralRange(t *testing.T) {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		t.Fatal(err)
	}
	var first, last int
	if _, err := fmt.Sscan(string(b), &first, &last); err != nil {
		t.Fatal(err)
	}
	for range 50 {
		p, err := freePort()
		if err != nil {
			t.Fatal(err)
		}
		releasePort(p)
		if p >= first && p <= last {
			t.Fatalf("port %d is of the kernel's ephemeral range %d-%d", p, first, last)
		}
	}
}

// TestExitIsKnownOnceExitedSaysSo: a reader that sees Exited reads the
// exit's status, before the reaper has cleaned up what the process held
// (its port here, held up by the test) and closed Done; and the status
// does not change after. Before, the status was "" until Done closed:
// the proxy, finding the worker Exited, took a SIGKILL of another in a
// stop's grace for the agent's stop in its 502 ("the agent stopped the
// worker process ... for a rolling restart"), and its log, read a moment
// later, said stoppedBy "no" (a CI run).
func TestExitIsKnownOnceExitedSaysSo(t *testing.T) {
	spec := testSpec(t, ferryv1.AppSpec{Type: ferryv1.AppTypeCommand, Root: "testdata/cmd",
		Command: []string{"python3", "server.py", "$(PORT)"}, ReadinessPath: "/"})
	p, err := Spawn(context.Background(), spec)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Stop(5 * time.Second) })
	if s := p.ExitStatus(); s != "" {
		t.Fatalf("a running process: ExitStatus %q, want \"\"", s)
	}
	heldPorts.Lock() // the reaper's cleanup waits here: Done stays open
	unlocked := false
	unlock := func() {
		if !unlocked {
			unlocked = true
			heldPorts.Unlock()
		}
	}
	defer unlock()
	if err := syscall.Kill(p.PID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	testsupport.Eventually(t, time.Minute, "the process seen to exit", func() error {
		if !p.Exited() {
			return errors.New("not exited")
		}
		return nil
	})
	status := p.ExitStatus()
	select {
	case <-p.Done():
		t.Error("Done closed before the cleanup could run: the test held nothing up")
	default:
	}
	unlock()
	<-p.Done()
	if status != "signal: killed" {
		t.Errorf("once Exited: ExitStatus %q, want \"signal: killed\"", status)
	}
	if s := p.ExitStatus(); s != status {
		t.Errorf("ExitStatus changed from %q to %q as Done closed", status, s)
	}
}

// TestExitsWithinWaitsForASlowReaper: a process that has died, its
// reaper not yet run (a loaded machine: the reaper's goroutine waits its
// turn), exits within d however short d is, and ExitsWithin returns once
// the reaper has made its exit known; a live process does not. Before,
// ExitsWithin waited d for the reaper alone: a reaper later than the
// proxy's 250 ms (reapWait) turned a worker's death into "closed the
// connection without answering", and the cut's log blamed the agent's
// stop (found by review, with a 300 ms sleep in the reaper). The reaper
// here is the test's: the process is exec's child, not spawned.
func TestExitsWithinWaitsForASlowReaper(t *testing.T) {
	cmd := exec.Command("sleep", "60")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &Process{PID: cmd.Process.Pid, done: make(chan struct{})}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	if p.ExitsWithin(20 * time.Millisecond) {
		t.Fatal("a live process exits within 20ms, says ExitsWithin")
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	testsupport.Eventually(t, time.Minute, "the killed process a zombie (no reaper yet)", func() error {
		if testsupport.Running(p.PID) {
			return errors.New("still running")
		}
		return nil
	})
	reaped := make(chan struct{})
	go func() { // a reaper later than d
		time.Sleep(200 * time.Millisecond)
		p.exitErr = cmd.Wait()
		p.exited.Store(true)
		close(p.done)
		close(reaped)
	}()
	if !p.ExitsWithin(10 * time.Millisecond) {
		t.Error("a dead process, its reaper late, does not exit within 10ms, says ExitsWithin")
	}
	if p.ExitStatus() != "signal: killed" {
		t.Errorf("ExitsWithin returned before the exit was known: ExitStatus %q", p.ExitStatus())
	}
	<-reaped
}

// TestStalledProbeSaysLessThanTheOneBefore: a probe that could not connect
// within its timeout (the agent stalled, on a loaded machine) does not
// hide what the probe before found, which the message words (CI saw
// 'connecting to 127.0.0.1:N failed (dial tcp …: i/o timeout)' where the
// app listened on another port, and the message could have said so).
func TestStalledProbeSaysLessThanTheOneBefore(t *testing.T) {
	stalled := sighting{err: &net.OpError{Op: "dial", Net: "tcp", Err: timeoutError{}}}
	refused := sighting{refused: true, err: &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}}
	answered := sighting{status: 503}
	noAnswer := sighting{err: &net.OpError{Op: "read", Net: "tcp", Err: timeoutError{}}}
	for _, tc := range []struct {
		name        string
		latest, was sighting
		want        bool
	}{
		{"stalled after refused", stalled, refused, false},
		{"stalled after an answer", stalled, answered, false},
		{"stalled after nothing", stalled, sighting{}, true},
		{"stalled after stalled", stalled, stalled, true},
		{"refused after an answer", refused, answered, true},
		{"an answer after refused", answered, refused, true},
		{"no answer read after refused", noAnswer, refused, true},
	} {
		if got := tc.latest.saysMoreThan(tc.was); got != tc.want {
			t.Errorf("%s: saysMoreThan %v, want %v", tc.name, got, tc.want)
		}
	}
}

// timeoutError is a net.Error that timed out.
type timeoutError struct{}

func (timeoutError) Error() string   { return "i/o timeout" }
func (timeoutError) Timeout() bool   { return true }
func (timeoutError) Temporary() bool { return true }
