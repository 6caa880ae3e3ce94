package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ferry-dev/ferry/internal/testsupport"
)

// The tests drive the real ferry-agent binary the way the user guide
// does: standalone from a file, then status, restart --wait and a broken
// deployment.

var agentBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "fbin")
	if err != nil {
		panic(err)
	}
	agentBin = filepath.Join(dir, "ferry-agent")
	if out, err := exec.Command("go", "build", "-o", agentBin, ".").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building ferry-agent: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func ferry(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(agentBin, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return out.String(), errb.String(), code
}

func TestStandaloneFromANewUsersPointOfView(t *testing.T) {
	dir, err := os.MkdirTemp("", "fuser")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	_ = os.Chmod(dir, 0o755)
	root := filepath.Join(dir, "hello")
	if out, err := exec.Command("cp", "-r", "../../examples/hello-wsgi", root).CombinedOutput(); err != nil {
		t.Fatalf("%v %s", err, out)
	}
	port := testsupport.FreePort(t)
	file := filepath.Join(dir, "hello.yaml")
	example, _ := os.ReadFile(filepath.Join(root, "appgroup.yaml"))
	yaml := strings.Replace(strings.Replace(string(example), "root: .", "root: hello", 1),
		"port: 8080", fmt.Sprintf("port: %d", port), 1)
	if err := os.WriteFile(file, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	state := filepath.Join(dir, "state")
	sock := filepath.Join(state, "admin.sock")

	agent := exec.Command(agentBin, "standalone", "-f", file, "--state-dir", state, "--bind-address", "127.0.0.1")
	var logs bytes.Buffer
	agent.Stdout, agent.Stderr = &logs, &logs
	if err := agent.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = agent.Process.Signal(syscall.SIGTERM)
		_ = agent.Wait()
		if t.Failed() {
			t.Logf("agent log:\n%s", logs.String())
		}
	}()
	url := fmt.Sprintf("http://127.0.0.1:%d/", port)
	testsupport.Eventually(t, time.Minute, "the app answering", func() error {
		resp, err := http.Get(url)
		if err != nil {
			return err
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			return fmt.Errorf("status %d", resp.StatusCode)
		}
		return nil
	})

	out, errOut, code := ferry(t, "status", "--admin-socket", sock)
	if code != 0 || !strings.Contains(out, "hello:") || !strings.Contains(out, "* PID:") ||
		!strings.Contains(out, "Requests in queue: 0") {
		t.Fatalf("status (exit %d):\n%s%s", code, out, errOut)
	}
	// The first answer needs one process; minProcesses is 2, and the
	// second may still be spawning: wait for it as a user would.
	testsupport.Eventually(t, time.Minute, "two processes ready", func() error {
		out, _, _ = ferry(t, "status", "--json", "--admin-socket", sock)
		var st struct {
			Apps []struct {
				Name string
				Pool struct {
					Counts struct{ Ready int }
				}
			}
		}
		if err := json.Unmarshal([]byte(out), &st); err != nil || len(st.Apps) != 1 {
			t.Fatalf("status --json: %v\n%s", err, out)
		}
		if n := st.Apps[0].Pool.Counts.Ready; n != 2 {
			return fmt.Errorf("%d ready", n)
		}
		return nil
	})

	out, errOut, code = ferry(t, "restart", "hello", "--wait", "--admin-socket", sock)
	// It waits out the crash window, and says so.
	if code != 0 || !strings.Contains(out, "waiting until it has lived the crash window (10s)") ||
		!strings.Contains(out, "which has lived the crash window") {
		t.Fatalf("restart --wait (exit %d):\n%s%s", code, out, errOut)
	}

	// A broken deployment: restart --wait fails with the reason; the app
	// still answers.
	f, _ := os.OpenFile(filepath.Join(root, "passenger_wsgi.py"), os.O_APPEND|os.O_WRONLY, 0)
	_, _ = io.WriteString(f, "\nimport ferry_missing_dependency\n")
	f.Close()
	out, errOut, code = ferry(t, "restart", "hello", "--wait", "--admin-socket", sock)
	if code != 1 || !strings.Contains(errOut, "resisting deployment error") ||
		!strings.Contains(errOut, "No module named 'ferry_missing_dependency'") {
		t.Fatalf("restart --wait of a broken app (exit %d):\n%s%s", code, out, errOut)
	}
	if resp, err := http.Get(url); err != nil || resp.StatusCode != 200 {
		t.Fatalf("while resisting: %v %v", resp, err)
	}
	out, _, _ = ferry(t, "status", "--admin-socket", sock)
	if !strings.Contains(out, "Resisting deployment error") || !strings.Contains(out, "Traceback") {
		t.Errorf("status while resisting:\n%s", out)
	}

	// A revision slow to boot, waited for less long: the wait says what it
	// gave up on and where the pool stood, not "context deadline exceeded".
	data, _ := os.ReadFile(filepath.Join(root, "passenger_wsgi.py"))
	hang := strings.Replace(string(data), "\nimport ferry_missing_dependency\n", "\nimport time\nwhile True:\n    time.sleep(1)\n", 1)
	if err := os.WriteFile(filepath.Join(root, "passenger_wsgi.py"), []byte(hang), 0o644); err != nil {
		t.Fatal(err)
	}
	out, errOut, code = ferry(t, "restart", "hello", "--wait", "--timeout", "2s", "--admin-socket", sock)
	if code != 1 || !strings.Contains(errOut, "gave up after 2s waiting for hello to run revision ") ||
		!strings.Contains(errOut, "processes run it, 1 more spawning") || strings.Contains(errOut, "deadline exceeded") {
		t.Errorf("restart --wait --timeout 2s of an app that hangs at boot (exit %d):\n%s%s", code, out, errOut)
	}
}

func TestInvalidFileNamesTheField(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "bad.yaml")
	_ = os.WriteFile(file, []byte(`apiVersion: ferry.dev/v1alpha1
kind: AppGroup
metadata: {name: bad}
spec:
  app: {type: WSGI, root: /srv/app}
  listen: {port: 8080}
  pool: {minProcesses: 5, maxProcesses: 2}
`), 0o644)
	_, errOut, code := ferry(t, "standalone", "-f", file, "--state-dir", filepath.Join(dir, "s"))
	if code != 1 || !strings.Contains(errOut, "spec.pool.minProcesses") ||
		!strings.Contains(errOut, "minProcesses (5) must be less than or equal to maxProcesses (2)") {
		t.Fatalf("exit %d: %s", code, errOut)
	}
}

