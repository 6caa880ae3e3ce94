package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ferry-dev/ferry/internal/testsupport"
)

// TestWorkerUsers: with --worker-users, an app whose workers would run as
// a user outside it (nobody, for an app that names none) does not start,
// and the agent's log says who and what it allows; a list the agent
// cannot read stops it at its start, in both modes.
func TestWorkerUsers(t *testing.T) {
	root, _ := filepath.Abs("../../examples/hello-wsgi")
	_, readLog, _ := startAgent(t, map[string]string{"app.yaml": appYAML("hello", root, "PORT", 1)},
		"--worker-users", "4000000-4000009")
	log := waitFor(readLog, func(l string) bool { return strings.Contains(l, "cannot run workers as") })
	if !strings.Contains(log, "the user of an app that names none") || !strings.Contains(log, "only as --worker-users 4000000-4000009") {
		t.Errorf("the agent's log does not say that the app's default user is outside --worker-users 4000000-4000009:\n%s", log)
	}

	for _, args := range [][]string{
		{"--node-name", "n", "--worker-users", "nobody,0-99"},
		{"standalone", "-f", "/nonexistent.yaml", "--worker-users", "nobody,0-99"},
	} {
		if _, errOut, code := ferry(t, args...); code == 0 || !strings.Contains(errOut, `"0-99" takes in root`) {
			t.Errorf("%q: exit %d, want the list refused: %s", args, code, errOut)
		}
	}
}

// TestAgentInRootsGroupSaysSo: an agent that is not root, started in
// root's group (a pod's runAsGroup 0), says once at its start, in both
// modes, that its workers run in root's group too; started in a group of
// its own, it says nothing of it. Each here stops at its start after
// (no such file, no such kubeconfig).
func TestAgentInRootsGroupSaysSo(t *testing.T) {
	dir := testsupport.WorkerDir(t) // the agent's binary, where uid 65532 may run it
	bin := filepath.Join(dir, "ferry-agent")
	b, err := os.ReadFile(agentBin)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, b, 0o755); err != nil {
		t.Fatal(err)
	}
	const warning = "The agent runs as uid 65532, not root, in root's group (gid 0)"
	for _, mode := range [][]string{
		{"standalone", "-f", "/nonexistent.yaml", "--state-dir", filepath.Join(dir, "state")},
		{"--node-name", "n", "--kubeconfig", "/nonexistent-kubeconfig"},
	} {
		for gid, want := range map[string]int{"0": 1, "65532": 0} {
			args := append([]string{"--reuid=65532", "--regid=" + gid, "--clear-groups", "--", bin}, mode...)
			out, err := exec.CommandContext(t.Context(), "setpriv", args...).CombinedOutput()
			if said := strings.Count(string(out), warning); err == nil || said != want {
				t.Errorf("%q as uid 65532, gid %s: %v, the warning said %d times, want %d:\n%s", mode, gid, err, said, want, out)
			}
		}
	}
}
