package standalone

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"
)

// TestStatusSaysRestartIncomplete: a restart with resistDeploymentErrors
// false whose new revision fails to spawn ends incomplete, the processes
// left on the old revision; the text status says so, and why (each
// error's first line), as it says resistance. Before, it showed the new
// revision and processes "(old)" with no word of why: only --json had
// RolloutIncomplete and lastRestart.errors.
func TestStatusSaysRestartIncomplete(t *testing.T) {
	s := newSite(t)
	s.resistNothing(t)
	r := run(t, s)
	ctx := context.Background()
	s.breakApp(t)
	rev, err := r.client.Restart(ctx, "hello", "")
	if err != nil {
		t.Fatal(err)
	}
	if err := WaitRestart(ctx, r.client, "hello", rev, 50*time.Millisecond, nil); err == nil ||
		!strings.Contains(err.Error(), "2 of 2 processes could not be replaced") {
		t.Fatalf("wait on a broken revision, resistance off: %v", err)
	}
	st, err := r.client.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	view := statusText(t, st)
	for _, want := range []string{
		"Rolling restart incomplete: 2 of 2 processes could not be replaced and keep serving an older revision " +
			"(resistDeploymentErrors is false); they are tried again at the next revision:\n",
		"    - the app failed to load: ModuleNotFoundError: No module named 'ferry_missing_dependency'\n",
		// Each spawn's traceback is there: the view points at it.
		"    (status --json: lastRestart.errors, with each spawn's output.)\n",
		"(old)",
	} {
		if !strings.Contains(view, want) {
			t.Errorf("the status view lacks %q:\n%s", want, view)
		}
	}
}

// TestRestartIncompleteCountsErrorsNotKept: a restart keeps the first 16
// of its spawn errors (lastRestart.errors); the failures past them are
// in the log only. With 17 processes left behind, the text status counts
// the one not kept ("and 14 more", not "and 13") and says which errors
// status --json has, and restart --wait says that one more failed. Before,
// both spoke as if the 16 were all: "and 13 more", and a list of 16
// under "17 of 17 processes could not be replaced".
func TestRestartIncompleteCountsErrorsNotKept(t *testing.T) {
	s := newSite(t)
	s.write(t, 17, "1")
	data, err := os.ReadFile(s.file)
	if err != nil {
		t.Fatal(err)
	}
	doc := strings.Replace(string(data), "maxProcesses: 4}", "maxProcesses: 17}\n  restart: {resistDeploymentErrors: false}", 1)
	if err := os.WriteFile(s.file, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	r := run(t, s)
	ctx := context.Background()
	s.breakApp(t)
	rev, err := r.client.Restart(ctx, "hello", "")
	if err != nil {
		t.Fatal(err)
	}
	err = WaitRestart(ctx, r.client, "hello", rev, 50*time.Millisecond, nil)
	if err == nil || !strings.Contains(err.Error(), "17 of 17 processes could not be replaced") ||
		!strings.Contains(err.Error(), "\n- and 1 more, not kept (the agent keeps the first 16): its log has each") {
		t.Errorf("wait on a broken revision, 17 processes, resistance off: %v", err)
	}
	st, err := r.client.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	view := statusText(t, st)
	want := "    - and 14 more\n" +
		"    (status --json: lastRestart.errors, the first 16 of 17, with each spawn's output.)\n"
	if !strings.Contains(view, want) {
		t.Errorf("the status view lacks\n%s\nin:\n%s", want, view)
	}
}
