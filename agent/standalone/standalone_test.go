package standalone

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/testr"

	"github.com/ferry-dev/ferry/agent/metrics"
	"github.com/ferry-dev/ferry/agent/pool"
	"github.com/ferry-dev/ferry/agent/proxy"
	"github.com/ferry-dev/ferry/agent/statusview"
	ferryv1 "github.com/ferry-dev/ferry/api/v1alpha1"
	"github.com/ferry-dev/ferry/controllers/contract"

	"github.com/ferry-dev/ferry/internal/testsupport"
)

// site is a copy of an example app and an AppGroup file serving it.
type site struct {
	dir, file, root string
	port            int
}

func newSite(t *testing.T) *site {
	t.Helper()
	dir, err := os.MkdirTemp("", "fsite")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	_ = os.Chmod(dir, 0o755)
	s := &site{dir: dir, file: filepath.Join(dir, "ferry.yaml"), root: filepath.Join(dir, "app"), port: testsupport.FreePort(t)}
	if out, err := exec.Command("cp", "-r", "../../examples/hello-wsgi", s.root).CombinedOutput(); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	s.write(t, 2, "1")
	return s
}

// write rewrites the AppGroup file; root is relative, as users write it.
func (s *site) write(t *testing.T, minProcesses int, revision string, extra ...string) {
	t.Helper()
	doc := fmt.Sprintf(`apiVersion: ferry.dev/v1alpha1
kind: AppGroup
metadata:
  name: hello
  annotations: {ferry.dev/revision: %q}
spec:
  app: {type: WSGI, root: app}
  listen: {port: %d}
  pool: {minProcesses: %d, maxProcesses: 4}
`, revision, s.port, minProcesses)
	for _, e := range extra {
		doc += "---\n" + e
	}
	if err := os.WriteFile(s.file, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
}

func (s *site) url() string { return fmt.Sprintf("http://127.0.0.1:%d", s.port) }

// resistNothing turns the file's resistDeploymentErrors off: a process
// that fails to spawn in a restart is skipped, and the restart goes on.
func (s *site) resistNothing(t *testing.T) {
	t.Helper()
	data, err := os.ReadFile(s.file)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(s.file, append(data, "  restart: {resistDeploymentErrors: false}\n"...), 0o644); err != nil {
		t.Fatal(err)
	}
}

// statusText is st as `ferry-agent status` prints it.
func statusText(t *testing.T, st StatusResponse) string {
	t.Helper()
	var view strings.Builder
	if err := statusview.Write(&view, Header(st), View(st), time.Now()); err != nil {
		t.Fatal(err)
	}
	return view.String()
}

// breakApp makes the app fail to import; fixApp undoes it.
func (s *site) breakApp(t *testing.T) {
	t.Helper()
	f, err := os.OpenFile(filepath.Join(s.root, "passenger_wsgi.py"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	_, _ = io.WriteString(f, "\nimport ferry_missing_dependency  # broken deploy\n")
}

func (s *site) fixApp(t *testing.T) {
	t.Helper()
	path := filepath.Join(s.root, "passenger_wsgi.py")
	data, _ := os.ReadFile(path)
	fixed := strings.Replace(string(data), "\nimport ferry_missing_dependency  # broken deploy\n", "", 1)
	if err := os.WriteFile(path, []byte(fixed), 0o644); err != nil {
		t.Fatal(err)
	}
}

type running struct {
	srv    *Server
	client *Client
	stop   func()
}

// run starts an agent on s's file and waits until its processes are
// ready. s.port came from the kernel, free a moment ago; a connection
// elsewhere may have taken it since as its own (ephemeral) port, and the
// agent then refuses to start, rightly: a race of the test's setup, not
// the agent's, so the port is chosen again, twice at most.
func run(t *testing.T, s *site) *running {
	t.Helper()
	return runLogged(t, s, testr.New(t))
}

// runLogged is run with the agent logging to log.
func runLogged(t *testing.T, s *site, log logr.Logger) *running {
	t.Helper()
	for attempt := 0; ; attempt++ {
		r, err := start(t, s, log)
		if err == nil {
			r.waitStatus(t, "ready", func(a AppStatus) bool { return a.Pool.Counts.Ready >= a.Pool.MinProcesses })
			return r
		}
		if attempt == 2 || !strings.Contains(err.Error(), "address already in use") {
			t.Fatalf("the agent did not start: %v", err)
		}
		s.movePort(t)
	}
}

// start starts an agent on s's file, logging to log, and waits until its
// admin socket answers, or the agent ends (its error).
func start(t *testing.T, s *site, log logr.Logger) (*running, error) {
	t.Helper()
	state := filepath.Join(s.dir, "state")
	srv, err := New(Options{File: s.file, BindAddress: "127.0.0.1", AdminSocket: filepath.Join(state, "admin.sock"),
		StateDir: state, RestartFilePoll: 100 * time.Millisecond, Log: log, Metrics: metrics.New(),
		Agent: "ferry-agent test"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	r := &running{srv: srv, client: NewClient(filepath.Join(state, "admin.sock"))}
	// A loop of its own, not testsupport.Eventually: an agent that stops
	// meanwhile is its caller's error to check, not a failure.
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(20 * time.Millisecond) {
		select {
		case err := <-done:
			cancel()
			if err == nil {
				err = errors.New("it stopped at once")
			}
			return nil, err
		default:
		}
		if _, err := r.client.Status(context.Background()); err == nil {
			break
		} else if time.Now().After(deadline) {
			cancel()
			t.Fatalf("the agent's admin socket did not answer: %v", err)
		}
	}
	r.stop = func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}
	t.Cleanup(func() {
		select {
		case <-ctx.Done():
		default:
			r.stop()
		}
	})
	return r, nil
}

// movePort gives s another port from the kernel, in its file too.
func (s *site) movePort(t *testing.T) {
	t.Helper()
	data, err := os.ReadFile(s.file)
	if err != nil {
		t.Fatal(err)
	}
	port := testsupport.FreePort(t)
	doc := strings.Replace(string(data), fmt.Sprintf("listen: {port: %d}", s.port), fmt.Sprintf("listen: {port: %d}", port), 1)
	if err := os.WriteFile(s.file, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	s.port = port
}

func (r *running) waitStatus(t *testing.T, what string, cond func(AppStatus) bool) AppStatus {
	t.Helper()
	var app AppStatus
	testsupport.Eventually(t, time.Minute, what, func() error {
		st, err := r.client.Status(context.Background())
		if err != nil {
			return err
		}
		for _, a := range st.Apps {
			if a.Name == "hello" && cond(a) {
				app = a
				return nil
			}
		}
		return fmt.Errorf("not yet: %+v", st)
	})
	return app
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestServeRestartAndResist(t *testing.T) {
	s := newSite(t)
	r := run(t, s)
	if code, _ := get(t, s.url()+"/"); code != 200 {
		t.Fatalf("GET / = %d", code)
	}
	ctx := context.Background()

	// A restart without a revision rolls the same code to a new revision.
	rev, err := r.client.Restart(ctx, "hello", "")
	if err != nil || !strings.HasSuffix(rev, "+1") {
		t.Fatalf("restart: %q %v", rev, err)
	}
	if err := WaitRestart(ctx, r.client, "hello", rev, 50*time.Millisecond, nil); err != nil {
		t.Fatalf("wait: %v", err)
	}

	// A broken deploy: the wait reports resistance with the traceback, and
	// the old processes keep serving.
	s.breakApp(t)
	rev, err = r.client.Restart(ctx, "hello", "broken-1")
	if err != nil {
		t.Fatal(err)
	}
	err = WaitRestart(ctx, r.client, "hello", rev, 50*time.Millisecond, nil)
	if !errors.Is(err, ErrResisting) || !strings.Contains(err.Error(), "ferry_missing_dependency") ||
		!strings.Contains(err.Error(), "Traceback") || !strings.Contains(err.Error(), "failed to spawn") ||
		!strings.Contains(err.Error(), "Old processes keep serving") {
		t.Fatalf("wait on a broken revision: %v", err)
	}
	if code, _ := get(t, s.url()+"/"); code != 200 {
		t.Errorf("while resisting, GET / = %d", code)
	}
	// Same revision again is refused: the operator must ask for a new one.
	if _, err := r.client.Restart(ctx, "hello", "broken-1"); err == nil || !strings.Contains(err.Error(), `resists revision "broken-1"`) {
		t.Errorf("restarting to the revision being resisted: %v, want it refused as resisted", err)
	}
	// Mend it: a new revision leaves the mode.
	s.fixApp(t)
	rev, err = r.client.Restart(ctx, "hello", "")
	if err != nil {
		t.Fatal(err)
	}
	if err := WaitRestart(ctx, r.client, "hello", rev, 50*time.Millisecond, nil); err != nil {
		t.Fatalf("after the fix: %v", err)
	}
	if _, err := r.client.Restart(ctx, "nope", ""); !strings.Contains(fmt.Sprint(err), "no such AppGroup") {
		t.Errorf("restart of an unknown AppGroup: %v", err)
	}
}

// TestRestartNamesNeverRepeat: a restart without --revision gets a name
// the AppGroup never had in the agent's life: not one a --revision took
// (before, the counter reached it and the restart was refused as "already
// runs revision"), and not an earlier restart's after a reload changed the
// file's revision and changed it back (before, the counter started again
// at +1, and the first restart of the code back in place was named as the
// first restart of the code before it).
func TestRestartNamesNeverRepeat(t *testing.T) {
	s := newSite(t)
	r := run(t, s)
	ctx := context.Background()
	restart := func(revision, want string) {
		t.Helper()
		got, err := r.client.Restart(ctx, "hello", revision)
		if err != nil || got != want {
			t.Fatalf("restart %q: %q %v, want %q", revision, got, err, want)
		}
	}
	reload := func(revision string) string {
		t.Helper()
		s.write(t, 2, revision)
		if err := r.client.Reload(ctx); err != nil {
			t.Fatal(err)
		}
		return r.waitStatus(t, "the file's revision "+revision, func(a AppStatus) bool {
			return strings.HasPrefix(a.Pool.Revision, revision+"-")
		}).Pool.Revision
	}
	st, err := r.client.Status(ctx)
	if err != nil || len(st.Apps) != 1 {
		t.Fatalf("status: %+v %v", st, err)
	}
	one := st.Apps[0].Pool.Revision
	restart("", one+"+1")
	restart(one+"+2", one+"+2")
	restart("", one+"+3")
	two := reload("2")
	restart("", two+"+1")
	if again := reload("1"); again != one {
		t.Fatalf("the file's revision back at 1 is %q, want %q", again, one)
	}
	restart("", one+"+4")
}

func TestRestartFileTriggersRollingRestart(t *testing.T) {
	s := newSite(t)
	r := run(t, s)
	before := r.waitStatus(t, "ready", func(AppStatus) bool { return true }).Pool.Revision
	if err := os.MkdirAll(filepath.Join(s.root, "tmp"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(s.root, "tmp", "restart.txt"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	after := r.waitStatus(t, "a restart to a new revision", func(a AppStatus) bool {
		return a.Pool.Revision != before && a.Pool.Restart == nil && a.Pool.Counts.Updated == a.Pool.Counts.Total
	})
	if after.Pool.LastRestart == nil || after.Pool.LastRestart.Replaced != 2 {
		t.Errorf("last restart = %+v", after.Pool.LastRestart)
	}
	// Touching it again restarts again.
	future := time.Now().Add(time.Hour)
	if err := os.Chtimes(filepath.Join(s.root, "tmp", "restart.txt"), future, future); err != nil {
		t.Fatal(err)
	}
	r.waitStatus(t, "a second restart", func(a AppStatus) bool { return a.Pool.Revision != after.Pool.Revision })
}

func TestReload(t *testing.T) {
	s := newSite(t)
	r := run(t, s)
	start := r.waitStatus(t, "ready", func(AppStatus) bool { return true }).Pool.Revision

	// Pool settings apply at once, without a restart.
	s.write(t, 3, "1")
	if err := r.client.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	a := r.waitStatus(t, "3 processes", func(a AppStatus) bool { return a.Pool.Counts.Ready == 3 })
	if a.Pool.Revision != start || a.Pool.LastRestart != nil {
		t.Errorf("a pool-size change restarted the app: %s -> %s", start, a.Pool.Revision)
	}

	// An invalid file changes nothing and says why.
	if err := os.WriteFile(s.file, []byte("kind: AppGroup\nspec: {pool: {minProcesses: 9}}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	err := r.client.Reload(context.Background())
	if err == nil || !strings.Contains(err.Error(), "ferry.yaml") {
		t.Fatalf("reload of an invalid file: %v", err)
	}
	if code, _ := get(t, s.url()+"/"); code != 200 {
		t.Errorf("after a failed reload, GET / = %d", code)
	}
	// Status shows the failure (the log alone was easy to miss), until a
	// reload succeeds.
	st, err := r.client.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if f := st.ReloadFailed; f == nil || !strings.Contains(f.Error, "ferry.yaml") {
		t.Errorf("status after a failed reload: reloadFailed = %+v, want the error", f)
	}
	if view := statusText(t, st); !strings.Contains(view, "Last reload failed at ") {
		t.Errorf("the status view does not show the failed reload:\n%s", view)
	}

	// A new annotation rolls; a new AppGroup starts.
	other := testsupport.FreePort(t)
	s.write(t, 3, "2", fmt.Sprintf(`apiVersion: ferry.dev/v1alpha1
kind: AppGroup
metadata: {name: second}
spec:
  app: {type: WSGI, root: app}
  listen: {port: %d}
`, other))
	if err := r.client.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	if st, err := r.client.Status(context.Background()); err != nil || st.ReloadFailed != nil {
		t.Errorf("status after a reload that worked: reloadFailed = %+v (%v), want none", st.ReloadFailed, err)
	}
	r.waitStatus(t, "a roll to revision 2", func(a AppStatus) bool {
		return strings.HasPrefix(a.Pool.Revision, "2-") && a.Pool.Restart == nil && a.Pool.Counts.Updated == 3
	})
	testsupport.Eventually(t, time.Minute, "the second AppGroup serving", func() error {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/", other))
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			return fmt.Errorf("status %d", resp.StatusCode)
		}
		return nil
	})

	// An AppGroup removed from the file stops, and its metrics go with it.
	if !strings.Contains(r.metrics(t), `pool="second"`) {
		t.Fatal(`no series of pool="second" while it serves`)
	}
	s.write(t, 3, "2")
	if err := r.client.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	if body := r.metrics(t); strings.Contains(body, `pool="second"`) || !strings.Contains(body, `pool="hello"`) {
		t.Errorf("after the AppGroup second was removed, its series are left, or hello's are gone:\n%s", body)
	}
}

// metrics is a scrape of the admin socket's /metrics.
func (r *running) metrics(t *testing.T) string {
	t.Helper()
	c := &http.Client{Transport: r.client.http.Transport}
	resp, err := c.Get("http://agent/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(body)
}

func TestAdminSocketAndMetrics(t *testing.T) {
	s := newSite(t)
	r := run(t, s)
	st, err := os.Stat(r.client.Socket)
	if err != nil {
		t.Fatal(err)
	}
	if mode := st.Mode().Perm(); mode != 0o600 {
		t.Errorf("admin socket mode %o, want 600", mode)
	}
	// A second agent on the same socket is refused.
	srv2, err := New(Options{File: s.file, AdminSocket: r.client.Socket, StateDir: filepath.Join(s.dir, "state2"), Log: testr.New(t)})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv2.Run(context.Background()); err == nil || !strings.Contains(err.Error(), "in use") {
		t.Errorf("a second agent on the admin socket: %v", err)
	}
	get(t, s.url()+"/")
	// A request is counted once its response is written: the client may
	// scrape before that, so the scrape is retried for a while.
	testsupport.Eventually(t, 10*time.Second, "/metrics to count the request", func() error {
		return lacking(r.metrics(t), `ferry_requests_total{code="200",pool="hello"} 1`, `ferry_queue_length{pool="hello"} 0`,
			`ferry_processes{pool="hello",revision=`, `ferry_spawn_duration_seconds_bucket`, `ferry_resisting_deployment_error{pool="hello"} 0`,
			`ferry_spawns_total{kind="scale",pool="hello"} 2`)
	})

	// A worker killed from outside, as a crash ends it, counts as an
	// unexpected exit: the only trace of a crash between requests but
	// the log.
	a := r.waitStatus(t, "a ready process", func(a AppStatus) bool { return a.Pool.Counts.Ready > 0 })
	for _, p := range a.Pool.Processes {
		if p.State == ferryv1.ProcessReady {
			if err := syscall.Kill(int(p.PID), syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			break
		}
	}
	testsupport.Eventually(t, 10*time.Second, "/metrics to count the killed worker's exit", func() error {
		return lacking(r.metrics(t), `ferry_worker_exits_total{pool="hello",unexpected="true"} 1`)
	})
}

// lacking says which of wants metrics (a scrape) lacks; nil: none.
func lacking(metrics string, wants ...string) error {
	var lacks []string
	for _, want := range wants {
		if !strings.Contains(metrics, want) {
			lacks = append(lacks, want)
		}
	}
	if len(lacks) > 0 {
		return fmt.Errorf("/metrics lacks %s:\n%s", strings.Join(lacks, ", "), metrics)
	}
	return nil
}

func TestPortInUseIsAnError(t *testing.T) {
	s := newSite(t)
	l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", s.port))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	srv, err := New(Options{File: s.file, BindAddress: "127.0.0.1", AdminSocket: filepath.Join(s.dir, "a.sock"),
		StateDir: filepath.Join(s.dir, "st"), Log: testr.New(t)})
	if err != nil {
		t.Fatal(err)
	}
	err = srv.Run(context.Background())
	if err == nil || !strings.Contains(err.Error(), `AppGroup "hello": listen.port`) ||
		!strings.Contains(err.Error(), "address already in use") {
		t.Fatalf("got %v", err)
	}
}

func TestRestartOutcome(t *testing.T) {
	st := func(p pool.Status) StatusResponse { return StatusResponse{Apps: []AppStatus{{Name: "a", Pool: p}}} }
	died := ferryv1.SpawnError{Revision: "2", Reason: "exited with status 3 3s " + contract.DiedAfterReady, Output: "lost the database"}
	cases := []struct {
		name  string
		p     pool.Status
		stage restartStage
		err   string
	}{
		{"rolling", pool.Status{Revision: "2", Restart: &ferryv1.RestartProgress{Revision: "2", Total: 2}}, restartRolling, ""},
		{"done", pool.Status{Revision: "2", MinProcesses: 1, Counts: counts(2, 2, 2), RevisionLasted: true}, restartOver, ""},
		{"in the crash window", pool.Status{Revision: "2", MinProcesses: 1, Counts: counts(2, 2, 2)}, restartSettling, ""},
		{"no process", pool.Status{Revision: "2"}, restartOver, ""},
		{"superseded", pool.Status{Revision: "3"}, restartOver, "superseded by revision 3"},
		{"resisting", pool.Status{Revision: "2", Resisting: &spawnErr}, restartOver, "resisting deployment error: revision 2 failed"},
		{"with errors", pool.Status{Revision: "2", MinProcesses: 1, Counts: counts(2, 1, 2),
			LastRestart: &pool.RestartSummary{Revision: "2", Failed: 1, Total: 2, Errors: []ferryv1.SpawnError{spawnErr}}},
			restartOver, "1 of 2 processes could not be replaced"},
		{"blocking, with errors", pool.Status{Revision: "2", MinProcesses: 2, Counts: counts(1, 1, 1),
			LastRestart: &pool.RestartSummary{Revision: "2", Strategy: ferryv1.RestartBlocking, Failed: 1, Total: 2,
				Errors: []ferryv1.SpawnError{spawnErr}}},
			restartOver, "1 of 2 processes could not be spawned after the blocking restart stopped the old ones"},
		{"not yet started", pool.Status{Revision: "2", MinProcesses: 1, Counts: counts(2, 0, 2)}, restartRolling, ""},
		{"dying, not resisted", pool.Status{Revision: "2", MinProcesses: 1, Counts: counts(2, 2, 1), ScalingError: &died,
			ScalingFailures: 2, LastSpawnError: &died, SpawnFailures: 2},
			restartOver, "processes of revision 2 die soon after they are ready: " + died.Reason},
		// Between two deaths the replacement is ready and ScalingError
		// cleared: a wait that polls only then must see the loop too.
		{"between deaths, not resisted", pool.Status{Revision: "2", MinProcesses: 1, Counts: counts(2, 2, 2),
			LastSpawnError: &died, SpawnFailures: 2},
			restartOver, "processes of revision 2 die soon after they are ready: " + died.Reason},
		// A first death is replaced at once; its replacement may live.
		{"died once, not resisted", pool.Status{Revision: "2", MinProcesses: 1, Counts: counts(2, 2, 1), ScalingError: &died,
			ScalingFailures: 1, LastSpawnError: &died, SpawnFailures: 1}, restartSettling, ""},
		{"died once, replaced", pool.Status{Revision: "2", MinProcesses: 1, Counts: counts(2, 2, 2),
			LastSpawnError: &died, SpawnFailures: 1}, restartSettling, ""},
		{"a spawn failing for more", pool.Status{Revision: "2", MinProcesses: 1, Counts: counts(2, 2, 2), ScalingError: &spawnErr},
			restartSettling, ""},
	}
	for _, tc := range cases {
		stage, err := restartOutcome(st(tc.p), "a", "2")
		if stage != tc.stage || (tc.err == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("%s: stage=%v err=%v; want stage=%v err containing %q", tc.name, stage, err, tc.stage, tc.err)
		}
	}
	if stage, err := restartOutcome(StatusResponse{}, "a", "2"); stage != restartOver || !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown app: %v %v", stage, err)
	}
}

// TestGaveUpCountsFailuresInARow: a wait given up on while a restart rolls
// says how many rounds of the revision's spawns failed in a row
// (SpawnFailures: processes that fail together are one), the same count
// whether the pool backs off (ScalingError) or the replacement of a young
// death is up between deaths (ScalingError cleared). Before, the first
// said ScalingFailures, which counts each process ("(4 in a row)" for a
// death, then a round of three), beside "(2 rounds in a row)" between
// deaths: two numbers of the same text that counted different things.
func TestGaveUpCountsFailuresInARow(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	died := ferryv1.SpawnError{Revision: "2", Reason: "exited with status 3 3s " + contract.DiedAfterReady}
	old := ferryv1.SpawnError{Revision: "1", Reason: "exited with status 3 3s " + contract.DiedAfterReady}
	rolling := func(p pool.Status) pool.Status {
		p.Revision, p.MinProcesses, p.Strategy, p.Counts = "2", 1, ferryv1.RestartRolling, counts(3, 1, 3)
		p.Restart = &ferryv1.RestartProgress{Revision: "2", Done: 1, Total: 3}
		return p
	}
	for _, tc := range []struct {
		name string
		p    pool.Status
		want string
	}{
		{"backing off, three processes in the second round", rolling(pool.Status{ScalingError: &died, ScalingFailures: 4,
			LastSpawnError: &died, SpawnFailures: 2}),
			"the rolling restart has replaced 1 of 3; its spawns fail (2 rounds in a row): " + died.Reason},
		{"between deaths", rolling(pool.Status{LastSpawnError: &died, SpawnFailures: 2}),
			"the rolling restart has replaced 1 of 3; its last failed spawn (2 rounds in a row): " + died.Reason},
		{"backing off, one round of two processes", rolling(pool.Status{ScalingError: &died, ScalingFailures: 2,
			LastSpawnError: &died, SpawnFailures: 1}),
			"the rolling restart has replaced 1 of 3; its spawns fail: " + died.Reason},
		{"the last failure another revision's", rolling(pool.Status{ScalingError: &died, ScalingFailures: 3,
			LastSpawnError: &old, SpawnFailures: 3}),
			"the rolling restart has replaced 1 of 3; its spawns fail: " + died.Reason},
	} {
		st := StatusResponse{Apps: []AppStatus{{Name: "a", Pool: tc.p}}}
		err := gaveUp(ctx, time.Now(), &st, "a", "2")
		if err == nil || !strings.HasSuffix(err.Error(), tc.want) {
			t.Errorf("%s: gave up: %v\nwant it to end %q", tc.name, err, tc.want)
		}
	}
}

var spawnErr = ferryv1.SpawnError{Revision: "2", Reason: "the app failed to load: ImportError", Output: "Traceback ..."}

func counts(total, updated, ready int32) ferryv1.ProcessCounts {
	return ferryv1.ProcessCounts{Total: total, Updated: updated, Ready: ready}
}

// TestRefusedStartRemovesWhatItMade: an agent that refuses to start (its
// AppGroup's port is taken) removes the state directory it created for
// the run (the loader, w/, the request-body directory), its parents it
// created too; of a state directory that was there, only what it added.
// TestStateDirOfAnotherUserIsRefused: a state directory that is a link,
// or that another user owns (one who made /tmp/ferry-<uid> first), is
// refused with the reason: whoever controls it could put their own socket
// where the proxy connects to a worker, and take the app's requests.
func TestStateDirOfAnotherUserIsRefused(t *testing.T) {
	s := newSite(t)
	start := func(state string) error {
		t.Helper()
		_, err := New(Options{File: s.file, BindAddress: "127.0.0.1", AdminSocket: filepath.Join(state, "admin.sock"),
			StateDir: state, Log: testr.New(t)})
		return err
	}
	real := filepath.Join(s.dir, "real")
	if err := os.Mkdir(real, 0o755); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(s.dir, "link")
	if err := os.Symlink(real, link); err != nil {
		t.Fatal(err)
	}
	if err := start(link); err == nil || !strings.Contains(err.Error(), "is a symbolic link") {
		t.Errorf("a linked state directory: %v, want refused as a symbolic link", err)
	}

	theirs := filepath.Join(s.dir, "theirs")
	if err := os.Mkdir(theirs, 0o777); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(theirs, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	if err := start(theirs); err == nil || !strings.Contains(err.Error(), "belongs to uid 65534") {
		t.Errorf("another user's state directory: %v, want refused naming its owner", err)
	}
	if _, err := os.Stat(filepath.Join(theirs, "w")); !os.IsNotExist(err) {
		t.Errorf("the refused run left %s/w behind (%v)", theirs, err)
	}
}

// The run of another agent whose admin socket it found in use keeps that
// agent's directory.
func TestRefusedStartRemovesWhatItMade(t *testing.T) {
	s := newSite(t)
	taken, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", s.port))
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	refused := func(state string) error {
		t.Helper()
		srv, err := New(Options{File: s.file, BindAddress: "127.0.0.1", AdminSocket: filepath.Join(state, "admin.sock"),
			StateDir: state, Log: testr.New(t)})
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range []string{"w", "loader", proxy.SpoolDirName} {
			if _, err := os.Stat(filepath.Join(state, d)); err != nil {
				t.Fatalf("before Run: %v", err)
			}
		}
		return srv.Run(context.Background())
	}

	fresh := filepath.Join(s.dir, "made", "state")
	if err := refused(fresh); err == nil || !strings.Contains(err.Error(), "in use") {
		t.Fatalf("Run on a taken port: %v, want it refused", err)
	}
	if _, err := os.Stat(filepath.Join(s.dir, "made")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("after a refused start, the state directory it made (and its parent): %v, want it gone", err)
	}

	kept := filepath.Join(s.dir, "kept")
	if err := os.MkdirAll(filepath.Join(kept, "mine"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := refused(kept); err == nil {
		t.Fatal("Run on a taken port started")
	}
	entries, err := os.ReadDir(kept)
	if err != nil {
		t.Fatalf("the state directory that was there: %v", err)
	}
	if len(entries) != 1 || entries[0].Name() != "mine" {
		t.Errorf("a state directory that was there holds %v after a refused start, want only what was there (mine)", entries)
	}
}

// TestRefusedStartKeepsAnotherAgentsDirectory: two agents started at once
// on a state directory that did not exist both made it; the one refused
// because the other holds the admin socket must not remove it from under
// the other. A directory of its own it removes.
func TestRefusedStartKeepsAnotherAgentsDirectory(t *testing.T) {
	s := newSite(t)
	state := filepath.Join(s.dir, "state") // run's
	late, err := New(Options{File: s.file, BindAddress: "127.0.0.1", AdminSocket: filepath.Join(state, "admin.sock"),
		StateDir: state, Log: testr.New(t)})
	if err != nil {
		t.Fatal(err)
	}
	r := run(t, s)
	if err := late.Run(context.Background()); err == nil || !strings.Contains(err.Error(), "in use") {
		t.Fatalf("a second agent on the admin socket: %v", err)
	}
	if _, err := r.client.Status(context.Background()); err != nil {
		t.Errorf("the first agent after the second was refused: %v", err)
	}
	for _, d := range []string{"w", "loader", proxy.SpoolDirName} {
		if _, err := os.Stat(filepath.Join(state, d)); err != nil {
			t.Errorf("the first agent's state directory after the second was refused: %v", err)
		}
	}

	own := filepath.Join(s.dir, "own")
	other, err := New(Options{File: s.file, AdminSocket: r.client.Socket, StateDir: own, Log: testr.New(t)})
	if err != nil {
		t.Fatal(err)
	}
	if err := other.Run(context.Background()); err == nil {
		t.Fatal("a second agent on the admin socket started")
	}
	if _, err := os.Stat(own); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the refused agent's own state directory: %v, want it gone", err)
	}
}
