package main

import (
	"path/filepath"
	"strings"
	"testing"
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
