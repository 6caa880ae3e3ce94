package v1alpha1_test

import (
	"encoding/json"
	"strings"
	"testing"

	ferryv1 "github.com/ferry-dev/ferry/api/v1alpha1"
)

// TestProcessCountsAlwaysWritten: an AppGroup with no process still has
// status.processes, so that kubectl's UPDATED column reads 0, not blank.
func TestProcessCountsAlwaysWritten(t *testing.T) {
	b, err := json.Marshal(ferryv1.AppGroupStatus{})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"processes":{"ready":0,"updated":0,"total":0}`) {
		t.Errorf("status %s lacks zero process counts", b)
	}
}
