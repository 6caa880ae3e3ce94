package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ferry-dev/ferry/agent/standalone"
	"github.com/ferry-dev/ferry/internal/testsupport"
)

// logEntry is one line of the agent's JSON log.
type logEntry struct {
	Level      string `json:"level"`
	Msg        string `json:"msg"`
	PID        int    `json:"pid"`
	Stream     string `json:"stream"`
	Line       string `json:"line"`
	Stacktrace string `json:"stacktrace"`
}

// startAgent writes files (name -> content) into a new directory, serves
// app.yaml with `ferry-agent standalone` and the given flags, its log going
// to a file. It returns the directory, a function reading the log so far
// and the agent's process.
func startAgent(t *testing.T, files map[string]string, flags ...string) (string, func() string, *os.Process) {
	t.Helper()
	return startAgentUnder(t, nil, files, flags...)
}

// startAgentUnder is startAgent with the agent run by the command wrap
// (its argv before the agent's own), whose process it returns.
func startAgentUnder(t *testing.T, wrap []string, files map[string]string, flags ...string) (string, func() string, *os.Process) {
	t.Helper()
	dir, err := os.MkdirTemp("", "flog")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	_ = os.Chmod(dir, 0o755)
	for name, content := range files {
		content = strings.ReplaceAll(content, "PORT", fmt.Sprint(testsupport.FreePort(t)))
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	logFile, err := os.Create(filepath.Join(dir, "agent.log"))
	if err != nil {
		t.Fatal(err)
	}
	args := append([]string{"standalone", "-f", filepath.Join(dir, "app.yaml"),
		"--state-dir", filepath.Join(dir, "state"), "--bind-address", "127.0.0.1"}, flags...)
	argv := append(append(wrap[:len(wrap):len(wrap)], agentBin), args...)
	agent := exec.Command(argv[0], argv[1:]...)
	agent.Stdout, agent.Stderr = logFile, logFile
	if err := agent.Start(); err != nil {
		t.Fatal(err)
	}
	readLog := func() string {
		b, _ := os.ReadFile(logFile.Name())
		return string(b)
	}
	t.Cleanup(func() {
		_ = agent.Process.Signal(syscall.SIGTERM)
		_ = agent.Wait()
		logFile.Close()
		if t.Failed() {
			log := readLog()
			if len(log) > 20000 {
				log = "...\n" + log[len(log)-20000:]
			}
			t.Logf("agent log:\n%s", log)
		}
	})
	return dir, readLog, agent.Process
}

// appYAML is an app file of one WSGI AppGroup, name, at root, on port,
// with processes workers (minProcesses and maxProcesses). A port of PORT
// is startAgent's free port.
func appYAML(name, root, port string, processes int) string {
	return fmt.Sprintf(`apiVersion: ferry.dev/v1alpha1
kind: AppGroup
metadata: {name: %s}
spec:
  app: {type: WSGI, root: %s}
  listen: {port: %s}
  pool: {minProcesses: %d, maxProcesses: %d}
`, name, root, port, processes, processes)
}

// entries parses a JSON log, but for a last line still being written.
func entries(t *testing.T, log string) []logEntry {
	t.Helper()
	var out []logEntry
	log = log[:strings.LastIndexByte(log, '\n')+1]
	sc := bufio.NewScanner(strings.NewReader(log))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var e logEntry
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("not a JSON log line: %v: %q", err, sc.Text())
		}
		out = append(out, e)
	}
	return out
}

