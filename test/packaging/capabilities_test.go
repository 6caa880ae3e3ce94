package packaging_test

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ferry-dev/ferry/internal/testenv"

	"github.com/ferry-dev/ferry/internal/testsupport"
)

// TestAgentRunsWithTheChartsCapabilities runs the real ferry-agent as the
// chart's agent container would: root, with no capability but those
// agent.containerSecurityContext adds, and no_new_privs
// (allowPrivilegeEscalation: false). Its workers (nobody) start, answer
// through the proxy, and are replaced by a rolling restart: each takes a
// capability of the list (SETUID and SETGID to start them, CHOWN for
// their socket directories, DAC_OVERRIDE to connect to their sockets,
// KILL to stop them), so a list too short fails here.
func TestAgentRunsWithTheChartsCapabilities(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("the agent container runs as root: so must this test")
	}
	ds := find(t, render(t, renderOpts{}), "DaemonSet", "agent")
	containers := nested[[]any](t, ds.Object, "spec", "template", "spec", "containers")
	sc := nested[map[string]any](t, containers[0].(map[string]any), "securityContext")
	if sc["allowPrivilegeEscalation"] != false {
		t.Fatalf("allowPrivilegeEscalation %v, want false", sc["allowPrivilegeEscalation"])
	}
	bounding := []string{"-all"}
	for _, c := range nested[[]any](t, sc, "capabilities", "add") {
		bounding = append(bounding, "+"+strings.ToLower(c.(string)))
	}

	dir, err := os.MkdirTemp("", "ferry-caps-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	// The state directory is the node's /var/lib/ferry: open to the
	// workers, which load the WSGI loader from it.
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	port := testsupport.FreePort(t)
	file := filepath.Join(dir, "hello.yaml")
	app := fmt.Sprintf(`apiVersion: ferry.dev/v1alpha1
kind: AppGroup
metadata: {name: hello}
spec:
  app: {type: WSGI, root: %s}
  listen: {port: %d}
  pool: {minProcesses: 2, maxProcesses: 2}
`, filepath.Join(root, "examples", "hello-wsgi"), port)
	if err := os.WriteFile(file, []byte(app), 0o644); err != nil {
		t.Fatal(err)
	}
	state, sock := filepath.Join(dir, "state"), filepath.Join(dir, "state", "admin.sock")
	agent := filepath.Join(ferryBinaries(t), "ferry-agent")
	b := startBinary(t, "/usr/bin/setpriv", []string{
		"--bounding-set=" + strings.Join(bounding, ","), "--inh-caps=-all", "--no-new-privs",
		agent, "standalone", "-f", file, "--state-dir", state, "--bind-address", "127.0.0.1",
	}, nil)
	t.Cleanup(func() {
		b.stop(t)
		if t.Failed() {
			t.Logf("agent log:\n%s", b.log.String())
		}
	})

	url := "http://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(port)) + "/"
	answers := func(what string) {
		t.Helper()
		testenv.Eventually(t, time.Minute, what, func() error {
			resp, err := http.Get(url)
			if err != nil {
				return err
			}
			defer resp.Body.Close()
			_, _ = io.Copy(io.Discard, resp.Body)
			if resp.StatusCode != http.StatusOK {
				return fmt.Errorf("GET %s: %s", url, resp.Status)
			}
			return nil
		})
	}
	answers("the app answers through the proxy")
	restart := exec.Command(agent, "restart", "hello", "--wait", "--timeout", "2m", "--admin-socket", sock)
	if out, err := restart.CombinedOutput(); err != nil || !strings.Contains(string(out), "Every process of hello runs revision") {
		t.Fatalf("restart --wait: %v\n%s", err, out)
	}
	answers("the app answers after a rolling restart")
	if lines := b.grep("operation not permitted"); len(lines) > 0 {
		t.Errorf("the agent was refused an operation:\n%s", strings.Join(lines, "\n"))
	}
	if lines := b.grep("permission denied"); len(lines) > 0 {
		t.Errorf("the agent was refused access:\n%s", strings.Join(lines, "\n"))
	}
}
