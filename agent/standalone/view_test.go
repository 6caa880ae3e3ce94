package standalone

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	ferryv1 "github.com/ferry-dev/ferry/api/v1alpha1"
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
		"    (ferry-agent status --json | jq '.apps[] | select(.name == \"hello\").pool.lastRestart.errors', with each spawn's output.)\n",
		"(old)",
	} {
		if !strings.Contains(view, want) {
			t.Errorf("the status view lacks %q:\n%s", want, view)
		}
	}

	// The pointer's command, pasted, prints the errors (jq reading what
	// status --json prints). Before, it named "lastRestart.errors", no
	// path of status --json.
	// jq is one of the packages hack/install-deps.sh installs.
	jq, err := exec.LookPath("jq")
	if err != nil {
		t.Fatalf("jq, which the view's pointer uses, is not installed (make test installs it): %v", err)
	}
	q := errorsQuery("hello")
	q = strings.TrimSuffix(q[strings.Index(q, "jq '")+len("jq '"):], "'")
	data, _ := json.Marshal(st)
	cmd := exec.Command(jq, "-c", q)
	cmd.Stdin = bytes.NewReader(data)
	out, err := cmd.Output()
	var errs []map[string]any
	if err != nil || json.Unmarshal(out, &errs) != nil || len(errs) != 2 ||
		!strings.Contains(fmt.Sprint(errs[0]["reason"]), "ferry_missing_dependency") {
		t.Errorf("jq %q on status --json: %v\n%s\nwant the restart's 2 errors", q, err, out)
	}

	// A reload turning resistance on, the revision the same, leaves the
	// processes behind (the next revision retries them): the view and the
	// condition say it was off for that restart, not that it is.
	s.write(t, 2, "1")
	if err := r.client.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	if st, err = r.client.Status(ctx); err != nil {
		t.Fatal(err)
	}
	was := "(resistDeploymentErrors was false when revision " + rev + " rolled)"
	if view := statusText(t, st); !strings.Contains(view, "keep serving an older revision "+was+"; they are tried again") {
		t.Errorf("after a reload turning resistance on, the status view lacks %q:\n%s", was, view)
	}
	if c := meta.FindStatusCondition(st.Apps[0].Conditions, ferryv1.ConditionRollingRestart); c == nil ||
		c.Reason != ferryv1.ReasonRolloutIncomplete || !strings.Contains(c.Message, was) {
		t.Errorf("after a reload turning resistance on, RollingRestart = %+v, want RolloutIncomplete saying %q", c, was)
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
		"    (ferry-agent status --json | jq '.apps[] | select(.name == \"hello\").pool.lastRestart.errors', the first 16 of 17, with each spawn's output.)\n"
	if !strings.Contains(view, want) {
		t.Errorf("the status view lacks\n%s\nin:\n%s", want, view)
	}
}

// TestPartialReloadErrorSaysWhatWasApplied: the error of a reload that failed
// in part, which `ferry-agent reload` prints and status shows, says what
// was applied and removed and what keeps its previous configuration (or
// did not start, if new), then the problems; status's header says it
// failed in part. Before, both gave the problems alone, as if nothing had been
// applied, and the header said "what it does not name runs as before".
func TestPartialReloadErrorSaysWhatWasApplied(t *testing.T) {
	problems := errors.New("f.yaml: 2 problems:\n  AppGroup \"a\": one\n  AppGroup \"e\": two")
	for _, tc := range []struct {
		err  *PartialReloadError
		want string
	}{
		{&PartialReloadError{Applied: []string{"b"}, NotApplied: []string{"a"}, Err: problems},
			"reload applied in part: applied b; a keeps its previous configuration:\n  f.yaml: 2 problems:\n" +
				"    AppGroup \"a\": one\n    AppGroup \"e\": two"},
		{&PartialReloadError{Applied: []string{"b", "c"}, Removed: []string{"d"}, NotApplied: []string{"a", "e", "f"},
			notStarted: []string{"e"}, Err: problems},
			"reload applied in part: applied b, c; removed d; a, f keep their previous configuration; did not start (new): e:\n"},
		{&PartialReloadError{Removed: []string{"d"}, NotApplied: []string{"e"}, notStarted: []string{"e"}, Err: problems},
			"reload applied in part: removed d; did not start (new): e:\n"},
	} {
		if got := tc.err.Error(); !strings.HasPrefix(got, tc.want) {
			t.Errorf("%+v:\n%s\nwant it to begin\n%s", tc.err, got, tc.want)
		}
	}

	at := metav1.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		failed ReloadFailure
		want   string
	}{
		{ReloadFailure{Time: at, Error: "f.yaml: bad"}, "Last reload failed at 2026-12-06T12:00:00Z; it changed nothing:\n  f.yaml: bad\n"},
		{ReloadFailure{Time: at, Error: "reload applied in part: removed d; a keeps its previous configuration:\n  f.yaml: bad",
			NotApplied: []string{"a"}, Removed: []string{"d"}},
			"Last reload failed in part at 2026-12-06T12:00:00Z:\n  reload applied in part: removed d; a keeps its previous configuration:\n    f.yaml: bad\n"},
	} {
		if view := statusText(t, StatusResponse{ReloadFailed: &tc.failed}); !strings.Contains(view, tc.want) {
			t.Errorf("the status view lacks\n%s\nin:\n%s", tc.want, view)
		}
	}
	// The lists are for scripts (status --json): the view shows the error,
	// which names every AppGroup once already.
	failed := ReloadFailure{Time: at, Error: "reload applied in part: applied b; did not start (new): e:\n  f.yaml: bad",
		Applied: []string{"b"}, NotApplied: []string{"e"}, NotStarted: []string{"e"}}
	if view := statusText(t, StatusResponse{ReloadFailed: &failed}); strings.Count(view, "e:") != 1 ||
		strings.Count(view, "applied b") != 1 || strings.Contains(view, "[e]") {
		t.Errorf("the status view names the AppGroups more than once:\n%s", view)
	}
}
