package kubectlferry

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ferry-dev/ferry/internal/testenv"
)

// exe runs a program with extra environment and returns its outcome.
func exe(t *testing.T, env []string, name string, args ...string) result {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	code := 0
	switch {
	case errors.As(err, &ee):
		code = ee.ExitCode()
	case err != nil:
		t.Fatalf("%s %v: %v", name, args, err)
	}
	return result{out: out.String(), err: errb.String(), code: code}
}

// The real binary, run directly and as kubectl runs a plugin: found on the
// PATH as kubectl-ferry, with the user's arguments and its exit codes
// passed through, the kubeconfig from $KUBECONFIG and the namespace from
// its context.
func TestBinaryAsAKubectlPlugin(t *testing.T) {
	ns := healthyFixture(t)
	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	build := exec.Command("go", "build", "-o", filepath.Join(dir, "kubectl-ferry"), "./cmd/kubectl-ferry")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	titles := []string{"AppGroup " + ns + "/hello", "hello on node-1 (127.0.0.2:8080):", "hello on node-2 (127.0.0.3:8080):",
		"Rolling restarting..."}
	check := func(what string, r result, code int, want ...string) {
		t.Helper()
		if r.code != code {
			t.Errorf("%s: exit %d, want %d; stdout %q, stderr %q", what, r.code, code, r.out, r.err)
		}
		for _, w := range want {
			if !strings.Contains(r.out+r.err, w) {
				t.Errorf("%s: missing %q in:\n%s%s", what, w, r.out, r.err)
			}
		}
	}

	r := exe(t, nil, filepath.Join(dir, "kubectl-ferry"), "status", "hello", "--kubeconfig", env.Kubeconfig, "-n", ns)
	check("kubectl-ferry status", r, ExitOK, titles...)

	// Only the plugin just built and kubectl: another kubectl-ferry on the
	// PATH (bin/ after `make build`) would overshadow it and fail
	// `kubectl plugin list`.
	kubectl, err := exec.LookPath("kubectl")
	if err != nil {
		t.Fatal(err)
	}
	path := []string{"PATH=" + dir + string(os.PathListSeparator) + filepath.Dir(kubectl)}
	r = exe(t, path, "kubectl", "ferry", "status", "hello", "--kubeconfig", env.Kubeconfig, "-n", ns)
	check("kubectl ferry status", r, ExitOK, titles...)
	r = exe(t, path, "kubectl", "ferry", "restart", "nosuch", "--kubeconfig", env.Kubeconfig, "-n", ns)
	check("kubectl ferry restart nosuch", r, ExitFailure, `AppGroup "nosuch" not found in namespace "`+ns+`"`)
	r = exe(t, path, "kubectl", "ferry", "restart", "--kubeconfig", env.Kubeconfig)
	check("kubectl ferry restart", r, ExitUsage, "the AppGroup NAME is required")
	r = exe(t, path, "kubectl", "plugin", "list")
	check("kubectl plugin list", r, ExitOK, filepath.Join(dir, "kubectl-ferry"))

	// $KUBECONFIG, whose current context names the namespace: no flags.
	kubeconfig := env.KubeconfigFor(t, "", "")
	r = exe(t, nil, "kubectl", "--kubeconfig", kubeconfig, "config", "set-context", "--current", "--namespace", ns)
	check("kubectl config set-context", r, ExitOK)
	r = exe(t, append(path, "KUBECONFIG="+kubeconfig), "kubectl", "ferry", "status", "hello")
	check("kubectl ferry status with $KUBECONFIG", r, ExitOK, titles...)
	r = exe(t, append(path, "KUBECONFIG="+kubeconfig), "kubectl", "ferry", "status", "hello", "-n", "default")
	check("kubectl ferry status -n default", r, ExitFailure, `AppGroup "hello" not found in namespace "default"`)
}