func TestUsageErrors(t *testing.T) {
	if _, errOut, code := ferry(t, "bogus"); code != 2 || !strings.Contains(errOut, "unknown command") {
		t.Errorf("unknown command: exit %d %s", code, errOut)
	}
	if _, errOut, code := ferry(t, "restart", "--admin-socket", "/nonexistent/sock"); code != 1 ||
		!strings.Contains(errOut, "NAME is required") {
		t.Errorf("restart without a name: exit %d %s", code, errOut)
	}
	if _, errOut, code := ferry(t, "status", "--admin-socket", "/nonexistent/sock"); code != 1 ||
		!strings.Contains(errOut, "is `ferry-agent standalone` running?") {
		t.Errorf("status without an agent: exit %d %s", code, errOut)
	}
}

// TestFlagsAfterAnArgument: a flag after the NAME is parsed, not dropped,
// and a stray argument (a boolean flag's separate value, most often) is
// refused rather than silently ending the flags.
func TestFlagsAfterAnArgument(t *testing.T) {
	// --admin-socket after the NAME and --wait is the socket asked for.
	for _, args := range [][]string{
		{"restart", "hello", "--wait", "--admin-socket", "/nonexistent/sock"},
		{"restart", "--admin-socket", "/nonexistent/sock", "hello", "--wait"},
	} {
		if _, errOut, code := ferry(t, args...); code != 1 || !strings.Contains(errOut, "cannot reach the agent at /nonexistent/sock") {
			t.Errorf("%q: exit %d %s", args, code, errOut)
		}
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"restart", "hello", "--wait", "true", "--admin-socket", "/nonexistent/sock"}, `restart takes one AppGroup NAME, got ["hello" "true"]`},
		{[]string{"--node-name", "n", "--trust-forwarded-for", "false", "--state-dir", "/nonexistent"}, `ferry-agent takes no argument "false"`},
		{[]string{"cluster", "--node-name", "n", "extra"}, `ferry-agent takes no argument "extra"`},
		{[]string{"--node-name", "n", "--heartbeat-interval=0"}, `--heartbeat-interval must be positive`},
		{[]string{"--node-name", "n", "--stats-interval=-1s"}, `--stats-interval must be positive`},
		{[]string{"--node-name", "n", "--drain-delay=-1s"}, `--drain-delay and --simulate-workers may not be negative`},
		{[]string{"--node-name", "n", "--advertise-address", "node-1.example.com"},
			`--advertise-address "node-1.example.com" is not an IP address: the manager lists it in the Services' EndpointSlices`},
		{[]string{"--node-name", "n", "--advertise-address", "2001:db8::9"},
			`--advertise-address "2001:db8::9" is an IPv6 address, and Ferry does not serve IPv6 nodes yet`},
		{[]string{"--node-name", "n", "--bind-address", "2001:db8::9"},
			`--advertise-address is unset, so each pool reports its --bind-address, "2001:db8::9", which is an IPv6 address, and Ferry does not serve IPv6 nodes yet`},
		{[]string{"--node-name", "n", "--send-timeout=0s"}, `invalid value "0s" for flag -send-timeout: 0s is not above zero: the proxy has no "none"; give a duration, 1m0s by default`},
		{[]string{"standalone", "-f", "/nonexistent.yaml", "--idle-timeout=-1s"}, `-1s is not above zero`},
		{[]string{"standalone", "-f", "/nonexistent.yaml", "--read-header-timeout=soon"}, `invalid value "soon" for flag -read-header-timeout`},
		{[]string{"standalone", "-f", "/nonexistent.yaml", "--trust-forwarded-for", "false"}, `standalone takes no argument "false"`},
		{[]string{"status", "--json", "true", "--admin-socket", "/nonexistent/sock"}, `status takes no argument "true"`},
		{[]string{"reload", "now", "--admin-socket", "/nonexistent/sock"}, `reload takes no argument "now"`},
	} {
		if _, errOut, code := ferry(t, tc.args...); code == 0 || !strings.Contains(errOut, tc.want) {
			t.Errorf("%q: exit %d, want an error with %q: %s", tc.args, code, tc.want, errOut)
		}
	}
}

