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
// root's group (a pod's runAsGroup 0, or a supplementary group 0), says
// once at its start, in both modes, that its workers run in root's group
// too; started in a group of its own, it says nothing of it. Each here
// stops at its start after, with the error that proves it ran (no such
// file, no such kubeconfig). Run as root, it runs the agent as uid 65532
// with setpriv (hack/install-deps.sh installs it).
func TestAgentInRootsGroupSaysSo(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("this test runs the agent as uid 65532, in root's group and not: run it as root, as make test and CI do")
	}
	if _, err := exec.LookPath("setpriv"); err != nil {
		t.Fatalf("this test runs the agent with setpriv, of util-linux, which make test installs (hack/install-deps.sh): %v", err)
	}
	dir := testsupport.SharedDir(t) // the agent's binary, where uid 65532 may run it, and its state, which it may make
	bin := filepath.Join(dir, "ferry-agent")
	b, err := os.ReadFile(agentBin)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, b, 0o755); err != nil {
		t.Fatal(err)
	}
	const warning = "The agent runs as uid 65532, not root, in root's group (gid 0)"
	for _, mode := range []struct {
		args    []string
		stopErr string // what it stops with, once it has run
	}{
		{[]string{"standalone", "-f", "/nonexistent.yaml", "--state-dir", filepath.Join(dir, "state")},
			"open /nonexistent.yaml: no such file or directory"},
		{[]string{"--node-name", "n", "--kubeconfig", "/nonexistent-kubeconfig"},
			"stat /nonexistent-kubeconfig: no such file or directory"},
	} {
		for _, row := range []struct {
			groups []string // setpriv's group options
			want   int      // times the warning is said
		}{
			{[]string{"--regid=0", "--clear-groups"}, 1},
			{[]string{"--regid=65532", "--groups=0"}, 1},
			{[]string{"--regid=65532", "--clear-groups"}, 0},
		} {
			args := append(append(append([]string{"--reuid=65532"}, row.groups...), "--", bin), mode.args...)
			out, err := exec.CommandContext(t.Context(), "setpriv", args...).CombinedOutput()
			said := strings.Count(string(out), warning)
			if err == nil || !strings.Contains(string(out), mode.stopErr) || said != row.want {
				t.Errorf("%q as uid 65532, %q: %v, the warning said %d times, want %d, and %q:\n%s",
					mode.args, row.groups, err, said, row.want, mode.stopErr, out)
			}
		}
	}
}
