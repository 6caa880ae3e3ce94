package pid1

import (
	"testing"

	"golang.org/x/sys/unix"
)

// TestExitCode: pid 1 exits as the agent did, in a shell's terms: the
// agent's own code, or 128 + the signal that ended it (what the kubelet
// and `docker ps` show as 143 for SIGTERM, 137 for SIGKILL).
func TestExitCode(t *testing.T) {
	for _, tc := range []struct {
		name string
		ws   unix.WaitStatus // as wait4 gives it: code << 8, or the signal
		want int
	}{
		{"exited 0", 0, 0},
		{"exited 1", 1 << 8, 1},
		{"exited 2", 2 << 8, 2},
		{"killed", unix.WaitStatus(unix.SIGKILL), 137},
		{"terminated", unix.WaitStatus(unix.SIGTERM), 143},
	} {
		if got := exitCode(tc.ws); got != tc.want {
			t.Errorf("%s: %d, want %d", tc.name, got, tc.want)
		}
	}
}
