package contract

import "testing"

// TestDiedAfterReady: the agent's reasons for a worker that died soon
// after it was ready (as agent/pool words them) are told from those of a
// spawn that never became ready, and FailedHow words each, with or
// without a node.
func TestDiedAfterReady(t *testing.T) {
	tests := []struct {
		reason string
		died   bool
		how    string
		howOnB string
	}{
		{reason: "exited with status 3 200ms " + DiedAfterReady, died: true,
			how: "died soon after it was ready", howOnB: "died on node-b soon after it was ready"},
		{reason: "was killed by a signal (SIGSEGV: segmentation fault) 1.2s " + DiedAfterReady + ", while handling a request", died: true,
			how: "died soon after it was ready", howOnB: "died on node-b soon after it was ready"},
		{reason: "exited with status 1", how: "failed to spawn", howOnB: "failed to spawn on node-b"},
		{reason: "not ready within startTimeout (90s): the app was still loading", how: "failed to spawn",
			howOnB: "failed to spawn on node-b"},
		{reason: "", how: "failed to spawn", howOnB: "failed to spawn on node-b"},
	}
	for _, tt := range tests {
		if got := DiedAfterReadyIn(tt.reason); got != tt.died {
			t.Errorf("DiedAfterReadyIn(%q) = %v, want %v", tt.reason, got, tt.died)
		}
		if got := FailedHow(tt.reason, ""); got != tt.how {
			t.Errorf("FailedHow(%q, \"\") = %q, want %q", tt.reason, got, tt.how)
		}
		if got := FailedHow(tt.reason, " on node-b"); got != tt.howOnB {
			t.Errorf("FailedHow(%q, \" on node-b\") = %q, want %q", tt.reason, got, tt.howOnB)
		}
	}
}