// waitFor polls the log until done says it holds what the test waits for,
// or a minute went by; the test then checks what the log holds. Not
// testsupport.Eventually: at the deadline it returns the log rather than
// failing, so that the test's own checks say what is missing from it.
func waitFor(readLog func() string, done func(string) bool) string {
	deadline := time.Now().Add(time.Minute)
	for {
		log := readLog()
		if done(log) || time.Now().After(deadline) {
			return log
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// chattyApp writes 3,000 lines to stdout when a worker imports it, then a
// traceback to stderr, then an over-long line.
const chattyApp = `
import sys, traceback
for i in range(3000):
    sys.stdout.write("chatty line %d\n" % i)
sys.stdout.flush()
try:
    1 / 0
except ZeroDivisionError:
    traceback.print_exc()
sys.stderr.write("end of traceback\n")
sys.stderr.write("x" * 10000 + "\n")
sys.stderr.flush()

def application(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"ok\n"]
`

// TestEveryLineOfWorkerOutputIsLogged: two workers each write 3,000 lines
// at once and a traceback; the agent's log has every line of both, in
// order. zap's production sampler used to keep about a hundred of the
// 6,000 "Worker output" entries, and the tracebacks went with the rest.
func TestEveryLineOfWorkerOutputIsLogged(t *testing.T) {
	_, readLog, _ := startAgent(t, map[string]string{
		"passenger_wsgi.py": chattyApp,
		"app.yaml":          appYAML("chatty", ".", "PORT", 2),
	})
	// Each stream is logged in order: the last line of each, from both
	// workers, means all of it is in.
	log := waitFor(readLog, func(log string) bool {
		return strings.Count(log, `"chatty line 2999"`) >= 2 && strings.Count(log, "[line cut]") >= 2
	})

	type worker struct {
		stdout []string
		stderr []string
	}
	workers := map[int]*worker{}
	for _, e := range entries(t, log) {
		if e.Msg != "Worker output" {
			continue
		}
		w := workers[e.PID]
		if w == nil {
			w = &worker{}
			workers[e.PID] = w
		}
		if e.Stream == "stdout" {
			w.stdout = append(w.stdout, e.Line)
		} else {
			w.stderr = append(w.stderr, e.Line)
		}
	}
	if len(workers) != 2 {
		t.Fatalf("output of %d workers logged, want 2", len(workers))
	}
	for pid, w := range workers {
		if len(w.stdout) != 3000 {
			t.Errorf("worker %d: %d of its 3000 stdout lines logged", pid, len(w.stdout))
		}
		for i, line := range w.stdout {
			if want := fmt.Sprintf("chatty line %d", i); line != want {
				t.Errorf("worker %d: stdout line %d logged as %q, want %q", pid, i, line, want)
				break
			}
		}
		stderr := strings.Join(w.stderr, "\n")
		for _, want := range []string{"Traceback (most recent call last):", "    1 / 0",
			"ZeroDivisionError: division by zero", "end of traceback"} {
			if !strings.Contains(stderr, want) {
				t.Errorf("worker %d: the traceback's %q is not in the log; stderr lines logged:\n%s", pid, want, stderr)
			}
		}
		// A line is logged up to 4096 bytes, then cut.
		if n := len(w.stderr); n == 0 || w.stderr[n-1] != strings.Repeat("x", 4096)+" [line cut]" {
			t.Errorf("worker %d: the 10,000-byte line is not logged cut at 4096 bytes", pid)
		}
	}
}

// TestAppFailuresCarryNoGoStackTrace: a worker that fails to start is an
// ERROR with the app's traceback, without the agent's Go call stack, in
// JSON and console logs; --zap-stacktrace-level=error brings it back.
func TestAppFailuresCarryNoGoStackTrace(t *testing.T) {
	files := map[string]string{
		"passenger_wsgi.py": "raise RuntimeError('the app is broken')\n",
		"app.yaml":          appYAML("broken", ".", "PORT", 1),
	}
	for _, tc := range []struct {
		flags  []string
		error  string // how an error entry starts
		traced bool
	}{
		{nil, `{"level":"error"`, false},
		{[]string{"--zap-encoder=console"}, "\tERROR\t", false},
		{[]string{"--zap-stacktrace-level=error"}, `{"level":"error"`, true},
	} {
		t.Run(strings.Join(tc.flags, " "), func(t *testing.T) {
			_, readLog, _ := startAgent(t, files, tc.flags...)
			log := waitFor(readLog, func(log string) bool {
				return strings.Contains(log, tc.error) && strings.Contains(log, "the app is broken")
			})
			if !strings.Contains(log, tc.error) || !strings.Contains(log, "RuntimeError: the app is broken") {
				t.Fatalf("no error entry with the app's traceback")
			}
			// A Go stack trace names the agent's sources, as pool.go:889.
			traced := strings.Contains(log, `"stacktrace":`) || strings.Contains(log, "pool.go:")
			if traced != tc.traced {
				t.Errorf("Go stack trace in the log: %v, want %v", traced, tc.traced)
			}
		})
	}
}

// invalidApp has three problems.
const invalidApp = `apiVersion: ferry.dev/v1alpha1
kind: AppGroup
metadata: {name: q}
spec:
  app: {type: Rack, root: /srv/app}
`

// checkOneError checks that stderr is one error of several problems, every
// line of it part of it: the first after "ferry-agent: ", the others
// indented under it.
func checkOneError(t *testing.T, what, stderr string) {
	t.Helper()
	lines := strings.Split(strings.TrimSuffix(stderr, "\n"), "\n")
	if len(lines) != 4 || !strings.HasPrefix(lines[0], "ferry-agent: ") || !strings.HasSuffix(lines[0], ": 3 problems:") {
		t.Errorf("%s: want a first line naming the file and 3 problems, then one line for each:\n%s", what, stderr)
	}
	for _, line := range lines[1:] {
		if !strings.HasPrefix(line, `  AppGroup "q": `) {
			t.Errorf("%s: line %q is not an indented problem of the error", what, line)
		}
	}
	for _, want := range []string{`spec.app.type: Unsupported value: "Rack"`, "spec.listen: Required value"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("%s: %q is missing:\n%s", what, want, stderr)
		}
	}
}

// TestInvalidFileIsOneError: a file with several problems is refused with
// one error listing them, alike when the agent starts, on `ferry-agent
// reload` and on SIGHUP (in the log). The lines after the first used to
// lack the "ferry-agent: " prefix, as if something else had printed them.
func TestInvalidFileIsOneError(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "q.yaml")
	if err := os.WriteFile(file, []byte(invalidApp), 0o644); err != nil {
		t.Fatal(err)
	}
	_, startErr, code := ferry(t, "standalone", "-f", file, "--state-dir", filepath.Join(dir, "state"))
	if code != 1 {
		t.Fatalf("standalone with an invalid file: exit %d:\n%s", code, startErr)
	}
	checkOneError(t, "standalone", startErr)

	root, _ := filepath.Abs("../../examples/hello-wsgi")
	dir, readLog, agent := startAgent(t, map[string]string{"app.yaml": appYAML("q", root, "PORT", 1)})
	sock := filepath.Join(dir, "state", "admin.sock")
	waitFor(readLog, func(log string) bool { return strings.Contains(log, `"msg":"Serving"`) })
	if err := os.WriteFile(filepath.Join(dir, "app.yaml"), []byte(invalidApp), 0o644); err != nil {
		t.Fatal(err)
	}
	_, reloadErr, code := ferry(t, "reload", "--admin-socket", sock)
	if code != 1 {
		t.Fatalf("reload of an invalid file: exit %d:\n%s", code, reloadErr)
	}
	checkOneError(t, "reload", reloadErr)
	if want := strings.ReplaceAll(startErr, file, filepath.Join(dir, "app.yaml")); reloadErr != want {
		t.Errorf("reload and standalone word the error differently:\n%s\n%s", reloadErr, want)
	}

	if err := agent.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	log := waitFor(readLog, func(log string) bool { return strings.Contains(log, "Reload failed") })
	var logged string
	for _, line := range strings.Split(log, "\n") {
		var e struct{ Msg, Error string }
		if json.Unmarshal([]byte(line), &e) == nil && strings.HasPrefix(e.Msg, "Reload failed") {
			logged = e.Error
		}
	}
	if want := strings.TrimSuffix(strings.TrimPrefix(reloadErr, "ferry-agent: "), "\n"); logged != want {
		t.Errorf("SIGHUP logged the error as %q, want %q", logged, want)
	}
}

// TestPartialReloadSaysWhatWasApplied: a SIGHUP reload of a file that
// moves AppGroup a to a port another program holds applies the rest of
// the file and not a's move; the log's line says so, naming what changed.
// Before, it said "Reload failed; still serving the previous
// configuration", untrue of a changed b; and it named c, unchanged, as
// applied, so that a file changing nothing but a's port was logged as
// "failed in part ... the rest of the file was applied", untrue as well.
// `ferry-agent reload` and status say it too: before, they gave the
// problems alone, which read as a reload that changed nothing.
func TestPartialReloadSaysWhatWasApplied(t *testing.T) {
	t.Run("b changes", func(t *testing.T) {
		failed, bSettings := sighup(t, reloadMovingAToATakenPort(t, 2, true))
		if !bSettings {
			t.Errorf("b's new pool was not applied: no \"Reloaded AppGroup settings\" of b in the log")
		}
		want := standalone.PartialReloadLogged
		if failed == nil || failed["msg"] != want || fmt.Sprint(failed["notApplied"]) != "[a]" ||
			fmt.Sprint(failed["applied"]) != "[b]" || !strings.Contains(fmt.Sprint(failed["error"]), "address already in use") {
			t.Errorf("the reload's log line: %v\nwant msg %q, notApplied [a], applied [b] (not c, unchanged), and the error", failed, want)
		}
	})
	t.Run("c is removed", func(t *testing.T) {
		failed, bSettings := sighup(t, reloadMovingAToATakenPort(t, 1, false))
		if bSettings {
			t.Errorf("b, unchanged, was reloaded")
		}
		want := standalone.PartialReloadLogged
		applied, _ := failed["applied"].([]any)
		if failed == nil || failed["msg"] != want || len(applied) != 0 ||
			fmt.Sprint(failed["notApplied"]) != "[a]" || fmt.Sprint(failed["removed"]) != "[c]" {
			t.Errorf("the reload's log line: %v\nwant msg %q, notApplied [a], removed [c] and no applied", failed, want)
		}
	})
	t.Run("nothing else changes", func(t *testing.T) {
		failed, bSettings := sighup(t, reloadMovingAToATakenPort(t, 1, true))
		if bSettings {
			t.Errorf("b, unchanged, was reloaded")
		}
		want := "Reload failed; still serving the previous configuration"
		if _, named := failed["applied"]; failed == nil || failed["msg"] != want || named ||
			!strings.Contains(fmt.Sprint(failed["error"]), "address already in use") {
			t.Errorf("the reload's log line: %v\nwant msg %q, no applied, and the error", failed, want)
		}
	})
	t.Run("ferry-agent reload and status", func(t *testing.T) {
		r := reloadMovingAToATakenPort(t, 2, false)
		sock := filepath.Join(r.dir, "state", "admin.sock")
		_, stderr, code := ferry(t, "reload", "--admin-socket", sock)
		first := "reload applied in part: applied b; removed c; a keeps its previous configuration:"
		lines := strings.Split(strings.TrimSuffix(stderr, "\n"), "\n")
		if code != 1 || len(lines) != 2 || lines[0] != "ferry-agent: "+first ||
			!strings.HasPrefix(lines[1], "  "+filepath.Join(r.dir, "app.yaml")+`: AppGroup "a": `) ||
			!strings.Contains(lines[1], "address already in use") {
			t.Errorf("ferry-agent reload: exit %d:\n%s\nwant exit 1, %q, then the problem indented", code, stderr, "ferry-agent: "+first)
		}
		out, _, _ := ferry(t, "status", "--admin-socket", sock)
		if want := "Last reload failed in part at "; !strings.Contains(out, want) || !strings.Contains(out, "  "+first+"\n") {
			t.Errorf("status:\n%s\nwant %q and %q", out, want, first)
		}
		out, _, _ = ferry(t, "status", "--json", "--admin-socket", sock)
		var st struct {
			ReloadFailed struct{ Error, Applied, NotApplied, Removed any } `json:"reloadFailed"`
		}
		if err := json.Unmarshal([]byte(out), &st); err != nil {
			t.Fatal(err)
		}
		if f := st.ReloadFailed; fmt.Sprint(f.Applied, f.NotApplied, f.Removed) != "[b] [a] [c]" ||
			!strings.HasPrefix(fmt.Sprint(f.Error), first) {
			t.Errorf("status --json: reloadFailed = %+v, want applied [b], notApplied [a], removed [c], and the error", f)
		}
	})
}

// reloaded is an agent whose file reloadMovingAToATakenPort changed.
type reloaded struct {
	dir     string
	readLog func() string
	agent   *os.Process
}

// reloadMovingAToATakenPort serves AppGroups a, b and c, each with one
// process, then writes a file moving a to a port the test holds (until it
// ends), giving b bProcesses, and keeping c if keepC, else leaving it out.
func reloadMovingAToATakenPort(t *testing.T, bProcesses int, keepC bool) reloaded {
	root, _ := filepath.Abs("../../examples/hello-wsgi")
	portA, portB, portC := fmt.Sprint(testsupport.FreePort(t)), fmt.Sprint(testsupport.FreePort(t)), fmt.Sprint(testsupport.FreePort(t))
	dir, readLog, agent := startAgent(t, map[string]string{
		"app.yaml": appYAML("a", root, portA, 1) + "---\n" + appYAML("b", root, portB, 1) + "---\n" + appYAML("c", root, portC, 1)})
	waitFor(readLog, func(log string) bool { return strings.Contains(log, `"msg":"Serving"`) })
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { taken.Close() })
	moved := appYAML("a", root, fmt.Sprint(taken.Addr().(*net.TCPAddr).Port), 1) + "---\n" +
		appYAML("b", root, portB, bProcesses)
	if keepC {
		moved += "---\n" + appYAML("c", root, portC, 1)
	}
	if err := os.WriteFile(filepath.Join(dir, "app.yaml"), []byte(moved), 0o644); err != nil {
		t.Fatal(err)
	}
	return reloaded{dir, readLog, agent}
}

// sighup reloads r's agent by SIGHUP. It returns the reload's "Reload
// failed..." log entry, and whether b's settings were reloaded.
func sighup(t *testing.T, r reloaded) (map[string]any, bool) {
	if err := r.agent.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	log := waitFor(r.readLog, func(log string) bool { return strings.Contains(log, `"msg":"Reload failed`) })
	var failed map[string]any
	settings := false
	for _, line := range strings.Split(log, "\n") {
		var e map[string]any
		if json.Unmarshal([]byte(line), &e) != nil {
			continue
		}
		msg, _ := e["msg"].(string)
		switch {
		case strings.HasPrefix(msg, "Reload failed"):
			failed = e
		case msg == "Reloaded AppGroup settings" && e["appgroup"] == "b":
			settings = true
		}
	}
	return failed, settings
}