// TestAdvertiseProblem: the address each pool reports, --advertise-address
// or, when it is unset, --bind-address, is taken when a Service can list
// it (an IPv4 one, or IPv4 written as IPv6, which the manager lists as
// IPv4); a host name or an IPv6 address is refused, naming the flag it
// came from. Every address ("", 0.0.0.0, the default) and loopback ones
// (the local stack's) are taken as before.
func TestAdvertiseProblem(t *testing.T) {
	for _, tc := range []struct{ advertise, bind, want string }{
		{"", "0.0.0.0", ""},
		{"", "", ""},
		{"", "127.0.0.1", ""},
		{"10.0.0.7", "0.0.0.0", ""},
		{"::ffff:10.0.0.7", "0.0.0.0", ""},
		{"10.0.0.7", "2001:db8::9", ""},
		{"10.0.0.7", "::", ""},
		{"node-1.example.com", "0.0.0.0", `--advertise-address "node-1.example.com" is not an IP address`},
		{"2001:db8::9", "0.0.0.0", `--advertise-address "2001:db8::9" is an IPv6 address`},
		{"::1", "0.0.0.0", `--advertise-address "::1" is an IPv6 address`},
		{"", "::ffff:10.0.0.7", ""},
		{"", "2001:db8::9", `--advertise-address is unset, so each pool reports its --bind-address, "2001:db8::9", which is an IPv6 address`},
		{"", "::", `--advertise-address is unset, so each pool reports its --bind-address, "::", which is an IPv6 address`},
		{"", "localhost", `--advertise-address is unset, so each pool reports its --bind-address, "localhost", which is not an IP address`},
	} {
		err := advertiseProblem(tc.advertise, tc.bind)
		if (err == nil) != (tc.want == "") || err != nil && !strings.Contains(err.Error(), tc.want) {
			t.Errorf("--advertise-address %q, --bind-address %q: %v, want %q", tc.advertise, tc.bind, err, tc.want)
		}
	}
}

