package proxy

import (
	"testing"
	"time"

	"github.com/go-logr/logr/funcr"
)

// TestRefusalsSummed: after its first line, refusals logs again only a
// minute later, with how many came since the line before, the refusal
// that logs included.
func TestRefusalsSummed(t *testing.T) {
	var lines []string
	log := funcr.New(func(_, args string) { lines = append(lines, args) }, funcr.Options{})
	var r refusals
	for range 5 {
		r.note(log, "refused")
	}
	r.at.Store(time.Now().Add(-time.Minute).UnixNano()) // a minute passed
	r.note(log, "refused")
	r.note(log, "refused")
	want := []string{
		`"level"=0 "msg"="refused (logged at most once a minute)" "refused"=1`,
		`"level"=0 "msg"="refused (logged at most once a minute)" "refused"=5`,
	}
	if len(lines) != len(want) {
		t.Fatalf("lines %q, want %q", lines, want)
	}
	for i := range want {
		if lines[i] != want[i] {
			t.Errorf("line %d: %s, want %s", i, lines[i], want[i])
		}
	}
}
