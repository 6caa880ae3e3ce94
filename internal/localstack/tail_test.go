package localstack

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestTailIsTheLogsLast20Lines: a process that did not become ready is
// reported with the last 20 lines of its log, its final newline dropped;
// a log never written gives none.
func TestTailIsTheLogsLast20Lines(t *testing.T) {
	log := filepath.Join(t.TempDir(), "agent.log")
	var all []string
	for i := 1; i <= 25; i++ {
		all = append(all, fmt.Sprintf("line %d", i))
	}
	for _, tc := range []struct {
		name, data, want string
	}{
		{"25 lines", strings.Join(all, "\n") + "\n", strings.Join(all[5:], "\n")},
		{"3 lines, no final newline", "a\nb\nc", "a\nb\nc"},
	} {
		if err := os.WriteFile(log, []byte(tc.data), 0o600); err != nil {
			t.Fatal(err)
		}
		if got := (&process{log: log}).tail(); got != tc.want {
			t.Errorf("%s: tail() = %q, want %q", tc.name, got, tc.want)
		}
	}
	if got := (&process{log: filepath.Join(t.TempDir(), "never")}).tail(); got != "" {
		t.Errorf("a log never written: tail() = %q, want none", got)
	}
}