// TestUnlistedWarning: the agent says at its start when each pool reports
// an address the manager leaves out of the Services, naming the flag it
// comes from, the address, and what to set; nothing when the Services
// list it.
func TestUnlistedWarning(t *testing.T) {
	unset := "--advertise-address is unset, so each pool reports its --bind-address, "
	for _, tc := range []struct{ advertise, bind, want string }{
		{"", "0.0.0.0", unset + `"0.0.0.0", the unspecified address, which the manager leaves out of the AppGroups' Services`},
		{"", "", unset + `"", every address, which the manager leaves out`},
		{"", "127.0.0.2", unset + `"127.0.0.2", a loopback address, which the manager leaves out`},
		{"", "169.254.1.1", unset + `"169.254.1.1", a link-local address, which the manager leaves out`},
		{"127.0.0.2", "0.0.0.0", `Each pool reports its --advertise-address, "127.0.0.2", a loopback address, which the manager leaves out`},
		{"0.0.0.0", "10.0.0.7", `Each pool reports its --advertise-address, "0.0.0.0", the unspecified address`},
		{"", "10.0.0.7", ""},
		{"10.0.0.7", "0.0.0.0", ""},
		{"::ffff:10.0.0.7", "", ""},
	} {
		got := unlistedWarning(tc.advertise, tc.bind)
		if (got == "") != (tc.want == "") || !strings.Contains(got, tc.want) ||
			got != "" && !strings.Contains(got, "Set --advertise-address to an IPv4 address of the node") {
			t.Errorf("--advertise-address %q, --bind-address %q: %q, want %q and what to set", tc.advertise, tc.bind, got, tc.want)
		}
	}
}

// TestUnlistedAddressIsSaidAtStart: the agent run by hand with its
// defaults logs, at its start, that no Service reaches its pools, and its
// -h says so of --advertise-address; given an address the Services list,
// it says nothing of it. (No API server: the agent then stops on its
// kubeconfig, after the line.)
func TestUnlistedAddressIsSaidAtStart(t *testing.T) {
	const said = "which the manager leaves out of the AppGroups' Services"
	for _, extra := range [][]string{nil, {"--advertise-address=192.0.2.9"}} {
		args := append([]string{"--node-name=node-1", "--kubeconfig=/nonexistent", "--state-dir=" + t.TempDir(),
			"--metrics-bind-address=0", "--health-probe-bind-address=0"}, extra...)
		stdout, stderr, code := ferry(t, args...)
		out := stdout + stderr
		if code != 1 || !strings.Contains(out, "/nonexistent") || strings.Contains(out, said) != (extra == nil) {
			t.Errorf("%q: exit %d, want 1, the kubeconfig named, and %q said only without --advertise-address; output:\n%s",
				extra, code, said, out)
		}
	}
	_, help, _ := ferry(t, "cluster", "-h")
	if want := "0.0.0.0, a loopback or a link-local address is left out of the Service, and the agent says so at its start"; !strings.Contains(help, want) {
		t.Errorf("cluster -h lacks %q:\n%s", want, help)
	}
}

// TestWorkersDieWithTheAgent: an agent killed outright (SIGKILL, no chance
// to stop its workers) takes its workers with it (Pdeathsig).
func TestWorkersDieWithTheAgent(t *testing.T) {
	root, _ := filepath.Abs("../../examples/hello-wsgi")
	dir, _, agent := startAgent(t, map[string]string{"app.yaml": appYAML("hello", root, "PORT", 2)})
	sock := filepath.Join(dir, "state", "admin.sock")
	var pids []int
	testsupport.Eventually(t, time.Minute, "the workers ready", func() error {
		out, errOut, code := ferry(t, "status", "--json", "--admin-socket", sock)
		if code != 0 {
			return fmt.Errorf("status --json: exit %d %s", code, errOut)
		}
		var st struct {
			Apps []struct {
				Pool struct {
					Processes []struct {
						PID   int
						State string
					}
				}
			}
		}
		if err := json.Unmarshal([]byte(out), &st); err != nil {
			return fmt.Errorf("status --json: %w\n%s", err, out)
		}
		if len(st.Apps) != 1 {
			return fmt.Errorf("status --json: %d apps, want 1\n%s", len(st.Apps), out)
		}
		pids = pids[:0]
		for _, p := range st.Apps[0].Pool.Processes {
			if p.State == "Ready" {
				pids = append(pids, p.PID)
			}
		}
		if len(pids) < 2 {
			return fmt.Errorf("%d ready", len(pids))
		}
		return nil
	})
	if err := agent.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_, _ = agent.Wait()
	// A loop of its own, not testsupport.Eventually: a worker that
	// outlived the agent is killed before the test fails.
	deadline := time.Now().Add(30 * time.Second)
	for _, pid := range pids {
		for syscall.Kill(pid, 0) == nil && !zombie(pid) {
			if time.Now().After(deadline) {
				_ = syscall.Kill(pid, syscall.SIGKILL)
				t.Fatalf("worker %d outlived the killed agent", pid)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

func zombie(pid int) bool {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	s := string(data)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	return len(fields) > 0 && fields[0] == "Z"
}
