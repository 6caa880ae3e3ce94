package pool

import (
	"strings"
	"testing"

	"github.com/go-logr/logr/funcr"

	ferryv1 "github.com/ferry-dev/ferry/api/v1alpha1"
)

// TestImpossibleTransitionIsLoggedToBeFound: a transition the state
// machine has not (a bug of the pool's own) leaves the worker as it was,
// and its error line says enough to find the bug: the worker (pid, id,
// revision), the state and event, and where it was asked for (a stack
// through the caller), which the logger adds to no error.
func TestImpossibleTransitionIsLoggedToBeFound(t *testing.T) {
	var logged []string
	p := &Pool{log: funcr.New(func(_, args string) { logged = append(logged, args) }, funcr.Options{})}
	w := &Worker{ID: 7, Revision: "42", state: ferryv1.ProcessExited}
	p.transitionLocked(w, EventReady)
	if w.state != ferryv1.ProcessExited {
		t.Errorf("the worker went to %s on an impossible transition, want it left Exited", w.state)
	}
	if len(logged) != 1 {
		t.Fatalf("logged %q, want one line", logged)
	}
	for _, want := range []string{`"msg"="Ignored impossible worker transition"`, `"pid"=0`, `"worker"=7`, `"revision"="42"`,
		`"state"="Exited"`, `"event"="Ready"`, "TestImpossibleTransitionIsLoggedToBeFound"} {
		if !strings.Contains(logged[0], want) {
			t.Errorf("the line lacks %s:\n%s", want, logged[0])
		}
	}
}
