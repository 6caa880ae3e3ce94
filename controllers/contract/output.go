package contract

import "strings"

// LastLines returns the last n lines of s, a process's output (a
// SpawnError's output is the last lines the process wrote): for the
// agent's log lines, and the status views' "Scaling error" block, which
// `ferry-agent status` and `kubectl ferry status` print. It is here,
// where both may import it, and not in agent/spawn, which builds on Linux
// only.
func LastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
